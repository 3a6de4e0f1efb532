/** ConnectionGuard without sockets: per-source slots, frame deadlines and the partial-frame budget. */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { ConnectionGuard } from '../../src/registry/connection-guard.js'

const LIMITS = { maxConnectionsPerIp: 2, frameDeadlineMs: 1000, maxBufferedFrameBytes: 100 }

test('per-source slots: a source gets at most its maximum, other sources are independent, removal frees a slot once', () => {
  const guard = new ConnectionGuard<string>(LIMITS)
  const a1 = guard.admit('10.0.0.1', 'a1')
  const a2 = guard.admit('10.0.0.1', 'a2')
  assert.ok(a1 !== null && a2 !== null)
  assert.equal(guard.admit('10.0.0.1', 'a3'), null)
  assert.notEqual(guard.admit('10.0.0.2', 'b1'), null)
  guard.remove(a1)
  guard.remove(a1) // idempotent: does not free a second slot
  assert.notEqual(guard.admit('10.0.0.1', 'a4'), null)
  assert.equal(guard.admit('10.0.0.1', 'a5'), null)
})

test('frame deadline: counted from the first byte of the frame still pending, reset when a frame completes', () => {
  const guard = new ConnectionGuard<string>(LIMITS)
  const c = guard.admit('10.0.0.1', 'c')!
  guard.afterChunk(c, 3, false, 100) // first bytes of a frame
  guard.afterChunk(c, 10, false, 900) // more of the same frame: the clock does not restart
  assert.equal(c.frameStartedAt, 100)
  assert.deepEqual(guard.overdue(1099), [])
  guard.afterChunk(c, 4, true, 1050) // a frame ended and the next one began in this chunk
  assert.equal(c.frameStartedAt, 1050)
  assert.deepEqual(guard.overdue(2000), [])
  guard.afterChunk(c, 0, true, 1100) // nothing pending: no deadline at all
  assert.equal(c.frameStartedAt, -1)
  assert.deepEqual(guard.overdue(1_000_000), [])
  guard.afterChunk(c, 1, false, 5000)
  const late = guard.overdue(6000)
  assert.deepEqual(late.map((x) => x.handle), ['c'])
  assert.equal(c.counted, false)
  assert.equal(guard.bufferedBytes, 0)
  assert.notEqual(guard.admit('10.0.0.1', 'd'), null, 'the overdue connection gave its slot back')
})

test('budget: past the total, the largest holders are closed until it fits; a tie goes to the connection that grew', () => {
  const guard = new ConnectionGuard<string>({ ...LIMITS, maxConnectionsPerIp: 10 })
  const small = guard.admit('10.0.0.1', 'small')!
  const big = guard.admit('10.0.0.2', 'big')!
  const mid = guard.admit('10.0.0.3', 'mid')!
  assert.deepEqual(guard.afterChunk(small, 4, false, 0), [])
  assert.deepEqual(guard.afterChunk(big, 60, false, 0), [])
  assert.deepEqual(guard.afterChunk(mid, 30, false, 0), [])
  assert.equal(guard.bufferedBytes, 94)
  // mid grows to 50: 114 > 100, and big (60) holds the most.
  assert.deepEqual(guard.afterChunk(mid, 50, false, 0).map((c) => c.handle), ['big'])
  assert.equal(guard.bufferedBytes, 54)
  const twin = guard.admit('10.0.0.4', 'twin')!
  assert.deepEqual(guard.afterChunk(twin, 50, false, 0).map((c) => c.handle), ['twin'])
  assert.equal(guard.bufferedBytes, 54)
  assert.deepEqual(guard.afterChunk(twin, 10, false, 0), [], 'a removed connection is no longer counted')
  guard.remove(mid)
  assert.equal(guard.bufferedBytes, 4)
  assert.equal(small.counted, true)
})

test('the deadline check runs at a quarter of the deadline, between 10 ms and 1 s', () => {
  assert.equal(new ConnectionGuard({ ...LIMITS, frameDeadlineMs: 10_000 }).checkIntervalMs, 1000)
  assert.equal(new ConnectionGuard({ ...LIMITS, frameDeadlineMs: 400 }).checkIntervalMs, 100)
  assert.equal(new ConnectionGuard({ ...LIMITS, frameDeadlineMs: 5 }).checkIntervalMs, 10)
})
