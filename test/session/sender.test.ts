/**
 * StreamSender on its own: what it sends, in which order, and what ACKs,
 * SACKs and timeouts do to it, without a peer.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { AckOutcome, StreamSender } from '../../src/session/sender.js'
import { newStreamStats, resolveStreamConfig, type StreamConfig } from '../../src/session/stream-config.js'
import { encodeSack } from '../../src/protocol/sack.js'

const ISN = 0xffff_fc00 // data offset 0; sequence numbers wrap during the tests
const MSS = 1000

function sender(cfg: Partial<StreamConfig> = {}): StreamSender {
  return new StreamSender(resolveStreamConfig({ mss: MSS, ...cfg }), ISN)
}

function bytes(n: number): Uint8Array {
  const b = new Uint8Array(n)
  for (let i = 0; i < n; i++) b[i] = (i * 31 + 7) & 0xff
  return b
}

/** Every segment pollSegment() gives now: [offset, length] pairs. */
function drain(s: StreamSender, now: number): Array<[number, number]> {
  const out = new Uint8Array(MSS)
  const got: Array<[number, number]> = []
  for (;;) {
    const n = s.pollSegment(now, out, 0)
    if (n < 0) return got
    got.push([(s.segmentSeq - ISN) >>> 0, n])
  }
}

const seqAt = (off: number): number => (ISN + off) >>> 0
const stats = (s: StreamSender) => {
  const st = newStreamStats()
  s.fillStats(st)
  return st
}

test('segments carry the written bytes at their sequence numbers; the initial window is ten segments', () => {
  const s = sender()
  const data = bytes(20_000)
  assert.equal(s.write(data), 20_000)
  const out = new Uint8Array(MSS + 8)
  for (let k = 0; k < 10; k++) {
    assert.equal(s.pollSegment(0, out, 8), MSS)
    assert.equal(s.segmentSeq, seqAt(k * MSS))
    assert.deepEqual(out.subarray(8), data.subarray(k * MSS, (k + 1) * MSS))
  }
  assert.equal(s.pollSegment(0, out, 8), -1, 'cwnd reached')
  assert.equal(s.offsetOfAck(seqAt(3000)), 3000)
  s.onAck(20, 3000, 0, new Uint8Array(0), 0)
  assert.equal(drain(s, 20).length, 3 + 2, 'three segments acknowledged, and slow start grew cwnd by 2·MSS')
  assert.equal(s.unacked, 17_000)
})

test('write stops at the buffer; the ACK that frees room reports Writable', () => {
  const s = sender({ sendBufferSize: 4000 })
  assert.equal(s.write(bytes(5000)), 4000)
  assert.equal(s.capacity, 0)
  assert.equal(drain(s, 0).length, 4)
  assert.equal(s.onAck(10, 1000, 0, new Uint8Array(0), 0) & AckOutcome.Writable, AckOutcome.Writable)
  assert.equal(s.capacity, 1000)
  assert.equal(s.onAck(11, 2000, 0, new Uint8Array(0), 0), 0, 'once per refused write')
})

test('a SACK past a hole: RACK marks it lost, fast recovery retransmits it before new data', () => {
  const s = sender()
  s.write(bytes(15_000))
  assert.equal(drain(s, 0).length, 10)
  const sack = encodeSack([{ left: seqAt(1000), right: seqAt(10_000) }])
  s.onAck(40, 0, 0, sack, 1)
  assert.deepEqual(drain(s, 40)[0], [0, MSS], 'the hole goes first')
  const st = stats(s)
  assert.deepEqual([st.fastRetransmits, st.lostSegments, st.retransmits], [1, 1, 1])
})

test('a peer window limits what is outstanding; 0 means no limit', () => {
  const s = sender()
  s.write(bytes(9000))
  s.setPeerWindow(1) // 4096 bytes
  const sent = drain(s, 0)
  assert.deepEqual(sent.map(([, n]) => n), [MSS, MSS, MSS, MSS])
  s.setPeerWindow(0)
  assert.equal(drain(s, 0).length, 5)
})

test('Nagle holds a small tail while data is unacknowledged, until its timer', () => {
  const s = sender({ nagleDelay: 40 })
  s.write(bytes(1500))
  assert.deepEqual(drain(s, 0), [[0, MSS]])
  assert.equal(s.nextDeadline(), 40, 'the Nagle timer (the RTO is later)')
  assert.equal(s.handleTimeout(40), false)
  assert.deepEqual(drain(s, 40), [[MSS, 500]])
  const eager = sender({ noDelay: true })
  eager.write(bytes(1500))
  assert.equal(drain(eager, 0).length, 2)
})

test('our FIN waits until all data is acknowledged; the ACK of FIN + 1 reports FinAcked', () => {
  const s = sender()
  s.write(bytes(1000))
  drain(s, 0)
  s.queueFin()
  assert.equal(s.finQueued, true)
  assert.equal(s.pollFin(1), false)
  s.onAck(10, 1000, 0, new Uint8Array(0), 0)
  assert.equal(s.allDataAcked, true)
  assert.equal(s.pollFin(10), true)
  assert.equal(s.pollFin(10), false, 'sent once until its timer fires')
  assert.equal(s.finSeq, seqAt(1000))
  assert.equal(s.maxAckable, 1001)
  assert.equal(s.acksFin(seqAt(1001)), true)
  assert.equal(s.onAck(20, 1001, 0, new Uint8Array(0), 0), AckOutcome.FinAcked)
  assert.equal(s.finAcked, true)
  assert.equal(s.nextDeadline(), Number.POSITIVE_INFINITY)
})

test('RTO: every unSACKed segment is lost and goes again from the head; a silent path is given up', () => {
  const s = sender({ initialRto: 1000, maxTransmissions: 3, retransmitGiveUp: 0 })
  s.write(bytes(3000))
  drain(s, 0)
  assert.equal(s.nextDeadline(), 1000)
  assert.equal(s.handleTimeout(1000), false)
  assert.deepEqual(drain(s, 1000)[0], [0, MSS])
  assert.equal(stats(s).rtoTimeouts, 1)
  assert.equal(s.nextDeadline(), 3000, 'backed off')
  assert.equal(s.handleTimeout(3000), false)
  assert.deepEqual(drain(s, 3000), [[0, MSS], [MSS, MSS]], 'from the head, as the loss window (2·MSS) allows')
  assert.equal(s.handleTimeout(7000), true, 'the third transmission timed out with nothing heard')
  assert.equal(s.headTransmissions, 3)
})

test('tail loss probe: with nothing new to send, the last segment goes again after 2·SRTT', () => {
  const s = sender()
  s.onConnected(10)
  s.write(bytes(2000))
  drain(s, 0)
  assert.equal(s.nextDeadline(), 20)
  s.handleTimeout(20)
  assert.equal(s.wantsTransmit, true)
  assert.deepEqual(drain(s, 20), [[MSS, MSS]])
  assert.equal(stats(s).probes, 1)
})

test('abandon: nothing more to send, our side counts as finished', () => {
  const s = sender()
  s.write(bytes(5000))
  drain(s, 0)
  s.abandon()
  assert.deepEqual([s.abandoned, s.finQueued, s.finAcked, s.unacked], [true, true, true, 0])
  assert.deepEqual(drain(s, 1), [])
  assert.equal(s.pollFin(1), false)
  assert.equal(s.nextDeadline(), Number.POSITIVE_INFINITY)
})
