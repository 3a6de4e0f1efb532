/**
 * `SessionDriver`: the real-time edge that drives one sans-IO `SessionEndpoint`
 * (session/) from the tunnel's packets, one timer and the application's
 * commands, and sends what it produces back into the tunnel.
 *
 *   tunnel.onPacket ─► receive(): header checks → endpoint.handlePacket (now)
 *                      └─ marks the touched connection dirty, schedules a flush
 *   flush() (setImmediate after a burst, the timer, or an app command; a
 *   microtask for a lone packet: a ping or pong, a sendPing/sendDatagram):
 *      1. one clock read for the whole batch
 *      2. expired timers → endpoint.handleTimeout
 *      3. events: endpoint (SYN, datagram, pong) then each dirty connection's
 *         events to its handle (PilotStream) — handles may write/read here
 *      4. pollTransmit into a slab, one packet per tunnel.send, capped per
 *         wake-up (the rest goes out on the next setImmediate)
 *      5. the one timer is re-armed only when the next deadline moved earlier
 *
 * Policy stays outside the session layer and outside this file: `admit(node,
 * port)` decides whether an incoming SYN is accepted (else RST via
 * `endpoint.refuse`), whether a datagram is delivered (else dropped) and
 * whether a control ping is answered (else dropped before the endpoint, which
 * would answer it). A listener may add a gate of its own (per-node limits).
 * Every refusal is counted.
 *
 * Every node's address is on the backbone (network 0, docs/wire.md §2), ours
 * too: a packet whose source network is not ours did not come from the node
 * the tunnel authenticated, and is dropped before anything reads it.
 *
 * When a flush runs: received stream and datagram packets wait for the next
 * immediate, so a whole receive burst (libuv reads up to 32 datagrams per
 * wake-up, one callback each) is answered in one flush. Pings, pongs and the
 * sendPing/sendDatagram commands flush at the end of the current callback
 * instead (a microtask): nothing batches behind a control packet, and a TUN
 * read batch issues its commands from one callback, so they still leave
 * together, without waiting for the event loop's check phase. At most one
 * such flush per event-loop turn, and none while an immediate flush is
 * already due (the packet joins it): a ping flood costs no extra flushes.
 *
 * Hot path (per packet): no closures, promises or string keys; the header is
 * the tunnel's scratch object; handles are found with one Map lookup by the
 * connection object; outgoing packets are carved from a shared slab.
 */
import { HEADER_SIZE, MAX_PAYLOAD, PacketHeader, Protocol, decodePacket } from '../protocol/header.js'
import type { PilotAddress } from '../protocol/address.js'
import { readU32 } from '../bytes.js'
import {
  PING_PORT,
  StreamConnection,
  StreamEvent,
  type DatagramEvent,
  type IncomingStream,
  type PongEvent,
  type SessionEndpoint,
  type StreamConfig,
} from '../session/index.js'
import { nullLogger, type Logger } from '../logger.js'

/** Where outgoing packets go (the tunnel). The callee may keep `packet`. */
export interface PacketSink {
  send(peerNodeId: number, packet: Uint8Array): void
}

/** What the driver calls for a connection's events (PilotStream implements it). */
export interface StreamHandle {
  readonly connection: StreamConnection
  /** Driver bookkeeping: queued for event dispatch. */
  dirty: boolean
  onStreamEvent(event: StreamEvent): void
}

/**
 * Admission policy: may `node`, speaking in `network`, open a stream to / send
 * a datagram to our `port`, or have its ping (port 0) answered?
 */
export type AdmitPolicy = (node: number, port: number, protocol: 'stream' | 'datagram' | 'ping', network: number, remotePort?: number) => boolean
/**
 * Called when the policy refused a stream SYN in a network other than the
 * backbone: a Promise means "my view of that network is being refreshed, ask
 * me again when it settles" (a member who joined a moment ago is not in it
 * yet); null means the refusal stands.
 */
