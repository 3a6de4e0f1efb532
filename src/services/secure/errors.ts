/**
 * Errors of the port-443 secure channel (docs/wire.md §13.6), with stable
 * `PT_SECURE_*` codes. Each one ends the channel: after a frame that fails a
 * check nothing more is read from it.
 */
import { PilotError } from '../../errors.js'

export const SecureErrorCode = {
  /** The key swap failed: the peer closed, sent fewer than 32 bytes in time, or a low-order X25519 key. */
  HANDSHAKE: 'PT_SECURE_HANDSHAKE',
  /** A frame length outside 28 ‥ 16 MiB (no room for nonce and tag, or over the limit). */
  BAD_FRAME: 'PT_SECURE_BAD_FRAME',
  /** A frame failed authentication: tampered with, or the peer derives the key the other way (--kdf). */
  AUTH: 'PT_SECURE_AUTH',
  /** A frame carries our own role prefix: our own frame sent back to us (§17 item 13). */
  REFLECTED: 'PT_SECURE_REFLECTED',
  /** A frame's nonce starts with neither role prefix. */
  BAD_NONCE: 'PT_SECURE_BAD_NONCE',
  /** A frame's counter is not above the last one accepted: a replayed or reordered frame. */
  REPLAY: 'PT_SECURE_REPLAY',
  /** The peer closed the channel before it answered (secure send). */
  NO_ANSWER: 'PT_SECURE_NO_ANSWER',
  /** Someone already listens on that port of this node (another `secure listen`, or the IPC). */
  PORT_IN_USE: 'PT_SECURE_PORT_IN_USE',
} as const

export type SecureErrorCode = (typeof SecureErrorCode)[keyof typeof SecureErrorCode]

export class SecureError extends PilotError {
  constructor(code: SecureErrorCode, message: string, options: { hint?: string; cause?: unknown } = {}) {
    super(code, message, options)
  }
}
