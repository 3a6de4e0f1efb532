// `pilot-tun netcheck` as a user runs it (loopback rendezvous with a probe port), its options, its
// human output, and `beacon --probe-listen` (startBeacon).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { startBeacon } from '../../src/cli/commands/beacon.js'
import { formatNetcheck, resolveNetcheckOptions } from '../../src/cli/commands/netcheck.js'
import type { NetcheckReport } from '../../src/netcheck/report.js'
import { startRegistry } from '../../src/registry/start.js'
import { UdpBind } from '../../src/tunnel/bind.js'
import { repoRoot } from '../util/fixtures.js'

const run = promisify(execFile)
const bin = join(repoRoot, 'bin', 'pilot-tun.js')

test('netcheck --json against a loopback rendezvous: no NAT, UDP, the probe port, both latencies', async () => {
  const beacon = await startBeacon({ listen: '127.0.0.1:0', probeListen: ['127.0.0.1:0'] })
  const registry = await startRegistry({ host: '127.0.0.1', port: 0, storePath: ':memory:' })
  try {
    const { stdout } = await run(process.execPath, [
      bin, 'netcheck', '--json', '--listen', '127.0.0.1:0', '--config', '/nonexistent-is-fine-only-if-not-named',
      '--registry', `127.0.0.1:${registry.address.port}`, '--beacon', `127.0.0.1:${beacon.local.port}`,
    ]).catch((err: { stdout: string }) => err)
    const r = JSON.parse(stdout) as NetcheckReport | { error: { code: string } }
    // A named config file that does not exist is an error, like `up`.
    assert.equal((r as { error: { code: string } }).error.code, 'PT_CONFIG_NOT_FOUND')

    const ok = await run(process.execPath, [
      bin, 'netcheck', '--json', '--listen', '127.0.0.1:0',
      '--registry', `127.0.0.1:${registry.address.port}`, '--beacon', `127.0.0.1:${beacon.local.port}`,
    ])
    const report = JSON.parse(ok.stdout) as NetcheckReport
    assert.equal(report.udp, true)
    assert.equal(report.nat.kind, 'none')
    assert.equal(report.public_endpoint, report.local)
    assert.equal(report.beacon?.probe_ports, true)
    assert.deepEqual(report.beacon?.probes.map((p) => [p.endpoint, p.vantage, p.mapped, p.unsolicited_received]), [
      [`127.0.0.1:${beacon.probes!.probeEndpoints[0]!.port}`, 'other-port', report.local, true],
    ])
    assert.equal(report.beacon?.rtt_samples_ms.length, 3)
    assert.equal(report.registry?.reachable, true)
    assert.ok(report.registry?.rtt_ms !== null)
    assert.equal(beacon.probes!.stats().probeRequests >= 1, true)

    const human = await run(process.execPath, [bin, 'netcheck', '--listen', '127.0.0.1:0', '--beacon', `127.0.0.1:${beacon.local.port}`])
    assert.match(human.stdout, /^udp: +yes \(beacon 127\.0\.0\.1:\d+\)$/m)
    assert.match(human.stdout, /^nat: +none \(public endpoint is local\)$/m)
    assert.match(human.stdout, /^beacon latency: +\d+\.\d ms/m)
    assert.doesNotMatch(human.stdout, /registry latency/)
  } finally {
    await Promise.all([beacon.close(), registry.close()])
  }
})

