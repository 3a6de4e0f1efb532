/**
 * TCP NAT reflection (docs/design.md "TCP through the TUN without a TCP stack in
 * JavaScript"): a pure state machine over IPv6/TCP packets read from the TUN.
 * It never touches a socket or a clock; every input takes `now` (ms).
 *
 * Names: A = the node's own address (on the TUN), R = the reflector address
 * (inside the prefix, not a node, routed into the TUN, never assigned),
 * L = the daemon's internal listener port on A, P = an agent's mapped address.
 * Every flow owns one NAT port on R (x or y below), from a configurable range.
 *
 * OUTBOUND (a local program dials an agent):
 *
 *     app A:e ──SYN──▶ P:p    (out of the TUN)
 *             reflector: new flow x, rewrite
 *     R:x ──SYN──▶ A:L        (written back into the TUN; the daemon's listener accepts R:x)
 *     A:L ──────▶ R:x  ==>  P:p ──────▶ A:e     (listener's answers, back to the app)
 *
 *   The listener calls `isReflectedPeer(R, x)` before trusting a connection
 *   and `lookupByReflectedPort(x)` to learn (P, p, e); it then opens a Pilot
 *   stream to P's node, port p, and pipes the two.
 *
 * INBOUND (an agent dials a local server on port p). The local server must
 * see the agent's real mapped address P, so the kernel connection it accepts
 * has to come from P. The daemon cannot bind to P (not a local address), so
 * it connects to the reflector instead and the reflector swaps the addresses:
 *
 *     Pilot SYN from node P, source port q, to port p
 *     daemon: bind a socket to A:0 (port d), then
 *             registerInbound(now, P, q, p, d) -> connect to R:y
 *     A:d ──SYN──▶ R:y   ==>  P:q ──SYN──▶ A:p      (server accepts P:q: the agent's
 *                                                    real address, and its Pilot port)
 *     A:p ──────▶ P:q    ==>  R:y ──────▶ A:d      (server's answers, back to the daemon)
 *
 *   Only packets from A:d (d given at registration, or learned from the first
 *   SYN when 0) may use R:y, so another local process cannot ride the flow.
 *   No server on p: the kernel answers RST, it comes back to the daemon as a
 *   refused connect, and the daemon answers the Pilot SYN with RST.
 *
 * Both directions share one rule, which keeps the code small: a packet
 * from A to a node P is "app side" and is rewritten to R:port -> A:(L or d);
 * a packet from A to R:port is "daemon side" and is rewritten to
 * P:peerPort -> A:localPort. The flow's key for app-side packets is
 * (P, peer port, local port) in a hash table of numbers; daemon-side packets
 * find the flow by their destination port directly (slot = port - portMin).
 *
 * Checksums are updated incrementally (RFC 1624) over the 36 rewritten bytes
 * (two addresses, two ports); an incoming bad checksum stays bad, and the
 * kernel drops it. Lifetime: SYN, FIN and RST seen from each side pick the
 * idle timeout; `expire(now)` frees flows past their deadline, and a freed
 * port sits in quarantine (FIFO) before reuse. Unknown non-SYN segments get an
 * RST written back (the program sees a prompt reset, not a hang).
 *
 * Per packet: no allocation. Storage is struct-of-arrays indexed by NAT port.
 * The `ReflectDecision` returned is one object reused by every call: read it
 * before the next call.
 */
import { readU16, readU32, writeU16 } from '../bytes.js'
import { ConfigError } from '../errors.js'
import type { RandomSource } from '../random.js'
import type { PilotAddress } from '../protocol/address.js'
import {
  DEFAULT_OVERLAY_PREFIX,
  classifyOverlayIpv6,
  mapIpv6ToPilot,
  mapPilotToIpv6,
  parseIpv6,
  reflectorIpv6,
  formatIpv6,
  type OverlayPrefix,
} from '../protocol/ipv6-mapping.js'
import { IPPROTO_TCP, adjustChecksumField, sumWords } from './packets/checksum.js'
import { IPV6_DST_OFFSET, IPV6_SRC_OFFSET, Ipv6Packet, copy16, equal16, parseIpv6Into } from './packets/ipv6.js'
import { TCP_ACK, TCP_CHECKSUM_OFFSET, TCP_FIN, TCP_RST, TCP_SYN, checkTcp, writeRstReply } from './packets/tcp.js'

