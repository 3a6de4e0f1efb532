/**
 * Timing knobs and the clock/timer edge of the tunnel. Everything runs off one
 * periodic tick (undici habit: one coarse timer, no timer per peer or packet);
 * the clock is injected so tests can run fast with short intervals.
 */
export interface TunnelTiming {
  /** Period of the housekeeping tick. */
  tickMs: number
  /** No authenticated direct frame this long after set-up began → relay (Go waits ≈ 7 s). */
  relayAfterMs: number
  /** First interval between direct probes while a peer is on relay; doubles up to `probeMaxMs`. */
  probeIntervalMs: number
  probeMaxMs: number
  /** Beacon Discover (NAT keepalive) period; Go re-sends every 30 s, we stay under 25 s. */
  beaconKeepaliveMs: number
  /** Our key frame is re-sent this often while a peer has packets queued and no keys. */
  keyRetryMs: number
  /** A registry key refetch (after a mismatching PILA) happens at most this often per node. */
  keyRefetchMs: number
  /** How long "no key registered" is remembered. */
  negativeKeyCacheMs: number
  /** A PunchCommand is matched to peers whose PunchRequest is at most this old. */
  punchMatchMs: number
  /** With a direct path, this long with our PILS unanswered by any direct authenticated frame → back to relay. */
  directStaleMs: number
  /**
   * Our PILS unanswered by any authenticated frame this long → our key frame goes out again on the
   * peer's path, then at most this often while the silence lasts. The peer may have restarted and
   * lost our key (Go then drops our PILS without a word, docs/wire.md §5.10); our PILA makes it derive
   * a session and answer with its own, new key.
   */
  silenceRekeyMs: number
  /**
   * Recovery key frames (our PILA answering a PILS we cannot open: no session, or repeated
   * authentication failures) go to one node ID, and to one source host, at most this often.
   */
  recoveryIntervalMs: number
  /**
   * A peer with nothing sent or received for this long is removed (its key and replay state
   * kept in the forgotten-peer table, limits.ts); the next packet either way sets it up again.
   */
  peerIdleMs: number
  /** PunchCommands towards one target endpoint are answered at most once per this. */
  punchTargetIntervalMs: number
}

export const DEFAULT_TIMING: Readonly<TunnelTiming> = Object.freeze({
  tickMs: 100,
  relayAfterMs: 1_500,
  probeIntervalMs: 5_000,
  probeMaxMs: 30_000,
  beaconKeepaliveMs: 20_000,
  keyRetryMs: 1_000,
  keyRefetchMs: 10_000,
  negativeKeyCacheMs: 5_000,
  punchMatchMs: 10_000,
  directStaleMs: 15_000,
  silenceRekeyMs: 2_000,
  recoveryIntervalMs: 1_000,
  peerIdleMs: 600_000,
  punchTargetIntervalMs: 1_000,
})

/** Timer edge: swap in a fake for deterministic tests; defaults to the global timers. */
export interface TunnelScheduler {
  now(): number
  setInterval(fn: () => void, ms: number): unknown
  clearInterval(handle: unknown): void
}

export const systemScheduler: TunnelScheduler = {
  now: () => performance.now(),
  setInterval: (fn, ms) => setInterval(fn, ms),
  clearInterval: (h) => clearInterval(h as NodeJS.Timeout),
}
