/**
 * Tunnel counters. A bad or unwanted datagram is counted under one stable
 * reason and dropped; nothing on the receive path throws (docs/design.md "Edges own I/O").
 */

/** Every reason a datagram (or an outgoing packet) is dropped. Stable strings: logs and tests key on them. */
export const DROP_REASONS = [
  'empty', // zero-length datagram
  'short', // shorter than a magic, or a frame shorter than its layout
  'unknown-magic',
  'beacon-spoofed', // beacon message not from the configured beacon endpoint
  'beacon-malformed',
  'beacon-unexpected', // a beacon type a daemon never receives (Discover, Relay, Sync)
  'relay-malformed',
  'relay-nested', // RelayDeliver carrying a beacon message or another relay frame
  'relay-sender-mismatch', // inner frame's sender differs from the RelayDeliver sender
  'self', // a frame claiming to come from our own node ID
  'no-session', // PILS from a node we have no keys for
  'replay', // nonce already seen, or too old
  'auth-failed', // AEAD open failed with every allowed variant
  'bad-packet', // decrypted bytes are no valid packet (length, CRC)
  'source-mismatch', // inner source node differs from the PILS sender ID
  'plaintext-refused', // PILT: never accepted
  'pilk-refused', // PILK: anonymous keys are never accepted
  'pila-unknown-key', // registry has no key for the sender
  'pila-key-mismatch', // the frame's Ed25519 key is not the registered one
  'pila-bad-signature',
  'pila-bad-key', // X25519 key of low order (all-zero shared secret)
  'pila-retired-key', // a signed PILA carrying one of the peer's previous X25519 keys (a replay)
  'lookup-busy', // too many registry lookups in flight
  'lookup-limited', // a PILA needing a registry lookup, over its source's rate limit
  'punch-limited', // a PunchCommand over the per-target or global rate limit, not answered
  'unregistered-peer', // outgoing packet to a node the registry has no key for (no peer kept)
  'peer-expired', // outgoing packet still queued when its peer was removed (idle, evicted at the cap, forgotten)
  'queue-overflow', // outgoing packet dropped: a peer's queue was full (oldest dropped)
  'queue-limit', // outgoing packet dropped: too many peers already have queues
  'no-path', // outgoing frame with neither endpoint nor beacon
  'bad-outgoing', // send() given something that is not a packet
  'internal-error', // an exception caught in the receive handler (a bug: should stay 0)
] as const
export type DropReason = (typeof DROP_REASONS)[number]

export type DropCounters = Record<DropReason, number>

export function newDropCounters(): DropCounters {
  const c = {} as DropCounters
  for (const r of DROP_REASONS) c[r] = 0
  return c
}

export interface TunnelStats {
  drops: DropCounters
  /** PILP frames received (ignored, like Go). */
  punchesReceived: number
  punchCommands: number
  relayDelivers: number
  keyFramesSent: number
  keyFramesAccepted: number
  packetsIn: number
  packetsOut: number
  /** Times our X25519 key pair was replaced because a nonce sequence neared its limit. */
  keyRotations: number
  /** Our PILA sent back for a PILS we could not open (no session, or repeated authentication failures). */
  recoveryKeyFramesSent: number
  /** Such answers withheld by the rate limit. */
  recoveryRateLimited: number
  /** Peers removed after `peerIdleMs` without traffic. */
  peersExpired: number
  /** Peers removed to make room for a new one at `maxPeers`. */
  peersEvicted: number
}

/** Everything in `TunnelStats` but the drops: one object per tunnel, counted into by its pieces. */
export type TunnelCounters = Omit<TunnelStats, 'drops'>

export function newTunnelCounters(): TunnelCounters {
  return {
    punchesReceived: 0,
    punchCommands: 0,
    relayDelivers: 0,
    keyFramesSent: 0,
    keyFramesAccepted: 0,
    packetsIn: 0,
    packetsOut: 0,
    keyRotations: 0,
    recoveryKeyFramesSent: 0,
    recoveryRateLimited: 0,
    peersExpired: 0,
    peersEvicted: 0,
  }
}
