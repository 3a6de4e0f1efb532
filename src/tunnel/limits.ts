/**
 * How much a stranger can make the tunnel hold or do. Each bound is a count (times are in
 * timing.ts); `TunnelOptions.limits` overrides them, so tests can use small ones. Whatever
 * passes a bound is a drop reason (stats.ts), never an error.
 */
export interface TunnelLimits {
  /**
   * Peers held at once. A new peer past this evicts the one idle longest; what must outlive it
   * (its key and replay state) goes to the forgotten-peer table below.
   */
  maxPeers: number
  /**
   * Removed peers (idle, evicted, forgotten) whose last X25519 key, replay windows and retired
   * keys are kept, so their old frames replayed later still do not open or are refused. Past
   * this the oldest is dropped and our key pair rotates: frames sealed for it no longer open.
   */
  maxForgottenPeers: number
  /** A peer's previous X25519 keys remembered; a PILA carrying one is refused (`pila-retired-key`). */
  retiredKeysPerPeer: number
  /** Registry key lookups in flight, every cause together. */
  maxKeyLookups: number
  /**
   * Of those, lookups caused by what strangers send (a PILA from a sender whose key is not
   * cached, a recovery answer): the rest stays free for the peers we send to.
   */
  maxRemoteKeyLookups: number
  /** Per source IP (relayed frames count as one source), PILA-caused lookups: a token bucket's burst ... */
  lookupBurstPerSource: number
  /** ... and its refill, per second. */
  lookupsPerSecondPerSource: number
  /** Source IPs with a lookup bucket (oldest forgotten). */
  maxLookupSources: number
  /** Registered keys cached (oldest forgotten). */
  maxCachedKeys: number
  /** Node IDs remembered as having no registered key, for `negativeKeyCacheMs` (oldest forgotten). */
  maxUnknownKeys: number
  /** PunchCommands answered (3 PILP and our PILA each), all targets together: a token bucket's burst ... */
  punchBurst: number
  /** ... and its refill, per second. */
  punchesPerSecond: number
  /** Target endpoints remembered for the per-target limit (`punchTargetIntervalMs`). */
  maxPunchTargets: number
}

export const DEFAULT_LIMITS: Readonly<TunnelLimits> = Object.freeze({
  maxPeers: 4_096,
  maxForgottenPeers: 4_096,
  retiredKeysPerPeer: 8,
  maxKeyLookups: 64,
  maxRemoteKeyLookups: 32,
  lookupBurstPerSource: 8,
  lookupsPerSecondPerSource: 2,
  maxLookupSources: 1_024,
  maxCachedKeys: 4_096,
  maxUnknownKeys: 4_096,
  punchBurst: 32,
  punchesPerSecond: 16,
  maxPunchTargets: 1_024,
})