/** What to do with the packet. */
export const ReflectAction = {
  /** Count `reason` and drop. */
  Drop: 0,
  /** Write `buf[offset .. offset+length)` back into the TUN (rewritten, or an RST). */
  WriteBack: 1,
} as const
export type ReflectAction = (typeof ReflectAction)[keyof typeof ReflectAction]

/** Every reason the reflector drops a packet. Stable strings: counters and tests key on them. */
export const REFLECTOR_DROP_REASONS = [
  'malformed', // not IPv6, or a TCP header that does not fit
  'not-tcp', // UDP, ICMPv6 or anything else: not the reflector's business
  'fragment', // TCP in a fragment (the kernel never fragments TCP it sends)
  'foreign-source', // source is not A
  'outside-prefix', // destination outside the overlay prefix
  'not-a-node', // destination in the prefix but neither a node nor R
  'to-self', // destination is A itself
  'unknown-flow', // an RST (never answered), or a non-SYN when RSTs are off
  'ports-exhausted', // a new flow, but every NAT port is live or in quarantine
  'table-full', // a new flow, but maxFlows are live
  'bad-port', // a packet to R:x from the wrong local port (not L, not the daemon's socket)
  'not-connected', // the server side of an inbound flow spoke before the daemon's SYN
] as const
export type ReflectorDropReason = (typeof REFLECTOR_DROP_REASONS)[number]

/** Reused result of `handle*`. */
export class ReflectDecision {
  action: ReflectAction = ReflectAction.Drop
  /** Set when `action` is Drop. */
  reason: ReflectorDropReason | null = null
  /** The bytes to write back (WriteBack): start and length in the input buffer. */
  offset = 0
  length = 0
  /** The flow's NAT port, or 0 when the packet matched no flow (RST to an unknown flow, drops). */
  natPort = 0
  /** True when an RST was written in place of the packet. */
  isReset = false
}

export const FlowKind = { Outbound: 1, Inbound: 2 } as const
export type FlowKind = (typeof FlowKind)[keyof typeof FlowKind]

export interface ReflectorTimeouts {
  /** Until both sides have sent SYN (also: an inbound registration the daemon never connects). */
  synMs: number
  /** Idle established flow (RFC 5382 REQ-5 asks at least 2 h 4 min). */
  establishedMs: number
  /** After one side's FIN. */
  finWaitMs: number
  /** After both FINs (the last ACK and retransmitted FINs still pass). */
  timeWaitMs: number
  /** After an RST. */
  resetMs: number
  /** A freed NAT port is not reused for this long. */
  quarantineMs: number
}

export const DEFAULT_REFLECTOR_TIMEOUTS: Readonly<ReflectorTimeouts> = Object.freeze({
  synMs: 120_000,
  establishedMs: 7_440_000,
  finWaitMs: 240_000,
  timeWaitMs: 120_000,
  resetMs: 10_000,
  quarantineMs: 60_000,
})

export interface ReflectorConfig {
  /** A: the node's own mapped address (16 bytes; must be a node of the prefix). */
  localAddress: Uint8Array
  /** L: the daemon's internal TCP listener port on A. */
  listenerPort: number
  prefix?: OverlayPrefix
  /** R: default `reflectorIpv6(prefix, A's network)`. Must be in the prefix and not a node. */
  reflectorAddress?: Uint8Array
  /** NAT port range on R, inclusive. Default 10000..60000. */
  portMin?: number
  portMax?: number
  /** Live flows at most. Default min(16384, range size). */
  maxFlows?: number
  timeouts?: Partial<ReflectorTimeouts>
  /** Answer non-SYN segments of unknown flows with RST (default true) instead of dropping them. */
  resetUnknown?: boolean
  /** Shuffles the initial NAT port order so ports are hard to guess; default: ascending. */
  random?: RandomSource
}

export interface ReflectedFlowInfo {
  kind: FlowKind
  natPort: number
  /** The agent's node (P) and its mapped address. */
  peer: PilotAddress
  peerAddress: string
  /** p for outbound flows (the port the program dialed), q for inbound (the agent's source port). */
  peerPort: number
  /** e for outbound flows (the program's port), p for inbound (the local server's port). */
  localPort: number
}

export type InboundRegistration =
  | { ok: true; natPort: number; connectAddress: string; connectAddressBytes: Uint8Array }
  | { ok: false; reason: 'flow-exists' | 'reserved-port' | 'ports-exhausted' | 'table-full' | 'bad-argument' }

