/**
 * Bounds on what one beacon will remember and do. The reference keeps every
 * node forever, lets any Discover move any node and relays for anyone
 * (docs/wire.md §9.2, §17 item 12); these caps keep memory and bandwidth bounded
 * under floods and bound how long an endpoint holds a node ID.
 */
import { BeaconError, BeaconErrorCode } from './errors.js'

export interface BeaconLimits {
  /** Nodes remembered at most; the least recently seen one is evicted first (see `evictableAfterMs`). */
  maxNodes: number
  /**
   * A node is forgotten this long after its last Discover/PunchRequest from the endpoint that
   * holds its ID (pilot-tun daemons send one every 20 s, Go daemons every 30 s). Until then a
   * Discover for that ID from any other endpoint is ignored (docs/wire.md §17 item 12): nothing
   * in a Discover is signed, so the first endpoint keeps the ID. The price is NAT rebinding: a
   * node whose public endpoint changes gets relayed traffic at the new one only once the old
   * entry expires, so this is kept short — 90 s is three Go refresh periods, and a lost
   * Discover or two does not drop a live node.
   */
  nodeTtlMs: number
  /**
   * A full table evicts its least recently seen node only if that node has been silent this
   * long; otherwise the newcomer is refused (`table-full`). A flood of fresh IDs thus cannot
   * push out a live node (refreshed every 20–30 s) and free its ID for the flooder to claim.
   */
  evictableAfterMs: number
  /** Source IPs with a rate-limit bucket at most; the least recently active one is evicted first. */
  maxSources: number
  /** Control messages (everything but Relay) per source IP: sustained rate and burst. */
  controlPerSecond: number
  controlBurst: number
  /** Relay datagrams per source IP. */
  relayPacketsPerSecond: number
  relayPacketBurst: number
  /** Relay bytes (whole datagrams) per source IP. A datagram larger than the burst is never relayed. */
  relayBytesPerSecond: number
  relayByteBurst: number
}

export const DEFAULT_BEACON_LIMITS: Readonly<BeaconLimits> = Object.freeze({
  maxNodes: 100_000,
  nodeTtlMs: 90_000,
  evictableAfterMs: 60_000,
  maxSources: 65_536,
  // Many daemons can share one public IP behind a NAT, so the control budget is generous.
  controlPerSecond: 50,
  controlBurst: 200,
  relayPacketsPerSecond: 20_000,
  relayPacketBurst: 40_000,
  relayBytesPerSecond: 32 * 1024 * 1024,
  relayByteBurst: 64 * 1024 * 1024,
})

/** Defaults overlaid with `partial`; throws `PT_BEACON_INVALID_LIMITS` on a non-positive or non-finite value. */
export function resolveBeaconLimits(partial: Partial<BeaconLimits> = {}): BeaconLimits {
  const limits: BeaconLimits = { ...DEFAULT_BEACON_LIMITS }
  for (const key of Object.keys(DEFAULT_BEACON_LIMITS) as Array<keyof BeaconLimits>) {
    const v = partial[key]
    if (v === undefined) continue
    if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) {
      throw new BeaconError(BeaconErrorCode.INVALID_LIMITS, `beacon limit ${key} must be a positive number, got ${String(v)}`)
    }
    limits[key] = v
  }
  for (const key of ['maxNodes', 'maxSources'] as const) {
    if (!Number.isInteger(limits[key])) {
      throw new BeaconError(BeaconErrorCode.INVALID_LIMITS, `beacon limit ${key} must be an integer, got ${limits[key]}`)
    }
  }
  return limits
}
