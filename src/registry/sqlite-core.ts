/**
 * The registry's persistent state in SQLite (better-sqlite3, synchronous): the
 * statements themselves. `SqliteRegistryStore` (store.ts) puts the
 * asynchronous RegistryStore interface and its transaction lock in front of
 * this; nothing else uses it.
 *
 * Every change is written before the request that caused it is answered, so a
 * registry restart loses nothing (the Go reference instead snapshots JSON at
 * most once a second, §10.7). WAL mode keeps those small commits cheap, and
 * `synchronous = FULL` makes each one durable against power loss too; only a
 * heartbeat's `last_seen` is different: soft state, gathered in memory and
 * written in one transaction about once a second (`touchNode`, `flushTouches`).
 *
 * Node rows are never deleted: a node that deregisters or is reaped goes
 * offline (hostname freed), and its row keeps the public key, owner, score and
 * trust. `key_index` maps every key a node has ever used to its ID and is never
 * pruned either, so a returning key always gets its old ID back.
 */
import Database from 'better-sqlite3'
import { RegistryError, RegistryErrorCode } from './errors.js'
import { NetworkStore } from './network-store.js'
import { migrateSchema } from './schema.js'
import type {
  BeaconRecord,
  HandshakeRequestRecord,
  HandshakeResponseRecord,
  KeyIndexEntry,
  NodeRecord,
  TrustOrigin,
  TrustPairRecord,
} from './store-types.js'

interface NodeRow {
  id: number
  public_key: string
  owner: string | null
  real_addr: string | null
  is_public: number
  hostname: string | null
  tags: string
  polo_score: number
  task_exec: number
  last_seen: number
  online: number
}

export class SqliteCore {
  private readonly db: Database.Database
  private readonly statements: ReturnType<typeof prepareStatements>
  /** Heartbeats (node → last_seen) not yet written: `flushTouches`. */
  private readonly touches = new Map<number, number>()
  /** Networks, members, invites and audit chains, on the same database (network-store.ts). */
  readonly networks: NetworkStore

  readonly path: string

  /** `busyTimeoutMs`: how long a write waits (blocking the thread) for a lock another process holds on the file. */
  constructor(path: string, busyTimeoutMs = DEFAULT_BUSY_TIMEOUT_MS) {
    this.path = path
    let db: Database.Database | null = null
    try {
      db = new Database(path, { timeout: busyTimeoutMs })
      db.pragma('journal_mode = WAL')
      // FULL: every commit is on disk before the request is answered. NORMAL (WAL) survives a
      // process crash but a power loss can drop the last commits, and with them an allocated
      // node ID, which the next registration would then hand to a second key.
      db.pragma('synchronous = FULL')
      db.pragma('foreign_keys = ON')
      migrateSchema(db)
      this.statements = prepareStatements(db)
      this.networks = new NetworkStore(db)
      this.db = db
    } catch (err) {
      if (db?.open) db.close()
      if (err instanceof RegistryError) throw err
      throw new RegistryError(RegistryErrorCode.STORE, `cannot open registry store ${path}: ${(err as Error).message}`, {
        hint: 'check that the directory exists and is writable by this user',
        cause: err,
      })
    }
  }

  /** Writes the gathered heartbeats (if it can) and closes. */
  close(): void {
    if (!this.db.open) return
    try {
      this.flushTouches()
    } finally {
      this.db.close()
    }
  }

  /** The durability settings in force on this connection (`synchronous`: 0 OFF, 1 NORMAL, 2 FULL, 3 EXTRA). */
  durability(): { journalMode: string; synchronous: number } {
    return {
      journalMode: String(this.db.pragma('journal_mode', { simple: true })),
      synchronous: Number(this.db.pragma('synchronous', { simple: true })),
    }
  }

  /**
   * Runs `fn` in one transaction: all of its changes are stored, or none.
   * Inside an open `begin()` it is a savepoint of that transaction (better-sqlite3
   * nests them), so a multi-row method called on a transaction runs inline.
   */
  transaction<T>(fn: () => T): T {
    return this.db.transaction(fn)()
  }

