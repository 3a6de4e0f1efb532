/**
 * The tunnel's side of the beacon (docs/wire.md §9): Discover as NAT keepalive
 * (its DiscoverReply tells us our public endpoint), PunchRequest when a peer is
 * set up, PunchCommand answered with the punch itself, and relay framing both
 * ways (Relay out, RelayDeliver in).
 *
 * Beacon messages count only from the configured beacon endpoint; anything
 * else of the beacon's type is `beacon-spoofed`. A relayed frame is handed back
 * to the tunnel (`onRelayed`) with the sender the beacon vouches for, which the
 * tunnel checks against the frame's own sender. No beacon configured: every
 * send here is a no-op and every beacon message is refused.
 *
 * A PunchCommand makes us send four datagrams to an endpoint it names, and its
 * source address is all that says it came from the beacon (UDP: spoofable).
 * So punches are rate-limited per target endpoint (`punchTargetIntervalMs`)
 * and in total (a token bucket); the rest is dropped (`punch-limited`).
 */
import { readU32, writeU32 } from '../bytes.js'
import { encodePilp } from '../protocol/tunnel-frames.js'
import { BeaconType, RELAY_DELIVER_HEADER_SIZE, RELAY_HEADER_SIZE, decodeBeaconMessage, writeRelayHeader } from '../protocol/beacon-messages.js'
import type { PacketBind, UdpEndpoint } from './bind.js'
import { normalizeHost } from './endpoints.js'
import { DEFAULT_TIMING, type TunnelScheduler } from './timing.js'
import { DEFAULT_LIMITS, type TunnelLimits } from './limits.js'
import type { DropCounters, TunnelCounters } from './stats.js'
import { KeyedTokenBuckets, TokenBucket } from './token-bucket.js'

/** PILP frames sent towards an endpoint on each PunchCommand (§9.4). */
export const PUNCH_COPIES = 3

/** What the beacon client needs from the tunnel; bound once, called per message. */
export interface BeaconClientPort {
  /** A frame the beacon relayed (RelayDeliver) from node `sender`; `frame` is a view into the datagram. */
  onRelayed(frame: Buffer, host: string, port: number, sender: number): void
  /** Our PILA (a copy) straight to host:port, counted as a key frame sent. */
  sendKeyFrameTo(host: string, port: number): void
  /** After the punch towards host:port went out: remember it and offer it to peers being set up. */
  onPunchCommand(host: string, port: number, now: number): void
}

/** The bounds on answering PunchCommands. */
export type PunchLimits = Pick<TunnelLimits, 'punchBurst' | 'punchesPerSecond' | 'maxPunchTargets'> & {
  /** One punch per target endpoint per this. */
  punchTargetIntervalMs: number
}

export const DEFAULT_PUNCH_LIMITS: Readonly<PunchLimits> = Object.freeze({
  punchBurst: DEFAULT_LIMITS.punchBurst,
  punchesPerSecond: DEFAULT_LIMITS.punchesPerSecond,
  maxPunchTargets: DEFAULT_LIMITS.maxPunchTargets,
  punchTargetIntervalMs: DEFAULT_TIMING.punchTargetIntervalMs,
})

export interface BeaconClientOptions {
  nodeId: number
  /** The beacon's UDP endpoint (an IP literal, as datagrams report it), or null for none. */
  beacon: UdpEndpoint | null
  bind: Pick<PacketBind, 'send'>
  clock: Pick<TunnelScheduler, 'now'>
  keepaliveMs: number
  /** Default DEFAULT_PUNCH_LIMITS. */
  punchLimits?: PunchLimits
  drops: DropCounters
  counters: TunnelCounters
  port: BeaconClientPort
}

export class BeaconClient {
  /** The beacon, normalised, or null when none is configured. */
  readonly endpoint: UdpEndpoint | null
  private publicEp: UdpEndpoint | null = null
  private nextDiscoverMs = 0
  private readonly punchBudget: TokenBucket
  private readonly punchTargets: KeyedTokenBuckets

