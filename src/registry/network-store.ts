/**
 * Networks in the registry's SQLite store (issue 13): networks, members with
 * roles, invites, the nonces of signed writes, and the audit chains. It works
 * on the SQLite store's own database handle (sqlite-core.ts), so its changes
 * join the same transactions (`SqliteRegistryStore.transaction`): a change and
 * its audit entry are stored together or not at all. Synchronous; store.ts
 * puts the asynchronous `NetworkTx` in front of it.
 *
 * Membership survives the node going offline: the Go reference's reaper
 * drops offline nodes from their networks, which would make a daemon restart
 * or a long outage cost every membership (and its audit trail).
 */
import type Database from 'better-sqlite3'
import { auditEntryHash } from './audit-chain.js'
import { AUDIT_GENESIS, auditEntryFromRow, storedPorts, type AuditRow, type AuditEntry, type JoinRule, type NetworkPolicy, type NetworkRole } from './network-types.js'

export interface NetworkRecord {
  id: number
  name: string
  joinRule: JoinRule
  tokenSalt: string | null
  tokenHash: string | null
  policy: NetworkPolicy
  /** Unix seconds. */
  created: number
}

export interface MemberRecord {
  nodeId: number
  role: NetworkRole
  /** The node's hostname while it is online, else null. */
  hostname: string | null
}

export interface InviteRecord {
  networkId: number
  nonce: string
  inviterId: number
  inviteeId: number
  expires: number
  signature: string
  used: boolean
}

/** What an appended entry needs; seq, prev and hash are the chain's. */
export type NewAuditEntry = Omit<AuditEntry, 'seq' | 'prev' | 'hash'>

interface NetworkRow {
  id: number
  name: string
  join_rule: JoinRule
  token_salt: string | null
  token_hash: string | null
  max_members: number
  allowed_ports: string
  members_resolve: number
  created: number
}


export class NetworkStore {
  private readonly s: ReturnType<typeof prepare>
  private readonly db: Database.Database

  constructor(db: Database.Database) {
    this.db = db
    this.s = prepare(db)
  }

  // --- networks ----------------------------------------------------------------

  /** The next network ID (from 1, never reused), or null when the name is taken or all 65534 IDs are. */
  createNetwork(n: Omit<NetworkRecord, 'id'>): number | null {
    return this.db.transaction(() => this.insertNetwork(n))()
  }

  private insertNetwork(n: Omit<NetworkRecord, 'id'>): number | null {
    if (this.s.findNetworkByName.get(n.name) !== undefined) return null
    const id = (this.s.getNextNetwork.get() as { value: number }).value
    if (id > 0xfffe) return null
    this.s.setNextNetwork.run(id + 1)
    this.s.insertNetwork.run({
      id,
      name: n.name,
      join_rule: n.joinRule,
      token_salt: n.tokenSalt,
      token_hash: n.tokenHash,
      max_members: n.policy.maxMembers,
      allowed_ports: JSON.stringify(n.policy.allowedPorts),
      members_resolve: n.policy.membersResolve ? 1 : 0,
      created: n.created,
    })
    return id
  }

  getNetwork(id: number): NetworkRecord | null {
    return toNetwork(this.s.getNetwork.get(id) as NetworkRow | undefined)
  }

  findNetworkByName(name: string): NetworkRecord | null {
    return toNetwork(this.s.findNetworkByName.get(name) as NetworkRow | undefined)
  }

  /** Every network with its member count, by ID. */
  listNetworks(): Array<NetworkRecord & { members: number }> {
    return (this.s.listNetworks.all() as Array<NetworkRow & { members: number }>).map((r) => ({ ...toNetwork(r)!, members: r.members }))
  }

  setPolicy(id: number, policy: NetworkPolicy): void {
    this.s.setPolicy.run(policy.maxMembers, JSON.stringify(policy.allowedPorts), policy.membersResolve ? 1 : 0, id)
  }

  // --- members -----------------------------------------------------------------

  roleOf(networkId: number, nodeId: number): NetworkRole | null {
    const row = this.s.getMember.get(networkId, nodeId) as { role: NetworkRole } | undefined
    return row?.role ?? null
  }

  /** Members in node ID order; `afterNode` and `limit` page through a large network (-1 = no limit). */
  listMembers(networkId: number, afterNode = 0, limit = -1): MemberRecord[] {
    return (this.s.listMembers.all(networkId, afterNode, limit) as Array<{ node_id: number; role: NetworkRole; hostname: string | null }>).map((r) => ({
      nodeId: r.node_id,
      role: r.role,
      hostname: r.hostname,
    }))
  }

  countMembers(networkId: number): number {
    return (this.s.countMembers.get(networkId) as { n: number }).n
  }

  countOwners(networkId: number): number {
    return (this.s.countOwners.get(networkId) as { n: number }).n
  }

