/**
 * Networks (issue 13): the shapes the registry, its client, the daemon and
 * the CLI share. Types and small pure helpers only; the rules live in
 * networks.ts (registry side) and the chain in audit-chain.ts.
 *
 * A network is a 16-bit ID (1..65534; 0 is the backbone every node is on,
 * 65535 reserved), a unique DNS-label name, a join rule, a policy, and
 * members with roles. On pilot0 a member of network N has the address
 * `prefix:N::node` (docs/design.md "Address mapping").
 */

export const BACKBONE_NETWORK = 0
export const MIN_NETWORK_ID = 1
export const MAX_NETWORK_ID = 0xfffe

export type JoinRule = 'open' | 'token' | 'invite'
export const JOIN_RULES: readonly JoinRule[] = ['open', 'token', 'invite']

export type NetworkRole = 'owner' | 'admin' | 'member'
export const NETWORK_ROLES: readonly NetworkRole[] = ['owner', 'admin', 'member']

export interface NetworkPolicy {
  /** Most members the network admits (joins beyond it are refused). */
  maxMembers: number
  /** Stream and datagram ports members may reach each other on; empty = every port. */
  allowedPorts: number[]
  /** Members may resolve each other's endpoints without pairwise trust. */
  membersResolve: boolean
}

export const DEFAULT_NETWORK_POLICY: Readonly<NetworkPolicy> = Object.freeze({
  maxMembers: 1024,
  allowedPorts: [],
  membersResolve: true,
})

/** `list_networks` entry (the reference's shape: id, name, members, join_rule). */
export interface NetworkSummary {
  id: number
  name: string
  members: number
  joinRule: JoinRule
}

export interface NetworkMember {
  nodeId: number
  role: NetworkRole
  /** `N:NNNN.HHHH.LLLL` with this network's ID. */
  address: string
  hostname?: string
}

/** `network_info`: members only. */
export interface NetworkInfo {
  id: number
  name: string
  joinRule: JoinRule
  policy: NetworkPolicy
  members: NetworkMember[]
  /** Unix seconds. */
  created: number
}

/** `list_nodes` entry (the reference's shape). */
export interface NetworkNode {
  nodeId: number
  address: string
  hostname?: string
}

/**
 * An invite: made and signed by an owner or admin of the network, for one
 * node, until `expires`. Used once. `signature` is standard base64 Ed25519
 * over `inviteChallenge(invite)`.
 */
export interface SignedInvite {
  networkId: number
  inviterId: number
  inviteeId: number
  /** Unix seconds. */
  expires: number
  /** 32 lowercase hex characters (16 random bytes). */
  nonce: string
  signature: string
}

/** Actions recorded in the audit chains. Chain 0 holds trust changes; chain N the changes of network N. */
export type AuditAction =
  | 'create'
  | 'join'
  | 'leave'
  | 'invite'
  | 'remove'
  | 'role'
  | 'policy'
  | 'trust'
  | 'revoke'

/**
 * One entry of an append-only, hash-chained audit log. Every field but
 * `hash` goes into the hash (audit-chain.ts `auditEntryHash`); `signed` is
 * the exact text the actor signed, so the registry cannot make up entries.
 */
export interface AuditEntry {
  /** Position in its chain, from 1. */
  seq: number
  networkId: number
  /** Unix milliseconds, registry clock. */
  time: number
  actor: number
  /** Standard base64 Ed25519 public key that made `signature`. */
  actorKey: string
  action: AuditAction
  /** The node acted on (0 when none). */
  subject: number
  /** Action-specific text (the role, the policy as canonical JSON, …). */
  detail: string
  signed: string
  signature: string
  /** Hex SHA-256 of the previous entry; 64 zeros for seq 1. */
  prev: string
  hash: string
}

export const AUDIT_GENESIS = '0'.repeat(64)

/** The result of checking a chain (audit-chain.ts `verifyAuditChain`). */
export type AuditVerification =
  | { ok: true; entries: number; head: string }
  | { ok: false; entries: number; firstBroken: number; reason: string }

/** A network's `allowed_ports` as both stores keep it (JSON text); anything unreadable is no ports. */
export function storedPorts(text: string): number[] {
  try {
    const v: unknown = JSON.parse(text)
    return Array.isArray(v) ? v.filter((p): p is number => typeof p === 'number') : []
  } catch {
    return []
  }
}

/** An audit entry as both stores keep it (one row per entry, the same columns). */
export interface AuditRow {
  network_id: number
  seq: number
  time: number
  actor: number
  actor_key: string
  action: AuditAction
  subject: number
  detail: string
  signed: string
  signature: string
  prev: string
  hash: string
}

export function auditEntryFromRow(r: AuditRow): AuditEntry {
  return {
    seq: r.seq,
    networkId: r.network_id,
    time: r.time,
    actor: r.actor,
    actorKey: r.actor_key,
    action: r.action,
    subject: r.subject,
    detail: r.detail,
    signed: r.signed,
    signature: r.signature,
    prev: r.prev,
    hash: r.hash,
  }
}
