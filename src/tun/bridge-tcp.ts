/**
 * TCP through the TUN for `TunBridge`: kernel TCP on both ends, reflected by
 * `TcpReflector` (see the comment at the top of reflector.ts), with the
 * byte streams spliced into Pilot streams here.
 *
 * OUTBOUND (a program on this host dials agent P:p from A:e):
 *   1. its SYN comes out of the TUN; we hold it (a copy) and open a Pilot
 *      stream to P's node, port p. Retransmitted SYNs are dropped meanwhile.
 *   2. connected: the held SYN goes through the reflector (R:x → A:L) and back
 *      into the TUN; the kernel completes the handshake with our listener on
 *      A:L, and from now on every packet of the flow is rewritten by the
 *      reflector without leaving the batch.
 *   3. accept: remote R:x → `lookupByReflectedPort(x)` → the held stream;
 *      socket ⇄ stream piped with back-pressure both ways, FIN ⇄ FIN,
 *      errors → RST on the other side.
 *   failed: refused by the peer → TCP RST to the program (ECONNREFUSED);
 *      no trust → ICMPv6 unreachable code 1 (EACCES); unreachable or
 *      unknown node → code 3 (EHOSTUNREACH). The program's connect() fails
 *      at once instead of hanging.
 *
 * INBOUND (agent P, port q, dials port p here): the daemon hands us SYNs to
 * ports it does not serve itself. `registerInbound` gives R:y; we connect a
 * socket from A to R:y, which the reflector turns into P:q → A:p, so the
 * local server sees the agent's mapped address. Connected → accept the Pilot
 * SYN and pipe; refused (nothing listens) or timed out → refuse (RST).
 *
 * The TUN bridge owns this object and is seen from here only as a
 * `TcpBridgeOutput` (queue a packet, answer with ICMPv6, count a drop); the
 * listener and the reflector are built before either bridge (bridge.ts,
 * `TunBridge.start`), and the held dials live in outbound-dials.ts.
 */
import { createServer, connect as netConnect, type Server, type Socket, type TcpNetConnectOpts } from 'node:net'
import type { Duplex } from 'node:stream'
import type { PilotAddress } from '../protocol/address.js'
import type { Logger } from '../logger.js'
import { IPV6_DST_OFFSET, Ipv6Packet, parseIpv6Into } from './packets/ipv6.js'
import { TCP_ACK, TCP_RST, TCP_SYN, checkTcp, writeRstReply } from './packets/tcp.js'
import { UNREACH_ADDRESS, UNREACH_ADMIN_PROHIBITED } from './packets/icmpv6.js'
import { ReflectAction, type TcpReflector } from './reflector.js'
import type { BridgeHost, IncomingStreamRequest } from './bridge-host.js'
import type { PeerAddressCache } from './peer-cache.js'
import { OutboundDials, type OutboundDial } from './outbound-dials.js'

export interface TcpBridgeStats {
  /** SYNs held while their Pilot stream opens. */
  outboundDials: number
  outboundConnected: number
  outboundRefused: number
  outboundUntrusted: number
  outboundUnreachable: number
  /** Listener connections that were not reflected flows (destroyed). */
  listenerStrangers: number
  /** Reflected connections whose Pilot stream was gone (reset). */
  listenerOrphans: number
  /** Opened Pilot streams the kernel never connected (timed out). */
  acceptTimeouts: number
  inboundOffered: number
  inboundAccepted: number
  inboundRefused: number
  /** Connections currently spliced. */
  active: number
}

/** The drop reasons the TCP path counts (a subset of the bridge's). */
export type TcpBridgeDropReason = 'malformed' | 'tcp-syn-pending' | 'tcp-reflector'

/** What the TCP bridge needs from the TUN bridge: its way out to the TUN, and its drop counters. */
export interface TcpBridgeOutput {
  /** Queues one packet for the TUN. */
  queue(packet: Uint8Array): void
  /** A rate-limited ICMPv6 Destination Unreachable with `code`, answering the packet at `buf[off..off+len)`. */
  unreachable(now: number, code: number, buf: Uint8Array, off: number, len: number): void
  /** Counts a TUN packet the TCP path dropped. */
  drop(reason: TcpBridgeDropReason): void
}

