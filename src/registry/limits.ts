/** Tunables of the registry server; defaults are the Go reference's (docs/wire.md §18) unless noted. */
import { REGISTRY_MAX_MESSAGE } from '../protocol/registry-framing.js'

export interface RegistryLimits {
  /** Registrations of unknown keys per source IP per minute. */
  registrationsPerMinute: number
  /** update/set_polo_score per source IP per minute (ours: Go has no limit). */
  scoreChangesPerMinute: number
  /** beacon_register per source IP per minute (ours: Go has no limit). */
  beaconRegistrationsPerMinute: number
  /** A node without heartbeat for this long goes offline. */
  staleAfterMs: number
  /** How often the reaper looks for stale nodes. */
  reapIntervalMs: number
  /** A connection without a request for this long is closed. */
  idleTimeoutMs: number
  /** Unpolled handshake requests per target. */
  handshakeInboxSize: number
  /** Beacons not heard from for this long are not listed. */
  beaconTtlMs: number
  /** Polled handshake requests that were never answered are forgotten after this long (ours). */
  unansweredRequestTtlMs: number
  /** Simultaneous TCP connections (ours). */
  maxConnections: number
  /**
   * Simultaneous connections from one source (an IPv4 address, or an IPv6 /64), ours: a
   * daemon keeps one, so 64 leaves room for a NAT full of them while one host cannot take
   * all `maxConnections`. Extra connections are closed as soon as they are accepted.
   */
  maxConnectionsPerIp: number
  /**
   * A frame must be complete this long after its first byte arrived, or the connection is
   * closed (ours). Separate from the idle limit, which every trickled byte would reset: a
   * client sending one byte at a time could otherwise hold a connection for ever. A real
   * request is a few hundred bytes sent at once; even a 1 MiB one needs only 100 KiB/s.
   */
  frameDeadlineMs: number
  /**
   * Bytes of partly received frames held across all connections (ours). Without it,
   * `maxConnections` connections each holding most of a `maxMessageSize` frame would pin
   * 4 GiB. When the total passes this, the connection holding the most is closed.
   */
  maxBufferedFrameBytes: number
  /** Largest JSON body in either direction. */
  maxMessageSize: number
}

export const DEFAULT_REGISTRY_LIMITS: Readonly<RegistryLimits> = Object.freeze({
  registrationsPerMinute: 10,
  scoreChangesPerMinute: 60,
  beaconRegistrationsPerMinute: 30,
  staleAfterMs: 3 * 60_000,
  reapIntervalMs: 60_000,
  idleTimeoutMs: 5 * 60_000,
  handshakeInboxSize: 100,
  beaconTtlMs: 60_000,
  unansweredRequestTtlMs: 7 * 24 * 3600_000,
  maxConnections: 4096,
  maxConnectionsPerIp: 64,
  frameDeadlineMs: 10_000,
  maxBufferedFrameBytes: 64 * 1024 * 1024,
  maxMessageSize: REGISTRY_MAX_MESSAGE,
})
