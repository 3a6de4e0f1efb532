/**
 * Every read and write of the PostgreSQL registry store (issue 14), written
 * once and run two ways: on the pool (each call commits on its own; the
 * methods that change several rows open their own transaction) or on one
 * pooled client inside `PostgresRegistryStore.transaction` (everything joins
 * that transaction). Semantics are the SQLite store's (store.ts); the SQL
 * differs where several front ends share the database: IDs from sequences,
 * unique indexes instead of read-then-write where a race is possible, and
 * `ON CONFLICT` upserts.
 */
import type {
  BeaconRecord,
  HandshakeRequestRecord,
  HandshakeResponseRecord,
  KeyIndexEntry,
  NodeRecord,
  RegistryTx,
  TrustOrigin,
  TrustPairRecord,
} from './store-api.js'
import { PgNetworks } from './pg-networks.js'
import { pgQuery, type PgRun } from './pg-query.js'

/** Runs `fn` atomically: a new transaction on the pool, or inline inside the current one. */
export type PgAtomic = <T>(fn: (ops: PgOps) => Promise<T>) => Promise<T>

interface NodeRow {
  id: number
  public_key: string
  owner: string | null
  real_addr: string | null
  is_public: boolean
  hostname: string | null
  tags: string
  polo_score: number
  task_exec: boolean
  last_seen: number
  online: boolean
}

const NODE_COLUMNS = 'id, public_key, owner, real_addr, is_public, hostname, tags, polo_score, task_exec, last_seen, online'

function q(name: string, text: string) {
  return pgQuery(`pt_${name}`, text)
}

