// The send queue (send-queue.ts): per-peer and per-tunnel bounds, copies, and take/delete.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { SendQueue } from '../../src/tunnel/send-queue.js'

const p = (n: number): Uint8Array => Uint8Array.of(n)
const values = (q: Uint8Array[] | undefined): number[] => (q ?? []).map((b) => b[0]!)

test('packets come out oldest first, and take empties the queue', () => {
  const q = new SendQueue(8, 8)
  for (let i = 0; i < 3; i++) assert.equal(q.push(5, p(i)), null)
  assert.equal(q.size(5), 3)
  assert.equal(q.has(5), true)
  assert.deepEqual(values(q.take(5)), [0, 1, 2])
  assert.equal(q.size(5), 0)
  assert.equal(q.has(5), false)
  assert.equal(q.take(5), undefined)
})

test('a full peer queue drops its oldest packet to make room (queue-overflow)', () => {
  const q = new SendQueue(3, 8)
  for (let i = 0; i < 3; i++) assert.equal(q.push(5, p(i)), null)
  assert.equal(q.push(5, p(3)), 'queue-overflow')
  assert.equal(q.push(5, p(4)), 'queue-overflow')
  assert.deepEqual(values(q.take(5)), [2, 3, 4])
})

test('while maxPeers others hold queues, a new peer gets none (queue-limit); its packet is not kept', () => {
  const q = new SendQueue(4, 2)
  assert.equal(q.push(1, p(1)), null)
  assert.equal(q.push(2, p(2)), null)
  assert.equal(q.push(3, p(3)), 'queue-limit')
  assert.equal(q.has(3), false)
  assert.equal(q.peers, 2)
  // Peers that already hold a queue may still add to it.
  assert.equal(q.push(1, p(11)), null)
  // A flushed or forgotten peer frees its slot.
  q.take(1)
  assert.equal(q.push(3, p(3)), null)
  q.delete(2)
  assert.equal(q.peers, 1)
  assert.equal(q.push(4, p(4)), null)
  assert.deepEqual(values(q.take(3)), [3])
  assert.deepEqual(values(q.take(4)), [4])
})

test('queued packets are copies: the caller may reuse its buffer', () => {
  const q = new SendQueue(4, 4)
  const buf = Uint8Array.of(1, 2, 3)
  q.push(9, buf)
  buf.fill(0)
  assert.deepEqual([...q.take(9)![0]!], [1, 2, 3])
})

test('clear drops every queue', () => {
  const q = new SendQueue(4, 4)
  q.push(1, p(1))
  q.push(2, p(2))
  q.clear()
  assert.equal(q.peers, 0)
  assert.equal(q.size(1), 0)
})
