/**
 * What the rendezvous servers show at `/metrics` (`registry`, `beacon` and
 * `rendezvous --metrics-listen`): their own `stats()` counters, read at
 * scrape time into the registry they are given (`rendezvous` puts both
 * servers into one).
 */
import { Gauge, Registry } from 'prom-client'
import type { BeaconStats } from '../beacon/index.js'
import type { Logger } from '../logger.js'
import type { HostPort } from '../protocol/host-port.js'
import type { RegistryServerStats } from '../registry/server.js'
import type { TlsFrontStats } from '../registry/tls-front.js'
import { counter, counterBy, gauge, PerScrape, registerCollected } from './collected.js'
import { MetricsHttpServer } from './http-server.js'

/** What the registry metrics read: the server's counters and the store's count of online nodes. */
export interface RegistryMetricsSource {
  readonly server: { stats(): RegistryServerStats; tlsStats?(): TlsFrontStats | null }
  readonly store: { countOnline(): Promise<number> }
}

/** What the beacon metrics read. */
export interface BeaconMetricsSource {
  stats(): BeaconStats
}

/**
 * A fresh `Registry` with the metrics of the given servers, served on `at`
 * (the servers' own command closes it before them). PT_METRICS_LISTEN_FAILED
 * when `at` cannot be bound.
 */
export async function serveServerMetrics(
  at: HostPort,
  servers: { registry?: RegistryMetricsSource; beacon?: BeaconMetricsSource },
  logger?: Logger,
): Promise<MetricsHttpServer> {
  const registry = new Registry()
  if (servers.registry !== undefined) registerRegistryServerMetrics(registry, servers.registry)
  if (servers.beacon !== undefined) registerBeaconMetrics(registry, servers.beacon)
  return MetricsHttpServer.listen(at, registry, logger === undefined ? {} : { logger })
}

export function registerRegistryServerMetrics(registry: Registry, source: RegistryMetricsSource): void {
  const stats = new PerScrape(() => source.server.stats())
  const p = 'pilot_tun_registry_server_'
  registerCollected(registry, [
    gauge(`${p}connections`, 'Client connections open now.', () => stats.get().connections),
    counter(`${p}connections_accepted_total`, 'Client connections accepted.', () => stats.get().connectionsAccepted),
    counterBy(`${p}connections_closed_total`, 'Connections the server closed, by reason (input: bad framing; idle: the idle limit).', 'reason', () => ({
      input: stats.get().connectionsClosedForInput,
      idle: stats.get().connectionsClosedIdle,
    })),
    counter(`${p}requests_total`, 'Requests read (answered or refused).', () => stats.get().requests),
    counterBy(`${p}rejected_total`, 'Requests and frames refused, by reason (a reason appears once it has happened).', 'reason', () => definedOnly(stats.get().rejected)),
    counter(`${p}nodes_reaped_total`, 'Nodes marked offline for missing heartbeats.', () => stats.get().nodesReaped),
  ])
  // Read from the store, which answers asynchronously (a database query with PostgreSQL).
  new Gauge({
    name: `${p}nodes_online`,
    help: 'Nodes registered and online now.',
    registers: [registry],
    async collect() {
      this.reset()
      try {
        this.set(await source.store.countOnline())
      } catch {
        // the store is unavailable: no reading this scrape (the server logs the failures)
      }
    },
  })
  // With --tls / --tls-only (issue 15): how connections came in.
  if (source.server.tlsStats?.() == null) return
  const tls = new PerScrape(() => source.server.tlsStats?.() ?? null)
  registerCollected(registry, [
    counterBy(`${p}tls_connections_total`, 'Connections on a TLS port, by outcome (tls: handshake done; plaintext: served in plaintext; plaintext_refused: closed unread by --tls-only; handshake_failed: no or a failed handshake; pending_refused: over the per-source cap before sorting).', 'outcome', (): Record<string, number> => {
      const t = tls.get()
      return t === null ? {} : { tls: t.tlsConnections, plaintext: t.plaintextConnections, plaintext_refused: t.plaintextRefused, handshake_failed: t.handshakeFailures, pending_refused: t.pendingRefused }
    }),
  ])
}

export function registerBeaconMetrics(registry: Registry, source: BeaconMetricsSource): void {
  const stats = new PerScrape(() => source.stats())
  const p = 'pilot_tun_beacon_'
  registerCollected(registry, [
    counter(`${p}datagrams_total`, 'Datagrams received.', () => stats.get().datagrams),
    counterBy(`${p}received_total`, 'Beacon messages received, by type (discover, punch_request and relay are the ones a beacon serves).', 'type', () =>
      snakeKeys(stats.get().received),
    ),
    counterBy(`${p}sent_total`, 'Beacon messages sent, by type.', 'type', () => snakeKeys(stats.get().sent)),
    counterBy(`${p}drops_total`, 'Datagrams neither answered nor forwarded, by reason.', 'reason', () => stats.get().dropped),
    gauge(`${p}nodes`, 'Nodes remembered now (discovered, not yet expired).', () => stats.get().nodes),
    counterBy(`${p}nodes_removed_total`, 'Nodes forgotten, by reason (evicted: the table was full; expired: no Discover within the TTL).', 'reason', () => ({
      evicted: stats.get().nodesEvicted,
      expired: stats.get().nodesExpired,
    })),
    gauge(`${p}sources`, 'Source IPs with a rate-limit bucket now.', () => stats.get().sources),
    counter(`${p}relayed_frames_total`, 'Tunnel frames relayed between nodes.', () => stats.get().relayedPackets),
    counter(`${p}relayed_bytes_total`, 'Bytes of the relayed tunnel frames.', () => stats.get().relayedBytes),
    gauge(`${p}peers`, 'Peer beacons configured or listed by the registry (0 when standalone).', () => stats.get().cluster?.peers ?? 0),
    gauge(`${p}learned_nodes`, 'Node IDs learned from peer beacons\' Syncs.', () => stats.get().cluster?.learnedNodes ?? 0),
    counter(`${p}forwarded_relays_total`, 'Relays forwarded unchanged to the peer beacon holding the destination.', () => stats.get().cluster?.forwardedRelays ?? 0),
  ])
}

function definedOnly(record: Readonly<Record<string, number | undefined>>): Record<string, number> {
  const out: Record<string, number> = {}
  for (const [k, v] of Object.entries(record)) if (v !== undefined) out[k] = v
  return out
}

/** `punchRequest` → `punch_request`: Prometheus label values in the usual style. */
function snakeKeys(record: object): Record<string, number> {
  const out: Record<string, number> = {}
  for (const [k, v] of Object.entries(record)) out[k.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`)] = v as number
  return out
}