const Q = {
  getNode: q('get_node', `SELECT ${NODE_COLUMNS} FROM nodes WHERE id = $1`),
  allNodes: q('all_nodes', `SELECT ${NODE_COLUMNS} FROM nodes ORDER BY id`),
  findKey: q('find_key', 'SELECT node_id, retired FROM key_index WHERE public_key = $1'),
  findByHostname: q('find_hostname', `SELECT ${NODE_COLUMNS} FROM nodes WHERE hostname = $1 AND online`),
  insertNode: q(
    'insert_node',
    `INSERT INTO nodes (id, public_key, owner, real_addr, last_seen, online, created)
     VALUES (nextval('node_ids'), $1, $2, $3, $4, true, $4) RETURNING ${NODE_COLUMNS}`,
  ),
  insertKey: q(
    'insert_key',
    `INSERT INTO key_index (public_key, node_id, retired, created) VALUES ($1, $2, false, $3)
     ON CONFLICT (public_key) DO UPDATE SET node_id = excluded.node_id, retired = false, created = excluded.created`,
  ),
  // A new node's key is new to the index (the caller looked it up): a plain insert, whose unique
  // check takes no SERIALIZABLE read lock (ON CONFLICT would, and make registrations collide).
  insertNewKey: q('insert_new_key', 'INSERT INTO key_index (public_key, node_id, retired, created) VALUES ($1, $2, false, $3)'),
  retireKey: q('retire_key', 'UPDATE key_index SET retired = true WHERE public_key = $1'),
  setPublicKey: q('set_public_key', 'UPDATE nodes SET public_key = $1 WHERE id = $2'),
  refreshNode: q('refresh_node', 'UPDATE nodes SET owner = $2, real_addr = $3, last_seen = $4 WHERE id = $1'),
  reviveNode: q(
    'revive_node',
    `UPDATE nodes SET owner = $2, real_addr = $3, last_seen = $4, online = true,
       is_public = false, hostname = NULL, tags = '[]', task_exec = false WHERE id = $1`,
  ),
  setEndpoint: q('set_endpoint', 'UPDATE nodes SET real_addr = $1, owner = $2 WHERE id = $3'),
  setVisibility: q('set_visibility', 'UPDATE nodes SET is_public = $1 WHERE id = $2'),
  setHostname: q('set_hostname', 'UPDATE nodes SET hostname = $1 WHERE id = $2'),
  setTags: q('set_tags', 'UPDATE nodes SET tags = $1 WHERE id = $2'),
  setTaskExec: q('set_task_exec', 'UPDATE nodes SET task_exec = $1 WHERE id = $2'),
  setPoloScore: q('set_polo', 'UPDATE nodes SET polo_score = $1 WHERE id = $2'),
  markOffline: q('mark_offline', 'UPDATE nodes SET online = false, hostname = NULL WHERE id = $1'),
  countOnline: q('count_online', 'SELECT count(*) AS n FROM nodes WHERE online'),
  getPair: q('get_pair', 'SELECT 1 FROM trust_pairs WHERE node_a = $1 AND node_b = $2'),
  insertPair: q('insert_pair', 'INSERT INTO trust_pairs (node_a, node_b, origin, created) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING'),
  deletePair: q('delete_pair', 'DELETE FROM trust_pairs WHERE node_a = $1 AND node_b = $2'),
  allPairs: q('all_pairs', 'SELECT node_a, node_b, origin, created FROM trust_pairs ORDER BY node_a, node_b'),
  insertReport: q('insert_report', 'INSERT INTO trust_reports (from_id, to_id, created) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING'),
  getReport: q('get_report', 'SELECT 1 FROM trust_reports WHERE from_id = $1 AND to_id = $2'),
  deleteReport: q('delete_report', 'DELETE FROM trust_reports WHERE from_id = $1 AND to_id = $2'),
  getRequest: q('get_request', 'SELECT 1 FROM handshake_requests WHERE from_id = $1 AND to_id = $2'),
  countUnpolled: q('count_unpolled', 'SELECT count(*) AS n FROM handshake_requests WHERE to_id = $1 AND NOT polled AND from_id <> $2'),
  upsertRequest: q(
    'upsert_request',
    `INSERT INTO handshake_requests (from_id, to_id, justification, timestamp, received, polled)
     VALUES ($1, $2, $3, $4, $5, false)
     ON CONFLICT (from_id, to_id) DO UPDATE SET
       justification = excluded.justification, timestamp = excluded.timestamp, received = excluded.received, polled = false`,
  ),
  deleteRequest: q('delete_request', 'DELETE FROM handshake_requests WHERE from_id = $1 AND to_id = $2'),
  // Marks and returns in one statement, in the order SQLite returns them (received, from).
  takeRequests: q(
    'take_requests',
    `WITH taken AS (
       UPDATE handshake_requests SET polled = true WHERE to_id = $1 AND NOT polled
       RETURNING from_id, justification, timestamp, received)
     SELECT from_id, justification, timestamp FROM taken ORDER BY received, from_id`,
  ),
  upsertResponse: q(
    'upsert_response',
    `INSERT INTO handshake_responses (from_id, to_id, accept, timestamp) VALUES ($1, $2, $3, $4)
     ON CONFLICT (from_id, to_id) DO UPDATE SET accept = excluded.accept, timestamp = excluded.timestamp`,
  ),
  takeResponses: q(
    'take_responses',
    `WITH taken AS (DELETE FROM handshake_responses WHERE to_id = $1 RETURNING from_id, accept, timestamp, ord)
     SELECT from_id, accept, timestamp FROM taken ORDER BY ord`,
  ),
  upsertBeacon: q(
    'upsert_beacon',
    `INSERT INTO beacons (id, addr, last_seen) VALUES ($1, $2, $3)
     ON CONFLICT (id) DO UPDATE SET addr = excluded.addr, last_seen = excluded.last_seen`,
  ),
  beaconsSince: q('beacons_since', 'SELECT id, addr, last_seen FROM beacons WHERE last_seen >= $1 ORDER BY id'),
  // One event in the window `now` falls in: a fresh window starts at 1; an old one counts up to the capacity.
  takeRateToken: q(
    'take_rate_token',
    `INSERT INTO rate_windows AS w (key, window_start, count) VALUES ($1, $2, 1)
     ON CONFLICT (key) DO UPDATE SET
       count = CASE WHEN w.window_start = excluded.window_start THEN w.count + 1 ELSE 1 END,
       window_start = excluded.window_start
     WHERE w.window_start <> excluded.window_start OR w.count < $3
     RETURNING count`,
  ),
}

export class PgOps implements RegistryTx {
  readonly networks: PgNetworks

  constructor(
    protected readonly run: PgRun,
    protected readonly atomic: PgAtomic,
    /** This front end's heartbeat not yet written for a node, if any (store.touchNode). */
    private readonly pendingTouch: (id: number) => number | undefined,
  ) {
    this.networks = new PgNetworks(run, (fn) => atomic((ops) => fn(ops.networks)))
  }

  // --- nodes ---------------------------------------------------------------

