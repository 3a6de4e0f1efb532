/**
 * Networks in the PostgreSQL registry store (issue 14): the async twin of
 * network-store.ts, on the same `PgRun` as the rest of the store so its
 * changes join the caller's transaction.
 *
 * Audit chains stay linear with several front ends appending: the head is
 * read under a per-chain advisory lock, and `(network_id, seq)` is the
 * primary key, so an append that read a stale head fails on the key and is
 * retried by `transaction` (pg-store.ts) with a fresh snapshot.
 */
import { auditEntryHash } from './audit-chain.js'
import { AUDIT_GENESIS, auditEntryFromRow, storedPorts, type AuditRow, MAX_NETWORK_ID, type AuditEntry, type JoinRule, type NetworkPolicy, type NetworkRole } from './network-types.js'
import { pgQuery, type PgRun } from './pg-query.js'
import type { InviteRecord, MemberRecord, NetworkRecord, NetworkTx, NewAuditEntry } from './store-api.js'

/** Advisory-lock namespace of the audit chains ("ptau"); the second key is the network. */
const AUDIT_LOCK = 0x70746175

interface NetworkRow {
  id: number
  name: string
  join_rule: JoinRule
  token_salt: string | null
  token_hash: string | null
  max_members: number
  allowed_ports: string
  members_resolve: boolean
  created: number
}

interface InviteRow {
  network_id: number
  nonce: string
  inviter_id: number
  invitee_id: number
  expires: number
  signature: string
  used: boolean
}


function q(name: string, text: string) {
  return pgQuery(`ptn_${name}`, text)
}

const NETWORK_COLUMNS = 'id, name, join_rule, token_salt, token_hash, max_members, allowed_ports, members_resolve, created'
const INVITE_COLUMNS = 'network_id, nonce, inviter_id, invitee_id, expires, signature, used'
const AUDIT_COLUMNS = 'network_id, seq, time, actor, actor_key, action, subject, detail, signed, signature, prev, hash'

