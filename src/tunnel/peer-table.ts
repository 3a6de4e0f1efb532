/**
 * The tunnel's peers by node ID, at most `maxPeers` (limits.ts), and what must outlive a
 * removed peer: its last X25519 key, its replay windows and its retired keys. A peer removed
 * (idle, evicted at the cap, or forgotten when trust is revoked) and set up again later gets
 * them back; without them it would start with fresh replay windows under the very same keys,
 * and a capture of its old PILA and PILS would open again.
 *
 * The forgotten peers are bounded too (`maxForgottenPeers`, oldest dropped). Dropping one
 * loses that protection for its node, so `remove` says when it happened: the tunnel then
 * rotates its own key pair, after which nothing sealed for the old one opens.
 */
import type { ReplayWindows } from '../crypto/index.js'
import { Peer } from './peer.js'
import type { TunnelLimits } from './limits.js'

/** What is kept of a removed peer that had a key. */
interface ForgottenPeer {
  key: Uint8Array | null
  replay: ReplayWindows
  retiredKeys: Uint8Array[]
}

export class PeerTable {
  private readonly peers = new Map<number, Peer>()
  private readonly forgotten = new Map<number, ForgottenPeer>()

  constructor(private readonly limits: Pick<TunnelLimits, 'maxPeers' | 'maxForgottenPeers'>) {}

  get size(): number {
    return this.peers.size
  }

  /** Removed peers whose keys and replay state are remembered. */
  get forgottenCount(): number {
    return this.forgotten.size
  }

  /** A new peer would pass `maxPeers`: make room first (`idlest`, then `remove`). */
  get full(): boolean {
    return this.peers.size >= this.limits.maxPeers
  }

  get(nodeId: number): Peer | undefined {
    return this.peers.get(nodeId)
  }

  values(): IterableIterator<Peer> {
    return this.peers.values()
  }

  /** A new peer for `nodeId` (none may exist), with what was remembered of it, if anything. */
  add(nodeId: number, now: number): Peer {
    const peer = new Peer(nodeId)
    peer.lastActiveMs = now
    const kept = this.forgotten.get(nodeId)
    if (kept !== undefined) {
      this.forgotten.delete(nodeId)
      peer.restoredKey = kept.key
      peer.replay = kept.replay
      peer.retiredKeys = kept.retiredKeys
    }
    this.peers.set(nodeId, peer)
    return peer
  }

  /**
   * Removes the peer, remembering its key, replay windows and retired keys if it had any.
   * Returns true when that pushed out the oldest remembered peer (the caller rotates its keys).
   */
  remove(peer: Peer): boolean {
    if (this.peers.get(peer.nodeId) !== peer) return false
    this.peers.delete(peer.nodeId)
    const key = peer.peerX25519 ?? peer.restoredKey
    if (key === null && peer.retiredKeys.length === 0) return false
    this.forgotten.delete(peer.nodeId) // re-inserted: the newest
    this.forgotten.set(peer.nodeId, { key, replay: peer.replay, retiredKeys: peer.retiredKeys })
    if (this.forgotten.size <= this.limits.maxForgottenPeers) return false
    this.forgotten.delete(this.forgotten.keys().next().value as number)
    return true
  }

  /** The peer with the longest time since its last traffic either way, if any. */
  idlest(): Peer | undefined {
    let best: Peer | undefined
    let bestMs = Number.POSITIVE_INFINITY
    for (const p of this.peers.values()) {
      const ms = lastTrafficMs(p)
      if (ms < bestMs) {
        bestMs = ms
        best = p
      }
    }
    return best
  }

  clear(): void {
    this.peers.clear()
    this.forgotten.clear()
  }
}

/** The later of the last traffic the tick saw and the last authenticated frame. */
export function lastTrafficMs(peer: Peer): number {
  return Math.max(peer.lastActiveMs, peer.lastReceiveMs)
}
