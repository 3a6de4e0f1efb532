/**
 * ReceiveAssembler: segments placed at their offsets in or out of order, the
 * out-of-order ranges and their SACK blocks, the advertised window.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Accepted, ReceiveAssembler } from '../../src/session/receive-assembler.js'
import { newStreamStats } from '../../src/session/stream-config.js'
import { decodeSack } from '../../src/protocol/sack.js'

const cfg = { receiveBufferSize: 16 * 4096, mss: 1000, maxOutOfOrderRanges: 3 }

function data(off: number, n: number): Uint8Array {
  const b = new Uint8Array(n)
  for (let i = 0; i < n; i++) b[i] = ((off + i) * 13) & 0xff
  return b
}

function readAll(a: ReceiveAssembler): Uint8Array {
  const out = new Uint8Array(a.readable)
  assert.equal(a.read(out), out.length)
  return out
}

test('in order, out of order, then the gap filled: the bytes come out in order', () => {
  const a = new ReceiveAssembler(cfg)
  assert.equal(a.accept(0, data(0, 100), -1), Accepted.InOrder)
  assert.equal(a.accept(200, data(200, 100), -1), Accepted.OutOfOrder)
  assert.equal(a.accept(400, data(400, 50), -1), Accepted.OutOfOrder)
  assert.deepEqual([a.nxt, a.readable, a.hasOutOfOrder], [100, 100, true])
  assert.equal(a.accept(100, data(100, 100), -1), Accepted.FilledGap)
  assert.deepEqual([a.nxt, a.hasOutOfOrder], [300, true])
  assert.equal(a.accept(300, data(300, 100), -1), Accepted.FilledGap)
  assert.deepEqual([a.nxt, a.hasOutOfOrder], [450, false])
  assert.deepEqual(readAll(a), data(0, 450))
})

test('duplicates are recognised; a partly new segment is trimmed to its new bytes', () => {
  const a = new ReceiveAssembler(cfg)
  a.accept(0, data(0, 100), -1)
  assert.equal(a.accept(50, data(50, 50), -1), Accepted.Duplicate)
  assert.equal(a.accept(50, data(50, 100), -1), Accepted.InOrder)
  assert.equal(a.nxt, 150)
  assert.deepEqual(readAll(a), data(0, 150))
})

test('the end of the stream cuts a segment; one wholly beyond it is refused', () => {
  const a = new ReceiveAssembler(cfg)
  assert.equal(a.accept(0, data(0, 100), 60), Accepted.InOrder)
  assert.equal(a.nxt, 60)
  assert.equal(a.accept(60, data(60, 10), 60), Accepted.BeyondEnd)
  assert.ok(!a.canEndAt(60) && !a.canEndAt(50))
  assert.ok(a.canEndAt(61))
})

test('no space: beyond the hard limit (buffer + one slot + one segment), or too many ranges', () => {
  const a = new ReceiveAssembler(cfg)
  const hard = cfg.receiveBufferSize + 4096 + cfg.mss
  assert.equal(a.accept(hard - 10, data(hard - 10, 10), -1), Accepted.OutOfOrder)
  assert.equal(a.accept(hard - 10, data(hard - 10, 11), -1), Accepted.NoSpace)
  assert.equal(a.accept(1000, data(1000, 10), -1), Accepted.OutOfOrder)
  assert.equal(a.accept(2000, data(2000, 10), -1), Accepted.OutOfOrder)
  assert.equal(a.accept(3000, data(3000, 10), -1), Accepted.NoSpace, 'a fourth range')
  assert.equal(a.accept(1010, data(1010, 10), -1), Accepted.OutOfOrder, 'extending a range is fine')
  const st = newStreamStats()
  a.fillStats(st)
  assert.deepEqual([st.dataSegmentsReceived, st.outOfOrderSegments, st.droppedNoSpace, st.duplicateSegments], [6, 4, 2, 0])
})

test('overlapping and touching ranges merge', () => {
  const a = new ReceiveAssembler({ ...cfg, maxOutOfOrderRanges: 2 })
  a.accept(100, data(100, 10), -1)
  a.accept(200, data(200, 10), -1)
  assert.equal(a.accept(110, data(110, 90), -1), Accepted.OutOfOrder, 'joins both ranges into one')
  assert.equal(a.accept(300, data(300, 10), -1), Accepted.OutOfOrder, 'so there is room for another')
  assert.equal(a.accept(0, data(0, 100), -1), Accepted.FilledGap)
  assert.equal(a.nxt, 210)
})

test('SACK blocks: the lowest four ranges as sequence numbers, across the 2^32 wrap', () => {
  const a = new ReceiveAssembler({ ...cfg, maxOutOfOrderRanges: 8 })
  const isn = 0xffff_ff00
  assert.equal(a.writeSack(new Uint8Array(64), 0, isn), 0, 'no ranges, no option')
  for (const off of [100, 300, 500, 700, 900]) a.accept(off, data(off, 50), -1)
  const out = new Uint8Array(64)
  const n = a.writeSack(out, 4, isn)
  const blocks = decodeSack(out.subarray(4, 4 + n))
  assert.ok(blocks !== null)
  assert.deepEqual(
    blocks.map((b) => [b.left, b.right]),
    [100, 300, 500, 700].map((o) => [(isn + o) >>> 0, (isn + o + 50) >>> 0]),
  )
  assert.equal(a.offsetOf((isn + 300) >>> 0, isn), 300)
  assert.equal(a.offsetOf((isn - 5) >>> 0, isn), -5)
})

test('window: free slots of the buffer, never 0, reopening as the application reads', () => {
  const a = new ReceiveAssembler(cfg)
  assert.equal(a.window(), 16)
  assert.equal(a.maxWindow, 16)
  for (let off = 0; off < 16 * 4096; off += 1000) a.accept(off, data(off, Math.min(1000, 16 * 4096 - off)), -1)
  assert.equal(a.window(), 1, 'full, but 0 would mean "no limit"')
  const into = new Uint8Array(3 * 4096)
  a.read(into)
  assert.equal(a.window(), 3)
})

test('the ring grows with out-of-order data in it and keeps every byte', () => {
  const a = new ReceiveAssembler({ receiveBufferSize: 64 * 4096, mss: 4096, maxOutOfOrderRanges: 64 })
  const total = 200_000 // beyond the initial 64 KiB ring
  for (let off = 4096; off < total; off += 4096) a.accept(off, data(off, Math.min(4096, total - off)), -1)
  assert.equal(a.accept(0, data(0, 4096), -1), Accepted.FilledGap)
  assert.equal(a.nxt, total)
  assert.deepEqual(readAll(a), data(0, total))
})

test('endAt: data received beyond the end of the stream is not read', () => {
  const a = new ReceiveAssembler(cfg)
  a.accept(100, data(100, 100), -1)
  a.accept(0, data(0, 100), -1)
  a.endAt(150)
  assert.equal(a.readable, 150)
  a.clearOutOfOrder()
  assert.equal(a.hasOutOfOrder, false)
})
