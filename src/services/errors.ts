/**
 * Errors of the built-in data services (data exchange :1001, event stream
 * :1002) as the CLI sees them, with stable `PT_*` codes and hints.
 */
import { PilotError } from '../errors.js'

export const ServiceErrorCode = {
  /** The service is switched off on this node (--no-dataexchange / --no-eventstream). */
  DISABLED: 'PT_SERVICE_DISABLED',
  /** The peer answered `ERR …` (e.g. its inbox is full). */
  REFUSED: 'PT_SERVICE_REFUSED',
  /** The peer closed or went silent without an answer, or answered something that is not one. */
  NO_ANSWER: 'PT_SERVICE_NO_ANSWER',
  /** A local file to send is missing, unreadable or not a regular file. */
  FILE: 'PT_SERVICE_FILE',
  /** The message, file or topic is larger than the protocol allows. */
  TOO_LARGE: 'PT_SERVICE_TOO_LARGE',
  /** Our own inbox quota (bytes or count) is used up. */
  INBOX_FULL: 'PT_INBOX_FULL',
  /** The inbox directory could not be read or written. */
  INBOX_IO: 'PT_INBOX_IO',
  /** A subscription was cut off because its reader fell behind. */
  SLOW_SUBSCRIBER: 'PT_SUBSCRIBER_TOO_SLOW',
  /** The broker ended the subscription. */
  SUBSCRIPTION_ENDED: 'PT_SUBSCRIPTION_ENDED',
} as const

export type ServiceErrorCode = (typeof ServiceErrorCode)[keyof typeof ServiceErrorCode]

export class ServiceError extends PilotError {
  constructor(code: ServiceErrorCode, message: string, options: { hint?: string; cause?: unknown } = {}) {
    super(code, message, options)
  }
}
