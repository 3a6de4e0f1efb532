/**
 * Networks in the registry (issue 13): the request handlers and their rules.
 *
 *   - Every write is signed by its actor over `RegistryChallenge.network(...)`
 *     with a timestamp (±300 s of the registry clock) and a nonce never seen
 *     before from that node (kept in the store, so a restart does not reopen
 *     the window); `create_invite` is authenticated by the invite's own signature.
 *   - Join rules: `open`; `token` (scrypt with a per-network salt, compared in
 *     constant time; the token itself is never stored); `invite` (signed by a
 *     current owner or admin, for one node, until `expires`, used once). An
 *     invite also admits to a network of any other rule.
 *   - Roles: owners and admins invite, remove members and set the policy; an
 *     admin cannot remove an owner or another admin; only owners change roles.
 *     The last owner cannot leave or give up the role while others remain
 *     (alone, it may leave: the network stays, empty, with its chain).
 *   - Each change and its audit entry (chain N; trust changes in chain 0) are
 *     stored in one transaction; a refused request changes nothing, its nonce
 *     included (a replay of a refused request is judged again, and refused
 *     again unless the actor's own standing changed within the 300 s).
 *   - Reads (network_info, list_nodes, audit_log of N) are for current
 *     members only; the trust chain 0 only with the registry's admin token.
 *   - Token guesses are counted in the store (`takeRateToken`, outside the
 *     write's transaction, so a refused guess still counts), which makes the
 *     bounds hold across every front end of one database.
 */
import { randomBytes, scryptSync, timingSafeEqual, createHash } from 'node:crypto'
import { verifyChallenge, decodeStdBase64 } from '../crypto/identity.js'
import { formatAddress } from '../protocol/address.js'
import type { JsonObject } from '../protocol/registry-framing.js'
import { RegistryChallenge } from './challenges.js'
import { NetworkErrorCode } from './errors.js'
import type { MemberRecord, NetworkRecord } from './network-store.js'
import {
  BACKBONE_NETWORK,
  DEFAULT_NETWORK_POLICY,
  MAX_NETWORK_ID,
  type AuditAction,
  type AuditEntry,
  type NetworkPolicy,
  type NetworkRole,
  type SignedInvite,
} from './network-types.js'
import { NONCE, canonicalPolicy, createDetail, inviteFromWire, isJoinRule, isNetworkName, isNetworkRole, policyFromWire, policyToWire, auditEntryToWire } from './network-wire.js'
import { RequestRejected, badField, readInteger, readNodeId, readOptionalString, readString, type RejectReason } from './request-fields.js'
import { auditChainLock, type NodeRecord, type RegistryStore, type RegistryTx } from './store-api.js'

/** A signed write's timestamp may be this far from the registry clock. */
export const REPLAY_WINDOW_S = 300
/** Nonces are kept this long (well past the window, so a replay is refused as a replay, not only as stale). */
export const NONCE_RETENTION_MS = 15 * 60_000
export const MAX_AUDIT_PAGE = 500
/**
 * Members in one network_info / list_nodes answer (`after_node` pages on):
 * 2,000 entries of at most ~330 bytes (a 255-character hostname) stay well
 * under the 1 MiB frame, whatever max_members allows.
 */
export const MAX_MEMBER_PAGE = 2000
/** Bytes of entries in one audit_log answer, well under the 1 MiB frame limit. */
export const AUDIT_PAGE_BYTES = 768 * 1024
/** Unused invites are forgotten this long after they expired (used ones stay: they refuse a second use). */
const EXPIRED_INVITE_RETENTION_S = 24 * 3600
/** Invites may not run longer than this. */
export const MAX_INVITE_TTL_S = 366 * 24 * 3600
const MAX_TOKEN_LENGTH = 256
/** Token checks per minute across every node (see `allTokenTries`). */
export const ALL_TOKEN_TRIES_PER_MINUTE = 120
const SCRYPT = { N: 16384, r: 8, p: 1 } as const
/** Token guesses per node per minute (each costs a scrypt). */
const TOKEN_TRIES_PER_MINUTE = 10

