/**
 * A deterministic simulated network for two session endpoints (quinn's `Pair`):
 * virtual clock, seeded RNG, and per-direction loss, duplication, reordering,
 * delay, jitter and bandwidth (serialisation delay with a drop-tail queue).
 *
 *   const sim = new SimPair({ seed: 1, ab: { loss: 0.05 }, ba: { loss: 0.05 } })
 *   const c = sim.a.connect(sim.now, sim.addressB, 80)
 *   sim.run(() => done, 60_000)
 *
 * Every packet crosses the real codec (encode with CRC, decode, verify), so
 * the simulation exercises exactly what goes on the wire.
 */
import { PacketHeader, decodePacket, HEADER_SIZE } from '../../protocol/header.js'
import type { PilotAddress } from '../../protocol/address.js'
import { SeededRandom } from '../../random.js'
import { SessionEndpoint, type DatagramEvent, type EndpointConfig, type IncomingStream, type PongEvent } from '../endpoint.js'
import type { StreamConfig, StreamConnection } from '../stream.js'
import type { Millis } from '../types.js'

export interface LinkConfig {
  /** Probability a packet is lost. */
  loss: number
  /** Probability a packet is delivered twice. */
  duplicate: number
  /** Probability a packet is held back by up to `reorderDelay` extra ms. */
  reorder: number
  reorderDelay: Millis
  /** One-way propagation delay. */
  delay: Millis
  /** Uniform extra delay in [0, jitter). */
  jitter: Millis
  /** Bytes per millisecond (0 = infinitely fast). 12_500 = 100 Mbit/s. */
  bandwidth: number
  /** Drop-tail queue limit in bytes when bandwidth > 0 (0 = unbounded). */
  queueLimit: number
}

export const PERFECT_LINK: Readonly<LinkConfig> = Object.freeze({
  loss: 0,
  duplicate: 0,
  reorder: 0,
  reorderDelay: 0,
  delay: 0,
  jitter: 0,
  bandwidth: 0,
  queueLimit: 0,
})

export interface SimPairOptions {
  seed: number
  /** Link from A to B and from B to A. */
  ab?: Partial<LinkConfig>
  ba?: Partial<LinkConfig>
  /** Stream defaults for both endpoints. */
  stream?: Partial<StreamConfig>
  addressA?: PilotAddress
  addressB?: PilotAddress
  /** Decide on incoming SYNs; default accept. */
  policy?: (side: 0 | 1, inc: IncomingStream) => 'accept' | 'refuse' | 'ignore'
  /** Drop selected packets (return true to drop) before the link model. */
  filter?: (from: 0 | 1, h: PacketHeader, payload: Uint8Array) => boolean
  /** Random source for ISNs (default: seeded from `seed`). */
  isnSeed?: number
  /** Endpoint settings for both sides (the shared flight limit, the round-robin turn). */
  endpoint?: Pick<EndpointConfig, 'peerFlightLimit' | 'turnQuantum'>
}

/** Min-heap of in-flight packets ordered by (arrival time, send order). */
class FlightQueue {
  at: number[] = []
  order: number[] = []
  to: number[] = []
  data: Uint8Array[] = []

  get size(): number {
    return this.at.length
  }

  private less(i: number, j: number): boolean {
    return this.at[i]! < this.at[j]! || (this.at[i] === this.at[j] && this.order[i]! < this.order[j]!)
  }

  private swap(i: number, j: number): void {
    const a = this.at
    const o = this.order
    const t = this.to
    const d = this.data
    ;[a[i], a[j]] = [a[j]!, a[i]!]
    ;[o[i], o[j]] = [o[j]!, o[i]!]
    ;[t[i], t[j]] = [t[j]!, t[i]!]
    ;[d[i], d[j]] = [d[j]!, d[i]!]
  }

  push(at: number, order: number, to: number, data: Uint8Array): void {
    this.at.push(at)
    this.order.push(order)
    this.to.push(to)
    this.data.push(data)
    let i = this.at.length - 1
    while (i > 0) {
      const p = (i - 1) >> 1
      if (!this.less(i, p)) break
      this.swap(i, p)
      i = p
    }
  }

  peekAt(): number {
    return this.at.length === 0 ? Number.POSITIVE_INFINITY : this.at[0]!
  }

