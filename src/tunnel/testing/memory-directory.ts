/** In-memory `PeerDirectory` for tests: keys and endpoints set by hand, calls counted. */
import type { UdpEndpoint } from '../bind.js'
import type { PeerDirectory } from '../peer-directory.js'

export class MemoryPeerDirectory implements PeerDirectory {
  private readonly keys = new Map<number, Uint8Array>()
  private readonly endpoints = new Map<number, UdpEndpoint>()
  lookups = 0
  resolves = 0

  setKey(nodeId: number, key: Uint8Array | null): this {
    if (key === null) this.keys.delete(nodeId)
    else this.keys.set(nodeId, Uint8Array.from(key))
    return this
  }

  setEndpoint(nodeId: number, endpoint: UdpEndpoint | null): this {
    if (endpoint === null) this.endpoints.delete(nodeId)
    else this.endpoints.set(nodeId, { host: endpoint.host, port: endpoint.port })
    return this
  }

  lookupKey(nodeId: number): Promise<Uint8Array | null> {
    this.lookups++
    const k = this.keys.get(nodeId)
    return Promise.resolve(k === undefined ? null : Uint8Array.from(k))
  }

  resolveEndpoint(nodeId: number): Promise<UdpEndpoint | null> {
    this.resolves++
    return Promise.resolve(this.endpoints.get(nodeId) ?? null)
  }
}
