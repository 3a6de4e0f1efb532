/**
 * The daemon's local log of its own trust decisions (issue 13):
 * `<state dir>/trust-log.jsonl`, one JSON line per decision (approve, reject,
 * revoke, auto-accept, mutual, network-trust, handshake refused with its
 * reason), hash-chained and signed by the node's identity:
 *
 *     {"seq":3,"time":1765000000000,"node":42,"key":"<base64 Ed25519>",
 *      "action":"approve","peer":7,"detail":"…","prev":"<hex>","hash":"<hex>","signature":"<base64>"}
 *
 * `hash` = hex SHA-256 of `pilot-trust-log-v1\nseq\ntime\nnode\nkey\naction\npeer\ndetail\nprev`;
 * `signature` = Ed25519 over the `hash` text. `verifyTrustLog` checks the
 * sequence, every link, every hash and every signature and names the first
 * broken line.
 *
 * Bounded: when the file passes `maxBytes` (10 MB) it becomes
 * `trust-log.1.jsonl` (the previous one is dropped) and a new file continues
 * the chain (its first line's `prev` is the last hash of the rotated file).
 * A write failure is logged, never fatal: the daemon's decision stands.
 */
import { createHash } from 'node:crypto'
import { appendFile, readFile, rename, stat } from 'node:fs/promises'
import { join } from 'node:path'
import type { Identity } from '../crypto/identity.js'
import { verifyChallenge } from '../crypto/identity.js'
import type { Logger } from '../logger.js'
import { AUDIT_GENESIS } from '../registry/network-types.js'

export type TrustLogAction = 'approve' | 'reject' | 'revoke' | 'auto-accept' | 'mutual' | 'network-trust' | 'refused' | 'request'

export interface TrustLogEntry {
  seq: number
  /** Unix milliseconds. */
  time: number
  node: number
  key: string
  action: string
  peer: number
  detail: string
  prev: string
  hash: string
  signature: string
}

export type TrustLogVerification =
  | { ok: true; entries: number; head: string }
  | { ok: false; entries: number; first_broken: number; reason: string }

export const TRUST_LOG_FILE = 'trust-log.jsonl'
export const TRUST_LOG_ROTATED = 'trust-log.1.jsonl'
export const TRUST_LOG_MAX_BYTES = 10 * 1024 * 1024
/** Longest `detail` kept (a peer's justification is cut). */
const MAX_DETAIL = 512

export function trustLogHash(e: Omit<TrustLogEntry, 'hash' | 'signature'>): string {
  return createHash('sha256')
    .update(['pilot-trust-log-v1', e.seq, e.time, e.node, e.key, e.action, e.peer, e.detail, e.prev].join('\n'), 'utf8')
    .digest('hex')
}

export interface TrustLogOptions {
  stateDir: string
  identity: Identity
  nodeId: () => number
  logger: Logger
  maxBytes?: number
  now?: () => number
}

export class TrustLog {
  readonly path: string
  private readonly rotated: string
  private readonly o: TrustLogOptions
  private readonly key: string
  private head: { seq: number; hash: string } | null = null
  private size = 0
  /** Appends in order, one at a time. */
  private tail: Promise<void> = Promise.resolve()
  failures = 0

  constructor(o: TrustLogOptions) {
    this.o = o
    this.path = join(o.stateDir, TRUST_LOG_FILE)
    this.rotated = join(o.stateDir, TRUST_LOG_ROTATED)
    this.key = Buffer.from(o.identity.publicKey).toString('base64')
  }

  /** Records one decision; resolves when the line is written (or the failure logged). */
  append(action: TrustLogAction, peer: number, detail = ''): Promise<void> {
    this.tail = this.tail.then(() => this.write(action, peer, detail)).catch((err: unknown) => {
      this.failures++
      this.o.logger.warn('trust log write failed', { error: err instanceof Error ? err.message : String(err) })
    })
    return this.tail
  }

  /** Resolves when every append so far is written (the daemon's close waits for it). */
  flush(): Promise<void> {
    return this.tail
  }

  /** Every entry kept (rotated file first). Lines that are no JSON object come back as `null` placeholders in `verify`. */
  async entries(): Promise<TrustLogEntry[]> {
    return (await this.readLines()).filter((e): e is TrustLogEntry => e !== null && typeof e === 'object')
  }

  async verify(): Promise<TrustLogVerification> {
    return verifyTrustLog(await this.readLines(), this.key)
  }