export type AdmitRecheck = (node: number, network: number) => Promise<void> | null
/** A listener's own check of an admitted SYN from `node` (e.g. a per-node limit); false = RST. */
export type ListenGate = (node: number) => boolean
/** A listener receives each admitted connection on its port; it must attach a handle. */
export type AcceptHandler = (connection: StreamConnection) => void
/**
 * Receives admitted SYNs to ports without a listener (`setDefaultHandler`).
 * It must later call `acceptIncoming` or `refuseIncoming` exactly once; the
 * peer's retransmitted SYNs are ignored meanwhile.
 */
export type DefaultIncomingHandler = (incoming: IncomingStream) => void
export type DatagramReceiver = (event: DatagramEvent) => void
export type PongReceiver = (event: PongEvent) => void

export interface SessionDriverOptions {
  endpoint: SessionEndpoint
  sink: PacketSink
  admit: AdmitPolicy
  /** See AdmitRecheck; without it a refused SYN is answered with RST at once. */
  recheck?: AdmitRecheck
  logger?: Logger
  /** Packets sent per wake-up before yielding to I/O. Default 1024. */
  maxTransmitPerWake?: number
  /** Monotonic clock; default `performance.now()`. */
  clock?: () => number
  /**
   * A round-trip sample to `node` in ms: a control pong, or a stream's handshake (its first RTT
   * estimate, once per connection). The daemon feeds them to the tunnel's per-peer RTT.
   */
  onRttSample?: (node: number, ms: number) => void
}

export interface SessionDriverStats {
  packetsIn: number
  packetsOut: number
  /** Packets whose destination is not our address. */
  droppedWrongDestination: number
  /** Packets the driver had to decode itself and could not. */
  droppedBadHeader: number
  /** Packets whose source and destination networks differ (a flow lives in one network). */
  droppedForeignNetwork: number
  synRefused: number
  /** Refused network SYNs held while the network's view was refreshed, then decided again. */
  synRechecked: number
  /** SYNs the admission policy let through but the port's gate refused (its limits). */
  synGateRefused: number
  /** Control pings the policy did not let us answer (untrusted senders, unless pings are answered for all). */
  pingsRefused: number
  datagramsRefused: number
  /** SYNs for a port whose listener disappeared before the decision. */
  synNoListener: number
  wakeups: number
  timerWakeups: number
  handlerErrors: number
}

/** Outgoing packets are carved from slabs this big; a slab is replaced when less than one maximal packet fits. */
const SLAB_SIZE = 512 * 1024
const MAX_PACKET = HEADER_SIZE + MAX_PAYLOAD
/** Event dispatch rounds per flush (handles may make each other dirty). */
const MAX_EVENT_ROUNDS = 8

export class SessionDriver {
  readonly endpoint: SessionEndpoint
  private readonly sink: PacketSink
  private readonly admit: AdmitPolicy
  private readonly recheck: AdmitRecheck | null
  private readonly logger: Logger
  private readonly maxTransmit: number
  private readonly clock: () => number
  private readonly onRttSample: ((node: number, ms: number) => void) | null
  private readonly handles = new Map<StreamConnection, StreamHandle>()
  private dirtyList: StreamHandle[] = []
  private spareDirty: StreamHandle[] = []
  private readonly listeners = new Map<number, AcceptHandler>()
  private readonly gates = new Map<number, ListenGate>()
  private defaultHandler: DefaultIncomingHandler | null = null
  private datagramReceiver: DatagramReceiver | null = null
  private pongReceiver: PongReceiver | null = null
  private readonly localNode: number
  private readonly decodeScratch = new PacketHeader()
  private slab: Buffer = Buffer.allocUnsafe(SLAB_SIZE)
  private slabPos = 0
  /** Clock value shared by everything in the current batch; -1 outside one. */
  private batchNow = -1
  private scheduled = false
  /** A microtask flush is queued (`scheduleSoon`). */
  private soon = false
  /** A microtask flush ran in this event-loop turn: later lone packets join the immediate. */
  private soonUsed = false
  private flushing = false
  private timer: NodeJS.Timeout | null = null
  private timerDeadline = Number.POSITIVE_INFINITY
  private closed = false
  private readonly st: SessionDriverStats = {
    packetsIn: 0,
    packetsOut: 0,
    droppedWrongDestination: 0,
    droppedBadHeader: 0,
    droppedForeignNetwork: 0,
    synRefused: 0,
    synRechecked: 0,
    synGateRefused: 0,
    pingsRefused: 0,
    datagramsRefused: 0,
    synNoListener: 0,
    wakeups: 0,
    timerWakeups: 0,
    handlerErrors: 0,
  }

