/**
 * `TunBridge`: the edge between the TUN device and the daemon's Pilot
 * streams, datagrams and pings (docs/design.md, "TCP through the TUN without a
 * TCP stack in JavaScript"). The daemon builds one per TUN interface.
 *
 *   TUN batch ─► onBatch (one clock read) ─► per packet:
 *     not IPv6, multicast, NDP/MLD/RS, foreign source ........ dropped, counted
 *     dst = R (reflector) ...... TCP: reflector (daemon-side packets)
 *     dst = node P:
 *       TCP ........ bridge-tcp.ts: hold a new SYN until the Pilot stream is up,
 *                    then reflect it to the internal listener; everything else
 *                    goes through the reflector (kernel ⇄ kernel, no copy)
 *       UDP ........ Pilot datagram (same ports); too big → Packet Too Big;
 *                    untrusted → Destination Unreachable code 1
 *       ICMPv6 echo  Pilot control ping (pending-echoes.ts); the pong becomes
 *                    the echo reply
 *     dst in the prefix, not a node ... Destination Unreachable code 3
 *   writes of one batch ─► one writePackets (tun-writer.ts)
 *
 *   Pilot datagram ─► IPv6/UDP P:q → A:p (checksum) ─► TUN (batched per driver flush);
 *                     a source outside our network is dropped (counted)
 *   Pilot SYN to a port without a daemon listener ─► bridge-tcp.ts (inbound)
 *
 * ICMPv6 errors are rate-limited (token bucket, RFC 4443 §2.4 f). Reflector
 * flows, held SYNs and outstanding pings expire on one coarse tick; a bug
 * there is logged and counted, never fatal.
 *
 * `TunBridge.start` builds in dependency order: the internal listener, the
 * reflector for its port, then the bridge with its TCP half, which sees the
 * bridge only as a `TcpBridgeOutput`. Addresses come from the configured
 * prefix through protocol/ipv6-mapping.ts.
 */
import type { Server } from 'node:net'
import { BROADCAST_NODE } from '../protocol/address.js'
import { type OverlayPrefix, classifyOverlayIpv6, formatIpv6, mapPilotToIpv6, overlayNodeAt, reflectorIpv6 } from '../protocol/ipv6-mapping.js'
import { nullLogger, type Logger } from '../logger.js'
import type { PacketBatch, TunDevice } from './device.js'
import { TunError, TunErrorCode } from './tun-errors.js'
import { IPPROTO_ICMPV6, IPPROTO_TCP, IPPROTO_UDP } from './packets/checksum.js'
import { IPV6_DST_OFFSET, IPV6_SRC_OFFSET, Ipv6Packet, equal16, isMulticastIpv6, parseIpv6Into } from './packets/ipv6.js'
import { buildUdpPacket, checkUdp, UDP_HEADROOM } from './packets/udp.js'
import {
  ICMPV6_ECHO_REPLY,
  ICMPV6_ECHO_REQUEST,
  ICMPV6_HEADROOM,
  Icmpv6Echo,
  UNREACH_ADDRESS,
  UNREACH_ADMIN_PROHIBITED,
  buildIcmpv6Echo,
  parseIcmpv6EchoInto,
} from './packets/icmpv6.js'
import { TcpReflector } from './reflector.js'
import { TCP_ACK, TCP_SYN } from './packets/tcp.js'
import { BRIDGED_UDP_MTU, MAX_BRIDGED_UDP_PAYLOAD, type BridgeDatagram, type BridgeHost, type BridgePong } from './bridge-host.js'
import { TcpBridge, listenInternal, listenerPortOf, type TcpBridgeOptions, type TcpBridgeOutput, type TcpBridgeStats } from './bridge-tcp.js'
import { TunWriter } from './tun-writer.js'
import { PendingEchoes } from './pending-echoes.js'
import { PeerAddressCache } from './peer-cache.js'

