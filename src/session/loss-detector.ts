/**
 * Sender-side loss detection over the SendBuffer's scoreboard: cumulative
 * ACKs and SACK blocks mark records delivered, RACK (RFC 8985 §6) marks them
 * lost, and three duplicate pure ACKs still mark the head lost for peers
 * without SACK (RFC 5681 §3.2). The receiver's SACK is the reference's: the
 * lowest four out-of-order blocks (docs/wire.md §6.7).
 *
 * RACK: an un-SACKed segment sent before the most recently sent delivered
 * segment is lost once RACK.rtt + reo_wnd has passed since it left, so a lost
 * retransmission is found by its own send time. "Sent before" is the
 * transmission counter, not a timestamp (a burst shares one `now`). reo_wnd is
 * 0 in recovery or with ≥ 3 SACKed segments until reordering is seen, then
 * min_RTT/4, widened when a retransmission turns out spurious (acknowledged
 * sooner than min_RTT after it left). Only segments below the highest
 * delivered byte are judged: above it the lowest-four-blocks SACK may simply
 * not have mentioned them.
 *
 * This owns the RACK state and min_RTT; the connection decides what a loss
 * means (recovery, retransmission, timers).
 */
import { seqDiff } from './seq.js'
import type { SendBuffer } from './send-buffer.js'
import type { StreamStats } from './stream-config.js'
import type { Millis } from './types.js'

export class LossDetector {
  /** End of the highest delivered (acknowledged or SACKed) range. */
  private fack = 0
  private dupAcks = 0
  /** Transmission number of the RACK segment (the most recently sent delivered one); −1 = none yet. */
  private rackXmit = -1
  private rackRtt = 0
  private _minRtt = Number.POSITIVE_INFINITY
  private reorderingSeen = false
  private reoWndMult = 1
  /** Recovery episodes left before a widened reo_wnd shrinks back. */
  private reoWndPersist = 0
  /** reo_wnd widens at most once per round trip: until una passes this. */
  private reoWndRound = -1
  private lostCount = 0
  private spuriousCount = 0

  /** Smallest RTT seen on a segment sent once (or the handshake); ∞ before any. */
  get minRtt(): number {
    return this._minRtt
  }

  /** Segments marked lost by RACK, and retransmissions acknowledged sooner than min_RTT after they left. */
  fillStats(st: StreamStats): void {
    st.lostSegments = this.lostCount
    st.spuriousRetransmits = this.spuriousCount
  }

  /** An RTT measured outside the scoreboard (the handshake). */
  observeRtt(rtt: number): void {
    if (rtt < this._minRtt) this._minRtt = rtt
  }

  /**
   * Cumulative ACK up to `ackOff` (≤ snd.nxt): pops the records it covers,
   * noting each newly delivered one, and returns an RTT sample from the newest
   * record sent only once (Karn), or −1.
   */
  onCumulativeAck(now: Millis, snd: SendBuffer, ackOff: number): number {
    let rttSample = -1
    while (snd.count > 0) {
      const i = snd.head
      if (snd.endOf(i) > ackOff) {
        snd.trimHead(ackOff)
        break
      }
      if (!snd.isSacked(i)) {
        if (snd.transmissions(i) === 1) rttSample = now - snd.sentAt(i)
        this.onDelivered(now, snd, i)
      }
      snd.popHead()
    }
    snd.acknowledge(ackOff)
    if (this.fack < ackOff) this.fack = ackOff
    this.dupAcks = 0
    return rttSample
  }

  /**
   * SACK blocks as sequence-number pairs (`pairs[2b]`, `pairs[2b + 1]`);
   * `unaSeq` is the sequence number of snd.una. Blocks outside [una, nxt) are ignored.
   */
  onSack(now: Millis, snd: SendBuffer, pairs: Uint32Array, count: number, unaSeq: number): void {
    const una = snd.una
    for (let b = 0; b < count; b++) {
      const l = una + seqDiff(pairs[2 * b]!, unaSeq)
      const r = una + seqDiff(pairs[2 * b + 1]!, unaSeq)
      if (r <= l || l < una || r > snd.nxt) continue
      for (let k = snd.lowerBound(l); k < snd.count; k++) {
        const i = snd.index(k)
        if (snd.endOf(i) > r) break
        if (snd.markSacked(i)) this.onDelivered(now, snd, i)
      }
    }
  }