  /** Opens the transaction of `SqliteRegistryStore.transaction` (IMMEDIATE: the write lock at once). */
  begin(): void {
    this.statements.begin.run()
  }

  commit(): void {
    this.statements.commit.run()
  }

  /** Rolls back the open transaction, if one is still open (a failed COMMIT may have ended it). */
  rollback(): void {
    if (this.db.open && this.db.inTransaction) this.statements.rollback.run()
  }

  get isOpen(): boolean {
    return this.db.open
  }

  /**
   * A failure of the database itself (locked by another process, disk full or
   * gone, I/O error, closed), as opposed to a bug or a constraint: the request
   * that met it gets "registry store unavailable".
   */
  unavailable(err: unknown): RegistryError | null {
    if (err instanceof RegistryError) return err.code === RegistryErrorCode.STORE ? err : null
    const closed = !this.db.open
    const sqlite = err instanceof Database.SqliteError && !err.code.startsWith('SQLITE_CONSTRAINT')
    if (!closed && !sqlite) return null
    return new RegistryError(RegistryErrorCode.STORE, `registry store ${this.path}: ${(err as Error).message}`, {
      hint: closed ? 'the registry is shutting down' : 'check the disk and that no other process holds the store file locked',
      cause: err,
    })
  }

  // --- nodes ---------------------------------------------------------------

  getNode(id: number): NodeRecord | null {
    return this.withTouch(toNode(this.statements.getNode.get(id) as NodeRow | undefined))
  }

  /** A heartbeat not yet written shows in what the store answers. */
  private withTouch(node: NodeRecord | null): NodeRecord | null {
    if (node !== null) {
      const t = this.touches.get(node.id)
      if (t !== undefined && t > node.lastSeen) node.lastSeen = t
    }
    return node
  }

  findKey(publicKey: string): KeyIndexEntry | null {
    const row = this.statements.findKey.get(publicKey) as { node_id: number; retired: number } | undefined
    return row === undefined ? null : { nodeId: row.node_id, retired: row.retired !== 0 }
  }

  findOnlineByHostname(hostname: string): NodeRecord | null {
    return this.withTouch(toNode(this.statements.findByHostname.get(hostname) as NodeRow | undefined))
  }

  /** Creates a node with the next ID (IDs start at 1 and are never reused). */
  createNode(fields: { publicKey: string; owner: string | null; realAddr: string; now: number }): NodeRecord {
    return this.transaction(() => {
      const id = (this.statements.getNextNode.get() as { value: number }).value
      this.statements.setNextNode.run(id + 1)
      this.statements.insertNode.run({ id, public_key: fields.publicKey, owner: fields.owner, real_addr: fields.realAddr, now: fields.now })
      this.statements.insertKey.run(fields.publicKey, id, fields.now)
      return this.getNode(id)!
    })
  }

  /**
   * A known node registers again. An online node keeps its settings; one that
   * was offline comes back with the defaults a fresh Go registration would
   * have (private, no hostname, tags or task flag), which the daemon re-applies.
   */
  reviveNode(id: number, fields: { owner: string | null; realAddr: string; now: number }): NodeRecord {
    const node = this.getNode(id)
    if (node === null) throw new Error(`node ${id} does not exist`)
    const owner = fields.owner ?? node.owner
    if (node.online) this.statements.refreshNode.run({ id, owner, real_addr: fields.realAddr, now: fields.now })
    else this.statements.reviveNode.run({ id, owner, real_addr: fields.realAddr, now: fields.now })
    return this.getNode(id)!
  }

  /** Sets the stored endpoint and owner (a change the node has proven, address-claims.ts). */
  setEndpoint(id: number, realAddr: string, owner: string | null): void {
    this.statements.setEndpoint.run(realAddr, owner, id)
  }

  /**
   * A heartbeat's `last_seen`: soft state that the next heartbeat rewrites, so
   * it is committed without the fsync of FULL (one per heartbeat would be
   * hundreds a second with thousands of nodes). In WAL mode the next FULL
   * commit makes it durable along with everything before it.
   */
  touchNode(id: number, now: number): void {
    this.touches.set(id, now)
  }

  /** Heartbeats gathered and not yet written. */
  get pendingTouches(): number {
    return this.touches.size
  }

