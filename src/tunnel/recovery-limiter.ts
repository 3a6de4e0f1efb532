/**
 * Rate limit for recovery key frames: our PILA sent back for a PILS we cannot
 * open (no session with its sender, or repeated authentication failures).
 *
 * Anyone can send such a PILS with any sender ID from any (spoofed) source,
 * so answers are capped three ways: one per node ID per interval, one per
 * source endpoint per interval (not for relayed frames: their answer goes to
 * the beacon, addressed to the node), and a global number per second. The
 * caller answers only PILS big enough to hold a packet (≥ 70 bytes against a
 * 137-byte PILA), so the reflection gain stays below 2 and is bounded in
 * absolute terms by the global cap.
 *
 * Keyed by numbers (node ID) plus a small fixed table of source endpoints
 * compared by value: nothing is allocated unless an answer is allowed.
 */

/** Source endpoints remembered at once (oldest overwritten). */
const SOURCE_SLOTS = 64

export class RecoveryLimiter {
  private readonly byNode = new Map<number, number>()
  private readonly srcHost: string[] = new Array<string>(SOURCE_SLOTS).fill('')
  private readonly srcPort = new Int32Array(SOURCE_SLOTS)
  private readonly srcAt = new Float64Array(SOURCE_SLOTS)
  private srcNext = 0
  private windowStartMs = Number.NEGATIVE_INFINITY
  private windowCount = 0

  constructor(
    private readonly intervalMs: number,
    private readonly maxPerSecond: number,
    private readonly maxNodes = 1024,
  ) {}

  /**
   * True if a recovery frame for `node` may go out now, and records it.
   * `host` '' (with `port` 0) = relayed: no per-source limit.
   */
  allow(node: number, host: string, port: number, now: number): boolean {
    if (now - this.windowStartMs >= 1_000) {
      this.windowStartMs = now
      this.windowCount = 0
    }
    if (this.windowCount >= this.maxPerSecond) return false
    const last = this.byNode.get(node)
    if (last !== undefined && now - last < this.intervalMs) return false
    let slot = -1
    if (port !== 0) {
      for (let i = 0; i < SOURCE_SLOTS; i++) {
        if (this.srcPort[i] === port && this.srcHost[i] === host) {
          if (now - this.srcAt[i]! < this.intervalMs) return false
          slot = i
          break
        }
      }
    }
    if (last === undefined && this.byNode.size >= this.maxNodes && !this.prune(now)) return false
    this.windowCount++
    this.byNode.set(node, now)
    if (port !== 0) {
      if (slot < 0) {
        slot = this.srcNext
        this.srcNext = (this.srcNext + 1) % SOURCE_SLOTS
        this.srcHost[slot] = host
        this.srcPort[slot] = port
      }
      this.srcAt[slot] = now
    }
    return true
  }

  /** Drops node entries older than the interval; true if room was made. */
  private prune(now: number): boolean {
    for (const [node, at] of this.byNode) if (now - at >= this.intervalMs) this.byNode.delete(node)
    return this.byNode.size < this.maxNodes
  }
}
