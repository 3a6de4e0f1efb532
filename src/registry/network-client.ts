/**
 * The client side of the network operations (issue 13). RegistryClient
 * delegates to these functions; they build the signed requests exactly as
 * networks.ts checks them (challenges.ts, network-wire.ts) and read the answers.
 */
import { randomBytes } from 'node:crypto'
import type { Identity } from '../crypto/identity.js'
import type { JsonObject } from '../protocol/registry-framing.js'
import { RegistryChallenge } from './challenges.js'
import { RegistryError, RegistryErrorCode } from './errors.js'
import {
  DEFAULT_NETWORK_POLICY,
  type AuditAction,
  type AuditEntry,
  type JoinRule,
  type NetworkInfo,
  type NetworkNode,
  type NetworkPolicy,
  type NetworkRole,
  type NetworkSummary,
  type SignedInvite,
} from './network-types.js'
import { canonicalPolicy, createDetail, inviteToWire, isJoinRule, isNetworkRole, policyFromWire, policyToWire } from './network-wire.js'

/** What the functions need from the client: its identity, its clock, and a way to send. */
export interface NetworkRequester {
  readonly identity: Identity
  /** Unix ms; the registry refuses timestamps more than 300 s from its own clock. */
  now(): number
  request(message: JsonObject): Promise<JsonObject>
}

/** A signed write: the common fields plus the signature over the network challenge. */
function signedWrite(
  c: NetworkRequester,
  type: string,
  fields: JsonObject,
  sig: { action: string; nodeId: number; networkId: number; subject: number; detail: string },
): Promise<JsonObject> {
  const timestamp = Math.floor(c.now() / 1000)
  const nonce = randomBytes(16).toString('hex')
  const signature = c.identity.signChallenge(RegistryChallenge.network({ ...sig, timestamp, nonce }))
  return c.request({ type, ...fields, node_id: sig.nodeId, timestamp, nonce, signature })
}

export async function createNetwork(
  c: NetworkRequester,
  nodeId: number,
  o: { name: string; joinRule: JoinRule; token?: string; policy?: Partial<NetworkPolicy> },
): Promise<{ networkId: number; name: string }> {
  const policy = o.policy === undefined ? null : { ...DEFAULT_NETWORK_POLICY, ...definedOnly(o.policy) }
  const fields: JsonObject = { name: o.name, join_rule: o.joinRule }
  if (o.token !== undefined) fields.token = o.token
  if (policy !== null) fields.policy = policyToWire(policy)
  const detail = createDetail(o.name, o.joinRule, policy)
  const r = await signedWrite(c, 'create_network', fields, { action: 'create', nodeId, networkId: 0, subject: 0, detail })
  return { networkId: num(r, 'network_id'), name: str(r, 'name') }
}

export async function joinNetwork(
  c: NetworkRequester,
  nodeId: number,
  networkId: number,
  o: { token?: string; invite?: SignedInvite } = {},
): Promise<{ networkId: number; address: string }> {
  const fields: JsonObject = { network_id: networkId }
  if (o.token !== undefined) fields.token = o.token
  let detail: string
  if (o.invite !== undefined) {
    fields.invite = inviteToWire(o.invite)
    detail = `invite=${o.invite.nonce}`
  } else {
    // The signed text names the network's rule: learn it (list_networks is public).
    const net = (await listNetworks(c)).find((n) => n.id === networkId)
    detail = `rule=${net?.joinRule ?? 'open'}`
  }
  const r = await signedWrite(c, 'join_network', fields, { action: 'join', nodeId, networkId, subject: nodeId, detail })
  return { networkId: num(r, 'network_id'), address: str(r, 'address') }
}

export async function leaveNetwork(c: NetworkRequester, nodeId: number, networkId: number): Promise<{ networkId: number }> {
  const r = await signedWrite(c, 'leave_network', { network_id: networkId }, { action: 'leave', nodeId, networkId, subject: nodeId, detail: '' })
  return { networkId: num(r, 'network_id') }
}

