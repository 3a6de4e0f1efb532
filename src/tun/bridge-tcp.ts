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
 */
import { createServer, connect as netConnect, type Server, type Socket, type TcpNetConnectOpts } from 'node:net'
import type { Duplex } from 'node:stream'
import type { PilotAddress } from '../protocol/address.js'
import type { Logger } from '../logger.js'
import { IPV6_DST_OFFSET, Ipv6Packet, parseIpv6Into } from './packets/ipv6.js'
import { TCP_ACK, TCP_RST, TCP_SYN, checkTcp, writeRstReply } from './packets/tcp.js'
import { UNREACH_ADDRESS, UNREACH_ADMIN_PROHIBITED } from './packets/icmpv6.js'
import { ReflectAction } from './reflector.js'
import type { BridgeHost, IncomingStreamRequest } from './bridge-host.js'
import type { TunBridge } from './bridge.js'

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

interface OutboundDial {
  peer: PilotAddress
  peerPort: number
  localPort: number
  /** A copy of the program's SYN (reflected, or answered, when the dial ends). */
  syn: Buffer
  stream: Duplex | null
  /** After connect: the kernel must accept by then. */
  deadline: number
}

export interface TcpBridgeOptions {
  bridge: TunBridge
  host: BridgeHost
  logger: Logger
  listenHost: string
  inboundBindHost: string
  acceptTimeoutMs: number
  inboundConnectTimeoutMs: number
  /** How inbound connections reach R:y; tests substitute a loopback connect. Default net.connect. */
  connect?: (options: TcpNetConnectOpts) => Socket
}

/** (peer 48-bit key, peer port, local port) → value; numbers only. */
class FlowMap<V> {
  private readonly byPeer = new Map<number, Map<number, V>>()
  size = 0

  get(peer: PilotAddress, peerPort: number, localPort: number): V | undefined {
    return this.byPeer.get(peer.network * 0x1_0000_0000 + peer.node)?.get(peerPort * 0x10000 + localPort)
  }

  set(peer: PilotAddress, peerPort: number, localPort: number, v: V): void {
    const k = peer.network * 0x1_0000_0000 + peer.node
    let m = this.byPeer.get(k)
    if (m === undefined) {
      m = new Map()
      this.byPeer.set(k, m)
    }
    const pk = peerPort * 0x10000 + localPort
    if (!m.has(pk)) this.size++
    m.set(pk, v)
  }

  delete(peer: PilotAddress, peerPort: number, localPort: number): void {
    const k = peer.network * 0x1_0000_0000 + peer.node
    const m = this.byPeer.get(k)
    if (m === undefined) return
    if (m.delete(peerPort * 0x10000 + localPort)) this.size--
    if (m.size === 0) this.byPeer.delete(k)
  }

  *values(): IterableIterator<V> {
    for (const m of this.byPeer.values()) yield* m.values()
  }
}

