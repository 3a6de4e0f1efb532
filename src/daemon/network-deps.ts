/**
 * The registry-side pieces the daemon's network commands use, in one place
 * (issue 13): the audit chain check and the invite text form. They live in
 * src/registry/ (audit-chain.ts, invite-text.ts); this module is the one
 * seam between them and the daemon.
 *
 * LEAD: once src/registry/audit-chain.ts and src/registry/invite-text.ts are
 * merged, replace the three stand-ins below by re-exports of the registry's
 * verifyAuditChain, encodeInviteText and decodeInviteText.
 *
 * The stand-ins keep the contract's behaviour where it is fixed by the
 * contract (the invite text form), and refuse to verify rather than guess.
 */
import { PilotError } from '../errors.js'
import type { AuditEntry, AuditVerification, SignedInvite } from '../registry/network-types.js'

const INVITE_PREFIX = 'pilot-invite1.'

function inviteInvalid(message: string): PilotError {
  return new PilotError('PT_NETWORK_INVITE_INVALID', message, { hint: 'ask an owner/admin for a new invite: `pilot-tun network invite <net> <you>`' })
}

/** Stand-in for invite-text.ts `encodeInviteText`: `pilot-invite1.` + base64url(JSON, snake_case keys). */
export function encodeInviteText(i: SignedInvite): string {
  const json = JSON.stringify({
    network_id: i.networkId,
    inviter_id: i.inviterId,
    invitee_id: i.inviteeId,
    expires: i.expires,
    nonce: i.nonce,
    signature: i.signature,
  })
  return INVITE_PREFIX + Buffer.from(json, 'utf8').toString('base64url')
}

/** Stand-in for invite-text.ts `decodeInviteText`; PT_NETWORK_INVITE_INVALID on anything else. */
export function decodeInviteText(text: string): SignedInvite {
  const t = text.trim()
  if (!t.startsWith(INVITE_PREFIX) || t.length > 2048) throw inviteInvalid('this is not a pilot-tun invite (it starts with "pilot-invite1.")')
  let o: Record<string, unknown>
  try {
    o = JSON.parse(Buffer.from(t.slice(INVITE_PREFIX.length), 'base64url').toString('utf8')) as Record<string, unknown>
  } catch {
    throw inviteInvalid('the invite text is damaged (not base64url JSON)')
  }
  const int = (k: string): number => {
    const v = o?.[k]
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw inviteInvalid(`the invite's "${k}" is missing or not a number`)
    return v
  }
  const str = (k: string): string => {
    const v = o?.[k]
    if (typeof v !== 'string' || v.length === 0 || v.length > 256) throw inviteInvalid(`the invite's "${k}" is missing`)
    return v
  }
  return { networkId: int('network_id'), inviterId: int('inviter_id'), inviteeId: int('invitee_id'), expires: int('expires'), nonce: str('nonce'), signature: str('signature') }
}

/** Stand-in for audit-chain.ts `verifyAuditChain`: refuses (the daemon does not guess a verdict). */
export function verifyAuditChain(_entries: AuditEntry[]): AuditVerification {
  throw new PilotError('PT_NETWORK_VERIFY_UNAVAILABLE', 'this build cannot verify registry audit chains yet', { hint: 'audit verify --local checks the local trust log' })
}
