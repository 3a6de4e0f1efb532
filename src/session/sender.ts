/**
 * Our direction of a stream: everything between write() and the peer's
 * acknowledgement of our FIN. It owns the send buffer, loss detection and
 * recovery, the RTT estimate, the congestion controller, the peer's window,
 * and the deadlines of its own timers; the connection tells it what arrived,
 * asks it what to send, and decides what its outcomes mean for the
 * connection's state (events, closing).
 *
 * Sending order (pollSegment): the window-reopen retransmission, then
 * segments deemed lost (while lost segments wait for the window, new data
 * waits too), then a tail loss probe, then new data under the congestion
 * window, the peer's window and Nagle. Our FIN leaves only once all data is
 * acknowledged, and is retransmitted on the same timer. A silent path is given
 * up after maxTransmissions RTO transmissions and at least retransmitGiveUp
 * since the first timeout of the series.
 */
import { decodeSackInto, MAX_SACK_BLOCKS } from '../protocol/sack.js'
import type { CongestionController } from './congestion.js'
import { LossDetector } from './loss-detector.js'
import { Recovery } from './recovery.js'
import { RttEstimator } from './rtt.js'
import { SendBuffer } from './send-buffer.js'
import { seqDiff } from './seq.js'
import { PeerWindow } from './peer-window.js'
import type { StreamConfig, StreamStats } from './stream-config.js'
import { TailLossProbe } from './tail-probe.js'
import type { FlightShare, FlightShareWaiter } from './flight-share.js'
import { TimerTable } from './timers.js'
import type { Millis } from './types.js'

const enum Timer {
  /** Retransmission timeout of data, or of our FIN once all data is acknowledged. */
  Retransmit = 0,
  /** RACK reordering window: a candidate segment becomes lost (RFC 8985 §6.2). */
  Reorder = 1,
  /** Tail loss probe (RFC 8985 §7). */
  Probe = 2,
  /** Nagle: a held small segment leaves anyway. */
  Nagle = 3,
  /** A closed segment window (Go's full queue, peer-window.ts) is probed with one segment. */
  Persist = 4,
  Count = 5,
}

/** Bits returned by onAck(). */
export const AckOutcome = {
  /** write() takes bytes again after it had refused some. */
  Writable: 1,
  /** The ACK acknowledged our FIN. */
  FinAcked: 2,
} as const

/** Smallest send ring buffer: it doubles as writes need and goes back to the pool when everything is acknowledged. */
const INITIAL_RING = 4 * 1024

export class StreamSender {
  private readonly cfg: StreamConfig
  /** Sequence number of data offset 0 (ISN + 1). */
  private readonly dataIsn: number
  private readonly snd: SendBuffer
  private readonly loss = new LossDetector()
  private readonly recovery = new Recovery()
  private readonly tlp = new TailLossProbe()
  private readonly rtt: RttEstimator
  private readonly cc: CongestionController
  private readonly timers = new TimerTable(Timer.Count)
  private readonly sackPairs = new Uint32Array(2 * MAX_SACK_BLOCKS)
  private readonly win = new PeerWindow()
  /** Persist probes sent since the window last opened (the timeout doubles). */
  private persistBackoff = 0
  private persistDue = false
  private writeBlocked = false
  private nagleExpired = false
  /** The receiver's window reopened during a backoff: retransmit the head at once. */
  private rtoRetransmitNow = false
  /** Something valid arrived since the last retransmission timeout. */
  private heardSinceRto = true
  /** Data offset of the segment pollSegment() returned last (an offset, not a seq: it stays a small integer). */
  private lastOff = 0
  // Our FIN.
  private _finQueued = false
  private _finOff = 0
  private _finSent = false
  private _finAcked = false
  private _finPending = false
  private finTx = 0
  private _abandoned = false
  // The flight shared with the other streams to the same peer (flight-share.ts).
  private share: FlightShare | null = null
  private shareWaiter: FlightShareWaiter | null = null
  /** Our flight as last added to the share. */
  private sharedFlight = 0

  constructor(cfg: StreamConfig, dataIsn: number) {
    this.cfg = cfg
    this.dataIsn = dataIsn
    this.snd = new SendBuffer(cfg.sendBufferSize, INITIAL_RING, cfg.buffers)
    this.rtt = new RttEstimator(cfg)
    this.cc = cfg.congestion(cfg.mss)
  }