/** Signs an invite for `inviteeId` valid `ttlSeconds` from now, stores it at the registry, returns it. */
export async function createInvite(
  c: NetworkRequester,
  nodeId: number,
  networkId: number,
  inviteeId: number,
  ttlSeconds: number,
): Promise<SignedInvite> {
  const unsigned = {
    networkId,
    inviterId: nodeId,
    inviteeId,
    expires: Math.floor(c.now() / 1000) + Math.max(1, Math.floor(ttlSeconds)),
    nonce: randomBytes(16).toString('hex'),
  }
  const invite: SignedInvite = { ...unsigned, signature: c.identity.signChallenge(RegistryChallenge.invite(unsigned)) }
  await c.request({ type: 'create_invite', network_id: networkId, invite: inviteToWire(invite) })
  return invite
}

export async function removeMember(c: NetworkRequester, nodeId: number, networkId: number, memberId: number): Promise<void> {
  await signedWrite(c, 'remove_member', { network_id: networkId, member_id: memberId }, { action: 'remove', nodeId, networkId, subject: memberId, detail: '' })
}

export async function setMemberRole(c: NetworkRequester, nodeId: number, networkId: number, memberId: number, role: NetworkRole): Promise<void> {
  await signedWrite(
    c,
    'set_member_role',
    { network_id: networkId, member_id: memberId, role },
    { action: 'role', nodeId, networkId, subject: memberId, detail: role },
  )
}

/** Fields not given keep their current value (read with network_info first). */
export async function setNetworkPolicy(
  c: NetworkRequester,
  nodeId: number,
  networkId: number,
  policy: Partial<NetworkPolicy>,
): Promise<NetworkPolicy> {
  const current = await networkInfo(c, nodeId, networkId)
  const merged: NetworkPolicy = { ...current.policy, ...definedOnly(policy) }
  const r = await signedWrite(
    c,
    'set_network_policy',
    { network_id: networkId, policy: policyToWire(merged) },
    { action: 'policy', nodeId, networkId, subject: 0, detail: canonicalPolicy(merged) },
  )
  return readPolicy(r.policy)
}

/**
 * Asks `request` for one page after another (`after_node` = the last node ID
 * seen) while the registry says `more`; `list` picks a page's entries.
 */
async function allPages(request: (afterNode: number) => Promise<JsonObject>, list: (r: JsonObject) => JsonObject[]): Promise<{ first: JsonObject; entries: JsonObject[] }> {
  const first = await request(0)
  const entries = list(first)
  let r = first
  while (r.more === true && entries.length > 0) {
    const last = num(entries[entries.length - 1]!, 'node_id')
    r = await request(last)
    const page = list(r)
    if (page.length === 0 || num(page[0]!, 'node_id') <= last) break // no progress: stop rather than loop
    entries.push(...page)
  }
  return { first, entries }
}

export async function networkInfo(c: NetworkRequester, nodeId: number, networkId: number): Promise<NetworkInfo> {
  const { first: r, entries } = await allPages(
    (after) =>
      c.request({
        type: 'network_info',
        network_id: networkId,
        node_id: nodeId,
        ...(after === 0 ? {} : { after_node: after }),
        signature: c.identity.signChallenge(RegistryChallenge.networkInfo(nodeId, networkId)),
      }),
    (page) => objects(page.members),
  )
  const rule = r.join_rule
  return {
    id: num(r, 'network_id'),
    name: str(r, 'name'),
    joinRule: isJoinRule(rule) ? rule : 'open',
    policy: readPolicy(r.policy),
    members: entries.map((m) => {
      const role = m.role
      const out: NetworkInfo['members'][number] = { nodeId: num(m, 'node_id'), role: isNetworkRole(role) ? role : 'member', address: str(m, 'address') }
      if (typeof m.hostname === 'string') out.hostname = m.hostname
      return out
    }),
    created: typeof r.created === 'number' ? r.created : 0,
  }
}

