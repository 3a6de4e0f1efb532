// Token buckets (token-bucket.ts): a burst, a continuous refill, and a bounded table of them.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { KeyedTokenBuckets, TokenBucket } from '../../src/tunnel/token-bucket.js'

test('a bucket starts full, spends one token per take, refills continuously and never above its burst', () => {
  const b = new TokenBucket(3, 2)
  assert.deepEqual([b.take(0), b.take(0), b.take(0), b.take(0)], [true, true, true, false])
  assert.equal(b.take(499), false, 'just under half a second: not a whole token yet')
  assert.equal(b.take(500), true, 'one token per 500 ms at 2/s')
  assert.equal(b.take(500), false)
  const takes = [10_000, 10_000, 10_000, 10_000].map((t) => b.take(t))
  assert.deepEqual(takes, [true, true, true, false], 'a long pause refills to the burst only')
})

test('a clock that goes backwards refills nothing', () => {
  const b = new TokenBucket(1, 1)
  assert.equal(b.take(5_000), true)
  assert.equal(b.take(1_000), false)
  assert.equal(b.take(5_999), false)
  assert.equal(b.take(6_999), true)
})

test('keyed buckets: one per key, at most maxKeys, the least recently used forgotten first', () => {
  const k = new KeyedTokenBuckets(1, 1, 2)
  assert.equal(k.take('a', 0), true)
  assert.equal(k.take('a', 0), false)
  assert.equal(k.take('b', 0), true)
  assert.equal(k.take('a', 0), false) // a is now the most recently used
  assert.equal(k.take('c', 0), true) // b goes
  assert.equal(k.size, 2)
  assert.equal(k.take('a', 0), false, 'a was kept, still empty')
  assert.equal(k.take('b', 0), true, 'b was forgotten: a fresh bucket')
})