  addMember(networkId: number, nodeId: number, role: NetworkRole, now: number): void {
    this.s.insertMember.run(networkId, nodeId, role, now)
  }

  removeMember(networkId: number, nodeId: number): boolean {
    return this.s.deleteMember.run(networkId, nodeId).changes > 0
  }

  setRole(networkId: number, nodeId: number, role: NetworkRole): void {
    this.s.setRole.run(role, networkId, nodeId)
  }

  /** The non-backbone networks `nodeId` is a member of, by ID. */
  networksOf(nodeId: number): number[] {
    return (this.s.networksOf.all(nodeId) as Array<{ network_id: number }>).map((r) => r.network_id)
  }

  /** True if a and b are both members of a network whose policy lets members resolve each other. */
  shareResolvableNetwork(a: number, b: number): boolean {
    return this.s.shareResolvable.get(a, b) !== undefined
  }

  // --- invites -------------------------------------------------------------------

  getInvite(networkId: number, nonce: string): InviteRecord | null {
    return toInvite(this.s.getInvite.get(networkId, nonce) as InviteRow | undefined)
  }

  /** Stored invites for `inviteeId` in a network that are not used yet, newest first. */
  unusedInvitesFor(networkId: number, inviteeId: number): InviteRecord[] {
    return (this.s.unusedInvites.all(networkId, inviteeId) as InviteRow[]).map((r) => toInvite(r)!)
  }

  putInvite(i: Omit<InviteRecord, 'used'>, used: boolean, now: number): void {
    this.s.insertInvite.run({
      network_id: i.networkId,
      nonce: i.nonce,
      inviter_id: i.inviterId,
      invitee_id: i.inviteeId,
      expires: i.expires,
      signature: i.signature,
      used: used ? 1 : 0,
      created: now,
    })
  }

  /** Drops unused invites that expired before `expiredBefore` (unix s); an expired invite admits nobody anyway. */
  pruneExpiredInvites(expiredBefore: number): number {
    return this.s.pruneInvites.run(expiredBefore).changes
  }

  markInviteUsed(networkId: number, nonce: string): void {
    this.s.useInvite.run(networkId, nonce)
  }

  // --- nonces of signed writes -----------------------------------------------------

  /** Records (node, nonce); false if it was seen before (a replay). */
  useNonce(nodeId: number, nonce: string, now: number): boolean {
    return this.s.insertNonce.run(nodeId, nonce, now).changes > 0
  }

  pruneNonces(before: number): number {
    return this.s.pruneNonces.run(before).changes
  }

  // --- audit chains ----------------------------------------------------------------

  /** Appends to chain `e.networkId`; call inside the transaction of the change it records. */
  appendAudit(e: NewAuditEntry): AuditEntry {
    return this.db.transaction(() => this.insertAudit(e))()
  }

  private insertAudit(e: NewAuditEntry): AuditEntry {
    const head = this.s.auditHead.get(e.networkId) as { seq: number; hash: string } | undefined
    const seq = (head?.seq ?? 0) + 1
    const prev = head?.hash ?? AUDIT_GENESIS
    const withoutHash: Omit<AuditEntry, 'hash'> = { ...e, seq, prev }
    const entry: AuditEntry = { ...withoutHash, hash: auditEntryHash(withoutHash) }
    this.s.insertAudit.run({
      network_id: entry.networkId,
      seq: entry.seq,
      time: entry.time,
      actor: entry.actor,
      actor_key: entry.actorKey,
      action: entry.action,
      subject: entry.subject,
      detail: entry.detail,
      signed: entry.signed,
      signature: entry.signature,
      prev: entry.prev,
      hash: entry.hash,
    })
    return entry
  }

  /** Up to `limit` entries of chain `networkId` after `afterSeq`, in order. */
  listAudit(networkId: number, afterSeq: number, limit: number): AuditEntry[] {
    return (this.s.listAudit.all(networkId, afterSeq, limit) as AuditRow[]).map(auditEntryFromRow)
  }
}

interface InviteRow {
  network_id: number
  nonce: string
  inviter_id: number
  invitee_id: number
  expires: number
  signature: string
  used: number
}

function toInvite(r: InviteRow | undefined): InviteRecord | null {
  if (r === undefined) return null
  return {
    networkId: r.network_id,
    nonce: r.nonce,
    inviterId: r.inviter_id,
    inviteeId: r.invitee_id,
    expires: r.expires,
    signature: r.signature,
    used: r.used !== 0,
  }
}

function toNetwork(r: NetworkRow | undefined): NetworkRecord | null {
  if (r === undefined) return null
  const ports = storedPorts(r.allowed_ports)
  return {
    id: r.id,
    name: r.name,
    joinRule: r.join_rule,
    tokenSalt: r.token_salt,
    tokenHash: r.token_hash,
    policy: { maxMembers: r.max_members, allowedPorts: ports, membersResolve: r.members_resolve !== 0 },
    created: r.created,
  }
}

