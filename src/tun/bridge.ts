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
 *       ICMPv6 echo  Pilot control ping; the pong becomes the echo reply
 *     dst in the prefix, not a node ... Destination Unreachable code 3
 *   writes of one batch ─► one writePackets
 *
 *   Pilot datagram ─► IPv6/UDP P:q → A:p (checksum) ─► TUN (batched per tick)
 *   Pilot SYN to a port without a daemon listener ─► bridge-tcp.ts (inbound)
 *
 * ICMPv6 errors are rate-limited (token bucket, RFC 4443 §2.4 f). Reflector
 * flows, held SYNs and outstanding pings expire on one coarse tick.
 */
import type { Server } from 'node:net'
import type { PilotAddress } from '../protocol/address.js'
import { type OverlayPrefix, reflectorIpv6, formatIpv6 } from '../protocol/ipv6-mapping.js'
import { nullLogger, type Logger } from '../logger.js'
import type { PacketBatch, TunDevice } from './device.js'
import { TunError, TunErrorCode } from './tun-errors.js'
import { IPPROTO_ICMPV6, IPPROTO_TCP, IPPROTO_UDP } from './packets/checksum.js'
import { IPV6_DST_OFFSET, IPV6_SRC_OFFSET, Ipv6Packet, PROTO_UNSUPPORTED, equal16, isMulticastIpv6, parseIpv6Into } from './packets/ipv6.js'
import { buildUdpPacket, checkUdp, UDP_HEADROOM } from './packets/udp.js'
import {
  ICMPV6_ECHO_REPLY,
  ICMPV6_ECHO_REQUEST,
  ICMPV6_HEADROOM,
  ICMPV6_MAX_QUOTE,
  Icmpv6Echo,
  UNREACH_ADDRESS,
  UNREACH_ADMIN_PROHIBITED,
  buildDestinationUnreachable,
  buildIcmpv6Echo,
  buildPacketTooBig,
  icmpv6ErrorSuppression,
  parseIcmpv6EchoInto,
} from './packets/icmpv6.js'
import { TcpReflector } from './reflector.js'
import { BRIDGED_UDP_MTU, MAX_BRIDGED_UDP_PAYLOAD, type BridgeDatagram, type BridgeHost, type BridgePong } from './bridge-host.js'
import { TcpBridge, type TcpBridgeOptions, type TcpBridgeStats } from './bridge-tcp.js'

