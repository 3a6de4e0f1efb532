/** Public API of tunnel/: the UDP bind, the tunnel engine and what it needs from the registry. */
export { UdpBind, type PacketBind, type UdpEndpoint, type BindStats, type DatagramHandler } from './bind.js'
export { Tunnel, PILA_CAPABILITY_HKDF, type KdfMode, type TunnelOptions, type PacketHandler, type PathChangeHandler } from './tunnel.js'
export type { PeerDirectory } from './peer-directory.js'
export type { PeerInfo, PathKind, PathChangeEvent } from './peer.js'
export { DROP_REASONS, type DropReason, type DropCounters, type TunnelStats } from './stats.js'
export { DEFAULT_TIMING, systemScheduler, type TunnelTiming, type TunnelScheduler } from './timing.js'
export { DEFAULT_LIMITS, type TunnelLimits } from './limits.js'
