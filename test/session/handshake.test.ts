import { test } from 'node:test'
import assert from 'node:assert/strict'
import { SimPair } from '../../src/session/testing/pair.js'
import { SessionEndpoint, EPHEMERAL_PORT_MIN, EPHEMERAL_PORT_MAX, type IncomingStream } from '../../src/session/endpoint.js'
import { StreamEvent, StreamState } from '../../src/session/stream.js'
import { drainEvents, OneWay } from '../../src/session/testing/transfer.js'
import { Flag } from '../../src/protocol/header.js'
import { SeededRandom } from '../../src/random.js'
import { drain, feed, hex } from './helpers.js'

const A = { network: 0, node: 1 }
const B = { network: 0, node: 2 }

test('handshake bytes match the §16.2 vectors P1–P3 (ISN 0)', () => {
  const a = new SessionEndpoint({ local: A, random: new SeededRandom(1), stream: { isn: 0 } })
  const b = new SessionEndpoint({ local: B, random: new SeededRandom(2), stream: { isn: 0 } })
  b.listen(1000)
  const c = a.connect(0, B, 1000)
  const [syn] = drain(a, 0)
  assert.equal(hex(syn!.bytes), '11010000000000000001000000000002c00003e800000000000000000200145ed874')
  const inc = b.handlePacket(0, syn!.h, syn!.payload)
  assert.ok(inc !== null && 'kind' in inc && inc.kind === 'incoming')
  const s = b.accept(0, inc)
  const [synAck] = drain(b, 0)
  assert.equal(hex(synAck!.bytes), '1301000000000000000200000000000103e8c0000000000000000001020024f40f8e')
  a.handlePacket(1, synAck!.h, synAck!.payload)
  const [ack] = drain(a, 1)
  assert.equal(hex(ack!.bytes), '12010000000000000001000000000002c00003e8000000010000000102001e21ff5a')
  b.handlePacket(2, ack!.h, ack!.payload)
  assert.equal(c.state, StreamState.Established)
  assert.equal(s.state, StreamState.Established)
  assert.deepEqual(drainEvents(c), [StreamEvent.Connected])
  assert.deepEqual(drainEvents(s), [StreamEvent.Connected])
})

test('random ISNs below 2^31, SYN|ACK acknowledges ISN + 1', () => {
  const sim = new SimPair({ seed: 9 })
  sim.b.listen(80)
  const seen: number[] = []
  sim.trace = (from, h) => {
    if (h.flags & Flag.SYN) seen.push(h.seq, h.ack)
  }
  const c = sim.a.connect(0, sim.addressB, 80)
  sim.run(() => c.state === StreamState.Established, 5000)
  const [synSeq, , synAckSeq, synAckAck] = seen
  assert.ok(synSeq! < 2 ** 31 && synAckSeq! < 2 ** 31)
  assert.notEqual(synSeq, 0)
  assert.equal(synAckAck, (synSeq! + 1) >>> 0)
  assert.equal(c.initialSequenceNumber, synSeq)
})

test('a duplicate SYN gets the same SYN|ACK; SYN retransmission is reported', () => {
  const sim = new SimPair({ seed: 3 })
  sim.b.listen(80)
  const synAcks: string[] = []
  let dropFirstSynAck = true
  sim.filter = (from, h) => {
    if ((h.flags & (Flag.SYN | Flag.ACK)) === (Flag.SYN | Flag.ACK)) {
      if (dropFirstSynAck) {
        dropFirstSynAck = false
        synAcks.push(`${h.seq}/${h.ack}/${h.window}`)
        return true
      }
      synAcks.push(`${h.seq}/${h.ack}/${h.window}`)
    }
    return false
  }
  const c = sim.a.connect(0, sim.addressB, 80)
  sim.run(() => c.state === StreamState.Established, 10_000)
  assert.equal(c.state, StreamState.Established)
  // One answers the retransmitted SYN, and the responder's own SYN|ACK timer may add one: all identical.
  assert.ok(synAcks.length >= 2 && synAcks.length <= 3, `${synAcks.length} SYN|ACKs`)
  for (const x of synAcks) assert.equal(x, synAcks[0])
  assert.equal(c.stats().synRetransmits, 1)
  assert.ok(drainEvents(c).includes(StreamEvent.SynRetransmitted))
  assert.equal(sim.accepted[1].length, 1, 'the duplicate SYN did not create a second connection')
  assert.ok(sim.now >= 1000 && sim.now < 1100, `established at ${sim.now}`)
})

test('SYN schedule 1 s doubling (cap 8 s) and connect timeout with a typed reason', () => {
  const sim = new SimPair({ seed: 4, ab: { loss: 1 } })
  sim.b.listen(80)
  const times: number[] = []
  sim.trace = (from, h, _p, now) => {
    if (from === 0 && h.flags === Flag.SYN) times.push(now)
  }
  const c = sim.a.connect(0, sim.addressB, 80)
  sim.run(() => c.isClosed, 60_000)
  assert.deepEqual(times, [0, 1000, 3000, 7000, 15000, 23000])
  assert.equal(c.error?.code, 'PT_SESSION_CONNECT_TIMEOUT')
  assert.equal(sim.now, 30_000)
  assert.equal(sim.a.connectionCount, 0, 'closed connection reaped')
})