export interface TcpBridgeOptions {
  output: TcpBridgeOutput
  /** The reflector built for `server`'s port. */
  reflector: TcpReflector
  /** The internal listener, already bound (`listenInternal`); the TCP bridge accepts on it and closes it. */
  server: Server
  host: Pick<BridgeHost, 'openStream'>
  /** Shared with the bridge: PilotAddress objects for destination addresses. */
  peers: PeerAddressCache
  clock: () => number
  logger: Logger
  inboundBindHost: string
  acceptTimeoutMs: number
  inboundConnectTimeoutMs: number
  /** How inbound connections reach R:y; tests substitute a loopback connect. Default net.connect. */
  connect?: (options: TcpNetConnectOpts) => Socket
}

/**
 * Binds the internal listener L on [host]:0 (half-open allowed: FIN ⇄ FIN).
 * Bound before anything else so the reflector can be built for its port.
 */
export function listenInternal(host: string, logger: Logger): Promise<Server> {
  const server = createServer({ allowHalfOpen: true })
  return new Promise((resolve, reject) => {
    const onError = (err: Error): void => reject(err)
    server.once('error', onError)
    server.listen({ host, port: 0, backlog: 1024 }, () => {
      server.off('error', onError)
      server.on('error', (err) => logger.error('internal TCP listener failed', { error: err.message }))
      resolve(server)
    })
  })
}

/** The port a listener from `listenInternal` is bound to. */
export function listenerPortOf(server: Server): number {
  return (server.address() as { port: number }).port
}

export class TcpBridge {
  private readonly output: TcpBridgeOutput
  private readonly reflector: TcpReflector
  private readonly server: Server
  private readonly host: Pick<BridgeHost, 'openStream'>
  private readonly peers: PeerAddressCache
  private readonly clock: () => number
  private readonly logger: Logger
  private readonly inboundBindHost: string
  private readonly acceptTimeoutMs: number
  private readonly inboundConnectTimeoutMs: number
  private readonly connect: (options: TcpNetConnectOpts) => Socket
  /** Dials in progress (SYN held) and connected dials waiting for the kernel's accept. */
  private readonly dials = new OutboundDials()
  /** Spliced pairs and inbound sockets still connecting, for close(). */
  private readonly sockets = new Set<Socket>()
  private readonly streams = new Set<Duplex>()
  private readonly scratch = new Ipv6Packet()
  private isClosed = false
  private readonly st: TcpBridgeStats = {
    outboundDials: 0,
    outboundConnected: 0,
    outboundRefused: 0,
    outboundUntrusted: 0,
    outboundUnreachable: 0,
    listenerStrangers: 0,
    listenerOrphans: 0,
    acceptTimeouts: 0,
    inboundOffered: 0,
    inboundAccepted: 0,
    inboundRefused: 0,
    active: 0,
  }

  constructor(options: TcpBridgeOptions) {
    this.output = options.output
    this.reflector = options.reflector
    this.server = options.server
    this.host = options.host
    this.peers = options.peers
    this.clock = options.clock
    this.logger = options.logger
    this.inboundBindHost = options.inboundBindHost
    this.acceptTimeoutMs = options.acceptTimeoutMs
    this.inboundConnectTimeoutMs = options.inboundConnectTimeoutMs
    this.connect = options.connect ?? netConnect
    this.server.on('connection', (sock: Socket) => this.onAccept(sock))
  }

  stats(): TcpBridgeStats {
    return { ...this.st }
  }

  // ───────────────────────── packets from the TUN ─────────────────────────

  /** A TCP packet from A to a node P (the app side). */
  handleOutbound(now: number, pkt: Ipv6Packet): void {
    const buf = pkt.buf
    const l4 = pkt.l4Offset
    if (checkTcp(buf, l4, pkt.l4Length) !== null) return this.output.drop('malformed')
    if ((buf[l4 + 13]! & (TCP_SYN | TCP_ACK | TCP_RST)) === TCP_SYN) {
      const peer = this.peers.at(buf, pkt.offset + IPV6_DST_OFFSET)
      const localPort = (buf[l4]! << 8) | buf[l4 + 1]!
      const peerPort = (buf[l4 + 2]! << 8) | buf[l4 + 3]!
      const dial = this.dials.get(peer, peerPort, localPort)
      if (dial !== undefined && dial.stream === null) return this.output.drop('tcp-syn-pending')
      if (dial === undefined && localPort !== 0 && peerPort !== 0) {
        this.startDial(peer, peerPort, localPort, buf.subarray(pkt.offset, pkt.offset + pkt.length))
        return
      }
      // A connected dial: the kernel retransmitted the SYN; reflect it again.
    }
    this.reflect(now, pkt)
  }

