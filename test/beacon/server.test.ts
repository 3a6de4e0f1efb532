// BeaconServer over the in-memory network, with a hand-driven clock.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { BeaconServer } from '../../src/beacon/index.js'
import { MemoryNetwork } from '../../src/tunnel/testing/memory-bind.js'
import { hex, memoryRig, settle } from './helpers.js'

const FRAME = Buffer.from('50494c5300000001a1b2c3d40000000000000001deadbeef', 'hex') // a PILS-looking frame

test('Discover is answered with the observed endpoint (§9.1 bytes); node 0 is not recorded', async () => {
  const rig = memoryRig()
  try {
    const a = rig.client('10.0.0.1', 4000)
    a.discover(0)
    await settle()
    assert.deepEqual(a.take(), [hex('02 04 0a000001 0fa0')])
    assert.equal(rig.server.stats().nodes, 0)

    a.send(Buffer.from('0100000007ffffff', 'hex')) // extra bytes ignored
    await settle()
    assert.deepEqual(a.take(), [hex('02 04 0a000001 0fa0')])
    const s = rig.server.stats()
    assert.equal(s.nodes, 1)
    assert.equal(s.received.discover, 2)
    assert.equal(s.sent.discoverReply, 2)
  } finally {
    await rig.close()
  }
})

test('Discover from an IPv6 source is answered with a 16-byte address', async () => {
  const rig = memoryRig()
  try {
    const a = rig.client('2001:db8::5', 4000)
    a.discover(5)
    await settle()
    assert.deepEqual(a.take(), [hex('02 10 20010db8000000000000000000000005 0fa0')])
  } finally {
    await rig.close()
  }
})

test('PunchRequest sends PunchCommand to both sides with each other\'s endpoint; unknown target is dropped', async () => {
  const rig = memoryRig()
  try {
    const a = rig.client('10.0.0.1', 4000)
    const b = rig.client('10.0.0.2', 4001)
    a.discover(1)
    b.discover(2)
    await settle()
    a.take()
    b.take()

    a.punch(1, 2)
    await settle()
    assert.deepEqual(a.take(), [hex('04 04 0a000002 0fa1')])
    assert.deepEqual(b.take(), [hex('04 04 0a000001 0fa0')])

    a.punch(1, 99)
    await settle()
    assert.deepEqual(a.take(), [])
    const s = rig.server.stats()
    assert.equal(s.dropped['punch-unknown-target'], 1)
    assert.equal(s.sent.punchCommand, 2)
  } finally {
    await rig.close()
  }
})

test('PunchRequest records the requester (it can relay afterwards)', async () => {
  const rig = memoryRig()
  try {
    const a = rig.client('10.0.0.1')
    const b = rig.client('10.0.0.2')
    b.discover(2)
    a.punch(1, 2) // node 1 never sent Discover
    await settle()
    b.take()
    a.take()
    a.relay(1, 2, FRAME)
    await settle()
    assert.deepEqual(b.take(), [hex('06 00000001', FRAME)])
  } finally {
    await rig.close()
  }
})

test('Relay delivers 06 ‖ sender ‖ frame byte-exact to the destination', async () => {
  const rig = memoryRig()
  try {
    const a = rig.client('10.0.0.1')
    const b = rig.client('10.0.0.2')
    a.discover(1)
    b.discover(2)
    await settle()
    a.take()
    b.take()
    a.relay(1, 2, FRAME)
    b.relay(2, 1, Buffer.from('PILP'))
    await settle()
    assert.deepEqual(b.take(), [hex('06 00000001', FRAME)])
    assert.deepEqual(a.take(), [hex('06 00000002 50494c50')])
    const s = rig.server.stats()
    assert.equal(s.relayedPackets, 2)
    assert.equal(s.relayedBytes, FRAME.length + 4)
    assert.equal(s.sent.relayDeliver, 2)
  } finally {
    await rig.close()
  }
})

