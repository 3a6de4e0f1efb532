/**
 * The text form of an invite for humans to pass around (the CLI prints it,
 * `network join --invite` takes it): `pilot-invite1.` + base64url of the
 * invite's JSON with snake_case keys. Decoding checks the shape only; the
 * registry checks the signature.
 */
import { NETWORK_ERROR_HINTS, NetworkErrorCode, RegistryError } from './errors.js'
import type { SignedInvite } from './network-types.js'
import { inviteFromWire, inviteToWire } from './network-wire.js'

export const INVITE_TEXT_PREFIX = 'pilot-invite1.'
const MAX_INVITE_TEXT = 1024
const BASE64URL = /^[A-Za-z0-9_-]+$/

export function encodeInviteText(invite: SignedInvite): string {
  return INVITE_TEXT_PREFIX + Buffer.from(JSON.stringify(inviteToWire(invite)), 'utf8').toString('base64url')
}

/** Throws RegistryError PT_NETWORK_INVITE_INVALID on anything but a well-formed invite. */
export function decodeInviteText(text: string): SignedInvite {
  const trimmed = typeof text === 'string' ? text.trim() : ''
  if (trimmed.length > MAX_INVITE_TEXT || !trimmed.startsWith(INVITE_TEXT_PREFIX)) {
    throw invalid(`an invite starts with ${INVITE_TEXT_PREFIX}`)
  }
  const body = trimmed.slice(INVITE_TEXT_PREFIX.length)
  if (!BASE64URL.test(body)) throw invalid('the invite text is not base64url')
  let json: unknown
  try {
    json = JSON.parse(Buffer.from(body, 'base64url').toString('utf8'))
  } catch {
    throw invalid('the invite text does not hold JSON')
  }
  const invite = inviteFromWire(json)
  if (typeof invite === 'string') throw invalid(invite)
  return invite
}

function invalid(problem: string): RegistryError {
  return new RegistryError(NetworkErrorCode.INVITE_INVALID, `invalid invite: ${problem}`, {
    hint: NETWORK_ERROR_HINTS[NetworkErrorCode.INVITE_INVALID]!,
  })
}
