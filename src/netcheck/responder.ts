/**
 * The beacon's side of netcheck (docs/wire.md §9.8): probe ports beside a
 * `BeaconServer`, so a client can see how its NAT maps and filters.
 *
 * Each probe port is two sockets on one address: `discover`, which answers a
 * Discover with the endpoint it saw (and records nothing: the beacon's node
 * table stays the main port's), and `unsolicited`, on a random port nobody is
 * ever told to send to, which sends the ProbeReply. Because no client ever
 * writes to it, that reply is unsolicited for every NAT, however often
 * netcheck runs from the same port.
 *
 * The ProbeRequest arrives on the beacon's own port, which the BeaconServer
 * owns; rather than teach the server a new message, the responder sits in
 * front of its socket: hand `beaconBind` to the server, and ProbeRequests are
 * taken out before the server sees a datagram. Everything else passes
 * through untouched (one type-byte check per datagram).
 */
import { SourceRateLimiter } from '../beacon/rate-limiter.js'
import { resolveBeaconLimits, type BeaconLimits } from '../beacon/limits.js'
import { DecodeError } from '../errors.js'
import { nullLogger, type Logger } from '../logger.js'
import { BeaconType, encodeBeaconMessage } from '../protocol/beacon-messages.js'
import {
  NetcheckType,
  PROBE_MAX_ENDPOINTS,
  decodeNetcheckMessage,
  encodeNetcheckMessage,
  type ProbeEndpoint,
} from '../protocol/netcheck-messages.js'
import type { BindStats, DatagramHandler, PacketBind, UdpEndpoint } from '../tunnel/bind.js'

export interface ProbePortBinds {
  /** Answers Discover: where the mapping test sends. */
  readonly discover: PacketBind
  /** Sends the unsolicited ProbeReply, from the same address as `discover`. */
  readonly unsolicited: PacketBind
  /** What ProbeInfo advertises: `host` null = the beacon's own address (a probe bound to 0.0.0.0 or ::). */
  readonly advertise: ProbeEndpoint
}

export interface ProbeResponderOptions {
  /** The beacon's socket; the BeaconServer gets `beaconBind`, a view of it. */
  readonly main: PacketBind
  /** One or two probe ports (PROBE_MAX_ENDPOINTS). The responder closes them in `close()`. */
  readonly probes: readonly ProbePortBinds[]
  readonly logger?: Logger
  /** Monotonic ms; default `performance.now()`. */
  readonly now?: () => number
  /** The per-source control budget (`controlPerSecond`, `controlBurst`) applies to probe traffic too, in its own buckets. */
  readonly limits?: Partial<BeaconLimits>
}

export interface ProbeResponderStats {
  probeRequests: number
  probeInfosSent: number
  unsolicitedSent: number
  discoversAnswered: number
  dropped: { malformed: number; rateLimited: number; badSourceAddress: number; notForProbePort: number }
}

const SWEEP_INTERVAL_MS = 1000

function monotonicNow(): number {
  return performance.now()
}

export class ProbeResponder {
  /** Give this to the BeaconServer in place of the main socket. */
  readonly beaconBind: PacketBind
  private readonly main: PacketBind
  private readonly probes: readonly ProbePortBinds[]
  private readonly advertised: readonly ProbeEndpoint[]
  private readonly logger: Logger
  private readonly now: () => number
  private readonly limiter: SourceRateLimiter
  private lastSweep: number
  private readonly counters: ProbeResponderStats = {
    probeRequests: 0,
    probeInfosSent: 0,
    unsolicitedSent: 0,
    discoversAnswered: 0,
    dropped: { malformed: 0, rateLimited: 0, badSourceAddress: 0, notForProbePort: 0 },
  }

  constructor(opts: ProbeResponderOptions) {
    if (opts.probes.length === 0 || opts.probes.length > PROBE_MAX_ENDPOINTS) {
      throw new RangeError(`a beacon has 1 to ${PROBE_MAX_ENDPOINTS} probe ports, got ${opts.probes.length}`)
    }
    this.main = opts.main
    this.probes = opts.probes
    this.advertised = opts.probes.map((p) => p.advertise)
    this.logger = (opts.logger ?? nullLogger).child({ component: 'netcheck-probes' })
    this.now = opts.now ?? monotonicNow
    this.limiter = new SourceRateLimiter(resolveBeaconLimits(opts.limits))
    this.lastSweep = this.now()
    this.beaconBind = new InterceptingBind(opts.main, this.interceptMain.bind(this))
    opts.probes.forEach((p) => {
      p.discover.onDatagram((data, host, port) => this.onProbePort(p, data, host, port))
      p.unsolicited.onDatagram(() => this.counters.dropped.notForProbePort++)
    })
  }

