/**
 * Cache of registered Ed25519 keys, filled from `PeerDirectory.lookupKey`.
 *
 * Every PILA is checked against a copy of the registry's key (docs/wire.md §17
 * item 16: Go only checks the first one). Lookups are bounded (a flood of
 * PILAs with made-up sender IDs must not become a flood of registry
 * requests): at most `maxPending` in flight, of which at most
 * `maxRemotePending` caused by strangers' frames, so the peers we send to
 * always find room. Negative answers are remembered (the caller decides for
 * how long) in a table of their own, so a flood of unknown node IDs evicts
 * other unknown IDs, never the keys of real peers.
 */
import type { KeyObject } from 'node:crypto'
import { ed25519PublicKeyObject } from '../crypto/index.js'
import type { Logger } from '../logger.js'
import type { PeerDirectory } from './peer-directory.js'

export interface RegistryKeyEntry {
  /** Copy of the registered key; null = the registry has none (or the lookup failed). */
  key: Uint8Array | null
  keyObject: KeyObject | null
  /** Clock value when the last lookup settled (0 while the first is running). */
  fetchedMs: number
  fetching: boolean
  /** The running lookup was caused by a stranger's frame (counted against `maxRemotePending`). */
  remote: boolean
  /**
   * The running lookup is only a prefetch (`Tunnel.prefetchPeers`): a "no key" answer is not
   * remembered (the node may be re-registering right now, after a restart of both), so the
   * node's first PILA asks again instead of being refused for `negativeKeyCacheMs`.
   */
  prefetch?: boolean
}

/** Runs after every lookup settles, whoever started it. */
export type KeyFetchedHandler = (nodeId: number) => void

/**
 * Why a lookup is started: for a peer we send to, because of a frame someone sent us, or ahead
 * of need for a node we expect to talk to (counted as local; a "no key" answer is not kept).
 */
export type LookupCause = 'local' | 'remote' | 'prefetch'

export interface RegistryKeyCacheOptions {
  directory: PeerDirectory
  now: () => number
  logger: Logger
  onFetched: KeyFetchedHandler
  /** Lookups in flight, every cause together. */
  maxPending: number
  /** Of those, caused by strangers' frames. */
  maxRemotePending: number
  /** Registered keys kept (oldest forgotten). */
  maxKeys: number
  /** "No key" answers kept (oldest forgotten). */
  maxUnknown: number
}

export class RegistryKeyCache {
  /** Entries with a key. */
  private readonly entries = new Map<number, RegistryKeyEntry>()
  /** Entries the registry had no key for, and entries whose first lookup is running. */
  private readonly unknown = new Map<number, RegistryKeyEntry>()
  private pending = 0
  private remotePending = 0
  /** Bumped by `clear()`/`delete()` so late answers for forgotten entries are ignored. */
  private generation = 0

  constructor(private readonly opts: RegistryKeyCacheOptions) {}

  get(nodeId: number): RegistryKeyEntry | undefined {
    return this.entries.get(nodeId) ?? this.unknown.get(nodeId)
  }

  get pendingCount(): number {
    return this.pending
  }

  /** Entries held (keys, unknown IDs, lookups running). */
  get size(): number {
    return this.entries.size + this.unknown.size
  }

  /** A lookup of this cause could start now (one already running for the node needs none). */
  hasRoom(cause: LookupCause): boolean {
    return this.pending < this.opts.maxPending && (cause !== 'remote' || this.remotePending < this.opts.maxRemotePending)
  }

  /**
   * Starts a lookup unless one is running; `onFetched(nodeId)` runs after it settles.
   * Returns false (nothing started) when too many of this cause are in flight.
   */
  fetch(nodeId: number, cause: LookupCause): boolean {
    let entry = this.get(nodeId)
    if (entry?.fetching) {
      if (cause !== 'prefetch') entry.prefetch = false // now needed: its answer counts, "no key" too
      return true
    }
    if (!this.hasRoom(cause)) return false
    if (entry === undefined) {
      // Filed as unknown until an answer brings a key: a flood of new IDs pushes out only unknowns.
      entry = { key: null, keyObject: null, fetchedMs: 0, fetching: false, remote: false }
      this.unknown.set(nodeId, entry)
      if (this.unknown.size > this.opts.maxUnknown) evictSettled(this.unknown)
    }
    entry.fetching = true
    entry.remote = cause === 'remote'
    entry.prefetch = cause === 'prefetch'
    this.pending++
    if (entry.remote) this.remotePending++
    const generation = this.generation
    const settle = (key: Uint8Array | null): void => {
      this.pending--
      if (entry.remote) this.remotePending--
      entry.remote = false
      if (generation !== this.generation && this.get(nodeId) !== entry) return
      entry.fetching = false
      entry.fetchedMs = Math.max(1, this.opts.now())
      if (entry.prefetch === true && key === null) {
        entry.prefetch = false
        // Not known yet is no answer for a prefetch: the first real need asks the registry again.
        this.delete(nodeId)
        this.opts.directory.invalidate?.(nodeId)
      } else {
        this.store(nodeId, entry, key)
      }
      this.opts.onFetched(nodeId)
    }
    this.opts.directory.lookupKey(nodeId).then(settle, (err: unknown) => {
      this.opts.logger.warn('registry key lookup failed', { node: nodeId, error: String(err) })
      settle(null)
    })
    return true
  }

  delete(nodeId: number): void {
    if (this.entries.delete(nodeId) || this.unknown.delete(nodeId)) this.generation++
  }

  clear(): void {
    this.entries.clear()
    this.unknown.clear()
    this.generation++
  }

  /** Files the entry under `entries` (a key) or `unknown` (none), each table bounded. */
  private store(nodeId: number, entry: RegistryKeyEntry, key: Uint8Array | null): void {
    entry.key = null
    entry.keyObject = null
    if (key !== null && key.length === 32) {
      try {
        entry.keyObject = ed25519PublicKeyObject(key)
        entry.key = Uint8Array.from(key)
      } catch {
        entry.keyObject = null
      }
    }
    const known = entry.key !== null
    const [to, from] = known ? [this.entries, this.unknown] : [this.unknown, this.entries]
    if (from.get(nodeId) === entry) from.delete(nodeId)
    to.delete(nodeId) // (re-)inserted as the newest: eviction takes the longest unanswered first
    to.set(nodeId, entry)
    if (to.size > (known ? this.opts.maxKeys : this.opts.maxUnknown)) evictSettled(to)
  }
}

/** Forgets the oldest entry whose lookup is not running (one with a running lookup stays). */
function evictSettled(table: Map<number, RegistryKeyEntry>): void {
  for (const [id, e] of table) {
    if (!e.fetching) {
      table.delete(id)
      return
    }
  }
}
