/**
 * `PacketBind`: the one UDP socket of a daemon (or a beacon), as an edge
 * interface with an in-memory twin beside it (testing/memory-bind.ts), after
 * wireguard-go's conn.Bind. Everything above it sends and receives datagrams
 * through this interface only.
 */
import dgram from 'node:dgram'
import { isIPv6 } from 'node:net'
import { PilotError } from '../errors.js'
import { loadDatapathAddon, type DatapathAddon, type NativeReceiverHandle } from '../native-datapath.js'
import { SendBatch } from './send-batch.js'

export interface UdpEndpoint {
  readonly host: string
  readonly port: number
}

/** Called once per received datagram. `data` is owned by the handler. */
export type DatagramHandler = (data: Buffer, host: string, port: number) => void

export interface BindStats {
  datagramsSent: number
  datagramsReceived: number
  bytesSent: number
  bytesReceived: number
  sendErrors: number
}

export interface PacketBind {
  /** The address and port actually bound. */
  readonly local: UdpEndpoint
  readonly stats: BindStats
  /**
   * Sends one datagram whose bytes are `parts` concatenated (gather send, no
   * copy). The bind takes ownership of `parts`: node's dgram reads them on a
   * later tick, so the caller must not modify them after this call.
   */
  send(parts: Uint8Array | readonly Uint8Array[], host: string, port: number): void
  /**
   * Optional: room for one datagram to host:port inside the bind's outgoing batch, for the caller
   * to fill before it yields (no allocation, no copy); null when the bind cannot (then `send`).
   */
  reserve?(length: number, host: string, port: number): Uint8Array | null
  /** Sets the receiver; one per bind. */
  onDatagram(handler: DatagramHandler): void
  close(): Promise<void>
}

export function newBindStats(): BindStats {
  return { datagramsSent: 0, datagramsReceived: 0, bytesSent: 0, bytesReceived: 0, sendErrors: 0 }
}

export interface UdpBindOptions {
  host?: string
  port?: number
  /** SO_RCVBUF request; the kernel caps it at net.core.rmem_max (reported in `bufferSizes`). */
  receiveBufferSize?: number
  sendBufferSize?: number
  /** Send through sendmmsg batches when the data-path addon loads (default true). */
  batchSends?: boolean
  /** UDP GSO for runs of equal-sized datagrams in a batch (default: on unless PILOT_UDP_GSO=0). */
  gso?: boolean
  /** Receive with recvmmsg (+ UDP GRO) from the addon instead of node's dgram (default true). */
  batchReceives?: boolean
}

/** Large buffers by default: the reference loses most of its throughput to receive-buffer overflow. */
const DEFAULT_SOCKET_BUFFER = 8 * 1024 * 1024

export class UdpBind implements PacketBind {
  readonly stats = newBindStats()
  private handler: DatagramHandler | null = null
  private closed = false
  /** Null without the addon (or with batchSends: false): every datagram is one dgram send. */
  readonly batch: SendBatch | null
  /** The addon's receiver when it reads the socket (then node's dgram does not). */
  private receiver: { addon: DatapathAddon; handle: NativeReceiverHandle; gro: boolean } | null = null

  private constructor(
    private readonly socket: dgram.Socket,
    readonly local: UdpEndpoint,
    batchSends: boolean,
    gso: boolean,
  ) {
    const addon = batchSends ? loadDatapathAddon() : null
    const fd = addon === null ? -1 : socketFd(socket)
    this.batch =
      addon === null || fd < 0
        ? null
        : new SendBatch({
            addon,
            fd,
            gso,
            fallback: (frame, host, port) => this.socket.send(frame, port, host),
            onRefused: (n) => {
              this.stats.sendErrors += n
            },
          })
    socket.on('message', (msg, rinfo) => {
      this.stats.datagramsReceived++
      this.stats.bytesReceived += msg.length
      this.handler?.(msg, rinfo.address, rinfo.port)
    })
    // Send failures (unreachable, no route) arrive here when send() has no callback.
    socket.on('error', () => {
      this.stats.sendErrors++
    })
  }