  constructor(private readonly opts: BeaconClientOptions) {
    this.endpoint = opts.beacon === null ? null : { host: normalizeHost(opts.beacon.host), port: opts.beacon.port }
    const limits = opts.punchLimits ?? DEFAULT_PUNCH_LIMITS
    this.punchBudget = new TokenBucket(limits.punchBurst, limits.punchesPerSecond)
    this.punchTargets = new KeyedTokenBuckets(1, 1_000 / Math.max(1, limits.punchTargetIntervalMs), limits.maxPunchTargets)
  }

  /** Our public endpoint as the beacon last reported it (DiscoverReply), if any. */
  get publicEndpoint(): UdpEndpoint | null {
    return this.publicEp
  }

  /** Discover now (it also keeps our NAT mapping to the beacon open); the next one is due a keepalive later. */
  discover(now: number): void {
    this.nextDiscoverMs = now + this.opts.keepaliveMs
    if (this.endpoint === null) return
    const msg = Buffer.allocUnsafe(5)
    msg[0] = BeaconType.DISCOVER
    writeU32(msg, 1, this.opts.nodeId)
    this.opts.bind.send(msg, this.endpoint.host, this.endpoint.port)
  }

  /** From the housekeeping tick. */
  discoverIfDue(now: number): void {
    if (now >= this.nextDiscoverMs) this.discover(now)
  }

  /** Asks the beacon to have `target` punch towards us (and us towards it). False = no beacon. */
  requestPunch(target: number): boolean {
    if (this.endpoint === null) return false
    const req = Buffer.allocUnsafe(9)
    req[0] = BeaconType.PUNCH_REQUEST
    writeU32(req, 1, this.opts.nodeId)
    writeU32(req, 5, target)
    this.opts.bind.send(req, this.endpoint.host, this.endpoint.port)
    return true
  }

  /**
   * Sends a complete frame to node `to` through the beacon (gather send: header + frame, no
   * copy). `frame` is handed over to the bind. Only with a beacon configured.
   */
  sendRelayed(frame: Uint8Array, to: number): void {
    const beacon = this.endpoint!
    const hdr = Buffer.allocUnsafe(RELAY_HEADER_SIZE)
    writeRelayHeader(hdr, 0, this.opts.nodeId, to)
    this.opts.bind.send([hdr, frame], beacon.host, beacon.port)
  }

  /** One received datagram classified as a beacon message. */
  handle(data: Buffer, host: string, port: number): void {
    const beacon = this.endpoint
    if (beacon === null || port !== beacon.port || normalizeHost(host) !== beacon.host) {
      this.opts.drops['beacon-spoofed']++
      return
    }
    const type = data[0]!
    if (type === BeaconType.RELAY_DELIVER) {
      if (data.length < RELAY_DELIVER_HEADER_SIZE + 4) {
        this.opts.drops['relay-malformed']++
        return
      }
      this.opts.counters.relayDelivers++
      this.opts.port.onRelayed(data.subarray(RELAY_DELIVER_HEADER_SIZE), host, port, readU32(data, 1))
      return
    }
    if (type !== BeaconType.PUNCH_COMMAND && type !== BeaconType.DISCOVER_REPLY) {
      this.opts.drops['beacon-unexpected']++
      return
    }
    let msg
    try {
      msg = decodeBeaconMessage(data)
    } catch {
      this.opts.drops['beacon-malformed']++
      return
    }
    if (msg.type === BeaconType.DISCOVER_REPLY) {
      this.publicEp = { host: msg.endpoint.host, port: msg.endpoint.port }
    } else if (msg.type === BeaconType.PUNCH_COMMAND) {
      this.punch(normalizeHost(msg.endpoint.host), msg.endpoint.port)
    }
  }

  /** §9.4: three PILP and our PILA towards the endpoint, then the tunnel remembers it. Rate-limited. */
  private punch(host: string, port: number): void {
    this.opts.counters.punchCommands++
    if (port === 0) return
    const now = this.opts.clock.now()
    // Per target first, so repeats towards one endpoint do not spend the global budget.
    if (!this.punchTargets.take(`${host}|${port}`, now) || !this.punchBudget.take(now)) {
      this.opts.drops['punch-limited']++
      return
    }
    for (let i = 0; i < PUNCH_COPIES; i++) this.opts.bind.send(encodePilp(), host, port)
    this.opts.port.sendKeyFrameTo(host, port)
    this.opts.port.onPunchCommand(host, port, now)
  }
}
