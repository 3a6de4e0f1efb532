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
  /**
   * The endpoint a resolve last answered for `nodeId`, however old, without asking (null if
   * none). Optional: a new peer's first key frame goes there at once while the resolve runs.
   */
  lastKnownEndpoint?(nodeId: number): UdpEndpoint | null
  /** Optional: forget cached answers for `nodeId` (a prefetch's "no key" must not answer its first PILA). */
  invalidate?(nodeId: number): void
}