  /** The probe ports as ProbeInfo advertises them, with their real bound ports. */
  get probeEndpoints(): readonly UdpEndpoint[] {
    return this.probes.map((p) => p.discover.local)
  }

  stats(): ProbeResponderStats {
    return { ...this.counters, dropped: { ...this.counters.dropped } }
  }

  /** Closes the probe sockets (the main socket belongs to whoever closes `beaconBind`). */
  async close(): Promise<void> {
    await Promise.all(this.probes.flatMap((p) => [p.discover.close(), p.unsolicited.close()]))
  }

  /** True when the datagram was a ProbeRequest (handled here); false passes it to the beacon. */
  private interceptMain(data: Uint8Array, host: string, port: number): boolean {
    if (data.length === 0 || data[0] !== NetcheckType.PROBE_REQUEST) return false
    this.counters.probeRequests++
    if (!this.allow(host)) return true
    let txid: number
    let info: Uint8Array
    let reply: Uint8Array[]
    try {
      const msg = decodeNetcheckMessage(data)
      if (msg.type !== NetcheckType.PROBE_REQUEST) return true
      txid = msg.txid
      const observed = { host, port }
      info = encodeNetcheckMessage({ type: NetcheckType.PROBE_INFO, txid, observed, probes: this.advertised })
      reply = this.probes.map((_, index) => encodeNetcheckMessage({ type: NetcheckType.PROBE_REPLY, txid, index, observed }))
    } catch (err) {
      this.dropDecode(err)
      return true
    }
    this.main.send(info, host, port)
    this.counters.probeInfosSent++
    this.probes.forEach((p, i) => p.unsolicited.send(reply[i]!, host, port))
    this.counters.unsolicitedSent += this.probes.length
    return true
  }

  private onProbePort(p: ProbePortBinds, data: Buffer, host: string, port: number): void {
    if (data.length < 5 || data[0] !== BeaconType.DISCOVER) {
      this.counters.dropped.notForProbePort++
      return
    }
    if (!this.allow(host)) return
    let reply: Uint8Array
    try {
      reply = encodeBeaconMessage({ type: BeaconType.DISCOVER_REPLY, endpoint: { host, port } })
    } catch (err) {
      this.dropDecode(err)
      return
    }
    p.discover.send(reply, host, port)
    this.counters.discoversAnswered++
  }

  private allow(host: string): boolean {
    const now = this.now()
    if (now - this.lastSweep >= SWEEP_INTERVAL_MS) {
      this.lastSweep = now
      this.limiter.sweep(now)
    }
    if (this.limiter.allowControl(host, now)) return true
    this.counters.dropped.rateLimited++
    return false
  }

  private dropDecode(err: unknown): void {
    if (!(err instanceof DecodeError)) {
      this.logger.error('netcheck probe handler failed', { error: err instanceof Error ? err.message : String(err) })
      this.counters.dropped.malformed++
    } else if (err.reason === 'bad-address') this.counters.dropped.badSourceAddress++
    else this.counters.dropped.malformed++
  }
}

/** A PacketBind that offers each datagram to `intercept` first; what it declines goes to the handler. */
class InterceptingBind implements PacketBind {
  constructor(
    private readonly inner: PacketBind,
    private readonly intercept: (data: Buffer, host: string, port: number) => boolean,
  ) {}

  get local(): UdpEndpoint {
    return this.inner.local
  }

  get stats(): BindStats {
    return this.inner.stats
  }

  send(parts: Uint8Array | readonly Uint8Array[], host: string, port: number): void {
    this.inner.send(parts, host, port)
  }

  onDatagram(handler: DatagramHandler): void {
    const intercept = this.intercept
    this.inner.onDatagram((data, host, port) => {
      if (!intercept(data, host, port)) handler(data, host, port)
    })
  }

  close(): Promise<void> {
    return this.inner.close()
  }
}
