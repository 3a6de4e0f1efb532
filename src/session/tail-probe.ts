/**
 * Tail loss probe (RFC 8985 §7): after a probe timeout without progress, send
 * new data (two segments, so a delayed-ACK receiver answers at once) or the
 * last unSACKed segment again, so a loss at the tail is found by an ACK rather
 * than by the retransmission timeout.
 *
 * PTO = max(2·SRTT, minPto), + delayedAck with at most one segment in flight
 * (it may be waiting for the peer's delayed ACK), and never later than the RTO.
 * Unlike RFC 8985 the timer is armed in recovery too: with the few segments a
 * lossy path allows in flight, losing them (or their ACKs) leaves RACK nothing
 * to go on, and the RTO floor is a thousand LAN round trips. A retransmitted
 * probe that repaired a loss costs one congestion response (§7.4.2).
 *
 * This holds what is due and the episode of the outstanding probe; the
 * connection sends, and keeps the deadline in its timer table.
 */
import type { StreamStats } from './stream-config.js'
import type { Millis } from './types.js'

export interface ProbeTimeoutConfig {
  mss: number
  delayedAck: Millis
  minPto: Millis
}

export class TailLossProbe {
  /** The probe timer fired: send a probe at the next chance. */
  due = false
  /** A new-data probe went out as one segment; the second is due. */
  secondDue = false
  /** snd.nxt after the outstanding probe; −1 = none outstanding. */
  private end = -1
  private retransmission = false
  private sentAt = 0
  /** Bytes outstanding when the probe left. */
  private flight = 0
  private sent = 0

  /** A probe is outstanding until the cumulative ACK reaches what it covered. */
  get outstanding(): boolean {
    return this.end >= 0
  }

  /** Probes sent so far. */
  fillStats(st: StreamStats): void {
    st.probes = this.sent
  }

  /** Probe timeout in ms for `flight` bytes in flight; −1 without an RTT sample (no probe). */
  timeout(srtt: number, flight: number, cfg: ProbeTimeoutConfig): number {
    if (srtt < 0) return -1
    let pto = 2 * srtt
    // One segment in flight may be waiting for the peer's delayed ACK.
    if (flight <= cfg.mss) pto += cfg.delayedAck
    return pto < cfg.minPto ? cfg.minPto : pto
  }

  /** A probe left: new data or (`retransmission`) a segment again; the episode lasts until una ≥ `sndNxt`. */
  onSent(now: Millis, sndNxt: number, retransmission: boolean, outstanding: number): void {
    this.sent++
    this.end = sndNxt
    this.retransmission = retransmission
    this.sentAt = now
    this.flight = outstanding
  }

  /** The second segment of a new-data probe left: the episode extends to it. */
  extendTo(sndNxt: number): void {
    this.end = sndNxt
  }

  /**
   * A cumulative ACK at `ackOff`. Once it covers the probe, the episode ends;
   * returns the flight to respond to when a retransmitted probe, acknowledged
   * no sooner than `minRtt` after it left, repaired a real tail loss outside
   * recovery (without DSACK this is the best evidence we have), else −1.
   */
  onAck(now: Millis, ackOff: number, inRecovery: boolean, minRtt: number): number {
    if (this.end < 0 || ackOff < this.end) return -1
    this.end = -1
    return this.retransmission && !inRecovery && now - this.sentAt >= minRtt ? this.flight : -1
  }

  /** Forgets the outstanding probe: a recovery episode's congestion response covers its loss too. */
  cancel(): void {
    this.end = -1
  }

  /** Nothing due and no probe outstanding (after an RTO, or when sending stops). */
  reset(): void {
    this.due = false
    this.secondDue = false
    this.end = -1
  }
}
