/**
 * The UDP half of `pilot-tun netcheck` as a sans-IO state machine: it says
 * what to send where and when, takes what came back, and ends with
 * observations for the classifier (classify.ts). One local socket sends
 * everything, so the NAT in front of it sees one internal endpoint.
 *
 * The order matters and is why this is a schedule, not a burst:
 *
 *   1. Discover → the beacon's main port, one at a time, `rttSamples` round
 *      trips: UDP reachability, our public endpoint, the beacon's latency.
 *   2. ProbeRequest → the main port (docs/wire.md §9.8), `filterRequests`
 *      times: its ProbeInfo lists the probe ports, and each probe's never-
 *      contacted sender socket sends us a ProbeReply unasked — the filtering
 *      test. Runs alongside 1 (both go to the main port only).
 *   3. Only then Discover → each probe port: the mapping test. Sending to a
 *      probe address earlier would open an address-restricted NAT to it and
 *      spoil step 2.
 *
 * Methods (docs/style.md): getters (`done`, `result`), inputs
 * (`handleDatagram(now, …)`, `handleTimeout(now)`), outputs polled after every
 * input (`pollTransmit()`, then `pollTimeout()`). `now` is monotonic ms.
 */
import { BeaconType, decodeBeaconMessage, encodeBeaconMessage, type Endpoint } from '../protocol/beacon-messages.js'
import { NetcheckType, decodeNetcheckMessage, encodeNetcheckMessage, PROBE_MAX_ENDPOINTS } from '../protocol/netcheck-messages.js'
import type { ProbeVantage } from './classify.js'

export interface ProbeTiming {
  /** An unanswered Discover or ProbeRequest is sent again after this long. */
  retryMs: number
  /** Discover round trips to time, one after the other. */
  rttSamples: number
  /** After the beacon first answers, how long its ProbeInfo may take before it counts as a beacon without probe ports (at least 4 RTT). */
  probeInfoWaitMs: number
  /** ProbeRequests sent in all while an unsolicited reply is missing (each makes every probe send one again). */
  filterRequests: number
  filterRequestGapMs: number
  /** After the last ProbeRequest, how long a missing unsolicited reply is still waited for (at least 3 RTT). */
  filterSettleMs: number
  /** How long the probe ports get to answer the mapping Discovers (at least 4 RTT). */
  mappingWaitMs: number
}

export const DEFAULT_PROBE_TIMING: Readonly<ProbeTiming> = Object.freeze({
  retryMs: 250,
  rttSamples: 3,
  probeInfoWaitMs: 1000,
  filterRequests: 3,
  filterRequestGapMs: 150,
  filterSettleMs: 500,
  mappingWaitMs: 1000,
})

export interface Transmit {
  readonly data: Uint8Array
  readonly host: string
  readonly port: number
}

export interface ProbePortResult {
  /** Where its Discover went (a ProbeInfo without an address means the beacon's). */
  readonly endpoint: Endpoint
  /** Whether it sits on the beacon's address (another port) or on another address. */
  readonly vantage: ProbeVantage
  /** Our endpoint as this probe port saw it; null = no answer. */
  readonly mapped: Endpoint | null
  /** Whether its unsolicited ProbeReply reached us, and from where. */
  readonly unsolicitedFrom: Endpoint | null
}

export interface ProbeResult {
  readonly beacon: Endpoint
  /** Our endpoint as the beacon's main port saw it; null = no UDP answer at all. */
  readonly publicEndpoint: Endpoint | null
  /** Discover → DiscoverReply times, ms (round trips that needed a resend are left out). */
  readonly rttSamplesMs: readonly number[]
  /** The beacon answered a ProbeRequest. */
  readonly probesAnswered: boolean
  readonly probes: readonly ProbePortResult[]
  /** The main port reported different public endpoints over the run (a NAT rebinding mid-check). */
  readonly publicEndpointChanged: boolean
  /** The overall deadline ended the run before every step finished. */
  readonly timedOut: boolean
}

interface ProbePort {
  endpoint: Endpoint
  vantage: ProbeVantage
  mapped: Endpoint | null
  lastSentAt: number
}