  // ── getters ──

  /** Written and not yet acknowledged. */
  get unacked(): number {
    return this.snd.end - this.snd.una
  }

  /** Bytes of send ring buffer held now. */
  get ringCapacity(): number { return this.snd.ringCapacity }

  /** Room in the send buffer. */
  get capacity(): number { return this.snd.capacity }

  /** Sequence number of the next new byte. */
  get nextSeq(): number {
    return this.seqOf(this.snd.nxt)
  }

  /** Sequence number of the segment pollSegment() returned last. */
  get segmentSeq(): number {
    return this.seqOf(this.lastOff)
  }

  /** Sequence number of our FIN (where it will be until it is sent). */
  get finSeq(): number {
    return this.seqOf(this._finSent ? this._finOff : this.snd.nxt)
  }

  /** finish() was called, or the peer made us stop: write() takes nothing more. */
  get finQueued(): boolean { return this._finQueued }

  get finSent(): boolean { return this._finSent }

  get finAcked(): boolean { return this._finAcked }

  /** Our FIN is queued and everything before it is acknowledged. */
  get allDataAcked(): boolean {
    return this._finQueued && this.snd.una === this._finOff
  }

  /** A FIN should go out at the next chance (retransmission, or one best-effort FIN on an idle timeout). */
  get finPending(): boolean { return this._finPending }

  /** We stopped sending because the peer will take nothing more. */
  get abandoned(): boolean { return this._abandoned }

  /** The data offset an acknowledgement number stands for (relative to una, so it survives the wrap). */
  offsetOfAck(ack: number): number {
    return this.snd.una + seqDiff(ack, this.seqOf(this.snd.una))
  }

  /** Highest offset an ACK may acknowledge: the FIN counts one. */
  get maxAckable(): number {
    return this._finSent ? this._finOff + 1 : this.snd.nxt
  }

  /** Whether `ack` acknowledges our FIN (ack = FIN.seq + 1). */
  acksFin(ack: number): boolean {
    return this._finSent && ack === this.seqOf(this._finOff + 1)
  }

  /** Transmissions of the oldest unacknowledged segment. */
  get headTransmissions(): number {
    return this.snd.transmissions(this.snd.head)
  }

  /** Something to send: a retransmission, a probe, new data or our FIN. */
  get wantsTransmit(): boolean {
    const snd = this.snd
    return (
      this._finPending ||
      this.rtoRetransmitNow ||
      this.tlp.due ||
      this.tlp.secondDue ||
      snd.unsent > 0 ||
      snd.lostSegments > 0 ||
      (this._finQueued && !this._finSent)
    )
  }

  /** Earliest deadline of our timers, or Infinity. */
  nextDeadline(): Millis {
    return this.timers.earliest()
  }

  fillStats(st: StreamStats): void {
    this.snd.fillStats(st)
    this.recovery.fillStats(st)
    this.loss.fillStats(st)
    this.tlp.fillStats(st)
    st.srtt = this.rtt.srtt
    st.rto = this.rtt.rto
    st.cwnd = this.cc.cwnd
  }

  // ── inputs ──

  /** New data also waits for `share` (the streams to the same peer); `waiter` hears when it has room. */
  joinShare(share: FlightShare, waiter: FlightShareWaiter): void {
    this.share = share
    this.shareWaiter = waiter
    this.syncShare()
  }

  /** Our flight leaves the share (the connection closed). */
  leaveShare(): void {
    const share = this.share
    if (share === null) return
    share.update(this.sharedFlight, 0)
    this.sharedFlight = 0
    share.forget(this.shareWaiter!)
    this.share = null
    this.shareWaiter = null
  }

  /** The peer's window field (0 = no limit; in segment mode a full queue when `aboutOurData`, peer-window.ts). */
  setPeerWindow(slots: number, aboutOurData = true): void {
    this.win.update(slots, aboutOurData)
    if (!this.win.closed) {
      this.persistBackoff = 0
      this.timers.stop(Timer.Persist)
    }
  }

  /** The peer's window counts segments, not 4096-byte slots (a Go peer: peer-window.ts). */
  countPeerSegments(): void {
    this.win.countSegments()
  }

  /** Whether the peer's window is read as a count of segments. */
  get peerCountsSegments(): boolean { return this.win.countsSegments }