  // Bound once (undici habit): the tunnel, setImmediate and the timer call these.
  /** Give this to `tunnel.onPacket`. */
  readonly onPacket = (packet: Uint8Array, _peerNodeId: number, header?: PacketHeader): void => this.receive(packet, header)
  private readonly flushBound = (): void => {
    this.scheduled = false
    this.flush()
  }
  private readonly soonBound = (): void => {
    this.soon = false
    this.flush()
  }
  private readonly soonResetBound = (): void => {
    this.soonUsed = false
  }
  private readonly onTimerBound = (): void => {
    this.timer = null // timerDeadline stays: runTimers compares the clock with it
    this.st.timerWakeups++
    this.flush()
  }

  constructor(options: SessionDriverOptions) {
    this.endpoint = options.endpoint
    this.sink = options.sink
    this.admit = options.admit
    this.recheck = options.recheck ?? null
    this.logger = options.logger ?? nullLogger
    this.maxTransmit = options.maxTransmitPerWake ?? 1024
    this.clock = options.clock ?? performanceNow
    this.onRttSample = options.onRttSample ?? null
    this.localNode = options.endpoint.local.node
  }

  // ───────────────────────── getters ─────────────────────────

  /** The batch clock: one read per batch, shared by every command in it. */
  now(): number {
    return this.batchNow >= 0 ? this.batchNow : this.clock()
  }

  get local(): PilotAddress {
    return this.endpoint.local
  }

  stats(): SessionDriverStats {
    return { ...this.st }
  }

  /** Every handle with a live connection (streams, including half-closed ones). */
  streamHandles(): StreamHandle[] {
    return [...this.handles.values()]
  }

  // ───────────────────────── inputs ─────────────────────────

  /**
   * One packet from the tunnel. The tunnel has already checked the CRC and
   * decoded `header`; without one (tests, other sinks) we decode here.
   */
  receive(packet: Uint8Array, header?: PacketHeader): void {
    if (this.closed) return
    let h = header
    if (h === undefined) {
      h = this.decodeScratch
      try {
        decodePacket(packet, 0, h)
      } catch {
        this.st.droppedBadHeader++
        return
      }
    }
    if (h.dstNode !== this.localNode) {
      this.st.droppedWrongDestination++
      return
    }
    if (h.srcNetwork !== h.dstNetwork) {
      this.st.droppedForeignNetwork++
      return
    }
    // The endpoint answers every ping (the session layer has no policy): ask ours first.
    if (h.protocol === Protocol.CONTROL && h.dstPort === PING_PORT && !this.admit(h.srcNode, PING_PORT, 'ping', h.srcNetwork)) {
      this.st.pingsRefused++
      return
    }
    this.st.packetsIn++
    if (this.batchNow < 0) this.batchNow = this.clock()
    const payload = packet.subarray(HEADER_SIZE, HEADER_SIZE + h.payloadLength)
    let touched: StreamConnection | IncomingStream | null = null
    try {
      touched = this.endpoint.handlePacket(this.batchNow, h, payload)
    } catch (err) {
      // The session layer does not throw per packet; if it ever does, count and go on.
      this.st.handlerErrors++
      this.logger.error('session endpoint threw on a packet', { error: String(err) })
    }
    if (touched instanceof StreamConnection) {
      const handle = this.handles.get(touched)
      if (handle !== undefined) this.markDirty(handle)
    }
    // A ping's pong, or a pong's event, goes at the end of this callback: nothing batches behind it.
    if (h.protocol === Protocol.CONTROL) this.scheduleSoon()
    else this.schedule()
  }