/** Every reason the bridge drops a packet read from the TUN. Stable strings (counters, tests). */
export const BRIDGE_DROP_REASONS = [
  'not-ipv6', // IPv4 or junk: the overlay is IPv6-only
  'malformed', // IPv6 that does not parse, or a bad UDP/ICMPv6 header
  'multicast', // any other multicast destination
  'router-solicitation', // ICMPv6 133
  'neighbor-discovery', // ICMPv6 134..137
  'mld', // ICMPv6 130..132, 143
  'foreign-source', // source is not A or A_N (link-local, another address)
  'outside-prefix', // destination outside the overlay prefix
  'to-self', // destination is A itself (the kernel answers those)
  'fragment', // fragments: the bridge does not reassemble
  'unsupported-protocol', // neither TCP, UDP nor ICMPv6
  'bad-port', // UDP with port 0
  'icmpv6-error', // ICMPv6 errors the kernel sends (e.g. port unreachable for an agent's datagram)
  'icmpv6-other', // echo replies and other ICMPv6 types
  'not-a-node', // destination in the prefix but not a node (answered with unreachable)
  'untrusted', // UDP to a node without mutual trust (answered with unreachable code 1)
  'not-member', // to a network we are not a member of (answered with unreachable code 1)
  'port-not-allowed', // TCP SYN or UDP to a port the network's policy closes (unreachable code 1)
  'too-big', // UDP over MAX_BRIDGED_UDP_PAYLOAD (answered with Packet Too Big)
  'tcp-reflector', // the reflector dropped it (see reflector stats)
  'tcp-syn-pending', // the app retransmitted a SYN while its Pilot stream is being opened
  'send-failed', // the daemon refused the datagram or ping (closing)
] as const
export type BridgeDropReason = (typeof BRIDGE_DROP_REASONS)[number]

export interface TunBridgeStats {
  packetsIn: number
  packetsOut: number
  batches: number
  drops: Record<BridgeDropReason, number>
  udpOut: number
  udpIn: number
  /** Pilot datagrams that did not fit the TUN MTU. */
  udpInTooBig: number
  /** Pilot datagrams from a network we are not in (the daemon drops them first; this is the second line). */
  udpInForeignNetwork: number
  /** Housekeeping ticks that threw (logged). */
  tickErrors: number
  echoRequests: number
  echoReplies: number
  pingsExpired: number
  icmpErrorsSent: number
  icmpErrorsRateLimited: number
  icmpErrorsSuppressed: number
  tcp: TcpBridgeStats
  reflector: ReturnType<TcpReflector['stats']>
}

export interface TunBridgeOptions {
  host: BridgeHost
  device: TunDevice
  prefix: OverlayPrefix
  logger?: Logger
  /** Host the internal TCP listener binds to; default A (tests: '::1'). */
  listenHost?: string
  /** Local address inbound connections bind to; default A. */
  inboundBindHost?: string
  /** ICMPv6 errors per second (token bucket); default 100, burst the same. */
  icmpErrorsPerSecond?: number
  /** Outstanding echo requests at most; default 256. */
  maxPendingPings?: number
  /** An echo request with no pong after this long is forgotten. Default 10 s. */
  pingTimeoutMs?: number
  /** Coarse tick for expiry (reflector, pings, held streams). Default 1 s. */
  tickMs?: number
  /** A Pilot stream opened for a held SYN waits this long for the kernel to connect. Default 10 s. */
  acceptTimeoutMs?: number
  /** Inbound: how long the local kernel connect may take. Default 5 s. */
  inboundConnectTimeoutMs?: number
  /** Inbound connect to R:y (tests: a loopback stand-in). Default net.connect. */
  inboundConnect?: TcpBridgeOptions['connect']
  /** Called once when the TUN reader fails (interface deleted): the daemon shuts down. */
  onFatal?: (err: TunError) => void
  clock?: () => number
}

/** What the bridge is built from, in `start` (the listener first, then the reflector for its port). */
interface BridgeParts {
  logger: Logger
  tcpLogger: Logger
  localAddress: Uint8Array
  localAddressText: string
  reflectorAddress: Uint8Array
  reflector: TcpReflector
  /** The internal listener, bound. */
  server: Server
}