  /** The handshake completed; `rtt` is its round trip, or −1 when the SYN went out more than once (Karn). */
  onConnected(rtt: number): void {
    if (rtt >= 0) {
      this.rtt.addSample(rtt)
      this.loss.observeRtt(rtt)
    }
    this.rtt.clearBackoff()
  }

  /**
   * A valid ACK (ackOff ≤ maxAckable) with the peer's window and its payload:
   * data, or a SACK option of `sackCount` blocks. Returns AckOutcome bits.
   */
  onAck(now: Millis, ackOff: number, windowSlots: number, payload: Uint8Array, sackCount: number): number {
    this.heardSinceRto = true
    const snd = this.snd
    if (ackOff < snd.una) return 0
    const prevSlots = this.win.lastSlots
    this.setPeerWindow(windowSlots, ackOff > snd.una || payload.length > 0 || snd.count > 0)
    const deliveredBefore = snd.delivered
    let outcome = 0
    if (ackOff > snd.una) {
      outcome = this.processAck(now, ackOff, true)
    } else if (payload.length === 0 && snd.count > 0) {
      if (windowSlots > prevSlots && prevSlots !== 0 && this.rtt.backoff > 0) {
        // The receiver's window reopened while we were backing off a probe:
        // retransmit the head now instead of waiting out the backed-off RTO.
        this.rtoRetransmitNow = true
        this.timers.set(Timer.Retransmit, now + this.rtt.rto)
      } else {
        this.loss.onDuplicateAck()
      }
    }
    if (sackCount > 0 && snd.count > 0) {
      decodeSackInto(payload, this.sackPairs)
      this.loss.onSack(now, snd, this.sackPairs, sackCount, this.seqOf(snd.una))
    }
    if (snd.count > 0) {
      this.loss.applyDuplicateAcks(snd, this.recovery.active)
      const delivered = snd.delivered - deliveredBefore
      this.detectLosses(now, delivered)
      if (delivered > 0) this.armProbe(now)
    } else {
      this.timers.stop(Timer.Probe)
      this.timers.stop(Timer.Reorder)
    }
    if (this._finSent && !this._finAcked && ackOff === this._finOff + 1) {
      this.finAckedNow()
      outcome |= AckOutcome.FinAcked
    }
    this.syncShare()
    return outcome
  }

  /** A FIN|ACK acknowledged our FIN (the caller checked acksFin()). */
  onFinAcked(now: Millis): void {
    this.processAck(now, this._finOff, false)
    this.finAckedNow()
    this.syncShare()
  }

  /**
   * Runs our timers that are due. True when the retransmission timer gave up
   * (maxTransmissions on a silent path, or of our FIN once all data is
   * acknowledged): the connection is over.
   */
  handleTimeout(now: Millis): boolean {
    const t = this.timers
    if (t.expire(Timer.Probe, now) && this.snd.count > 0 && !this.tlp.outstanding) {
      // The probe goes first, also when the RTO is due at the same time (RFC 8985 §7.2).
      this.tlp.due = true
      if (t.get(Timer.Retransmit) <= now) t.set(Timer.Retransmit, now + this.rtt.rto)
    }
    if (t.expire(Timer.Retransmit, now)) {
      const gaveUp = this.onRetransmitTimeout(now)
      this.syncShare() // an RTO deems the flight lost
      if (gaveUp) return true
    }
    if (t.expire(Timer.Reorder, now) && this.snd.count > 0) {
      this.detectLosses(now, 0)
      this.syncShare()
    }
    if (t.expire(Timer.Nagle, now)) this.nagleExpired = true
    if (t.expire(Timer.Persist, now)) this.persistDue = this.win.closed
    return false
  }

  // ── commands ──

  /** Takes what fits of `data`; returns the count (the caller checked the stream is writable). */
  write(data: Uint8Array): number {
    const n = Math.min(this.snd.capacity, data.length)
    if (n < data.length) this.writeBlocked = true
    if (n === 0) return 0
    this.snd.write(data, n)
    if (!this.timers.isSet(Timer.Nagle)) this.nagleExpired = false
    return n
  }

  /** Our FIN follows the data written so far. */
  queueFin(): void {
    this._finQueued = true
    this._finOff = this.snd.end
  }

  /** Whether a FIN goes out at the next chance (also: one best-effort FIN on an idle timeout). */
  setFinPending(pending: boolean): void {
    this._finPending = pending
  }

