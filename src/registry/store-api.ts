/**
 * What the registry needs from its database (issue 14), as one asynchronous
 * interface with two backends: SQLite (embedded, the default; store.ts) and
 * PostgreSQL (several stateless front ends on one database; pg-store.ts).
 *
 * `RegistryTx` is every read and write. The store itself is a `RegistryTx`
 * whose calls each commit on their own; `transaction(fn)` hands `fn` a
 * `RegistryTx` whose calls all commit together or not at all (a throw from
 * `fn` rolls back and is rethrown). Methods documented as changing several
 * rows (createNode, setHostname, rotateKey, reapStale, appendAudit) are atomic
 * on their own, and join the caller's transaction when called on a tx.
 *
 * Backends must stay correct with several front ends on one database: node
 * IDs come from a sequence (never read-then-write), and a transaction that
 * loses a race is retried by `transaction` itself, so `fn` must only touch the
 * database (no side effects outside it) and may run more than once.
 */
import type { AuditEntry, NetworkPolicy, NetworkRole } from './network-types.js'
import type { InviteRecord, MemberRecord, NetworkRecord, NewAuditEntry } from './network-store.js'
import type {
  BeaconRecord,
  HandshakeRequestRecord,
  HandshakeResponseRecord,
  KeyIndexEntry,
  NodeRecord,
  TrustOrigin,
  TrustPairRecord,
} from './store-types.js'

export type { BeaconRecord, HandshakeRequestRecord, HandshakeResponseRecord, KeyIndexEntry, NodeRecord, TrustOrigin, TrustPairRecord }
export type { InviteRecord, MemberRecord, NetworkRecord, NewAuditEntry }

/** Networks, members, invites, write nonces and audit chains (issue 13), inside the same transactions. */
export interface NetworkTx {
  /** The new network's ID, or null when the name is taken. */
  createNetwork(n: Omit<NetworkRecord, 'id'>): Promise<number | null>
  getNetwork(id: number): Promise<NetworkRecord | null>
  findNetworkByName(name: string): Promise<NetworkRecord | null>
  listNetworks(): Promise<Array<NetworkRecord & { members: number }>>
  setPolicy(id: number, policy: NetworkPolicy): Promise<void>
  roleOf(networkId: number, nodeId: number): Promise<NetworkRole | null>
  /** In node-ID order, after `afterNode`; `limit` -1 for all. */
  listMembers(networkId: number, afterNode?: number, limit?: number): Promise<MemberRecord[]>
  countMembers(networkId: number): Promise<number>
  countOwners(networkId: number): Promise<number>
  addMember(networkId: number, nodeId: number, role: NetworkRole, now: number): Promise<void>
  removeMember(networkId: number, nodeId: number): Promise<boolean>
  setRole(networkId: number, nodeId: number, role: NetworkRole): Promise<void>
  networksOf(nodeId: number): Promise<number[]>
  shareResolvableNetwork(a: number, b: number): Promise<boolean>
  getInvite(networkId: number, nonce: string): Promise<InviteRecord | null>
  unusedInvitesFor(networkId: number, inviteeId: number): Promise<InviteRecord[]>
  putInvite(i: Omit<InviteRecord, 'used'>, used: boolean, now: number): Promise<void>
  pruneExpiredInvites(expiredBefore: number): Promise<number>
  markInviteUsed(networkId: number, nonce: string): Promise<void>
  /** False when (node, nonce) was seen before: a replay. */
  useNonce(nodeId: number, nonce: string, now: number): Promise<boolean>
  pruneNonces(before: number): Promise<number>
  /** Appends to the network's chain (seq, prev and hash computed here, under the chain's lock). */
  appendAudit(e: NewAuditEntry): Promise<AuditEntry>
  listAudit(networkId: number, afterSeq: number, limit: number): Promise<AuditEntry[]>
}

