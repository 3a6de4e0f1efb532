/**
 * The asynchronous `RegistryTx` (store-api.ts) over the synchronous SQLite
 * statements (sqlite-core.ts, network-store.ts). Every method is the core's
 * method run through `run`, which decides when it may run: the store's own
 * `run` waits while another caller's transaction is open (store.ts); a
 * transaction's `run` goes straight to the database, whose transaction it is.
 * The promise is already settled when `run` returns on the fast path, so a
 * request that never meets an open transaction never waits for anything.
 */
import type { AuditEntry, NetworkPolicy, NetworkRole } from './network-types.js'
import type { InviteRecord, MemberRecord, NetworkRecord, NetworkStore, NewAuditEntry } from './network-store.js'
import type { SqliteCore } from './sqlite-core.js'
import type { NetworkTx, RegistryTx } from './store-api.js'
import type {
  BeaconRecord,
  HandshakeRequestRecord,
  HandshakeResponseRecord,
  KeyIndexEntry,
  NodeRecord,
  TrustOrigin,
  TrustPairRecord,
} from './store-types.js'

/** Runs one synchronous piece of database work when it may; its throw becomes the rejection. */
export interface SqliteRunner {
  run<T>(op: () => T): Promise<T>
}

/** Runs `op` now: its result, or its error (a database failure as RegistryError STORE), as a settled promise. */
export function runNow<T>(core: SqliteCore, op: () => T): Promise<T> {
  try {
    return Promise.resolve(op())
  } catch (err) {
    return Promise.reject(core.unavailable(err) ?? err)
  }
}

export abstract class SqliteTxBase implements RegistryTx, SqliteRunner {
  protected readonly core: SqliteCore
  readonly networks: NetworkTx

  constructor(core: SqliteCore) {
    this.core = core
    this.networks = new SqliteNetworkTx(core.networks, this)
  }

  abstract run<T>(op: () => T): Promise<T>

  // --- nodes
  getNode(id: number): Promise<NodeRecord | null> {
    return this.run(() => this.core.getNode(id))
  }
  findKey(publicKey: string): Promise<KeyIndexEntry | null> {
    return this.run(() => this.core.findKey(publicKey))
  }
  findOnlineByHostname(hostname: string): Promise<NodeRecord | null> {
    return this.run(() => this.core.findOnlineByHostname(hostname))
  }
  createNode(fields: { publicKey: string; owner: string | null; realAddr: string; now: number }): Promise<NodeRecord> {
    return this.run(() => this.core.createNode(fields))
  }
  reviveNode(id: number, fields: { owner: string | null; realAddr: string; now: number }): Promise<NodeRecord> {
    return this.run(() => this.core.reviveNode(id, fields))
  }
  setEndpoint(id: number, realAddr: string, owner: string | null): Promise<void> {
    return this.run(() => this.core.setEndpoint(id, realAddr, owner))
  }
  setVisibility(id: number, isPublic: boolean): Promise<void> {
    return this.run(() => this.core.setVisibility(id, isPublic))
  }
  setHostname(id: number, hostname: string | null): Promise<boolean> {
    return this.run(() => this.core.setHostname(id, hostname))
  }
  setTags(id: number, tags: string[]): Promise<void> {
    return this.run(() => this.core.setTags(id, tags))
  }
  setTaskExec(id: number, enabled: boolean): Promise<void> {
    return this.run(() => this.core.setTaskExec(id, enabled))
  }
  setPoloScore(id: number, score: number): Promise<void> {
    return this.run(() => this.core.setPoloScore(id, score))
  }
  markOffline(id: number): Promise<void> {
    return this.run(() => this.core.markOffline(id))
  }
  rotateKey(id: number, newPublicKey: string, now: number): Promise<void> {
    return this.run(() => this.core.rotateKey(id, newPublicKey, now))
  }
  countOnline(): Promise<number> {
    return this.run(() => this.core.countOnline())
  }
  listNodes(): Promise<NodeRecord[]> {
    return this.run(() => this.core.listNodes())
  }

  // --- trust
  hasTrustPair(a: number, b: number): Promise<boolean> {
    return this.run(() => this.core.hasTrustPair(a, b))
  }
  addTrustPair(a: number, b: number, origin: TrustOrigin, now: number): Promise<void> {
    return this.run(() => this.core.addTrustPair(a, b, origin, now))
  }
  listTrustPairs(): Promise<TrustPairRecord[]> {
    return this.run(() => this.core.listTrustPairs())
  }
  addTrustReport(from: number, to: number, now: number): Promise<boolean> {
    return this.run(() => this.core.addTrustReport(from, to, now))
  }
  hasTrustReport(from: number, to: number): Promise<boolean> {
    return this.run(() => this.core.hasTrustReport(from, to))
  }
  removeTrust(a: number, b: number): Promise<boolean> {
    return this.run(() => this.core.removeTrust(a, b))
  }

