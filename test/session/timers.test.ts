/** TimerTable (deadlines by kind) and EventQueue (the connection's pending events). */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { TimerTable } from '../../src/session/timers.js'
import { EventQueue } from '../../src/session/event-queue.js'
import { StreamEvent } from '../../src/session/stream-config.js'

test('the earliest armed deadline; expire stops a due timer only', () => {
  const t = new TimerTable(3)
  assert.equal(t.earliest(), Number.POSITIVE_INFINITY)
  t.set(0, 50)
  t.set(2, 20)
  assert.equal(t.earliest(), 20)
  assert.equal(t.expire(0, 30), false)
  assert.equal(t.expire(2, 20), true)
  assert.equal(t.isSet(2), false)
  assert.equal(t.earliest(), 50)
  t.setIfUnset(0, 10)
  assert.equal(t.get(0), 50, 'an armed timer keeps its deadline')
  t.setIfUnset(1, 10)
  assert.equal(t.get(1), 10)
  t.stop(1)
  assert.equal(t.isSet(1), false)
  t.stopAll()
  assert.equal(t.earliest(), Number.POSITIVE_INFINITY)
})

test('events come out in order; Readable is queued once until read() drains', () => {
  const q = new EventQueue()
  assert.equal(q.pop(), StreamEvent.None)
  q.push(StreamEvent.Connected)
  q.pushReadable()
  q.pushReadable()
  q.push(StreamEvent.Writable)
  assert.deepEqual([q.pop(), q.pop(), q.pop(), q.pop()], [StreamEvent.Connected, StreamEvent.Readable, StreamEvent.Writable, StreamEvent.None])
  q.pushReadable()
  assert.equal(q.pop(), StreamEvent.None, 'still signalled: the application has not drained it')
  q.readableDrained()
  q.pushReadable()
  assert.equal(q.pop(), StreamEvent.Readable)
})

test('an unread backlog is capped at 64 events', () => {
  const q = new EventQueue()
  for (let i = 0; i < 100; i++) q.push(StreamEvent.Writable)
  let n = 0
  while (q.pop() !== StreamEvent.None) n++
  assert.equal(n, 64)
})