type C = NetworkErrorCode

function refuse(code: C, text: string, reason: RejectReason = 'not-authorised'): RequestRejected {
  return new RequestRejected(reason, text, code)
}

export interface NetworkRequestsOptions<O> {
  store: RegistryStore
  now: () => number
  /** Guards the trust chain 0 of `audit_log`; unset or empty: nobody reads it. */
  adminToken?: string
  /** The online node named by `req[idKey]`, after checking its signature over `challenge(id)` (request-handler.ts). */
  authenticate: (req: JsonObject, origin: O, idKey: string, challenge: (id: number) => string) => Promise<NodeRecord>
}

/** A signed write that passed its signature and clock checks; `commit` applies it. */
interface SignedWrite {
  node: NodeRecord
  /** The network whose chain the write appends to (0 for create: a new chain). */
  networkId: number
  signed: string
  signature: string
  nonce: string
}

export class NetworkRequests<O> {
  private readonly store: RegistryStore
  private readonly now: () => number
  private readonly adminTokenDigest: Buffer | null
  private readonly authenticate: NetworkRequestsOptions<O>['authenticate']

  constructor(o: NetworkRequestsOptions<O>) {
    this.store = o.store
    this.now = o.now
    this.adminTokenDigest = o.adminToken === undefined || o.adminToken === '' ? null : digest(o.adminToken)
    this.authenticate = o.authenticate
  }

  /** The request types this module answers, for the handler's table. */
  handlers(): Array<[string, (req: JsonObject, origin: O) => Promise<JsonObject>]> {
    return [
      ['list_networks', () => this.listNetworks()],
      ['list_nodes', (r, o) => this.listNodes(r, o)],
      ['network_info', (r, o) => this.networkInfo(r, o)],
      ['audit_log', (r, o) => this.auditLog(r, o)],
      ['create_network', (r, o) => this.createNetwork(r, o)],
      ['join_network', (r, o) => this.joinNetwork(r, o)],
      ['leave_network', (r, o) => this.leaveNetwork(r, o)],
      ['create_invite', (r, o) => this.createInvite(r, o)],
      ['remove_member', (r, o) => this.removeMember(r, o)],
      ['set_member_role', (r, o) => this.setMemberRole(r, o)],
      ['set_network_policy', (r, o) => this.setNetworkPolicy(r, o)],
    ]
  }

  /** Forgets old nonces and long-expired unused invites (the reaper calls this). */
  async prune(now: number): Promise<number> {
    const invites = await this.store.networks.pruneExpiredInvites(Math.floor(now / 1000) - EXPIRED_INVITE_RETENTION_S)
    return (await this.store.networks.pruneNonces(now - NONCE_RETENTION_MS)) + invites
  }

  /** `report_trust` that added a report or pair (`trust`), or `revoke_trust` that removed one (`revoke`): chain 0. */
  async recordTrust(tx: RegistryTx, node: NodeRecord, action: 'trust' | 'revoke', peerId: number, detail: string, signature: string): Promise<void> {
    const signed = action === 'trust' ? RegistryChallenge.reportTrust(node.id, peerId) : RegistryChallenge.revokeTrust(node.id, peerId)
    await this.append(tx, BACKBONE_NETWORK, node, action, peerId, detail, signed, signature)
  }

  // --- writes --------------------------------------------------------------------