  // --- handshake inboxes
  hasHandshakeRequest(from: number, to: number): Promise<boolean> {
    return this.run(() => this.core.hasHandshakeRequest(from, to))
  }
  countUnpolledRequests(to: number, exceptFrom: number): Promise<number> {
    return this.run(() => this.core.countUnpolledRequests(to, exceptFrom))
  }
  putHandshakeRequest(from: number, to: number, justification: string, timestamp: number, now: number): Promise<void> {
    return this.run(() => this.core.putHandshakeRequest(from, to, justification, timestamp, now))
  }
  deleteHandshakeRequest(from: number, to: number): Promise<boolean> {
    return this.run(() => this.core.deleteHandshakeRequest(from, to))
  }
  takeHandshakeRequests(to: number): Promise<HandshakeRequestRecord[]> {
    return this.run(() => this.core.takeHandshakeRequests(to))
  }
  putHandshakeResponse(from: number, to: number, accept: boolean, timestamp: number): Promise<void> {
    return this.run(() => this.core.putHandshakeResponse(from, to, accept, timestamp))
  }
  takeHandshakeResponses(to: number): Promise<HandshakeResponseRecord[]> {
    return this.run(() => this.core.takeHandshakeResponses(to))
  }

  // --- beacons and rate limits
  putBeacon(id: number, addr: string, now: number): Promise<void> {
    return this.run(() => this.core.putBeacon(id, addr, now))
  }
  listBeacons(since: number): Promise<BeaconRecord[]> {
    return this.run(() => this.core.listBeacons(since))
  }
  takeRateToken(key: string, capacity: number, periodMs: number, now: number): Promise<boolean> {
    return this.run(() => this.core.takeRateToken(key, capacity, periodMs, now))
  }
}

/** The transaction handed to `SqliteRegistryStore.transaction`'s function: valid until that function settles. */
export class SqliteTx extends SqliteTxBase {
  private open = true

  run<T>(op: () => T): Promise<T> {
    if (!this.open) return Promise.reject(new Error('registry store transaction used after it ended'))
    return runNow(this.core, op)
  }

  /** The transaction committed or rolled back: later calls on it are refused. */
  end(): void {
    this.open = false
  }
}

export class SqliteNetworkTx implements NetworkTx {
  private readonly s: NetworkStore
  private readonly r: SqliteRunner

  constructor(store: NetworkStore, runner: SqliteRunner) {
    this.s = store
    this.r = runner
  }

  createNetwork(n: Omit<NetworkRecord, 'id'>): Promise<number | null> {
    return this.r.run(() => this.s.createNetwork(n))
  }
  getNetwork(id: number): Promise<NetworkRecord | null> {
    return this.r.run(() => this.s.getNetwork(id))
  }
  findNetworkByName(name: string): Promise<NetworkRecord | null> {
    return this.r.run(() => this.s.findNetworkByName(name))
  }
  listNetworks(): Promise<Array<NetworkRecord & { members: number }>> {
    return this.r.run(() => this.s.listNetworks())
  }
  setPolicy(id: number, policy: NetworkPolicy): Promise<void> {
    return this.r.run(() => this.s.setPolicy(id, policy))
  }
  roleOf(networkId: number, nodeId: number): Promise<NetworkRole | null> {
    return this.r.run(() => this.s.roleOf(networkId, nodeId))
  }
  listMembers(networkId: number, afterNode?: number, limit?: number): Promise<MemberRecord[]> {
    return this.r.run(() => this.s.listMembers(networkId, afterNode, limit))
  }
  countMembers(networkId: number): Promise<number> {
    return this.r.run(() => this.s.countMembers(networkId))
  }
  countOwners(networkId: number): Promise<number> {
    return this.r.run(() => this.s.countOwners(networkId))
  }
  addMember(networkId: number, nodeId: number, role: NetworkRole, now: number): Promise<void> {
    return this.r.run(() => this.s.addMember(networkId, nodeId, role, now))
  }
  removeMember(networkId: number, nodeId: number): Promise<boolean> {
    return this.r.run(() => this.s.removeMember(networkId, nodeId))
  }
  setRole(networkId: number, nodeId: number, role: NetworkRole): Promise<void> {
    return this.r.run(() => this.s.setRole(networkId, nodeId, role))
  }
  networksOf(nodeId: number): Promise<number[]> {
    return this.r.run(() => this.s.networksOf(nodeId))
  }
  shareResolvableNetwork(a: number, b: number): Promise<boolean> {
    return this.r.run(() => this.s.shareResolvableNetwork(a, b))
  }
  getInvite(networkId: number, nonce: string): Promise<InviteRecord | null> {
    return this.r.run(() => this.s.getInvite(networkId, nonce))
  }
  unusedInvitesFor(networkId: number, inviteeId: number): Promise<InviteRecord[]> {
    return this.r.run(() => this.s.unusedInvitesFor(networkId, inviteeId))
  }
  putInvite(i: Omit<InviteRecord, 'used'>, used: boolean, now: number): Promise<void> {
    return this.r.run(() => this.s.putInvite(i, used, now))
  }
  pruneExpiredInvites(expiredBefore: number): Promise<number> {
    return this.r.run(() => this.s.pruneExpiredInvites(expiredBefore))
  }
  markInviteUsed(networkId: number, nonce: string): Promise<void> {
    return this.r.run(() => this.s.markInviteUsed(networkId, nonce))
  }
  useNonce(nodeId: number, nonce: string, now: number): Promise<boolean> {
    return this.r.run(() => this.s.useNonce(nodeId, nonce, now))
  }
  pruneNonces(before: number): Promise<number> {
    return this.r.run(() => this.s.pruneNonces(before))
  }
  appendAudit(e: NewAuditEntry): Promise<AuditEntry> {
    return this.r.run(() => this.s.appendAudit(e))
  }
  listAudit(networkId: number, afterSeq: number, limit: number): Promise<AuditEntry[]> {
    return this.r.run(() => this.s.listAudit(networkId, afterSeq, limit))
  }
}
