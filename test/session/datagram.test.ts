import { test } from 'node:test'
import assert from 'node:assert/strict'
import { SessionEndpoint } from '../../src/session/endpoint.js'
import { SimPair } from '../../src/session/testing/pair.js'
import { SeededRandom } from '../../src/random.js'
import { Flag, Protocol, PacketHeader, decodePacket, HEADER_SIZE } from '../../src/protocol/header.js'
import { drain, hex } from './helpers.js'

const A = { network: 0, node: 1 }
const B = { network: 0, node: 2 }

test('datagram bytes match §16.2 P10; fresh ephemeral source port per datagram; delivered with ports', () => {
  const a = new SessionEndpoint({ local: A, random: new SeededRandom(1) })
  a.sendDatagram(0, B, 5000, new TextEncoder().encode('hi'), 49154)
  const [p] = drain(a, 0)
  assert.equal(hex(p!.bytes), '10020002000000000001000000000002c002138800000000000000000000035919166869')
  const p1 = a.sendDatagram(0, B, 5000, new Uint8Array([1]))
  const p2 = a.sendDatagram(0, B, 5000, new Uint8Array([2]))
  assert.notEqual(p1, p2)
  const out = drain(a, 0)
  for (const d of out) {
    assert.equal(d.h.flags, 0)
    assert.equal(d.h.protocol, Protocol.DATAGRAM)
    assert.equal(d.h.seq, 0)
    assert.equal(d.h.ack, 0)
    assert.equal(d.h.window, 0)
  }
  const sim = new SimPair({ seed: 41, ab: { delay: 3 } })
  sim.a.sendDatagram(0, sim.addressB, 7000, new Uint8Array([9, 8, 7]), 50001)
  sim.a.sendDatagram(0, sim.addressB, 7000, new Uint8Array(0)) // empty: dropped by the receiver
  sim.run(() => false, 100)
  assert.equal(sim.datagrams[1].length, 1)
  const d = sim.datagrams[1][0]!
  assert.deepEqual([...d.data], [9, 8, 7])
  assert.equal(d.remotePort, 50001)
  assert.equal(d.localPort, 7000)
  assert.equal(sim.b.stats().droppedEmptyDatagram, 1)
})

test('ping on port 0 gets the §8 pong (P8 → P9 byte-exact); sendPing matches pongs and measures RTT', () => {
  const b = new SessionEndpoint({ local: B, random: new SeededRandom(2) })
  const ping = Buffer.from('10030004000000000001000000000002c001000000000007000000000000f4c802bc70696e67', 'hex')
  const h = decodePacket(ping, 0, new PacketHeader())
  assert.equal(b.handlePacket(0, h, ping.subarray(HEADER_SIZE)), null)
  const [pong] = drain(b, 0)
  assert.equal(hex(pong!.bytes), '120300040000000000020000000000010000c00100000007000000080000ce14cdd970696e67')

  const sim = new SimPair({ seed: 42, ab: { delay: 25 }, ba: { delay: 15 } })
  const id = sim.a.sendPing(sim.now, sim.addressB, new Uint8Array([1, 2, 3]))
  sim.run(() => sim.pongs[0].length > 0, 1000)
  const e = sim.pongs[0][0]!
  assert.equal(e.id, id)
  assert.equal(e.rtt, 40)
  assert.deepEqual([...e.payload], [1, 2, 3])
  // A stray pong (unknown id) is ignored; other control ports are ignored.
  const c = new SessionEndpoint({ local: A, random: new SeededRandom(3) })
  const stray = PacketHeader.from({ version: 1, protocol: Protocol.CONTROL, flags: Flag.ACK, srcNode: 2, dstNode: 1, srcPort: 0, dstPort: 49152, seq: 77, ack: 78 })
  c.handlePacket(0, stray, new Uint8Array(0))
  const other = PacketHeader.from({ version: 1, protocol: Protocol.CONTROL, srcNode: 2, dstNode: 1, srcPort: 5, dstPort: 1 })
  c.handlePacket(0, other, new Uint8Array(0))
  assert.equal(c.pollEvent(), null)
  assert.equal(drain(c, 0).length, 0)
})