  private async createNetwork(req: JsonObject, origin: O): Promise<JsonObject> {
    const name = readString(req, 'name', 255)
    if (!isNetworkName(name)) {
      throw refuse('PT_NETWORK_BAD_NAME', 'network name must be 1-63 of a-z, 0-9 and -, not starting or ending with -', 'bad-field')
    }
    const rule = req.join_rule
    if (!isJoinRule(rule)) throw badField('join_rule')
    const token = readOptionalString(req, 'token', MAX_TOKEN_LENGTH) ?? ''
    if (rule === 'token' && token === '') throw refuse('PT_NETWORK_BAD_TOKEN', 'the token rule needs a token', 'bad-field')
    let policy: NetworkPolicy | null = null
    if (req.policy !== undefined && req.policy !== null) policy = { ...DEFAULT_NETWORK_POLICY, ...readPolicy(req.policy) }
    // `admin_token` (the reference's shape) is accepted and ignored: every write here is signed.
    const write = await this.signedWrite(req, origin, 'create', 0, 0, createDetail(name, rule, policy))
    return this.commit(write, async (tx) => {
      if (name === 'backbone' || (await tx.networks.findNetworkByName(name)) !== null) {
        throw refuse('PT_NETWORK_EXISTS', `network name ${name} is taken`, 'conflict')
      }
      let tokenSalt: string | null = null
      let tokenHash: string | null = null
      if (rule === 'token') {
        tokenSalt = randomBytes(16).toString('hex')
        tokenHash = hashToken(token, tokenSalt).toString('hex')
      }
      const now = this.now()
      const id = await tx.networks.createNetwork({
        name,
        joinRule: rule,
        tokenSalt,
        tokenHash,
        policy: policy ?? { ...DEFAULT_NETWORK_POLICY, allowedPorts: [] },
        created: Math.floor(now / 1000),
      })
      if (id === null) {
        // Taken since the check above (another front end), or the IDs ran out.
        if ((await tx.networks.findNetworkByName(name)) !== null) throw refuse('PT_NETWORK_EXISTS', `network name ${name} is taken`, 'conflict')
        throw new RequestRejected('conflict', 'no network IDs left')
      }
      await tx.networks.addMember(id, write.node.id, 'owner', now)
      await this.appendWrite(tx, id, write, 'create', 0, createDetail(name, rule, policy))
      return { type: 'create_network_ok', network_id: id, name }
    })
  }

  private async joinNetwork(req: JsonObject, origin: O): Promise<JsonObject> {
    const nodeId = readNodeId(req, 'node_id')
    const networkId = readInteger(req, 'network_id', 0, 0xffff)
    if (networkId === BACKBONE_NETWORK) throw refuse('PT_NETWORK_ALREADY_MEMBER', 'every node is on network 0', 'conflict')
    const token = readOptionalString(req, 'token', MAX_TOKEN_LENGTH) ?? ''
    let invite: SignedInvite | null = null
    if (req.invite !== undefined && req.invite !== null) {
      const parsed = inviteFromWire(req.invite)
      if (typeof parsed === 'string') throw refuse('PT_NETWORK_INVITE_INVALID', parsed, 'bad-field')
      invite = parsed
    }
    const net = await this.network(this.store, networkId)
    const detail = invite === null ? `rule=${net.joinRule}` : `invite=${invite.nonce}`
    const write = await this.signedWrite(req, origin, 'join', net.id, nodeId, detail)
    const tokenGuess = invite === null && net.joinRule === 'token' && token !== ''
    // Counted before (and whatever becomes of) the write's transaction: a refusal rolls that back.
    if (tokenGuess) await this.takeTokenTry(write.node.id)
    return this.commit(write, async (tx) => {
      const node = write.node
      if ((await tx.networks.roleOf(net.id, node.id)) !== null) throw refuse('PT_NETWORK_ALREADY_MEMBER', `already a member of ${net.name}`, 'conflict')
      const nowS = Math.floor(this.now() / 1000)
      let used: SignedInvite | null = null
      if (invite !== null) {
        const problem = await this.inviteProblem(tx, invite, net.id, node.id, nowS)
        if (problem !== null) throw problem
        used = invite
      } else if (net.joinRule === 'token') {
        if (!tokenGuess) throw refuse('PT_NETWORK_BAD_TOKEN', `${net.name} needs a token to join`, 'not-authorised')
        if (!tokenMatches(net, token)) throw refuse('PT_NETWORK_BAD_TOKEN', 'wrong token', 'not-authorised')
      } else if (net.joinRule === 'invite') {
        used = await this.storedInvite(tx, net, node.id, nowS)
      }
      if ((await tx.networks.countMembers(net.id)) >= net.policy.maxMembers) {
        throw refuse('PT_NETWORK_FULL', `${net.name} is full (${net.policy.maxMembers} members)`, 'conflict')
      }
      const now = this.now()
      await tx.networks.addMember(net.id, node.id, 'member', now)
      if (used !== null) {
        if ((await tx.networks.getInvite(net.id, used.nonce)) === null) await tx.networks.putInvite(used, true, now)
        else await tx.networks.markInviteUsed(net.id, used.nonce)
      }
      await this.appendWrite(tx, net.id, write, 'join', node.id, detail)
      return { type: 'join_network_ok', network_id: net.id, address: formatAddress({ network: net.id, node: node.id }) }
    })
  }

