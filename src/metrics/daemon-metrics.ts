/**
 * `DaemonMetrics`: what a running node shows at `/metrics` (`up --metrics-listen`).
 *
 * One prom-client `Registry` per daemon. Everything but the RTT histogram is
 * read at scrape time from the counters the node's parts keep anyway
 * (`Tunnel.stats()` and `peers()`, the session endpoint's connections, the
 * driver's refusals, the registry session's heartbeat state), so the packet
 * path pays nothing. The RTT histogram needs every sample, so the daemon
 * passes the round trips the session driver measures (pongs, stream
 * handshakes) to `observeRtt`.
 *
 * Lifecycle: `new DaemonMetrics()` (or `serve`, which also binds the HTTP
 * server) before the node exists, `watch(parts)` once it does; until then the
 * scrape shows zeros. `close()` stops the HTTP server.
 */
import { Histogram, Registry } from 'prom-client'
import type { HostPort } from '../protocol/host-port.js'
import type { Logger } from '../logger.js'
import { DROP_REASONS, type PathKind, type PeerInfo, type TunnelStats } from '../tunnel/index.js'
import { counter, counterBy, gauge, gaugeBy, PerScrape, registerCollected, type CollectedMetric } from './collected.js'
import { MetricsHttpServer } from './http-server.js'
import { MonotonicTotal } from './monotonic.js'

/** The parts of a node the metrics read (the daemon's own objects fit as they are). */
export interface DaemonMetricsSource {
  readonly tunnel: { stats(): TunnelStats; peers(): PeerInfo[] }
  readonly endpoint: {
    readonly connectionCount: number
    connections(): readonly { stats(): { readonly retransmits: number } }[]
  }
  readonly driver: { stats(): { readonly synRefused: number; readonly datagramsRefused: number } }
  /** Networks (issue 13): refusals by cause. Optional: nodes built without networks have none. */
  readonly admission?: { networkRefusals(): { notJoined: number; notMember: number; portNotAllowed: number } }
  readonly session: {
    readonly connected: boolean
    lastHeartbeatAgoMs(): number
    readonly heartbeatsOk: number
    readonly heartbeatsFailed: number
  }
}

/** Round trips from LAN (sub-millisecond) to a relayed intercontinental path (seconds). */
export const RTT_BUCKETS_SECONDS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5]

const PATHS: readonly PathKind[] = ['direct', 'punched', 'relay', 'none']

export class DaemonMetrics {
  readonly registry = new Registry()
  private source: DaemonMetricsSource | null = null
  private http: MetricsHttpServer | null = null
  private readonly rtt: Histogram
  private readonly peers = new PerScrape<PeerInfo[]>(() => this.source?.tunnel.peers() ?? [])
  private readonly tunnelStats = new PerScrape<TunnelStats | null>(() => this.source?.tunnel.stats() ?? null)
  private readonly bytesIn = new MonotonicTotal<number>()
  private readonly bytesOut = new MonotonicTotal<number>()
  private readonly retransmits = new MonotonicTotal<object>()

  /** Metrics plus their HTTP server on `at`; PT_METRICS_LISTEN_FAILED when it cannot bind. */
  static async serve(at: HostPort, logger?: Logger): Promise<DaemonMetrics> {
    const metrics = new DaemonMetrics()
    metrics.http = await MetricsHttpServer.listen(at, metrics.registry, logger === undefined ? {} : { logger })
    return metrics
  }

  constructor() {
    this.rtt = new Histogram({
      name: 'pilot_tun_rtt_seconds',
      help: 'Round trips to peers measured by the daemon (control pongs and stream handshakes).',
      buckets: RTT_BUCKETS_SECONDS,
      registers: [this.registry],
    })
    registerCollected(this.registry, this.collected())
  }

  /** Starts reading `source` at each scrape (once the node is built). */
  watch(source: DaemonMetricsSource): void {
    this.source = source
  }

  /** One round-trip sample in ms (the session driver's `onRttSample`). */
  observeRtt(ms: number): void {
    if (ms >= 0 && Number.isFinite(ms)) this.rtt.observe(ms / 1000)
  }

