/** Recovery (episodes and PRR, RFC 6937) and TailLossProbe (RFC 8985 §7), each on its own. */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Recovery } from '../../src/session/recovery.js'
import { TailLossProbe } from '../../src/session/tail-probe.js'
import { newStreamStats } from '../../src/session/stream-config.js'

const MSS = 1000

test('no episode: the controller window applies; an episode ends when the ACK reaches its point', () => {
  const r = new Recovery()
  assert.equal(r.active, false)
  assert.equal(r.window(12_000), 12_000)
  assert.equal(r.endsAt(1_000_000), false)
  r.enterRto(50_000)
  assert.ok(r.active && !r.isFast)
  assert.equal(r.window(2000), 2000, 'after an RTO: slow start, no PRR')
  assert.equal(r.endsAt(49_999), false)
  assert.equal(r.endsAt(50_000), true)
  r.end()
  assert.equal(r.active, false)
  const st = newStreamStats()
  r.fillStats(st)
  assert.deepEqual([st.fastRetransmits, st.rtoTimeouts], [0, 1])
})

test('PRR above ssthresh: sending in proportion to delivery, ssthresh / RecoverFS', () => {
  const r = new Recovery()
  r.enterFast(20_000, 20_000) // RecoverFS 20 000; ssthresh will be 10 000
  assert.ok(r.isFast)
  r.onAck(1000, 15_000, 10_000, MSS)
  // sndcnt = ceil(1000 · 10000 / 20000) − 0 = 500, raised to one MSS for the first retransmission.
  assert.equal(r.window(99_999), 15_000 + MSS)
  r.onSent(MSS)
  r.onAck(3000, 14_000, 10_000, MSS)
  // prrDelivered 4000 → ceil(4000 · 0.5) − 1000 = 1000.
  assert.equal(r.window(99_999), 14_000 + 1000)
  r.onSent(1000)
  r.onAck(0, 14_000, 10_000, MSS)
  assert.equal(r.window(99_999), 14_000, 'nothing delivered, nothing more sent')
})

test('PRR at or below ssthresh: slow start towards it (PRR-SSRB), never beyond', () => {
  const r = new Recovery()
  r.enterFast(20_000, 20_000)
  r.onSent(MSS)
  r.onAck(4000, 6000, 10_000, MSS)
  // min(ssthresh − pipe, max(prrDelivered − prrOut, delivered) + MSS) = min(4000, 4000 + 1000).
  assert.equal(r.window(0), 6000 + 4000)
  r.onAck(500, 9800, 10_000, MSS)
  assert.equal(r.window(0), 10_000, 'capped at ssthresh − pipe')
  const st = newStreamStats()
  r.fillStats(st)
  assert.equal(st.fastRetransmits, 1)
})

test('outside fast recovery, sent bytes do not count for PRR', () => {
  const r = new Recovery()
  r.onSent(5000)
  r.enterFast(10_000, 10_000)
  r.onAck(0, 20_000, 5000, MSS)
  assert.equal(r.window(0), 20_000 + MSS, 'prrOut started at 0: the first retransmission may go')
})

test('probe timeout: 2·SRTT, + delayedAck with at most one segment in flight, at least minPto', () => {
  const p = new TailLossProbe()
  const cfg = { mss: MSS, delayedAck: 40, minPto: 2 }
  assert.equal(p.timeout(-1, 5000, cfg), -1, 'no RTT sample: no probe')
  assert.equal(p.timeout(10, 5000, cfg), 20)
  assert.equal(p.timeout(10, MSS, cfg), 60)
  assert.equal(p.timeout(0.25, 5000, cfg), 2)
})

test('a retransmitted probe acknowledged a round trip later repaired a tail loss: one congestion response', () => {
  const p = new TailLossProbe()
  p.onSent(100, 9000, true, 4000)
  assert.equal(p.outstanding, true)
  assert.equal(p.onAck(130, 8000, false, 20), -1, 'the ACK has not reached the probe yet')
  assert.equal(p.onAck(140, 9000, false, 20), 4000)
  assert.equal(p.outstanding, false)
  assert.equal(p.onAck(150, 9000, false, 20), -1, 'once')
})

test('no congestion response for a new-data probe, in recovery, or when acknowledged within min_RTT', () => {
  const p = new TailLossProbe()
  p.onSent(100, 9000, false, 4000)
  assert.equal(p.onAck(200, 9000, false, 20), -1)
  p.onSent(100, 9000, true, 4000)
  assert.equal(p.onAck(200, 9000, true, 20), -1)
  p.onSent(100, 9000, true, 4000)
  assert.equal(p.onAck(110, 9000, false, 20), -1, 'the original had arrived')
  const st = newStreamStats()
  p.fillStats(st)
  assert.equal(st.probes, 3)
})

test('a second new-data segment extends the probe; cancel and reset forget it', () => {
  const p = new TailLossProbe()
  p.onSent(0, 1000, false, 1000)
  p.extendTo(2000)
  assert.equal(p.onAck(50, 1000, false, 10), -1)
  assert.equal(p.outstanding, true, 'covers the second segment too')
  p.cancel()
  assert.equal(p.outstanding, false)
  p.due = true
  p.secondDue = true
  p.onSent(0, 1000, true, 1000)
  p.reset()
  assert.deepEqual([p.due, p.secondDue, p.outstanding], [false, false, false])
})
