/**
 * In-memory twin of `UdpBind`: a `MemoryNetwork` of binds on made-up
 * addresses. Delivery is asynchronous (setImmediate), like a real socket, and
 * each receiver gets its own copy of the bytes. Tests drop traffic with
 * `setFilter` (e.g. block the direct path between two nodes to force relay).
 */
import { newBindStats, type DatagramHandler, type PacketBind, type UdpEndpoint } from '../bind.js'
import { PilotError } from '../../errors.js'

/** Returns false to drop the datagram. */
export type MemoryFilter = (from: UdpEndpoint, to: UdpEndpoint, data: Uint8Array) => boolean

export class MemoryNetwork {
  private readonly binds = new Map<string, MemoryBind>()
  private nextPort = 40000
  private filter: MemoryFilter | null = null
  delivered = 0
  dropped = 0

  /** Binds `host:port` (port 0 = pick one). */
  bind(host: string, port = 0): MemoryBind {
    const p = port === 0 ? this.nextPort++ : port
    const key = `${host}:${p}`
    if (this.binds.has(key)) throw new PilotError('PT_TUNNEL_BIND_FAILED', `memory bind ${key} is in use`)
    const b = new MemoryBind(this, { host, port: p })
    this.binds.set(key, b)
    return b
  }

  setFilter(filter: MemoryFilter | null): void {
    this.filter = filter
  }

  /** @internal */
  unbind(b: MemoryBind): void {
    this.binds.delete(`${b.local.host}:${b.local.port}`)
  }

  /** @internal */
  deliver(from: UdpEndpoint, host: string, port: number, data: Uint8Array): void {
    const to = { host, port }
    if (this.filter && !this.filter(from, to, data)) {
      this.dropped++
      return
    }
    const target = this.binds.get(`${host}:${port}`)
    if (!target) {
      this.dropped++
      return
    }
    const copy = Buffer.from(data)
    setImmediate(() => {
      this.delivered++
      target.receive(copy, from)
    })
  }
}

export class MemoryBind implements PacketBind {
  readonly stats = newBindStats()
  private handler: DatagramHandler | null = null
  private closed = false

  constructor(
    private readonly network: MemoryNetwork,
    readonly local: UdpEndpoint,
  ) {}

  send(parts: Uint8Array | readonly Uint8Array[], host: string, port: number): void {
    if (this.closed) return
    const data = Array.isArray(parts) ? Buffer.concat(parts as readonly Uint8Array[]) : (parts as Uint8Array)
    this.stats.datagramsSent++
    this.stats.bytesSent += data.length
    this.network.deliver(this.local, host, port, data)
  }

  onDatagram(handler: DatagramHandler): void {
    this.handler = handler
  }

  /** @internal */
  receive(data: Buffer, from: UdpEndpoint): void {
    if (this.closed) return
    this.stats.datagramsReceived++
    this.stats.bytesReceived += data.length
    this.handler?.(data, from.host, from.port)
  }

  close(): Promise<void> {
    this.closed = true
    this.network.unbind(this)
    return Promise.resolve()
  }
}
