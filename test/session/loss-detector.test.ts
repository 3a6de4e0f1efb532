/**
 * LossDetector over a SendBuffer: delivery by cumulative ACK and SACK, RACK
 * loss marking with its reordering window, spurious retransmissions, and
 * three duplicate ACKs.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { LossDetector } from '../../src/session/loss-detector.js'
import { SendBuffer } from '../../src/session/send-buffer.js'
import { newStreamStats } from '../../src/session/stream-config.js'

const LEN = 100
const ISN = 0xffff_fff0 // SACK sequence numbers wrap

/** `times[k]` = when segment k left (one segment each, in order). */
function sentAt(times: number[]): SendBuffer {
  const s = new SendBuffer(1 << 20, 4096)
  s.write(new Uint8Array(times.length * LEN), times.length * LEN)
  const out = new Uint8Array(LEN)
  for (const t of times) s.transmit(s.cutSegment(LEN), t, out, 0)
  return s
}

/** SACK segments [from, to) as one block. */
function sack(d: LossDetector, now: number, s: SendBuffer, from: number, to: number): void {
  const pairs = new Uint32Array(8)
  pairs[0] = (ISN + from * LEN) >>> 0
  pairs[1] = (ISN + to * LEN) >>> 0
  d.onSack(now, s, pairs, 1, (ISN + s.una) >>> 0)
}

function stats(d: LossDetector) {
  const st = newStreamStats()
  d.fillStats(st)
  return { lost: st.lostSegments, spurious: st.spuriousRetransmits }
}

test('a cumulative ACK pops what it covers and samples the RTT of the newest segment sent once', () => {
  const s = sentAt([0, 1, 2, 3])
  const d = new LossDetector()
  assert.equal(d.onCumulativeAck(40, s, 2 * LEN), 39)
  assert.deepEqual([s.una, s.count], [200, 2])
  assert.equal(d.minRtt, 39)
  // Segment 2 again (a retransmission): Karn, no sample from it.
  s.transmit(s.head, 50, new Uint8Array(LEN), 0)
  assert.equal(d.onCumulativeAck(90, s, 3 * LEN), -1)
  assert.equal(d.onCumulativeAck(91, s, 3 * LEN + 50), -1, 'a partial ACK trims the record')
  assert.deepEqual([s.una, s.count, s.lengthOf(s.head)], [350, 1, 50])
})

test('SACK marks whole records inside a block and ignores blocks outside [una, nxt)', () => {
  const s = sentAt([0, 0, 0, 0, 0])
  const d = new LossDetector()
  sack(d, 30, s, 2, 4)
  assert.equal(s.sackedSegments, 2)
  sack(d, 30, s, 3, 9)
  assert.equal(s.sackedSegments, 2, 'a block beyond nxt is ignored')
  assert.ok(s.isSacked(s.index(2)) && s.isSacked(s.index(3)) && !s.isSacked(s.index(4)))
})

test('RACK: a segment sent before a delivered one is lost once RACK.rtt + reo_wnd has passed since it left', () => {
  // 0 and 1 leave at t=0, 2 at t=10; 2 is SACKed at t=40 (RACK.rtt 30).
  const s = sentAt([0, 0, 10])
  const d = new LossDetector()
  sack(d, 40, s, 2, 3)
  // One SACKed segment and no reordering seen: reo_wnd = min_RTT/4 = 7.5.
  assert.equal(d.reorderWindow(30, false, s.sackedSegments), 7.5)
  const wait = d.detectLosses(30, s, 30, false) // not yet: 0 + 30 + 7.5 > 30
  assert.equal(wait, 7.5)
  assert.equal(s.lostSegments, 0)
  assert.equal(d.detectLosses(37.5, s, 30, false), 0)
  assert.equal(s.lostSegments, 2)
  assert.equal(stats(d).lost, 2)
})

test('RACK judges nothing above the highest delivered byte and nothing sent after the RACK segment', () => {
  const s = sentAt([0, 0, 0, 0])
  const d = new LossDetector()
  sack(d, 50, s, 1, 2)
  d.detectLosses(1000, s, 50, true) // in recovery: reo_wnd 0
  assert.ok(s.isLost(s.index(0)), 'below the SACKed segment')
  assert.ok(!s.isLost(s.index(2)) && !s.isLost(s.index(3)), 'above it the SACK may not have mentioned them')
  assert.equal(d.detectLosses(1000, new SendBuffer(1024, 64), 50, false), 0, 'nothing delivered yet: no RACK segment')
})

test('reo_wnd: 0 in recovery or with three SACKed segments, until reordering is seen', () => {
  const s = sentAt([0, 0, 0, 0, 0])
  const d = new LossDetector()
  sack(d, 40, s, 2, 5)
  assert.equal(d.reorderWindow(40, false, s.sackedSegments), 0)
  assert.equal(d.reorderWindow(40, true, 0), 0)
  // Segment 0 (sent once) is delivered after segment 4 that was sent after it: reordering.
  d.onCumulativeAck(41, s, LEN)
  assert.equal(d.reorderWindow(40, true, s.sackedSegments), 40 / 4)
})

test('a retransmission acknowledged sooner than min_RTT is spurious and widens the reordering window', () => {
  const s = sentAt([0, 0, 0])
  const d = new LossDetector()
  d.onCumulativeAck(40, s, LEN) // min_RTT 40
  const base = d.reorderWindow(40, false, 0)
  s.transmit(s.head, 100, new Uint8Array(LEN), 0) // segment 1 again at t=100
  d.onCumulativeAck(110, s, 2 * LEN) // 10 ms later: the original had arrived
  assert.equal(stats(d).spurious, 1)
  assert.equal(d.reorderWindow(40, true, 0), 2 * base, 'reo_wnd doubled, and no longer 0 in recovery')
  for (let i = 0; i < 16; i++) d.onRecoveryEnd()
  assert.equal(d.reorderWindow(40, false, 0), base, 'after 16 recovery episodes it shrinks back')
})

test('three duplicate ACKs outside recovery mark the head lost', () => {
  const s = sentAt([0, 0])
  const d = new LossDetector()
  d.onDuplicateAck()
  d.onDuplicateAck()
  d.applyDuplicateAcks(s, false)
  assert.equal(s.lostSegments, 0)
  d.onDuplicateAck()
  d.applyDuplicateAcks(s, true)
  assert.equal(s.lostSegments, 0, 'not during recovery')
  d.applyDuplicateAcks(s, false)
  assert.ok(s.isLost(s.head))
  d.onRto()
  d.onDuplicateAck()
  s.prepareRetransmit(s.head)
  d.applyDuplicateAcks(s, false)
  assert.equal(s.lostSegments, 0, 'the count starts again after an RTO')
})

test('the handshake RTT counts towards min_RTT', () => {
  const d = new LossDetector()
  assert.equal(d.minRtt, Number.POSITIVE_INFINITY)
  d.observeRtt(12)
  d.observeRtt(20)
  assert.equal(d.minRtt, 12)
})