export class TunBridge implements TcpBridgeOutput {
  readonly prefix: OverlayPrefix
  /** A: our mapped address, 16 bytes. */
  readonly localAddress: Uint8Array
  readonly localAddressText: string
  /** R: the reflector address (routed into the TUN, never assigned). */
  readonly reflectorAddress: Uint8Array
  readonly reflector: TcpReflector
  private readonly host: BridgeHost
  private readonly device: TunDevice
  private readonly logger: Logger
  private readonly clock: () => number
  private readonly writer: TunWriter
  private readonly tcp: TcpBridge
  private readonly echoes: PendingEchoes
  private readonly peers = new PeerAddressCache()
  private readonly view = new Ipv6Packet()
  private readonly echo = new Icmpv6Echo()
  private readonly scratchAddr = new Uint8Array(16)
  private readonly scratchLocal = new Uint8Array(16)
  /** Our own address's network (the backbone in a daemon): trust rules there, network rules elsewhere. */
  private readonly home: number
  private readonly tick: NodeJS.Timeout
  /** What the tick expires: reflector flows, outstanding pings, held SYNs. */
  private readonly expiring: ReadonlyArray<{ expire(now: number): void }>
  private isClosed = false
  private fatal = false
  private readonly onFatal: ((err: TunError) => void) | null
  private readonly st = {
    packetsIn: 0,
    batches: 0,
    udpOut: 0,
    udpIn: 0,
    udpInTooBig: 0,
    udpInForeignNetwork: 0,
    echoRequests: 0,
    echoReplies: 0,
    tickErrors: 0,
  }
  private readonly drops: Record<BridgeDropReason, number>

  /**
   * Binds the internal listener, builds the reflector for its port, then the
   * bridge, which hooks into the daemon and starts reading the TUN at once.
   * On failure nothing is left open.
   */
  static async start(options: TunBridgeOptions): Promise<TunBridge> {
    const logger = options.logger ?? nullLogger
    const prefix = options.prefix
    const a = options.host.address
    const localAddress = mapPilotToIpv6(a, prefix)
    const localAddressText = formatIpv6(localAddress)
    const tcpLogger = logger.child({ component: 'tun-tcp' })
    const server = await listenInternal(options.listenHost ?? localAddressText, tcpLogger)
    try {
      const reflectorAddress = reflectorIpv6(prefix, a.network)
      const reflector = new TcpReflector({ localAddress, listenerPort: listenerPortOf(server), prefix, reflectorAddress })
      return new TunBridge(options, { logger, tcpLogger, localAddress, localAddressText, reflectorAddress, reflector, server })
    } catch (err) {
      server.close()
      throw err
    }
  }

  private constructor(options: TunBridgeOptions, parts: BridgeParts) {
    this.host = options.host
    this.home = options.host.address.network
    this.device = options.device
    this.prefix = options.prefix
    this.logger = parts.logger
    this.clock = options.clock ?? (() => performance.now())
    this.localAddress = parts.localAddress
    this.localAddressText = parts.localAddressText
    this.reflectorAddress = parts.reflectorAddress
    this.reflector = parts.reflector
    this.writer = new TunWriter(options.device, options.icmpErrorsPerSecond ?? 100)
    this.echoes = new PendingEchoes(options.maxPendingPings ?? 256, options.pingTimeoutMs ?? 10_000)
    this.onFatal = options.onFatal ?? null
    this.drops = {} as Record<BridgeDropReason, number>
    for (const r of BRIDGE_DROP_REASONS) this.drops[r] = 0
    this.tcp = new TcpBridge({
      output: this,
      reflector: this.reflector,
      server: parts.server,
      host: this.host,
      peers: this.peers,
      clock: this.clock,
      logger: parts.tcpLogger,
      inboundBindHost: options.inboundBindHost ?? this.localAddressText,
      acceptTimeoutMs: options.acceptTimeoutMs ?? 10_000,
      inboundConnectTimeoutMs: options.inboundConnectTimeoutMs ?? 5_000,
      ...(options.inboundConnect ? { connect: options.inboundConnect } : {}),
    })
    this.expiring = [this.reflector, this.echoes, this.tcp]
    this.host.onDatagram((d) => this.onDatagram(d))
    this.host.onPong((p) => this.onPong(p))
    this.host.setDefaultStreamHandler((req) => this.tcp.onIncoming(req))
    this.device.onError((err) => this.onDeviceError(err))
    this.device.onPackets((batch) => this.onBatch(batch))
    this.tick = setInterval(() => this.onTick(), options.tickMs ?? 1_000)
    this.tick.unref()
  }

  get closed(): boolean {
    return this.isClosed
  }

  get listenerPort(): number {
    return this.reflector.listenerPort
  }

