// runNetcheck end to end without root: a beacon with probe ports on the in-memory network, the
// probing socket behind simulated NATs of each kind (test/netcheck/memory-nat.ts).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { BeaconServer } from '../../src/beacon/index.js'
import { ProbeResponder, type ProbePortBinds } from '../../src/netcheck/responder.js'
import { runNetcheck, type NetcheckEdges, type NetcheckOptions } from '../../src/netcheck/run.js'
import type { NetcheckReport } from '../../src/netcheck/report.js'
import { SeededRandom } from '../../src/random.js'
import type { PacketBind } from '../../src/tunnel/bind.js'
import { MemoryNetwork } from '../../src/tunnel/testing/memory-bind.js'
import { MemoryNatBind, NAT_BEHAVIOURS } from './memory-nat.js'

const FAST = { retryMs: 40, probeInfoWaitMs: 150, filterRequestGapMs: 20, filterSettleMs: 80, mappingWaitMs: 150 }
const REGISTRY_RESULT = { connectMs: 1.23456, rttMs: 2.5, error: null }

type BeaconShape = 'two-addresses' | 'one-address' | 'go'

/** A beacon at 192.0.2.1:9001; probe ports on 192.0.2.1:9002 and (two-addresses) 192.0.2.2:9003; none for 'go'. */
function rendezvous(net: MemoryNetwork, shape: BeaconShape): { close(): Promise<void> } {
  const main = net.bind('192.0.2.1', 9001)
  if (shape === 'go') {
    const server = new BeaconServer({ bind: main })
    server.start()
    return { close: () => server.close() }
  }
  const probes: ProbePortBinds[] = [{ discover: net.bind('192.0.2.1', 9002), unsolicited: net.bind('192.0.2.1', 0), advertise: { host: null, port: 9002 } }]
  if (shape === 'two-addresses') probes.push({ discover: net.bind('192.0.2.2', 9003), unsolicited: net.bind('192.0.2.2', 0), advertise: { host: '192.0.2.2', port: 9003 } })
  const responder = new ProbeResponder({ main, probes })
  const server = new BeaconServer({ bind: responder.beaconBind })
  server.start()
  return { close: async () => void (await Promise.all([server.close(), responder.close()])) }
}

function options(openBind: NetcheckEdges['openBind'], over: Partial<NetcheckOptions> = {}, localAddresses = ['10.0.0.2']): NetcheckOptions {
  return {
    registry: { host: 'registry.example', port: 9000 },
    beacon: { host: '192.0.2.1', port: 9001 },
    listen: { host: '0.0.0.0', port: 4000 },
    listenExplicit: false,
    timeoutMs: 3000,
    timing: FAST,
    edges: {
      openBind,
      lookup: async (host) => host,
      localAddresses: () => localAddresses,
      probeRegistry: async () => REGISTRY_RESULT,
      random: new SeededRandom(1),
    },
    ...over,
  }
}

async function behindNat(kind: keyof typeof NAT_BEHAVIOURS | 'public', shape: BeaconShape): Promise<NetcheckReport> {
  const net = new MemoryNetwork()
  const rv = rendezvous(net, shape)
  try {
    const open = async (): Promise<PacketBind> => (kind === 'public' ? net.bind('198.51.100.5', 4000) : new MemoryNatBind(net, '198.51.100.9', NAT_BEHAVIOURS[kind]))
    return await runNetcheck(options(open, {}, kind === 'public' ? ['198.51.100.5'] : ['10.0.0.2']))
  } finally {
    await rv.close()
  }
}

test('a beacon with probe ports on two addresses tells every kind apart', async () => {
  const expected: Array<[Parameters<typeof behindNat>[0], string]> = [
    ['public', 'none'],
    ['full-cone', 'full-cone'],
    ['restricted-cone', 'restricted-cone'],
    ['port-restricted-cone', 'port-restricted-cone'],
    ['symmetric', 'symmetric'],
  ]
  for (const [kind, verdict] of expected) {
    const r = await behindNat(kind, 'two-addresses')
    assert.equal(r.nat.kind, verdict, `${kind}: ${JSON.stringify(r, null, 2)}`)
    assert.equal(r.udp, true)
    assert.equal(r.beacon?.probe_ports, true)
    assert.equal(r.beacon?.probes.length, 2)
    assert.equal(r.public_endpoint, kind === 'public' ? '198.51.100.5:4000' : kind === 'symmetric' ? '198.51.100.9:20000' : '198.51.100.9:4000')
    if (kind !== 'public') assert.deepEqual(r.notes, [], kind)
  }
})

