/**
 * User-facing daemon errors with stable `PT_*` codes and hints. These cross
 * the control socket as `{code, message, hint}`; they are never thrown per
 * packet (bad packets are counters in the session driver and the tunnel).
 */
import { PilotError } from '../errors.js'

export const DaemonErrorCode = {
  /** The peer refused our stream and we have no mutual trust with it. */
  TRUST_REQUIRED: 'PT_TRUST_REQUIRED',
  /** A trust operation needs a request that does not exist (approve/reject without one). */
  TRUST_NO_REQUEST: 'PT_TRUST_NO_REQUEST',
  /** A trust operation on ourselves, or on a node the registry does not know. */
  TRUST_BAD_TARGET: 'PT_TRUST_BAD_TARGET',
  /** No path to the peer answered in time. */
  PEER_UNREACHABLE: 'PT_PEER_UNREACHABLE',
  /** The peer answered with RST although we trust each other: nothing listens there. */
  CONNECTION_REFUSED: 'PT_CONNECTION_REFUSED',
  /** A hostname the registry does not know, or text that is no target at all. */
  NAME_NOT_FOUND: 'PT_NAME_NOT_FOUND',
  /** No echo answer within the ping timeout. */
  PING_TIMEOUT: 'PT_PING_TIMEOUT',
  /** The daemon is shutting down or closed. */
  CLOSED: 'PT_DAEMON_CLOSED',
  /** A flow in a network (not the backbone) that its rules forbid: we or the peer are not members, or the port is closed there. */
  NETWORK_REFUSED: 'PT_NETWORK_REFUSED',
  /** Trust state could not be written to disk. */
  STATE_WRITE: 'PT_DAEMON_STATE_WRITE',
} as const

export type DaemonErrorCode = (typeof DaemonErrorCode)[keyof typeof DaemonErrorCode]

export class DaemonError extends PilotError {
  constructor(code: DaemonErrorCode, message: string, options: { hint?: string; cause?: unknown } = {}) {
    super(code, message, options)
  }
}

export function daemonClosedError(): DaemonError {
  return new DaemonError(DaemonErrorCode.CLOSED, 'the daemon is shutting down')
}
