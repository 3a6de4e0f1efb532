/**
 * The registry store on PostgreSQL (issue 14): several stateless registry
 * front ends share one database. Loaded only for a `postgres://` store
 * (open-store.ts imports it on demand), so the SQLite default never loads pg.
 *
 * Transactions run at SERIALIZABLE and are retried when they lose a race
 * (40001, 40P01, or a unique key another front end just took). Why not READ
 * COMMITTED with explicit row locks: the request handler's transactions were
 * written against SQLite, where a transaction sees nothing change under it
 * (check member count, then add; check the nonce, then write); SERIALIZABLE
 * keeps every such read-then-write correct across front ends without a lock
 * per call site. Single statements outside a transaction (the heartbeat path:
 * findKey, getNode) pay nothing for it.
 *
 * Connections come from a pg Pool, which replaces a broken connection with a
 * new one on the next request: while PostgreSQL is down every call fails with
 * RegistryError STORE (nothing is half-applied: a call is one statement or
 * one transaction), and once it is back calls work again without a restart.
 */
import pg from 'pg'
import type { PoolClient } from 'pg'
import type { Logger } from '../logger.js'
import { RegistryError, RegistryErrorCode } from './errors.js'
import { PgOps } from './pg-ops.js'
import { isRetryable, pgQuery, redactPgUrl, storeError, type PgRun } from './pg-query.js'
import { migratePgSchema, readSchemaVersion } from './pg-schema.js'
import type { RegistryStore, RegistryTx, TransactionOptions } from './store-api.js'

export interface PostgresStoreOptions {
  /** Connections in the pool (default 10). */
  poolSize?: number
  /** How long to wait for a connection before the call fails (ms, default 5000). */
  connectTimeoutMs?: number
  /** Runs of a transaction that keeps losing races before its error is returned (default 30). */
  maxAttempts?: number
  logger?: Logger
}

/** Heartbeats gathered before a flush is forced (bounds the memory and the statement). */
const MAX_PENDING_TOUCHES = 65_536

const INT8_OID = 20

/** int8 (BIGINT, count(*), nextval) as a JS number: every value here is below 2^53. */
const TYPES = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === INT8_OID && format !== 'binary' ? (v: string) => Number(v) : pg.types.getTypeParser(oid, format as 'text')) as typeof pg.types.getTypeParser,
}

const Q = {
  claim: pgQuery(
    'pts_claim_maintenance',
    `INSERT INTO maintenance AS m (name, last_run) VALUES ($1, $2)
     ON CONFLICT (name) DO UPDATE SET last_run = excluded.last_run WHERE m.last_run <= $3
     RETURNING 1`,
  ),
  reap: pgQuery('pts_reap', 'UPDATE nodes SET online = false, hostname = NULL WHERE online AND last_seen < $1 RETURNING id'),
  pruneRequests: pgQuery('pts_prune_requests', 'DELETE FROM handshake_requests WHERE polled AND received < $1'),
  pruneBeacons: pgQuery('pts_prune_beacons', 'DELETE FROM beacons WHERE last_seen < $1'),
  // Never moves last_seen back: another front end may have written a later heartbeat.
  touch: pgQuery(
    'pts_touch',
    `UPDATE nodes SET last_seen = v.t FROM unnest($1::bigint[], $2::bigint[]) AS v(id, t)
     WHERE nodes.id = v.id AND nodes.last_seen < v.t`,
  ),
  asyncCommit: pgQuery('', 'SET LOCAL synchronous_commit = off'),
}

const ADVISORY_LOCK = pgQuery('advisory_lock', "SELECT pg_advisory_lock(hashtextextended($1, 7001))")

function runOn(client: Pick<PoolClient, 'query'>, location: string): PgRun {
  return async (q, values) => {
    try {
      return await client.query({ name: q.name, text: q.text, values: values as unknown[] })
    } catch (err) {
      throw storeError(err, location)
    }
  }
}

interface Shared {
  store?: PostgresRegistryStore
}