test('with one beacon address, a full cone and a restricted cone are both "cone (full or address-restricted: unknown)"', async () => {
  for (const kind of ['full-cone', 'restricted-cone'] as const) {
    const r = await behindNat(kind, 'one-address')
    assert.equal(r.nat.kind, 'cone', kind)
    assert.equal(r.nat.description, 'cone (full or address-restricted: unknown)')
    assert.ok(r.notes.some((n) => /another beacon address/.test(n)), r.notes.join('\n'))
  }
  assert.equal((await behindNat('port-restricted-cone', 'one-address')).nat.kind, 'port-restricted-cone')
  assert.equal((await behindNat('symmetric', 'one-address')).nat.kind, 'symmetric')
})

test('a beacon without probe ports (as the Go reference): "none" for a public host, "unknown" behind any NAT', async () => {
  const pub = await behindNat('public', 'go')
  assert.equal(pub.nat.kind, 'none')
  assert.equal(pub.beacon?.probe_ports, false)
  const nat = await behindNat('full-cone', 'go')
  assert.equal(nat.nat.kind, 'unknown')
  assert.equal(nat.udp, true)
  assert.equal(nat.public_endpoint, '198.51.100.9:4000')
  assert.match(nat.notes.join(' '), /no netcheck probe ports/)
})

test('the report carries both latencies, rounded to microseconds', async () => {
  const r = await behindNat('public', 'two-addresses')
  assert.deepEqual(r.registry, { address: 'registry.example:9000', reachable: true, connect_ms: 1.235, rtt_ms: 2.5, error: null })
  assert.equal(r.beacon!.rtt_samples_ms.length, 3)
  assert.ok(r.beacon!.rtt_ms !== null && r.beacon!.rtt_ms >= 0)
  assert.equal(r.local, '198.51.100.5:4000')
})

test('no beacon answer at all: udp false, kind unknown, after the timeout', async () => {
  const net = new MemoryNetwork()
  const started = Date.now()
  const r = await runNetcheck(options(async () => net.bind('10.0.0.2', 4000), { timeoutMs: 400 }))
  assert.equal(r.udp, false)
  assert.equal(r.nat.kind, 'unknown')
  assert.ok(Date.now() - started >= 350)
})

test('a busy default port falls back to a random one and says so; a busy --listen is an error', async () => {
  const net = new MemoryNetwork()
  const rv = rendezvous(net, 'two-addresses')
  try {
    const busy = async (host: string, port: number): Promise<PacketBind> => {
      if (port === 4000) throw Object.assign(new Error('bind EADDRINUSE'), { cause: { code: 'EADDRINUSE' } })
      return net.bind('198.51.100.5', port)
    }
    const r = await runNetcheck(options(busy, {}, ['198.51.100.5']))
    assert.equal(r.local_busy, '0.0.0.0:4000')
    assert.notEqual(r.local, '198.51.100.5:4000')
    assert.match(r.notes[0]!, /port 4000 was busy/)
    assert.equal(r.nat.kind, 'none')
    await assert.rejects(runNetcheck(options(busy, { listenExplicit: true })), (err: Error & { code?: string; hint?: string }) => {
      assert.equal(err.code, 'PT_NETCHECK_BIND_FAILED')
      assert.match(err.hint ?? '', /busy/)
      return true
    })
  } finally {
    await rv.close()
  }
})

test('a beacon name that does not resolve is reported, and the registry is still timed', async () => {
  const net = new MemoryNetwork()
  const o = options(async () => net.bind('10.0.0.2', 4000), { beacon: { host: 'nowhere.invalid', port: 9001 } })
  o.edges!.lookup = async () => {
    throw new Error('ENOTFOUND')
  }
  const r = await runNetcheck(o)
  assert.equal(r.beacon?.error?.code, 'PT_NETCHECK_RESOLVE_FAILED')
  assert.equal(r.udp, null)
  assert.equal(r.nat.description, 'unknown (the beacon was not probed)')
  assert.equal(r.registry?.rtt_ms, 2.5)
})

test('without a beacon only the registry is checked, and the notes say so', async () => {
  const net = new MemoryNetwork()
  const r = await runNetcheck(options(async () => net.bind('10.0.0.2', 4000), { beacon: null }))
  assert.equal(r.beacon, null)
  assert.equal(r.udp, null)
  assert.match(r.notes.join(' '), /no beacon given/)
})