  /** Removes the head; returns its index-0 values via the out params. */
  pop(): { to: number; data: Uint8Array } {
    const to = this.to[0]!
    const data = this.data[0]!
    const last = this.at.length - 1
    this.swap(0, last)
    this.at.pop()
    this.order.pop()
    this.to.pop()
    this.data.pop()
    let i = 0
    const n = this.at.length
    for (;;) {
      const l = 2 * i + 1
      const r = l + 1
      let m = i
      if (l < n && this.less(l, m)) m = l
      if (r < n && this.less(r, m)) m = r
      if (m === i) break
      this.swap(i, m)
      i = m
    }
    return { to, data }
  }
}

export class SimPair {
  now: Millis = 0
  readonly a: SessionEndpoint
  readonly b: SessionEndpoint
  readonly addressA: PilotAddress
  readonly addressB: PilotAddress
  /** Connections accepted by each side's policy, in order. */
  readonly accepted: [StreamConnection[], StreamConnection[]] = [[], []]
  readonly datagrams: [DatagramEvent[], DatagramEvent[]] = [[], []]
  readonly pongs: [PongEvent[], PongEvent[]] = [[], []]
  /** Packets handed to the link by each side (before loss), and bytes. */
  readonly packetsSent: [number, number] = [0, 0]
  readonly bytesSent: [number, number] = [0, 0]
  readonly packetsLost: [number, number] = [0, 0]
  readonly packetsDelivered: [number, number] = [0, 0]
  steps = 0
  /** Optional trace of every packet handed to the link. */
  trace: ((from: 0 | 1, h: PacketHeader, payload: Uint8Array, now: Millis) => void) | null = null
  links: [LinkConfig, LinkConfig]
  filter: ((from: 0 | 1, h: PacketHeader, payload: Uint8Array) => boolean) | null

  private readonly rng: SeededRandom
  private readonly flight = new FlightQueue()
  private readonly busyUntil: [number, number] = [0, 0]
  private order = 0
  private readonly buf = new Uint8Array(HEADER_SIZE + 0xffff)
  private readonly hdr = new PacketHeader()
  private readonly policy: NonNullable<SimPairOptions['policy']>
  private readonly streamCfg: Partial<StreamConfig> | undefined

  constructor(options: SimPairOptions) {
    this.rng = new SeededRandom(options.seed ^ 0x5eed)
    this.addressA = options.addressA ?? { network: 0, node: 1 }
    this.addressB = options.addressB ?? { network: 0, node: 2 }
    this.streamCfg = options.stream
    const isnRandom = new SeededRandom(options.isnSeed ?? options.seed)
    this.a = new SessionEndpoint({ ...options.endpoint, local: this.addressA, random: isnRandom, stream: options.stream })
    this.b = new SessionEndpoint({ ...options.endpoint, local: this.addressB, random: isnRandom, stream: options.stream })
    this.links = [{ ...PERFECT_LINK, ...options.ab }, { ...PERFECT_LINK, ...options.ba }]
    this.policy = options.policy ?? (() => 'accept')
    this.filter = options.filter ?? null
  }

  endpoint(side: 0 | 1): SessionEndpoint {
    return side === 0 ? this.a : this.b
  }

  /** Sends everything both endpoints want to send now. */
  flush(): void {
    this.flushSide(0)
    this.flushSide(1)
  }

  /**
   * Advances to the next event (a packet arrival or a timer) and processes it.
   * Returns false when nothing is scheduled at all.
   */
  step(): boolean {
    this.flush()
    const tp = this.flight.peekAt()
    const ta = this.a.pollTimeout() ?? Number.POSITIVE_INFINITY
    const tb = this.b.pollTimeout() ?? Number.POSITIVE_INFINITY
    const t = Math.min(tp, ta, tb)
    if (t === Number.POSITIVE_INFINITY) return false
    if (t > this.now) this.now = t
    this.steps++
    if (tp <= this.now) {
      const { to, data } = this.flight.pop()
      this.deliver(to as 0 | 1, data)
    } else {
      if (ta <= this.now) this.a.handleTimeout(this.now)
      if (tb <= this.now) this.b.handleTimeout(this.now)
    }
    this.flush()
    return true
  }