test('a spoofed Relay (right sender ID, wrong endpoint) is refused and counted', async () => {
  const rig = memoryRig()
  try {
    const a = rig.client('10.0.0.1', 4000)
    const b = rig.client('10.0.0.2')
    const otherHost = rig.client('10.0.0.66', 4000)
    const otherPort = rig.client('10.0.0.1', 4999) // same IP as node 1, other port
    a.discover(1)
    b.discover(2)
    await settle()
    b.take()
    otherHost.relay(1, 2, FRAME)
    otherPort.relay(1, 2, FRAME)
    otherHost.relay(77, 2, FRAME) // sender never announced
    await settle()
    assert.deepEqual(b.take(), [])
    const s = rig.server.stats()
    assert.equal(s.dropped['spoofed-relay'], 2)
    assert.equal(s.dropped['relay-unknown-sender'], 1)
    assert.equal(s.relayedPackets, 0)
  } finally {
    await rig.close()
  }
})

test('Relay to an unknown destination is dropped', async () => {
  const rig = memoryRig()
  try {
    const a = rig.client('10.0.0.1')
    a.discover(1)
    await settle()
    a.take()
    a.relay(1, 2, FRAME)
    await settle()
    assert.deepEqual(a.take(), [])
    assert.equal(rig.server.stats().dropped['relay-unknown-dest'], 1)
  } finally {
    await rig.close()
  }
})

test('a node that moves (NAT rebinding) gets its relay back at the new endpoint once the old entry expires', async () => {
  const rig = memoryRig({ nodeTtlMs: 60_000 })
  try {
    const a = rig.client('10.0.0.1')
    const bOld = rig.client('10.0.0.2', 4000)
    const bNew = rig.client('198.51.100.9', 31000)
    a.discover(1)
    bOld.discover(2)
    await settle()
    bNew.discover(2) // same node, new endpoint: answered, but node 2 stays at the old one for now
    await settle()
    assert.deepEqual(bNew.take(), [hex('02 04 c6336409 7918')])
    a.take()
    bOld.take()
    a.relay(1, 2, FRAME)
    await settle()
    assert.equal(bOld.take().length, 1)
    assert.equal(bNew.take().length, 0)

    rig.clock.advance(60_001) // the old endpoint fell silent; its entry expires
    a.discover(1)
    bNew.discover(2)
    await settle()
    a.take()
    bNew.take()
    a.relay(1, 2, FRAME)
    bOld.relay(2, 1, FRAME) // the old endpoint may no longer speak for node 2
    bNew.relay(2, 1, FRAME)
    await settle()
    assert.deepEqual(bNew.take(), [hex('06 00000001', FRAME)])
    assert.deepEqual(bOld.take(), [])
    assert.deepEqual(a.take(), [hex('06 00000002', FRAME)])
    const s = rig.server.stats()
    assert.equal(s.dropped['spoofed-relay'], 1)
    assert.equal(s.dropped['node-id-held'], 1)
  } finally {
    await rig.close()
  }
})

test('hardening: a node ID belongs to the endpoint that announced it until the entry expires; a Discover from elsewhere is ignored', async () => {
  const rig = memoryRig({ nodeTtlMs: 60_000 })
  try {
    const node7 = rig.client('10.0.0.7', 4000) // E1
    const attacker = rig.client('203.0.113.66', 5000) // E2
    const peer = rig.client('10.0.0.2', 4001)
    node7.discover(7)
    peer.discover(2)
    await settle()
    node7.take()
    peer.take()

    attacker.discover(7)
    attacker.punch(7, 2) // a PunchRequest records its requester too
    await settle()
    assert.deepEqual(attacker.take(), [hex('02 04 cb007142 1388')], 'a Discover is still answered with the observed endpoint')
    assert.deepEqual(peer.take(), [], 'no PunchCommand on behalf of a requester held elsewhere')

    peer.relay(2, 7, FRAME)
    peer.punch(2, 7)
    await settle()
    assert.deepEqual(node7.take(), [hex('06 00000002', FRAME), hex('04 04 0a000002 0fa1')])
    assert.deepEqual(peer.take(), [hex('04 04 0a000007 0fa0')], 'punch info for node 7 is still E1')
    assert.deepEqual(attacker.take(), [])
    assert.equal(rig.server.stats().dropped['node-id-held'], 2)

    // Node 7 refreshing from E1 extends its hold past the first TTL.
    rig.clock.advance(50_000)
    node7.discover(7)
    await settle() // datagrams are handled at the clock's time when they arrive
    rig.clock.advance(50_000)
    attacker.discover(7)
    peer.discover(2)
    await settle()
    node7.take()
    attacker.take()
    peer.relay(2, 7, FRAME)
    await settle()
    assert.equal(node7.take().length, 1)
    assert.equal(attacker.take().length, 0)
    assert.equal(rig.server.stats().dropped['node-id-held'], 3)

    // Once node 7 has been silent for longer than the TTL, E2 can claim the ID.
    rig.clock.advance(10_001)
    peer.discover(2)
    attacker.discover(7)
    await settle()
    attacker.take()
    peer.take()
    peer.relay(2, 7, FRAME)
    await settle()
    assert.deepEqual(attacker.take(), [hex('06 00000002', FRAME)])
    assert.deepEqual(node7.take(), [])
  } finally {
    await rig.close()
  }
})