export interface ReflectorStats {
  drops: Record<ReflectorDropReason, number>
  liveFlows: number
  quarantinedPorts: number
  flowsCreated: number
  flowsExpired: number
  flowsReleased: number
  /** App-side packets rewritten toward the daemon (R:x -> A:L or A:d). */
  toDaemon: number
  /** Daemon-side packets rewritten toward the app or server (P -> A). */
  toApp: number
  resetsSent: number
}

// Flow flags (per slot).
const F_LIVE = 0x01
const F_SYN_APP = 0x02
const F_SYN_DAEMON = 0x04
const F_FIN_APP = 0x08
const F_FIN_DAEMON = 0x10
const F_RST = 0x20

const NONE = -1

export class TcpReflector {
  readonly listenerPort: number
  readonly portMin: number
  readonly portMax: number
  readonly maxFlows: number
  readonly prefix: OverlayPrefix
  private readonly timeouts: ReflectorTimeouts
  private readonly resetUnknown: boolean
  /** A and R, 16 bytes each. */
  private readonly local = new Uint8Array(16)
  private readonly reflector = new Uint8Array(16)
  private readonly reflectorText: string

  // Per slot (slot = NAT port - portMin).
  private readonly flags: Uint8Array
  private readonly kind: Uint8Array
  private readonly peerAddr: Uint8Array // 16 bytes per slot
  private readonly peerPort: Uint16Array
  private readonly localPort: Uint16Array
  private readonly daemonPort: Uint16Array // inbound: d (0 = not yet known)
  private readonly deadline: Float64Array
  private readonly hashNext: Int32Array
  private readonly livePos: Int32Array

  // Hash of live flows by (P, peer port, local port).
  private readonly buckets: Int32Array
  private readonly bucketMask: number

  // Live list (dense), free ring and quarantine ring of slots.
  private readonly live: Int32Array
  private liveCount = 0
  private readonly freeRing: Int32Array
  private freeHead = 0
  private freeCount = 0
  private readonly quarantineSlot: Int32Array
  private readonly quarantineUntil: Float64Array
  private quarantineHead = 0
  private quarantineCount = 0

  private readonly decision = new ReflectDecision()
  private readonly view = new Ipv6Packet()
  /** Control-plane scratch (registerInbound). */
  private readonly scratchAddr = new Uint8Array(16)
  private readonly drops: Record<ReflectorDropReason, number>
  private flowsCreated = 0
  private flowsExpired = 0
  private flowsReleased = 0
  private toDaemon = 0
  private toApp = 0
  private resetsSent = 0

  constructor(config: ReflectorConfig) {
    const prefix = config.prefix ?? DEFAULT_OVERLAY_PREFIX
    this.prefix = prefix
    if (!(config.localAddress instanceof Uint8Array) || config.localAddress.length !== 16 || classifyOverlayIpv6(config.localAddress, prefix) !== 'node') {
      throw new ConfigError('reflector: the local address must be a node address of the overlay prefix')
    }
    this.local.set(config.localAddress)
    const r = config.reflectorAddress ?? reflectorIpv6(prefix, readU16(config.localAddress, 6))
    if (r.length !== 16 || classifyOverlayIpv6(r, prefix) !== 'not-a-node') {
      throw new ConfigError('reflector: the reflector address must be inside the prefix and not a node')
    }
    this.reflector.set(r)
    this.reflectorText = formatIpv6(this.reflector)
    checkPort('listenerPort', config.listenerPort, 1)
    this.listenerPort = config.listenerPort
    this.portMin = config.portMin ?? 10000
    this.portMax = config.portMax ?? 60000
    checkPort('portMin', this.portMin, 1)
    checkPort('portMax', this.portMax, this.portMin)
    const n = this.portMax - this.portMin + 1
    this.maxFlows = config.maxFlows ?? Math.min(16384, n)
    if (!Number.isInteger(this.maxFlows) || this.maxFlows < 1) throw new ConfigError('reflector: maxFlows must be a positive integer')
    this.timeouts = { ...DEFAULT_REFLECTOR_TIMEOUTS, ...config.timeouts }
    this.resetUnknown = config.resetUnknown ?? true

    this.flags = new Uint8Array(n)
    this.kind = new Uint8Array(n)
    this.peerAddr = new Uint8Array(n * 16)
    this.peerPort = new Uint16Array(n)
    this.localPort = new Uint16Array(n)
    this.daemonPort = new Uint16Array(n)
    this.deadline = new Float64Array(n)
    this.hashNext = new Int32Array(n).fill(NONE)
    this.livePos = new Int32Array(n).fill(NONE)
    let buckets = 16
    while (buckets < 2 * Math.min(this.maxFlows, n)) buckets *= 2
    this.buckets = new Int32Array(buckets).fill(NONE)
    this.bucketMask = buckets - 1
    this.live = new Int32Array(n)
    this.freeRing = new Int32Array(n)
    for (let i = 0; i < n; i++) this.freeRing[i] = i
    if (config.random) {
      for (let i = n - 1; i > 0; i--) {
        const j = config.random.u32() % (i + 1)
        const t = this.freeRing[i]!
        this.freeRing[i] = this.freeRing[j]!
        this.freeRing[j] = t
      }
    }
    this.freeCount = n
    this.quarantineSlot = new Int32Array(n)
    this.quarantineUntil = new Float64Array(n)
    this.drops = {} as Record<ReflectorDropReason, number>
    for (const reason of REFLECTOR_DROP_REASONS) this.drops[reason] = 0
  }