/** Every reason the bridge drops a packet read from the TUN. Stable strings (counters, tests). */
export const BRIDGE_DROP_REASONS = [
  'not-ipv6', // IPv4 or junk: the overlay is IPv6-only
  'malformed', // IPv6 that does not parse, or a bad UDP/ICMPv6 header
  'multicast', // any other multicast destination
  'router-solicitation', // ICMPv6 133
  'neighbor-discovery', // ICMPv6 134..137
  'mld', // ICMPv6 130..132, 143
  'foreign-source', // source is not A (link-local, another address)
  'outside-prefix', // destination outside the overlay prefix
  'to-self', // destination is A itself (the kernel answers those)
  'fragment', // fragments: the bridge does not reassemble
  'unsupported-protocol', // neither TCP, UDP nor ICMPv6
  'bad-port', // UDP with port 0
  'icmpv6-error', // ICMPv6 errors the kernel sends (e.g. port unreachable for an agent's datagram)
  'icmpv6-other', // echo replies and other ICMPv6 types
  'not-a-node', // destination in the prefix but not a node (answered with unreachable)
  'untrusted', // UDP to a node without mutual trust (answered with unreachable code 1)
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

interface PendingEcho {
  peerKey: number
  id: number
  seq: number
  data: Buffer
  /** The echo's destination (16 bytes): the reply's source. */
  peerAddress: Uint8Array
  deadline: number
}

export class TunBridge {
  readonly prefix: OverlayPrefix
  /** A: our mapped address, 16 bytes. */
  readonly localAddress: Uint8Array
  readonly localAddressText: string
  /** R: the reflector address (routed into the TUN, never assigned). */
  readonly reflectorAddress: Uint8Array
  readonly reflectorAddressText: string
  readonly reflector: TcpReflector
  private readonly host: BridgeHost
  private readonly device: TunDevice
  private readonly logger: Logger
  private readonly clock: () => number
  private readonly tcp: TcpBridge
  private readonly view = new Ipv6Packet()
  private readonly echo = new Icmpv6Echo()
  /** Writes waiting for the end of the batch (or the next tick). */
  private out: Uint8Array[] = []
  private inBatch = false
  private flushScheduled = false
  private readonly pings = new Map<number, PendingEcho>()
  private readonly maxPings: number
  private readonly pingTimeoutMs: number
  private readonly peerCache = new Map<number, PilotAddress>()
  private readonly scratchAddr = new Uint8Array(16)
  // ICMPv6 error token bucket.
  private readonly icmpRate: number
  private icmpTokens: number
  private icmpRefilledAt = 0
  private tick: NodeJS.Timeout | null = null
  private readonly tickMs: number
  private isClosed = false
  private fatal = false
  private readonly onFatal: ((err: TunError) => void) | null
  private readonly st = {
    packetsIn: 0,
    packetsOut: 0,
    batches: 0,
    udpOut: 0,
    udpIn: 0,
    udpInTooBig: 0,
    echoRequests: 0,
    echoReplies: 0,
    pingsExpired: 0,
    icmpErrorsSent: 0,
    icmpErrorsRateLimited: 0,
    icmpErrorsSuppressed: 0,
  }
  private readonly drops: Record<BridgeDropReason, number>
  // Bound once.
  private readonly onBatchBound: (batch: PacketBatch) => void
  private readonly flushBound: () => void
  private readonly onDatagramBound: (d: BridgeDatagram) => void
  private readonly onPongBound: (p: BridgePong) => void

  constructor(options: TunBridgeOptions) {
    this.host = options.host
    this.device = options.device
    this.prefix = options.prefix
    this.logger = options.logger ?? nullLogger
    this.clock = options.clock ?? (() => performance.now())
    const a = options.host.address
    this.localAddress = writeMapped(this.prefix, a.network, a.node, new Uint8Array(16), 0)
    this.localAddressText = formatIpv6(this.localAddress)
    this.reflectorAddress = reflectorIpv6(this.prefix, a.network)
    this.reflectorAddressText = formatIpv6(this.reflectorAddress)
    this.maxPings = options.maxPendingPings ?? 256
    this.pingTimeoutMs = options.pingTimeoutMs ?? 10_000
    this.icmpRate = options.icmpErrorsPerSecond ?? 100
    this.icmpTokens = this.icmpRate
    this.tickMs = options.tickMs ?? 1_000
    this.onFatal = options.onFatal ?? null
    this.drops = {} as Record<BridgeDropReason, number>
    for (const r of BRIDGE_DROP_REASONS) this.drops[r] = 0
    // The reflector's listener port is known only after the listener binds: built in start().
    this.reflector = null as unknown as TcpReflector
    this.tcp = new TcpBridge({
      bridge: this,
      host: this.host,
      logger: this.logger.child({ component: 'tun-tcp' }),
      listenHost: options.listenHost ?? this.localAddressText,
      inboundBindHost: options.inboundBindHost ?? this.localAddressText,
      acceptTimeoutMs: options.acceptTimeoutMs ?? 10_000,
      inboundConnectTimeoutMs: options.inboundConnectTimeoutMs ?? 5_000,
      ...(options.inboundConnect ? { connect: options.inboundConnect } : {}),
    })
    this.onBatchBound = (batch) => this.onBatch(batch)
    this.flushBound = () => {
      this.flushScheduled = false
      this.flush()
    }
    this.onDatagramBound = (d) => this.onDatagram(d)
    this.onPongBound = (p) => this.onPong(p)
  }

  /** Binds the internal listener, builds the reflector, starts reading the TUN. */
  async start(): Promise<void> {
    const port = await this.tcp.listen()
    ;(this as { reflector: TcpReflector }).reflector = new TcpReflector({
      localAddress: this.localAddress,
      listenerPort: port,
      prefix: this.prefix,
      reflectorAddress: this.reflectorAddress,
    })
    this.host.onDatagram(this.onDatagramBound)
    this.host.onPong(this.onPongBound)
    this.host.setDefaultStreamHandler((req) => this.tcp.onIncoming(req))
    this.device.onError((err) => this.onDeviceError(err))
    this.device.onPackets(this.onBatchBound)
    this.tick = setInterval(() => this.onTick(), this.tickMs)
    this.tick.unref()
  }

  get closed(): boolean {
    return this.isClosed
  }

  /** The internal listener (tests). */
  get listener(): Server {
    return this.tcp.server
  }

  get listenerPort(): number {
    return this.reflector.listenerPort
  }

  stats(): TunBridgeStats {
    return {
      ...this.st,
      drops: { ...this.drops },
      tcp: this.tcp.stats(),
      reflector: this.reflector === null ? (null as never) : this.reflector.stats(),
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
    if (this.tick !== null) clearInterval(this.tick)
    this.tick = null
    this.device.onPackets(noopBatch)
    this.device.onError(noopError)
    this.host.onDatagram(null)
    this.host.onPong(null)
    this.host.setDefaultStreamHandler(null)
    this.pings.clear()
    this.out.length = 0
    await this.tcp.close()
  }

  // ───────────────────────── TUN input ─────────────────────────

  private onBatch(batch: PacketBatch): void {
    if (this.isClosed) return
    const now = this.clock()
    this.st.batches++
    this.inBatch = true
    try {
      const buf = batch.buffer
      for (let i = 0; i < batch.count; i++) this.handlePacket(now, buf, batch.offsets[i]!, batch.lengths[i]!)
    } finally {
      this.inBatch = false
      this.flush()
    }
  }

  /** One packet the kernel sent into the TUN. Never throws for bad input. */
  handlePacket(now: number, buf: Buffer, off: number, len: number): void {
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
    if (!equal16(buf, src, this.localAddress, 0)) return this.drop('foreign-source')
    const prefix = this.prefix
    if (buf.readUInt32BE(dst) !== prefix.high32 || buf.readUInt16BE(dst + 4) !== prefix.low16) return this.drop('outside-prefix')
    if (equal16(buf, dst, this.reflectorAddress, 0)) {
      // Daemon-side TCP of a reflected flow (our listener's or an inbound socket's packets).
      if (pkt.protocol === IPPROTO_TCP && !pkt.fragmented) return this.tcp.handleReflected(now, pkt)
      return this.unreachable(now, UNREACH_ADDRESS, buf, off, pkt.length, 'not-a-node')
    }
    const node = buf.readUInt32BE(dst + 12)
    if (buf.readUInt32BE(dst + 8) !== 0 || node === 0 || node === 0xffffffff) {
      return this.unreachable(now, UNREACH_ADDRESS, buf, off, pkt.length, 'not-a-node')
    }
    if (equal16(buf, dst, this.localAddress, 0)) return this.drop('to-self')
    if (pkt.fragmented) return this.drop('fragment')
    switch (pkt.protocol) {
      case IPPROTO_TCP:
        return this.tcp.handleOutbound(now, pkt)
      case IPPROTO_UDP:
        return this.handleUdp(now, pkt)
      case IPPROTO_ICMPV6:
        return this.handleIcmp(now, pkt)
      default:
        return this.drop(pkt.protocol === PROTO_UNSUPPORTED ? 'unsupported-protocol' : 'unsupported-protocol')
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
      return this.packetTooBig(now, pkt)
    }
    const sport = (buf[l4]! << 8) | buf[l4 + 1]!
    const dport = (buf[l4 + 2]! << 8) | buf[l4 + 3]!
    if (sport === 0 || dport === 0) return this.drop('bad-port')
    const dst = pkt.offset + IPV6_DST_OFFSET
    const peer = this.peerAt(buf, dst)
    if (!this.host.isTrusted(peer.node)) {
      return this.unreachable(now, UNREACH_ADMIN_PROHIBITED, buf, pkt.offset, pkt.length, 'untrusted')
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
    const peer = this.peerAt(buf, dst)
    let id: number
    try {
      id = this.host.sendPing(peer)
    } catch {
      return this.drop('send-failed')
    }
    this.st.echoRequests++
    if (this.pings.size >= this.maxPings) {
      const oldest = this.pings.keys().next().value as number
      this.pings.delete(oldest)
      this.st.pingsExpired++
    }
    this.pings.set(id, {
      peerKey: peer.network * 0x1_0000_0000 + peer.node,
      id: e.id,
      seq: e.seq,
      data: Buffer.from(buf.subarray(e.dataOffset, e.dataOffset + e.dataLength)),
      peerAddress: Uint8Array.from(buf.subarray(dst, dst + 16)),
      deadline: now + this.pingTimeoutMs,
    })
  }

  // ───────────────────────── Pilot input ─────────────────────────

  private onDatagram(d: BridgeDatagram): void {
    if (this.isClosed) return
    const n = d.data.length
    if (UDP_HEADROOM + n > this.device.mtu || d.fromPort === 0 || d.toPort === 0) {
      this.st.udpInTooBig++
      return
    }
    const pkt = Buffer.allocUnsafe(UDP_HEADROOM + n)
    pkt.set(d.data, UDP_HEADROOM)
    const from = writeMapped(this.prefix, d.from.network, d.from.node, this.scratchAddr, 0)
    buildUdpPacket(pkt, 0, from, 0, this.localAddress, 0, d.fromPort, d.toPort, n)
    this.st.udpIn++
    this.queue(pkt)
  }

  private onPong(p: BridgePong): void {
    if (this.isClosed) return
    const pending = this.pings.get(p.id)
    if (pending === undefined || pending.peerKey !== p.remote.network * 0x1_0000_0000 + p.remote.node) return
    this.pings.delete(p.id)
    const n = pending.data.length
    const pkt = Buffer.allocUnsafe(ICMPV6_HEADROOM + n)
    pending.data.copy(pkt, ICMPV6_HEADROOM)
    buildIcmpv6Echo(pkt, 0, ICMPV6_ECHO_REPLY, pending.peerAddress, 0, this.localAddress, 0, pending.id, pending.seq, n)
    this.st.echoReplies++
    this.queue(pkt)
  }

  // ───────────────────────── output ─────────────────────────

  /** Queues one packet for the TUN; written at the end of the batch or on the next immediate. */
  queue(packet: Uint8Array): void {
    if (this.isClosed) return
    this.out.push(packet)
    if (!this.inBatch && !this.flushScheduled) {
      this.flushScheduled = true
      setImmediate(this.flushBound)
    }
  }

  private flush(): void {
    if (this.out.length === 0 || this.isClosed) return
    const list = this.out
    this.out = []
    this.st.packetsOut += this.device.writePackets(list)
  }

  /** Destination Unreachable answering `buf[off..off+len)` (source: the unreachable destination), rate-limited. */
  unreachable(now: number, code: number, buf: Uint8Array, off: number, len: number, reason: BridgeDropReason | null): void {
    if (reason !== null) this.drop(reason)
    if (!this.takeIcmpToken(now)) return
    if (icmpv6ErrorSuppression(1, buf, off, len) !== null) {
      this.st.icmpErrorsSuppressed++
      return
    }
    const quote = len < ICMPV6_MAX_QUOTE ? len : ICMPV6_MAX_QUOTE
    const out = Buffer.allocUnsafe(ICMPV6_HEADROOM + quote)
    const n = buildDestinationUnreachable(out, 0, code, buf, off + IPV6_DST_OFFSET, buf, off, len)
    if (n === 0) return
    this.st.icmpErrorsSent++
    this.queue(out.subarray(0, n))
  }

  private packetTooBig(now: number, pkt: Ipv6Packet): void {
    if (!this.takeIcmpToken(now)) return
    const buf = pkt.buf
    if (icmpv6ErrorSuppression(2, buf, pkt.offset, pkt.length) !== null) {
      this.st.icmpErrorsSuppressed++
      return
    }
    const out = Buffer.allocUnsafe(ICMPV6_HEADROOM + ICMPV6_MAX_QUOTE)
    const n = buildPacketTooBig(out, 0, BRIDGED_UDP_MTU, buf, pkt.offset + IPV6_DST_OFFSET, buf, pkt.offset, pkt.length)
    if (n === 0) return
    this.st.icmpErrorsSent++
    this.queue(out.subarray(0, n))
  }

  private takeIcmpToken(now: number): boolean {
    const elapsed = now - this.icmpRefilledAt
    if (elapsed > 0) {
      this.icmpTokens = Math.min(this.icmpRate, this.icmpTokens + (elapsed * this.icmpRate) / 1000)
      this.icmpRefilledAt = now
    }
    if (this.icmpTokens < 1) {
      this.st.icmpErrorsRateLimited++
      return false
    }
    this.icmpTokens -= 1
    return true
  }

  drop(reason: BridgeDropReason): void {
    this.drops[reason]++
  }

  /** The node at `buf[dst..dst+16)` (a node address of the prefix), cached so the UDP path does not allocate. */
  peerAt(buf: Uint8Array, dst: number): PilotAddress {
    const network = (buf[dst + 6]! << 8) | buf[dst + 7]!
    const node = ((buf[dst + 12]! << 24) | (buf[dst + 13]! << 16) | (buf[dst + 14]! << 8) | buf[dst + 15]!) >>> 0
    const key = network * 0x1_0000_0000 + node
    let p = this.peerCache.get(key)
    if (p === undefined) {
      if (this.peerCache.size >= 4096) this.peerCache.clear()
      p = Object.freeze({ network, node })
      this.peerCache.set(key, p)
    }
    return p
  }

  /** The mapped address of `peer` (a new 16-byte array). */
  mapped(peer: PilotAddress): Uint8Array {
    return writeMapped(this.prefix, peer.network, peer.node, new Uint8Array(16), 0)
  }

  now(): number {
    return this.clock()
  }

  // ───────────────────────── housekeeping ─────────────────────────

  private onTick(): void {
    if (this.isClosed) return
    const now = this.clock()
    this.reflector.expire(now)
    for (const [k, p] of this.pings) {
      if (p.deadline > now) break // insertion order = deadline order
      this.pings.delete(k)
      this.st.pingsExpired++
    }
    this.tcp.expire(now)
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

function noopBatch(): void {}
function noopError(): void {}

/** prefix:NNNN:0:0:HHHH:LLLL at out[offset..]; no validation, no allocation. */
function writeMapped(prefix: OverlayPrefix, network: number, node: number, out: Uint8Array, offset: number): Uint8Array {
  const h = prefix.high32
  out[offset] = h >>> 24
  out[offset + 1] = (h >>> 16) & 0xff
  out[offset + 2] = (h >>> 8) & 0xff
  out[offset + 3] = h & 0xff
  out[offset + 4] = prefix.low16 >>> 8
  out[offset + 5] = prefix.low16 & 0xff
  out[offset + 6] = network >>> 8
  out[offset + 7] = network & 0xff
  out[offset + 8] = 0
  out[offset + 9] = 0
  out[offset + 10] = 0
  out[offset + 11] = 0
  out[offset + 12] = node >>> 24
  out[offset + 13] = (node >>> 16) & 0xff
  out[offset + 14] = (node >>> 8) & 0xff
  out[offset + 15] = node & 0xff
  return out
}