  // ───────────────────────── commands ─────────────────────────

  /** Registers the handle that receives `connection`'s events. */
  attach(handle: StreamHandle): void {
    this.handles.set(handle.connection, handle)
    this.markDirty(handle)
    this.schedule()
  }

  /** Something happened on the handle's connection (write, read, finish, reset): flush soon. */
  touch(handle: StreamHandle): void {
    this.markDirty(handle)
    this.schedule()
  }

  /**
   * Streams arriving on `port` from admitted nodes go to `onAccept`; with a
   * `gate`, only those it lets through (the others are answered with RST).
   */
  listen(port: number, onAccept: AcceptHandler, config?: Partial<StreamConfig>, gate?: ListenGate): void {
    this.endpoint.listen(port, config)
    this.listeners.set(port, onAccept)
    if (gate !== undefined) this.gates.set(port, gate)
  }

  unlisten(port: number): void {
    this.endpoint.unlisten(port)
    this.listeners.delete(port)
    this.gates.delete(port)
  }

  /**
   * Admitted SYNs to ports nobody listens on go to `handler` (null: RST at
   * once, the default). The handler decides later with `acceptIncoming` /
   * `refuseIncoming`.
   */
  setDefaultHandler(handler: DefaultIncomingHandler | null): void {
    this.defaultHandler = handler
    this.endpoint.listenAny(handler !== null)
  }

  /** Accepts a SYN given to the default handler; attach a handle to the connection right away. */
  acceptIncoming(incoming: IncomingStream, config?: Partial<StreamConfig>): StreamConnection {
    const conn = this.endpoint.accept(this.now(), incoming, config)
    this.schedule()
    return conn
  }

  /** Refuses a SYN given to the default handler (RST). */
  refuseIncoming(incoming: IncomingStream): void {
    this.endpoint.refuse(this.now(), incoming)
    this.schedule()
  }

  /** A new outgoing connection; attach a handle to it right away. */
  connect(remote: PilotAddress, port: number, config?: Partial<StreamConfig>): StreamConnection {
    const conn = this.endpoint.connect(this.now(), remote, port, config)
    this.schedule()
    return conn
  }

  onDatagram(receiver: DatagramReceiver | null): void {
    this.datagramReceiver = receiver
  }

  onPong(receiver: PongReceiver | null): void {
    this.pongReceiver = receiver
  }

  /** Sends one datagram; returns the source port used. */
  sendDatagram(remote: PilotAddress, port: number, data: Uint8Array, sourcePort?: number): number {
    const p = this.endpoint.sendDatagram(this.now(), remote, port, data, sourcePort)
    this.scheduleSoon()
    return p
  }

  /** Control ping (port 0); the pong arrives at `onPong`. Returns the ping id. */
  sendPing(remote: PilotAddress, payload?: Uint8Array): number {
    const id = this.endpoint.sendPing(this.now(), remote, payload)
    this.scheduleSoon()
    return id
  }

  /** Runs a flush now (shutdown: get FINs out before the tunnel closes). */
  flushNow(): void {
    this.flush()
  }

  /** Stops the timer and forgets every handle. The endpoint's connections are left as they are. */
  close(): void {
    this.closed = true
    if (this.timer !== null) clearTimeout(this.timer)
    this.timer = null
    this.handles.clear()
    this.dirtyList.length = 0
    this.listeners.clear()
    this.gates.clear()
  }

  // ───────────────────────── the batch ─────────────────────────

  private schedule(): void {
    if (this.scheduled || this.closed || this.flushing) return
    this.scheduled = true
    setImmediate(this.flushBound)
  }

  /**
   * Flushes at the end of the current callback (a microtask), for a lone packet. At most one
   * such flush per event-loop turn (a flood of pings costs no more flushes than a burst of
   * data), and none while an immediate flush is already coming: the packet joins that batch.
   */
  private scheduleSoon(): void {
    if (this.soon || this.closed || this.flushing) return
    if (this.soonUsed || this.scheduled) {
      this.schedule()
      return
    }
    this.soon = true
    this.soonUsed = true
    queueMicrotask(this.soonBound)
    setImmediate(this.soonResetBound)
  }