  // ---- getters -------------------------------------------------------------

  /** R as text, e.g. `fd50:494c:4f54::1:0:1`. */
  get reflectorAddress(): string {
    return this.reflectorText
  }

  get liveFlows(): number {
    return this.liveCount
  }

  stats(): ReflectorStats {
    return {
      drops: { ...this.drops },
      liveFlows: this.liveCount,
      quarantinedPorts: this.quarantineCount,
      flowsCreated: this.flowsCreated,
      flowsExpired: this.flowsExpired,
      flowsReleased: this.flowsReleased,
      toDaemon: this.toDaemon,
      toApp: this.toApp,
      resetsSent: this.resetsSent,
    }
  }

  /**
   * For the internal listener: true iff a connection from `remoteAddress`
   * (text or 16 bytes) and `remotePort` is a reflected outbound flow, that
   * is, the remote is R and the port is a live outbound flow's NAT port.
   */
  isReflectedPeer(remoteAddress: string | Uint8Array, remotePort: number): boolean {
    let bytes: Uint8Array
    if (typeof remoteAddress === 'string') {
      try {
        bytes = parseIpv6(remoteAddress)
      } catch {
        return false
      }
    } else {
      bytes = remoteAddress
    }
    if (bytes.length !== 16 || !equal16(bytes, 0, this.reflector, 0)) return false
    const slot = this.slotOf(remotePort)
    return slot !== NONE && this.kind[slot] === FlowKind.Outbound && (this.flags[slot]! & F_SYN_APP) !== 0
  }

  /** The original (P, p, e) behind NAT port `natPort`, or null if no live flow owns it. */
  lookupByReflectedPort(natPort: number): ReflectedFlowInfo | null {
    const slot = this.slotOf(natPort)
    if (slot === NONE) return null
    const peer = mapIpv6ToPilot(this.peerAddr, this.prefix, slot * 16)
    if (peer === null) return null // cannot happen: only node addresses are stored
    return {
      kind: this.kind[slot] as FlowKind,
      natPort,
      peer,
      peerAddress: formatIpv6(this.peerAddr, slot * 16),
      peerPort: this.peerPort[slot]!,
      localPort: this.localPort[slot]!,
    }
  }

  // ---- inputs --------------------------------------------------------------

  /**
   * An inbound Pilot stream from `peer` (source port `peerPort`) to the local
   * server port `localPort`. `daemonPort` is the local port of the daemon's
   * socket (bound to A before this call), or 0 to accept the first SYN's port.
   * Answers the address and port the daemon must connect to (R:y).
   */
  registerInbound(now: number, peer: PilotAddress, peerPort: number, localPort: number, daemonPort = 0): InboundRegistration {
    if (!isPort(peerPort, 1) || !isPort(localPort, 1) || !isPort(daemonPort, 0)) return { ok: false, reason: 'bad-argument' }
    if (localPort === this.listenerPort) return { ok: false, reason: 'reserved-port' }
    const scratch = this.scratchAddr
    try {
      mapPilotToIpv6(peer, this.prefix, scratch, 0)
    } catch {
      return { ok: false, reason: 'bad-argument' }
    }
    if (equal16(scratch, 0, this.local, 0)) return { ok: false, reason: 'bad-argument' }
    const existing = this.find(scratch, 0, peerPort, localPort)
    if (existing !== NONE) {
      if (!isClosed(this.flags[existing]!)) return { ok: false, reason: 'flow-exists' }
      this.release(existing, now)
      this.flowsReleased++
    }
    const slot = this.allocate(now)
    if (slot < 0) return { ok: false, reason: slot === ALLOC_TABLE_FULL ? 'table-full' : 'ports-exhausted' }
    this.insert(slot, FlowKind.Inbound, scratch, 0, peerPort, localPort, daemonPort, now)
    const natPort = this.portMin + slot
    return { ok: true, natPort, connectAddress: this.reflectorText, connectAddressBytes: Uint8Array.from(this.reflector) }
  }