  private async readLines(): Promise<unknown[]> {
    await this.tail
    return this.readLinesRaw()
  }

  private async write(action: TrustLogAction, peer: number, detail: string): Promise<void> {
    if (this.head === null) await this.loadHead()
    const prev = this.head!
    const body = {
      seq: prev.seq + 1,
      time: (this.o.now ?? Date.now)(),
      node: this.o.nodeId(),
      key: this.key,
      action,
      peer,
      detail: detail.slice(0, MAX_DETAIL),
      prev: prev.hash,
    }
    const hash = trustLogHash(body)
    const entry: TrustLogEntry = { ...body, hash, signature: this.o.identity.signChallenge(hash) }
    const line = `${JSON.stringify(entry)}\n`
    if (this.size + line.length > (this.o.maxBytes ?? TRUST_LOG_MAX_BYTES) && this.size > 0) {
      await rename(this.path, this.rotated)
      this.size = 0
    }
    await appendFile(this.path, line, { mode: 0o600 })
    this.size += Buffer.byteLength(line)
    this.head = { seq: entry.seq, hash }
  }

  /** The last line of the current file (or of the rotated one) continues the chain. */
  private async loadHead(): Promise<void> {
    this.head = { seq: 0, hash: AUDIT_GENESIS }
    try {
      this.size = (await stat(this.path)).size
    } catch {
      this.size = 0
    }
    const lines = await this.readLinesRaw()
    for (let i = lines.length - 1; i >= 0; i--) {
      const e = lines[i] as Partial<TrustLogEntry> | null
      if (e !== null && typeof e === 'object' && typeof e.seq === 'number' && typeof e.hash === 'string') {
        this.head = { seq: e.seq, hash: e.hash }
        return
      }
    }
  }

  private async readLinesRaw(): Promise<unknown[]> {
    const out: unknown[] = []
    for (const p of [this.rotated, this.path]) {
      const text = await readFile(p, 'utf8').catch(() => '')
      for (const line of text.split('\n')) {
        if (line.trim() === '') continue
        try {
          out.push(JSON.parse(line))
        } catch {
          out.push(null)
        }
      }
    }
    return out
  }
}

/**
 * Checks a trust log: seq continuity, `prev` links, hashes, signatures (by
 * `key` when given: the node's own key). The first line may start after seq 1
 * (older lines rotated away): its `prev` is taken as given.
 */
export function verifyTrustLog(lines: readonly unknown[], key?: string): TrustLogVerification {
  let prev: TrustLogEntry | null = null
  for (let i = 0; i < lines.length; i++) {
    const e = lines[i] as TrustLogEntry | null
    const at = prev === null ? i + 1 : prev.seq + 1
    const broken = (reason: string): TrustLogVerification => ({ ok: false, entries: lines.length, first_broken: at, reason })
    if (e === null || typeof e !== 'object') return broken(`line ${i + 1} is not a JSON object`)
    if (!Number.isInteger(e.seq) || typeof e.hash !== 'string' || typeof e.signature !== 'string' || typeof e.key !== 'string' || typeof e.prev !== 'string') {
      return broken(`line ${i + 1} lacks seq, hash, prev, key or signature`)
    }
    if (prev === null) {
      if (e.seq === 1 && e.prev !== AUDIT_GENESIS) return broken('the first entry does not start from the genesis hash')
    } else {
      if (e.seq !== prev.seq + 1) return broken(`entry ${e.seq} follows ${prev.seq}`)
      if (e.prev !== prev.hash) return broken(`entry ${e.seq} does not link to entry ${prev.seq}`)
    }
    const { hash, signature, ...body } = e
    if (trustLogHash(body) !== hash) return { ok: false, entries: lines.length, first_broken: e.seq, reason: `entry ${e.seq} was altered (hash mismatch)` }
    if (key !== undefined && e.key !== key) return { ok: false, entries: lines.length, first_broken: e.seq, reason: `entry ${e.seq} is signed by another key` }
    let good = false
    try {
      good = verifyChallenge(Buffer.from(e.key, 'base64'), hash, signature)
    } catch {
      good = false
    }
    if (!good) return { ok: false, entries: lines.length, first_broken: e.seq, reason: `entry ${e.seq} has a bad signature` }
    prev = e
  }
  return { ok: true, entries: lines.length, head: prev?.hash ?? AUDIT_GENESIS }
}
