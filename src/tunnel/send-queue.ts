/**
 * Outgoing packets waiting for a peer's keys or path (Go keeps such a queue too:
 * 64 packets per peer, 256 peers). Bounded two ways: per peer the oldest packet
 * goes when a new one arrives at a full queue, and a peer that has no queue yet
 * gets none while `maxPeers` others hold one (its packet is dropped).
 *
 * Control plane only: packets are queued while a session is being set up and
 * flushed once, so a copy per packet and a map by node ID are fine here. A node
 * has an entry only while its queue is not empty.
 */

/** Why `push` dropped a packet (the same strings as the tunnel's drop reasons). */
export type QueueDrop = 'queue-overflow' | 'queue-limit'

export class SendQueue {
  private readonly queues = new Map<number, Uint8Array[]>()

  constructor(
    readonly maxPerPeer: number,
    readonly maxPeers: number,
  ) {}

  /**
   * Queues a copy of `packet` (the caller may reuse its buffer) for `nodeId`. Returns null, or
   * `'queue-overflow'` when the peer's oldest packet made room (this one is queued), or
   * `'queue-limit'` when too many peers hold queues (this one is dropped).
   */
  push(nodeId: number, packet: Uint8Array): QueueDrop | null {
    let q = this.queues.get(nodeId)
    let dropped: QueueDrop | null = null
    if (q === undefined) {
      if (this.queues.size >= this.maxPeers) return 'queue-limit'
      q = []
      this.queues.set(nodeId, q)
    } else if (q.length >= this.maxPerPeer) {
      q.shift()
      dropped = 'queue-overflow'
    }
    q.push(Uint8Array.from(packet))
    return dropped
  }

  /** Packets queued for `nodeId`. */
  size(nodeId: number): number {
    return this.queues.get(nodeId)?.length ?? 0
  }

  has(nodeId: number): boolean {
    return this.queues.has(nodeId)
  }

  /** Peers holding a queue. */
  get peers(): number {
    return this.queues.size
  }

  /** Removes and returns the node's packets, oldest first (undefined when none). */
  take(nodeId: number): Uint8Array[] | undefined {
    const q = this.queues.get(nodeId)
    if (q !== undefined) this.queues.delete(nodeId)
    return q
  }

  /** Drops the node's packets. */
  delete(nodeId: number): void {
    this.queues.delete(nodeId)
  }

  clear(): void {
    this.queues.clear()
  }
}
