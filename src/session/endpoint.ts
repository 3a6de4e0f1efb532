/**
 * The session endpoint of one local node: port multiplexer for streams (0x01),
 * datagrams (0x02) and control ping/pong (0x03). Sans-IO like the connections.
 *
 *   A. getters      connectionCount, listening(port), stats()
 *   B. inputs       handlePacket(now, h, payload) → StreamConnection | IncomingStream | null
 *                   handleTimeout(now)
 *   C. commands     listen/unlisten, connect, accept/refuse, sendDatagram, sendPing, close
 *   D. outputs      pollTransmit(now, out, offset) (control packets first, then the
 *                   connections round-robin, one packet each), pollTimeout(), pollEvent()
 *
 * Demux key: remote 48-bit address → (localPort << 16 | remotePort); two Map
 * lookups on numbers, no strings on the hot path. Policy (trust) stays outside:
 * an incoming SYN on a listening port is reported as an `IncomingStream` that the
 * caller accepts or refuses (refuse = RST).
 */
import { Flag, HEADER_SIZE, MAX_PAYLOAD, PROTOCOL_VERSION, Protocol, PacketHeader, encodePacketInPlace } from '../protocol/header.js'
import { addressKey, type PilotAddress } from '../protocol/address.js'
import type { RandomSource } from '../random.js'
import { SessionUsageError } from './errors.js'
import { fillHeader } from './packet-fields.js'
import { BufferPool } from './buffer-pool.js'
import { StreamConnection, StreamState, type StreamConfig, type TransmitScheduler } from './stream.js'
import type { Millis } from './types.js'
import { DEFAULT_PEER_FLIGHT_LIMIT, FlightShare } from './flight-share.js'
import { DEFAULT_MSS } from './stream-config.js'

export const EPHEMERAL_PORT_MIN = 49152
export const EPHEMERAL_PORT_MAX = 65535
export const PING_PORT = 0

/** A SYN waiting for the caller's accept/refuse decision. */
export interface IncomingStream {
  readonly kind: 'incoming'
  readonly remote: PilotAddress
  readonly remotePort: number
  readonly localPort: number
  readonly synSeq: number
  readonly synWindow: number
  readonly receivedAt: Millis
}

export interface DatagramEvent {
  readonly kind: 'datagram'
  readonly remote: PilotAddress
  readonly remotePort: number
  readonly localPort: number
  readonly data: Uint8Array
}

export interface PongEvent {
  readonly kind: 'pong'
  readonly remote: PilotAddress
  readonly id: number
  readonly rtt: Millis
  readonly payload: Uint8Array
}

export type EndpointEvent = IncomingStream | DatagramEvent | PongEvent

export interface EndpointConfig {
  readonly local: PilotAddress
  readonly random: RandomSource
  /** Defaults for every stream of this endpoint. */
  readonly stream?: Partial<StreamConfig>
  readonly maxConnectionsPerPort?: number
  readonly maxConnections?: number
  /**
   * SYNs waiting for the caller's accept/refuse. When full, further SYNs are
   * dropped (not refused): the peer retransmits, so a burst of connections
   * slows down instead of failing. Default 1024.
   */
  readonly maxPendingIncoming?: number
  readonly maxOutstandingPings?: number
  /**
   * Bytes of new data the streams to one peer may have in flight together (flight-share.ts).
   * Default `DEFAULT_PEER_FLIGHT_LIMIT` (2 MiB, one stream's default window) or the streams'
   * `receiveBufferSize` where larger; 0 = no shared limit.
   */
  readonly peerFlightLimit?: number
  /**
   * Packets a connection sends in a row before the next ready one gets its turn (round-robin).
   * More than one lets a receive batch at the peer touch fewer streams, so it answers with
   * fewer ACKs (one per stream and batch). Default `DEFAULT_TURN_QUANTUM`.
   */
  readonly turnQuantum?: number
  /** The buffers every stream's rings share; default a new pool (DEFAULT_POOLED_BYTES free at most). */
  readonly buffers?: BufferPool
}

/** Default `turnQuantum`. */
export const DEFAULT_TURN_QUANTUM = 16