export class PostgresRegistryStore extends PgOps implements RegistryStore {
  readonly kind = 'postgres' as const
  readonly location: string
  private readonly pool: pg.Pool
  private readonly maxAttempts: number
  /** Heartbeats (node → last_seen) not yet written, and the batch being written now. */
  private touches = new Map<number, number>()
  private writing: Map<number, number> | null = null
  private flushing: Promise<void> | null = null
  private closing: Promise<void> | null = null
  /** Transactions run again after losing a race (serialization failure, deadlock, unique key). */
  private retries = 0

  private constructor(pool: pg.Pool, location: string, options: PostgresStoreOptions, shared: Shared) {
    super(
      runOn(pool, location),
      // A multi-row call on its own is written to be safe at READ COMMITTED (sequences, unique
      // keys, the audit chain's lock), which spares it SERIALIZABLE's false conflicts.
      (fn) => shared.store!.atomically(fn, 'BEGIN'),
      (id) => shared.store!.touchedAt(id),
    )
    shared.store = this
    this.pool = pool
    this.location = location
    this.maxAttempts = Math.max(1, options.maxAttempts ?? 30)
  }

  /** Connects, brings the schema up to date (one front end at a time) and returns the store. */
  static async open(url: string, options: PostgresStoreOptions = {}): Promise<PostgresRegistryStore> {
    const location = redactPgUrl(url)
    let pool: pg.Pool
    try {
      pool = new pg.Pool({
        connectionString: url,
        max: options.poolSize ?? 10,
        connectionTimeoutMillis: options.connectTimeoutMs ?? 5_000,
        application_name: 'pilot-tun-registry',
        // Notice a connection whose peer vanished (host down, cable cut) instead of waiting on it.
        keepAlive: true,
        types: TYPES,
      })
    } catch (err) {
      throw new RegistryError(RegistryErrorCode.STORE, `cannot open registry store ${location}: ${(err as Error).message}`, {
        hint: 'a PostgreSQL store is postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE (or ?host=/socket/dir)',
        cause: err,
      })
    }
    // An idle connection that breaks (PostgreSQL restarted) is dropped by the pool; without a
    // listener its 'error' event would end the process.
    pool.on('error', (err) => options.logger?.warn('registry store: idle PostgreSQL connection lost', { error: err.message }))
    try {
      const client = await pool.connect()
      try {
        await migratePgSchema(client)
      } finally {
        client.release()
      }
    } catch (err) {
      await pool.end().catch(() => undefined)
      if (err instanceof RegistryError) throw err
      throw storeError(err, location, `cannot be opened at ${location}`)
    }
    return new PostgresRegistryStore(pool, location, options, {})
  }

  /** The caller's reads and writes at SERIALIZABLE, run again (a few times) when they lose a race. */
  transaction<T>(fn: (tx: RegistryTx) => Promise<T>, options?: TransactionOptions): Promise<T> {
    return this.atomically(fn, 'BEGIN ISOLATION LEVEL SERIALIZABLE', options?.serializeOn ?? [])
  }

  /** One transaction on one pooled client; calls on the PgOps it hands out run inline. */
  private async atomically<T>(fn: (ops: PgOps) => Promise<T>, begin: string, locks: readonly string[] = []): Promise<T> {
    return this.withClient(begin, locks, (run) => {
      const shared: { ops?: PgOps } = {}
      const ops = new PgOps(run, (inner) => inner(shared.ops!), (id) => this.touchedAt(id))
      shared.ops = ops
      return fn(ops)
    })
  }

