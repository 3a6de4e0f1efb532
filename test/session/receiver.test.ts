/** StreamReceiver on its own: the ACK schedule, SACK, a FIN that overtakes data, window updates. */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { StreamReceiver } from '../../src/session/receiver.js'
import { newStreamStats, resolveStreamConfig } from '../../src/session/stream-config.js'
import { decodeSack } from '../../src/protocol/sack.js'

const PEER_ISN = 0xffff_ff80
const seqAt = (off: number): number => (PEER_ISN + 1 + off) >>> 0

function receiver(receiveBufferSize = 16 * 4096): StreamReceiver {
  const r = new StreamReceiver(resolveStreamConfig({ mss: 1000, delayedAck: 40, receiveBufferSize }))
  r.start(PEER_ISN)
  return r
}

const seg = (n: number): Uint8Array => new Uint8Array(n).fill(n & 0xff)

test('every second in-order segment is acknowledged at once, a lone one after delayedAck', () => {
  const r = receiver()
  assert.equal(r.ackSeq, seqAt(0))
  assert.equal(r.onData(100, seqAt(0), seg(100)), true)
  assert.deepEqual([r.ackNow, r.deadline], [false, 140])
  assert.equal(r.onData(110, seqAt(100), seg(100)), true)
  assert.equal(r.ackNow, true)
  r.ackSent()
  assert.deepEqual([r.ackNow, r.deadline, r.ackSeq], [false, Number.POSITIVE_INFINITY, seqAt(200)])
  r.onData(200, seqAt(200), seg(100))
  r.handleTimeout(239)
  assert.equal(r.ackNow, false)
  r.handleTimeout(240)
  assert.equal(r.ackNow, true, 'the delayed ACK')
})

test('out of order: an immediate ACK with SACK blocks; a duplicate also gets one at once', () => {
  const r = receiver()
  assert.equal(r.onData(0, seqAt(500), seg(100)), false)
  assert.equal(r.ackNow, true)
  const out = new Uint8Array(64)
  const n = r.writeSack(out, 0)
  assert.deepEqual(decodeSack(out.subarray(0, n)), [{ left: seqAt(500), right: seqAt(600) }])
  r.ackSent()
  assert.equal(r.onData(1, seqAt(0), seg(500)), true)
  assert.equal(r.ackNow, true, 'the gap filled')
  r.ackSent()
  assert.equal(r.onData(2, seqAt(0), seg(100)), false)
  assert.equal(r.ackNow, true)
  const st = newStreamStats()
  r.fillStats(st)
  assert.deepEqual([st.dataSegmentsReceived, st.outOfOrderSegments, st.duplicateSegments], [3, 1, 1])
})

test('a FIN that overtakes its data waits for the gap; the ACK then covers the FIN', () => {
  const r = receiver()
  r.onData(0, seqAt(0), seg(100))
  assert.equal(r.onFin(seqAt(300), false), false, 'data before it is missing')
  assert.equal(r.ackNow, true)
  r.onData(1, seqAt(200), seg(150)) // 50 bytes beyond the FIN
  assert.equal(r.complete, false)
  assert.equal(r.onData(2, seqAt(100), seg(100)), true)
  assert.equal(r.complete, true)
  r.finish()
  assert.deepEqual([r.finished, r.readable, r.ackSeq], [true, 300, seqAt(301)])
  assert.equal(r.read(new Uint8Array(1000)), 300)
  assert.equal(r.read(new Uint8Array(1000)), -1)
  assert.equal(receiver().onFin(seqAt(0), false), true, 'a FIN at the next expected byte completes at once')
  assert.equal(receiver().onFin(seqAt(50), true), true, 'a FIN|ACK is taken where it stands')
})

test('a window update is due when a nearly closed window reopens by two slots', () => {
  const r = receiver(8 * 4096)
  for (let off = 0; off < 8 * 4096; off += 1000) r.onData(0, seqAt(off), seg(Math.min(1000, 8 * 4096 - off)))
  assert.equal(r.window(), 1)
  r.advertised(1)
  r.read(new Uint8Array(2 * 4096))
  assert.equal(r.window(), 2)
  assert.equal(r.windowReopened(), false, 'one slot more than advertised is not worth an ACK')
  r.read(new Uint8Array(4096))
  assert.equal(r.windowReopened(), true)
  r.advertised(5)
  assert.equal(r.windowReopened(), false, 'the last advertisement was at least half the buffer')
})

test('stop: no delayed ACK any more; when closing, no ACK at all', () => {
  const r = receiver()
  r.onData(0, seqAt(0), seg(10))
  r.requestAck()
  r.stop(false)
  assert.deepEqual([r.deadline, r.ackNow], [Number.POSITIVE_INFINITY, true])
  r.stop(true)
  assert.equal(r.ackNow, false)
  r.abort()
  assert.equal(r.finished, true)
})
