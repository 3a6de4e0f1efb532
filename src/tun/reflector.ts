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
 * Per packet: no allocation. The rewriting and the API are here; the pieces
 * own their data: reflector-table.ts (struct-of-arrays flow table indexed by
 * NAT port, with the hash and the live list), reflector-ports.ts (free ports
 * and quarantine) and reflector-state.ts (the per-flow TCP flags and the
 * timeout they select). The `ReflectDecision` returned is one object reused
 * by every call: read it before the next call.
 */
import { readU16, writeU16 } from '../bytes.js'
import { ConfigError } from '../errors.js'
import type { RandomSource } from '../random.js'
import type { PilotAddress } from '../protocol/address.js'
import {
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
import { TCP_ACK, TCP_CHECKSUM_OFFSET, TCP_RST, TCP_SYN, checkTcp, writeRstReply } from './packets/tcp.js'
import { ALLOC_TABLE_FULL, FlowKind, FlowTable, NO_FLOW } from './reflector-table.js'
import {
  DEFAULT_REFLECTOR_TIMEOUTS,
  F_FIN_APP,
  F_FIN_DAEMON,
  F_SYN_APP,
  F_SYN_DAEMON,
  flowFlagsAfter,
  flowTimeout,
  isFlowClosed,
  type ReflectorTimeouts,
} from './reflector-state.js'

export { FlowKind } from './reflector-table.js'
export { DEFAULT_REFLECTOR_TIMEOUTS, type ReflectorTimeouts } from './reflector-state.js'

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

export interface ReflectorConfig {
  /** A: the node's own mapped address (16 bytes; must be a node of the prefix). */
  localAddress: Uint8Array
  /** L: the daemon's internal TCP listener port on A. */
  listenerPort: number
  /** The overlay prefix A, R and every P belong to. */
  prefix: OverlayPrefix
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
  /** A_N: the local address in the network of the flow being rewritten (bytes 6..7 vary). */
  private readonly localInNetwork = new Uint8Array(16)
  private readonly reflector = new Uint8Array(16)
  private readonly reflectorText: string
  private readonly flows: FlowTable
  private readonly decision = new ReflectDecision()
  private readonly view = new Ipv6Packet()
  /** Control-plane scratch (registerInbound). */
  private readonly scratchAddr = new Uint8Array(16)
  private readonly drops: Record<ReflectorDropReason, number>
  private toDaemon = 0
  private toApp = 0
  private resetsSent = 0

  constructor(config: ReflectorConfig) {
    const prefix = config.prefix
    this.prefix = prefix
    const a = config.localAddress instanceof Uint8Array && config.localAddress.length === 16 ? mapIpv6ToPilot(config.localAddress, prefix) : null
    if (a === null) throw new ConfigError('reflector: the local address must be a node address of the overlay prefix')
    this.local.set(config.localAddress)
    this.localInNetwork.set(config.localAddress)
    const r = config.reflectorAddress ?? reflectorIpv6(prefix, a.network)
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
    this.maxFlows = config.maxFlows ?? Math.min(16384, this.portMax - this.portMin + 1)
    if (!Number.isInteger(this.maxFlows) || this.maxFlows < 1) throw new ConfigError('reflector: maxFlows must be a positive integer')
    this.timeouts = { ...DEFAULT_REFLECTOR_TIMEOUTS, ...config.timeouts }
    this.resetUnknown = config.resetUnknown ?? true
    this.flows = new FlowTable({
      portMin: this.portMin,
      portMax: this.portMax,
      maxFlows: this.maxFlows,
      quarantineMs: this.timeouts.quarantineMs,
      ...(config.random ? { random: config.random } : {}),
    })
    this.drops = {} as Record<ReflectorDropReason, number>
    for (const reason of REFLECTOR_DROP_REASONS) this.drops[reason] = 0
  }

  // ---- getters -------------------------------------------------------------

  /** R as text, e.g. `fd50:494c:4f54::1:0:1`. */
  get reflectorAddress(): string {
    return this.reflectorText
  }

  get liveFlows(): number {
    return this.flows.size
  }

  stats(): ReflectorStats {
    const f = this.flows
    return {
      drops: { ...this.drops },
      liveFlows: f.size,
      quarantinedPorts: f.quarantinedPorts,
      flowsCreated: f.flowsCreated,
      flowsExpired: f.flowsExpired,
      flowsReleased: f.flowsReleased,
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
    const f = this.flows
    const slot = f.slotOf(remotePort)
    return slot !== NO_FLOW && f.kind[slot] === FlowKind.Outbound && (f.flags[slot]! & F_SYN_APP) !== 0
  }

  /** The original (P, p, e) behind NAT port `natPort`, or null if no live flow owns it. */
  lookupByReflectedPort(natPort: number): ReflectedFlowInfo | null {
    const f = this.flows
    const slot = f.slotOf(natPort)
    if (slot === NO_FLOW) return null
    const peer = mapIpv6ToPilot(f.peerAddr, this.prefix, slot * 16)
    if (peer === null) return null // cannot happen: only node addresses are stored
    return {
      kind: f.kind[slot] as FlowKind,
      natPort,
      peer,
      peerAddress: formatIpv6(f.peerAddr, slot * 16),
      peerPort: f.peerPort[slot]!,
      localPort: f.localPort[slot]!,
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
    if (sameNode(scratch, 0, this.local, 0)) return { ok: false, reason: 'bad-argument' }
    const f = this.flows
    const existing = f.find(scratch, 0, peerPort, localPort)
    if (existing !== NO_FLOW) {
      if (!isFlowClosed(f.flags[existing]!)) return { ok: false, reason: 'flow-exists' }
      f.release(existing, now)
    }
    const slot = f.add(now, FlowKind.Inbound, scratch, 0, peerPort, localPort, daemonPort, now + this.timeouts.synMs)
    if (slot < 0) return { ok: false, reason: slot === ALLOC_TABLE_FULL ? 'table-full' : 'ports-exhausted' }
    return { ok: true, natPort: f.natPortOf(slot), connectAddress: this.reflectorText, connectAddressBytes: Uint8Array.from(this.reflector) }
  }

  /** Forgets the flow on `natPort` now (its port goes to quarantine). False if none. */
  releaseFlow(now: number, natPort: number): boolean {
    const slot = this.flows.slotOf(natPort)
    if (slot === NO_FLOW) return false
    this.flows.release(slot, now)
    return true
  }

  /** Frees flows whose deadline is at or before `now`; returns how many. Call on a coarse tick (e.g. 1 s). */
  expire(now: number): number {
    return this.flows.expire(now)
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
    const src = ip + IPV6_SRC_OFFSET
    const dst = ip + IPV6_DST_OFFSET
    if (equal16(buf, dst, this.reflector, 0)) {
      // The daemon's listener and sockets live on A itself.
      if (!equal16(buf, src, this.local, 0)) return this.drop('foreign-source')
      return this.fromDaemonSide(now, pkt)
    }
    // App side: A_N -> P_N, our address in the destination's network (the
    // bridge has checked that we are a member of it).
    if (!sameNode(buf, src, this.local, 0) || buf[src + 6] !== buf[dst + 6] || buf[src + 7] !== buf[dst + 7]) {
      return this.drop('foreign-source')
    }
    // The destination must be a node address of the prefix.
    const kind = classifyOverlayIpv6(buf, this.prefix, dst)
    if (kind !== 'node') return this.drop(kind)
    if (equal16(buf, dst, buf, src)) return this.drop('to-self')
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
    const f = this.flows
    let slot = f.find(buf, dst, peerPort, localPort)
    if (slot !== NO_FLOW && isNewSyn && f.kind[slot] === FlowKind.Outbound && isFlowClosed(f.flags[slot]!)) {
      // The program reuses its 4-tuple after the last connection closed: new flow, new NAT port.
      f.release(slot, now)
      slot = NO_FLOW
    }
    if (slot === NO_FLOW) {
      if (!isNewSyn) return this.unknownFlow(pkt)
      if (localPort === 0 || peerPort === 0) return this.drop('bad-port')
      slot = f.add(now, FlowKind.Outbound, buf, dst, peerPort, localPort, 0, now + this.timeouts.synMs)
      if (slot < 0) return this.drop(slot === ALLOC_TABLE_FULL ? 'table-full' : 'ports-exhausted')
    }
    let toPort: number
    if (f.kind[slot] === FlowKind.Outbound) {
      toPort = this.listenerPort
    } else {
      toPort = f.daemonPort[slot]!
      if (toPort === 0) return this.drop('not-connected')
    }
    this.track(slot, tcpFlags, F_SYN_APP, F_FIN_APP, now)
    // R:x -> A:toPort
    const natPort = f.natPortOf(slot)
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
    const f = this.flows
    const slot = f.slotOf(natPort)
    if (slot === NO_FLOW) return this.unknownFlow(pkt)
    if (f.kind[slot] === FlowKind.Outbound) {
      if (fromPort !== this.listenerPort) return this.drop('bad-port')
    } else {
      const d = f.daemonPort[slot]!
      if (d === 0) {
        if ((tcpFlags & (TCP_SYN | TCP_ACK | TCP_RST)) !== TCP_SYN || fromPort === 0) return this.drop('bad-port')
        f.daemonPort[slot] = fromPort
      } else if (fromPort !== d) {
        return this.drop('bad-port')
      }
    }
    this.track(slot, tcpFlags, F_SYN_DAEMON, F_FIN_DAEMON, now)
    // P:peerPort -> A_N:localPort, N = P's network
    const a = this.localInNetwork
    a[6] = f.peerAddr[slot * 16 + 6]!
    a[7] = f.peerAddr[slot * 16 + 7]!
    this.rewrite(pkt, f.peerAddr, slot * 16, f.peerPort[slot]!, a, 0, f.localPort[slot]!)
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
    const f = this.flows
    const flags = flowFlagsAfter(f.flags[slot]!, tcpFlags, synBit, finBit)
    f.flags[slot] = flags
    f.deadline[slot] = now + flowTimeout(flags, this.timeouts)
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

  /**
   * Checks every structural invariant of the flow table (tests and fuzzing;
   * O(ports)). Throws an Error naming the first broken one.
   */
  checkInvariants(): void {
    this.flows.checkInvariants(this.prefix)
  }
}

/** Equal but for bytes 6..7 (the network): the same node of the same prefix. */
function sameNode(a: Uint8Array, aOff: number, b: Uint8Array, bOff: number): boolean {
  for (let i = 0; i < 16; i++) {
    if (i !== 6 && i !== 7 && a[aOff + i] !== b[bOff + i]) return false
  }
  return true
}

function isPort(v: number, min: number): boolean {
  return Number.isInteger(v) && v >= min && v <= 0xffff
}

function checkPort(name: string, v: number, min: number): void {
  if (!isPort(v, min)) throw new ConfigError(`reflector: ${name} ${v} must be an integer in ${min}..65535`)
}