  private async withClient<T>(begin: string, locks: readonly string[], fn: (run: PgRun) => Promise<T>): Promise<T> {
    // Sorted, so two transactions naming the same locks never wait on each other in a cycle.
    const ordered = [...new Set(locks)].sort()
    for (let attempt = 1; ; attempt++) {
      let client: PoolClient
      try {
        client = await this.pool.connect()
      } catch (err) {
        throw storeError(err, this.location, 'unavailable')
      }
      let broken: Error | undefined
      // A checked-out client has no pool listener: PostgreSQL going away mid-transaction would
      // otherwise be an uncaught 'error' event. The failing query reports it; release drops the client.
      const onError = (e: Error): void => {
        broken = e
      }
      client.on('error', onError)
      let locked = 0
      try {
        const run = runOn(client, this.location)
        // Session locks taken before BEGIN: the serializable snapshot is then taken once the
        // previous holder committed, so a hot chain's appenders queue instead of failing.
        for (const name of ordered) {
          await run(ADVISORY_LOCK, [name])
          locked++
        }
        await run(pgQuery('', begin), [])
        const result = await fn(run)
        await run(pgQuery('', 'COMMIT'), [])
        return result
      } catch (err) {
        await client.query('ROLLBACK').catch((e: Error) => {
          broken = e
        })
        if (attempt < this.maxAttempts && isRetryable(err)) {
          this.retries++
          // Full jitter, growing to at most 100 ms: racers spread out instead of colliding again.
          await sleep(Math.floor(Math.random() * Math.min(100, 2 ** attempt)) + 1)
          continue
        }
        throw err
      } finally {
        if (locked > 0 && broken === undefined) {
          // A broken client is dropped by release(), and its session locks with it.
          await client.query('SELECT pg_advisory_unlock_all()').catch((e: Error) => {
            broken = e
          })
        }
        client.off('error', onError)
        client.release(broken)
      }
    }
  }

  // --- heartbeats ------------------------------------------------------------

  private touchedAt(id: number): number | undefined {
    const a = this.touches.get(id)
    const b = this.writing?.get(id)
    if (a === undefined) return b
    return b === undefined || a > b ? a : b
  }

  touchNode(id: number, now: number): void {
    const had = this.touches.get(id)
    if (had === undefined || now > had) this.touches.set(id, now)
    if (this.touches.size >= MAX_PENDING_TOUCHES && this.flushing === null) this.flushTouches().catch(() => undefined)
  }

  /**
   * Writes the gathered heartbeats in one statement (in node order, so two
   * front ends' flushes lock rows in the same order), committed without
   * waiting for the WAL flush: soft state the next heartbeat rewrites. On
   * failure the batch is kept for the next flush.
   */
  async flushTouches(): Promise<void> {
    while (this.flushing !== null) await this.flushing.catch(() => undefined)
    if (this.touches.size === 0) return
    const batch = this.touches
    this.touches = new Map()
    this.writing = batch
    const ids = [...batch.keys()].sort((a, b) => a - b)
    const times = ids.map((id) => batch.get(id)!)
    const write = this.withClient('BEGIN', [], async (run) => {
      await run(Q.asyncCommit, [])
      await run(Q.touch, [ids, times])
    })
    this.flushing = write
    try {
      await write
    } catch (err) {
      for (const [id, at] of batch) {
        if (this.touches.size >= MAX_PENDING_TOUCHES) break
        const newer = this.touches.get(id)
        if (newer === undefined || newer < at) this.touches.set(id, at)
      }
      throw err
    } finally {
      this.writing = null
      this.flushing = null
    }
  }

  // --- maintenance -------------------------------------------------------------

  async maintain<T>(name: string, intervalMs: number, now: number, fn: () => Promise<T>): Promise<T | null> {
    const claimed = await this.run(Q.claim, [name, now, now - intervalMs])
    if (claimed.rowCount === 0) return null
    return fn()
  }

  async reapStale(cutoff: number): Promise<number[]> {
    await this.flushTouches()
    const r = await this.run<{ id: number }>(Q.reap, [cutoff])
    return r.rows.map((x) => x.id).sort((a, b) => a - b)
  }

  async pruneAnsweredlessRequests(cutoff: number): Promise<number> {
    return (await this.run(Q.pruneRequests, [cutoff])).rowCount ?? 0
  }

  async pruneBeacons(before: number): Promise<number> {
    return (await this.run(Q.pruneBeacons, [before])).rowCount ?? 0
  }

  async schemaVersion(): Promise<number> {
    try {
      return await readSchemaVersion(this.pool)
    } catch (err) {
      throw storeError(err, this.location)
    }
  }

  /** Pool and retry counts, for logs, benchmarks and tests. */
  stats(): { connections: number; idle: number; waiting: number; retries: number } {
    return { connections: this.pool.totalCount, idle: this.pool.idleCount, waiting: this.pool.waitingCount, retries: this.retries }
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      // Soft state: a database that is down at shutdown costs at most the last second of heartbeats.
      await this.flushTouches().catch(() => undefined)
      await this.pool.end().catch(() => undefined)
    })()
    return this.closing
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}
