/**
 * Why a stream ended, as typed errors with stable `PT_SESSION_*` codes.
 * These are close reasons reported by a connection (its `error` getter), never
 * thrown per packet: bad packets are dropped and counted.
 */
import { PilotError } from '../errors.js'

export type SessionCloseReason =
  | 'reset' // the peer sent RST
  | 'refused' // RST in answer to our SYN, or the peer's version is unsupported
  | 'connect-timeout' // no SYN|ACK within the connect timeout
  | 'retransmit-timeout' // a segment reached the transmission limit with the peer silent
  | 'idle-timeout' // nothing received for the idle timeout
  | 'aborted' // the local application called reset()
  | 'closing' // the endpoint is shutting down

const CODES: Record<SessionCloseReason, string> = {
  reset: 'PT_SESSION_RESET',
  refused: 'PT_SESSION_REFUSED',
  'connect-timeout': 'PT_SESSION_CONNECT_TIMEOUT',
  'retransmit-timeout': 'PT_SESSION_RETRANSMIT_TIMEOUT',
  'idle-timeout': 'PT_SESSION_IDLE_TIMEOUT',
  aborted: 'PT_SESSION_ABORTED',
  closing: 'PT_SESSION_CLOSING',
}

const HINTS: Partial<Record<SessionCloseReason, string>> = {
  refused: 'nothing listens on that port, or the peer refused the connection',
  'connect-timeout': 'the peer did not answer; check that it is online and reachable (or relayed)',
  'retransmit-timeout': 'the path to the peer stopped delivering packets',
  'idle-timeout': 'the peer sent nothing (not even keepalives) for too long',
}

/** A stream's close reason. `sentRst` says whether we told the peer with an RST. */
export class SessionError extends PilotError {
  readonly reason: SessionCloseReason
  readonly sentRst: boolean

  constructor(reason: SessionCloseReason, message: string, sentRst: boolean) {
    const hint = HINTS[reason]
    super(CODES[reason], message, hint === undefined ? {} : { hint })
    this.reason = reason
    this.sentRst = sentRst
  }

  static codeOf(reason: SessionCloseReason): string {
    return CODES[reason]
  }
}

/** Misuse of the session API by the caller (e.g. no free ephemeral port). Control plane only. */
export class SessionUsageError extends PilotError {
  constructor(code: 'PT_SESSION_NO_PORTS' | 'PT_SESSION_PORT_IN_USE' | 'PT_SESSION_BAD_ARGUMENT', message: string) {
    super(code, message)
  }
}