  /** A TCP packet from A to R (our listener's or an inbound socket's side). */
  handleReflected(now: number, pkt: Ipv6Packet): void {
    this.reflect(now, pkt)
  }

  private reflect(now: number, pkt: Ipv6Packet): void {
    const d = this.reflector.handleTcp(now, pkt)
    if (d.action === ReflectAction.WriteBack) this.output.queue(pkt.buf.subarray(d.offset, d.offset + d.length))
    else this.output.drop('tcp-reflector')
  }

  // ───────────────────────── outbound ─────────────────────────

  private startDial(peer: PilotAddress, peerPort: number, localPort: number, syn: Uint8Array): void {
    const dial: OutboundDial = { peer, peerPort, localPort, syn: Buffer.from(syn), stream: null, deadline: Number.POSITIVE_INFINITY }
    this.dials.add(dial)
    this.st.outboundDials++
    this.host.openStream(peer, peerPort).then(
      (stream) => this.onDialConnected(dial, stream),
      (err: unknown) => this.onDialFailed(dial, err),
    )
  }

  private onDialConnected(dial: OutboundDial, stream: Duplex): void {
    if (this.isClosed || !this.dials.holds(dial)) {
      stream.destroy()
      return
    }
    this.st.outboundConnected++
    stream.on('error', noop) // until spliced; the splice adds its own handlers
    stream.once('close', () => this.dials.remove(dial))
    dial.stream = stream
    const now = this.clock()
    dial.deadline = now + this.acceptTimeoutMs
    const pkt = this.scratch
    if (parseIpv6Into(pkt, dial.syn, 0, dial.syn.length) !== null) return
    const d = this.reflector.handleTcp(now, pkt)
    if (d.action === ReflectAction.WriteBack) {
      this.output.queue(dial.syn.subarray(d.offset, d.offset + d.length))
    } else {
      this.output.drop('tcp-reflector')
      this.dials.remove(dial)
      stream.destroy()
    }
  }

  private onDialFailed(dial: OutboundDial, err: unknown): void {
    this.dials.remove(dial)
    if (this.isClosed) return
    const code = (err as { code?: string } | null)?.code
    const syn = dial.syn
    if (this.logger.debugEnabled) this.logger.debug('outbound TCP dial failed', { node: dial.peer.node, port: dial.peerPort, code })
    if (code === 'PT_CONNECTION_REFUSED') {
      this.st.outboundRefused++
      const pkt = this.scratch
      if (parseIpv6Into(pkt, syn, 0, syn.length) !== null) return
      const n = writeRstReply(syn, 0, pkt.l4Offset, pkt.l4Length)
      this.output.queue(syn.subarray(0, n))
      return
    }
    if (code === 'PT_DAEMON_CLOSED') return
    const now = this.clock()
    if (code === 'PT_TRUST_REQUIRED' || code === 'PT_NETWORK_REFUSED') {
      this.st.outboundUntrusted++
      this.output.unreachable(now, UNREACH_ADMIN_PROHIBITED, syn, 0, syn.length)
      return
    }
    this.st.outboundUnreachable++
    this.output.unreachable(now, UNREACH_ADDRESS, syn, 0, syn.length)
  }

  private onAccept(sock: Socket): void {
    if (this.isClosed) {
      sock.destroy()
      return
    }
    const addr = sock.remoteAddress
    const port = sock.remotePort
    const reflector = this.reflector
    if (addr === undefined || port === undefined || !reflector.isReflectedPeer(addr, port)) {
      this.st.listenerStrangers++
      sock.destroy()
      return
    }
    const info = reflector.lookupByReflectedPort(port)
    const dial = info === null ? undefined : this.dials.get(info.peer, info.peerPort, info.localPort)
    if (info === null || dial === undefined || dial.stream === null || dial.stream.destroyed) {
      this.st.listenerOrphans++
      sock.on('error', noop)
      sock.resetAndDestroy()
      return
    }
    this.dials.remove(dial)
    const stream = dial.stream
    stream.off('error', noop)
    this.splice(sock, stream)
  }

  // ───────────────────────── inbound ─────────────────────────

