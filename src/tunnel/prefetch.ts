/**
 * Keys and endpoints of nodes we expect to talk to, fetched before the first packet either way
 * (`Tunnel.prefetchPeers`; the daemon passes its trusted peers at start and when trust is made).
 * A first connection then needs no registry round trip on either side: our key frame goes to the
 * resolved endpoint at once (paths.ts `useLastKnown`), and the peer's is checked on arrival.
 *
 * Bounded: at most `maxNodes` nodes per call (the others are set up on first use as before), the
 * lookups counted as local ones (registry-keys.ts; a "no key" answer to a prefetch is not kept,
 * so a peer that registers a moment later is not refused), and the nodes still without a key
 * asked again at RETRY_MS — peers restarting together with us register a moment after we ask.
 */

/** Ages (ms since the prefetch) at which its nodes still without a cached key are asked again. */
export const PREFETCH_RETRY_MS: readonly number[] = [1_000, 3_000]

/** What the prefetch needs from the tunnel. */
export interface PrefetchPort {
  /** The registry's answer for the node is cached or on its way. */
  knowsKey(nodeId: number): boolean
  /** The tunnel has a peer for the node (set up or being set up: nothing to prefetch). */
  hasPeer(nodeId: number): boolean
  /** Starts the key lookup and the endpoint resolve. */
  fetch(nodeId: number): void
}

export class PeerPrefetch {
  private nodes: number[] = []
  private sinceMs = 0
  private retries = PREFETCH_RETRY_MS.length

  constructor(
    private readonly port: PrefetchPort,
    private readonly maxNodes: number,
  ) {}

  /** Fetches what is not known yet for up to `maxNodes` of `nodeIds` (own ID excluded by the caller). Returns how many. */
  prefetch(nodeIds: Iterable<number>, now: number): number {
    const started: number[] = []
    for (const nodeId of nodeIds) {
      if (started.length >= this.maxNodes) break
      if (!Number.isInteger(nodeId) || nodeId <= 0 || nodeId > 0xffffffff || started.includes(nodeId)) continue
      if (this.port.hasPeer(nodeId) || this.port.knowsKey(nodeId)) continue
      this.port.fetch(nodeId)
      started.push(nodeId)
    }
    if (started.length > 0) {
      // One retry schedule, for the newest call's nodes and those of earlier calls still waiting.
      const keep = this.retries < PREFETCH_RETRY_MS.length ? this.nodes.filter((n) => !started.includes(n)) : []
      this.nodes = [...started, ...keep].slice(0, this.maxNodes)
      this.sinceMs = now
      this.retries = 0
    }
    return started.length
  }

  /** The tunnel's tick: nodes still without a cached key are asked again when a retry is due. */
  tick(now: number): void {
    if (this.retries >= PREFETCH_RETRY_MS.length || now - this.sinceMs < PREFETCH_RETRY_MS[this.retries]!) return
    this.retries++
    for (const nodeId of this.nodes) {
      if (!this.port.hasPeer(nodeId) && !this.port.knowsKey(nodeId)) this.port.fetch(nodeId)
    }
    if (this.retries >= PREFETCH_RETRY_MS.length) this.nodes = []
  }

  /** Nodes waiting for a retry (tests, diagnostics). */
  get pending(): number {
    return this.retries < PREFETCH_RETRY_MS.length ? this.nodes.length : 0
  }

  forget(nodeId: number): void {
    this.nodes = this.nodes.filter((n) => n !== nodeId)
  }
}
