/**
 * SendBuffer: written bytes until acknowledged, segment records cut from
 * them, and the scoreboard counts (SACKED, LOST) that make pipe arithmetic.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { SendBuffer } from '../../src/session/send-buffer.js'
import { newStreamStats } from '../../src/session/stream-config.js'

function pattern(n: number, from = 0): Uint8Array {
  const b = new Uint8Array(n)
  for (let i = 0; i < n; i++) b[i] = (from + i * 7) & 0xff
  return b
}

/** A buffer with `n` segments of `len` bytes cut and sent at time 0. */
function sent(n: number, len: number, maxBytes = 1 << 20): SendBuffer {
  const s = new SendBuffer(maxBytes, 1024)
  s.write(pattern(n * len), n * len)
  const out = new Uint8Array(len)
  for (let k = 0; k < n; k++) s.transmit(s.cutSegment(len), 0, out, 0)
  return s
}

test('write takes bytes up to maxBytes; offsets move as segments are cut and acknowledged', () => {
  const s = new SendBuffer(1000, 64)
  assert.equal(s.capacity, 1000)
  s.write(pattern(700), 700)
  assert.deepEqual([s.una, s.nxt, s.end, s.unsent, s.capacity], [0, 0, 700, 700, 300])
  const i = s.cutSegment(300)
  assert.deepEqual([s.nxt, s.unsent, s.outstanding, s.count], [300, 400, 300, 1])
  assert.deepEqual([s.offsetOf(i), s.lengthOf(i), s.endOf(i)], [0, 300, 300])
  s.popHead()
  s.acknowledge(300)
  assert.deepEqual([s.una, s.outstanding, s.capacity, s.count], [300, 0, 600, 0])
})

test('transmit copies the record bytes (also after the ring grew and wrapped) and counts transmissions', () => {
  const data = pattern(5000, 3)
  const s = new SendBuffer(1 << 20, 1024)
  s.write(data.subarray(0, 900), 900)
  const a = s.cutSegment(600)
  s.write(data.subarray(900), 4100) // grows the ring past its first 1024 bytes
  const b = s.cutSegment(1400)
  const out = new Uint8Array(2000)
  assert.equal(s.transmit(b, 10, out, 100), 1400)
  assert.deepEqual(out.subarray(100, 1500), data.subarray(600, 2000))
  assert.equal(s.transmit(a, 11, out, 0), 600)
  assert.deepEqual(out.subarray(0, 600), data.subarray(0, 600))
  assert.equal(s.transmit(a, 12, out, 0), 600, 'a retransmission repeats the boundaries')
  assert.deepEqual(out.subarray(0, 600), data.subarray(0, 600))
  assert.deepEqual([s.transmissions(a), s.transmissions(b), s.sentAt(a)], [2, 1, 12])
  assert.ok(s.sendOrder(a) > s.sendOrder(b), 'send order follows the last transmission')
  const st = newStreamStats()
  s.fillStats(st)
  assert.deepEqual([st.dataSegmentsSent, st.retransmits], [3, 1])
})

test('SACK and loss marks keep flight, pipe and delivered consistent', () => {
  const s = sent(4, 100)
  const [i0, i1, i2, i3] = [0, 1, 2, 3].map((k) => s.index(k)) as [number, number, number, number]
  assert.deepEqual([s.flight, s.pipe, s.delivered], [400, 400, 0])
  assert.equal(s.markSacked(i2), true)
  assert.equal(s.markSacked(i2), false, 'only once')
  s.markLost(0, i0)
  s.markLost(1, i1)
  assert.deepEqual([s.flight, s.pipe, s.delivered, s.sackedSegments, s.lostSegments], [300, 100, 100, 1, 2])
  assert.ok(s.isSacked(i2) && s.isLost(i0) && s.isInFlight(i3) && !s.isInFlight(i1))
  assert.equal(s.markSacked(i1), true, 'a lost record that turns up SACKed is no longer lost')
  assert.deepEqual([s.pipe, s.lostSegments, s.sackedSegments], [100, 1, 2])
  s.prepareRetransmit(i0)
  assert.deepEqual([s.pipe, s.lostSegments], [200, 0])
  s.popHead() // i0 acknowledged (in flight)
  s.popHead() // i1 (SACKed)
  s.acknowledge(200)
  assert.deepEqual([s.flight, s.pipe, s.delivered, s.sackedSegments], [100, 100, 300, 1])
})

