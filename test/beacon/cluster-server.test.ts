// Two beacons peered on a MemoryNetwork (docs/wire.md §9.7): Sync, Relay
// forwarded to the peer holding the destination, cross-beacon punch
// (PeerPunch 0x0B / PeerPunchReply 0x0C), and the hardening: peer traffic is
// accepted only from configured peer beacons.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { BeaconServer } from '../../src/beacon/server.js'
import { ClusterState } from '../../src/beacon/cluster-state.js'
import { BeaconType, encodeBeaconMessage } from '../../src/protocol/beacon-messages.js'
import { ClusterType, encodePeerPunch, encodeSyncRound } from '../../src/protocol/beacon-cluster-messages.js'
import { MemoryNetwork } from '../../src/tunnel/testing/memory-bind.js'
import { SeededRandom } from '../../src/random.js'
import { mutate, randomBytes } from '../util/fuzz.js'
import { Client, ManualClock, settle } from './helpers.js'

const X = { host: '192.0.2.1', port: 9001 }
const Y = { host: '192.0.2.2', port: 9001 }

function pair(opts: { peered?: boolean; syncIdsPerDatagram?: number } = {}) {
  const net = new MemoryNetwork()
  const clock = new ManualClock()
  const cx = new ClusterState(1)
  const cy = new ClusterState(2)
  if (opts.peered !== false) {
    cx.setPeers([Y], 'static')
    cy.setPeers([X], 'static')
  }
  const extra = opts.syncIdsPerDatagram === undefined ? {} : { syncIdsPerDatagram: opts.syncIdsPerDatagram }
  const x = new BeaconServer({ bind: net.bind(X.host, X.port), now: clock.now, cluster: cx, ...extra })
  const y = new BeaconServer({ bind: net.bind(Y.host, Y.port), now: clock.now, cluster: cy, ...extra })
  x.start()
  y.start()
  const clients: Client[] = []
  const client = (host: string, beacon: typeof X, port = 4000): Client => {
    const c = new Client(net.bind(host, port), beacon)
    clients.push(c)
    return c
  }
  const close = async (): Promise<void> => {
    for (const c of clients) await c.bind.close()
    await x.close()
    await y.close()
  }
  return { net, clock, x, y, cx, cy, client, close }
}

function ep(host: string, port: number): string {
  return host.split('.').map((n) => Number(n).toString(16).padStart(2, '0')).join('') + port.toString(16).padStart(4, '0')
}

test('Sync tells each beacon the other\'s nodes; a Relay to a node on the other beacon is forwarded and delivered', async () => {
  const r = pair()
  try {
    const a = r.client('10.0.0.1', X)
    const b = r.client('10.0.0.2', Y)
    a.discover(1)
    b.discover(2)
    await settle()
    a.take()
    b.take()
    assert.equal(r.x.syncPeers(), 1)
    assert.equal(r.y.syncPeers(), 1)
    await settle()
    assert.equal(r.x.stats().cluster?.learnedNodes, 1)
    assert.equal(r.y.stats().cluster?.learnedNodes, 1)

    a.relay(1, 2, Buffer.from('PILThello'))
    b.relay(2, 1, Buffer.from('PILTworld'))
    await settle(10)
    assert.deepEqual(b.take(), ['06' + '00000001' + Buffer.from('PILThello').toString('hex')])
    assert.deepEqual(a.take(), ['06' + '00000002' + Buffer.from('PILTworld').toString('hex')])
    assert.equal(r.x.stats().cluster?.forwardedRelays, 1)
    assert.equal(r.y.stats().sent.relayDeliver, 1)
    assert.equal(r.x.stats().sent.sync, 1)
  } finally {
    await r.close()
  }
})

test('without a Sync (or unpeered) a Relay to a node on another beacon is dropped', async () => {
  const r = pair({ peered: false })
  try {
    const a = r.client('10.0.0.1', X)
    const b = r.client('10.0.0.2', Y)
    a.discover(1)
    b.discover(2)
    await settle()
    a.take()
    b.take()
    assert.equal(r.x.syncPeers(), 0, 'no peers, nothing sent')
    a.relay(1, 2, Buffer.from('PILThello'))
    await settle(10)
    assert.deepEqual(b.take(), [])
    assert.equal(r.x.stats().dropped['relay-unknown-dest'], 1)
  } finally {
    await r.close()
  }
})

test('PunchRequest for a node on the peer beacon: both nodes get a PunchCommand with the other\'s endpoint, each from its own beacon', async () => {
  const r = pair()
  try {
    const a = r.client('10.0.0.1', X, 4001)
    const b = r.client('10.0.0.2', Y, 4002)
    a.discover(1)
    b.discover(2)
    await settle()
    a.take()
    b.take()
    r.y.syncPeers()
    await settle()
    a.punch(1, 2)
    await settle(12)
    assert.deepEqual(b.take(), ['0404' + ep('10.0.0.1', 4001)])
    assert.deepEqual(a.take(), ['0404' + ep('10.0.0.2', 4002)])
    assert.equal(r.x.stats().sent.peerPunch, 1)
    assert.equal(r.y.stats().sent.peerPunch, 1)
    assert.equal(r.y.stats().received.peerPunch, 1)
  } finally {
    await r.close()
  }
})

