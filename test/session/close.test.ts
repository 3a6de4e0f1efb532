import { test } from 'node:test'
import assert from 'node:assert/strict'
import { SimPair } from '../../src/session/testing/pair.js'
import { StreamEvent, StreamState } from '../../src/session/stream.js'
import { OneWay, drainEvents } from '../../src/session/testing/transfer.js'
import { Flag } from '../../src/protocol/header.js'
import { drain, feed, runTransfer } from './helpers.js'

function established(sim: SimPair) {
  sim.b.listen(80)
  const c = sim.a.connect(sim.now, sim.addressB, 80)
  sim.run(() => c.state === StreamState.Established && sim.accepted[1].length === 1, 10_000)
  return { c, s: sim.accepted[1][0]! }
}

interface Fin { from: number; at: number; flags: number }

test('half-close: A finishes first, B keeps sending after reading end-of-stream; both CLOSED', () => {
  const sim = new SimPair({ seed: 31, stream: { mss: 4096 }, ab: { delay: 10, loss: 0.05 }, ba: { delay: 10, loss: 0.05 } })
  const { c, s } = established(sim)
  const fins: Fin[] = []
  sim.trace = (from, h, _p, now) => {
    if (h.flags & Flag.FIN) fins.push({ from, at: now, flags: h.flags })
  }
  const ab = new OneWay(c, s, 100_000, 1)
  let ba: OneWay | null = null
  const ok = sim.run(() => ab.done && ba !== null && ba.done && c.isClosed && s.isClosed, 120_000, () => {
    ab.pump(sim.now)
    if (ab.done && ba === null) {
      assert.equal(s.state, StreamState.CloseWait)
      assert.equal(c.state, StreamState.FinWait)
      ba = new OneWay(s, c, 300_000, 2) // B only starts writing after A's end-of-stream
    }
    if (ba !== null) ba.pump(sim.now)
  })
  assert.ok(ok)
  assert.equal(c.error, null)
  assert.equal(s.error, null)
  const [w1, r1] = ab.digests()
  const [w2, r2] = (ba as unknown as OneWay).digests()
  assert.equal(r1, w1)
  assert.equal(r2, w2)
  // A's bare FIN was answered with a plain ACK (B still open); B's later FIN got FIN|ACK.
  const finAcks = fins.filter((f) => f.flags === (Flag.FIN | Flag.ACK))
  assert.ok(finAcks.every((f) => f.from === 0), 'only A answers with FIN|ACK')
  assert.ok(fins.some((f) => f.from === 0 && f.flags === Flag.FIN))
  assert.ok(fins.some((f) => f.from === 1 && f.flags === Flag.FIN))
})

test('FIN leaves only after all data is acknowledged; no data after FIN', () => {
  let finAt = -1
  let lastDataAfterFin = false
  const r = runTransfer({
    seed: 32, bytesAB: 300_000, bytesBA: 0, stream: { mss: 4096 },
    ab: { delay: 10, loss: 0.1 }, ba: { delay: 10, loss: 0.1 },
    filter: (from, h, p) => {
      if (from !== 0) return false
      if (h.flags === Flag.FIN && finAt < 0) finAt = h.seq
      else if (finAt >= 0 && p.length > 0 && (h.flags & Flag.FIN) === 0 && p[0] !== 0x53) lastDataAfterFin = true
      return false
    },
  })
  assert.ok(r.completed)
  assert.ok(!lastDataAfterFin, 'data segment sent after the FIN')
  assert.equal(r.digests.ab[0], r.digests.ab[1])
})

test('RST: reset() aborts both sides with typed reasons', () => {
  const sim = new SimPair({ seed: 33, ab: { delay: 5 }, ba: { delay: 5 } })
  const { c, s } = established(sim)
  c.write(sim.now, new Uint8Array(5000))
  sim.advance(5)
  c.reset(sim.now)
  sim.run(() => s.isClosed, 5000)
  assert.equal(c.error?.code, 'PT_SESSION_ABORTED')
  assert.equal(s.error?.code, 'PT_SESSION_RESET')
  assert.ok(drainEvents(s).includes(StreamEvent.Closed))
  assert.equal(s.read(new Uint8Array(10)) <= 0 || s.readableLength >= 0, true)
  assert.equal(sim.a.connectionCount + sim.b.connectionCount, 0)
})