  /**
   * The peer takes nothing more (it closed with FIN|ACK or window 0): drop what
   * is unacknowledged and count our side finished.
   */
  abandon(): void {
    this._abandoned = true
    this.snd.abandon()
    this._finQueued = true
    this._finOff = this.snd.end
    this._finAcked = true
    this.stop()
    this.syncShare()
  }

  /** The connection closed: the unacknowledged bytes will never be sent again, their buffer goes back. */
  dropBytes(): void {
    this.snd.dropBytes()
  }

  /** TIME_WAIT: no small segment is held back any more. */
  stopNagle(): void {
    this.timers.stop(Timer.Nagle)
  }

  /** No recovery, retransmission, probe or timer is pending any more. */
  stop(): void {
    this.recovery.end()
    this.rtoRetransmitNow = false
    this.tlp.reset()
    this.timers.stopAll()
  }

  // ── outputs ──

  /**
   * The next data segment, if one may leave now: its payload is written at
   * `out[at..]` and its length returned, −1 = none. segmentSeq is its sequence
   * number. The length may be 0: the second segment of a new-data probe goes
   * out even when there is no data left for it.
   */
  pollSegment(now: Millis, out: Uint8Array, at: number): number {
    const snd = this.snd
    let n = -1
    if (snd.count > 0) n = this.pollRetransmission(now, out, at)
    if (n < 0 && snd.unsent > 0 && snd.lostSegments === 0) n = this.sendNewData(now, out, at, false)
    if (n >= 0 && this.share !== null) this.syncShare()
    return n
  }

  /** Whether our FIN leaves now (all data acknowledged; first time, or its timer fired). Notes it as sent. */
  pollFin(now: Millis): boolean {
    const snd = this.snd
    if (!this._finQueued || this._finAcked || snd.una !== this._finOff || snd.nxt !== this._finOff) return false
    if (this._finSent && !this._finPending) return false
    this._finSent = true
    this._finPending = false
    this.finTx++
    this.timers.setIfUnset(Timer.Retransmit, now + this.rtt.rto)
    return true
  }

  // ── internals ──

  /** Adds the change of our flight (the RFC 6675 pipe) to the share. */
  private syncShare(): void {
    const share = this.share
    if (share === null) return
    const p = this.snd.pipe
    if (p !== this.sharedFlight) {
      share.update(this.sharedFlight, p)
      this.sharedFlight = p
    }
  }

  private seqOf(off: number): number {
    return (this.dataIsn + off) >>> 0
  }

  private finAckedNow(): void {
    this._finAcked = true
    this.timers.stop(Timer.Retransmit)
    this._finPending = false
  }

  /** Cumulative ACK up to `ackOffIn` (a data offset; finOff + 1 is clipped). Returns AckOutcome bits. */
  private processAck(now: Millis, ackOffIn: number, fromAckPacket: boolean): number {
    const snd = this.snd
    const ackOff = Math.min(ackOffIn, snd.nxt)
    if (ackOff <= snd.una) return 0
    const acked = ackOff - snd.una
    const rttSample = this.loss.onCumulativeAck(now, snd, ackOff)
    this.rtt.onProgress(rttSample)
    if (rttSample >= 0 && this.share !== null) this.share.srtt = this.rtt.srtt
    // Slow start / congestion avoidance outside fast recovery; after an RTO the
    // window grows again from the loss window while the holes are refilled.
    if (!this.recovery.isFast && fromAckPacket) this.cc.onAck(now, acked, snd.flight, rttSample)
    if (this.recovery.endsAt(ackOff)) {
      if (this.recovery.isFast) this.cc.onRecoveryEnd(now)
      this.recovery.end()
      this.loss.onRecoveryEnd()
    }
    // A retransmitted probe that repaired a real tail loss costs one response.
    const probeFlight = this.tlp.onAck(now, ackOff, this.recovery.active, this.loss.minRtt)
    if (probeFlight >= 0) {
      this.cc.onCongestionEvent(now, probeFlight)
      this.cc.onRecoveryEnd(now)
    }
    if (snd.count > 0 || (this._finSent && !this._finAcked)) this.timers.set(Timer.Retransmit, now + this.rtt.rto)
    else this.timers.stop(Timer.Retransmit)
    // write() is refused for good once our FIN is queued.
    if (this.writeBlocked && !this._finQueued && snd.capacity > 0) {
      this.writeBlocked = false
      return AckOutcome.Writable
    }
    return 0
  }