  private async leaveNetwork(req: JsonObject, origin: O): Promise<JsonObject> {
    const nodeId = readNodeId(req, 'node_id')
    const net = await this.network(this.store, readInteger(req, 'network_id', 0, 0xffff))
    const write = await this.signedWrite(req, origin, 'leave', net.id, nodeId, '')
    return this.commit(write, async (tx) => {
      const role = await this.memberRole(tx, net, write.node.id)
      await this.refuseLastOwner(tx, net, role, 'leave')
      await tx.networks.removeMember(net.id, write.node.id)
      await this.appendWrite(tx, net.id, write, 'leave', write.node.id, '')
      return { type: 'leave_network_ok', network_id: net.id }
    })
  }

  private async createInvite(req: JsonObject, origin: O): Promise<JsonObject> {
    const networkId = readInteger(req, 'network_id', 0, 0xffff)
    const invite = inviteFromWire(req.invite)
    if (typeof invite === 'string') throw refuse('PT_NETWORK_INVITE_INVALID', invite, 'bad-field')
    if (invite.networkId !== networkId) throw refuse('PT_NETWORK_INVITE_INVALID', 'the invite is for another network', 'bad-field')
    const net = await this.network(this.store, networkId)
    const signed = RegistryChallenge.invite(invite)
    let inviter: NodeRecord
    try {
      inviter = await this.authenticate({ inviter_id: invite.inviterId, signature: invite.signature }, origin, 'inviter_id', () => signed)
    } catch (err) {
      if (err instanceof RequestRejected && err.reason === 'bad-signature') throw refuse('PT_NETWORK_INVITE_INVALID', 'invite signature invalid', 'bad-signature')
      throw err
    }
    const nowS = Math.floor(this.now() / 1000)
    if (invite.expires <= nowS) throw refuse('PT_NETWORK_INVITE_EXPIRED', 'the invite has expired', 'bad-field')
    if (invite.expires > nowS + MAX_INVITE_TTL_S) throw refuse('PT_NETWORK_INVITE_INVALID', 'the invite runs for more than a year', 'bad-field')
    return this.store.transaction(async (tx) => {
      await this.requireAdmin(tx, net, inviter.id, 'invite')
      if ((await tx.getNode(invite.inviteeId)) === null) throw refuse('PT_NETWORK_INVITE_INVALID', 'the invitee is not a registered node', 'not-found')
      if ((await tx.networks.roleOf(net.id, invite.inviteeId)) !== null) {
        throw refuse('PT_NETWORK_ALREADY_MEMBER', `node ${invite.inviteeId} is already a member`, 'conflict')
      }
      if ((await tx.networks.getInvite(net.id, invite.nonce)) !== null) throw refuse('PT_NETWORK_INVITE_INVALID', 'invite already stored', 'conflict')
      const now = this.now()
      await tx.networks.putInvite(invite, false, now)
      await this.append(tx, net.id, inviter, 'invite', invite.inviteeId, `expires=${invite.expires}`, signed, invite.signature)
      return { type: 'create_invite_ok', network_id: net.id, invitee_id: invite.inviteeId, expires: invite.expires }
    })
  }