  async getNode(id: number): Promise<NodeRecord | null> {
    const r = await this.run<NodeRow>(Q.getNode, [id])
    return this.withTouch(toNode(r.rows[0]))
  }

  private withTouch(node: NodeRecord | null): NodeRecord | null {
    if (node !== null) {
      const t = this.pendingTouch(node.id)
      if (t !== undefined && t > node.lastSeen) node.lastSeen = t
    }
    return node
  }

  async findKey(publicKey: string): Promise<KeyIndexEntry | null> {
    const r = await this.run<{ node_id: number; retired: boolean }>(Q.findKey, [publicKey])
    const row = r.rows[0]
    return row === undefined ? null : { nodeId: row.node_id, retired: row.retired }
  }

  async findOnlineByHostname(hostname: string): Promise<NodeRecord | null> {
    const r = await this.run<NodeRow>(Q.findByHostname, [hostname])
    return this.withTouch(toNode(r.rows[0]))
  }

  createNode(fields: { publicKey: string; owner: string | null; realAddr: string; now: number }): Promise<NodeRecord> {
    return this.atomic(async (ops) => {
      const r = await ops.run<NodeRow>(Q.insertNode, [fields.publicKey, fields.owner, fields.realAddr, fields.now])
      const node = toNode(r.rows[0])!
      await ops.run(Q.insertNewKey, [fields.publicKey, node.id, fields.now])
      return node
    })
  }

  reviveNode(id: number, fields: { owner: string | null; realAddr: string; now: number }): Promise<NodeRecord> {
    return this.atomic(async (ops) => {
      const node = await ops.getNode(id)
      if (node === null) throw new Error(`node ${id} does not exist`)
      const owner = fields.owner ?? node.owner
      await ops.run(node.online ? Q.refreshNode : Q.reviveNode, [id, owner, fields.realAddr, fields.now])
      return (await ops.getNode(id))!
    })
  }

  async setEndpoint(id: number, realAddr: string, owner: string | null): Promise<void> {
    await this.run(Q.setEndpoint, [realAddr, owner, id])
  }

  async setVisibility(id: number, isPublic: boolean): Promise<void> {
    await this.run(Q.setVisibility, [isPublic, id])
  }

  /**
   * False if another online node holds the name. Two front ends racing for one
   * name both pass the check; the unique index stops the second, and the
   * retry (`transaction`) then sees the holder and answers false.
   */
  setHostname(id: number, hostname: string | null): Promise<boolean> {
    return this.atomic(async (ops) => {
      if (hostname !== null) {
        const holder = await ops.findOnlineByHostname(hostname)
        if (holder !== null && holder.id !== id) return false
      }
      await ops.run(Q.setHostname, [hostname, id])
      return true
    })
  }

  async setTags(id: number, tags: string[]): Promise<void> {
    await this.run(Q.setTags, [JSON.stringify(tags), id])
  }

  async setTaskExec(id: number, enabled: boolean): Promise<void> {
    await this.run(Q.setTaskExec, [enabled, id])
  }

  async setPoloScore(id: number, score: number): Promise<void> {
    await this.run(Q.setPoloScore, [score, id])
  }

  async markOffline(id: number): Promise<void> {
    await this.run(Q.markOffline, [id])
  }

  rotateKey(id: number, newPublicKey: string, now: number): Promise<void> {
    return this.atomic(async (ops) => {
      const node = await ops.getNode(id)
      if (node === null) throw new Error(`node ${id} does not exist`)
      await ops.run(Q.retireKey, [node.publicKey])
      await ops.run(Q.setPublicKey, [newPublicKey, id])
      await ops.run(Q.insertKey, [newPublicKey, id, now])
    })
  }

  async countOnline(): Promise<number> {
    return (await this.run<{ n: number }>(Q.countOnline, [])).rows[0]!.n
  }

  async listNodes(): Promise<NodeRecord[]> {
    return (await this.run<NodeRow>(Q.allNodes, [])).rows.map((r) => toNode(r)!)
  }

  // --- trust -----------------------------------------------------------------

  async hasTrustPair(a: number, b: number): Promise<boolean> {
    const [lo, hi] = ordered(a, b)
    return (await this.run(Q.getPair, [lo, hi])).rowCount! > 0
  }

