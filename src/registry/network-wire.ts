/**
 * The JSON shapes of the network operations (issue 13), shared by the
 * registry (networks.ts) and its client (network-client.ts) so the two build
 * the same signed strings. Pure: no I/O, no clock.
 */
import type { JsonObject } from '../protocol/registry-framing.js'
import { JOIN_RULES, NETWORK_ROLES, type AuditEntry, type JoinRule, type NetworkPolicy, type NetworkRole, type SignedInvite } from './network-types.js'

/** 16 random bytes as 32 lowercase hex characters. */
export const NONCE = /^[0-9a-f]{32}$/
/** A network name is a DNS label. */
const NETWORK_NAME = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/
export const MAX_POLICY_PORTS = 1024
export const MAX_MEMBERS_LIMIT = 1_000_000

export function isNetworkName(name: string): boolean {
  return NETWORK_NAME.test(name)
}

export function isJoinRule(v: unknown): v is JoinRule {
  return typeof v === 'string' && (JOIN_RULES as readonly string[]).includes(v)
}

export function isNetworkRole(v: unknown): v is NetworkRole {
  return typeof v === 'string' && (NETWORK_ROLES as readonly string[]).includes(v)
}

/** `{"allowed_ports":[sorted unique],"max_members":n,"members_resolve":b}`: what policy changes sign. */
export function canonicalPolicy(p: NetworkPolicy): string {
  const ports = [...new Set(p.allowedPorts)].sort((a, b) => a - b)
  return `{"allowed_ports":${JSON.stringify(ports)},"max_members":${p.maxMembers},"members_resolve":${p.membersResolve}}`
}

export function policyToWire(p: NetworkPolicy): JsonObject {
  return { allowed_ports: [...new Set(p.allowedPorts)].sort((a, b) => a - b), max_members: p.maxMembers, members_resolve: p.membersResolve }
}

export function partialPolicyToWire(p: Partial<NetworkPolicy>): JsonObject {
  const out: JsonObject = {}
  if (p.maxMembers !== undefined) out.max_members = p.maxMembers
  if (p.allowedPorts !== undefined) out.allowed_ports = [...new Set(p.allowedPorts)].sort((a, b) => a - b)
  if (p.membersResolve !== undefined) out.members_resolve = p.membersResolve
  return out
}

/**
 * A (partial) policy from its wire form, or why not. Unknown keys, wrong
 * types and out-of-range values are all problems; ports come back sorted and unique.
 */
export function policyFromWire(v: unknown): Partial<NetworkPolicy> | string {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return 'policy must be an object'
  const o = v as JsonObject
  const out: Partial<NetworkPolicy> = {}
  for (const key of Object.keys(o)) {
    if (key !== 'max_members' && key !== 'allowed_ports' && key !== 'members_resolve') return `unknown policy key ${key.slice(0, 40)}`
  }
  if (o.max_members !== undefined) {
    const n = o.max_members
    if (typeof n !== 'number' || !Number.isInteger(n) || n < 1 || n > MAX_MEMBERS_LIMIT) return `max_members must be an integer in 1..${MAX_MEMBERS_LIMIT}`
    out.maxMembers = n
  }
  if (o.allowed_ports !== undefined) {
    const ports = o.allowed_ports
    if (!Array.isArray(ports) || ports.length > MAX_POLICY_PORTS) return `allowed_ports must be a list of at most ${MAX_POLICY_PORTS} ports`
    for (const p of ports) {
      if (typeof p !== 'number' || !Number.isInteger(p) || p < 1 || p > 65535) return 'ports must be integers in 1..65535'
    }
    out.allowedPorts = [...new Set(ports as number[])].sort((a, b) => a - b)
  }
  if (o.members_resolve !== undefined) {
    if (typeof o.members_resolve !== 'boolean') return 'members_resolve must be true or false'
    out.membersResolve = o.members_resolve
  }
  return out
}

/** The `detail` a create_network signs: the policy is in it when the request carries one. */
export function createDetail(name: string, rule: JoinRule, policy: NetworkPolicy | null): string {
  const base = `name=${name};rule=${rule}`
  return policy === null ? base : `${base};policy=${canonicalPolicy(policy)}`
}

export function inviteToWire(i: SignedInvite): JsonObject {
  return { network_id: i.networkId, inviter_id: i.inviterId, invitee_id: i.inviteeId, expires: i.expires, nonce: i.nonce, signature: i.signature }
}

/** A SignedInvite from its wire form (snake_case JSON), or why not. The signature is not checked here. */
export function inviteFromWire(v: unknown): SignedInvite | string {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return 'invite must be an object'
  const o = v as JsonObject
  const int = (key: string, min: number, max: number): number | null => {
    const n = o[key]
    return typeof n === 'number' && Number.isInteger(n) && n >= min && n <= max ? n : null
  }
  const networkId = int('network_id', 1, 0xfffe)
  const inviterId = int('inviter_id', 1, 0xffffffff)
  const inviteeId = int('invitee_id', 1, 0xffffffff)
  const expires = int('expires', 0, 2 ** 40)
  if (networkId === null) return 'invite: bad network_id'
  if (inviterId === null) return 'invite: bad inviter_id'
  if (inviteeId === null) return 'invite: bad invitee_id'
  if (expires === null) return 'invite: bad expires'
  if (typeof o.nonce !== 'string' || !NONCE.test(o.nonce)) return 'invite: bad nonce'
  if (typeof o.signature !== 'string' || o.signature.length === 0 || o.signature.length > 128) return 'invite: bad signature'
  return { networkId, inviterId, inviteeId, expires, nonce: o.nonce, signature: o.signature }
}

/** An audit entry as the registry sends it (`audit_log`) and the CLI prints it with --json: snake_case keys. */
export function auditEntryToWire(e: AuditEntry): {
  seq: number
  network_id: number
  time: number
  actor: number
  actor_key: string
  action: string
  subject: number
  detail: string
  signed: string
  signature: string
  prev: string
  hash: string
} {
  return {
    seq: e.seq,
    network_id: e.networkId,
    time: e.time,
    actor: e.actor,
    actor_key: e.actorKey,
    action: e.action,
    subject: e.subject,
    detail: e.detail,
    signed: e.signed,
    signature: e.signature,
    prev: e.prev,
    hash: e.hash,
  }
}