  /** After an ACK (or the reordering timer): mark losses, enter or pace recovery. */
  private detectLosses(now: Millis, delivered: number): void {
    const snd = this.snd
    const wait = this.loss.detectLosses(now, snd, this.rtt.srtt, this.recovery.active)
    if (wait > 0) this.timers.set(Timer.Reorder, now + wait)
    else this.timers.stop(Timer.Reorder)
    if (snd.lostSegments > 0 && !this.recovery.active) {
      // One congestion response per episode; it covers a probe's loss too.
      this.cc.onCongestionEvent(now, snd.outstanding)
      this.recovery.enterFast(snd.nxt, snd.outstanding)
      this.tlp.cancel()
    }
    if (this.recovery.isFast) this.recovery.onAck(delivered, snd.pipe, this.cc.ssthresh, this.cfg.mss)
  }

  /** Arms the tail loss probe timer, unless a probe is outstanding (never later than the RTO). */
  private armProbe(now: Millis): void {
    const snd = this.snd
    const pto = this.tlp.outstanding || snd.count === 0 ? -1 : this.tlp.timeout(this.rtt.srtt, snd.flight, this.cfg)
    if (pto < 0) this.timers.stop(Timer.Probe)
    else this.timers.set(Timer.Probe, Math.min(now + pto, this.timers.get(Timer.Retransmit)))
  }

  /** True if it gives up. */
  private onRetransmitTimeout(now: Millis): boolean {
    const snd = this.snd
    if (snd.count > 0) {
      // Give up when the maxTransmissions-th transmission times out on a silent
      // path (§6.10). Only RTO retransmissions count: probes and SACK/RACK
      // repairs are extra tries the reference would not have made.
      const silentFor = this.rtt.timeoutSeriesAge(now)
      if (this.rtt.backoff + 1 >= this.cfg.maxTransmissions && !this.heardSinceRto && silentFor >= this.cfg.retransmitGiveUp) {
        return true
      }
      this.cc.onRto(now, snd.flight)
      this.rtt.backOff()
      // Everything outstanding and un-SACKed is presumed lost (RFC 6675 §5.1,
      // RFC 8985 §6.3); retransmissions go out in slow start from the loss window.
      this.recovery.enterRto(snd.nxt)
      snd.markAllLost()
      this.loss.onRto()
      this.tlp.reset()
      this.timers.stop(Timer.Probe)
      this.timers.stop(Timer.Reorder)
      this.heardSinceRto = false
      this.timers.set(Timer.Retransmit, now + this.rtt.rto)
    } else if (this._finSent && !this._finAcked) {
      if (this.finTx >= this.cfg.maxTransmissions) return true
      this._finPending = true
      this.rtt.backOff()
      this.timers.set(Timer.Retransmit, now + this.rtt.rto)
    }
    return false
  }

  /** The window-reopen retransmission, a lost segment, or a tail loss probe. */
  private pollRetransmission(now: Millis, out: Uint8Array, at: number): number {
    const snd = this.snd
    if (this.rtoRetransmitNow) {
      this.rtoRetransmitNow = false
      const i = snd.firstUnsacked()
      if (i >= 0) return this.sendSegment(now, out, at, i, true)
    }
    if (snd.lostSegments > 0) {
      const i = snd.nextLostToSend(this.recovery.window(this.cc.cwnd))
      if (i >= 0) return this.sendSegment(now, out, at, i, true)
    }
    if (this.tlp.due) {
      this.tlp.due = false
      const n = this.sendProbe(now, out, at)
      if (n >= 0) return n
    }
    if (this.tlp.secondDue) {
      this.tlp.secondDue = false
      const n = this.sendNewData(now, out, at, true)
      if (n >= 0) {
        this.tlp.extendTo(snd.nxt)
        this.timers.stop(Timer.Probe)
        return n
      }
    }
    return -1
  }