  /** A pure ACK that acknowledged nothing new. */
  onDuplicateAck(): void {
    this.dupAcks++
  }

  /** Three duplicate ACKs outside recovery mark the head lost (fast retransmit for peers without SACK). */
  applyDuplicateAcks(snd: SendBuffer, inRecovery: boolean): void {
    if (this.dupAcks < 3 || inRecovery) return
    const head = snd.head
    if (snd.isInFlight(head)) snd.markLost(0, head)
  }

  /** A retransmission timeout: the duplicate ACK count starts again. */
  onRto(): void {
    this.dupAcks = 0
  }

  /** A recovery episode ended: a widened reordering window counts down to its normal size. */
  onRecoveryEnd(): void {
    if (this.reoWndPersist > 0 && --this.reoWndPersist === 0) this.reoWndMult = 1
  }

  /**
   * Record i (acknowledged or SACKed just now, not before) was delivered: RACK
   * state, minimum RTT and reordering detection (RFC 8985 §6.2 steps 1–3).
   */
  private onDelivered(now: Millis, snd: SendBuffer, i: number): void {
    const end = snd.endOf(i)
    const rtt = now - snd.sentAt(i)
    if (snd.transmissions(i) === 1) {
      if (rtt < this._minRtt) this._minRtt = rtt
      // Delivered after a segment sent later than it: the path reorders.
      if (end < this.fack) this.reorderingSeen = true
    } else if (rtt < this._minRtt) {
      // Acknowledged sooner than any round trip after the retransmission left: the
      // original arrived after all. No RACK sample from it (step 2); a loss mark
      // that was wrong widens the reordering window (RFC 8985 uses DSACK for this).
      this.spuriousCount++
      if (!snd.wasProbed(i)) {
        this.reorderingSeen = true
        if (this.reoWndRound < 0 || snd.una >= this.reoWndRound) {
          this.reoWndRound = snd.nxt
          if (this.reoWndMult < 64) this.reoWndMult++
        }
        this.reoWndPersist = 16
      }
      return
    }
    if (snd.sendOrder(i) > this.rackXmit) {
      this.rackXmit = snd.sendOrder(i)
      this.rackRtt = rtt
    }
    if (end > this.fack) this.fack = end
  }

  /** RACK reordering window (RFC 8985 §6.2 step 4); `srtt` −1 = no sample yet. */
  reorderWindow(srtt: number, inRecovery: boolean, sackedSegments: number): number {
    if (!this.reorderingSeen && (inRecovery || sackedSegments >= 3)) return 0
    const base = this._minRtt !== Number.POSITIVE_INFINITY ? this._minRtt : Math.max(0, srtt)
    const w = (base / 4) * this.reoWndMult
    return srtt >= 0 && srtt < w ? srtt : w
  }

  /**
   * RACK loss detection (RFC 8985 §6.2 step 5): marks lost every in-flight
   * record sent before the RACK segment whose RACK.rtt + reo_wnd has passed.
   * Returns how long until the next candidate expires (0 = none pending).
   */
  detectLosses(now: Millis, snd: SendBuffer, srtt: number, inRecovery: boolean): number {
    if (this.rackXmit < 0) return 0
    const reo = this.reorderWindow(srtt, inRecovery, snd.sackedSegments)
    let wait = 0
    for (let k = 0; k < snd.count; k++) {
      const i = snd.index(k)
      if (!snd.isInFlight(i)) continue
      // Above the highest delivered byte we know nothing: SACK carries only the
      // lowest four blocks (§6.7), so segments there may have arrived unreported.
      if (snd.endOf(i) > this.fack) break
      if (snd.sendOrder(i) > this.rackXmit) {
        // Sent after the RACK segment. First transmissions leave in offset order,
        // and a retransmission leaves after its original: everything further on
        // was sent later still.
        if (snd.transmissions(i) === 1) break
        continue
      }
      const remaining = snd.sentAt(i) + this.rackRtt + reo - now
      if (remaining <= 0) {
        snd.markLost(k, i)
        this.lostCount++
      } else if (remaining > wait) {
        wait = remaining
      }
    }
    return wait
  }
}