export interface RegistryTx {
  // --- nodes
  getNode(id: number): Promise<NodeRecord | null>
  findKey(publicKey: string): Promise<KeyIndexEntry | null>
  findOnlineByHostname(hostname: string): Promise<NodeRecord | null>
  /** A new node with the next ID from the sequence (IDs start at 1, never reused). */
  createNode(fields: { publicKey: string; owner: string | null; realAddr: string; now: number }): Promise<NodeRecord>
  reviveNode(id: number, fields: { owner: string | null; realAddr: string; now: number }): Promise<NodeRecord>
  setEndpoint(id: number, realAddr: string, owner: string | null): Promise<void>
  setVisibility(id: number, isPublic: boolean): Promise<void>
  /** False if another online node holds the name. */
  setHostname(id: number, hostname: string | null): Promise<boolean>
  setTags(id: number, tags: string[]): Promise<void>
  setTaskExec(id: number, enabled: boolean): Promise<void>
  setPoloScore(id: number, score: number): Promise<void>
  markOffline(id: number): Promise<void>
  rotateKey(id: number, newPublicKey: string, now: number): Promise<void>
  countOnline(): Promise<number>
  listNodes(): Promise<NodeRecord[]>
  // --- trust
  hasTrustPair(a: number, b: number): Promise<boolean>
  addTrustPair(a: number, b: number, origin: TrustOrigin, now: number): Promise<void>
  listTrustPairs(): Promise<TrustPairRecord[]>
  /** False when the report existed already. */
  addTrustReport(from: number, to: number, now: number): Promise<boolean>
  hasTrustReport(from: number, to: number): Promise<boolean>
  removeTrust(a: number, b: number): Promise<boolean>
  // --- handshake inboxes (shared by every front end)
  hasHandshakeRequest(from: number, to: number): Promise<boolean>
  countUnpolledRequests(to: number, exceptFrom: number): Promise<number>
  putHandshakeRequest(from: number, to: number, justification: string, timestamp: number, now: number): Promise<void>
  deleteHandshakeRequest(from: number, to: number): Promise<boolean>
  takeHandshakeRequests(to: number): Promise<HandshakeRequestRecord[]>
  putHandshakeResponse(from: number, to: number, accept: boolean, timestamp: number): Promise<void>
  takeHandshakeResponses(to: number): Promise<HandshakeResponseRecord[]>
  // --- beacons
  putBeacon(id: number, addr: string, now: number): Promise<void>
  listBeacons(since: number): Promise<BeaconRecord[]>
  // --- shared rate limits (fixed one-minute-style windows, counted in the database)
  /**
   * Counts one event against `key` in the window of `periodMs` that `now` falls in;
   * false when `capacity` events were already counted there (the event is then not counted).
   */
  takeRateToken(key: string, capacity: number, periodMs: number, now: number): Promise<boolean>
  readonly networks: NetworkTx
}

export type StoreKind = 'sqlite' | 'postgres'

export interface TransactionOptions {
  serializeOn?: readonly string[]
}

/** The lock name of network `n`'s audit chain (0: the trust chain). */
export function auditChainLock(networkId: number): string {
  return `audit:${networkId}`
}

export interface RegistryStore extends RegistryTx {
  readonly kind: StoreKind
  /** Where it is, for logs and `status`: the file, or the PostgreSQL URL without its password. */
  readonly location: string
  /**
   * `options.serializeOn`: names of what the transaction contends on (an audit chain,
   * `auditChainLock(n)`). PostgreSQL takes a session advisory lock on each, in order,
   * before BEGIN, so contenders queue instead of failing each other's serializable
   * snapshots again and again; SQLite (one writer already) ignores them.
   */
  transaction<T>(fn: (tx: RegistryTx) => Promise<T>, options?: TransactionOptions): Promise<T>
  /** A heartbeat's last_seen: gathered in memory (visible to this front end's reads) and written by flushTouches. */
  touchNode(id: number, now: number): void
  /** Writes gathered heartbeats in one transaction (the server calls it every second). */
  flushTouches(): Promise<void>
  /**
   * Runs `fn` only if at least `intervalMs` passed since any front end last ran
   * maintenance named `name`: a compare-and-set on a stored last-run time, so with
   * several front ends one wins each interval. Returns null when skipped.
   */
  maintain<T>(name: string, intervalMs: number, now: number, fn: () => Promise<T>): Promise<T | null>
  /** Takes every online node last seen before `cutoff` offline; returns their IDs. */
  reapStale(cutoff: number): Promise<number[]>
  pruneAnsweredlessRequests(cutoff: number): Promise<number>
  pruneBeacons(before: number): Promise<number>
  /** The schema version in the database. */
  schemaVersion(): Promise<number>
  /** Flushes gathered heartbeats and closes; idempotent. */
  close(): Promise<void>
}
