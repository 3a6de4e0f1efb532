/**
 * Cache of registered Ed25519 keys, filled from `PeerDirectory.lookupKey`.
 *
 * Every PILA is checked against a copy of the registry's key (docs/wire.md §17
 * item 16: Go only checks the first one). Lookups are bounded (a flood of
 * PILAs with made-up sender IDs must not become a flood of registry
 * requests): at most `maxPending` in flight, negative answers remembered for
 * a while, and the entry table is capped (oldest evicted).
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
}

export type KeyFetchedHandler = (nodeId: number) => void

export class RegistryKeyCache {
  private readonly entries = new Map<number, RegistryKeyEntry>()
  private pending = 0
  /** Bumped by `clear()`/`delete()` so late answers for forgotten entries are ignored. */
  private generation = 0

  constructor(
    private readonly directory: PeerDirectory,
    private readonly now: () => number,
    private readonly logger: Logger,
    private readonly maxPending = 64,
    private readonly maxEntries = 4096,
  ) {}

  get(nodeId: number): RegistryKeyEntry | undefined {
    return this.entries.get(nodeId)
  }

  get pendingCount(): number {
    return this.pending
  }

  /**
   * Starts a lookup unless one is running; `done(nodeId)` runs after it
   * settles. Returns false (nothing started) when too many are in flight.
   */
  fetch(nodeId: number, done: KeyFetchedHandler | null): boolean {
    let entry = this.entries.get(nodeId)
    if (entry?.fetching) return true
    if (this.pending >= this.maxPending) return false
    if (entry === undefined) {
      entry = { key: null, keyObject: null, fetchedMs: 0, fetching: false }
      this.entries.set(nodeId, entry)
      if (this.entries.size > this.maxEntries) this.evictOldest()
    }
    entry.fetching = true
    this.pending++
    const generation = this.generation
    const settle = (key: Uint8Array | null): void => {
      this.pending--
      if (generation !== this.generation && this.entries.get(nodeId) !== entry) return
      entry.fetching = false
      entry.fetchedMs = Math.max(1, this.now())
      this.store(entry, key)
      if (done !== null) done(nodeId)
    }
    this.directory.lookupKey(nodeId).then(settle, (err: unknown) => {
      this.logger.warn('registry key lookup failed', { node: nodeId, error: String(err) })
      settle(null)
    })
    return true
  }

  delete(nodeId: number): void {
    if (this.entries.delete(nodeId)) this.generation++
  }

  clear(): void {
    this.entries.clear()
    this.generation++
  }

  private store(entry: RegistryKeyEntry, key: Uint8Array | null): void {
    if (key === null || key.length !== 32) {
      entry.key = null
      entry.keyObject = null
      return
    }
    try {
      entry.keyObject = ed25519PublicKeyObject(key)
      entry.key = Uint8Array.from(key)
    } catch {
      entry.key = null
      entry.keyObject = null
    }
  }

  private evictOldest(): void {
    for (const [id, e] of this.entries) {
      if (!e.fetching) {
        this.entries.delete(id)
        return
      }
    }
  }
}
