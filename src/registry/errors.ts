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
  /** The store (SQLite file or PostgreSQL) cannot be opened or reached, or has a schema newer than this code. */
  STORE: 'PT_REGISTRY_STORE',
  /** The registry's TLS certificate or key cannot be read, made or used (issue 15). */
  TLS: 'PT_REGISTRY_TLS',
  /** The registry presented a TLS certificate whose pin is not the configured one (the hint names the presented pin). */
  TLS_PIN: 'PT_REGISTRY_TLS_PIN',
} as const

export type RegistryErrorCode = (typeof RegistryErrorCode)[keyof typeof RegistryErrorCode]

/**
 * Why the registry refused a network operation (issue 13). The server sends
 * the code as an extra `code` key next to `error` (Go clients only read
 * `error`); the client turns it into a RegistryError with this code.
 */
export const NetworkErrorCode = {
  NOT_FOUND: 'PT_NETWORK_NOT_FOUND',
  EXISTS: 'PT_NETWORK_EXISTS',
  BAD_NAME: 'PT_NETWORK_BAD_NAME',
  BAD_TOKEN: 'PT_NETWORK_BAD_TOKEN',
  INVITE_REQUIRED: 'PT_NETWORK_INVITE_REQUIRED',
  INVITE_INVALID: 'PT_NETWORK_INVITE_INVALID',
  INVITE_EXPIRED: 'PT_NETWORK_INVITE_EXPIRED',
  FULL: 'PT_NETWORK_FULL',
  NOT_ADMIN: 'PT_NETWORK_NOT_ADMIN',
  NOT_MEMBER: 'PT_NETWORK_NOT_MEMBER',
  ALREADY_MEMBER: 'PT_NETWORK_ALREADY_MEMBER',
  LAST_OWNER: 'PT_NETWORK_LAST_OWNER',
  REPLAY: 'PT_NETWORK_REPLAY',
  BAD_POLICY: 'PT_NETWORK_BAD_POLICY',
} as const

export type NetworkErrorCode = (typeof NetworkErrorCode)[keyof typeof NetworkErrorCode]

const NETWORK_CODES: ReadonlySet<string> = new Set(Object.values(NetworkErrorCode))

export function isNetworkErrorCode(code: unknown): code is NetworkErrorCode {
  return typeof code === 'string' && NETWORK_CODES.has(code)
}

/** What the user can do about each network error (the CLI prints it). */
export const NETWORK_ERROR_HINTS: Readonly<Partial<Record<NetworkErrorCode, string>>> = {
  PT_NETWORK_NOT_FOUND: 'see the networks with `pilot-tun network list`',
  PT_NETWORK_EXISTS: 'choose another name',
  PT_NETWORK_BAD_NAME: 'a network name is 1-63 of a-z, 0-9 and -, not starting or ending with -',
  PT_NETWORK_BAD_TOKEN: 'ask an owner for the token',
  PT_NETWORK_INVITE_REQUIRED: 'ask an owner/admin: `pilot-tun network invite <net> <you>`',
  PT_NETWORK_INVITE_INVALID: 'ask an owner/admin of the network for a new invite',
  PT_NETWORK_INVITE_EXPIRED: 'ask for a new invite',
  PT_NETWORK_FULL: 'an owner can raise max_members: `pilot-tun network policy <net> --max-members N`',
  PT_NETWORK_NOT_ADMIN: 'only owners/admins can do this (only owners change roles)',
  PT_NETWORK_NOT_MEMBER: 'join the network first: `pilot-tun network join <net>`',
  PT_NETWORK_ALREADY_MEMBER: 'see your networks with `pilot-tun network list`',
  PT_NETWORK_LAST_OWNER: 'hand over first: `pilot-tun network role <net> <node> owner`',
  PT_NETWORK_REPLAY: 'check the clock of this host (the registry allows 300 s of difference)',
  PT_NETWORK_BAD_POLICY: 'ports are 1-65535, max_members 1-1000000 and not below the current member count',
}

export class RegistryError extends PilotError {
  /** The registry's own error text for `PT_REGISTRY_ERROR`, else undefined. */
  readonly serverError: string | undefined

  constructor(
    code: RegistryErrorCode | NetworkErrorCode,
    message: string,
    options: { hint?: string; cause?: unknown; serverError?: string } = {},
  ) {
    super(code, message, options)
    this.serverError = options.serverError
  }
}
