/**
 * Round-trip time and retransmission timeout (RFC 6298; docs/wire.md §6.10 for
 * what the reference does).
 *
 * RTO = max(SRTT + max(G, 4·RTTVAR), SRTT + delayedAck + G), at least minRto
 * and at most maxRto, doubling per timeout. The floor follows the path: with
 * RACK and tail loss probes an RTO is the last resort, so minRto is low (50 ms;
 * 200 ms is a thousand LAN round trips), and the delayedAck term keeps it from
 * firing before a delayed ACK could be back (the reference also delays ACKs by
 * 40 ms).
 */
import type { Millis } from './types.js'

export interface RttConfig {
  initialRto: Millis
  minRto: Millis
  maxRto: Millis
  /** Clock granularity G. */
  granularity: Millis
  /** The peer's delayed-ACK time. */
  delayedAck: Millis
}

export class RttEstimator {
  private readonly cfg: RttConfig
  private _srtt = -1
  private rttvar = 0
  private _rto: number
  private _backoff = 0
  /** Time of the first timeout since the last progress. */
  private seriesStart = 0

  constructor(cfg: RttConfig) {
    this.cfg = cfg
    this._rto = cfg.initialRto
  }

  /** Smoothed RTT, −1 before the first sample. */
  get srtt(): number { return this._srtt }

  /** Current retransmission timeout, backed off. */
  get rto(): number { return this._rto }

  /** Timeouts since the last progress. */
  get backoff(): number { return this._backoff }

  /** A measured round trip (ignored if negative). */
  addSample(r: number): void {
    if (r < 0) return
    if (this._srtt < 0) {
      this._srtt = r
      this.rttvar = r / 2
    } else {
      this.rttvar = 0.75 * this.rttvar + 0.25 * Math.abs(this._srtt - r)
      this._srtt = 0.875 * this._srtt + 0.125 * r
    }
    this._rto = this.computeRto()
  }

  /**
   * The path's round trip is known to be at least `r` (another stream's estimate on the same
   * path, flight-share.ts): SRTT, RTTVAR and the RTO start from it as from a first sample.
   */
  raiseTo(r: number): void {
    if (r <= this._srtt) return
    this._srtt = r
    this.rttvar = Math.max(this.rttvar, r / 2)
    this._rto = this.computeRto()
  }

  /** New data acknowledged, with an RTT sample or −1: the backoff ends. */
  onProgress(sample: number): void {
    this._backoff = 0
    if (sample >= 0) this.addSample(sample)
    else this._rto = this.computeRto()
  }

  /** The handshake completed: no backoff from SYN retransmissions carries over. */
  clearBackoff(): void {
    this._backoff = 0
  }

  /**
   * A retransmission timeout fired: how long since the first timeout of this
   * series (a series starts with the first timeout after progress).
   */
  timeoutSeriesAge(now: Millis): Millis {
    if (this._backoff === 0) this.seriesStart = now
    return now - this.seriesStart
  }

  /** Doubles the timeout (up to maxRto) after a retransmission. */
  backOff(): void {
    this._backoff++
    this._rto = Math.min(this._rto * 2, this.cfg.maxRto)
  }

  private computeRto(): number {
    const c = this.cfg
    if (this._srtt < 0) return c.initialRto
    const rto = Math.max(this._srtt + Math.max(c.granularity, 4 * this.rttvar), this._srtt + c.delayedAck + c.granularity)
    return Math.min(c.maxRto, Math.max(c.minRto, rto))
  }
}