test('options: flags over the config file over the default listen; nothing to check is a config error', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'pilot-netcheck-'))
  try {
    const config = join(dir, 'config.json')
    writeFileSync(config, JSON.stringify({ registry: 'rv.example:9000', beacon: 'rv.example:9001', listen: ':4100', hostname: 'x' }))
    const fromFile = await resolveNetcheckOptions({ config, timeout: 5 })
    assert.deepEqual(fromFile.registry, { host: 'rv.example', port: 9000 })
    assert.deepEqual(fromFile.beacon, { host: 'rv.example', port: 9001 })
    assert.deepEqual(fromFile.listen, { host: '0.0.0.0', port: 4100 })
    assert.equal(fromFile.listenExplicit, false)
    assert.equal(fromFile.timeoutMs, 5000)
    const flags = await resolveNetcheckOptions({ config, beacon: '192.0.2.1:7', listen: '127.0.0.1:0', timeout: 1.5 })
    assert.deepEqual(flags.beacon, { host: '192.0.2.1', port: 7 })
    assert.deepEqual(flags.registry, { host: 'rv.example', port: 9000 })
    assert.equal(flags.listenExplicit, true)
    const none = join(dir, 'empty.json')
    writeFileSync(none, '{}')
    const dflt = await resolveNetcheckOptions({ config: none, beacon: '192.0.2.1:9001', timeout: 5 })
    assert.deepEqual(dflt.listen, { host: '0.0.0.0', port: 4000 })
    assert.equal(dflt.registry, null)
    await assert.rejects(resolveNetcheckOptions({ config: none, timeout: 5 }), { code: 'PT_CONFIG_INVALID' })
    await assert.rejects(resolveNetcheckOptions({ beacon: 'x:1', registry: 'y:2', listen: ':0', timeout: 0 }), { code: 'PT_CONFIG_INVALID' })
    await assert.rejects(resolveNetcheckOptions({ beacon: 'no-port', registry: 'y:2', listen: ':0', timeout: 5 }), { code: 'PT_CONFIG_INVALID' })
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test('the human report: aligned fields, one line per probe port, notes last', () => {
  const report: NetcheckReport = {
    local: '0.0.0.0:4000',
    local_busy: null,
    udp: true,
    public_endpoint: '198.18.3.2:4000',
    nat: { kind: 'port-restricted-cone', description: 'port-restricted cone', mapping: 'endpoint-independent', filtering: 'address-and-port-dependent' },
    beacon: {
      address: '198.18.0.2:9001',
      endpoint: '198.18.0.2:9001',
      rtt_ms: 0.412,
      rtt_samples_ms: [0.5, 0.412, 0.3],
      probe_ports: true,
      probes: [
        { endpoint: '198.18.0.2:9002', vantage: 'other-port', mapped: '198.18.3.2:4000', unsolicited_received: false },
        { endpoint: '198.18.0.3:9003', vantage: 'other-address', mapped: null, unsolicited_received: false },
      ],
      error: null,
    },
    registry: { address: '198.18.0.2:9000', reachable: false, connect_ms: null, rtt_ms: null, error: { code: 'PT_REGISTRY_UNREACHABLE', message: 'connect ECONNREFUSED' } },
    notes: ['something could not be told apart'],
  }
  assert.equal(
    formatNetcheck(report),
    [
      'udp:              yes (beacon 198.18.0.2:9001)',
      'public endpoint:  198.18.3.2:4000 (local 0.0.0.0:4000)',
      'nat:              port-restricted cone',
      'mapping:          endpoint-independent',
      'filtering:        address-and-port-dependent',
      'probe ports:      198.18.0.2:9002 (another port): same public endpoint; unsolicited packet dropped',
      '                  198.18.0.3:9003 (another address): no answer; unsolicited packet dropped',
      'beacon latency:   0.4 ms (Discover round trip, median of 3)',
      'registry latency: UNREACHABLE from 198.18.0.2:9000: connect ECONNREFUSED [PT_REGISTRY_UNREACHABLE]',
      'note: something could not be told apart',
    ].join('\n'),
  )
})

test('beacon --probe-listen: at most two, and a taken probe port frees every socket already bound', async () => {
  await assert.rejects(startBeacon({ listen: '127.0.0.1:0', probeListen: ['127.0.0.1:0', '127.0.0.1:0', '127.0.0.1:0'] }), { code: 'PT_BEACON_INVALID_LISTEN' })
  await assert.rejects(startBeacon({ listen: '127.0.0.1:0', probeListen: ['127.0.0.1:99999'] }), { code: 'PT_BEACON_INVALID_LISTEN' })
  const taken = await UdpBind.open({ host: '127.0.0.1', port: 0 })
  const free = await UdpBind.open({ host: '127.0.0.1', port: 0 })
  const mainPort = free.local.port
  await free.close()
  try {
    await assert.rejects(startBeacon({ listen: { host: '127.0.0.1', port: mainPort }, probeListen: [taken.local] }), (err: Error & { code?: string; hint?: string }) => {
      assert.equal(err.code, 'PT_BEACON_LISTEN_FAILED')
      assert.match(err.hint ?? '', /--probe-listen/)
      return true
    })
    const again = await UdpBind.open({ host: '127.0.0.1', port: mainPort }) // the main socket was closed
    await again.close()
  } finally {
    await taken.close()
  }
})