  stats(): TunBridgeStats {
    const w = this.writer.stats()
    return {
      packetsIn: this.st.packetsIn,
      packetsOut: w.packetsOut,
      batches: this.st.batches,
      udpOut: this.st.udpOut,
      udpIn: this.st.udpIn,
      udpInTooBig: this.st.udpInTooBig,
      udpInForeignNetwork: this.st.udpInForeignNetwork,
      tickErrors: this.st.tickErrors,
      echoRequests: this.st.echoRequests,
      echoReplies: this.st.echoReplies,
      pingsExpired: this.echoes.expired,
      icmpErrorsSent: w.icmpErrorsSent,
      icmpErrorsRateLimited: w.icmpErrorsRateLimited,
      icmpErrorsSuppressed: w.icmpErrorsSuppressed,
      drops: { ...this.drops },
      tcp: this.tcp.stats(),
      reflector: this.reflector.stats(),
    }
  }

  /**
   * Stops everything the bridge owns: TUN reading, the listener and every
   * bridged connection (local sockets closed, Pilot streams finished), the
   * hooks on the daemon. The device itself is the caller's to close.
   * Idempotent.
   */
  async close(): Promise<void> {
    if (this.isClosed) return
    this.isClosed = true
    clearInterval(this.tick)
    this.device.onPackets(noopBatch)
    this.device.onError(noopError)
    this.host.onDatagram(null)
    this.host.onPong(null)
    this.host.setDefaultStreamHandler(null)
    this.echoes.clear()
    this.writer.close()
    await this.tcp.close()
  }

  // ───────────────────────── TUN input ─────────────────────────

  private onBatch(batch: PacketBatch): void {
    if (this.isClosed) return
    const now = this.clock()
    this.st.batches++
    this.writer.beginBatch()
    try {
      const buf = batch.buffer
      for (let i = 0; i < batch.count; i++) this.handlePacket(now, buf, batch.offsets[i]!, batch.lengths[i]!)
    } finally {
      this.writer.endBatch()
    }
  }

  /** One packet the kernel sent into the TUN. Never throws for bad input. */
  private handlePacket(now: number, buf: Buffer, off: number, len: number): void {
    this.st.packetsIn++
    if (len < 1 || buf[off]! >>> 4 !== 6) return this.drop('not-ipv6')
    const pkt = this.view
    if (parseIpv6Into(pkt, buf, off, len) !== null) return this.drop('malformed')
    const src = off + IPV6_SRC_OFFSET
    const dst = off + IPV6_DST_OFFSET
    if (pkt.protocol === IPPROTO_ICMPV6 && !pkt.fragmented && pkt.l4Length >= 1) {
      const t = buf[pkt.l4Offset]!
      if (t === 133) return this.drop('router-solicitation')
      if (t >= 134 && t <= 137) return this.drop('neighbor-discovery')
      if ((t >= 130 && t <= 132) || t === 143) return this.drop('mld')
    }
    if (isMulticastIpv6(buf, dst)) return this.drop('multicast')
    // A, or A_N: our node in network N (bytes 6..7 of the address).
    if (!sameNodeAs(buf, src, this.localAddress)) return this.drop('foreign-source')
    const kind = classifyOverlayIpv6(buf, this.prefix, dst)
    if (kind === 'outside-prefix') return this.drop('outside-prefix')
    if (equal16(buf, dst, this.reflectorAddress, 0)) {
      // Daemon-side TCP of a reflected flow (our listener's or an inbound socket's packets).
      if (pkt.protocol === IPPROTO_TCP && !pkt.fragmented && equal16(buf, src, this.localAddress, 0)) return this.tcp.handleReflected(now, pkt)
      return this.refuse(now, UNREACH_ADDRESS, buf, off, pkt.length, 'not-a-node')
    }
    const network = (buf[dst + 6]! << 8) | buf[dst + 7]!
    // The kernel picks A_N for a joined network (its /64 route); A (the /48 route) for any other.
    if (network !== ((buf[src + 6]! << 8) | buf[src + 7]!)) {
      return this.refuse(now, UNREACH_ADMIN_PROHIBITED, buf, off, pkt.length, 'not-member')
    }
    // Node 0 and the broadcast node are in the prefix too, but nobody to talk to.
    const node = overlayNodeAt(buf, dst)
    if (kind === 'not-a-node' || node === 0 || node === BROADCAST_NODE) {
      return this.refuse(now, UNREACH_ADDRESS, buf, off, pkt.length, 'not-a-node')
    }
    if (equal16(buf, dst, buf, src)) return this.drop('to-self')
    if (pkt.fragmented) return this.drop('fragment')
    switch (pkt.protocol) {
      case IPPROTO_TCP:
        if (network !== this.home && !this.newTcpAllowed(now, pkt, node, network)) return
        return this.tcp.handleOutbound(now, pkt)
      case IPPROTO_UDP:
        return this.handleUdp(now, pkt)
      case IPPROTO_ICMPV6:
        return this.handleIcmp(now, pkt)
      default:
        return this.drop('unsupported-protocol')
    }
  }