  /** The HTTP server's bound address (null without one). */
  get address(): HostPort | null {
    return this.http?.address ?? null
  }

  /** `http://host:port/metrics` (null without an HTTP server). */
  get url(): string | null {
    return this.http?.url ?? null
  }

  /** Stops the HTTP server (nothing left listening). Idempotent. */
  async close(): Promise<void> {
    await this.http?.close()
  }

  private collected(): CollectedMetric[] {
    const src = (): DaemonMetricsSource | null => this.source
    const tunnel = (): TunnelStats | null => this.tunnelStats.get()
    return [
      gaugeBy('pilot_tun_peers', 'Peers the tunnel knows, by path (none: keys or path still being set up).', 'path', () => countPaths(this.peers.get())),
      counter('pilot_tun_bytes_in_total', 'Pilot packet bytes received in authenticated tunnel frames, all peers.', () =>
        this.bytesIn.fold(this.peers.get(), peerId, (p) => p.bytesIn),
      ),
      counter('pilot_tun_bytes_out_total', 'Pilot packet bytes sent in encrypted tunnel frames, all peers.', () =>
        this.bytesOut.fold(this.peers.get(), peerId, (p) => p.bytesOut),
      ),
      counter('pilot_tun_frames_in_total', 'Authenticated data frames (PILS) received.', () => tunnel()?.packetsIn ?? 0),
      counter('pilot_tun_frames_out_total', 'Data frames (PILS) sent.', () => tunnel()?.packetsOut ?? 0),
      counterBy('pilot_tun_drops_total', 'Datagrams (or outgoing packets) the tunnel dropped, by reason.', 'reason', () => tunnel()?.drops ?? zeroDrops()),
      counter('pilot_tun_retransmits_total', 'Stream data segments sent again (loss, timeout, tail probe), summed over open streams at each scrape.', () =>
        this.retransmits.fold(src()?.endpoint.connections() ?? [], (c) => c, (c) => c.stats().retransmits),
      ),
      counterBy('pilot_tun_refused_total', 'Stream SYNs and datagrams refused by the trust policy, by protocol.', 'protocol', () => {
        const s = src()?.driver.stats()
        return { stream: s?.synRefused ?? 0, datagram: s?.datagramsRefused ?? 0 }
      }),
      counterBy('pilot_tun_network_refused_total', 'Flows in networks refused, by cause: not_joined (not our network), not_member (the peer is no member), port_not_allowed.', 'cause', () => {
        const r = src()?.admission?.networkRefusals()
        return { not_joined: r?.notJoined ?? 0, not_member: r?.notMember ?? 0, port_not_allowed: r?.portNotAllowed ?? 0 }
      }),
      gauge('pilot_tun_streams_open', 'Pilot streams open now (including half-closed and TIME_WAIT).', () => src()?.endpoint.connectionCount ?? 0),
      gauge('pilot_tun_registry_connected', '1 while the last registry heartbeat (or registration) succeeded, else 0.', () => (src()?.session.connected === true ? 1 : 0)),
      gauge('pilot_tun_registry_heartbeat_age_seconds', 'Seconds since the last successful registry heartbeat or registration.', () =>
        (src()?.session.lastHeartbeatAgoMs() ?? 0) / 1000,
      ),
      counterBy('pilot_tun_registry_heartbeats_total', 'Registry heartbeats, by result.', 'result', () => ({
        ok: src()?.session.heartbeatsOk ?? 0,
        failed: src()?.session.heartbeatsFailed ?? 0,
      })),
    ]
  }
}

function peerId(p: PeerInfo): number {
  return p.nodeId
}

function countPaths(peers: readonly PeerInfo[]): Record<PathKind, number> {
  const out = Object.fromEntries(PATHS.map((p) => [p, 0])) as Record<PathKind, number>
  for (const p of peers) out[p.path]++
  return out
}

function zeroDrops(): Record<string, number> {
  return Object.fromEntries(DROP_REASONS.map((r) => [r, 0]))
}
