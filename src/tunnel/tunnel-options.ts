/**
 * What a `Tunnel` is built from (every edge injected: bind, identity, directory,
 * clock, randomness, logger) and what it hands upwards.
 */
import type { Identity } from '../crypto/index.js'
import type { PacketHeader } from '../protocol/header.js'
import type { RandomSource } from '../random.js'
import type { Logger } from '../logger.js'
import type { PacketBind, UdpEndpoint } from './bind.js'
import type { PeerDirectory } from './peer-directory.js'
import type { KdfMode } from './kdf.js'
import type { TunnelScheduler, TunnelTiming } from './timing.js'
import type { TunnelLimits } from './limits.js'

export interface TunnelOptions {
  bind: PacketBind
  identity: Identity
  /** Our registered node ID (u32). */
  nodeId: number
  directory: PeerDirectory
  /** The beacon's UDP endpoint (an IP literal, as datagrams report it), or null for none. */
  beacon: UdpEndpoint | null
  kdf?: KdfMode
  random?: RandomSource
  logger?: Logger
  timing?: Partial<TunnelTiming>
  /** Bounds on peers, lookups and punches (limits.ts); the defaults fit a daemon. */
  limits?: Partial<TunnelLimits>
  scheduler?: TunnelScheduler
  /** Packets queued per peer while keys are missing (oldest dropped). Go: 64. */
  maxQueuedPerPeer?: number
  /** Peers that may hold a queue at once. Go: 256. */
  maxQueuedPeers?: number
  /** @deprecated use `timing.directStaleMs` (this one wins when both are given). */
  directStaleMs?: number
  /** Recovery key frames (our PILA answering PILS we cannot open) per second, all peers together. Default 20. */
  maxRecoveryPerSecond?: number
}

/**
 * Receives each decrypted, CRC-valid packet whose source node equals the
 * sender. `packet` is a view into the received datagram (owned by the
 * handler); `header` is a scratch object valid only during the call.
 */
export type PacketHandler = (packet: Buffer, peerNodeId: number, header: PacketHeader) => void