const Q = {
  nextNetwork: q('next_network', `SELECT nextval('network_ids') AS id`),
  insertNetwork: q(
    'insert_network',
    `INSERT INTO networks (${NETWORK_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
     ON CONFLICT (name) DO NOTHING`,
  ),
  nameTaken: q('name_taken', 'SELECT 1 FROM networks WHERE name = $1'),
  getNetwork: q('get_network', `SELECT ${NETWORK_COLUMNS} FROM networks WHERE id = $1`),
  findNetworkByName: q('find_network', `SELECT ${NETWORK_COLUMNS} FROM networks WHERE name = $1`),
  listNetworks: q(
    'list_networks',
    `SELECT ${NETWORK_COLUMNS}, (SELECT count(*) FROM network_members m WHERE m.network_id = networks.id) AS members
     FROM networks ORDER BY id`,
  ),
  setPolicy: q('set_policy', 'UPDATE networks SET max_members = $1, allowed_ports = $2, members_resolve = $3 WHERE id = $4'),
  getMember: q('get_member', 'SELECT role FROM network_members WHERE network_id = $1 AND node_id = $2'),
  listMembers: q(
    'list_members',
    `SELECT m.node_id, m.role, CASE WHEN n.online THEN n.hostname END AS hostname
     FROM network_members m JOIN nodes n ON n.id = m.node_id WHERE m.network_id = $1 AND m.node_id > $2 ORDER BY m.node_id LIMIT $3`,
  ),
  countMembers: q('count_members', 'SELECT count(*) AS n FROM network_members WHERE network_id = $1'),
  countOwners: q('count_owners', `SELECT count(*) AS n FROM network_members WHERE network_id = $1 AND role = 'owner'`),
  insertMember: q('insert_member', 'INSERT INTO network_members (network_id, node_id, role, joined) VALUES ($1, $2, $3, $4)'),
  deleteMember: q('delete_member', 'DELETE FROM network_members WHERE network_id = $1 AND node_id = $2'),
  setRole: q('set_role', 'UPDATE network_members SET role = $1 WHERE network_id = $2 AND node_id = $3'),
  networksOf: q('networks_of', 'SELECT network_id FROM network_members WHERE node_id = $1 ORDER BY network_id'),
  shareResolvable: q(
    'share_resolvable',
    `SELECT 1 FROM network_members a JOIN network_members b ON a.network_id = b.network_id
     JOIN networks n ON n.id = a.network_id
     WHERE a.node_id = $1 AND b.node_id = $2 AND n.members_resolve LIMIT 1`,
  ),
  getInvite: q('get_invite', `SELECT ${INVITE_COLUMNS} FROM network_invites WHERE network_id = $1 AND nonce = $2`),
  unusedInvites: q(
    'unused_invites',
    `SELECT ${INVITE_COLUMNS} FROM network_invites
     WHERE network_id = $1 AND invitee_id = $2 AND NOT used ORDER BY expires DESC, ord DESC LIMIT 16`,
  ),
  insertInvite: q(
    'insert_invite',
    `INSERT INTO network_invites (network_id, nonce, inviter_id, invitee_id, expires, signature, used, created)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
  ),
  pruneInvites: q('prune_invites', 'DELETE FROM network_invites WHERE NOT used AND expires < $1'),
  useInvite: q('use_invite', 'UPDATE network_invites SET used = true WHERE network_id = $1 AND nonce = $2'),
  insertNonce: q('insert_nonce', 'INSERT INTO used_nonces (node_id, nonce, seen) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING'),
  pruneNonces: q('prune_nonces', 'DELETE FROM used_nonces WHERE seen < $1'),
  lockChain: q('lock_chain', 'SELECT pg_advisory_xact_lock($1, $2)'),
  auditHead: q('audit_head', 'SELECT seq, hash FROM audit_log WHERE network_id = $1 ORDER BY seq DESC LIMIT 1'),
  insertAudit: q('insert_audit', `INSERT INTO audit_log (${AUDIT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`),
  listAudit: q('list_audit', `SELECT ${AUDIT_COLUMNS} FROM audit_log WHERE network_id = $1 AND seq > $2 ORDER BY seq LIMIT $3`),
}

export class PgNetworks implements NetworkTx {
  constructor(
    private readonly run: PgRun,
    private readonly atomic: <T>(fn: (n: PgNetworks) => Promise<T>) => Promise<T>,
  ) {}

  // --- networks ----------------------------------------------------------------

  /** The next network ID from the sequence; null when the name is taken or every ID is used. */
  createNetwork(n: Omit<NetworkRecord, 'id'>): Promise<number | null> {
    return this.atomic(async (nets) => {
      if ((await nets.run(Q.nameTaken, [n.name])).rowCount! > 0) return null
      const id = Number((await nets.run<{ id: number }>(Q.nextNetwork, [])).rows[0]!.id)
      if (id > MAX_NETWORK_ID) return null
      const r = await nets.run(Q.insertNetwork, [
        id,
        n.name,
        n.joinRule,
        n.tokenSalt,
        n.tokenHash,
        n.policy.maxMembers,
        JSON.stringify(n.policy.allowedPorts),
        n.policy.membersResolve,
        n.created,
      ])
      return r.rowCount! > 0 ? id : null
    })
  }

  async getNetwork(id: number): Promise<NetworkRecord | null> {
    return toNetwork((await this.run<NetworkRow>(Q.getNetwork, [id])).rows[0])
  }

  async findNetworkByName(name: string): Promise<NetworkRecord | null> {
    return toNetwork((await this.run<NetworkRow>(Q.findNetworkByName, [name])).rows[0])
  }

  async listNetworks(): Promise<Array<NetworkRecord & { members: number }>> {
    const r = await this.run<NetworkRow & { members: number }>(Q.listNetworks, [])
    return r.rows.map((x) => ({ ...toNetwork(x)!, members: x.members }))
  }

  async setPolicy(id: number, policy: NetworkPolicy): Promise<void> {
    await this.run(Q.setPolicy, [policy.maxMembers, JSON.stringify(policy.allowedPorts), policy.membersResolve, id])
  }

  // --- members -----------------------------------------------------------------

  async roleOf(networkId: number, nodeId: number): Promise<NetworkRole | null> {
    return (await this.run<{ role: NetworkRole }>(Q.getMember, [networkId, nodeId])).rows[0]?.role ?? null
  }

  async listMembers(networkId: number, afterNode = 0, limit = -1): Promise<MemberRecord[]> {
    const r = await this.run<{ node_id: number; role: NetworkRole; hostname: string | null }>(Q.listMembers, [
      networkId,
      afterNode,
      limit < 0 ? null : limit,
    ])
    return r.rows.map((x) => ({ nodeId: x.node_id, role: x.role, hostname: x.hostname }))
  }

  async countMembers(networkId: number): Promise<number> {
    return (await this.run<{ n: number }>(Q.countMembers, [networkId])).rows[0]!.n
  }

  async countOwners(networkId: number): Promise<number> {
    return (await this.run<{ n: number }>(Q.countOwners, [networkId])).rows[0]!.n
  }

  async addMember(networkId: number, nodeId: number, role: NetworkRole, now: number): Promise<void> {
    await this.run(Q.insertMember, [networkId, nodeId, role, now])
  }

  async removeMember(networkId: number, nodeId: number): Promise<boolean> {
    return (await this.run(Q.deleteMember, [networkId, nodeId])).rowCount! > 0
  }

  async setRole(networkId: number, nodeId: number, role: NetworkRole): Promise<void> {
    await this.run(Q.setRole, [role, networkId, nodeId])
  }

  async networksOf(nodeId: number): Promise<number[]> {
    return (await this.run<{ network_id: number }>(Q.networksOf, [nodeId])).rows.map((x) => x.network_id)
  }

  async shareResolvableNetwork(a: number, b: number): Promise<boolean> {
    return (await this.run(Q.shareResolvable, [a, b])).rowCount! > 0
  }

  // --- invites -------------------------------------------------------------------

  async getInvite(networkId: number, nonce: string): Promise<InviteRecord | null> {
    return toInvite((await this.run<InviteRow>(Q.getInvite, [networkId, nonce])).rows[0])
  }

  async unusedInvitesFor(networkId: number, inviteeId: number): Promise<InviteRecord[]> {
    return (await this.run<InviteRow>(Q.unusedInvites, [networkId, inviteeId])).rows.map((r) => toInvite(r)!)
  }

  async putInvite(i: Omit<InviteRecord, 'used'>, used: boolean, now: number): Promise<void> {
    await this.run(Q.insertInvite, [i.networkId, i.nonce, i.inviterId, i.inviteeId, i.expires, i.signature, used, now])
  }

  async pruneExpiredInvites(expiredBefore: number): Promise<number> {
    return (await this.run(Q.pruneInvites, [expiredBefore])).rowCount!
  }

  async markInviteUsed(networkId: number, nonce: string): Promise<void> {
    await this.run(Q.useInvite, [networkId, nonce])
  }

  // --- nonces of signed writes -----------------------------------------------------

  async useNonce(nodeId: number, nonce: string, now: number): Promise<boolean> {
    return (await this.run(Q.insertNonce, [nodeId, nonce, now])).rowCount! > 0
  }

  async pruneNonces(before: number): Promise<number> {
    return (await this.run(Q.pruneNonces, [before])).rowCount!
  }

  // --- audit chains ----------------------------------------------------------------

  appendAudit(e: NewAuditEntry): Promise<AuditEntry> {
    return this.atomic(async (nets) => {
      await nets.run(Q.lockChain, [AUDIT_LOCK, e.networkId])
      const head = (await nets.run<{ seq: number; hash: string }>(Q.auditHead, [e.networkId])).rows[0]
      const seq = (head?.seq ?? 0) + 1
      const prev = head?.hash ?? AUDIT_GENESIS
      const withoutHash: Omit<AuditEntry, 'hash'> = { ...e, seq, prev }
      const entry: AuditEntry = { ...withoutHash, hash: auditEntryHash(withoutHash) }
      await nets.run(Q.insertAudit, [
        entry.networkId,
        entry.seq,
        entry.time,
        entry.actor,
        entry.actorKey,
        entry.action,
        entry.subject,
        entry.detail,
        entry.signed,
        entry.signature,
        entry.prev,
        entry.hash,
      ])
      return entry
    })
  }

  async listAudit(networkId: number, afterSeq: number, limit: number): Promise<AuditEntry[]> {
    const r = await this.run<AuditRow>(Q.listAudit, [networkId, afterSeq, limit < 0 ? null : limit])
    return r.rows.map(auditEntryFromRow)
  }
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
    used: r.used,
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
    policy: { maxMembers: r.max_members, allowedPorts: ports, membersResolve: r.members_resolve },
    created: r.created,
  }
}