  private handleUdp(now: number, pkt: Ipv6Packet): void {
    const buf = pkt.buf
    const l4 = pkt.l4Offset
    if (checkUdp(buf, l4, pkt.l4Length) !== null) return this.drop('malformed')
    const udpLen = (buf[l4 + 4]! << 8) | buf[l4 + 5]!
    const payload = udpLen - 8
    if (payload > MAX_BRIDGED_UDP_PAYLOAD) {
      this.drop('too-big')
      return this.writer.packetTooBig(now, BRIDGED_UDP_MTU, buf, pkt.offset, pkt.length)
    }
    const sport = (buf[l4]! << 8) | buf[l4 + 1]!
    const dport = (buf[l4 + 2]! << 8) | buf[l4 + 3]!
    if (sport === 0 || dport === 0) return this.drop('bad-port')
    const peer = this.peers.at(buf, pkt.offset + IPV6_DST_OFFSET)
    if (peer.network !== this.home) {
      // A reply from an allowed port (a local server answering) passes as well as a datagram to one.
      const verdict = this.host.networkVerdict(peer.node, dport, 'datagram', peer.network, sport)
      if (verdict === 'notJoined') return this.refuse(now, UNREACH_ADMIN_PROHIBITED, buf, pkt.offset, pkt.length, 'not-member')
      if (verdict === 'portNotAllowed') return this.refuse(now, UNREACH_ADMIN_PROHIBITED, buf, pkt.offset, pkt.length, 'port-not-allowed')
    } else if (!this.host.isTrusted(peer.node)) {
      return this.refuse(now, UNREACH_ADMIN_PROHIBITED, buf, pkt.offset, pkt.length, 'untrusted')
    }
    try {
      this.host.sendDatagram(peer, dport, buf.subarray(l4 + 8, l4 + udpLen), sport)
      this.st.udpOut++
    } catch {
      this.drop('send-failed')
    }
  }

  private handleIcmp(now: number, pkt: Ipv6Packet): void {
    const buf = pkt.buf
    const t = buf[pkt.l4Offset]!
    if (t < 128) return this.drop('icmpv6-error')
    if (t !== ICMPV6_ECHO_REQUEST) return this.drop('icmpv6-other')
    const e = this.echo
    if (parseIcmpv6EchoInto(e, buf, pkt.l4Offset, pkt.l4Length) !== null) return this.drop('malformed')
    const dst = pkt.offset + IPV6_DST_OFFSET
    const peer = this.peers.at(buf, dst)
    if (peer.network !== this.home && this.host.networkVerdict(peer.node, 0, 'ping', peer.network) === 'notJoined') {
      return this.refuse(now, UNREACH_ADMIN_PROHIBITED, buf, pkt.offset, pkt.length, 'not-member')
    }
    let pingId: number
    try {
      pingId = this.host.sendPing(peer)
    } catch {
      return this.drop('send-failed')
    }
    this.st.echoRequests++
    this.echoes.add(now, pingId, peer, e, buf, dst)
  }

  // ───────────────────────── Pilot input ─────────────────────────

  private onDatagram(d: BridgeDatagram): void {
    if (this.isClosed) return
    // The IPv6 destination is A_N for d.from's network N: one we are in (admission checked it).
    if (d.from.network !== this.home && this.host.networkVerdict(d.from.node, d.toPort, 'datagram', d.from.network, d.fromPort) === 'notJoined') {
      this.st.udpInForeignNetwork++
      return
    }
    const n = d.data.length
    if (UDP_HEADROOM + n > this.device.mtu || d.fromPort === 0 || d.toPort === 0) {
      this.st.udpInTooBig++
      return
    }
    const pkt = Buffer.allocUnsafe(UDP_HEADROOM + n)
    pkt.set(d.data, UDP_HEADROOM)
    const from = mapPilotToIpv6(d.from, this.prefix, this.scratchAddr, 0)
    buildUdpPacket(pkt, 0, from, 0, this.localIn(d.from.network), 0, d.fromPort, d.toPort, n)
    this.st.udpIn++
    this.writer.queue(pkt)
  }