  private async removeMember(req: JsonObject, origin: O): Promise<JsonObject> {
    const memberId = readNodeId(req, 'member_id')
    const net = await this.network(this.store, readInteger(req, 'network_id', 0, 0xffff))
    const write = await this.signedWrite(req, origin, 'remove', net.id, memberId, '')
    return this.commit(write, async (tx) => {
      const actorRole = await this.requireAdmin(tx, net, write.node.id, 'remove members')
      const role = await tx.networks.roleOf(net.id, memberId)
      if (role === null) throw refuse('PT_NETWORK_NOT_MEMBER', `node ${memberId} is not a member of ${net.name}`, 'not-found')
      if (actorRole === 'admin' && role !== 'member' && memberId !== write.node.id) {
        throw refuse('PT_NETWORK_NOT_ADMIN', 'an admin cannot remove an owner or another admin')
      }
      if (memberId === write.node.id) await this.refuseLastOwner(tx, net, role, 'leave')
      await tx.networks.removeMember(net.id, memberId)
      await this.appendWrite(tx, net.id, write, 'remove', memberId, '')
      return { type: 'remove_member_ok', network_id: net.id, member_id: memberId }
    })
  }

  private async setMemberRole(req: JsonObject, origin: O): Promise<JsonObject> {
    const memberId = readNodeId(req, 'member_id')
    const role = req.role
    if (!isNetworkRole(role)) throw badField('role')
    const net = await this.network(this.store, readInteger(req, 'network_id', 0, 0xffff))
    const write = await this.signedWrite(req, origin, 'role', net.id, memberId, role)
    return this.commit(write, async (tx) => {
      const actorRole = await this.memberRole(tx, net, write.node.id)
      if (actorRole !== 'owner') throw refuse('PT_NETWORK_NOT_ADMIN', 'only owners change roles')
      const current = await tx.networks.roleOf(net.id, memberId)
      if (current === null) throw refuse('PT_NETWORK_NOT_MEMBER', `node ${memberId} is not a member of ${net.name}`, 'not-found')
      // Demoting the last owner would leave nobody to manage the network; alone or not, it needs a successor first.
      if (current === 'owner' && role !== 'owner' && (await tx.networks.countOwners(net.id)) === 1) {
        throw refuse('PT_NETWORK_LAST_OWNER', `node ${memberId} is the last owner of ${net.name}`, 'conflict')
      }
      await tx.networks.setRole(net.id, memberId, role)
      await this.appendWrite(tx, net.id, write, 'role', memberId, role)
      return { type: 'set_member_role_ok', network_id: net.id, member_id: memberId, role }
    })
  }

  private async setNetworkPolicy(req: JsonObject, origin: O): Promise<JsonObject> {
    const given = readPolicy(req.policy)
    const net = await this.network(this.store, readInteger(req, 'network_id', 0, 0xffff))
    const policy: NetworkPolicy = { ...net.policy, ...given }
    const detail = canonicalPolicy(policy)
    const write = await this.signedWrite(req, origin, 'policy', net.id, 0, detail)
    return this.commit(write, async (tx) => {
      await this.requireAdmin(tx, net, write.node.id, 'set the policy')
      const members = await tx.networks.countMembers(net.id)
      if (policy.maxMembers < members) {
        throw refuse('PT_NETWORK_BAD_POLICY', `max_members ${policy.maxMembers} is below the ${members} current members`, 'bad-field')
      }
      await tx.networks.setPolicy(net.id, policy)
      await this.appendWrite(tx, net.id, write, 'policy', 0, detail)
      return { type: 'set_network_policy_ok', network_id: net.id, policy: policyToWire(policy) }
    })
  }

  // --- reads ---------------------------------------------------------------------

  private async listNetworks(): Promise<JsonObject> {
    const networks: JsonObject[] = [{ id: 0, name: 'backbone', members: await this.store.countOnline(), join_rule: 'open' }]
    for (const n of await this.store.networks.listNetworks()) networks.push({ id: n.id, name: n.name, members: n.members, join_rule: n.joinRule })
    return { type: 'list_networks_ok', networks }
  }