  /** A Pilot SYN from an admitted node to a port the daemon does not serve. */
  onIncoming(req: IncomingStreamRequest): void {
    this.st.inboundOffered++
    if (this.isClosed) {
      this.st.inboundRefused++
      req.refuse()
      return
    }
    const now = this.clock()
    const reflector = this.reflector
    const reg = reflector.registerInbound(now, req.remote, req.remotePort, req.localPort, 0)
    if (!reg.ok) {
      this.st.inboundRefused++
      if (this.logger.debugEnabled) this.logger.debug('inbound TCP not registered', { reason: reg.reason, port: req.localPort })
      req.refuse()
      return
    }
    const natPort = reg.natPort
    let decided = false
    const sock = this.connect({ host: reg.connectAddress, port: natPort, localAddress: this.inboundBindHost, family: 6, allowHalfOpen: true })
    this.sockets.add(sock)
    const refuse = (why: string): void => {
      if (decided) return
      decided = true
      clearTimeout(timer)
      this.sockets.delete(sock)
      sock.destroy()
      reflector.releaseFlow(this.clock(), natPort)
      this.st.inboundRefused++
      if (this.logger.debugEnabled) this.logger.debug('inbound TCP refused', { why, port: req.localPort })
      req.refuse()
    }
    const timer = setTimeout(() => refuse('timeout'), this.inboundConnectTimeoutMs)
    const onConnectError = (err: NodeJS.ErrnoException): void => refuse(err.code ?? err.message)
    sock.once('error', onConnectError)
    sock.once('connect', () => {
      if (decided) return
      decided = true
      clearTimeout(timer)
      this.sockets.delete(sock)
      if (this.isClosed) {
        sock.destroy()
        req.refuse()
        return
      }
      let stream: Duplex
      try {
        stream = req.accept()
      } catch (err) {
        sock.resetAndDestroy()
        this.logger.warn('accepting an inbound Pilot stream failed', { error: String(err) })
        return
      }
      this.st.inboundAccepted++
      // The splice handles errors from now on: this closure (and the request it holds) can go.
      sock.off('error', onConnectError)
      this.splice(sock, stream)
    })
  }

  // ───────────────────────── splicing ─────────────────────────

  /** socket ⇄ Pilot stream, back-pressure both ways, FIN ⇄ FIN, errors → resets. */
  private splice(sock: Socket, stream: Duplex): void {
    this.st.active++
    this.sockets.add(sock)
    this.streams.add(stream)
    sock.setNoDelay(true)
    sock.pipe(stream)
    stream.pipe(sock)
    sock.on('error', () => {
      // The program reset its end (or the socket failed): reset the Pilot stream too.
      if (!stream.destroyed) stream.destroy(new Error('the local TCP connection failed'))
    })
    stream.on('error', () => {
      if (!sock.destroyed) sock.resetAndDestroy()
    })
    sock.once('close', () => {
      this.sockets.delete(sock)
      if (!stream.destroyed && !stream.writableEnded) stream.destroy(new Error('the local TCP connection closed'))
      this.pairClosed(sock, stream)
    })
    stream.once('close', () => {
      this.streams.delete(stream)
      if (!sock.destroyed && !sock.writableEnded) sock.resetAndDestroy()
      this.pairClosed(sock, stream)
    })
  }

  private pairClosed(sock: Socket, stream: Duplex): void {
    if (sock.destroyed && stream.destroyed && !(sock as { counted?: boolean }).counted) {
      ;(sock as { counted?: boolean }).counted = true
      this.st.active--
    }
  }

  // ───────────────────────── housekeeping ─────────────────────────

  /** Coarse tick: connected dials the kernel never accepted are closed. */
  expire(now: number): void {
    for (const d of this.dials.takeLate(now)) {
      this.st.acceptTimeouts++
      d.stream!.destroy()
    }
  }

  async close(): Promise<void> {
    if (this.isClosed) return
    this.isClosed = true
    for (const d of this.dials.all()) d.stream?.destroy()
    // Pilot streams get a FIN first (the daemon's shutdown grace lets it go
    // out), then the local sockets close without turning that into an RST.
    for (const s of this.streams) {
      s.unpipe()
      if (!s.destroyed && !s.writableEnded) s.end()
    }
    for (const s of [...this.sockets]) {
      s.unpipe()
      s.destroy()
    }
    await new Promise<void>((resolve) => this.server.close(() => resolve()))
  }
}

function noop(): void {}