export interface EndpointStats {
  streamPacketsIn: number
  datagramsIn: number
  controlIn: number
  droppedNoConnection: number
  droppedBadProtocol: number
  droppedEmptyDatagram: number
  /** SYNs dropped because `maxPendingIncoming` decisions were outstanding. */
  droppedPendingFull: number
  rstSent: number
  pongsSent: number
  pingsSent: number
}

interface ListenerEntry {
  readonly config: Partial<StreamConfig> | undefined
}

interface PendingPing {
  readonly remoteKey: number
  readonly sentAt: Millis
}

/** FIFO of connections that may have something to send. */
class ReadyQueue implements TransmitScheduler {
  private items: Array<StreamConnection | null> = new Array(16).fill(null)
  private head = 0
  size = 0

  wake(conn: StreamConnection): void {
    if (conn.queued) return
    conn.queued = true
    this.push(conn)
  }

  push(conn: StreamConnection): void {
    if (this.size === this.items.length) {
      const next: Array<StreamConnection | null> = new Array(this.items.length * 2).fill(null)
      for (let k = 0; k < this.size; k++) next[k] = this.items[(this.head + k) % this.items.length]!
      this.items = next
      this.head = 0
    }
    this.items[(this.head + this.size) % this.items.length] = conn
    this.size++
  }

  shift(): StreamConnection | null {
    if (this.size === 0) return null
    const c = this.items[this.head]!
    this.items[this.head] = null
    this.head = (this.head + 1) % this.items.length
    this.size--
    return c
  }
}

export class SessionEndpoint {
  readonly local: PilotAddress
  private readonly random: RandomSource
  private readonly streamDefaults: Partial<StreamConfig>
  /** Ring buffers shared by this endpoint's streams. */
  readonly buffers: BufferPool
  private readonly conns = new Map<number, Map<number, StreamConnection>>()
  private readonly all: StreamConnection[] = []
  private readonly pending = new Map<number, Map<number, IncomingStream>>()
  private pendingCount = 0
  private readonly portUse = new Map<number, number>()
  private readonly listeners = new Map<number, ListenerEntry>()
  /** `listenAny`: SYNs to ports without a listener become IncomingStreams too (the TUN bridge decides). */
  private anyPort = false
  private readonly ready = new ReadyQueue()
  private readonly control: Uint8Array[] = [] // encoded packets waiting to leave
  private readonly events: EndpointEvent[] = []
  private readonly pings = new Map<number, PendingPing>()
  private nextEphemeral = EPHEMERAL_PORT_MIN
  private nextPingId: number
  private readonly maxPerPort: number
  private readonly maxConnections: number
  private readonly maxPending: number
  private readonly maxPings: number
  private readonly scratch = new PacketHeader()
  /** One flight share per remote node with connections (by remoteKey), when `peerFlightLimit` > 0. */
  private readonly shares = new Map<number, FlightShare>()
  private readonly peerFlightLimit: number
  /** The connection in its turn of the round-robin (out of the ready queue meanwhile), and packets it has left. */
  private turn: StreamConnection | null = null
  private turnLeft = 0
  private readonly turnQuantum: number
  private readonly st: EndpointStats = {
    streamPacketsIn: 0,
    datagramsIn: 0,
    controlIn: 0,
    droppedNoConnection: 0,
    droppedBadProtocol: 0,
    droppedEmptyDatagram: 0,
    droppedPendingFull: 0,
    rstSent: 0,
    pongsSent: 0,
    pingsSent: 0,
  }

  private readonly localByNetwork = new Map<number, PilotAddress>()

  constructor(config: EndpointConfig) {
    this.local = config.local
    this.random = config.random
    this.buffers = config.buffers ?? new BufferPool()
    this.streamDefaults = { buffers: this.buffers, ...config.stream }
    this.maxPerPort = config.maxConnectionsPerPort ?? 1024
    this.maxConnections = config.maxConnections ?? 4096
    this.maxPending = config.maxPendingIncoming ?? 1024
    this.maxPings = config.maxOutstandingPings ?? 256
    // By default at least one stream's own receive window: one stream alone is never held back by the share.
    this.peerFlightLimit = config.peerFlightLimit ?? Math.max(DEFAULT_PEER_FLIGHT_LIMIT, config.stream?.receiveBufferSize ?? 0)
    this.turnQuantum = Math.max(1, Math.floor(config.turnQuantum ?? DEFAULT_TURN_QUANTUM))
    this.nextPingId = config.random.u32() >>> 1
  }