  private async listNodes(req: JsonObject, origin: O): Promise<JsonObject> {
    const networkId = readInteger(req, 'network_id', 0, 0xffff)
    // Listing the backbone would enumerate every node: refused, as in Go.
    if (networkId === BACKBONE_NETWORK) throw new RequestRejected('not-authorised', 'listing network 0 is not allowed')
    const requester = await this.authenticate(req, origin, 'requester_id', (id) => RegistryChallenge.listNodes(id, networkId))
    const net = await this.network(this.store, networkId)
    await this.memberRole(this.store, net, requester.id)
    const page = await this.memberPage(net.id, req)
    return { type: 'list_nodes_ok', network_id: net.id, nodes: page.members.map((m) => memberJson(net.id, m, false)), more: page.more }
  }

  private async networkInfo(req: JsonObject, origin: O): Promise<JsonObject> {
    const networkId = readInteger(req, 'network_id', 1, MAX_NETWORK_ID)
    const node = await this.authenticate(req, origin, 'node_id', (id) => RegistryChallenge.networkInfo(id, networkId))
    const net = await this.network(this.store, networkId)
    await this.memberRole(this.store, net, node.id)
    const page = await this.memberPage(net.id, req)
    return {
      type: 'network_info_ok',
      network_id: net.id,
      name: net.name,
      join_rule: net.joinRule,
      created: net.created,
      policy: policyToWire(net.policy),
      members: page.members.map((m) => memberJson(net.id, m, true)),
      more: page.more,
    }
  }

  /** One page of members after `after_node` (default 0), at most `limit` (default and cap MAX_MEMBER_PAGE). */
  private async memberPage(networkId: number, req: JsonObject): Promise<{ members: MemberRecord[]; more: boolean }> {
    const after = req.after_node === undefined ? 0 : readInteger(req, 'after_node', 0, 0xffffffff)
    const limit = req.limit === undefined ? MAX_MEMBER_PAGE : readInteger(req, 'limit', 1, MAX_MEMBER_PAGE)
    const members = await this.store.networks.listMembers(networkId, after, limit + 1)
    const more = members.length > limit
    if (more) members.length = limit
    return { members, more }
  }

  private async auditLog(req: JsonObject, origin: O): Promise<JsonObject> {
    const networkId = readInteger(req, 'network_id', 0, MAX_NETWORK_ID)
    const afterSeq = req.after_seq === undefined ? 0 : readInteger(req, 'after_seq', 0, Number.MAX_SAFE_INTEGER)
    const limit = req.limit === undefined ? MAX_AUDIT_PAGE : readInteger(req, 'limit', 1, MAX_AUDIT_PAGE)
    if (networkId === BACKBONE_NETWORK) {
      const token = readOptionalString(req, 'admin_token', MAX_TOKEN_LENGTH) ?? ''
      if (this.adminTokenDigest === null || token === '' || !timingSafeEqual(digest(token), this.adminTokenDigest)) {
        throw refuse('PT_NETWORK_NOT_ADMIN', "the trust chain (network 0) needs the registry's admin token")
      }
    } else {
      const node = await this.authenticate(req, origin, 'node_id', (id) => RegistryChallenge.auditLog(id, networkId))
      await this.memberRole(this.store, await this.network(this.store, networkId), node.id)
    }
    const rows = await this.store.networks.listAudit(networkId, afterSeq, limit + 1)
    // A page also stops short of AUDIT_PAGE_BYTES: policy entries can be ~13 KB, and an answer must fit a frame.
    const entries: JsonObject[] = []
    let bytes = 0
    for (const row of rows.slice(0, limit)) {
      const json = auditEntryToWire(row)
      bytes += Buffer.byteLength(JSON.stringify(json)) + 1
      if (entries.length > 0 && bytes > AUDIT_PAGE_BYTES) break
      entries.push(json)
    }
    return { type: 'audit_log_ok', network_id: networkId, entries, more: rows.length > entries.length }
  }

  // --- rules -----------------------------------------------------------------------

