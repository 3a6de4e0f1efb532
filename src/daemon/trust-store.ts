/**
 * The node's trust table, persisted as `trust.json` in the state directory
 * (docs/wire.md §11.3 format plus our outgoing requests):
 *
 *   {"trusted":[{node_id, public_key, approved_at, mutual, network?}],
 *    "pending":[{node_id, public_key?, justification?, received_at}],
 *    "outgoing":[{node_id, sent_at}]}
 *
 * Reads are synchronous lookups in memory; every change schedules one atomic
 * write (temp file 0600, fsync, rename), coalesced while a write is running.
 * Memory is authoritative: a failed write is logged and tried again with
 * back-off (`unsavedReason` says why it is not on disk meanwhile), and the
 * next success writes every change since.
 *
 * Pending requests come from other nodes, so their number is capped
 * (`MAX_PENDING_TRUST_REQUESTS`): when full, new requesters are refused; a
 * node that asks again replaces its own entry.
 */
import { mkdir, open, readFile, rename, unlink } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { nullLogger, type Logger } from '../logger.js'
import { DaemonError, DaemonErrorCode } from './errors.js'
import { MAX_PENDING_TRUST_REQUESTS, TRUST_WRITE_RETRY_MAX_MS, TRUST_WRITE_RETRY_MIN_MS } from './limits.js'

export interface TrustedEntry {
  node_id: number
  public_key: string
  approved_at: string
  mutual: boolean
  network?: number
}

export interface PendingEntry {
  node_id: number
  public_key?: string
  justification?: string
  received_at: string
}

export interface OutgoingEntry {
  node_id: number
  sent_at: string
}

interface TrustFile {
  trusted: TrustedEntry[]
  pending: PendingEntry[]
  outgoing: OutgoingEntry[]
}

export const TRUST_FILE_NAME = 'trust.json'

/** What `addPending` did: a new entry, the node's entry renewed, or nothing (trusted already, or the table is full). */
export type PendingOutcome = 'added' | 'replaced' | 'trusted' | 'full'

export interface TrustStoreOptions {
  /** Pending requests kept at most; default `MAX_PENDING_TRUST_REQUESTS`. */
  maxPending?: number
  /** Back-off of a failed write: first retry after `min` ms, doubling up to `max`. */
  retryMinMs?: number
  retryMaxMs?: number
  /** Writes the file (default: `atomicWrite`; tests inject failures). */
  write?: (path: string, text: string) => Promise<void>
}

export class TrustStore {
  readonly path: string
  private readonly logger: Logger
  private readonly maxPending: number
  private readonly retryMinMs: number
  private readonly retryMaxMs: number
  private readonly write: (path: string, text: string) => Promise<void>
  private readonly trusted = new Map<number, TrustedEntry>()
  private readonly pending = new Map<number, PendingEntry>()
  private readonly outgoing = new Map<number, OutgoingEntry>()
  private writing: Promise<void> | null = null
  private dirty = false
  private retryTimer: NodeJS.Timeout | null = null
  private retryDelayMs = 0
  private lastWriteError: string | null = null
  private closed = false
  /** Requests refused because the pending table was full. */
  pendingRefused = 0
  /** Writes that failed (each is retried). */
  writeFailures = 0

  private constructor(path: string, logger: Logger, options: TrustStoreOptions) {
    this.path = path
    this.logger = logger
    this.maxPending = options.maxPending ?? MAX_PENDING_TRUST_REQUESTS
    this.retryMinMs = options.retryMinMs ?? TRUST_WRITE_RETRY_MIN_MS
    this.retryMaxMs = options.retryMaxMs ?? TRUST_WRITE_RETRY_MAX_MS
    this.write = options.write ?? atomicWrite
  }

  /** Loads `<stateDir>/trust.json`; a missing file is an empty table, a corrupt one is kept aside and replaced. */
  static async open(stateDir: string, logger: Logger = nullLogger, options: TrustStoreOptions = {}): Promise<TrustStore> {
    const store = new TrustStore(join(stateDir, TRUST_FILE_NAME), logger, options)
    let text: string | null = null
    try {
      text = await readFile(store.path, 'utf8')
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
    }
    if (text !== null) {
      try {
        store.load(JSON.parse(text) as Partial<TrustFile>)
      } catch (err) {
        const aside = `${store.path}.corrupt-${Date.now()}`
        logger.error('trust.json is unreadable; starting with an empty trust table', { path: store.path, movedTo: aside, error: String(err) })
        await rename(store.path, aside).catch(() => {})
      }
    }
    return store
  }