  async addTrustPair(a: number, b: number, origin: TrustOrigin, now: number): Promise<void> {
    const [lo, hi] = ordered(a, b)
    await this.run(Q.insertPair, [lo, hi, origin, now])
  }

  async listTrustPairs(): Promise<TrustPairRecord[]> {
    const r = await this.run<{ node_a: number; node_b: number; origin: TrustOrigin; created: number }>(Q.allPairs, [])
    return r.rows.map((x) => ({ nodeA: x.node_a, nodeB: x.node_b, origin: x.origin, created: x.created }))
  }

  async addTrustReport(from: number, to: number, now: number): Promise<boolean> {
    return (await this.run(Q.insertReport, [from, to, now])).rowCount! > 0
  }

  async hasTrustReport(from: number, to: number): Promise<boolean> {
    return (await this.run(Q.getReport, [from, to])).rowCount! > 0
  }

  /** Removes the pair, both reports and requests between a and b. True if a pair or report was there. */
  removeTrust(a: number, b: number): Promise<boolean> {
    return this.atomic(async (ops) => {
      const [lo, hi] = ordered(a, b)
      let changes = (await ops.run(Q.deletePair, [lo, hi])).rowCount!
      changes += (await ops.run(Q.deleteReport, [a, b])).rowCount! + (await ops.run(Q.deleteReport, [b, a])).rowCount!
      await ops.run(Q.deleteRequest, [a, b])
      await ops.run(Q.deleteRequest, [b, a])
      return changes > 0
    })
  }

  // --- handshake inboxes -------------------------------------------------------

  async hasHandshakeRequest(from: number, to: number): Promise<boolean> {
    return (await this.run(Q.getRequest, [from, to])).rowCount! > 0
  }

  async countUnpolledRequests(to: number, exceptFrom: number): Promise<number> {
    return (await this.run<{ n: number }>(Q.countUnpolled, [to, exceptFrom])).rows[0]!.n
  }

  async putHandshakeRequest(from: number, to: number, justification: string, timestamp: number, now: number): Promise<void> {
    await this.run(Q.upsertRequest, [from, to, justification, timestamp, now])
  }

  async deleteHandshakeRequest(from: number, to: number): Promise<boolean> {
    return (await this.run(Q.deleteRequest, [from, to])).rowCount! > 0
  }

  /** `to`'s unpolled requests, marked polled in the same statement (two front ends never both deliver one). */
  async takeHandshakeRequests(to: number): Promise<HandshakeRequestRecord[]> {
    const r = await this.run<{ from_id: number; justification: string; timestamp: number }>(Q.takeRequests, [to])
    return r.rows.map((x) => ({ fromNodeId: x.from_id, justification: x.justification, timestamp: x.timestamp }))
  }

  async putHandshakeResponse(from: number, to: number, accept: boolean, timestamp: number): Promise<void> {
    await this.run(Q.upsertResponse, [from, to, accept, timestamp])
  }

  /** Returns and deletes `to`'s queued responses in one statement. */
  async takeHandshakeResponses(to: number): Promise<HandshakeResponseRecord[]> {
    const r = await this.run<{ from_id: number; accept: boolean; timestamp: number }>(Q.takeResponses, [to])
    return r.rows.map((x) => ({ fromNodeId: x.from_id, accept: x.accept, timestamp: x.timestamp }))
  }

  // --- beacons ---------------------------------------------------------------

  async putBeacon(id: number, addr: string, now: number): Promise<void> {
    await this.run(Q.upsertBeacon, [id, addr, now])
  }

  async listBeacons(since: number): Promise<BeaconRecord[]> {
    const r = await this.run<{ id: number; addr: string; last_seen: number }>(Q.beaconsSince, [since])
    return r.rows.map((x) => ({ id: x.id, addr: x.addr, lastSeen: x.last_seen }))
  }

  // --- shared rate limits ----------------------------------------------------

  async takeRateToken(key: string, capacity: number, periodMs: number, now: number): Promise<boolean> {
    if (capacity <= 0 || periodMs <= 0) return false
    const windowStart = now - (now % periodMs)
    return (await this.run(Q.takeRateToken, [key, windowStart, capacity])).rowCount! > 0
  }
}

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
    isPublic: row.is_public,
    hostname: row.hostname,
    tags: parseTags(row.tags),
    poloScore: row.polo_score,
    taskExec: row.task_exec,
    lastSeen: row.last_seen,
    online: row.online,
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