test('messages meant for daemons, Sync, tunnel frames and garbage are dropped by reason', async () => {
  const rig = memoryRig()
  try {
    const a = rig.client('10.0.0.1')
    for (const h of [
      '02 04 0a000001 0fa0', // DiscoverReply
      '04 04 0a000001 0fa0', // PunchCommand
      '06 00000001 50494c50', // RelayDeliver
      '07 00000009 0001 00000001', // Sync
      '50494c50', // PILP
      '50494c53 00000001', // PILS (short)
      '0f', // unknown type < 0x10
      '00',
      '01 0000', // short Discover
      '03 00000001', // short PunchRequest
      '05 00000001 00000002', // Relay without a frame
      '03 00000000 00000002', // PunchRequest from node 0
    ]) a.send(Buffer.from(h.replace(/\s+/g, ''), 'hex'))
    rig.server.handleDatagram(new Uint8Array(0), '10.0.0.1', 4000)
    await settle()
    assert.deepEqual(a.take(), [])
    const s = rig.server.stats()
    assert.deepEqual(
      Object.fromEntries(Object.entries(s.dropped).filter(([, n]) => n > 0)),
      { empty: 1, malformed: 3, 'not-for-beacon': 3, 'sync-unsupported': 1, 'tunnel-frame': 2, 'unknown-type': 2, 'punch-bad-requester': 1 },
    )
    assert.equal(s.received.discoverReply, 1)
    assert.equal(s.received.punchCommand, 1)
    assert.equal(s.received.relayDeliver, 1)
    assert.equal(s.received.sync, 1)
    assert.equal(s.received.other, 4)
    assert.equal(s.datagrams, 13)
  } finally {
    await rig.close()
  }
})

test('a flooding source is rate limited while another source is still served', async () => {
  const rig = memoryRig({ controlPerSecond: 10, controlBurst: 20 })
  try {
    const flooder = rig.client('203.0.113.66')
    const flooderOtherPort = rig.client('203.0.113.66', 4001)
    const honest = rig.client('10.0.0.1')
    for (let i = 0; i < 100; i++) flooder.discover(0)
    await settle()
    assert.equal(flooder.take().length, 20)
    flooderOtherPort.discover(0) // the budget is per IP, not per port
    honest.discover(1)
    await settle()
    assert.equal(flooderOtherPort.take().length, 0)
    assert.equal(honest.take().length, 1)
    assert.equal(rig.server.stats().dropped['rate-limited-control'], 81)

    rig.clock.advance(1000) // refills 10 tokens
    for (let i = 0; i < 30; i++) flooder.discover(0)
    await settle()
    assert.equal(flooder.take().length, 10)
  } finally {
    await rig.close()
  }
})

test('relay has its own packet and byte budgets per source', async () => {
  const rig = memoryRig({ relayPacketsPerSecond: 5, relayPacketBurst: 5, relayBytesPerSecond: 1000, relayByteBurst: 1000 })
  try {
    const a = rig.client('10.0.0.1')
    const b = rig.client('10.0.0.2')
    a.discover(1)
    b.discover(2)
    await settle()
    a.take()
    b.take()
    for (let i = 0; i < 50; i++) a.relay(1, 2, FRAME)
    a.discover(1) // control budget untouched by relay
    await settle()
    assert.equal(b.take().length, 5)
    assert.equal(a.take().length, 1)
    assert.equal(rig.server.stats().dropped['rate-limited-relay'], 45)

    rig.clock.advance(10_000)
    a.relay(1, 2, new Uint8Array(1001 - 9)) // larger than the byte burst: never relayed
    a.relay(1, 2, new Uint8Array(600))
    a.relay(1, 2, new Uint8Array(600)) // 609 + 609 > 1000
    await settle()
    assert.equal(b.take().length, 1)
  } finally {
    await rig.close()
  }
})