  private onPong(p: BridgePong): void {
    if (this.isClosed) return
    const pending = this.echoes.take(p.id, p.remote)
    if (pending === null) return
    const n = pending.data.length
    const pkt = Buffer.allocUnsafe(ICMPV6_HEADROOM + n)
    pending.data.copy(pkt, ICMPV6_HEADROOM)
    buildIcmpv6Echo(pkt, 0, ICMPV6_ECHO_REPLY, pending.peerAddress, 0, this.localIn(p.remote.network), 0, pending.id, pending.seq, n)
    this.st.echoReplies++
    this.writer.queue(pkt)
  }

  /**
   * A new outbound TCP connection (SYN without ACK) into network N: refused at
   * once when we are not a member or N's policy closes the port. A peer our
   * view does not list yet is left to the peer (it may have just joined).
   */
  private newTcpAllowed(now: number, pkt: Ipv6Packet, node: number, network: number): boolean {
    const buf = pkt.buf
    const l4 = pkt.l4Offset
    if (pkt.l4Length < 20 || (buf[l4 + 13]! & (TCP_SYN | TCP_ACK)) !== TCP_SYN) return true
    const verdict = this.host.networkVerdict(node, (buf[l4 + 2]! << 8) | buf[l4 + 3]!, 'stream', network)
    if (verdict === 'notJoined') this.refuse(now, UNREACH_ADMIN_PROHIBITED, buf, pkt.offset, pkt.length, 'not-member')
    else if (verdict === 'portNotAllowed') this.refuse(now, UNREACH_ADMIN_PROHIBITED, buf, pkt.offset, pkt.length, 'port-not-allowed')
    else return true
    return false
  }

  /** A_N: our address in `network` (the same scratch array every call; use it at once). */
  private localIn(network: number): Uint8Array {
    if (network === this.home) return this.localAddress
    const a = this.scratchLocal
    a.set(this.localAddress)
    a[6] = network >>> 8
    a[7] = network & 0xff
    return a
  }

  // ───────────────────────── TcpBridgeOutput ─────────────────────────

  /** Queues one packet for the TUN; written at the end of the batch, or of the current callback. */
  queue(packet: Uint8Array): void {
    this.writer.queue(packet)
  }

  /** Destination Unreachable answering `buf[off..off+len)` (source: the unreachable destination), rate-limited. */
  unreachable(now: number, code: number, buf: Uint8Array, off: number, len: number): void {
    this.writer.unreachable(now, code, buf, off, len)
  }

  drop(reason: BridgeDropReason): void {
    this.drops[reason]++
  }

  /** Counts the packet at `buf[off..off+len)` as dropped for `reason` and answers it with Destination Unreachable `code`. */
  private refuse(now: number, code: number, buf: Uint8Array, off: number, len: number, reason: BridgeDropReason): void {
    this.drop(reason)
    this.writer.unreachable(now, code, buf, off, len)
  }

  // ───────────────────────── housekeeping ─────────────────────────

  private onTick(): void {
    if (this.isClosed) return
    const now = this.clock()
    // Each part on its own: a bug in one must neither stop the others nor end the
    // daemon (a throw from an interval is an uncaught exception).
    for (const part of this.expiring) {
      try {
        part.expire(now)
      } catch (err) {
        this.st.tickErrors++
        this.logger.error('TUN bridge housekeeping failed', { error: String(err), stack: (err as Error)?.stack })
      }
    }
  }

  private onDeviceError(err: TunError): void {
    if (err.code === TunErrorCode.READER_FAILED) {
      if (this.fatal) return
      this.fatal = true
      this.logger.error('TUN data path failed; shutting down', { error: err.message })
      this.onFatal?.(err)
      return
    }
    this.logger.error('TUN packet handler failed', { error: err.message })
  }
}

/** `buf[off..off+16)` is `local` but for bytes 6..7 (the network): our node, in any network. */
function sameNodeAs(buf: Uint8Array, off: number, local: Uint8Array): boolean {
  for (let i = 0; i < 16; i++) {
    if (i !== 6 && i !== 7 && buf[off + i] !== local[i]) return false
  }
  return true
}

function noopBatch(): void {}
function noopError(): void {}
