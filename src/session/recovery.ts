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
export const RecoveryMode = {
  None: 0,
  /** Entered on SACK/RACK/dup-ACK evidence: PRR paces the repair (RFC 6937). */
  Fast: 1,
  /** After an RTO: every un-SACKed segment is lost; slow start from the loss window. */
  Rto: 2,
} as const
export type RecoveryMode = (typeof RecoveryMode)[keyof typeof RecoveryMode]

export class Recovery {
  private _mode: RecoveryMode = RecoveryMode.None
  /** The episode ends when the cumulative ACK reaches this offset. */
  private point = 0
  // PRR (RFC 6937)
  private prrDelivered = 0
  private prrOut = 0
  /** Bytes outstanding when the episode began (RecoverFS). */
  private recoverFs = 0
  private prrWindow = 0

  get mode(): RecoveryMode {
    return this._mode
  }

  get active(): boolean {
    return this._mode !== RecoveryMode.None
  }

  get isFast(): boolean {
    return this._mode === RecoveryMode.Fast
  }

  /** Fast recovery from now until una reaches `sndNxt`; `outstanding` = sent and unacknowledged bytes. */
  enterFast(sndNxt: number, outstanding: number): void {
    this._mode = RecoveryMode.Fast
    this.point = sndNxt
    this.prrDelivered = 0
    this.prrOut = 0
    this.recoverFs = Math.max(1, outstanding)
  }

  /** Recovery after a retransmission timeout, until una reaches `sndNxt`. */
  enterRto(sndNxt: number): void {
    this._mode = RecoveryMode.Rto
    this.point = sndNxt
  }

  /** Whether a cumulative ACK at `ackOff` ends the episode in progress. */
  endsAt(ackOff: number): boolean {
    return this._mode !== RecoveryMode.None && ackOff >= this.point
  }

  /** Ends the episode (or forgets it when the connection gives up on sending). */
  end(): void {
    this._mode = RecoveryMode.None
  }

  /** `len` bytes of data left during the episode. */
  onSent(len: number): void {
    if (this._mode === RecoveryMode.Fast) this.prrOut += len
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
    return this._mode === RecoveryMode.Fast ? this.prrWindow : cwnd
  }
}