  // ───────────────────────── queries ─────────────────────────

  isTrusted(node: number): boolean {
    return this.trusted.has(node)
  }

  trustedEntry(node: number): TrustedEntry | undefined {
    return this.trusted.get(node)
  }

  pendingEntry(node: number): PendingEntry | undefined {
    return this.pending.get(node)
  }

  hasOutgoing(node: number): boolean {
    return this.outgoing.has(node)
  }

  listTrusted(): TrustedEntry[] {
    return [...this.trusted.values()]
  }

  listPending(): PendingEntry[] {
    return [...this.pending.values()]
  }

  listOutgoing(): OutgoingEntry[] {
    return [...this.outgoing.values()]
  }

  /** Null when trust.json holds every change; else why the last write failed (it is being retried). */
  get unsavedReason(): string | null {
    return this.dirty || this.writing !== null ? this.lastWriteError : null
  }

  // ───────────────────────── changes (each persists) ─────────────────────────

  /** `node` becomes trusted; its pending and outgoing entries go. */
  trust(node: number, publicKey: string, mutual: boolean): TrustedEntry {
    const existing = this.trusted.get(node)
    const entry: TrustedEntry = existing ?? { node_id: node, public_key: publicKey, approved_at: new Date().toISOString(), mutual }
    if (existing !== undefined) {
      existing.mutual ||= mutual
      if (existing.public_key === '' && publicKey !== '') existing.public_key = publicKey
    }
    this.trusted.set(node, entry)
    this.pending.delete(node)
    this.outgoing.delete(node)
    this.persist()
    return entry
  }

  /**
   * Records `node`'s request: a new entry, or a renewal of its own (latest
   * justification and time). Nothing changes for a trusted node, nor for a
   * new node while `maxPending` requests wait ('full', counted).
   */
  addPending(node: number, justification: string, publicKey: string): PendingOutcome {
    if (this.trusted.has(node)) return 'trusted'
    const had = this.pending.has(node)
    if (!had && this.pending.size >= this.maxPending) {
      this.pendingRefused++
      return 'full'
    }
    const entry: PendingEntry = { node_id: node, received_at: new Date().toISOString() }
    if (publicKey !== '') entry.public_key = publicKey
    if (justification !== '') entry.justification = justification
    this.pending.set(node, entry)
    this.persist()
    return had ? 'replaced' : 'added'
  }

  addOutgoing(node: number): void {
    this.outgoing.set(node, { node_id: node, sent_at: new Date().toISOString() })
    this.persist()
  }

  removePending(node: number): boolean {
    const had = this.pending.delete(node)
    if (had) this.persist()
    return had
  }

  removeOutgoing(node: number): boolean {
    const had = this.outgoing.delete(node)
    if (had) this.persist()
    return had
  }

  /** Forgets every trace of `node` (revocation). Returns whether it was trusted. */
  forget(node: number): boolean {
    const was = this.trusted.delete(node)
    const any = this.pending.delete(node) || this.outgoing.delete(node) || was
    if (any) this.persist()
    return was
  }

  /** Resolves once every change so far is on disk, or the write running now has failed (a retry is then scheduled). */
  async flush(): Promise<void> {
    while (this.writing !== null) await this.writing
  }

  /** Stops retrying after one last attempt to write what is unsaved (daemon shutdown). */
  async close(): Promise<void> {
    this.closed = true
    if (this.retryTimer !== null) {
      clearTimeout(this.retryTimer)
      this.retryTimer = null
      if (this.writing === null && this.dirty) this.startWrite()
    }
    await this.flush()
    if (this.dirty) this.logger.error('trust table changes could not be saved before shutdown', { path: this.path, error: this.lastWriteError })
  }

  // ───────────────────────── persistence ─────────────────────────

