/**
 * NAT matrix (issue 6): every pair of {public, full cone, port-restricted,
 * symmetric} × {who connects first}, with real `pilot-tun up --no-tun`
 * daemons, then a relayed pair upgrading to direct after a NAT kind change.
 *
 *   rendezvous 198.18.0.2 (registry :9000/tcp, beacon :9001/udp)
 *   a 198.18.1.2, e 198.18.5.2                                  public
 *        │            │
 *   ┌────┴────────────┴──── hub "internet" 198.18.0.0/15 ───────────────────┐
 *   └────┬──────────────┬──────────────┬──────────────┬───────────┬──── … ─┘
 *   b-gw, f-gw     c-gw, g-gw     d-gw, h-gw
 *   full cone      port-restr.    symmetric (masquerade fully-random)
 *   :4000 fwd      masquerade
 *        │              │              │
 *   b 10.200.2.2   c 10.200.3.2   d 10.200.4.2      (f .6, g .7, h .8)
 *   every daemon: --listen 0.0.0.0:4000 --auto-accept --heartbeat-interval 1
 *   every router drops new inbound TCP/UDP to itself on the WAN side (src/testbed/plan.ts explains why)
 *
 * Two nodes per kind (spec `matrix`), so each ordered pair of kinds gets its
 * own pair of daemons that never talked before: for kinds K1 ≠ K2, K1's first
 * node connects first to K2's first node, and K2's second node connects first
 * to K1's second node; a kind with itself is its first node → its second.
 * "Connects first" = sends the trust request (it travels over the tunnel, port
 * 444) and then pings.
 *
 * Expected path: relay only for symmetric ↔ symmetric and symmetric ↔
 * port-restricted (the symmetric side's mapping towards the peer is unknown to
 * anyone, and the port-restricted/symmetric side only admits endpoints it sent
 * to). Everything else is direct (`direct` or `punched`): a symmetric node
 * reaches a public or full-cone node's fixed endpoint, which answers the
 * mapping the packet came from.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Topology, testbedUnavailable } from '../src/testbed/topology.js'
import { SPECS } from '../src/testbed/specs.js'
import { sleep, waitUntil } from '../src/testbed/ns-process.js'
import { PilotNet, isDirect } from './helpers/pilot-net.js'

type Kind = 'public' | 'full-cone' | 'port-restricted' | 'symmetric'
const KINDS: Kind[] = ['public', 'full-cone', 'port-restricted', 'symmetric']
const NODES: Record<Kind, [string, string]> = {
  public: ['a', 'e'],
  'full-cone': ['b', 'f'],
  'port-restricted': ['c', 'g'],
  symmetric: ['d', 'h'],
}

function relayOnly(k1: Kind, k2: Kind): boolean {
  const s = new Set([k1, k2])
  return s.has('symmetric') && (s.size === 1 || s.has('port-restricted'))
}

interface Case {
  first: string
  second: string
  kinds: [Kind, Kind]
  expect: 'direct' | 'relay'
}

const CASES: Case[] = []
for (const [i, k1] of KINDS.entries()) {
  for (const k2 of KINDS.slice(i)) {
    const expect = relayOnly(k1, k2) ? 'relay' : 'direct'
    if (k1 === k2) CASES.push({ first: NODES[k1][0], second: NODES[k1][1], kinds: [k1, k2], expect })
    else {
      CASES.push({ first: NODES[k1][0], second: NODES[k2][0], kinds: [k1, k2], expect })
      CASES.push({ first: NODES[k2][1], second: NODES[k1][1], kinds: [k2, k1], expect })
    }
  }
}

const skip = (await testbedUnavailable()) ?? false

test('NAT matrix: every pair of kinds × who connects first, then a relayed pair upgrades', { skip, timeout: 240_000, concurrency: 4 }, async (t) => {
  const topo = await Topology.create(SPECS.matrix!)
  const net = new PilotNet(topo, { heartbeatS: 1 })
  const observed: string[] = []
  try {
    await net.startRendezvous()
    const names = Object.values(NODES).flat()
    await Promise.all(names.map((n) => net.up(n)))
    const addr: Record<string, string> = {}
    for (const n of names) addr[n] = (await net.status(n)).address

    const runCase = async (c: Case): Promise<void> => {
      const label = `${c.first} (${c.kinds[0]}) → ${c.second} (${c.kinds[1]})`
      await net.trust(c.first, c.second, { from: addr[c.first]!, to: addr[c.second]! })
      const ping = await net.ping(c.first, addr[c.second]!, 3)
      assert.equal(ping.received, 3, `${label}: ping ${JSON.stringify(ping)}\n${net.logs([c.first, c.second])}`)
      // Paths settle within a few seconds (punch, relay fallback after 1.5 s, upgrade on the first direct frame).
      const paths = async (): Promise<[string, string]> => {
        const [p1, p2] = await Promise.all([net.peer(c.first, addr[c.second]!), net.peer(c.second, addr[c.first]!)])
        return [p1?.path ?? 'missing', p2?.path ?? 'missing']
      }
      let seen: [string, string]
      if (c.expect === 'direct') {
        seen = await waitUntil(`${label} direct on both sides`, paths, ([x, y]) => isDirect(x) && isDirect(y), { timeoutMs: 10_000 }).catch(
          async () => paths(),
        )
      } else {
        seen = await paths()
      }
      observed.push(`${label}: ${seen[0]} / ${seen[1]} (expected ${c.expect})`)
      const ok = c.expect === 'direct' ? isDirect(seen[0]) && isDirect(seen[1]) : seen[0] === 'relay' && seen[1] === 'relay'
      assert.ok(ok, `${label}: paths ${seen.join(' / ')}, expected ${c.expect}\n${net.logs([c.first, c.second])}`)
      // The path is still usable after it settled, from both ends.
      const [again, back] = await Promise.all([net.ping(c.first, addr[c.second]!, 1), net.ping(c.second, addr[c.first]!, 1)])
      assert.equal(again.received + back.received, 2, `${label}: pings after settling ${JSON.stringify([again, back])}`)
    }

    const pending = CASES.map((c) => t.test(`${c.first} (${c.kinds[0]}) connects first to ${c.second} (${c.kinds[1]}): ${c.expect}`, () => runCase(c)))
    await Promise.allSettled(pending)
    const matrixDone = Date.now()

    // Upgrade: the relayed pairs h→g (g port-restricted → full cone) and c↔d (d symmetric → full cone).
    const upgrade = async (x: string, y: string, changed: string): Promise<void> => {
      const before = await net.peer(x, addr[y]!)
      assert.equal(before?.path, 'relay', `${x}→${y} should be relayed before the change: ${JSON.stringify(before)}`)
      await topo.setNatKind(changed, 'full-cone')
      const started = Date.now()
      const paths = async (): Promise<[string, string]> => {
        // Traffic keeps the relayed session busy while the probes run.
        await net.ping(x, addr[y]!, 1, { timeout: 2 })
        const [p1, p2] = await Promise.all([net.peer(x, addr[y]!), net.peer(y, addr[x]!)])
        return [p1?.path ?? 'missing', p2?.path ?? 'missing']
      }
      const seen = await waitUntil(`${x}↔${y} direct after ${changed} became full cone`, paths, ([p, q]) => isDirect(p) && isDirect(q), {
        timeoutMs: 40_000,
        intervalMs: 1_000,
      }).catch(async (err: Error) => {
        observed.push(`upgrade ${x}↔${y} (${changed} → full cone): still ${(await paths()).join(' / ')} after 40 s`)
        throw new Error(`${err.message}\n${net.logs([x, y])}`)
      })
      observed.push(`upgrade ${x}↔${y} (${changed} → full cone): ${seen.join(' / ')} after ${((Date.now() - started) / 1000).toFixed(1)} s`)
      const ping = await net.ping(x, addr[y]!, 2)
      assert.equal(ping.received, 2)
      assert.ok(ping.replies.every((r) => isDirect(r.path)), JSON.stringify(ping))
    }
    await Promise.allSettled([
      t.test('relayed h↔g upgrades to direct when g (port-restricted) becomes full cone', () => upgrade('h', 'g', 'g')),
      t.test(
        'relayed c↔d upgrades to direct when d (symmetric) becomes full cone',
        () => upgrade('c', 'd', 'd'),
      ),
    ])

    // An idle direct path stays direct: pairs untouched since the matrix, checked after 17 s without traffic.
    await t.test(
      'idle direct paths stay direct (17 s without traffic, directStaleMs is 15 s)',
        async () => {
        const wait = matrixDone + 17_000 - Date.now()
        if (wait > 0) await sleep(wait)
        const pairs: Array<[string, string]> = [['a', 'e'], ['a', 'b'], ['f', 'e'], ['b', 'f']]
        const seen = await Promise.all(
          pairs.map(async ([x, y]) => {
            const [p, q] = await Promise.all([net.peer(x, addr[y]!), net.peer(y, addr[x]!)])
            return `${x}↔${y}: ${p?.path ?? 'missing'} / ${q?.path ?? 'missing'}`
          }),
        )
        observed.push(`idle 17 s: ${seen.join(', ')}`)
        assert.ok(seen.every((l) => !/relay|missing|none/.test(l)), seen.join('\n'))
      },
    )
  } finally {
    t.diagnostic(`observed paths (first / second side):\n${observed.join('\n')}`)
    await net.close()
    await topo.destroy()
  }
})
