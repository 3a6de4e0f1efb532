/**
 * Congestion control behind a small bytes-based interface, so a different
 * controller (CUBIC, BBR-style pacing) can replace NewReno without touching the
 * connection. The connection owns loss detection and recovery (SACK scoreboard,
 * RTO); the controller only turns those signals into a window.
 */
import type { Millis } from './types.js'

export interface CongestionController {
  /** Congestion window in bytes. */
  readonly cwnd: number
  readonly ssthresh: number
  /** Earliest time the next segment may leave (pacing); 0 = no pacing. */
  readonly pacingDelay: number
  /** New cumulative ACK outside recovery. `rtt` is a fresh sample or -1. */
  onAck(now: Millis, bytesAcked: number, bytesInFlight: number, rtt: number): void
  /**
   * Loss detected by SACK/RACK or duplicate ACKs (once per recovery episode), or
   * a tail loss probe that repaired a loss (then onRecoveryEnd follows at once).
   * Sets ssthresh: the connection paces recovery towards it with PRR.
   */
  onCongestionEvent(now: Millis, bytesInFlight: number): void
  /** The cumulative ACK passed the recovery point of a fast-recovery episode. */
  onRecoveryEnd(now: Millis): void
  /** Retransmission timeout; onAck calls follow while the holes are refilled. */
  onRto(now: Millis, bytesInFlight: number): void
}

export type CongestionControllerFactory = (mss: number) => CongestionController

export interface NewRenoOptions {
  /** Initial window in segments (RFC 6928: 10). */
  initialWindowSegments?: number
  /** Upper bound for cwnd in bytes. */
  maxCwnd?: number
}

/**
 * Slow start and AIMD per RFC 5681 with IW10 (RFC 6928) and byte counting
 * (RFC 3465, L = 2 segments). Recovery itself is SACK-driven in the connection;
 * here a loss sets cwnd = ssthresh = max(flight/2, 2·MSS), and an RTO sets
 * ssthresh the same way and restarts slow start from min(IW, ssthresh): never
 * one segment, which would leave the receiver waiting out its delayed ACK on
 * every round trip, and never more than half of what was in flight (the
 * reference restarts from IW10, §6.11).
 */
export class NewReno implements CongestionController {
  cwnd: number
  ssthresh = Number.POSITIVE_INFINITY
  readonly pacingDelay = 0
  private readonly mss: number
  private readonly maxCwnd: number
  private readonly initialWindow: number
  private bytesAckedInCa = 0

  constructor(mss: number, options: NewRenoOptions = {}) {
    this.mss = mss
    const iw = options.initialWindowSegments ?? 10
    // IW10 in segments, but never more than 10 × 4096 bytes (the reference's IW)
    // for jumbo MSS values, and never less than two segments.
    this.cwnd = Math.max(2 * mss, Math.min(iw * mss, iw * 4096))
    this.initialWindow = this.cwnd
    this.maxCwnd = options.maxCwnd ?? 64 * 1024 * 1024
  }

  onAck(_now: Millis, bytesAcked: number, bytesInFlight: number, _rtt: number): void {
    // Do not grow a window the sender is not using (RFC 7661 spirit): only when
    // at least half of it was in flight.
    if (bytesInFlight + bytesAcked < this.cwnd / 2) return
    if (this.cwnd < this.ssthresh) {
      this.cwnd += Math.min(bytesAcked, 2 * this.mss)
    } else {
      this.bytesAckedInCa += bytesAcked
      if (this.bytesAckedInCa >= this.cwnd) {
        this.bytesAckedInCa -= this.cwnd
        this.cwnd += this.mss
      }
    }
    if (this.cwnd > this.maxCwnd) this.cwnd = this.maxCwnd
  }

  onCongestionEvent(_now: Millis, bytesInFlight: number): void {
    this.ssthresh = Math.max(bytesInFlight / 2, 2 * this.mss)
    this.cwnd = this.ssthresh
    this.bytesAckedInCa = 0
  }

  onRecoveryEnd(_now: Millis): void {
    this.cwnd = Math.max(this.ssthresh, 2 * this.mss)
  }

  onRto(_now: Millis, bytesInFlight: number): void {
    this.ssthresh = Math.max(bytesInFlight / 2, 2 * this.mss)
    this.cwnd = Math.min(this.initialWindow, this.ssthresh)
    this.bytesAckedInCa = 0
  }
}

export const newReno: CongestionControllerFactory = (mss) => new NewReno(mss)
