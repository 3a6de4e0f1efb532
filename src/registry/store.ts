/**
 * The registry's embedded store: SQLite (the default; one front end), behind
 * the asynchronous `RegistryStore` interface (store-api.ts) that the
 * PostgreSQL store implements too. The statements are synchronous
 * (sqlite-core.ts); this class adds what an asynchronous caller needs:
 *
 *   - `transaction(fn)`: BEGIN IMMEDIATE, `await fn(tx)`, COMMIT, or ROLLBACK
 *     when `fn` throws. `fn` awaits, so other requests run meanwhile; a lock
 *     keeps every other call (in a transaction or not) off the connection
 *     until it ends, else they would run inside it, or see its uncommitted rows.
 *     Waiting calls go in arrival order.
 *   - Calls made while no transaction is open run at once (no queueing): a
 *     heartbeat costs what it did when the store was synchronous.
 *   - Database failures (the file locked by another process, disk full, I/O
 *     errors, a closed store) reject with RegistryError STORE; the server
 *     answers "registry store unavailable" and keeps going.
 *
 * Do not call the store itself from inside `fn` (only `tx`): that call waits
 * for the transaction, which waits for it.
 */
import { SqliteCore } from './sqlite-core.js'
import { runNow, SqliteTx, SqliteTxBase } from './sqlite-tx.js'
import type { RegistryStore, RegistryTx, TransactionOptions } from './store-api.js'

export type {
  BeaconRecord,
  HandshakeRequestRecord,
  HandshakeResponseRecord,
  KeyIndexEntry,
  NodeRecord,
  TrustOrigin,
  TrustPairRecord,
} from './store-types.js'
export type { RegistryStore, RegistryTx, NetworkTx, StoreKind } from './store-api.js'

export interface SqliteRegistryStoreOptions {
  /** File path, or ':memory:' for tests. */
  path: string
  /**
   * How long a write waits for a lock another process holds on the file before
   * it fails (the request is then answered "registry store unavailable").
   * The wait blocks the registry's thread; default 5000 ms.
   */
  busyTimeoutMs?: number
}

/** Heartbeats gathered before a flush is started (bounds the memory and the transaction). */
const MAX_PENDING_TOUCHES = 65_536

export class SqliteRegistryStore extends SqliteTxBase implements RegistryStore {
  readonly kind = 'sqlite' as const
  readonly location: string
  /** True while a transaction (or a call queued behind one) holds the connection. */
  private locked = false
  /** Callers waiting for the connection, in arrival order; each is handed the lock. */
  private readonly waiting: Array<() => void> = []
  private flushStarted = false
  private closing: Promise<void> | null = null

  /** Opens (creating if need be) and migrates the file; RegistryError STORE if it cannot. */
  constructor(options: SqliteRegistryStoreOptions) {
    super(new SqliteCore(options.path, options.busyTimeoutMs))
    this.location = options.path
  }

  /** One call outside any transaction: at once when the connection is free, else after the open transaction. */
  run<T>(op: () => T): Promise<T> {
    if (!this.locked) return runNow(this.core, op)
    return this.runQueued(op)
  }

  private async runQueued<T>(op: () => T): Promise<T> {
    await this.lock()
    try {
      return await runNow(this.core, op)
    } finally {
      this.unlock()
    }
  }

  private lock(): Promise<void> {
    if (!this.locked) {
      this.locked = true
      return Promise.resolve()
    }
    return new Promise((resolve) => this.waiting.push(resolve))
  }

  /** Hands the connection to the next waiter (it stays locked), or frees it. */
  private unlock(): void {
    const next = this.waiting.shift()
    if (next !== undefined) next()
    else this.locked = false
  }

  async transaction<T>(fn: (tx: RegistryTx) => Promise<T>, _options?: TransactionOptions): Promise<T> {
    await this.lock()
    const tx = new SqliteTx(this.core)
    try {
      await runNow(this.core, () => this.core.begin())
      let result: T
      try {
        result = await fn(tx)
      } catch (err) {
        tx.end()
        this.rollbackQuietly()
        throw err
      }
      tx.end()
      try {
        await runNow(this.core, () => this.core.commit())
      } catch (err) {
        this.rollbackQuietly()
        throw err
      }
      return result
    } finally {
      tx.end()
      this.unlock()
    }
  }

  /** After a failure: the first error is what the caller hears about, not the rollback's. */
  private rollbackQuietly(): void {
    try {
      this.core.rollback()
    } catch {
      // the connection is gone or the transaction already ended; nothing was committed
    }
  }

  touchNode(id: number, now: number): void {
    this.core.touchNode(id, now)
    if (this.core.pendingTouches >= MAX_PENDING_TOUCHES && !this.flushStarted) {
      this.flushStarted = true
      this.flushTouches()
        .catch(() => {}) // kept for the next flush (the server's timer logs failures)
        .finally(() => {
          this.flushStarted = false
        })
    }
  }

  flushTouches(): Promise<void> {
    return this.run(() => this.core.flushTouches())
  }

  async maintain<T>(name: string, intervalMs: number, now: number, fn: () => Promise<T>): Promise<T | null> {
    const due = await this.run(() => this.core.claimMaintenance(name, intervalMs, now))
    return due ? fn() : null
  }

  reapStale(cutoff: number): Promise<number[]> {
    return this.run(() => this.core.reapStale(cutoff))
  }

  pruneAnsweredlessRequests(cutoff: number): Promise<number> {
    return this.run(() => this.core.pruneAnsweredlessRequests(cutoff))
  }

  pruneBeacons(before: number): Promise<number> {
    return this.run(() => this.core.pruneBeacons(before))
  }

  schemaVersion(): Promise<number> {
    return this.run(() => this.core.schemaVersion())
  }

  /** The durability settings in force on this connection (`synchronous`: 0 OFF, 1 NORMAL, 2 FULL, 3 EXTRA). */
  durability(): { journalMode: string; synchronous: number } {
    return this.core.durability()
  }

  /** Waits for an open transaction, writes the gathered heartbeats and closes. Later calls reject (STORE). */
  close(): Promise<void> {
    this.closing ??= this.runQueued(() => this.core.close())
    return this.closing
  }
}