export class NetcheckProbe {
  private readonly timing: ProbeTiming
  private readonly deadline: number
  private readonly queue: Transmit[] = []
  private readonly discover: Uint8Array = encodeBeaconMessage({ type: BeaconType.DISCOVER, nodeId: 0 })
  private readonly request: Uint8Array
  private readonly txid: number
  private nextWake: number | null = null
  private finished = false
  private timedOut = false
  // Step 1: Discover round trips to the main port.
  private readonly rtts: number[] = []
  private exchanges = 0
  private discoverSentAt = -1
  private discoverResent = false
  private firstAnswerAt = -1
  private publicEndpoint: Endpoint | null = null
  private publicEndpointChanged = false
  // Step 2: ProbeRequests and the unsolicited replies (kept by index: one may beat its ProbeInfo).
  private ports: ProbePort[] | null = null
  private requestsSent = 0
  private lastRequestAt = -1
  private filterDone = false
  private readonly unsolicited: Array<Endpoint | null> = new Array<Endpoint | null>(PROBE_MAX_ENDPOINTS).fill(null)
  // Step 3: Discover to each probe port.
  private mappingStartedAt = -1
  private mappingDone = false

  /** `beacon` is an IP endpoint (resolve names first); `txid` tells our unsolicited replies from stray ones. */
  constructor(
    private readonly beacon: Endpoint,
    now: number,
    opts: { timeoutMs: number; txid: number; timing?: Partial<ProbeTiming> },
  ) {
    this.timing = { ...DEFAULT_PROBE_TIMING, ...opts.timing }
    this.deadline = now + opts.timeoutMs
    this.request = encodeNetcheckMessage({ type: NetcheckType.PROBE_REQUEST, txid: opts.txid })
    this.txid = opts.txid
    this.step(now)
  }

  get done(): boolean {
    return this.finished
  }

  result(): ProbeResult {
    return {
      beacon: this.beacon,
      publicEndpoint: this.publicEndpoint,
      rttSamplesMs: [...this.rtts],
      probesAnswered: this.ports !== null,
      probes: (this.ports ?? []).map((p, i) => ({ endpoint: p.endpoint, vantage: p.vantage, mapped: p.mapped, unsolicitedFrom: this.unsolicited[i] ?? null })),
      publicEndpointChanged: this.publicEndpointChanged,
      timedOut: this.timedOut,
    }
  }

  /** One datagram received on the probing socket. Anything unexpected is ignored. */
  handleDatagram(now: number, data: Uint8Array, host: string, port: number): void {
    if (this.finished || data.length === 0) return
    try {
      if (host === this.beacon.host && port === this.beacon.port) this.fromBeacon(now, data)
      else if (data[0] === NetcheckType.PROBE_REPLY) this.onUnsolicited(data, host, port)
      else if (data[0] === BeaconType.DISCOVER_REPLY) this.fromProbePort(data, host, port)
    } catch {
      // A malformed answer is as good as none: the schedule resends or gives up.
    }
    this.step(now)
  }

  handleTimeout(now: number): void {
    if (!this.finished) this.step(now)
  }

  pollTransmit(): Transmit | null {
    return this.queue.shift() ?? null
  }

  /** When to call `handleTimeout` next; null once done. */
  pollTimeout(): number | null {
    return this.finished ? null : this.nextWake
  }

  private fromBeacon(now: number, data: Uint8Array): void {
    if (data[0] === BeaconType.DISCOVER_REPLY) {
      const msg = decodeBeaconMessage(data)
      if (msg.type !== BeaconType.DISCOVER_REPLY) return
      this.observePublic(now, msg.endpoint)
      if (this.discoverSentAt < 0) return // a late duplicate
      if (!this.discoverResent) this.rtts.push(now - this.discoverSentAt)
      this.exchanges++
      this.discoverSentAt = -1
      this.discoverResent = false
    } else if (data[0] === NetcheckType.PROBE_INFO) {
      const msg = decodeNetcheckMessage(data)
      if (msg.type !== NetcheckType.PROBE_INFO || msg.txid !== this.txid || this.ports !== null) return
      this.observePublic(now, msg.observed)
      this.ports = msg.probes.map((p) => {
        const host = p.host ?? this.beacon.host
        return { endpoint: { host, port: p.port }, vantage: host === this.beacon.host ? 'other-port' : 'other-address', mapped: null, lastSentAt: -1 }
      })
    }
  }

  private observePublic(now: number, e: Endpoint): void {
    if (this.firstAnswerAt < 0) this.firstAnswerAt = now
    if (this.publicEndpoint === null) this.publicEndpoint = e
    else if (this.publicEndpoint.host !== e.host || this.publicEndpoint.port !== e.port) this.publicEndpointChanged = true
  }