  private markDirty(handle: StreamHandle): void {
    if (handle.dirty) return
    handle.dirty = true
    this.dirtyList.push(handle)
  }

  /** Runs from the immediate, the microtask, the timer or `flushNow`; a pending immediate still runs (a cheap flush). */
  private flush(): void {
    if (this.closed || this.flushing) return
    this.flushing = true
    this.st.wakeups++
    const now = this.clock()
    this.batchNow = now
    let more = false
    try {
      this.runTimers(now)
      this.dispatchEvents(now)
      more = this.drainTransmit(now)
      // Handles touched while packets went out (rare: a reaped connection) get their events now.
      if (this.dirtyList.length > 0) this.dispatchEvents(now)
    } catch (err) {
      this.st.handlerErrors++
      this.logger.error('session driver flush failed', { error: String(err), stack: (err as Error)?.stack })
    } finally {
      this.flushing = false
      this.batchNow = -1
    }
    if (this.closed) return
    if (more || this.dirtyList.length > 0) this.schedule()
    this.rearm(now)
  }

  private runTimers(now: number): void {
    // Every deadline set since the last flush was set inside a flush and seen by rearm(),
    // so nothing can be due before timerDeadline: skip the scan on most wake-ups.
    if (now < this.timerDeadline || this.endpoint.connectionCount === 0) return
    const conns = this.endpoint.connections()
    let due = false
    for (let i = 0; i < conns.length; i++) {
      const c = conns[i]!
      const t = c.pollTimeout()
      if (t !== null && t <= now) {
        due = true
        const handle = this.handles.get(c)
        if (handle !== undefined) this.markDirty(handle)
      }
    }
    if (due) this.endpoint.handleTimeout(now)
  }

  private dispatchEvents(now: number): void {
    for (let round = 0; round < MAX_EVENT_ROUNDS; round++) {
      this.dispatchEndpointEvents(now)
      if (this.dirtyList.length === 0) return
      const list = this.dirtyList
      this.dirtyList = this.spareDirty
      for (let i = 0; i < list.length; i++) {
        const handle = list[i]!
        handle.dirty = false
        const conn = handle.connection
        for (;;) {
          const ev = conn.pollEvent()
          if (ev === StreamEvent.None) break
          try {
            if (ev === StreamEvent.Connected && this.onRttSample !== null) this.reportHandshakeRtt(conn)
            handle.onStreamEvent(ev)
          } catch (err) {
            this.st.handlerErrors++
            this.logger.error('stream handle threw', { error: String(err), stack: (err as Error)?.stack })
          }
          if (ev === StreamEvent.Closed) this.handles.delete(conn)
        }
      }
      list.length = 0
      this.spareDirty = list
    }
  }

  private dispatchEndpointEvents(now: number): void {
    for (;;) {
      const ev = this.endpoint.pollEvent()
      if (ev === null) return
      try {
        if (ev.kind === 'incoming') this.onIncoming(now, ev)
        else if (ev.kind === 'datagram') this.onDatagramEvent(ev)
        else {
          if (this.onRttSample !== null) this.onRttSample(ev.remote.node, ev.rtt)
          if (this.pongReceiver !== null) this.pongReceiver(ev)
        }
      } catch (err) {
        this.st.handlerErrors++
        this.logger.error('endpoint event handler threw', { kind: ev.kind, error: String(err), stack: (err as Error)?.stack })
      }
    }
  }

  /** Once per connection: its handshake RTT (the stream layer keeps none when the SYN was repeated). */
  private reportHandshakeRtt(conn: StreamConnection): void {
    const srtt = conn.stats().srtt
    if (srtt >= 0) this.onRttSample!(conn.remoteAddress.node, srtt)
  }