  /**
   * Writes the gathered heartbeats in one transaction, without the fsync of
   * FULL (the registry server calls it every second; the reaper and close()
   * call it first). One commit per heartbeat was the registry's largest
   * SQLite cost under load (bench/README.md, "Registry load").
   */
  flushTouches(): void {
    if (this.touches.size === 0 || !this.db.open) return
    this.db.pragma('synchronous = NORMAL')
    try {
      this.transaction(() => {
        for (const [id, at] of this.touches) this.statements.touchNode.run(at, id)
      })
      this.touches.clear()
    } finally {
      this.db.pragma('synchronous = FULL')
    }
  }

  setVisibility(id: number, isPublic: boolean): void {
    this.statements.setVisibility.run(isPublic ? 1 : 0, id)
  }

  /** Sets or clears (null) the hostname. False if another online node holds it. */
  setHostname(id: number, hostname: string | null): boolean {
    return this.transaction(() => {
      if (hostname !== null) {
        const holder = this.findOnlineByHostname(hostname)
        if (holder !== null && holder.id !== id) return false
      }
      this.statements.setHostname.run(hostname, id)
      return true
    })
  }

  setTags(id: number, tags: string[]): void {
    this.statements.setTags.run(JSON.stringify(tags), id)
  }

  setTaskExec(id: number, enabled: boolean): void {
    this.statements.setTaskExec.run(enabled ? 1 : 0, id)
  }

  setPoloScore(id: number, score: number): void {
    this.statements.setPoloScore.run(score, id)
  }

  /** Offline, hostname freed; key, owner, score and trust stay. */
  markOffline(id: number): void {
    this.statements.markOffline.run(id)
  }

  /** Takes every online node last seen before `cutoff` offline; returns their IDs. */
  reapStale(cutoff: number): number[] {
    this.flushTouches()
    return this.transaction(() => {
      const ids = (this.statements.staleNodes.all(cutoff) as Array<{ id: number }>).map((r) => r.id)
      for (const id of ids) this.statements.markOffline.run(id)
      return ids
    })
  }

  /** Replaces a node's key; the old key stays in the index, retired. */
  rotateKey(id: number, newPublicKey: string, now: number): void {
    this.transaction(() => {
      const node = this.getNode(id)
      if (node === null) throw new Error(`node ${id} does not exist`)
      this.statements.retireKey.run(node.publicKey)
      this.statements.setPublicKey.run(newPublicKey, id)
      this.statements.insertKey.run(newPublicKey, id, now)
    })
  }

  countOnline(): number {
    return (this.statements.countOnline.get() as { n: number }).n
  }

  listNodes(): NodeRecord[] {
    return (this.statements.allNodes.all() as NodeRow[]).map((r) => toNode(r)!)
  }

  // --- trust -----------------------------------------------------------------

  hasTrustPair(a: number, b: number): boolean {
    const [lo, hi] = ordered(a, b)
    return this.statements.getPair.get(lo, hi) !== undefined
  }

  addTrustPair(a: number, b: number, origin: TrustOrigin, now: number): void {
    const [lo, hi] = ordered(a, b)
    this.statements.insertPair.run(lo, hi, origin, now)
  }

  listTrustPairs(): TrustPairRecord[] {
    return (this.statements.allPairs.all() as Array<{ node_a: number; node_b: number; origin: TrustOrigin; created: number }>).map(
      (r) => ({ nodeA: r.node_a, nodeB: r.node_b, origin: r.origin, created: r.created }),
    )
  }

  /** `from` declared that it trusts `to` (report_trust or an accepting respond_handshake). False if it already had. */
  addTrustReport(from: number, to: number, now: number): boolean {
    return this.statements.insertReport.run(from, to, now).changes > 0
  }

  hasTrustReport(from: number, to: number): boolean {
    return this.statements.getReport.get(from, to) !== undefined
  }