  private onUnsolicited(data: Uint8Array, host: string, port: number): void {
    const msg = decodeNetcheckMessage(data)
    if (msg.type !== NetcheckType.PROBE_REPLY || msg.txid !== this.txid) return
    this.unsolicited[msg.index] ??= { host, port }
  }

  private fromProbePort(data: Uint8Array, host: string, port: number): void {
    const p = this.ports?.find((x) => x.endpoint.host === host && x.endpoint.port === port)
    if (p === undefined || p.lastSentAt < 0) return // not asked yet: it cannot be our mapping's answer
    const msg = decodeBeaconMessage(data)
    if (msg.type === BeaconType.DISCOVER_REPLY) p.mapped ??= msg.endpoint
  }

  /** Decides what is due at `now`, queues it, and sets the next wake-up. */
  private step(now: number): void {
    if (now >= this.deadline) {
      this.timedOut = !(this.discoverDone && this.filterDone && this.mappingDone)
      this.finish()
      return
    }
    const t = this.timing
    let wake = this.deadline
    const at = (when: number): void => {
      wake = Math.min(wake, when)
    }
    if (!this.discoverDone) {
      if (this.discoverSentAt < 0 || now - this.discoverSentAt >= t.retryMs) {
        this.discoverResent = this.discoverSentAt >= 0
        this.discoverSentAt = now
        this.send(this.discover, this.beacon)
      }
      at(this.discoverSentAt + t.retryMs)
    }
    if (!this.filterDone) this.stepFilter(now, at)
    if (this.filterDone && !this.mappingDone) this.stepMapping(now, at)
    if (this.discoverDone && this.filterDone && this.mappingDone) this.finish()
    else this.nextWake = wake
  }

  private get discoverDone(): boolean {
    return this.exchanges >= this.timing.rttSamples
  }

  private stepFilter(now: number, at: (when: number) => void): void {
    const t = this.timing
    if (this.ports === null) {
      // Waiting for ProbeInfo. A beacon that answers Discover but not this has no probe ports.
      const giveUpAt = this.firstAnswerAt + this.scaled(t.probeInfoWaitMs)
      if (this.firstAnswerAt >= 0 && now >= giveUpAt) {
        this.filterDone = true
        return
      }
      if (this.lastRequestAt < 0 || now - this.lastRequestAt >= t.retryMs) this.sendRequest(now)
      at(this.lastRequestAt + t.retryMs)
      if (this.firstAnswerAt >= 0) at(giveUpAt)
      return
    }
    if (this.ports.every((_, i) => this.unsolicited[i] !== null)) {
      this.filterDone = true
      return
    }
    if (this.requestsSent < t.filterRequests) {
      if (now - this.lastRequestAt >= t.filterRequestGapMs) this.sendRequest(now)
      at(this.lastRequestAt + t.filterRequestGapMs)
      return
    }
    const settleEnd = this.lastRequestAt + Math.max(t.filterSettleMs, 3 * this.medianRtt())
    if (now >= settleEnd) this.filterDone = true
    else at(settleEnd)
  }

  private stepMapping(now: number, at: (when: number) => void): void {
    const ports = this.ports ?? []
    if (this.mappingStartedAt < 0) this.mappingStartedAt = now
    const endAt = this.mappingStartedAt + this.scaled(this.timing.mappingWaitMs)
    if (ports.every((p) => p.mapped !== null) || now >= endAt) {
      this.mappingDone = true
      return
    }
    for (const p of ports) {
      if (p.mapped !== null) continue
      if (p.lastSentAt < 0 || now - p.lastSentAt >= this.timing.retryMs) {
        p.lastSentAt = now
        this.send(this.discover, p.endpoint)
      }
      at(p.lastSentAt + this.timing.retryMs)
    }
    at(endAt)
  }

  private sendRequest(now: number): void {
    this.requestsSent++
    this.lastRequestAt = now
    this.send(this.request, this.beacon)
  }

  private send(data: Uint8Array, to: Endpoint): void {
    this.queue.push({ data, host: to.host, port: to.port })
  }

  /** A wait of at least `ms`, and of 4 round trips on a slow path. */
  private scaled(ms: number): number {
    return Math.max(ms, 4 * this.medianRtt())
  }

  private medianRtt(): number {
    return this.rtts.length === 0 ? this.timing.retryMs : median(this.rtts)
  }

  private finish(): void {
    this.finished = true
    this.nextWake = null
  }
}

/** The middle value (the upper one of an even count). */
export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.floor(s.length / 2)]!
}
