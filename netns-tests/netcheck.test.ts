/**
 * `pilot-tun netcheck` (issue 10) from a host behind each NAT kind of the
 * test bed and from a public host, against three beacons:
 *
 *   rendezvous 198.18.0.2 + 198.18.0.3 (the second address is added here)
 *     rendezvous  registry :9000/tcp, beacon :9001/udp, probe ports 0.0.0.0:9002 and 198.18.0.3:9003
 *     beacon      :9101/udp, one probe port :9102 (one address: full and restricted cones look alike)
 *     beacon      :9201/udp, no probe ports (what a Go beacon offers)
 *        │                         a 198.18.1.2 (public)
 *   ┌────┴──────── hub "internet" 198.18.0.0/15 ───┴──────────────────────┐
 *   └────┬──────────────────────────┬──────────────────────────┬──────────┘
 *   b-gw full cone (:4000 fwd)  c-gw port-restricted       d-gw symmetric
 *        │                      (masquerade)               (masquerade fully-random)
 *   b 10.200.2.2               c 10.200.3.2               d 10.200.4.2
 *   netcheck: --listen 0.0.0.0:4000 (the tunnel port the full-cone rule forwards)
 *
 * Expected: a is "none"; b, c, d are full cone, port-restricted cone and
 * symmetric with the two-address beacon; with one address b is "cone (full or
 * address-restricted: unknown)"; without probe ports b, c, d are "unknown".
 * Last, with a daemon holding b's port 4000, netcheck falls back to a random
 * port, which b's router only masquerades: port-restricted, and it says so.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { Topology, testbedUnavailable } from '../src/testbed/topology.js'
import { SPECS } from '../src/testbed/specs.js'
import { PilotBed, pilotBin } from '../src/testbed/pilot-bed.js'
import type { NetcheckReport } from '../src/netcheck/report.js'

const skip = (await testbedUnavailable()) ?? false

const RV = '198.18.0.2'
const RV2 = '198.18.0.3'
type Beacon = 9001 | 9101 | 9201

const EXPECTED: Record<string, { public: string | RegExp; kinds: Record<Beacon, string>; description9101?: string }> = {
  a: { public: '198.18.1.2:4000', kinds: { 9001: 'none', 9101: 'none', 9201: 'none' } },
  b: { public: '198.18.2.2:4000', kinds: { 9001: 'full-cone', 9101: 'cone', 9201: 'unknown' }, description9101: 'cone (full or address-restricted: unknown)' },
  c: { public: '198.18.3.2:4000', kinds: { 9001: 'port-restricted-cone', 9101: 'port-restricted-cone', 9201: 'unknown' } },
  d: { public: /^198\.18\.4\.2:\d+$/, kinds: { 9001: 'symmetric', 9101: 'symmetric', 9201: 'unknown' } },
}

test('netcheck: the NAT kind of each test-bed host, against beacons with two, one and no probe addresses', { skip, timeout: 180_000 }, async (t) => {
  const topo = await Topology.create(SPECS.default!)
  const bed = new PilotBed(topo, { tmpPrefix: 'pilot-netcheck-', daemon: { tun: false, heartbeatS: 1 } })
  const seen: string[] = []
  try {
    const rv = topo.rendezvous!
    await topo.exec(rv.name, ['ip', 'addr', 'add', `${RV2}/24`, 'dev', rv.device])
    const rendezvous = bed.spawnNode('rendezvous', rv.name, [
      pilotBin, 'rendezvous', '--registry-listen', '0.0.0.0:9000', '--beacon-listen', '0.0.0.0:9001',
      '--beacon-probe-listen', ':9002', '--beacon-probe-listen', `${RV2}:9003`,
      '--store', join(bed.dir, 'registry.db'), '--log-format', 'text',
    ])
    const oneAddress = bed.spawnNode('beacon 9101', rv.name, [pilotBin, 'beacon', '--listen', ':9101', '--probe-listen', ':9102'])
    const noProbes = bed.spawnNode('beacon 9201', rv.name, [pilotBin, 'beacon', '--listen', ':9201'])
    await Promise.all([rendezvous.waitFor(/rendezvous running/), oneAddress.waitFor(/beacon listening/), noProbes.waitFor(/beacon listening/)])

    const netcheck = async (node: string, beacon: Beacon, listen: string[] = ['--listen', '0.0.0.0:4000']): Promise<NetcheckReport> => {
      const r = await topo.exec(node, [
        process.execPath, pilotBin, 'netcheck', '--json', '--registry', `${RV}:9000`, '--beacon', `${RV}:${beacon}`,
        '--config', join(bed.dir, 'none.json'), ...listen,
      ], { allowFailure: true, timeoutMs: 30_000 })
      assert.equal(r.code, 0, `${node}: netcheck exited ${r.code}: ${r.stdout}${r.stderr}`)
      const report = JSON.parse(r.stdout) as NetcheckReport
      seen.push(`${node} → beacon :${beacon}: ${report.nat.kind} (${report.nat.description}), public ${report.public_endpoint}, local ${report.local}`)
      return report
    }

    await Promise.all(
      Object.entries(EXPECTED).map(([node, want]) =>
        t.test(`${node} (${topo.node(node).nat ?? 'public'})`, async () => {
          // One after the other: each run binds port 4000.
          for (const beacon of [9001, 9101, 9201] as const) {
            const r = await netcheck(node, beacon)
            const context = JSON.stringify(r, null, 2)
            assert.equal(r.udp, true, context)
            assert.equal(r.nat.kind, want.kinds[beacon], context)
            if (typeof want.public === 'string') assert.equal(r.public_endpoint, want.public, context)
            else assert.match(r.public_endpoint ?? '', want.public, context)
            assert.equal(r.registry?.reachable, true, context)
            assert.ok(r.registry?.rtt_ms !== null && r.beacon?.rtt_ms !== null, context)
            assert.equal(r.beacon?.probe_ports, beacon !== 9201, context)
            assert.equal(r.beacon?.probes.length, beacon === 9001 ? 2 : beacon === 9101 ? 1 : 0, context)
            if (beacon === 9101 && want.description9101 !== undefined) assert.equal(r.nat.description, want.description9101)
            if (node !== 'a' && beacon === 9001) assert.deepEqual(r.notes, [], context)
          }
        }),
      ),
    )

    await t.test('with a daemon on b\'s port 4000, netcheck probes from a random port and says what that port gets', async () => {
      await bed.up('b')
      const r = await netcheck('b', 9001, [])
      const context = JSON.stringify(r, null, 2)
      assert.equal(r.local_busy, '0.0.0.0:4000', context)
      assert.notEqual(r.local, '0.0.0.0:4000', context)
      assert.equal(r.nat.kind, 'port-restricted-cone', context)
      assert.match(r.notes.join(' '), /port 4000 was busy/, context)
    })
  } finally {
    t.diagnostic(`netcheck verdicts:\n${seen.join('\n')}`)
    await bed.close()
    await topo.destroy()
  }
})