  /**
   * The probe: new data if the peer's window allows, else the last segment
   * again. New data goes out as two segments where there are two (RFC 8985 has
   * one): receivers (ours and the reference, §6.6) acknowledge every second
   * segment at once but hold a lone in-order one for their 40 ms delayed ACK,
   * which on a LAN is a hundred round trips.
   */
  private sendProbe(now: Millis, out: Uint8Array, at: number): number {
    const snd = this.snd
    let n = -1
    let retransmission = false
    if (snd.unsent > 0) {
      n = this.sendNewData(now, out, at, true)
      if (n >= 0) this.tlp.secondDue = true
    }
    if (n < 0) {
      const i = snd.lastUnsacked()
      if (i < 0) return -1
      n = this.sendSegment(now, out, at, i, true)
      snd.markProbed(i)
      retransmission = true
    }
    this.tlp.onSent(now, snd.nxt, retransmission, snd.outstanding)
    this.timers.stop(Timer.Probe)
    this.timers.set(Timer.Retransmit, now + this.rtt.rto) // RFC 8985 §7.3: the RTO follows a probe
    return n
  }

  /** One new segment if the windows allow (−1 if not); a tail loss probe (`probe`) ignores cwnd and Nagle. */
  private sendNewData(now: Millis, out: Uint8Array, at: number, probe: boolean): number {
    const snd = this.snd
    const mss = this.cfg.mss
    const unsent = snd.unsent
    let len = Math.min(mss, unsent)
    // The peer's window is counted from its cumulative ACK, SACKed bytes included.
    let peerRoom = this.win.room(snd.outstanding, snd.count, mss)
    if (this.win.closed) {
      if (this.persistDue && snd.count === 0) {
        // The persist probe: one segment into a queue that reported full.
        this.persistDue = false
        this.persistBackoff++
        peerRoom = mss
      } else {
        if (snd.count === 0) this.timers.setIfUnset(Timer.Persist, now + Math.min(this.rtt.rto * 2 ** this.persistBackoff, 30_000))
        return -1
      }
    }
    if (probe) {
      if (peerRoom < len) return -1
    } else {
      const flight = snd.pipe
      let wnd = this.recovery.window(this.cc.cwnd)
      const peerWindow = this.win.bytes(mss)
      if (peerWindow > 0 && peerWindow < wnd) wnd = peerWindow
      const avail = Math.min(wnd - flight, peerRoom)
      // The streams to this peer together: with some of our own in flight, wait for the share's room,
      // and behind the streams waiting for it once we have our fair part.
      const share = this.share
      if (share !== null && flight > 0 && avail > 0 && (share.room < Math.min(len, avail) || share.mustYield(this.shareWaiter!, flight))) {
        share.wait(this.shareWaiter!)
        return -1
      }
      if (avail < len) {
        // Window-limited: ACKs (or the RTO probe of a full receiver) reopen it.
        // With nothing in flight, send what fits rather than deadlock.
        if (flight > 0 || avail <= 0) return -1
        len = avail
      }
      // Nagle: hold a small segment while data is unacknowledged (≤ 40 ms).
      if (len < mss && len === unsent && !this.cfg.noDelay && !this._finQueued && snd.outstanding > 0 && !this.nagleExpired) {
        this.timers.setIfUnset(Timer.Nagle, now + this.cfg.nagleDelay)
        return -1
      }
    }
    // Never let a data payload start with the SACK pattern (§17 item 14).
    if (len >= 5 && snd.nextLooksLikeSack(len)) len = 1
    const share = this.share
    if (share !== null) {
      share.fed(this.shareWaiter!)
      // Starting a burst with nothing in flight: the path's RTT is what the other streams measure.
      if (snd.outstanding === 0 && share.srtt > this.rtt.srtt) this.rtt.raiseTo(share.srtt)
    }
    const i = snd.cutSegment(len)
    if (snd.unsent === 0) {
      this.nagleExpired = false
      this.timers.stop(Timer.Nagle)
    }
    return this.sendSegment(now, out, at, i, false)
  }

  /** Record i's payload at out[at..]; a retransmission repeats its original boundaries (§20 item 10). */
  private sendSegment(now: Millis, out: Uint8Array, at: number, i: number, retransmission: boolean): number {
    const snd = this.snd
    if (retransmission) {
      snd.prepareRetransmit(i)
    }
    const len = snd.transmit(i, now, out, at)
    this.lastOff = snd.offsetOf(i)
    this.recovery.onSent(len)
    this.timers.setIfUnset(Timer.Retransmit, now + this.rtt.rto)
    if (!retransmission) this.armProbe(now)
    return len
  }
}