  /**
   * Our address as seen from `network`: a flow in network N is addressed
   * `N:node` at both ends (a packet's source and destination network are the
   * same), so our side of it is `{N, our node}`. One frozen object per network.
   */
  private localIn(network: number): PilotAddress {
    if (network === this.local.network) return this.local
    let a = this.localByNetwork.get(network)
    if (a === undefined) {
      a = Object.freeze({ network, node: this.local.node })
      this.localByNetwork.set(network, a)
    }
    return a
  }

  // ───────────────────────── A. getters ─────────────────────────

  get connectionCount(): number {
    return this.all.length
  }

  connections(): readonly StreamConnection[] {
    return this.all
  }

  listening(port: number): boolean {
    return this.listeners.has(port)
  }

  stats(): EndpointStats {
    return { ...this.st }
  }

  // ───────────────────────── B. inputs ─────────────────────────

  /**
   * A decoded packet addressed to this node. Returns the stream connection it
   * touched, a new `IncomingStream` (also queued as an event) or null when the
   * packet was answered or dropped here (datagram, ping, RST to a closed port…).
   */
  handlePacket(now: Millis, h: PacketHeader, payload: Uint8Array): StreamConnection | IncomingStream | null {
    switch (h.protocol) {
      case Protocol.STREAM:
        this.st.streamPacketsIn++
        return this.handleStream(now, h, payload)
      case Protocol.DATAGRAM:
        this.handleDatagram(h, payload)
        return null
      case Protocol.CONTROL:
        this.handleControl(now, h, payload)
        return null
      default:
        this.st.droppedBadProtocol++
        return null
    }
  }

  handleTimeout(now: Millis): void {
    const all = this.all
    for (let k = 0; k < all.length; k++) {
      const c = all[k]!
      const t = c.pollTimeout()
      if (t !== null && t <= now) {
        c.handleTimeout(now)
        if (c.isClosed && !c.queued) this.ready.wake(c) // lets pollTransmit reap it
      }
    }
  }

  // ───────────────────────── C. commands ─────────────────────────

  listen(port: number, config?: Partial<StreamConfig>): void {
    checkPort(port)
    if (this.listeners.has(port)) throw new SessionUsageError('PT_SESSION_PORT_IN_USE', `port ${port} already has a listener`)
    this.listeners.set(port, { config })
  }

  unlisten(port: number): void {
    this.listeners.delete(port)
  }

  /**
   * With `on`, a SYN to a port without a listener is reported as an
   * `IncomingStream` like any other (the caller accepts or refuses it later),
   * instead of being answered with RST at once. The TUN bridge uses this to
   * offer every port to the host's kernel servers.
   */
  listenAny(on: boolean): void {
    this.anyPort = on
  }

  /** Opens a stream from a fresh ephemeral port; the SYN comes out of pollTransmit. */
  connect(now: Millis, remote: PilotAddress, port: number, config?: Partial<StreamConfig>): StreamConnection {
    checkPort(port)
    const localPort = this.allocatePort()
    const conn = new StreamConnection(now, this.localIn(remote.network), localPort, remote, port, this.random, this.mergeConfig(config), null)
    this.insert(conn)
    return conn
  }

  accept(now: Millis, incoming: IncomingStream, config?: Partial<StreamConfig>): StreamConnection {
    this.removePending(incoming)
    const listener = this.listeners.get(incoming.localPort)
    const merged = this.mergeConfig({ ...listener?.config, ...config })
    const conn = new StreamConnection(now, this.localIn(incoming.remote.network), incoming.localPort, incoming.remote, incoming.remotePort, this.random, merged, {
      synSeq: incoming.synSeq,
      synWindow: incoming.synWindow,
    })
    this.insert(conn)
    return conn
  }