test('SYN to a port nobody listens on gets RST; the dial fails as refused', () => {
  const sim = new SimPair({ seed: 5 })
  const c = sim.a.connect(0, sim.addressB, 81)
  sim.run(() => c.isClosed, 5000)
  assert.equal(c.error?.code, 'PT_SESSION_REFUSED')
  assert.equal(sim.b.stats().rstSent, 1)
})

test('policy refuse() answers with RST', () => {
  const sim = new SimPair({ seed: 6, policy: () => 'refuse' })
  sim.b.listen(80)
  const c = sim.a.connect(0, sim.addressB, 80)
  sim.run(() => c.isClosed, 5000)
  assert.equal(c.error?.code, 'PT_SESSION_REFUSED')
})

test('wrong version: a SYN with version 2 is refused with RST; non-SYN with version 2 is dropped', () => {
  const b = new SessionEndpoint({ local: B, random: new SeededRandom(2) })
  b.listen(80)
  assert.equal(feed(b, 0, { version: 2, flags: Flag.SYN, srcNode: 1, dstNode: 2, srcPort: 50000, dstPort: 80, seq: 5, window: 512 }), null)
  const out = drain(b, 0)
  assert.equal(out.length, 1)
  assert.equal(out[0]!.h.flags, Flag.RST)
  assert.equal(out[0]!.h.dstPort, 50000)
  assert.equal(out[0]!.h.srcPort, 80)
  // An established connection ignores a data packet with another version.
  const sim = new SimPair({ seed: 7 })
  sim.b.listen(80)
  const c = sim.a.connect(0, sim.addressB, 80)
  sim.run(() => c.state === StreamState.Established && sim.accepted[1].length === 1, 5000)
  const s = sim.accepted[1][0]!
  const before = s.stats().droppedInvalid
  feed(sim.b, sim.now, {
    version: 2, flags: Flag.ACK, srcNode: 1, dstNode: 2, srcPort: c.localPort, dstPort: 80,
    seq: (c.initialSequenceNumber + 1) >>> 0, ack: (s.initialSequenceNumber + 1) >>> 0, window: 512,
  }, new Uint8Array([1, 2, 3]))
  assert.equal(s.stats().droppedInvalid, before + 1)
  assert.equal(s.readableLength, 0)
  // A SYN|ACK with version 2 in SYN_SENT is refused.
  const a2 = new SessionEndpoint({ local: A, random: new SeededRandom(3) })
  const c2 = a2.connect(0, B, 80)
  drain(a2, 0)
  feed(a2, 1, { version: 2, flags: Flag.SYN | Flag.ACK, srcNode: 2, dstNode: 1, srcPort: 80, dstPort: c2.localPort, seq: 1, ack: (c2.initialSequenceNumber + 1) >>> 0, window: 512 })
  assert.equal(c2.error?.code, 'PT_SESSION_REFUSED')
  assert.equal(drain(a2, 1)[0]?.h.flags, Flag.RST)
})

test('SYNs beyond the pending-decision limit are dropped, not refused; a retransmitted SYN is taken once room frees', () => {
  const b = new SessionEndpoint({ local: B, random: new SeededRandom(9), maxPendingIncoming: 2 })
  b.listen(80)
  const syn = (port: number): IncomingStream | null => {
    const r = feed(b, 0, { flags: Flag.SYN, srcNode: 1, dstNode: 2, srcPort: port, dstPort: 80, seq: 100, window: 512 })
    return r !== null && 'kind' in r ? r : null
  }
  const first = syn(50001)
  assert.equal(first?.kind, 'incoming')
  assert.equal(syn(50002)?.kind, 'incoming')
  assert.equal(syn(50003), null, 'third SYN waits: no decision slot')
  assert.equal(drain(b, 0).length, 0, 'and gets no RST')
  assert.equal(b.stats().droppedPendingFull, 1)
  b.refuse(0, first!)
  drain(b, 0)
  assert.equal(syn(50003)?.kind, 'incoming', 'the retransmitted SYN gets the freed slot')
})

test('many connections per peer from distinct ephemeral ports', () => {
  const sim = new SimPair({ seed: 8, stream: { mss: 4096 }, ab: { delay: 5, loss: 0.02 }, ba: { delay: 5, loss: 0.02 } })
  sim.b.listen(80)
  const N = 40
  const clients = Array.from({ length: N }, () => sim.a.connect(sim.now, sim.addressB, 80))
  const ports = new Set(clients.map((c) => c.localPort))
  assert.equal(ports.size, N)
  for (const p of ports) assert.ok(p >= EPHEMERAL_PORT_MIN && p <= EPHEMERAL_PORT_MAX)
  const flows = new Map<number, OneWay>()
  const app = () => {
    for (const s of sim.accepted[1]) {
      if (!flows.has(s.remotePort)) {
        const c = clients.find((x) => x.localPort === s.remotePort)!
        flows.set(s.remotePort, new OneWay(c, s, 50_000 + s.remotePort % 1000, s.remotePort))
      }
    }
    for (const f of flows.values()) f.pump(sim.now)
  }
  const ok = sim.run(() => flows.size === N && [...flows.values()].every((f) => f.done), 120_000, app)
  assert.ok(ok)
  for (const f of flows.values()) {
    const [w, r] = f.digests()
    assert.equal(r, w)
  }
})
