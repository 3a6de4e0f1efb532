/**
 * What the tunnel needs from the registry. The daemon implements it with the
 * registry client (`lookup` for keys, `resolve` for endpoints); tests use
 * `MemoryPeerDirectory` (testing/memory-directory.ts).
 *
 * Both calls are control plane: the tunnel calls them once per new peer (and
 * `lookupKey` again at most once per re-fetch interval when a PILA carries a
 * key that differs from the cached one), never per packet.
 */
import type { UdpEndpoint } from './bind.js'

export interface PeerDirectory {
  /** The Ed25519 public key (32 bytes) registered for `nodeId`, or null if none. */
  lookupKey(nodeId: number): Promise<Uint8Array | null>
  /** The node's public UDP endpoint when the registry reveals it to us, else null. */
  resolveEndpoint(nodeId: number): Promise<UdpEndpoint | null>
}