  refuse(now: Millis, incoming: IncomingStream): void {
    void now
    if (this.removePending(incoming)) {
      this.queueRst(incoming.remote.network, incoming.remote.node, incoming.localPort, incoming.remotePort)
    }
  }

  /**
   * Sends one datagram (§7): flags 0, seq/ack/window 0. The source port is a
   * fresh ephemeral port unless given (a UDP flow bridge keeps its port).
   * Returns the source port used.
   */
  sendDatagram(now: Millis, remote: PilotAddress, port: number, data: Uint8Array, sourcePort?: number): number {
    void now
    checkPort(port)
    if (data.length > MAX_PAYLOAD) throw new SessionUsageError('PT_SESSION_BAD_ARGUMENT', `datagram of ${data.length} bytes exceeds 65535`)
    const src = sourcePort ?? this.nextDatagramPort()
    const h = this.scratch
    fillHeader(h, Protocol.DATAGRAM, 0, this.localIn(remote.network), src, remote, port, 0, 0, 0)
    const pkt = new Uint8Array(HEADER_SIZE + data.length)
    pkt.set(data, HEADER_SIZE)
    encodePacketInPlace(h, pkt, 0, data.length)
    this.control.push(pkt)
    return src
  }

  /** Sends a control ping to port 0 of `remote`; the matching pong becomes a 'pong' event. Returns its id. */
  sendPing(now: Millis, remote: PilotAddress, payload: Uint8Array = new Uint8Array(0)): number {
    const id = this.nextPingId
    this.nextPingId = (this.nextPingId + 1) >>> 0
    if (this.pings.size >= this.maxPings) {
      const oldest = this.pings.keys().next().value as number
      this.pings.delete(oldest)
    }
    this.pings.set(id, { remoteKey: addressKey(remote), sentAt: now })
    const h = this.scratch
    const srcPort = this.pingSourcePort()
    fillHeader(h, Protocol.CONTROL, 0, this.localIn(remote.network), srcPort, remote, PING_PORT, id, 0, 0)
    const pkt = new Uint8Array(HEADER_SIZE + payload.length)
    pkt.set(payload, HEADER_SIZE)
    encodePacketInPlace(h, pkt, 0, payload.length)
    this.control.push(pkt)
    this.st.pingsSent++
    return id
  }

  /** Resets every connection (daemon shutdown). */
  close(now: Millis): void {
    for (const c of this.all.slice()) c.reset(now)
  }

  // ───────────────────────── D. outputs ─────────────────────────

  pollTransmit(now: Millis, out: Uint8Array, offset: number): number {
    if (this.control.length > 0) {
      const pkt = this.control.shift()!
      out.set(pkt, offset)
      return pkt.length
    }
    for (;;) {
      // The connection whose turn it is keeps it for up to `burst` packets (see `turnQuantum`).
      let c = this.turn
      if (c === null) {
        c = this.ready.shift()
        if (c === null) return 0
        this.turn = c
        this.turnLeft = this.turnQuantum
      }
      const n = c.pollTransmit(now, out, offset)
      if (n > 0) {
        if (--this.turnLeft <= 0) {
          this.turn = null
          this.ready.push(c) // stays queued: round-robin, one turn each
        }
        return n
      }
      this.turn = null
      c.queued = false
      if (c.isClosed) this.remove(c)
    }
  }

  pollTimeout(): Millis | null {
    let m = Number.POSITIVE_INFINITY
    const all = this.all
    for (let k = 0; k < all.length; k++) {
      const t = all[k]!.pollTimeout()
      if (t !== null && t < m) m = t
    }
    return m === Number.POSITIVE_INFINITY ? null : m
  }

  pollEvent(): EndpointEvent | null {
    return this.events.length > 0 ? this.events.shift()! : null
  }

  // ───────────────────────── internals ─────────────────────────

