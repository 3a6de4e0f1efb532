/**
 * A NAT in front of one socket on a MemoryNetwork, for end-to-end netcheck
 * tests without root: RFC 4787 mapping and filtering behaviours, chosen
 * separately. The inside socket is a PacketBind whose datagrams leave from
 * public binds on `wanHost`; each public bind remembers whom it sent to, and
 * the filtering decides which senders it lets back in.
 */
import { newBindStats, type DatagramHandler, type PacketBind, type UdpEndpoint } from '../../src/tunnel/bind.js'
import type { MemoryBind, MemoryNetwork } from '../../src/tunnel/testing/memory-bind.js'

export type Dependence = 'endpoint-independent' | 'address-dependent' | 'address-and-port-dependent'

export interface NatBehaviour {
  mapping: Dependence
  filtering: Dependence
}

export const NAT_BEHAVIOURS = {
  'full-cone': { mapping: 'endpoint-independent', filtering: 'endpoint-independent' },
  'restricted-cone': { mapping: 'endpoint-independent', filtering: 'address-dependent' },
  'port-restricted-cone': { mapping: 'endpoint-independent', filtering: 'address-and-port-dependent' },
  symmetric: { mapping: 'address-and-port-dependent', filtering: 'address-and-port-dependent' },
} as const satisfies Record<string, NatBehaviour>

interface Mapping {
  bind: MemoryBind
  contacted: Set<string>
}

export class MemoryNatBind implements PacketBind {
  readonly stats = newBindStats()
  readonly local: UdpEndpoint
  /** Datagrams the filtering stopped. */
  filtered = 0
  private readonly mappings = new Map<string, Mapping>()
  private handler: DatagramHandler | null = null
  private nextPort: number

  constructor(
    private readonly net: MemoryNetwork,
    private readonly wanHost: string,
    private readonly behaviour: NatBehaviour,
    local: UdpEndpoint = { host: '10.0.0.2', port: 4000 },
  ) {
    this.local = local
    // A cone keeps the inside port, as the test bed's full-cone rule and masquerade do.
    this.nextPort = behaviour.mapping === 'endpoint-independent' ? local.port : 20000
  }

  send(parts: Uint8Array | readonly Uint8Array[], host: string, port: number): void {
    const key = this.key(this.behaviour.mapping, host, port)
    let m = this.mappings.get(key)
    if (m === undefined) {
      const bind = this.net.bind(this.wanHost, this.nextPort++)
      const mapping: Mapping = { bind, contacted: new Set() }
      bind.onDatagram((data, h, p) => this.inbound(mapping, data, h, p))
      this.mappings.set(key, mapping)
      m = mapping
    }
    m.contacted.add(this.key(this.behaviour.filtering, host, port))
    m.bind.send(parts, host, port)
  }

  onDatagram(handler: DatagramHandler): void {
    this.handler = handler
  }

  async close(): Promise<void> {
    await Promise.all([...this.mappings.values()].map((m) => m.bind.close()))
  }

  private inbound(m: Mapping, data: Buffer, host: string, port: number): void {
    if (this.behaviour.filtering !== 'endpoint-independent' && !m.contacted.has(this.key(this.behaviour.filtering, host, port))) {
      this.filtered++
      return
    }
    this.handler?.(data, host, port)
  }

  private key(d: Dependence, host: string, port: number): string {
    return d === 'endpoint-independent' ? '*' : d === 'address-dependent' ? host : `${host}:${port}`
  }
}