test('nextLostToSend: the oldest lost record, only if pipe + its length fits the window (or nothing is in the pipe)', () => {
  const s = sent(5, 100)
  s.markLost(3, s.index(3))
  s.markLost(1, s.index(1))
  assert.equal(s.pipe, 300)
  assert.equal(s.nextLostToSend(350), -1, 'pipe 300 + 100 > 350')
  assert.equal(s.nextLostToSend(400), s.index(1))
  s.prepareRetransmit(s.index(1))
  assert.equal(s.nextLostToSend(1000), s.index(3))
  s.prepareRetransmit(s.index(3))
  assert.equal(s.nextLostToSend(1000), -1)
  s.markAllLost()
  assert.equal(s.pipe, 0)
  assert.equal(s.lostSegments, 5)
  assert.equal(s.nextLostToSend(1), s.index(0), 'with an empty pipe one record always goes')
})

test('markAllLost leaves SACKed records alone; first/last unSACKed and lowerBound', () => {
  const s = sent(6, 10)
  s.markSacked(s.index(0))
  s.markSacked(s.index(5))
  s.markAllLost()
  assert.equal(s.lostSegments, 4)
  assert.equal(s.sackedSegments, 2)
  assert.equal(s.firstUnsacked(), s.index(1))
  assert.equal(s.lastUnsacked(), s.index(4))
  assert.deepEqual([s.lowerBound(0), s.lowerBound(25), s.lowerBound(30), s.lowerBound(60)], [0, 3, 3, 6])
})

test('records keep their order when the record ring grows while wrapped', () => {
  const s = new SendBuffer(1 << 20, 4096)
  s.write(pattern(200 * 10), 200 * 10)
  for (let k = 0; k < 50; k++) s.cutSegment(10)
  for (let k = 0; k < 40; k++) s.popHead()
  s.acknowledge(400)
  for (let k = 0; k < 120; k++) s.cutSegment(10) // 130 records: wraps, then grows past 64
  assert.equal(s.count, 130)
  for (let k = 0; k < s.count; k++) assert.equal(s.offsetOf(s.index(k)), 400 + 10 * k)
})

test('a cumulative ACK inside the oldest record trims it, adjusting the marked bytes', () => {
  const s = sent(2, 100)
  s.markSacked(s.head)
  s.trimHead(40)
  assert.deepEqual([s.offsetOf(s.head), s.lengthOf(s.head)], [40, 60])
  s.acknowledge(40)
  assert.equal(s.delivered, 40 + 60)
})

test('nextLooksLikeSack: data at nxt that would parse as a SACK option', () => {
  const sack = new Uint8Array([0x53, 0x41, 0x43, 0x4b, 1, 0, 0, 0, 1, 0, 0, 0, 2])
  const s = new SendBuffer(1024, 64)
  s.write(sack, sack.length)
  assert.equal(s.nextLooksLikeSack(13), true)
  assert.equal(s.nextLooksLikeSack(12), false, 'too short for one block')
  const t = new SendBuffer(1024, 64)
  t.write(new Uint8Array([0x53, 0x41, 0x43, 0x4b, 0, 1, 2, 3, 4, 5, 6, 7, 8]), 13)
  assert.equal(t.nextLooksLikeSack(13), false, 'block count 0')
})

test('abandon drops everything unacknowledged', () => {
  const s = sent(3, 100)
  s.write(pattern(50), 50)
  s.markLost(0, s.head)
  s.abandon()
  assert.deepEqual([s.una, s.nxt, s.end, s.count, s.pipe, s.lostSegments], [350, 350, 350, 0, 0, 0])
})
