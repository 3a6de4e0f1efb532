/**
 * The opening handshake's retransmission (docs/wire.md §6.4): our SYN, or the
 * SYN|ACK of an accepted connection, goes out again after synInitialRto,
 * doubling up to synMaxRto, and never later than the connect timeout, which
 * ends the attempt. A handshake whose SYN left only once gives an RTT sample
 * (Karn). A duplicate SYN asks for the SYN|ACK again, also after the
 * connection is open (as the reference does).
 */
import type { Millis } from './types.js'

export interface HandshakeConfig {
  synInitialRto: Millis
  synMaxRto: Millis
  connectTimeout: Millis
}

/** What handleTimeout() concluded. */
export const HandshakeTimeout = {
  None: 0,
  /** The SYN (or SYN|ACK) is due again. */
  Retransmit: 1,
  /** The connect timeout passed without an answer. */
  Expired: 2,
} as const
export type HandshakeTimeout = (typeof HandshakeTimeout)[keyof typeof HandshakeTimeout]

export class Handshake {
  private readonly cfg: HandshakeConfig
  private readonly openedAt: Millis
  private rto: Millis
  private _transmissions = 0
  private _due = true
  private deadline = Number.POSITIVE_INFINITY

  constructor(cfg: HandshakeConfig, now: Millis) {
    this.cfg = cfg
    this.openedAt = now
    this.rto = cfg.synInitialRto
  }

  /** A SYN or SYN|ACK should go out at the next chance. */
  get due(): boolean { return this._due }

  /** SYNs (or SYN|ACKs) sent while opening. */
  get transmissions(): number { return this._transmissions }

  /** Deadline of the retransmission timer, or Infinity. */
  get nextDeadline(): Millis { return this.deadline }

  /** Send the SYN|ACK again (the peer repeated its SYN). */
  request(): void {
    this._due = true
  }

  /** The SYN or SYN|ACK is leaving; while `opening`, it counts and arms the retransmission timer. */
  sent(now: Millis, opening: boolean): void {
    this._due = false
    if (!opening) return
    this._transmissions++
    this.deadline = Math.min(now + this.rto, this.openedAt + this.cfg.connectTimeout)
  }

  /** Runs the retransmission timer. */
  handleTimeout(now: Millis): HandshakeTimeout {
    if (this.deadline > now) return HandshakeTimeout.None
    this.deadline = Number.POSITIVE_INFINITY
    if (now - this.openedAt >= this.cfg.connectTimeout) return HandshakeTimeout.Expired
    this.rto = Math.min(this.rto * 2, this.cfg.synMaxRto)
    this._due = true
    // Never sleep past the connect deadline.
    this.deadline = Math.min(now + this.rto, this.openedAt + this.cfg.connectTimeout)
    return HandshakeTimeout.Retransmit
  }

  /** The handshake completed: returns its RTT if the SYN left once, else −1. */
  complete(now: Millis): number {
    this.stop()
    return this._transmissions === 1 ? now - this.openedAt : -1
  }

  /** Nothing more to send or time. */
  stop(): void {
    this._due = false
    this.deadline = Number.POSITIVE_INFINITY
  }
}
