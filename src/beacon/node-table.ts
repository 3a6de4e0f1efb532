/**
 * The beacon's memory: node ID → the UDP endpoint that holds it (docs/wire.md
 * §9.2), bounded in size and age. The table only stores; the server decides
 * that an ID stays with its endpoint until the entry expires.
 *
 * The Map is kept in last-seen order (a refresh deletes and re-inserts), so
 * the least recently seen node is the first key: eviction and expiry only ever
 * look at the front, O(1) per removed entry, with no timer.
 */
import { encodeBeaconMessage, BeaconType } from '../protocol/beacon-messages.js'
import { DecodeError } from '../errors.js'

export interface NodeEntry {
  readonly host: string
  readonly port: number
  /** `0x02 ‖ ip_len ‖ ip ‖ port`, built once and sent by reference (never modified). */
  readonly discoverReply: Uint8Array
  /** `0x04 ‖ ip_len ‖ ip ‖ port`: what a punch peer is told about this node. */
  readonly punchCommand: Uint8Array
  lastSeen: number
}

/** The two endpoint messages for `host:port`, or null if the host has no 4/16-byte form (e.g. a zone-scoped IPv6). */
export function encodeEndpointMessages(host: string, port: number): { discoverReply: Uint8Array; punchCommand: Uint8Array } | null {
  try {
    const endpoint = { host, port }
    return {
      discoverReply: encodeBeaconMessage({ type: BeaconType.DISCOVER_REPLY, endpoint }),
      punchCommand: encodeBeaconMessage({ type: BeaconType.PUNCH_COMMAND, endpoint }),
    }
  } catch (err) {
    if (err instanceof DecodeError) return null
    throw err
  }
}

export class NodeTable {
  private readonly entries = new Map<number, NodeEntry>()
  evicted = 0
  expired = 0

  constructor(
    private readonly maxNodes: number,
    private readonly ttlMs: number,
    /** The least recently seen node is evicted for a newcomer only after this long without a refresh. */
    private readonly evictableAfterMs: number,
  ) {}

  get size(): number {
    return this.entries.size
  }

  /** The live entry for `nodeId`; an expired one is removed and reported as absent. */
  lookup(nodeId: number, now: number): NodeEntry | undefined {
    const e = this.entries.get(nodeId)
    if (e === undefined) return undefined
    if (now - e.lastSeen > this.ttlMs) {
      this.entries.delete(nodeId)
      this.expired++
      return undefined
    }
    return e
  }

  /** Marks `entry` (the current one for `nodeId`) as seen now and moves it to the back. */
  refresh(nodeId: number, entry: NodeEntry, now: number): void {
    entry.lastSeen = now
    this.entries.delete(nodeId)
    this.entries.set(nodeId, entry)
  }

  /**
   * Records `nodeId` at `host:port`. When the table is full the least recently seen node is
   * evicted if it has been silent for `evictableAfterMs`; otherwise nothing is stored and the
   * result is null (a live node is never pushed out).
   */
  set(
    nodeId: number,
    host: string,
    port: number,
    messages: { discoverReply: Uint8Array; punchCommand: Uint8Array },
    now: number,
  ): NodeEntry | null {
    if (!this.entries.delete(nodeId) && this.entries.size >= this.maxNodes) {
      const oldest = this.entries.entries().next()
      if (oldest.done || now - oldest.value[1].lastSeen < this.evictableAfterMs) return null
      this.entries.delete(oldest.value[0])
      this.evicted++
    }
    const entry: NodeEntry = { host, port, discoverReply: messages.discoverReply, punchCommand: messages.punchCommand, lastSeen: now }
    this.entries.set(nodeId, entry)
    return entry
  }

  /** The node IDs of live entries (expired ones are swept first). */
  liveIds(now: number): number[] {
    this.sweep(now)
    return [...this.entries.keys()]
  }

  /** Removes expired entries from the front (the map is in last-seen order). */
  sweep(now: number): void {
    for (const [id, e] of this.entries) {
      if (now - e.lastSeen <= this.ttlMs) break
      this.entries.delete(id)
      this.expired++
    }
  }
}
