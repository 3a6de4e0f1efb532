/**
 * The audit log's hash chain (issue 13), pure: the registry appends with it,
 * and the CLI and tests check a chain they fetched without trusting the
 * registry. Each entry's hash covers every other field, including the hash of
 * the entry before; each entry carries the actor's own signature over
 * `signed`, so a registry can drop the tail of a chain but cannot make up or
 * alter an entry without breaking the chain or a signature.
 */
import { createHash } from 'node:crypto'
import { decodeStdBase64, verifyChallenge } from '../crypto/identity.js'
import { AUDIT_GENESIS, type AuditEntry, type AuditVerification } from './network-types.js'

const NETWORK_ACTIONS: ReadonlySet<string> = new Set(['create', 'join', 'leave', 'remove', 'role', 'policy'])

/** Hex SHA-256 of the entry's fields, one per line, after a version tag. */
export function auditEntryHash(e: Omit<AuditEntry, 'hash'>): string {
  const text = [
    'pilot-audit-v1',
    e.seq,
    e.networkId,
    e.time,
    e.actor,
    e.actorKey,
    e.action,
    e.subject,
    e.detail,
    e.signed,
    e.signature,
    e.prev,
  ].join('\n')
  return createHash('sha256').update(text, 'utf8').digest('hex')
}

/** The start every `signed` text of this entry's kind must have, or null for an unknown action. */
export function expectedSignedPrefix(e: Pick<AuditEntry, 'action' | 'actor' | 'networkId' | 'subject'>): string | null {
  // A create is signed before the network has its ID (network 0 in the signed text); its detail names it.
  if (NETWORK_ACTIONS.has(e.action)) return `pilot-net:v1:${e.action}:${e.actor}:${e.action === 'create' ? 0 : e.networkId}:${e.subject}:`
  if (e.action === 'invite') return `pilot-invite:v1:${e.networkId}:${e.actor}:${e.subject}:`
  if (e.action === 'trust') return `report_trust:${e.actor}:${e.subject}`
  if (e.action === 'revoke') return `revoke_trust:${e.actor}:${e.subject}`
  return null
}

/**
 * Checks one chain, given in seq order from 1: seq continuity, the `prev`
 * links, each hash, each signature over `signed` with `actorKey`, and that
 * `signed` names this entry's action, actor, network and subject. Names the
 * first entry that fails.
 */
export function verifyAuditChain(entries: readonly AuditEntry[]): AuditVerification {
  let prev = AUDIT_GENESIS
  const networkId = entries[0]?.networkId
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i]!
    const broken = (reason: string): AuditVerification => ({ ok: false, entries: entries.length, firstBroken: e.seq, reason })
    if (e.seq !== i + 1) return broken(`expected seq ${i + 1}, found ${e.seq}`)
    if (e.networkId !== networkId) return broken(`entry belongs to network ${e.networkId}, not ${String(networkId)}`)
    if (e.prev !== prev) return broken('prev does not match the hash of the entry before')
    const { hash, ...rest } = e
    if (auditEntryHash(rest) !== hash) return broken('hash does not match the entry')
    const prefix = expectedSignedPrefix(e)
    if (prefix === null) return broken(`unknown action ${String(e.action).slice(0, 20)}`)
    if (!signedMatches(e, prefix)) return broken('signed text does not name this action, actor, network, subject and detail')
    const key = decodeStdBase64(e.actorKey)
    if (key === null || key.length !== 32 || !verifyChallenge(key, e.signed, e.signature)) return broken('signature does not verify')
    prev = hash
  }
  return { ok: true, entries: entries.length, head: prev }
}

const SIGNED_TAIL = /^:[0-9]+:[0-9a-f]{32}$/

/**
 * `signed` is exactly what this entry claims: the trust challenges whole;
 * network writes `<prefix><detail>:<timestamp>:<nonce>`; invites
 * `<prefix><expires>:<nonce>` with detail `expires=<expires>`. So neither the
 * detail nor the subject can be rewritten under someone's signature.
 */
function signedMatches(e: AuditEntry, prefix: string): boolean {
  if (e.action === 'trust' || e.action === 'revoke') return e.signed === prefix
  if (!e.signed.startsWith(prefix)) return false
  const rest = e.signed.slice(prefix.length)
  if (e.action === 'invite') {
    if (!e.detail.startsWith('expires=')) return false
    return SIGNED_TAIL.test(`:${rest}`) && rest.startsWith(`${e.detail.slice('expires='.length)}:`)
  }
  return rest.startsWith(e.detail) && SIGNED_TAIL.test(rest.slice(e.detail.length))
}