  private onIncoming(now: number, inc: IncomingStream): void {
    const onAccept = this.listeners.get(inc.localPort)
    const fallback = onAccept === undefined ? this.defaultHandler : null
    if (onAccept === undefined && fallback === null) {
      this.st.synNoListener++
      this.endpoint.refuse(now, inc)
      return
    }
    if (!this.admit(inc.remote.node, inc.localPort, 'stream', inc.remote.network)) {
      const again = inc.remote.network !== 0 && this.recheck !== null ? this.recheck(inc.remote.node, inc.remote.network) : null
      if (again !== null) {
        // The SYN stays pending in the endpoint (retransmissions are ignored) until the view settles.
        this.st.synRechecked++
        again.then(
          () => this.decideAgain(inc),
          () => this.decideAgain(inc),
        )
        return
      }
      this.refuseSyn(now, inc)
      return
    }
    this.admitted(now, inc, onAccept, fallback)
  }

  private refuseSyn(now: number, inc: IncomingStream): void {
    this.st.synRefused++
    if (this.logger.debugEnabled) this.logger.debug('refused stream', { node: inc.remote.node, network: inc.remote.network, port: inc.localPort })
    this.endpoint.refuse(now, inc)
  }

  /** A network SYN held for a view refresh: decided once more, without another refresh. */
  private decideAgain(inc: IncomingStream): void {
    if (this.closed) return
    const now = this.now()
    const onAccept = this.listeners.get(inc.localPort)
    const fallback = onAccept === undefined ? this.defaultHandler : null
    if (onAccept === undefined && fallback === null) {
      this.st.synNoListener++
      this.endpoint.refuse(now, inc)
    } else if (!this.admit(inc.remote.node, inc.localPort, 'stream', inc.remote.network)) {
      this.refuseSyn(now, inc)
    } else {
      this.admitted(now, inc, onAccept, fallback)
    }
    this.schedule()
  }

  private admitted(now: number, inc: IncomingStream, onAccept: AcceptHandler | undefined, fallback: DefaultIncomingHandler | null): void {
    if (fallback !== null) {
      fallback(inc)
      return
    }
    const gate = this.gates.get(inc.localPort)
    if (gate !== undefined && !gate(inc.remote.node)) {
      this.st.synGateRefused++
      this.endpoint.refuse(now, inc)
      return
    }
    const conn = this.endpoint.accept(now, inc)
    onAccept!(conn)
  }

  private onDatagramEvent(ev: DatagramEvent): void {
    if (!this.admit(ev.remote.node, ev.localPort, 'datagram', ev.remote.network, ev.remotePort)) {
      this.st.datagramsRefused++
      return
    }
    if (this.datagramReceiver !== null) this.datagramReceiver(ev)
  }

  /** Sends up to the per-wake cap; returns true when packets remain. */
  private drainTransmit(now: number): boolean {
    const endpoint = this.endpoint
    for (let i = 0; i < this.maxTransmit; i++) {
      if (SLAB_SIZE - this.slabPos < MAX_PACKET) {
        this.slab = Buffer.allocUnsafe(SLAB_SIZE)
        this.slabPos = 0
      }
      const at = this.slabPos
      const n = endpoint.pollTransmit(now, this.slab, at)
      if (n === 0) return false
      // 8-byte alignment keeps the next packet's header reads on aligned offsets.
      this.slabPos = (at + n + 7) & ~7
      const packet = this.slab.subarray(at, at + n)
      this.st.packetsOut++
      this.sink.send(readU32(packet, 12), packet)
    }
    return true
  }

  private rearm(now: number): void {
    const next = this.endpoint.pollTimeout()
    if (next === null) {
      // A timer that fires early is harmless; leave an armed one alone.
      if (this.timer === null) this.timerDeadline = Number.POSITIVE_INFINITY
      return
    }
    if (this.timer !== null && next >= this.timerDeadline) return // the armed timer fires first and re-arms then
    if (this.timer !== null) clearTimeout(this.timer)
    this.timerDeadline = next
    this.timer = setTimeout(this.onTimerBound, Math.max(0, Math.ceil(next - now)))
  }
}

function performanceNow(): number {
  return performance.now()
}
