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
 */
import { mkdir, open, readFile, rename, unlink } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { nullLogger, type Logger } from '../logger.js'
import { DaemonError, DaemonErrorCode } from './errors.js'

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

export class TrustStore {
  readonly path: string
  private readonly logger: Logger
  private readonly trusted = new Map<number, TrustedEntry>()
  private readonly pending = new Map<number, PendingEntry>()
  private readonly outgoing = new Map<number, OutgoingEntry>()
  private writing: Promise<void> | null = null
  private dirty = false

  private constructor(path: string, logger: Logger) {
    this.path = path
    this.logger = logger
  }

  /** Loads `<stateDir>/trust.json`; a missing file is an empty table, a corrupt one is kept aside and replaced. */
  static async open(stateDir: string, logger: Logger = nullLogger): Promise<TrustStore> {
    const store = new TrustStore(join(stateDir, TRUST_FILE_NAME), logger)
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

  /** Returns false if the request was already pending or the node is trusted (nothing changes). */
  addPending(node: number, justification: string, publicKey: string): boolean {
    if (this.pending.has(node) || this.trusted.has(node)) return false
    const entry: PendingEntry = { node_id: node, received_at: new Date().toISOString() }
    if (publicKey !== '') entry.public_key = publicKey
    if (justification !== '') entry.justification = justification
    this.pending.set(node, entry)
    this.persist()
    return true
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

  /** Resolves once every change so far is on disk. */
  async flush(): Promise<void> {
    while (this.writing !== null) await this.writing
  }

  // ───────────────────────── persistence ─────────────────────────

  private persist(): void {
    this.dirty = true
    if (this.writing !== null) return
    this.writing = this.writeLoop().finally(() => {
      this.writing = null
    })
  }

  private async writeLoop(): Promise<void> {
    while (this.dirty) {
      this.dirty = false
      const text = JSON.stringify({ trusted: this.listTrusted(), pending: this.listPending(), outgoing: this.listOutgoing() }, null, 2) + '\n'
      try {
        await atomicWrite(this.path, text)
      } catch (err) {
        const e = new DaemonError(DaemonErrorCode.STATE_WRITE, `cannot write ${this.path}: ${(err as Error).message}`, { cause: err })
        this.logger.error('trust table not saved', { path: this.path, error: e.message })
      }
    }
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