  /** Forgets the flow on `natPort` now (its port goes to quarantine). False if none. */
  releaseFlow(now: number, natPort: number): boolean {
    const slot = this.slotOf(natPort)
    if (slot === NONE) return false
    this.release(slot, now)
    this.flowsReleased++
    return true
  }

  /** Frees flows whose deadline is at or before `now`; returns how many. Call on a coarse tick (e.g. 1 s). */
  expire(now: number): number {
    let n = 0
    for (let i = 0; i < this.liveCount; ) {
      const slot = this.live[i]!
      if (this.deadline[slot]! <= now) {
        this.release(slot, now) // swaps the last live slot into position i
        n++
      } else {
        i++
      }
    }
    this.flowsExpired += n
    this.drainQuarantine(now)
    return n
  }

  /** Parses `buf[offset .. offset+length)` and handles it as `handleTcp` does. Never throws. */
  handlePacket(now: number, buf: Uint8Array, offset = 0, length = buf.length - offset): ReflectDecision {
    if (parseIpv6Into(this.view, buf, offset, length) !== null) return this.drop('malformed')
    return this.handleTcp(now, this.view)
  }

  /**
   * One packet read from the TUN, already parsed. If it is TCP from A to a
   * node or to R, it is rewritten in place (or replaced by an RST) and the
   * decision says WriteBack; otherwise Drop with a reason.
   */
  handleTcp(now: number, pkt: Ipv6Packet): ReflectDecision {
    if (pkt.protocol !== IPPROTO_TCP) return this.drop(pkt.fragmented ? 'fragment' : 'not-tcp')
    if (pkt.fragmented) return this.drop('fragment')
    const buf = pkt.buf
    const l4 = pkt.l4Offset
    if (checkTcp(buf, l4, pkt.l4Length) !== null) return this.drop('malformed')
    const ip = pkt.offset
    if (!equal16(buf, ip + IPV6_SRC_OFFSET, this.local, 0)) return this.drop('foreign-source')
    const dst = ip + IPV6_DST_OFFSET
    if (equal16(buf, dst, this.reflector, 0)) return this.fromDaemonSide(now, pkt)
    // App side: the destination must be a node address of the prefix.
    const prefix = this.prefix
    if (readU32(buf, dst) !== prefix.high32 || readU16(buf, dst + 4) !== prefix.low16) return this.drop('outside-prefix')
    if (readU32(buf, dst + 8) !== 0) return this.drop('not-a-node')
    if (equal16(buf, dst, this.local, 0)) return this.drop('to-self')
    return this.fromAppSide(now, pkt)
  }

  // ---- the two directions ----------------------------------------------------

  /** A:local -> P:peer, from a program (outbound) or a local server (inbound). */
  private fromAppSide(now: number, pkt: Ipv6Packet): ReflectDecision {
    const buf = pkt.buf
    const l4 = pkt.l4Offset
    const dst = pkt.offset + IPV6_DST_OFFSET
    const localPort = readU16(buf, l4)
    const peerPort = readU16(buf, l4 + 2)
    const tcpFlags = buf[l4 + 13]!
    const isNewSyn = (tcpFlags & (TCP_SYN | TCP_ACK | TCP_RST)) === TCP_SYN
    let slot = this.find(buf, dst, peerPort, localPort)
    if (slot !== NONE && isNewSyn && this.kind[slot] === FlowKind.Outbound && isClosed(this.flags[slot]!)) {
      // The program reuses its 4-tuple after the last connection closed: new flow, new NAT port.
      this.release(slot, now)
      this.flowsReleased++
      slot = NONE
    }
    if (slot === NONE) {
      if (!isNewSyn) return this.unknownFlow(pkt)
      if (localPort === 0 || peerPort === 0) return this.drop('bad-port')
      slot = this.allocate(now)
      if (slot < 0) return this.drop(slot === ALLOC_TABLE_FULL ? 'table-full' : 'ports-exhausted')
      this.insert(slot, FlowKind.Outbound, buf, dst, peerPort, localPort, 0, now)
    }
    let toPort: number
    if (this.kind[slot] === FlowKind.Outbound) {
      toPort = this.listenerPort
    } else {
      toPort = this.daemonPort[slot]!
      if (toPort === 0) return this.drop('not-connected')
    }
    this.track(slot, tcpFlags, F_SYN_APP, F_FIN_APP, now)
    // R:x -> A:toPort
    const natPort = this.portMin + slot
    this.rewrite(pkt, this.reflector, 0, natPort, this.local, 0, toPort)
    this.toDaemon++
    return this.writeBack(pkt.offset, pkt.length, natPort)
  }