export class TcpBridge {
  readonly server: Server
  private readonly bridge: TunBridge
  private readonly host: BridgeHost
  private readonly logger: Logger
  private readonly listenHost: string
  private readonly inboundBindHost: string
  private readonly acceptTimeoutMs: number
  private readonly inboundConnectTimeoutMs: number
  private readonly connect: (options: TcpNetConnectOpts) => Socket
  /** Dials in progress (SYN held) and connected dials waiting for the kernel's accept. */
  private readonly dials = new FlowMap<OutboundDial>()
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
    this.bridge = options.bridge
    this.host = options.host
    this.logger = options.logger
    this.listenHost = options.listenHost
    this.inboundBindHost = options.inboundBindHost
    this.acceptTimeoutMs = options.acceptTimeoutMs
    this.inboundConnectTimeoutMs = options.inboundConnectTimeoutMs
    this.connect = options.connect ?? netConnect
    this.server = createServer({ allowHalfOpen: true }, (sock) => this.onAccept(sock))
  }

  stats(): TcpBridgeStats {
    return { ...this.st }
  }

  /** Binds the internal listener on [listenHost]:0; returns its port L. */
  listen(): Promise<number> {
    return new Promise((resolve, reject) => {
      const onError = (err: Error): void => reject(err)
      this.server.once('error', onError)
      this.server.listen({ host: this.listenHost, port: 0, backlog: 1024 }, () => {
        this.server.off('error', onError)
        this.server.on('error', (err) => this.logger.error('internal TCP listener failed', { error: err.message }))
        resolve((this.server.address() as { port: number }).port)
      })
    })
  }

  // ───────────────────────── packets from the TUN ─────────────────────────

  /** A TCP packet from A to a node P (the app side). */
  handleOutbound(now: number, pkt: Ipv6Packet): void {
    const buf = pkt.buf
    const l4 = pkt.l4Offset
    if (checkTcp(buf, l4, pkt.l4Length) !== null) return this.bridge.drop('malformed')
    if ((buf[l4 + 13]! & (TCP_SYN | TCP_ACK | TCP_RST)) === TCP_SYN) {
      const peer = this.bridge.peerAt(buf, pkt.offset + IPV6_DST_OFFSET)
      const localPort = (buf[l4]! << 8) | buf[l4 + 1]!
      const peerPort = (buf[l4 + 2]! << 8) | buf[l4 + 3]!
      const dial = this.dials.get(peer, peerPort, localPort)
      if (dial !== undefined && dial.stream === null) return this.bridge.drop('tcp-syn-pending')
      if (dial === undefined && localPort !== 0 && peerPort !== 0) {
        this.startDial(now, peer, peerPort, localPort, buf.subarray(pkt.offset, pkt.offset + pkt.length))
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
    const d = this.bridge.reflector.handleTcp(now, pkt)
    if (d.action === ReflectAction.WriteBack) this.bridge.queue(pkt.buf.subarray(d.offset, d.offset + d.length))
    else this.bridge.drop('tcp-reflector')
  }

  // ───────────────────────── outbound ─────────────────────────

  private startDial(now: number, peer: PilotAddress, peerPort: number, localPort: number, syn: Uint8Array): void {
    const dial: OutboundDial = { peer, peerPort, localPort, syn: Buffer.from(syn), stream: null, deadline: Number.POSITIVE_INFINITY }
    this.dials.set(peer, peerPort, localPort, dial)
    this.st.outboundDials++
    void now
    this.host.openStream(peer, peerPort).then(
      (stream) => this.onDialConnected(dial, stream),
      (err: unknown) => this.onDialFailed(dial, err),
    )
  }

  private onDialConnected(dial: OutboundDial, stream: Duplex): void {
    if (this.isClosed || this.dials.get(dial.peer, dial.peerPort, dial.localPort) !== dial) {
      stream.destroy()
      return
    }
    this.st.outboundConnected++
    stream.on('error', noop) // until spliced; the splice adds its own handlers
    stream.once('close', () => {
      if (this.dials.get(dial.peer, dial.peerPort, dial.localPort) === dial) this.dials.delete(dial.peer, dial.peerPort, dial.localPort)
    })
    dial.stream = stream
    const now = this.bridge.now()
    dial.deadline = now + this.acceptTimeoutMs
    const pkt = this.scratch
    if (parseIpv6Into(pkt, dial.syn, 0, dial.syn.length) !== null) return
    const d = this.bridge.reflector.handleTcp(now, pkt)
    if (d.action === ReflectAction.WriteBack) {
      this.bridge.queue(dial.syn.subarray(d.offset, d.offset + d.length))
    } else {
      this.bridge.drop('tcp-reflector')
      this.dials.delete(dial.peer, dial.peerPort, dial.localPort)
      stream.destroy()
    }
  }

  private onDialFailed(dial: OutboundDial, err: unknown): void {
    if (this.dials.get(dial.peer, dial.peerPort, dial.localPort) === dial) this.dials.delete(dial.peer, dial.peerPort, dial.localPort)
    if (this.isClosed) return
    const code = (err as { code?: string } | null)?.code
    const syn = dial.syn
    if (this.logger.debugEnabled) this.logger.debug('outbound TCP dial failed', { node: dial.peer.node, port: dial.peerPort, code })
    if (code === 'PT_CONNECTION_REFUSED') {
      this.st.outboundRefused++
      const pkt = this.scratch
      if (parseIpv6Into(pkt, syn, 0, syn.length) !== null) return
      const n = writeRstReply(syn, 0, pkt.l4Offset, pkt.l4Length)
      this.bridge.queue(syn.subarray(0, n))
      return
    }
    if (code === 'PT_DAEMON_CLOSED') return
    const now = this.bridge.now()
    if (code === 'PT_TRUST_REQUIRED') {
      this.st.outboundUntrusted++
      this.bridge.unreachable(now, UNREACH_ADMIN_PROHIBITED, syn, 0, syn.length, null)
      return
    }
    this.st.outboundUnreachable++
    this.bridge.unreachable(now, UNREACH_ADDRESS, syn, 0, syn.length, null)
  }

  private onAccept(sock: Socket): void {
    if (this.isClosed) {
      sock.destroy()
      return
    }
    const addr = sock.remoteAddress
    const port = sock.remotePort
    const reflector = this.bridge.reflector
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
    this.dials.delete(info.peer, info.peerPort, info.localPort)
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
    const now = this.bridge.now()
    const reflector = this.bridge.reflector
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
      reflector.releaseFlow(this.bridge.now(), natPort)
      this.st.inboundRefused++
      if (this.logger.debugEnabled) this.logger.debug('inbound TCP refused', { why, port: req.localPort })
      req.refuse()
    }
    const timer = setTimeout(() => refuse('timeout'), this.inboundConnectTimeoutMs)
    sock.once('error', (err: NodeJS.ErrnoException) => refuse(err.code ?? err.message))
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
    if (this.dials.size === 0) return
    const late: OutboundDial[] = []
    for (const d of this.dials.values()) if (d.stream !== null && d.deadline <= now) late.push(d)
    for (const d of late) {
      this.dials.delete(d.peer, d.peerPort, d.localPort)
      this.st.acceptTimeouts++
      d.stream!.destroy()
    }
  }

  async close(): Promise<void> {
    if (this.isClosed) return
    this.isClosed = true
    for (const d of [...this.dials.values()]) d.stream?.destroy()
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