  /** Removes the pair, both reports and requests between a and b. True if anything was there. */
  removeTrust(a: number, b: number): boolean {
    return this.transaction(() => {
      const [lo, hi] = ordered(a, b)
      let changes = this.statements.deletePair.run(lo, hi).changes
      changes += this.statements.deleteReport.run(a, b).changes + this.statements.deleteReport.run(b, a).changes
      this.statements.deleteRequest.run(a, b)
      this.statements.deleteRequest.run(b, a)
      return changes > 0
    })
  }

  // --- handshake inboxes -------------------------------------------------------

  /** An outstanding request: stored and not yet answered (it may have been polled). */
  hasHandshakeRequest(from: number, to: number): boolean {
    return this.statements.getRequest.get(from, to) !== undefined
  }

  /** Requests waiting in `to`'s inbox, not counting the one from `exceptFrom`. */
  countUnpolledRequests(to: number, exceptFrom: number): number {
    return (this.statements.countUnpolled.get(to, exceptFrom) as { n: number }).n
  }

  /** Stores (or refreshes and re-delivers) the one request from `from` to `to`. */
  putHandshakeRequest(from: number, to: number, justification: string, timestamp: number, now: number): void {
    this.statements.upsertRequest.run({ from_id: from, to_id: to, justification, timestamp, now })
  }

  deleteHandshakeRequest(from: number, to: number): boolean {
    return this.statements.deleteRequest.run(from, to).changes > 0
  }

  /**
   * Returns `to`'s unpolled requests and marks them polled. They stay stored
   * until answered, so a later respond_handshake can be matched to them.
   */
  takeHandshakeRequests(to: number): HandshakeRequestRecord[] {
    return this.transaction(() => {
      const rows = this.statements.unpolledRequests.all(to) as Array<{ from_id: number; justification: string; timestamp: number }>
      this.statements.markPolled.run(to)
      return rows.map((r) => ({ fromNodeId: r.from_id, justification: r.justification, timestamp: r.timestamp }))
    })
  }

  /** Queues `from`'s answer in `to`'s response inbox (one per pair; the newest wins). */
  putHandshakeResponse(from: number, to: number, accept: boolean, timestamp: number): void {
    this.statements.upsertResponse.run(from, to, accept ? 1 : 0, timestamp)
  }

  /** Returns and deletes `to`'s queued responses. */
  takeHandshakeResponses(to: number): HandshakeResponseRecord[] {
    return this.transaction(() => {
      const rows = this.statements.responsesFor.all(to) as Array<{ from_id: number; accept: number; timestamp: number }>
      this.statements.deleteResponses.run(to)
      return rows.map((r) => ({ fromNodeId: r.from_id, accept: r.accept !== 0, timestamp: r.timestamp }))
    })
  }

  /** Drops polled-but-unanswered requests received before `cutoff` (ms). */
  pruneAnsweredlessRequests(cutoff: number): number {
    return this.statements.pruneRequests.run(cutoff).changes
  }

  // --- shared rate limits and maintenance ----------------------------------------

  /** One event against `key` in its fixed window of `periodMs`; false when `capacity` were counted there already. */
  takeRateToken(key: string, capacity: number, periodMs: number, now: number): boolean {
    if (capacity < 1) return false
    const windowStart = Math.floor(now / periodMs) * periodMs
    return this.statements.takeRateToken.run({ key, window_start: windowStart, capacity }).changes > 0
  }

  /** Compare-and-set on `maintenance.last_run`: true (and `now` stored) when `intervalMs` passed since the last run. */
  claimMaintenance(name: string, intervalMs: number, now: number): boolean {
    return this.statements.claimMaintenance.run({ name, now, due: now - intervalMs }).changes > 0
  }

  schemaVersion(): number {
    return Number(this.db.pragma('user_version', { simple: true }))
  }

  // --- beacons ---------------------------------------------------------------

  putBeacon(id: number, addr: string, now: number): void {
    this.statements.upsertBeacon.run(id, addr, now)
  }

  /** Beacons heard from at or after `since` (ms). */
  listBeacons(since: number): BeaconRecord[] {
    return (this.statements.beaconsSince.all(since) as Array<{ id: number; addr: string; last_seen: number }>).map((r) => ({
      id: r.id,
      addr: r.addr,
      lastSeen: r.last_seen,
    }))
  }