export async function listNetworks(c: NetworkRequester): Promise<NetworkSummary[]> {
  const r = await c.request({ type: 'list_networks' })
  return objects(r.networks).map((n) => ({
    id: num(n, 'id'),
    name: str(n, 'name'),
    members: typeof n.members === 'number' ? n.members : 0,
    joinRule: isJoinRule(n.join_rule) ? n.join_rule : 'open',
  }))
}

export async function listNodes(c: NetworkRequester, nodeId: number, networkId: number): Promise<NetworkNode[]> {
  const { entries } = await allPages(
    (after) =>
      c.request({
        type: 'list_nodes',
        network_id: networkId,
        requester_id: nodeId,
        ...(after === 0 ? {} : { after_node: after }),
        signature: c.identity.signChallenge(RegistryChallenge.listNodes(nodeId, networkId)),
      }),
    (page) => objects(page.nodes),
  )
  return entries.map((n) => {
    const out: NetworkNode = { nodeId: num(n, 'node_id'), address: str(n, 'address') }
    if (typeof n.hostname === 'string') out.hostname = n.hostname
    return out
  })
}

/** The whole chain of `networkId`, paging with after_seq until the registry says there is no more. */
export async function auditLog(c: NetworkRequester, nodeId: number, networkId: number, o: { adminToken?: string } = {}): Promise<AuditEntry[]> {
  const entries: AuditEntry[] = []
  for (;;) {
    const message: JsonObject = {
      type: 'audit_log',
      network_id: networkId,
      node_id: nodeId,
      after_seq: entries.length === 0 ? 0 : entries[entries.length - 1]!.seq,
      signature: c.identity.signChallenge(RegistryChallenge.auditLog(nodeId, networkId)),
    }
    if (o.adminToken !== undefined) message.admin_token = o.adminToken
    const r = await c.request(message)
    const page = objects(r.entries).map(readAuditEntry)
    entries.push(...page)
    if (r.more !== true || page.length === 0) return entries
  }
}

function readAuditEntry(e: JsonObject): AuditEntry {
  return {
    seq: num(e, 'seq'),
    networkId: num(e, 'network_id'),
    time: num(e, 'time'),
    actor: num(e, 'actor'),
    actorKey: str(e, 'actor_key'),
    action: str(e, 'action') as AuditAction,
    subject: num(e, 'subject'),
    detail: str(e, 'detail'),
    signed: str(e, 'signed'),
    signature: str(e, 'signature'),
    prev: str(e, 'prev'),
    hash: str(e, 'hash'),
  }
}

function readPolicy(v: unknown): NetworkPolicy {
  const p = policyFromWire(v)
  if (typeof p === 'string') throw new RegistryError(RegistryErrorCode.BAD_RESPONSE, `registry answer has a bad policy: ${p}`)
  return { ...DEFAULT_NETWORK_POLICY, ...p }
}

function definedOnly(p: Partial<NetworkPolicy>): Partial<NetworkPolicy> {
  const out: Partial<NetworkPolicy> = {}
  if (p.maxMembers !== undefined) out.maxMembers = p.maxMembers
  if (p.allowedPorts !== undefined) out.allowedPorts = p.allowedPorts
  if (p.membersResolve !== undefined) out.membersResolve = p.membersResolve
  return out
}

function objects(v: unknown): JsonObject[] {
  return Array.isArray(v) ? v.filter((e): e is JsonObject => typeof e === 'object' && e !== null && !Array.isArray(e)) : []
}

function num(r: JsonObject, key: string): number {
  const v = r[key]
  if (typeof v !== 'number') throw new RegistryError(RegistryErrorCode.BAD_RESPONSE, `registry answer ${String(r.type ?? 'entry')} lacks "${key}"`)
  return v
}

function str(r: JsonObject, key: string): string {
  const v = r[key]
  if (typeof v !== 'string') throw new RegistryError(RegistryErrorCode.BAD_RESPONSE, `registry answer ${String(r.type ?? 'entry')} lacks "${key}"`)
  return v
}
