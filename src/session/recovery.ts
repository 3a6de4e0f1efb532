/**
 * A loss-recovery episode and the sending it allows.
 *
 * Fast recovery is entered on SACK/RACK or duplicate-ACK evidence of loss,
 * costs one congestion response, and lasts until snd.una passes the snd.nxt of
 * its start (the recovery point). Meanwhile Proportional Rate Reduction
 * (RFC 6937, PRR-SSRB) paces sending towards the controller's ssthresh: the
 * window becomes the current pipe plus what PRR allows.
 *
 * After a retransmission timeout every un-SACKed segment is lost and the
 * controller slow-starts from its loss window (NewReno: min(IW, ssthresh));
 * the episode ends at the same kind of recovery point, without PRR.
 *
 * Every lost segment is retransmitted as the window allows, before new data;
 * retransmissions always resend a whole record, so boundaries never change.
 */
import type { StreamStats } from './stream-config.js'

const enum Mode {
  None = 0,
  /** Entered on SACK/RACK/dup-ACK evidence: PRR paces the repair (RFC 6937). */
  Fast = 1,
  /** After an RTO: every un-SACKed segment is lost; slow start from the loss window. */
  Rto = 2,
}

export class Recovery {
  private mode = Mode.None
  /** The episode ends when the cumulative ACK reaches this offset. */
  private point = 0
  // PRR (RFC 6937)
  private prrDelivered = 0
  private prrOut = 0
  /** Bytes outstanding when the episode began (RecoverFS). */
  private recoverFs = 0
  private prrWindow = 0
  /** Episodes entered: fast recovery, and after a retransmission timeout. */
  private readonly episodes = { fast: 0, rto: 0 }

  /** In an episode of either kind. */
  get active(): boolean {
    return this.mode !== Mode.None
  }

  /** In fast recovery: PRR paces sending. */
  get isFast(): boolean {
    return this.mode === Mode.Fast
  }

  /** Fast-recovery episodes, and retransmission timeouts (each starts an episode). */
  fillStats(st: StreamStats): void {
    st.fastRetransmits = this.episodes.fast
    st.rtoTimeouts = this.episodes.rto
  }

  /** Fast recovery from now until una reaches `sndNxt`; `outstanding` = sent and unacknowledged bytes. */
  enterFast(sndNxt: number, outstanding: number): void {
    this.mode = Mode.Fast
    this.episodes.fast++
    this.point = sndNxt
    this.prrDelivered = 0
    this.prrOut = 0
    this.recoverFs = Math.max(1, outstanding)
  }

  /** Recovery after a retransmission timeout, until una reaches `sndNxt`. */
  enterRto(sndNxt: number): void {
    this.mode = Mode.Rto
    this.episodes.rto++
    this.point = sndNxt
  }

  /** Whether a cumulative ACK at `ackOff` ends the episode in progress. */
  endsAt(ackOff: number): boolean {
    return this.mode !== Mode.None && ackOff >= this.point
  }

  /** Ends the episode (or forgets it when the connection gives up on sending). */
  end(): void {
    this.mode = Mode.None
  }

  /** `len` bytes of data left during the episode. */
  onSent(len: number): void {
    if (this.mode === Mode.Fast) this.prrOut += len
  }

  /**
   * PRR-SSRB after an ACK that delivered `delivered` bytes, with `pipe` bytes
   * in flight: sets the window fast recovery sends against (see window()).
   */
  onAck(delivered: number, pipe: number, ssthresh: number, mss: number): void {
    this.prrDelivered += delivered
    let sndcnt: number
    if (pipe > ssthresh) {
      sndcnt = Math.ceil((this.prrDelivered * ssthresh) / this.recoverFs) - this.prrOut
    } else {
      sndcnt = Math.min(ssthresh - pipe, Math.max(this.prrDelivered - this.prrOut, delivered) + mss)
    }
    // The first retransmission of an episode goes out at once.
    if (this.prrOut === 0 && sndcnt < mss) sndcnt = mss
    this.prrWindow = pipe + Math.max(0, sndcnt)
  }

  /** The congestion window to send against: PRR's during fast recovery, else the controller's `cwnd`. */
  window(cwnd: number): number {
    return this.mode === Mode.Fast ? this.prrWindow : cwnd
  }
}