test('simultaneous close: both finish at once, both CLOSED, no FIN storm', () => {
  const sim = new SimPair({ seed: 34, ab: { delay: 20 }, ba: { delay: 20 } })
  const { c, s } = established(sim)
  let fins = 0
  sim.trace = (_f, h) => {
    if (h.flags & Flag.FIN) fins++
  }
  c.finish(sim.now)
  s.finish(sim.now)
  sim.run(() => c.isClosed && s.isClosed, 60_000)
  assert.ok(c.isClosed && s.isClosed)
  assert.equal(c.error, null)
  assert.equal(s.error, null)
  assert.ok(fins <= 4, `${fins} FIN-flagged packets`)
  assert.ok(sim.now < 10_200, 'TIME_WAIT of 10 s')
})

test('never answer FIN|ACK; a Go-style FIN (window 0) gets exactly one FIN|ACK; TIME_WAIT 10 s', () => {
  const sim = new SimPair({ seed: 35 })
  const { c, s } = established(sim)
  void s
  // Pretend B is the Go reference: inject its packets by hand from now on.
  sim.filter = (from) => from === 0
  const rcvSeq = (c.stats(), (s.initialSequenceNumber + 1) >>> 0)
  const base = { srcNode: 2, dstNode: 1, srcPort: 80, dstPort: c.localPort }
  // A FIN|ACK out of the blue is never answered.
  feed(sim.a, sim.now, { ...base, flags: Flag.FIN | Flag.ACK, seq: rcvSeq, ack: 12345, window: 0 })
  const afterFinAck = drain(sim.a, sim.now)
  assert.ok(afterFinAck.every((p) => (p.h.flags & Flag.FIN) === 0), 'FIN|ACK was answered with a FIN')

  const sim2 = new SimPair({ seed: 36 })
  const e2 = established(sim2)
  const c2 = e2.c
  const goFinSeq = (e2.s.initialSequenceNumber + 1) >>> 0
  feed(sim2.a, sim2.now, { srcNode: 2, dstNode: 1, srcPort: 80, dstPort: c2.localPort, flags: Flag.FIN, seq: goFinSeq, ack: 0, window: 0 })
  const reply = drain(sim2.a, sim2.now)
  assert.equal(reply.length, 1)
  assert.equal(reply[0]!.h.flags, Flag.FIN | Flag.ACK)
  assert.equal(reply[0]!.h.ack, (goFinSeq + 1) >>> 0)
  assert.equal(c2.state, StreamState.TimeWait)
  assert.equal(c2.read(new Uint8Array(1)), -1)
  // Go then sends its FIN|ACK (same seq as its FIN): silence.
  feed(sim2.a, sim2.now, { srcNode: 2, dstNode: 1, srcPort: 80, dstPort: c2.localPort, flags: Flag.FIN | Flag.ACK, seq: goFinSeq, ack: reply[0]!.h.seq + 1, window: 0 })
  assert.equal(drain(sim2.a, sim2.now).length, 0)
  const t0 = sim2.now
  sim2.filter = () => true
  sim2.run(() => c2.isClosed, 60_000)
  assert.equal(sim2.now - t0, 10_000)
  assert.equal(c2.error, null)
})

test('keepalive every 30 s on idle connections; idle timeout at 120 s when the peer goes silent', () => {
  const sim = new SimPair({ seed: 37, ab: { delay: 10 }, ba: { delay: 10 } })
  const { c, s } = established(sim)
  let keepalives = 0
  sim.trace = (from, h, p) => {
    if (h.flags === Flag.ACK && p.length === 0) keepalives++
  }
  sim.advance(600_000)
  assert.equal(c.state, StreamState.Established)
  assert.equal(s.state, StreamState.Established)
  assert.ok(keepalives >= 20 && keepalives <= 42, `${keepalives} keepalives in 10 min`)
  // B goes silent: A closes after 120 s without hearing anything.
  sim.filter = (from) => from === 1
  const t0 = sim.now
  sim.run(() => c.isClosed, 300_000)
  assert.equal(c.error?.code, 'PT_SESSION_IDLE_TIMEOUT')
  assert.ok(sim.now - t0 <= 120_000 + 1 && sim.now - t0 >= 90_000, `closed after ${sim.now - t0} ms`)
})
