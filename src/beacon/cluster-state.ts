/**
 * What a clustered beacon knows about its peers (docs/wire.md §9.7): the peer
 * beacons (a static list, plus those the registry lists) and, per peer, the
 * node IDs its last Sync named. Pure state with an injected clock; the server
 * asks it who holds a node and the driver (cluster.ts) feeds it peer lists.
 *
 * A Sync replaces everything learned from that peer before, as in the
 * reference; a round split into parts (the pilot-tun trailer,
 * src/protocol/beacon-cluster-messages.ts) replaces it when its last part
 * arrives. A peer's set is forgotten `learnedTtlMs` after its last complete
 * Sync, so a dead peer stops attracting relay traffic. Everything is bounded:
 * peers, IDs per peer, and one round being gathered per peer.
 */
import type { SyncPart } from '../protocol/beacon-cluster-messages.js'
import type { UdpEndpoint } from '../tunnel/bind.js'

export interface ClusterLimits {
  /** Peer beacons at most (static + registry). */
  maxPeers: number
  /** Node IDs learned from one peer at most; the rest of a larger Sync is ignored (counted). */
  maxLearnedPerPeer: number
  /** A peer's node IDs are forgotten this long after its last complete Sync (3 rounds of 10 s + slack). */
  learnedTtlMs: number
}

export const DEFAULT_CLUSTER_LIMITS: Readonly<ClusterLimits> = Object.freeze({
  maxPeers: 64,
  maxLearnedPerPeer: 100_000,
  learnedTtlMs: 35_000,
})

export interface PeerBeacon {
  readonly host: string
  readonly port: number
  /** Where this peer came from; a static peer stays when the registry's list changes. */
  readonly origin: 'static' | 'registry'
  /** The beacon ID its Syncs carry (or the registry listed), 0 until known. */
  beaconId: number
  /** Node IDs its last complete Sync named (expired with `lastSync`). */
  learned: Set<number>
  /** Monotonic ms of the last complete Sync; -Infinity before the first. */
  lastSync: number
  /** A round being gathered (pilot-tun trailer): its ID, the parts seen and the IDs so far. */
  pending: { round: number; parts: number; seen: Set<number>; ids: Set<number> } | null
  syncsReceived: number
}

export type SyncOutcome = 'applied' | 'partial' | 'truncated' | 'self'

/** `::ffff:a.b.c.d` as dotted text, so an IPv4 peer matches whichever socket family saw it. */
export function normalizeHost(host: string): string {
  return host.startsWith('::ffff:') && host.includes('.') ? host.slice(7) : host
}

function key(host: string, port: number): string {
  return `${normalizeHost(host)}|${port}`
}

export class ClusterState {
  private readonly peers = new Map<string, PeerBeacon>()
  /** Node ID → the peer whose Sync named it last. */
  private readonly owners = new Map<number, PeerBeacon>()
  truncatedIds = 0

  constructor(
    /** This beacon's ID (0 = none); a Sync carrying it is our own, looped back. */
    readonly beaconId: number,
    readonly limits: Readonly<ClusterLimits> = DEFAULT_CLUSTER_LIMITS,
  ) {}

  get peerCount(): number {
    return this.peers.size
  }

  /** Node IDs currently learned from live peers. */
  learnedCount(now: number): number {
    let n = 0
    for (const p of this.peers.values()) if (this.live(p, now)) n += p.learned.size
    return n
  }

  listPeers(): PeerBeacon[] {
    return [...this.peers.values()]
  }

  /** The peer beacon at exactly `host:port`, if it is one. */
  peerAt(host: string, port: number): PeerBeacon | undefined {
    return this.peers.size === 0 ? undefined : this.peers.get(key(host, port))
  }

  /**
   * Replaces the peers of `origin` with `list` (a static peer listed by the registry stays
   * static). Returns how many were refused because `maxPeers` was reached.
   */
  setPeers(list: ReadonlyArray<UdpEndpoint & { beaconId?: number }>, origin: 'static' | 'registry'): number {
    const wanted = new Map<string, UdpEndpoint & { beaconId?: number }>()
    for (const e of list) wanted.set(key(e.host, e.port), e)
    for (const [k, p] of this.peers) {
      if (p.origin === origin && !wanted.has(k)) this.removePeer(k, p)
    }
    let refused = 0
    for (const [k, e] of wanted) {
      const existing = this.peers.get(k)
      if (existing !== undefined) {
        if (e.beaconId !== undefined && e.beaconId !== 0) existing.beaconId = e.beaconId
        continue
      }
      if (this.peers.size >= this.limits.maxPeers) {
        refused++
        continue
      }
      this.peers.set(k, {
        host: normalizeHost(e.host),
        port: e.port,
        origin,
        beaconId: e.beaconId ?? 0,
        learned: new Set(),
        lastSync: -Infinity,
        pending: null,
        syncsReceived: 0,
      })
    }
    return refused
  }

  /** The live peer that holds `nodeId`, per its last Sync. */
  ownerOf(nodeId: number, now: number): PeerBeacon | undefined {
    const p = this.owners.get(nodeId)
    if (p === undefined) return undefined
    if (!this.live(p, now)) {
      this.forget(p)
      return undefined
    }
    return p
  }

  /** A Sync datagram from `peer`. */
  onSync(peer: PeerBeacon, part: SyncPart, now: number): SyncOutcome {
    if (this.beaconId !== 0 && part.beaconId === this.beaconId) return 'self'
    if (part.beaconId !== 0) peer.beaconId = part.beaconId
    const max = this.limits.maxLearnedPerPeer
    if (part.round === null || part.round.parts === 1) {
      peer.pending = null
      const ids = new Set<number>()
      const truncated = this.addBounded(ids, part.nodeIds, max)
      this.apply(peer, ids, now)
      return truncated ? 'truncated' : 'applied'
    }
    const r = part.round
    if (peer.pending === null || peer.pending.round !== r.id || peer.pending.parts !== r.parts) {
      peer.pending = { round: r.id, parts: r.parts, seen: new Set(), ids: new Set() }
    }
    const pending = peer.pending
    pending.seen.add(r.part)
    const truncated = this.addBounded(pending.ids, part.nodeIds, max)
    if (pending.seen.size < pending.parts) return truncated ? 'truncated' : 'partial'
    peer.pending = null
    this.apply(peer, pending.ids, now)
    return truncated ? 'truncated' : 'applied'
  }

  /** Drops the sets of peers silent for `learnedTtlMs`. */
  sweep(now: number): void {
    for (const p of this.peers.values()) if (!this.live(p, now) && p.learned.size > 0) this.forget(p)
  }

  private live(p: PeerBeacon, now: number): boolean {
    return now - p.lastSync <= this.limits.learnedTtlMs
  }

  private addBounded(into: Set<number>, ids: readonly number[], max: number): boolean {
    for (const id of ids) {
      if (id === 0) continue
      if (into.size >= max && !into.has(id)) {
        this.truncatedIds++
        return true
      }
      into.add(id)
    }
    return false
  }

  private apply(peer: PeerBeacon, ids: Set<number>, now: number): void {
    for (const id of peer.learned) if (!ids.has(id) && this.owners.get(id) === peer) this.owners.delete(id)
    for (const id of ids) this.owners.set(id, peer)
    peer.learned = ids
    peer.lastSync = now
    peer.syncsReceived++
  }

  private forget(p: PeerBeacon): void {
    for (const id of p.learned) if (this.owners.get(id) === p) this.owners.delete(id)
    p.learned = new Set()
  }

  private removePeer(k: string, p: PeerBeacon): void {
    this.forget(p)
    this.peers.delete(k)
  }
}