test('hardening: Sync, PeerPunch and forwarded Relays from an endpoint that is not a peer beacon are dropped', async () => {
  const r = pair()
  try {
    const b = r.client('10.0.0.2', Y)
    b.discover(2)
    await settle()
    b.take()
    const evil = r.client('198.51.100.9', Y, 9001)
    // A forged Sync would make Y forward relays for node 77 to the attacker.
    evil.send(encodeSyncRound(1, [77], 1)[0]!)
    // A forged PeerPunch would make Y send node 2 a PunchCommand towards the attacker.
    evil.send(encodePeerPunch({ type: ClusterType.PEER_PUNCH, requesterId: 50, targetId: 2, endpoint: { host: '198.51.100.9', port: 9001 } }))
    // A "forwarded" Relay for a sender Y never saw.
    evil.send(encodeBeaconMessage({ type: BeaconType.RELAY, senderId: 50, destId: 2, frame: Buffer.from('PILTx') }))
    await settle(10)
    assert.deepEqual(b.take(), [])
    const s = r.y.stats()
    assert.equal(s.dropped['not-a-peer'], 2)
    assert.equal(s.dropped['relay-unknown-sender'], 1)
    assert.equal(s.cluster?.learnedNodes, 0)
  } finally {
    await r.close()
  }
})

test('a Relay from a peer beacon is delivered only to a local node, never forwarded again (no loops)', async () => {
  const r = pair()
  try {
    const a = r.client('10.0.0.1', X)
    a.discover(1)
    await settle()
    a.take()
    r.x.syncPeers() // Y learns node 1 is on X
    await settle()
    // A second peer of Y sends it a Relay for node 1, which Y holds only through X: dropped, not forwarded.
    r.cy.setPeers([X, { host: '192.0.2.3', port: 9001 }], 'static')
    const z = r.client('192.0.2.3', Y, 9001)
    z.relay(9, 1, Buffer.from('PILTloop'))
    await settle(10)
    assert.deepEqual(a.take(), [])
    assert.equal(r.y.stats().dropped['relay-unknown-dest'], 1)
    assert.equal(r.y.stats().cluster?.forwardedRelays, 0)
  } finally {
    await r.close()
  }
})

test('a round split over several datagrams reaches the peer whole; the peer forgets it 35 s after the last Sync', async () => {
  const r = pair({ syncIdsPerDatagram: 2 })
  try {
    const nodes = [1, 2, 3, 4, 5].map((id) => {
      const c = r.client(`10.0.1.${id}`, X)
      c.discover(id)
      return c
    })
    await settle()
    assert.equal(r.x.syncPeers(), 3)
    await settle()
    assert.equal(r.y.stats().cluster?.learnedNodes, 5)
    const b = r.client('10.0.0.2', Y)
    b.discover(9)
    await settle()
    b.take()
    b.relay(9, 5, Buffer.from('PILTx'))
    await settle(10)
    assert.equal(nodes[4]!.take().filter((h) => h.startsWith('06')).length, 1)
    r.clock.advance(35_001)
    b.discover(9) // keep b alive at Y
    await settle()
    assert.equal(r.y.stats().cluster?.learnedNodes, 0)
  } finally {
    await r.close()
  }
})

test('fuzz: 50k random and mutated datagrams from nodes and from the peer beacon never throw and never count as internal errors', async () => {
  const r = pair({ syncIdsPerDatagram: 3 })
  try {
    const corpus = [
      '01 00000001', '03 00000001 00000002', '05 00000001 00000002 50494c54 aa',
      '07 00000002 0002 00000001 00000002',
      '07 00000002 0001 00000005 50545359 00000001 0000 0002',
      '0b 00000001 00000002 04 0a000001 0fa0', '0c 00000001 00000002 10 20010db8000000000000000000000005 0fa0',
    ].map((h) => Buffer.from(h.replace(/\s+/g, ''), 'hex'))
    const sources: Array<[string, number]> = [[Y.host, Y.port], ['10.0.0.1', 4000], ['10.0.0.2', 4000], ['::ffff:192.0.2.2', 9001]]
    const rng = new SeededRandom(0xc105)
    for (let i = 0; i < 50_000; i++) {
      const input = i % 5 === 0 ? randomBytes(rng, rng.int(60)) : mutate(rng, corpus[rng.int(corpus.length)]!)
      const [host, port] = sources[rng.int(sources.length)]!
      r.clock.advance(rng.int(5))
      assert.doesNotThrow(() => r.x.handleDatagram(Buffer.from(input), host, port))
      if (i % 1000 === 0) r.x.syncPeers()
    }
    const s = r.x.stats()
    assert.equal(s.dropped['internal-error'], 0)
    assert.ok(s.received.sync > 1000 && s.received.peerPunch > 1000, JSON.stringify(s.received))
    assert.ok((s.cluster?.learnedNodes ?? 0) <= 100_000)
  } finally {
    await r.close()
  }
})