  private async network(db: RegistryTx, id: number): Promise<NetworkRecord> {
    const net = id === BACKBONE_NETWORK ? null : await db.networks.getNetwork(id)
    if (net === null) throw refuse('PT_NETWORK_NOT_FOUND', `no network ${id}`, 'not-found')
    return net
  }

  private async memberRole(db: RegistryTx, net: NetworkRecord, nodeId: number): Promise<NetworkRole> {
    const role = await db.networks.roleOf(net.id, nodeId)
    if (role === null) throw refuse('PT_NETWORK_NOT_MEMBER', `node ${nodeId} is not a member of ${net.name}`)
    return role
  }

  private async requireAdmin(db: RegistryTx, net: NetworkRecord, nodeId: number, what: string): Promise<NetworkRole> {
    const role = await this.memberRole(db, net, nodeId)
    if (role === 'member') throw refuse('PT_NETWORK_NOT_ADMIN', `only owners and admins can ${what}`)
    return role
  }

  private async refuseLastOwner(db: RegistryTx, net: NetworkRecord, role: NetworkRole, what: string): Promise<void> {
    if (role !== 'owner' || (await db.networks.countOwners(net.id)) > 1) return
    if ((await db.networks.countMembers(net.id)) > 1) {
      throw refuse('PT_NETWORK_LAST_OWNER', `the last owner of ${net.name} cannot ${what} while other members remain`, 'conflict')
    }
  }

  /** Null if `invite` admits `nodeId` to network `networkId` now, else the refusal. */
  private async inviteProblem(db: RegistryTx, invite: SignedInvite, networkId: number, nodeId: number, nowS: number): Promise<RequestRejected | null> {
    const bad = (text: string): RequestRejected => refuse('PT_NETWORK_INVITE_INVALID', text)
    if (invite.networkId !== networkId) return bad('the invite is for another network')
    if (invite.inviteeId !== nodeId) return bad('the invite is for another node')
    const inviter = await db.getNode(invite.inviterId)
    const key = inviter === null ? null : decodeStdBase64(inviter.publicKey)
    if (key === null || !verifyChallenge(key, RegistryChallenge.invite(invite), invite.signature)) return bad('invite signature invalid')
    const role = await db.networks.roleOf(networkId, invite.inviterId)
    if (role === null || role === 'member') return bad('the inviter is not an owner or admin of the network')
    const stored = await db.networks.getInvite(networkId, invite.nonce)
    if (stored !== null && (stored.used || stored.signature !== invite.signature)) return bad('the invite was already used')
    if (invite.expires <= nowS) return refuse('PT_NETWORK_INVITE_EXPIRED', 'the invite has expired')
    return null
  }

  /** A stored invite for `nodeId` that admits it now; else INVITE_EXPIRED (only expired ones) or INVITE_REQUIRED. */
  private async storedInvite(db: RegistryTx, net: NetworkRecord, nodeId: number, nowS: number): Promise<SignedInvite> {
    let expired = false
    for (const i of await db.networks.unusedInvitesFor(net.id, nodeId)) {
      const problem = await this.inviteProblem(db, i, net.id, nodeId, nowS)
      if (problem === null) return i
      if (problem.code === 'PT_NETWORK_INVITE_EXPIRED') expired = true
    }
    if (expired) throw refuse('PT_NETWORK_INVITE_EXPIRED', 'your invite has expired')
    throw refuse('PT_NETWORK_INVITE_REQUIRED', `${net.name} admits members by invite only`)
  }

  // --- signed writes and the audit chains ---------------------------------------------

