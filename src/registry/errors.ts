/**
 * Errors of the registry client and store. The server never throws at a
 * client: it answers `{"type":"error","error":<text>}` and counts a
 * `RejectReason` (see request-handler.ts).
 */
import { PilotError } from '../errors.js'

export const RegistryErrorCode = {
  /** No TCP connection to the registry could be made (or it kept dropping). */
  UNREACHABLE: 'PT_REGISTRY_UNREACHABLE',
  /** The registry answered with an error object; `serverError` holds its text. */
  ERROR: 'PT_REGISTRY_ERROR',
  /** No answer within the request timeout. */
  TIMEOUT: 'PT_REGISTRY_TIMEOUT',
  /** The client was closed while the request was queued or in flight. */
  CLOSED: 'PT_REGISTRY_CLOSED',
  /** The registry answered, but not with the fields the operation returns. */
  BAD_RESPONSE: 'PT_REGISTRY_BAD_RESPONSE',
  /** The server could not bind its listening address. */
  LISTEN: 'PT_REGISTRY_LISTEN',
  /** The SQLite store cannot be opened or has a schema newer than this code. */
  STORE: 'PT_REGISTRY_STORE',
} as const

export type RegistryErrorCode = (typeof RegistryErrorCode)[keyof typeof RegistryErrorCode]

export class RegistryError extends PilotError {
  /** The registry's own error text for `PT_REGISTRY_ERROR`, else undefined. */
  readonly serverError: string | undefined

  constructor(
    code: RegistryErrorCode,
    message: string,
    options: { hint?: string; cause?: unknown; serverError?: string } = {},
  ) {
    super(code, message, options)
    this.serverError = options.serverError
  }
}