  private handleStream(now: Millis, h: PacketHeader, payload: Uint8Array): StreamConnection | IncomingStream | null {
    const remoteKey = h.srcNetwork * 0x1_0000_0000 + h.srcNode
    const portsKey = h.dstPort * 0x10000 + h.srcPort
    const byPorts = this.conns.get(remoteKey)
    const conn = byPorts === undefined ? undefined : byPorts.get(portsKey)
    const isSyn = (h.flags & (Flag.SYN | Flag.ACK)) === Flag.SYN
    if (conn !== undefined && isSyn && conn.state === StreamState.TimeWait && h.seq !== conn.peerInitialSequenceNumber) {
      // A new dial (fresh ISN) on a 4-tuple still in TIME_WAIT: let the old one go.
      this.remove(conn)
    } else if (conn !== undefined) {
      conn.handlePacket(now, h, payload)
      if (conn.isClosed && !conn.queued) this.ready.wake(conn)
      return conn
    }
    if (!isSyn) {
      this.st.droppedNoConnection++ // §6.3: no RST for non-SYN strays
      return null
    }
    // SYN for a new connection (§6.4 order).
    if (h.version !== PROTOCOL_VERSION) {
      this.queueRst(h.srcNetwork, h.srcNode, h.dstPort, h.srcPort) // §15.1: no downgrade
      return null
    }
    if (!this.anyPort && !this.listeners.has(h.dstPort)) {
      this.queueRst(h.srcNetwork, h.srcNode, h.dstPort, h.srcPort)
      return null
    }
    const pendingByPorts = this.pending.get(remoteKey)
    if (pendingByPorts !== undefined && pendingByPorts.has(portsKey)) return null // retransmitted SYN, decision pending
    if (this.pendingCount >= this.maxPending) {
      this.st.droppedPendingFull++ // the peer's SYN retransmission tries again
      return null
    }
    if ((this.portUse.get(h.dstPort) ?? 0) >= this.maxPerPort || this.all.length >= this.maxConnections) {
      this.queueRst(h.srcNetwork, h.srcNode, h.dstPort, h.srcPort)
      return null
    }
    const inc: IncomingStream = {
      kind: 'incoming',
      remote: { network: h.srcNetwork, node: h.srcNode },
      remotePort: h.srcPort,
      localPort: h.dstPort,
      synSeq: h.seq,
      synWindow: h.window,
      receivedAt: now,
    }
    let m = pendingByPorts
    if (m === undefined) {
      m = new Map()
      this.pending.set(remoteKey, m)
    }
    m.set(portsKey, inc)
    this.pendingCount++
    this.events.push(inc)
    return inc
  }

  private handleDatagram(h: PacketHeader, payload: Uint8Array): void {
    if (payload.length === 0) {
      this.st.droppedEmptyDatagram++
      return
    }
    this.st.datagramsIn++
    this.events.push({
      kind: 'datagram',
      remote: { network: h.srcNetwork, node: h.srcNode },
      remotePort: h.srcPort,
      localPort: h.dstPort,
      data: payload.slice(), // the caller's receive buffer is reused
    })
  }

  private handleControl(now: Millis, h: PacketHeader, payload: Uint8Array): void {
    this.st.controlIn++
    if (h.dstPort === PING_PORT) {
      // §8 pong: ACK, src port 0, dst port = ping's src port, seq echoed, ack = seq + 1, window 0, payload echoed.
      const r = this.scratch
      fillHeader(r, Protocol.CONTROL, Flag.ACK, this.localIn(h.srcNetwork), 0, { network: h.srcNetwork, node: h.srcNode }, h.srcPort, h.seq, (h.seq + 1) >>> 0, 0)
      const pkt = new Uint8Array(HEADER_SIZE + payload.length)
      pkt.set(payload, HEADER_SIZE)
      encodePacketInPlace(r, pkt, 0, payload.length)
      this.control.push(pkt)
      this.st.pongsSent++
      return
    }
    if (h.srcPort === PING_PORT && (h.flags & Flag.ACK) !== 0) {
      const ping = this.pings.get(h.seq)
      if (ping !== undefined && ping.remoteKey === h.srcNetwork * 0x1_0000_0000 + h.srcNode && h.ack === ((h.seq + 1) >>> 0)) {
        this.pings.delete(h.seq)
        this.events.push({
          kind: 'pong',
          remote: { network: h.srcNetwork, node: h.srcNode },
          id: h.seq,
          rtt: now - ping.sentAt,
          payload: payload.slice(),
        })
      }
    }
    // Every other control packet is ignored (§8).
  }

