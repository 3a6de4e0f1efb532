/** What a beacon counts: messages by type, drops by reason, state sizes and relayed traffic. */

/** Why a datagram, or the claim in it, was not acted on. Stable strings: tests and dashboards key on them. */
export const BEACON_DROP_REASONS = [
  'empty',
  /** A Discover, PunchRequest or Relay too short for its layout. */
  'malformed',
  'rate-limited-control',
  'rate-limited-relay',
  /** DiscoverReply, PunchCommand or RelayDeliver: beacon → daemon messages sent to us. */
  'not-for-beacon',
  /** Sync (0x07) at a beacon with no peers configured (standalone). */
  'sync-unsupported',
  /** Sync, PeerPunch or PeerPunchReply from an endpoint that is not a peer beacon (docs/wire.md §9.7). */
  'not-a-peer',
  /** A Sync carrying our own beacon ID (a peer list that names ourselves). */
  'sync-from-self',
  /** A Sync naming more node IDs than one peer may hand us (the rest ignored). */
  'sync-truncated',
  /** First byte ≥ 0x10: a tunnel frame (PILS, PILP, ...) or garbage. */
  'tunnel-frame',
  /** A type byte < 0x10 that is not a beacon message. */
  'unknown-type',
  /** The source address has no 4- or 16-byte form (zone-scoped IPv6). */
  'bad-source-address',
  'punch-bad-requester',
  'punch-unknown-target',
  'punch-self',
  /** Relay whose sender ID has no live entry (never discovered, expired, or the beacon restarted). */
  'relay-unknown-sender',
  /** Relay whose sender ID last discovered from another endpoint (docs/wire.md §17 item 12). */
  'spoofed-relay',
  /**
   * Discover or PunchRequest naming a node ID that a live entry holds at another endpoint:
   * the claim is not recorded (a Discover is still answered with the sender's endpoint).
   */
  'node-id-held',
  /** A new node ID while the table is full of nodes seen within `evictableAfterMs`. */
  'table-full',
  'relay-unknown-dest',
  /** A bug: an unexpected exception in the handler (logged). */
  'internal-error',
] as const
export type BeaconDropReason = (typeof BEACON_DROP_REASONS)[number]

export interface BeaconReceivedCounts {
  discover: number
  discoverReply: number
  punchRequest: number
  punchCommand: number
  relay: number
  relayDeliver: number
  sync: number
  /** PeerPunch and PeerPunchReply (0x0B, 0x0C). */
  peerPunch: number
  /** Not a beacon message type. */
  other: number
}

export interface BeaconSentCounts {
  discoverReply: number
  punchCommand: number
  relayDeliver: number
  /** Sync datagrams sent to peer beacons. */
  sync: number
  /** PeerPunch and PeerPunchReply sent to peer beacons. */
  peerPunch: number
}

export interface BeaconStats {
  datagrams: number
  received: BeaconReceivedCounts
  sent: BeaconSentCounts
  dropped: Record<BeaconDropReason, number>
  /** Nodes currently remembered, and how many left by eviction (table full) or expiry. */
  nodes: number
  nodesEvicted: number
  nodesExpired: number
  /** Source IPs with a rate-limit bucket, and how many buckets were evicted because the table was full. */
  sources: number
  sourcesEvicted: number
  /** Frames relayed and their bytes (the inner frame, without beacon headers). */
  relayedPackets: number
  relayedBytes: number
  /** With peer beacons configured: our ID, the peers, the node IDs learned from them, Relays forwarded to them. */
  cluster: { beaconId: number; peers: number; learnedNodes: number; forwardedRelays: number } | null
}

/** The mutable counters a server keeps; `stats()` copies them. Every field exists from the start (stable shape). */
export class BeaconCounters {
  datagrams = 0
  readonly received: BeaconReceivedCounts = {
    discover: 0,
    discoverReply: 0,
    punchRequest: 0,
    punchCommand: 0,
    relay: 0,
    relayDeliver: 0,
    sync: 0,
    peerPunch: 0,
    other: 0,
  }
  readonly sent: BeaconSentCounts = { discoverReply: 0, punchCommand: 0, relayDeliver: 0, sync: 0, peerPunch: 0 }
  readonly dropped = Object.fromEntries(BEACON_DROP_REASONS.map((r) => [r, 0])) as Record<BeaconDropReason, number>
  relayedPackets = 0
  relayedBytes = 0
  forwardedRelays = 0
}