  /** Reads the common write fields, checks the actor's signature over the challenge and the timestamp. */
  private async signedWrite(req: JsonObject, origin: O, action: AuditAction, networkId: number, subject: number, detail: string): Promise<SignedWrite> {
    const timestamp = readInteger(req, 'timestamp', 0, 2 ** 40)
    const nonce = readString(req, 'nonce', 64)
    if (!NONCE.test(nonce)) throw badField('nonce')
    let signed = ''
    const node = await this.authenticate(req, origin, 'node_id', (id) => {
      signed = RegistryChallenge.network({ action, nodeId: id, networkId, subject, detail, timestamp, nonce })
      return signed
    })
    if (Math.abs(this.now() / 1000 - timestamp) > REPLAY_WINDOW_S) {
      throw refuse('PT_NETWORK_REPLAY', `timestamp ${timestamp} is more than ${REPLAY_WINDOW_S} s from the registry clock`, 'bad-field')
    }
    return { node, networkId, signed, signature: req.signature as string, nonce }
  }

  /**
   * Runs `apply` in one transaction with the nonce's use: a refusal stores neither.
   * Writes to one network queue on its chain with several front ends; creates on one name.
   */
  private commit<T>(write: SignedWrite, apply: (tx: RegistryTx) => Promise<T>): Promise<T> {
    return this.store.transaction(async (tx) => {
      if (!(await tx.networks.useNonce(write.node.id, write.nonce, this.now()))) {
        throw refuse('PT_NETWORK_REPLAY', 'this request was seen before (nonce already used)', 'conflict')
      }
      return apply(tx)
    }, { serializeOn: [write.networkId === 0 ? 'network:create' : auditChainLock(write.networkId)] })
  }

  /**
   * One token guess by `nodeId`: each is a scrypt (~30–50 ms on the registry's
   * one thread), so a node gets TOKEN_TRIES_PER_MINUTE and all nodes together
   * ALL_TOKEN_TRIES_PER_MINUTE (many nodes guessing at once must not stall
   * every other request: 120 a minute is a few percent of a core).
   */
  private async takeTokenTry(nodeId: number): Promise<void> {
    const now = this.now()
    if (!(await this.store.takeRateToken(`token:${nodeId}`, TOKEN_TRIES_PER_MINUTE, 60_000, now))) {
      throw new RequestRejected('rate-limited', 'too many token attempts')
    }
    if (!(await this.store.takeRateToken('token:*', ALL_TOKEN_TRIES_PER_MINUTE, 60_000, now))) {
      throw new RequestRejected('rate-limited', 'too many token attempts at this registry; try again in a minute')
    }
  }

  private appendWrite(tx: RegistryTx, networkId: number, write: SignedWrite, action: AuditAction, subject: number, detail: string): Promise<AuditEntry> {
    return this.append(tx, networkId, write.node, action, subject, detail, write.signed, write.signature)
  }

  private append(tx: RegistryTx, networkId: number, actor: NodeRecord, action: AuditAction, subject: number, detail: string, signed: string, signature: string): Promise<AuditEntry> {
    return tx.networks.appendAudit({ networkId, time: this.now(), actor: actor.id, actorKey: actor.publicKey, action, subject, detail, signed, signature })
  }
}

function readPolicy(v: unknown): Partial<NetworkPolicy> {
  const policy = policyFromWire(v)
  if (typeof policy === 'string') throw refuse('PT_NETWORK_BAD_POLICY', policy, 'bad-field')
  return policy
}

function hashToken(token: string, saltHex: string): Buffer {
  return scryptSync(token, Buffer.from(saltHex, 'hex'), 32, SCRYPT)
}

function tokenMatches(net: NetworkRecord, token: string): boolean {
  if (net.tokenSalt === null || net.tokenHash === null) return false
  const expected = Buffer.from(net.tokenHash, 'hex')
  const actual = hashToken(token, net.tokenSalt)
  return expected.length === actual.length && timingSafeEqual(actual, expected)
}

/** Fixed-length digest, so timingSafeEqual compares equal lengths whatever was sent. */
function digest(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest()
}

function memberJson(networkId: number, m: { nodeId: number; role: NetworkRole; hostname: string | null }, withRole: boolean): JsonObject {
  const out: JsonObject = { node_id: m.nodeId, address: formatAddress({ network: networkId, node: m.nodeId }) }
  if (withRole) out.role = m.role
  if (m.hostname !== null) out.hostname = m.hostname
  return out
}