const NETWORK_COLUMNS = 'id, name, join_rule, token_salt, token_hash, max_members, allowed_ports, members_resolve, created'

function prepare(db: Database.Database) {
  return {
    getNextNetwork: db.prepare(`SELECT value FROM counters WHERE name = 'next_network'`),
    setNextNetwork: db.prepare(`UPDATE counters SET value = ? WHERE name = 'next_network'`),
    insertNetwork: db.prepare(
      `INSERT INTO networks (${NETWORK_COLUMNS})
       VALUES (@id, @name, @join_rule, @token_salt, @token_hash, @max_members, @allowed_ports, @members_resolve, @created)`,
    ),
    getNetwork: db.prepare(`SELECT ${NETWORK_COLUMNS} FROM networks WHERE id = ?`),
    findNetworkByName: db.prepare(`SELECT ${NETWORK_COLUMNS} FROM networks WHERE name = ?`),
    listNetworks: db.prepare(
      `SELECT ${NETWORK_COLUMNS}, (SELECT count(*) FROM network_members m WHERE m.network_id = networks.id) AS members
       FROM networks ORDER BY id`,
    ),
    setPolicy: db.prepare('UPDATE networks SET max_members = ?, allowed_ports = ?, members_resolve = ? WHERE id = ?'),
    getMember: db.prepare('SELECT role FROM network_members WHERE network_id = ? AND node_id = ?'),
    listMembers: db.prepare(
      `SELECT m.node_id, m.role, CASE WHEN n.online = 1 THEN n.hostname END AS hostname
       FROM network_members m JOIN nodes n ON n.id = m.node_id WHERE m.network_id = ? AND m.node_id > ? ORDER BY m.node_id LIMIT ?`,
    ),
    countMembers: db.prepare('SELECT count(*) AS n FROM network_members WHERE network_id = ?'),
    countOwners: db.prepare(`SELECT count(*) AS n FROM network_members WHERE network_id = ? AND role = 'owner'`),
    insertMember: db.prepare('INSERT INTO network_members (network_id, node_id, role, joined) VALUES (?, ?, ?, ?)'),
    deleteMember: db.prepare('DELETE FROM network_members WHERE network_id = ? AND node_id = ?'),
    setRole: db.prepare('UPDATE network_members SET role = ? WHERE network_id = ? AND node_id = ?'),
    networksOf: db.prepare('SELECT network_id FROM network_members WHERE node_id = ? ORDER BY network_id'),
    shareResolvable: db.prepare(
      `SELECT 1 FROM network_members a JOIN network_members b ON a.network_id = b.network_id
       JOIN networks n ON n.id = a.network_id
       WHERE a.node_id = ? AND b.node_id = ? AND n.members_resolve = 1 LIMIT 1`,
    ),
    getInvite: db.prepare(
      'SELECT network_id, nonce, inviter_id, invitee_id, expires, signature, used FROM network_invites WHERE network_id = ? AND nonce = ?',
    ),
    unusedInvites: db.prepare(
      `SELECT network_id, nonce, inviter_id, invitee_id, expires, signature, used FROM network_invites
       WHERE network_id = ? AND invitee_id = ? AND used = 0 ORDER BY expires DESC, rowid DESC LIMIT 16`,
    ),
    insertInvite: db.prepare(
      `INSERT INTO network_invites (network_id, nonce, inviter_id, invitee_id, expires, signature, used, created)
       VALUES (@network_id, @nonce, @inviter_id, @invitee_id, @expires, @signature, @used, @created)`,
    ),
    pruneInvites: db.prepare('DELETE FROM network_invites WHERE used = 0 AND expires < ?'),
    useInvite: db.prepare('UPDATE network_invites SET used = 1 WHERE network_id = ? AND nonce = ?'),
    insertNonce: db.prepare('INSERT OR IGNORE INTO used_nonces (node_id, nonce, seen) VALUES (?, ?, ?)'),
    pruneNonces: db.prepare('DELETE FROM used_nonces WHERE seen < ?'),
    auditHead: db.prepare('SELECT seq, hash FROM audit_log WHERE network_id = ? ORDER BY seq DESC LIMIT 1'),
    insertAudit: db.prepare(
      `INSERT INTO audit_log (network_id, seq, time, actor, actor_key, action, subject, detail, signed, signature, prev, hash)
       VALUES (@network_id, @seq, @time, @actor, @actor_key, @action, @subject, @detail, @signed, @signature, @prev, @hash)`,
    ),
    listAudit: db.prepare(
      `SELECT network_id, seq, time, actor, actor_key, action, subject, detail, signed, signature, prev, hash
       FROM audit_log WHERE network_id = ? AND seq > ? ORDER BY seq LIMIT ?`,
    ),
  }
}