test('entries expire without Discover; a refresh keeps them', async () => {
  const rig = memoryRig({ nodeTtlMs: 60_000 })
  try {
    const a = rig.client('10.0.0.1')
    const b = rig.client('10.0.0.2')
    a.discover(1)
    b.discover(2)
    await settle()
    rig.clock.advance(40_000)
    a.discover(1) // node 1 refreshes, node 2 does not
    await settle()
    rig.clock.advance(30_000)
    a.take()
    b.take()
    assert.equal(rig.server.stats().nodes, 1)
    a.relay(1, 2, FRAME)
    await settle()
    assert.deepEqual(b.take(), [])
    assert.equal(rig.server.stats().dropped['relay-unknown-dest'], 1)
    b.discover(2)
    await settle()
    b.take()
    a.relay(1, 2, FRAME)
    await settle()
    assert.equal(b.take().length, 1)
    const s = rig.server.stats()
    assert.equal(s.nodesExpired, 1)
  } finally {
    await rig.close()
  }
})

test('the node table is bounded: a newcomer evicts the least recently seen node, but never one seen recently', async () => {
  const rig = memoryRig({ maxNodes: 3, evictableAfterMs: 1000 })
  try {
    const c = [1, 2, 3, 4].map((i) => rig.client(`10.0.0.${i}`))
    c[0]!.discover(1)
    c[1]!.discover(2)
    c[2]!.discover(3)
    await settle()
    rig.clock.advance(10)
    c[0]!.discover(1) // node 1 is now more recent than node 2
    await settle()
    c[3]!.discover(4) // every node was seen within 1 s: node 4 is refused, nobody is pushed out
    await settle()
    for (const x of c) x.take()
    c[0]!.relay(1, 4, FRAME)
    await settle()
    assert.equal(c[3]!.take().length, 0)
    let s = rig.server.stats()
    assert.equal(s.dropped['table-full'], 1)
    assert.equal(s.nodesEvicted, 0)

    rig.clock.advance(1000)
    c[3]!.discover(4) // node 2 has now been silent for 1010 ms: it makes room
    await settle()
    for (const x of c) x.take()
    c[0]!.relay(1, 2, FRAME)
    c[0]!.relay(1, 3, FRAME)
    c[0]!.relay(1, 4, FRAME)
    await settle()
    assert.deepEqual(c.map((x) => x.take().length), [0, 0, 1, 1])
    s = rig.server.stats()
    assert.equal(s.nodes, 3)
    assert.equal(s.nodesEvicted, 1)
  } finally {
    await rig.close()
  }
})

test('idle rate buckets are reaped and the source table is bounded', async () => {
  const rig = memoryRig({ maxSources: 4, controlPerSecond: 10, controlBurst: 10 })
  try {
    for (let i = 1; i <= 6; i++) rig.server.handleDatagram(Buffer.from('0100000000', 'hex'), `10.0.1.${i}`, 4000)
    let s = rig.server.stats()
    assert.equal(s.sources, 4)
    assert.equal(s.sourcesEvicted, 2)
    rig.clock.advance(60_000)
    rig.server.handleDatagram(Buffer.from('0100000000', 'hex'), '10.0.2.1', 4000) // triggers the sweep
    s = rig.server.stats()
    assert.equal(s.sources, 1)
  } finally {
    await rig.close()
  }
})

test('bad limits and a second start are typed errors', async () => {
  const net = new MemoryNetwork()
  const bind = net.bind('192.0.2.1', 9001)
  assert.throws(() => new BeaconServer({ bind, limits: { maxNodes: 0 } }), { code: 'PT_BEACON_INVALID_LIMITS' })
  assert.throws(() => new BeaconServer({ bind, limits: { controlPerSecond: Number.NaN } }), { code: 'PT_BEACON_INVALID_LIMITS' })
  const server = new BeaconServer({ bind })
  server.start()
  assert.throws(() => server.start(), { code: 'PT_BEACON_BAD_STATE' })
  await server.close()
  await server.close()
  server.handleDatagram(Buffer.from('0100000001', 'hex'), '10.0.0.1', 4000) // ignored after close
  assert.equal(server.stats().datagrams, 0)
})