  static async open(opts: UdpBindOptions = {}): Promise<UdpBind> {
    const host = opts.host ?? '0.0.0.0'
    const socket = dgram.createSocket({ type: isIPv6(host) ? 'udp6' : 'udp4', reuseAddr: false })
    await new Promise<void>((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException) => {
        reject(
          new PilotError('PT_TUNNEL_BIND_FAILED', `cannot bind UDP ${host}:${opts.port ?? 0}: ${err.message}`, {
            hint: err.code === 'EADDRINUSE' ? 'another process uses this port; pick another with --listen' : undefined,
            cause: err,
          }),
        )
      }
      socket.once('error', onError)
      socket.bind(opts.port ?? 0, host, () => {
        socket.off('error', onError)
        resolve()
      })
    })
    trySetBuffers(socket, opts.receiveBufferSize ?? DEFAULT_SOCKET_BUFFER, opts.sendBufferSize ?? DEFAULT_SOCKET_BUFFER)
    const a = socket.address()
    const bind = new UdpBind(socket, { host: a.address, port: a.port }, opts.batchSends ?? true, opts.gso ?? process.env.PILOT_UDP_GSO !== '0')
    if (opts.batchReceives ?? true) bind.startNativeReceive()
    return bind
  }

  /** How datagrams leave: sendmmsg batches (with GSO while the kernel takes it) or dgram. */
  get sendPath(): 'dgram' | 'sendmmsg' | 'sendmmsg+gso' {
    return this.batch === null ? 'dgram' : this.batch.stats.gso ? 'sendmmsg+gso' : 'sendmmsg'
  }

  /** Whether datagrams come in through the addon, and whether the kernel coalesces them (GRO). */
  get receivePath(): 'dgram' | 'recvmmsg' | 'recvmmsg+gro' {
    return this.receiver === null ? 'dgram' : this.receiver.gro ? 'recvmmsg+gro' : 'recvmmsg'
  }

  /**
   * Moves reading from node's dgram to the addon: node's handle stops reading (its internal
   * recvStop; without it nothing changes) and the addon reads a dup of the fd on this loop.
   */
  private startNativeReceive(): void {
    const addon = loadDatapathAddon()
    const fd = addon === null ? -1 : socketFd(this.socket)
    const handle = udpHandle(this.socket)
    if (addon === null || fd < 0 || typeof handle?.recvStop !== 'function' || typeof addon.udpRecvStart !== 'function') return
    const started = addon.udpRecvStart(fd, (block, count, hosts) => this.onBatch(block, count, hosts), { batch: 32, rounds: 4 })
    if (handle.recvStop() !== 0) {
      addon.udpRecvStop(started.handle)
      return
    }
    this.receiver = { addon, handle: started.handle, gro: started.gro }
  }

  /** JS calls the native receiver made (each carries one recvmmsg round). */
  receiveCalls = 0

  private onBatch(block: ArrayBuffer, count: number, hosts: string[]): void {
    this.receiveCalls++
    const meta = new Uint32Array(block, 0, count * 4)
    const stats = this.stats
    for (let i = 0; i < count; i++) {
      const len = meta[i * 4 + 1]!
      stats.datagramsReceived++
      stats.bytesReceived += len
      const handler = this.handler
      if (handler === null || this.closed) continue
      try {
        handler(Buffer.from(block, meta[i * 4]!, len), hosts[meta[i * 4 + 2]!]!, meta[i * 4 + 3]!)
      } catch (err) {
        // A handler bug must not lose the rest of the batch; surface it as dgram would.
        queueMicrotask(() => {
          throw err
        })
      }
    }
  }

  /** What the kernel actually granted (Linux reports double the requested value). */
  bufferSizes(): { receive: number; send: number } {
    return { receive: this.socket.getRecvBufferSize(), send: this.socket.getSendBufferSize() }
  }

  send(parts: Uint8Array | readonly Uint8Array[], host: string, port: number): void {
    if (this.closed) return
    let n = 0
    if (Array.isArray(parts)) for (const p of parts as readonly Uint8Array[]) n += p.length
    else n = (parts as Uint8Array).length
    this.stats.datagramsSent++
    this.stats.bytesSent += n
    if (this.batch !== null && this.batch.add(parts, n, host, port)) return
    this.socket.send(parts as Uint8Array | Uint8Array[], port, host)
  }

  reserve(length: number, host: string, port: number): Uint8Array | null {
    if (this.closed || this.batch === null) return null
    const room = this.batch.reserve(length, host, port)
    if (room !== null) {
      this.stats.datagramsSent++
      this.stats.bytesSent += length
    }
    return room
  }

  onDatagram(handler: DatagramHandler): void {
    this.handler = handler
  }

  close(): Promise<void> {
    if (this.closed) return Promise.resolve()
    this.batch?.flush()
    this.closed = true
    const receiver = this.receiver
    this.receiver = null
    // Both the dup and node's fd must be closed before the port is free again.
    const dupClosed = receiver === null ? Promise.resolve() : new Promise<void>((resolve) => receiver.addon.udpRecvStop(receiver.handle, resolve))
    return Promise.all([dupClosed, new Promise<void>((resolve) => this.socket.close(() => resolve()))]).then(() => undefined)
  }
}

/**
 * The socket's file descriptor, for sendmmsg from the addon; -1 when node does not show it.
 * Node keeps the UDP handle under an internal symbol; its `fd` getter is public on Unix.
 */
function socketFd(socket: dgram.Socket): number {
  const fd = udpHandle(socket)?.fd
  return typeof fd === 'number' ? fd : -1
}

/** Node's UDP handle (internal): its public-on-Unix `fd` and `recvStop()`. */
function udpHandle(socket: dgram.Socket): { fd?: unknown; recvStop?: () => number } | undefined {
  const state = Object.getOwnPropertySymbols(socket).find((s) => s.description === 'state symbol')
  if (state === undefined) return undefined
  return (socket as unknown as Record<symbol, { handle?: { fd?: unknown; recvStop?: () => number } } | undefined>)[state]?.handle
}

function trySetBuffers(socket: dgram.Socket, recv: number, send: number): void {
  // Above rmem_max the kernel silently caps; a failure here is not fatal.
  try {
    socket.setRecvBufferSize(recv)
  } catch {
    /* keep the default */
  }
  try {
    socket.setSendBufferSize(send)
  } catch {
    /* keep the default */
  }
}