  /**
   * Steps until `done()` is true, calling `app()` after every step. Returns
   * true if done, false if the network went idle or `limit` ms passed.
   */
  run(done: () => boolean, limit: Millis, app?: () => void): boolean {
    const end = this.now + limit
    if (app !== undefined) {
      app()
      this.flush()
    }
    while (!done()) {
      if (!this.step()) {
        if (app !== undefined) {
          app()
          this.flush()
          if (this.flight.size > 0) continue
          const ta = this.a.pollTimeout()
          const tb = this.b.pollTimeout()
          if (ta !== null || tb !== null) continue
        }
        return done()
      }
      if (app !== undefined) {
        app()
        this.flush()
      }
      if (this.now > end) return done()
    }
    return true
  }

  /** Advances virtual time by `ms`, processing everything due. */
  advance(ms: Millis, app?: () => void): void {
    const end = this.now + ms
    for (;;) {
      this.flush()
      const t = Math.min(this.flight.peekAt(), this.a.pollTimeout() ?? Infinity, this.b.pollTimeout() ?? Infinity)
      if (t > end) break
      this.step()
      if (app !== undefined) {
        app()
        this.flush()
      }
    }
    this.now = end
  }

  get inFlight(): number {
    return this.flight.size
  }

  private flushSide(side: 0 | 1): void {
    const ep = side === 0 ? this.a : this.b
    for (let guard = 0; ; guard++) {
      if (guard > 1_000_000) throw new Error('endpoint produced more than a million packets in one instant')
      const n = ep.pollTransmit(this.now, this.buf, 0)
      if (n === 0) break
      this.send(side, this.buf.slice(0, n))
    }
    for (;;) {
      const e = ep.pollEvent()
      if (e === null) break
      if (e.kind === 'datagram') this.datagrams[side].push(e)
      else if (e.kind === 'pong') this.pongs[side].push(e)
      // 'incoming' is handled where handlePacket returns it
    }
  }

  private send(from: 0 | 1, pkt: Uint8Array): void {
    this.packetsSent[from]++
    this.bytesSent[from] += pkt.length
    if (this.trace !== null || this.filter !== null) {
      const h = decodePacket(pkt, 0, this.hdr)
      const payload = pkt.subarray(HEADER_SIZE, HEADER_SIZE + h.payloadLength)
      if (this.trace !== null) this.trace(from, h, payload, this.now)
      if (this.filter !== null && this.filter(from, h, payload)) {
        this.packetsLost[from]++
        return
      }
    }
    const link = this.links[from]
    const rng = this.rng
    if (link.loss > 0 && rng.float() < link.loss) {
      this.packetsLost[from]++
      return
    }
    let depart = this.now
    if (link.bandwidth > 0) {
      const start = Math.max(this.now, this.busyUntil[from])
      if (link.queueLimit > 0 && (start - this.now) * link.bandwidth > link.queueLimit) {
        this.packetsLost[from]++
        return
      }
      depart = start + pkt.length / link.bandwidth
      this.busyUntil[from] = depart
    }
    const copies = link.duplicate > 0 && rng.float() < link.duplicate ? 2 : 1
    for (let c = 0; c < copies; c++) {
      let at = depart + link.delay
      if (link.jitter > 0) at += rng.float() * link.jitter
      if (link.reorder > 0 && rng.float() < link.reorder) at += rng.float() * link.reorderDelay
      this.flight.push(at, this.order++, from === 0 ? 1 : 0, pkt)
    }
  }

  private deliver(to: 0 | 1, pkt: Uint8Array): void {
    const ep = to === 0 ? this.a : this.b
    const h = decodePacket(pkt, 0, this.hdr)
    this.packetsDelivered[to === 0 ? 1 : 0]++
    const payload = pkt.subarray(HEADER_SIZE, HEADER_SIZE + h.payloadLength)
    const r = ep.handlePacket(this.now, h, payload)
    if (r !== null && (r as IncomingStream).kind === 'incoming') {
      const inc = r as IncomingStream
      const d = this.policy(to, inc)
      if (d === 'accept') this.accepted[to].push(ep.accept(this.now, inc, this.streamCfg))
      else if (d === 'refuse') ep.refuse(this.now, inc)
      // drain the event the endpoint queued for it
    }
  }
}