  /** A:(L or d) -> R:x, from the daemon's sockets. */
  private fromDaemonSide(now: number, pkt: Ipv6Packet): ReflectDecision {
    const buf = pkt.buf
    const l4 = pkt.l4Offset
    const fromPort = readU16(buf, l4)
    const natPort = readU16(buf, l4 + 2)
    const tcpFlags = buf[l4 + 13]!
    const slot = this.slotOf(natPort)
    if (slot === NONE) return this.unknownFlow(pkt)
    if (this.kind[slot] === FlowKind.Outbound) {
      if (fromPort !== this.listenerPort) return this.drop('bad-port')
    } else {
      const d = this.daemonPort[slot]!
      if (d === 0) {
        if ((tcpFlags & (TCP_SYN | TCP_ACK | TCP_RST)) !== TCP_SYN || fromPort === 0) return this.drop('bad-port')
        this.daemonPort[slot] = fromPort
      } else if (fromPort !== d) {
        return this.drop('bad-port')
      }
    }
    this.track(slot, tcpFlags, F_SYN_DAEMON, F_FIN_DAEMON, now)
    // P:peerPort -> A:localPort
    this.rewrite(pkt, this.peerAddr, slot * 16, this.peerPort[slot]!, this.local, 0, this.localPort[slot]!)
    this.toApp++
    return this.writeBack(pkt.offset, pkt.length, natPort)
  }

  private unknownFlow(pkt: Ipv6Packet): ReflectDecision {
    const buf = pkt.buf
    if (!this.resetUnknown || (buf[pkt.l4Offset + 13]! & TCP_RST) !== 0) return this.drop('unknown-flow')
    const length = writeRstReply(buf, pkt.offset, pkt.l4Offset, pkt.l4Length)
    this.resetsSent++
    const d = this.writeBack(pkt.offset, length, 0)
    d.isReset = true
    return d
  }

  // ---- helpers ---------------------------------------------------------------

  /** Rewrites source, destination and both ports, then fixes the TCP checksum incrementally. */
  private rewrite(pkt: Ipv6Packet, src: Uint8Array, srcOff: number, srcPort: number, dst: Uint8Array, dstOff: number, dstPort: number): void {
    const buf = pkt.buf
    const ip = pkt.offset
    const l4 = pkt.l4Offset
    const before = sumWords(buf, ip + IPV6_SRC_OFFSET, ip + IPV6_DST_OFFSET + 16) + sumWords(buf, l4, l4 + 4)
    copy16(src, srcOff, buf, ip + IPV6_SRC_OFFSET)
    copy16(dst, dstOff, buf, ip + IPV6_DST_OFFSET)
    writeU16(buf, l4, srcPort)
    writeU16(buf, l4 + 2, dstPort)
    const after = sumWords(buf, ip + IPV6_SRC_OFFSET, ip + IPV6_DST_OFFSET + 16) + sumWords(buf, l4, l4 + 4)
    adjustChecksumField(buf, l4 + TCP_CHECKSUM_OFFSET, before, after)
  }

  /** Records SYN/FIN/RST from one side and moves the deadline. */
  private track(slot: number, tcpFlags: number, synBit: number, finBit: number, now: number): void {
    let f = this.flags[slot]!
    if (tcpFlags & TCP_RST) f |= F_RST
    if (tcpFlags & TCP_SYN) f |= synBit
    if (tcpFlags & TCP_FIN) f |= finBit
    this.flags[slot] = f
    this.deadline[slot] = now + this.timeoutFor(f)
  }

