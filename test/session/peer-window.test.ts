/**
 * The Go reference's window counts segments (docs/wire.md §6.9): a pilot-tun
 * sender facing a Go peer (ISN 0) keeps no more segments in flight than Go has
 * free queue entries, reads a 0 after a small window as a full queue (probed
 * by a persist timer) and any other 0 as "unchanged"; towards everyone else
 * the window stays 4096-byte slots and 0 "no limit".
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { PeerWindow } from '../../src/session/peer-window.js'
import { StreamSender } from '../../src/session/sender.js'
import { StreamReceiver } from '../../src/session/receiver.js'
import { resolveStreamConfig } from '../../src/session/stream-config.js'

const MSS = 1402
const EMPTY = new Uint8Array(0)

function goSender(): StreamSender {
  const s = new StreamSender(resolveStreamConfig({ mss: MSS }), 1)
  s.countPeerSegments()
  return s
}

/** How many segments leave now. */
function drain(s: StreamSender, now: number): number {
  const out = new Uint8Array(MSS)
  let n = 0
  while (s.pollSegment(now, out, 0) >= 0) n++
  return n
}

test('PeerWindow: bytes mode is slots × 4096 with 0 = no limit; segment mode counts segments', () => {
  const w = new PeerWindow()
  w.update(4, true)
  assert.equal(w.bytes(MSS), 4 * 4096)
  assert.equal(w.room(10_000, 7, MSS), 4 * 4096 - 10_000)
  w.update(0, true)
  assert.equal(w.room(1e9, 1e6, MSS), Number.POSITIVE_INFINITY, 'pilot-tun never sends 0: no limit')

  const g = new PeerWindow()
  g.countSegments()
  g.update(512, true)
  assert.equal(g.bytes(MSS), 512 * MSS)
  assert.equal(g.room(0, 510, MSS), 2 * MSS, 'two free queue entries: two segments, whatever their size')
  assert.equal(g.room(0, 512, MSS), 0)
  g.update(0, false)
  assert.equal(g.closed, false, "a 0 on an idle connection's empty ACK (Go's keepalive) changes nothing")
  assert.equal(g.lastSlots, 512)
  g.update(44, true)
  g.update(0, true)
  assert.equal(g.closed, true, 'a 0 about our data: the queue is full, even right after 44 free entries')
  assert.equal(g.room(0, 0, MSS), 0)
  g.update(3, true)
  assert.equal(g.closed, false)
})

test('towards a Go peer at MSS 1402 no more segments are in flight than it has free queue entries', () => {
  const s = goSender()
  s.setPeerWindow(512)
  s.write(new Uint8Array(1 << 20))
  // Grow cwnd well past the window: acknowledge everything a few times while the queue stays empty.
  let now = 0
  let sent = 0
  for (let round = 0; round < 12; round++) {
    sent += drain(s, now)
    now += 1
    s.onAck(now, sent * MSS, 512, EMPTY, 0)
  }
  // The application stops reading: the queue fills. 20 free entries, nothing in flight.
  s.onAck(now, sent * MSS, 20, EMPTY, 0)
  assert.equal(drain(s, now), 20, 'exactly the free entries (bytes would have allowed 58 segments)')
  s.onAck(now + 1, (sent + 20) * MSS, 0, EMPTY, 0)
  assert.equal(drain(s, now + 1), 0, 'full queue: nothing, also not "no limit"')
})

test('a Go window that falls from 40 to 0 in one ACK (a filled hole releases held segments) stops new data', () => {
  const s = goSender()
  s.setPeerWindow(512)
  s.write(new Uint8Array(1000 * MSS))
  let now = 0
  let sent = 0
  for (let round = 0; round < 18; round++) {
    sent += drain(s, now)
    now += 1
    s.onAck(now, sent * MSS, 512, EMPTY, 0)
  }
  s.onAck(now, sent * MSS, 40, EMPTY, 0)
  assert.equal(drain(s, now), 40)
  // The retransmission filled a hole: Go queued all 40 at once and reports a full queue.
  s.onAck(now + 1, (sent + 40) * MSS, 0, EMPTY, 0)
  assert.equal(drain(s, now + 1), 0, 'not "no limit", and not the 40 of before')
})

test('a closed Go window is probed by one segment after the persist timeout, and reopens on the next window', () => {
  const s = goSender()
  s.setPeerWindow(4)
  s.write(new Uint8Array(100 * MSS))
  assert.equal(drain(s, 0), 4)
  s.onAck(10, 4 * MSS, 0, EMPTY, 0)
  assert.equal(drain(s, 10), 0)
  const deadline = s.nextDeadline()
  assert.ok(Number.isFinite(deadline), 'a persist timer is armed')
  s.handleTimeout(deadline)
  assert.equal(drain(s, deadline), 1, 'one probe segment')
  s.onAck(deadline + 5, 5 * MSS, 0, EMPTY, 0)
  assert.equal(drain(s, deadline + 5), 0, 'still full')
  const second = s.nextDeadline()
  assert.ok(second - (deadline + 5) > deadline - 10, 'the persist timeout doubles')
  s.onAck(second, 5 * MSS, 6, EMPTY, 0)
  assert.equal(drain(s, second), 6, 'the window reopened')
})

test('a pilot-tun peer keeps the 4096-byte reading: 4 slots take 11 segments of 1402 bytes', () => {
  const s = new StreamSender(resolveStreamConfig({ mss: MSS }), 1)
  s.setPeerWindow(4)
  s.write(new Uint8Array(100 * MSS))
  assert.equal(drain(s, 0), 10, 'the initial congestion window')
  s.onAck(1, 10 * MSS, 4, EMPTY, 0)
  assert.equal(drain(s, 1), 11, '16,384 bytes take 11 segments of 1402 (cwnd would allow 12)')
})

test('short segments are acknowledged at once: below 4096 from a Go peer, below the largest seen from others', () => {
  const cfg = resolveStreamConfig({ mss: MSS, delayedAck: 40 })
  const go = new StreamReceiver(cfg)
  go.start(0)
  go.peerIsGo()
  go.onData(0, 1, new Uint8Array(4096))
  assert.equal(go.ackNow, false, 'a full Go segment waits for a second one or 40 ms')
  go.onData(1, 1 + 4096, new Uint8Array(1402))
  assert.equal(go.ackNow, true)
  go.ackSent()
  go.onData(2, 1 + 4096 + 1402, new Uint8Array(1402))
  assert.equal(go.ackNow, true, "Go's Nagle holds its next segment until this one is acknowledged")

  const pt = new StreamReceiver(cfg)
  pt.start(1000)
  pt.onData(0, 1001, new Uint8Array(MSS))
  assert.equal(pt.ackNow, false, 'a full segment from a pilot-tun peer: delayed ACK')
  pt.onData(1, 1001 + MSS, new Uint8Array(MSS))
  assert.equal(pt.ackNow, true, 'the second one')
  pt.ackSent()
  pt.onData(2, 1001 + 2 * MSS, new Uint8Array(MSS))
  assert.equal(pt.ackNow, false)
  pt.ackSent()
  pt.onData(3, 1001 + 3 * MSS, new Uint8Array(100))
  assert.equal(pt.ackNow, true, 'the short tail of a burst')
})