  pruneBeacons(before: number): number {
    return this.statements.pruneBeacons.run(before).changes
  }
}

/** better-sqlite3's own default. Only another process (a backup, an operator's sqlite3 shell) ever holds the lock. */
const DEFAULT_BUSY_TIMEOUT_MS = 5_000

function ordered(a: number, b: number): [number, number] {
  return a < b ? [a, b] : [b, a]
}

function toNode(row: NodeRow | undefined): NodeRecord | null {
  if (row === undefined) return null
  return {
    id: row.id,
    publicKey: row.public_key,
    owner: row.owner,
    realAddr: row.real_addr,
    isPublic: row.is_public !== 0,
    hostname: row.hostname,
    tags: parseTags(row.tags),
    poloScore: row.polo_score,
    taskExec: row.task_exec !== 0,
    lastSeen: row.last_seen,
    online: row.online !== 0,
  }
}

function parseTags(text: string): string[] {
  try {
    const v: unknown = JSON.parse(text)
    return Array.isArray(v) ? v.filter((t): t is string => typeof t === 'string') : []
  } catch {
    return []
  }
}

const NODE_COLUMNS = 'id, public_key, owner, real_addr, is_public, hostname, tags, polo_score, task_exec, last_seen, online'

function prepareStatements(db: Database.Database) {
  return {
    getNode: db.prepare(`SELECT ${NODE_COLUMNS} FROM nodes WHERE id = ?`),
    allNodes: db.prepare(`SELECT ${NODE_COLUMNS} FROM nodes ORDER BY id`),
    findKey: db.prepare('SELECT node_id, retired FROM key_index WHERE public_key = ?'),
    findByHostname: db.prepare(`SELECT ${NODE_COLUMNS} FROM nodes WHERE hostname = ? AND online = 1`),
    getNextNode: db.prepare(`SELECT value FROM counters WHERE name = 'next_node'`),
    setNextNode: db.prepare(`UPDATE counters SET value = ? WHERE name = 'next_node'`),
    insertNode: db.prepare(
      `INSERT INTO nodes (id, public_key, owner, real_addr, last_seen, online, created)
       VALUES (@id, @public_key, @owner, @real_addr, @now, 1, @now)`,
    ),
    insertKey: db.prepare('INSERT OR REPLACE INTO key_index (public_key, node_id, retired, created) VALUES (?, ?, 0, ?)'),
    retireKey: db.prepare('UPDATE key_index SET retired = 1 WHERE public_key = ?'),
    setPublicKey: db.prepare('UPDATE nodes SET public_key = ? WHERE id = ?'),
    refreshNode: db.prepare('UPDATE nodes SET owner = @owner, real_addr = @real_addr, last_seen = @now WHERE id = @id'),
    reviveNode: db.prepare(
      `UPDATE nodes SET owner = @owner, real_addr = @real_addr, last_seen = @now, online = 1,
         is_public = 0, hostname = NULL, tags = '[]', task_exec = 0 WHERE id = @id`,
    ),
    touchNode: db.prepare('UPDATE nodes SET last_seen = ? WHERE id = ?'),
    setEndpoint: db.prepare('UPDATE nodes SET real_addr = ?, owner = ? WHERE id = ?'),
    setVisibility: db.prepare('UPDATE nodes SET is_public = ? WHERE id = ?'),
    setHostname: db.prepare('UPDATE nodes SET hostname = ? WHERE id = ?'),
    setTags: db.prepare('UPDATE nodes SET tags = ? WHERE id = ?'),
    setTaskExec: db.prepare('UPDATE nodes SET task_exec = ? WHERE id = ?'),
    setPoloScore: db.prepare('UPDATE nodes SET polo_score = ? WHERE id = ?'),
    markOffline: db.prepare('UPDATE nodes SET online = 0, hostname = NULL WHERE id = ?'),
    staleNodes: db.prepare('SELECT id FROM nodes WHERE online = 1 AND last_seen < ?'),
    countOnline: db.prepare('SELECT count(*) AS n FROM nodes WHERE online = 1'),
    getPair: db.prepare('SELECT 1 FROM trust_pairs WHERE node_a = ? AND node_b = ?'),
    insertPair: db.prepare('INSERT OR IGNORE INTO trust_pairs (node_a, node_b, origin, created) VALUES (?, ?, ?, ?)'),
    deletePair: db.prepare('DELETE FROM trust_pairs WHERE node_a = ? AND node_b = ?'),
    allPairs: db.prepare('SELECT node_a, node_b, origin, created FROM trust_pairs ORDER BY node_a, node_b'),
    insertReport: db.prepare('INSERT OR IGNORE INTO trust_reports (from_id, to_id, created) VALUES (?, ?, ?)'),
    getReport: db.prepare('SELECT 1 FROM trust_reports WHERE from_id = ? AND to_id = ?'),
    deleteReport: db.prepare('DELETE FROM trust_reports WHERE from_id = ? AND to_id = ?'),
    getRequest: db.prepare('SELECT 1 FROM handshake_requests WHERE from_id = ? AND to_id = ?'),
    countUnpolled: db.prepare('SELECT count(*) AS n FROM handshake_requests WHERE to_id = ? AND polled = 0 AND from_id != ?'),
    upsertRequest: db.prepare(
      `INSERT INTO handshake_requests (from_id, to_id, justification, timestamp, received, polled)
       VALUES (@from_id, @to_id, @justification, @timestamp, @now, 0)
       ON CONFLICT (from_id, to_id) DO UPDATE SET
         justification = excluded.justification, timestamp = excluded.timestamp, received = excluded.received, polled = 0`,
    ),
    deleteRequest: db.prepare('DELETE FROM handshake_requests WHERE from_id = ? AND to_id = ?'),
    unpolledRequests: db.prepare(
      'SELECT from_id, justification, timestamp FROM handshake_requests WHERE to_id = ? AND polled = 0 ORDER BY received, from_id',
    ),
    markPolled: db.prepare('UPDATE handshake_requests SET polled = 1 WHERE to_id = ? AND polled = 0'),
    pruneRequests: db.prepare('DELETE FROM handshake_requests WHERE polled = 1 AND received < ?'),
    upsertResponse: db.prepare(
      `INSERT INTO handshake_responses (from_id, to_id, accept, timestamp) VALUES (?, ?, ?, ?)
       ON CONFLICT (from_id, to_id) DO UPDATE SET accept = excluded.accept, timestamp = excluded.timestamp`,
    ),
    responsesFor: db.prepare('SELECT from_id, accept, timestamp FROM handshake_responses WHERE to_id = ? ORDER BY rowid'),
    deleteResponses: db.prepare('DELETE FROM handshake_responses WHERE to_id = ?'),
    upsertBeacon: db.prepare(
      `INSERT INTO beacons (id, addr, last_seen) VALUES (?, ?, ?)
       ON CONFLICT (id) DO UPDATE SET addr = excluded.addr, last_seen = excluded.last_seen`,
    ),
    beaconsSince: db.prepare('SELECT id, addr, last_seen FROM beacons WHERE last_seen >= ? ORDER BY id'),
    pruneBeacons: db.prepare('DELETE FROM beacons WHERE last_seen < ?'),
    // A newer window starts over at 1; the current one counts up to `capacity`; an older one (a
    // front end whose clock is behind) counts against the stored window, never resets it.
    takeRateToken: db.prepare(
      `INSERT INTO rate_windows (key, window_start, count) VALUES (@key, @window_start, 1)
       ON CONFLICT (key) DO UPDATE SET
         count = CASE WHEN excluded.window_start > rate_windows.window_start THEN 1 ELSE rate_windows.count + 1 END,
         window_start = max(rate_windows.window_start, excluded.window_start)
       WHERE excluded.window_start > rate_windows.window_start OR rate_windows.count < @capacity`,
    ),
    claimMaintenance: db.prepare(
      `INSERT INTO maintenance (name, last_run) VALUES (@name, @now)
       ON CONFLICT (name) DO UPDATE SET last_run = excluded.last_run WHERE maintenance.last_run <= @due`,
    ),
    begin: db.prepare('BEGIN IMMEDIATE'),
    commit: db.prepare('COMMIT'),
    rollback: db.prepare('ROLLBACK'),
  }
}
