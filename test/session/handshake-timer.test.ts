/** Handshake: SYN retransmission with backoff, bounded by the connect timeout; the RTT sample. */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Handshake, HandshakeTimeout } from '../../src/session/handshake.js'

const cfg = { synInitialRto: 1000, synMaxRto: 4000, connectTimeout: 10_000 }

test('the SYN is due at once; sending arms the retransmission timer', () => {
  const h = new Handshake(cfg, 100)
  assert.equal(h.due, true)
  assert.equal(h.nextDeadline, Number.POSITIVE_INFINITY)
  h.sent(100, true)
  assert.deepEqual([h.due, h.transmissions, h.nextDeadline], [false, 1, 1100])
  assert.equal(h.handleTimeout(1099), HandshakeTimeout.None)
})

test('retransmissions back off (doubling to synMaxRto) and never sleep past the connect deadline', () => {
  const h = new Handshake(cfg, 0)
  h.sent(0, true)
  const deadlines: number[] = []
  let now = h.nextDeadline
  for (;;) {
    const r = h.handleTimeout(now)
    if (r === HandshakeTimeout.Expired) break
    assert.equal(r, HandshakeTimeout.Retransmit)
    assert.equal(h.due, true)
    h.sent(now, true)
    deadlines.push(h.nextDeadline)
    now = h.nextDeadline
  }
  assert.deepEqual(deadlines, [3000, 7000, 10_000])
  assert.equal(now, 10_000)
  assert.equal(h.transmissions, 4)
})

test('the handshake RTT counts only when the SYN left once (Karn)', () => {
  const once = new Handshake(cfg, 100)
  once.sent(100, true)
  assert.equal(once.complete(130), 30)
  assert.deepEqual([once.due, once.nextDeadline], [false, Number.POSITIVE_INFINITY])
  const twice = new Handshake(cfg, 100)
  twice.sent(100, true)
  twice.handleTimeout(1100)
  twice.sent(1100, true)
  assert.equal(twice.complete(1130), -1)
})

test('after opening, a repeated SYN asks for the SYN|ACK again without arming a timer', () => {
  const h = new Handshake(cfg, 0)
  h.sent(0, true)
  h.complete(20)
  h.request()
  assert.equal(h.due, true)
  h.sent(500, false)
  assert.deepEqual([h.due, h.transmissions, h.nextDeadline], [false, 1, Number.POSITIVE_INFINITY])
})