  private timeoutFor(f: number): number {
    const t = this.timeouts
    if (f & F_RST) return t.resetMs
    if ((f & (F_FIN_APP | F_FIN_DAEMON)) === (F_FIN_APP | F_FIN_DAEMON)) return t.timeWaitMs
    if (f & (F_FIN_APP | F_FIN_DAEMON)) return t.finWaitMs
    if ((f & (F_SYN_APP | F_SYN_DAEMON)) === (F_SYN_APP | F_SYN_DAEMON)) return t.establishedMs
    return t.synMs
  }

  private writeBack(offset: number, length: number, natPort: number): ReflectDecision {
    const d = this.decision
    d.action = ReflectAction.WriteBack
    d.reason = null
    d.offset = offset
    d.length = length
    d.natPort = natPort
    d.isReset = false
    return d
  }

  private drop(reason: ReflectorDropReason): ReflectDecision {
    this.drops[reason]++
    const d = this.decision
    d.action = ReflectAction.Drop
    d.reason = reason
    d.offset = 0
    d.length = 0
    d.natPort = 0
    d.isReset = false
    return d
  }

  /** Live slot of a NAT port, or NONE. */
  private slotOf(natPort: number): number {
    if (!(natPort >= this.portMin && natPort <= this.portMax)) return NONE
    const slot = natPort - this.portMin
    return (this.flags[slot]! & F_LIVE) !== 0 ? slot : NONE
  }

  private hash(addr: Uint8Array, off: number, peerPort: number, localPort: number): number {
    let h = Math.imul(readU32(addr, off + 12) ^ Math.imul(readU16(addr, off + 6), 0x9e3779b1), 0x85ebca6b)
    h ^= Math.imul((peerPort << 16) | localPort, 0xc2b2ae35)
    h ^= h >>> 15
    h = Math.imul(h, 0x2c1b3c6d)
    h ^= h >>> 13
    return h & this.bucketMask
  }

  /** Live slot of the app-side key (P at addr[off..], peer port, local port), or NONE. */
  private find(addr: Uint8Array, off: number, peerPort: number, localPort: number): number {
    let slot = this.buckets[this.hash(addr, off, peerPort, localPort)]!
    while (slot !== NONE) {
      if (this.peerPort[slot] === peerPort && this.localPort[slot] === localPort && equal16(this.peerAddr, slot * 16, addr, off)) return slot
      slot = this.hashNext[slot]!
    }
    return NONE
  }

  /** A free slot (moving expired quarantine entries to the free ring first), or ALLOC_* < 0. */
  private allocate(now: number): number {
    this.drainQuarantine(now)
    if (this.freeCount === 0) return ALLOC_EXHAUSTED
    if (this.liveCount >= this.maxFlows) return ALLOC_TABLE_FULL
    const slot = this.freeRing[this.freeHead]!
    this.freeHead = this.freeHead + 1 === this.freeRing.length ? 0 : this.freeHead + 1
    this.freeCount--
    return slot
  }

  private drainQuarantine(now: number): void {
    const n = this.quarantineSlot.length
    while (this.quarantineCount > 0 && this.quarantineUntil[this.quarantineHead]! <= now) {
      this.pushFree(this.quarantineSlot[this.quarantineHead]!)
      this.quarantineHead = this.quarantineHead + 1 === n ? 0 : this.quarantineHead + 1
      this.quarantineCount--
    }
  }

  private pushFree(slot: number): void {
    const n = this.freeRing.length
    let tail = this.freeHead + this.freeCount
    if (tail >= n) tail -= n
    this.freeRing[tail] = slot
    this.freeCount++
  }

  private insert(slot: number, kind: FlowKind, addr: Uint8Array, off: number, peerPort: number, localPort: number, daemonPort: number, now: number): void {
    this.flags[slot] = F_LIVE
    this.kind[slot] = kind
    copy16(addr, off, this.peerAddr, slot * 16)
    this.peerPort[slot] = peerPort
    this.localPort[slot] = localPort
    this.daemonPort[slot] = daemonPort
    this.deadline[slot] = now + this.timeouts.synMs
    const b = this.hash(addr, off, peerPort, localPort)
    this.hashNext[slot] = this.buckets[b]!
    this.buckets[b] = slot
    this.livePos[slot] = this.liveCount
    this.live[this.liveCount++] = slot
    this.flowsCreated++
  }