  private persist(): void {
    this.dirty = true
    // While a retry waits, the retry writes this change too.
    if (this.writing !== null || this.retryTimer !== null || this.closed) return
    this.startWrite()
  }

  private startWrite(): void {
    this.writing = this.writeLoop().finally(() => {
      this.writing = null
    })
  }

  private async writeLoop(): Promise<void> {
    while (this.dirty) {
      this.dirty = false
      const text = JSON.stringify({ trusted: this.listTrusted(), pending: this.listPending(), outgoing: this.listOutgoing() }, null, 2) + '\n'
      try {
        await this.write(this.path, text)
      } catch (err) {
        this.dirty = true // still to be written: memory stays authoritative
        this.writeFailures++
        const e = new DaemonError(DaemonErrorCode.STATE_WRITE, `cannot write ${this.path}: ${(err as Error).message}`, { cause: err })
        this.lastWriteError = e.message
        this.scheduleRetry()
        return
      }
      if (this.lastWriteError !== null) {
        this.logger.info('trust table saved again', { path: this.path })
        this.lastWriteError = null
      }
      this.retryDelayMs = 0
    }
  }

  private scheduleRetry(): void {
    if (this.closed) {
      this.logger.error('trust table not saved', { path: this.path, error: this.lastWriteError })
      return
    }
    this.retryDelayMs = this.retryDelayMs === 0 ? this.retryMinMs : Math.min(this.retryMaxMs, this.retryDelayMs * 2)
    this.logger.error('trust table not saved; the change is kept in memory and the write retried', {
      path: this.path,
      error: this.lastWriteError,
      retryInMs: this.retryDelayMs,
    })
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null
      if (this.writing === null && this.dirty) this.startWrite()
    }, this.retryDelayMs)
    this.retryTimer.unref()
  }

  private load(file: Partial<TrustFile>): void {
    for (const t of Array.isArray(file.trusted) ? file.trusted : []) {
      if (!isNodeId(t?.node_id)) continue
      const entry: TrustedEntry = {
        node_id: t.node_id,
        public_key: typeof t.public_key === 'string' ? t.public_key : '',
        approved_at: typeof t.approved_at === 'string' ? t.approved_at : new Date(0).toISOString(),
        mutual: t.mutual === true,
      }
      if (typeof t.network === 'number') entry.network = t.network
      this.trusted.set(t.node_id, entry)
    }
    for (const p of Array.isArray(file.pending) ? file.pending : []) {
      if (!isNodeId(p?.node_id) || this.trusted.has(p.node_id)) continue
      const entry: PendingEntry = { node_id: p.node_id, received_at: typeof p.received_at === 'string' ? p.received_at : new Date(0).toISOString() }
      if (typeof p.public_key === 'string') entry.public_key = p.public_key
      if (typeof p.justification === 'string') entry.justification = p.justification
      this.pending.set(p.node_id, entry)
    }
    for (const o of Array.isArray(file.outgoing) ? file.outgoing : []) {
      if (!isNodeId(o?.node_id) || this.trusted.has(o.node_id)) continue
      this.outgoing.set(o.node_id, { node_id: o.node_id, sent_at: typeof o.sent_at === 'string' ? o.sent_at : new Date(0).toISOString() })
    }
  }
}

function isNodeId(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v > 0 && v <= 0xffffffff
}

/** Temp file 0600 beside the target, fsync, rename, fsync the directory (best effort). */
export async function atomicWrite(path: string, text: string): Promise<void> {
  const dir = dirname(path)
  await mkdir(dir, { recursive: true, mode: 0o700 })
  const temp = `${path}.tmp-${process.pid}-${randomBytes(6).toString('hex')}`
  const handle = await open(temp, 'wx', 0o600)
  try {
    await handle.chmod(0o600)
    await handle.writeFile(text, 'utf8')
    await handle.sync()
  } catch (err) {
    await handle.close()
    await unlink(temp).catch(() => {})
    throw err
  }
  await handle.close()
  try {
    await rename(temp, path)
  } catch (err) {
    await unlink(temp).catch(() => {})
    throw err
  }
  const dirHandle = await open(dir, 'r').catch(() => null)
  if (dirHandle !== null) {
    await dirHandle.sync().catch(() => {})
    await dirHandle.close()
  }
}