  private queueRst(dstNetwork: number, dstNode: number, localPort: number, remotePort: number): void {
    const h = this.scratch
    fillHeader(h, Protocol.STREAM, Flag.RST, this.localIn(dstNetwork), localPort, { network: dstNetwork, node: dstNode }, remotePort, 0, 0, 0)
    const pkt = new Uint8Array(HEADER_SIZE)
    encodePacketInPlace(h, pkt, 0, 0)
    this.control.push(pkt)
    this.st.rstSent++
  }

  private mergeConfig(config: Partial<StreamConfig> | undefined): Partial<StreamConfig> | undefined {
    if (config === undefined) return this.streamDefaults
    return { ...this.streamDefaults, ...config }
  }

  private insert(conn: StreamConnection): void {
    let m = this.conns.get(conn.remoteKey)
    if (m === undefined) {
      m = new Map()
      this.conns.set(conn.remoteKey, m)
    }
    m.set(conn.portsKey, conn)
    this.all.push(conn)
    this.portUse.set(conn.localPort, (this.portUse.get(conn.localPort) ?? 0) + 1)
    conn.scheduler = this.ready
    if (this.peerFlightLimit > 0) {
      let share = this.shares.get(conn.remoteKey)
      if (share === undefined) {
        share = new FlightShare(this.peerFlightLimit, this.streamDefaults?.mss ?? DEFAULT_MSS)
        this.shares.set(conn.remoteKey, share)
      }
      share.members++
      conn.joinShare(share)
    }
    this.ready.wake(conn)
  }

  /** The flight share of the streams to `remote` (tests, stats); undefined when it has none. */
  flightShare(remote: PilotAddress): FlightShare | undefined {
    return this.shares.get(remote.network * 0x1_0000_0000 + remote.node)
  }

  private remove(conn: StreamConnection): void {
    const m = this.conns.get(conn.remoteKey)
    if (m === undefined || m.get(conn.portsKey) !== conn) return
    m.delete(conn.portsKey)
    if (m.size === 0) this.conns.delete(conn.remoteKey)
    const share = this.shares.get(conn.remoteKey)
    if (share !== undefined && --share.members <= 0) this.shares.delete(conn.remoteKey)
    const i = this.all.indexOf(conn)
    if (i >= 0) {
      this.all[i] = this.all[this.all.length - 1]!
      this.all.pop()
    }
    const u = (this.portUse.get(conn.localPort) ?? 1) - 1
    if (u <= 0) this.portUse.delete(conn.localPort)
    else this.portUse.set(conn.localPort, u)
    conn.scheduler = null
  }

  private removePending(inc: IncomingStream): boolean {
    const key = inc.remote.network * 0x1_0000_0000 + inc.remote.node
    const m = this.pending.get(key)
    const pk = inc.localPort * 0x10000 + inc.remotePort
    if (m === undefined || m.get(pk) !== inc) return false
    m.delete(pk)
    if (m.size === 0) this.pending.delete(key)
    this.pendingCount--
    return true
  }

  /** Next ephemeral port not used by any live connection (counter with wrap, §3). */
  private allocatePort(): number {
    const span = EPHEMERAL_PORT_MAX - EPHEMERAL_PORT_MIN + 1
    for (let tries = 0; tries < span; tries++) {
      const p = this.nextEphemeral
      this.nextEphemeral = p === EPHEMERAL_PORT_MAX ? EPHEMERAL_PORT_MIN : p + 1
      if (!this.portUse.has(p) && !this.listeners.has(p)) return p
    }
    throw new SessionUsageError('PT_SESSION_NO_PORTS', 'all 16384 ephemeral ports are in use')
  }

  private nextDatagramPort(): number {
    const p = this.nextEphemeral
    this.nextEphemeral = p === EPHEMERAL_PORT_MAX ? EPHEMERAL_PORT_MIN : p + 1
    return p
  }

  private pingSourcePort(): number {
    return this.nextDatagramPort()
  }
}

function checkPort(port: number): void {
  if (!Number.isInteger(port) || port < 0 || port > 0xffff) {
    throw new SessionUsageError('PT_SESSION_BAD_ARGUMENT', `port ${port} is not a u16`)
  }
}