  /** Removes a live slot from the hash and the live list and puts its port in quarantine. */
  private release(slot: number, now: number): void {
    const b = this.hash(this.peerAddr, slot * 16, this.peerPort[slot]!, this.localPort[slot]!)
    let cur = this.buckets[b]!
    let prev = NONE
    while (cur !== NONE && cur !== slot) {
      prev = cur
      cur = this.hashNext[cur]!
    }
    if (cur === slot) {
      if (prev === NONE) this.buckets[b] = this.hashNext[slot]!
      else this.hashNext[prev] = this.hashNext[slot]!
    }
    this.hashNext[slot] = NONE
    const pos = this.livePos[slot]!
    const last = this.live[--this.liveCount]!
    this.live[pos] = last
    this.livePos[last] = pos
    this.livePos[slot] = NONE
    this.flags[slot] = 0
    this.kind[slot] = 0
    if (this.timeouts.quarantineMs <= 0) {
      this.pushFree(slot)
      return
    }
    const n = this.quarantineSlot.length
    let tail = this.quarantineHead + this.quarantineCount
    if (tail >= n) tail -= n
    this.quarantineSlot[tail] = slot
    this.quarantineUntil[tail] = now + this.timeouts.quarantineMs
    this.quarantineCount++
  }

  /**
   * Checks every structural invariant (tests and fuzzing; O(ports)). Throws an
   * Error naming the first broken one.
   */
  checkInvariants(): void {
    const n = this.flags.length
    if (this.liveCount + this.freeCount + this.quarantineCount !== n) {
      throw new Error(`reflector: ${this.liveCount} live + ${this.freeCount} free + ${this.quarantineCount} quarantined != ${n} ports`)
    }
    if (this.liveCount > this.maxFlows) throw new Error('reflector: more live flows than maxFlows')
    const seen = new Uint8Array(n)
    for (let i = 0; i < this.liveCount; i++) {
      const s = this.live[i]!
      if (seen[s]) throw new Error(`reflector: slot ${s} twice in the live list`)
      seen[s] = 1
      if (this.livePos[s] !== i) throw new Error(`reflector: livePos of slot ${s} is wrong`)
      if (!(this.flags[s]! & F_LIVE)) throw new Error(`reflector: live-listed slot ${s} not live`)
      if (this.kind[s] !== FlowKind.Outbound && this.kind[s] !== FlowKind.Inbound) throw new Error(`reflector: slot ${s} has no kind`)
      if (classifyOverlayIpv6(this.peerAddr, this.prefix, s * 16) !== 'node') throw new Error(`reflector: slot ${s} peer is not a node`)
      if (this.find(this.peerAddr, s * 16, this.peerPort[s]!, this.localPort[s]!) !== s) throw new Error(`reflector: slot ${s} not found by its key`)
    }
    for (let i = 0; i < this.freeCount; i++) {
      const s = this.freeRing[(this.freeHead + i) % n]!
      if (seen[s]) throw new Error(`reflector: slot ${s} both free and elsewhere`)
      seen[s] = 2
    }
    for (let i = 0; i < this.quarantineCount; i++) {
      const s = this.quarantineSlot[(this.quarantineHead + i) % n]!
      if (seen[s]) throw new Error(`reflector: slot ${s} both quarantined and elsewhere`)
      seen[s] = 3
    }
    let chained = 0
    for (let b = 0; b < this.buckets.length; b++) {
      for (let s = this.buckets[b]!; s !== NONE; s = this.hashNext[s]!) {
        if (seen[s] !== 1) throw new Error(`reflector: slot ${s} chained but not live`)
        if (++chained > this.liveCount) throw new Error('reflector: hash chains loop or hold extra slots')
      }
    }
    if (chained !== this.liveCount) throw new Error('reflector: hash chains miss live flows')
    for (let s = 0; s < n; s++) if (seen[s] !== 1 && this.flags[s] !== 0) throw new Error(`reflector: dead slot ${s} has flags`)
  }
}

const ALLOC_TABLE_FULL = -2
const ALLOC_EXHAUSTED = -3

function isClosed(f: number): boolean {
  return (f & F_RST) !== 0 || (f & (F_FIN_APP | F_FIN_DAEMON)) === (F_FIN_APP | F_FIN_DAEMON)
}

function isPort(v: number, min: number): boolean {
  return Number.isInteger(v) && v >= min && v <= 0xffff
}

function checkPort(name: string, v: number, min: number): void {
  if (!isPort(v, min)) throw new ConfigError(`reflector: ${name} ${v} must be an integer in ${min}..65535`)
}
