/**
 * What the rendezvous servers show at `/metrics` (`registry`, `beacon` and
 * `rendezvous --metrics-listen`): their own `stats()` counters, read at
 * scrape time into the registry they are given (`rendezvous` puts both
 * servers into one).
 */
import { Registry } from 'prom-client'
import type { BeaconStats } from '../beacon/index.js'
import type { Logger } from '../logger.js'
import type { HostPort } from '../protocol/host-port.js'
import type { RegistryServerStats } from '../registry/server.js'
import { PerScrape, registerCollected } from './collected.js'
import { MetricsHttpServer } from './http-server.js'

/** What the registry metrics read: the server's counters and the store's count of online nodes. */
export interface RegistryMetricsSource {
  readonly server: { stats(): RegistryServerStats }
  readonly store: { countOnline(): number }
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
  registerCollected(registry, [
    { name: 'pilot_tun_registry_server_connections', help: 'Client connections open now.', type: 'gauge', read: () => stats.get().connections },
    {
      name: 'pilot_tun_registry_server_connections_accepted_total',
      help: 'Client connections accepted.',
      type: 'counter',
      read: () => stats.get().connectionsAccepted,
    },
    {
      name: 'pilot_tun_registry_server_connections_closed_total',
      help: 'Connections the server closed, by reason (input: bad framing; idle: the idle limit).',
      type: 'counter',
      label: 'reason',
      read: () => ({ input: stats.get().connectionsClosedForInput, idle: stats.get().connectionsClosedIdle }),
    },
    { name: 'pilot_tun_registry_server_requests_total', help: 'Requests read (answered or refused).', type: 'counter', read: () => stats.get().requests },
    {
      name: 'pilot_tun_registry_server_rejected_total',
      help: 'Requests and frames refused, by reason (a reason appears once it has happened).',
      type: 'counter',
      label: 'reason',
      read: () => definedOnly(stats.get().rejected),
    },
    { name: 'pilot_tun_registry_server_nodes_online', help: 'Nodes registered and online now.', type: 'gauge', read: () => source.store.countOnline() },
    {
      name: 'pilot_tun_registry_server_nodes_reaped_total',
      help: 'Nodes marked offline for missing heartbeats.',
      type: 'counter',
      read: () => stats.get().nodesReaped,
    },
  ])
}

export function registerBeaconMetrics(registry: Registry, source: BeaconMetricsSource): void {
  const stats = new PerScrape(() => source.stats())
  registerCollected(registry, [
    { name: 'pilot_tun_beacon_datagrams_total', help: 'Datagrams received.', type: 'counter', read: () => stats.get().datagrams },
    {
      name: 'pilot_tun_beacon_received_total',
      help: 'Beacon messages received, by type (discover, punch_request and relay are the ones a beacon serves).',
      type: 'counter',
      label: 'type',
      read: () => snakeKeys(stats.get().received),
    },
    { name: 'pilot_tun_beacon_sent_total', help: 'Beacon messages sent, by type.', type: 'counter', label: 'type', read: () => snakeKeys(stats.get().sent) },
    { name: 'pilot_tun_beacon_drops_total', help: 'Datagrams neither answered nor forwarded, by reason.', type: 'counter', label: 'reason', read: () => stats.get().dropped },
    { name: 'pilot_tun_beacon_nodes', help: 'Nodes remembered now (discovered, not yet expired).', type: 'gauge', read: () => stats.get().nodes },
    {
      name: 'pilot_tun_beacon_nodes_removed_total',
      help: 'Nodes forgotten, by reason (evicted: the table was full; expired: no Discover within the TTL).',
      type: 'counter',
      label: 'reason',
      read: () => ({ evicted: stats.get().nodesEvicted, expired: stats.get().nodesExpired }),
    },
    { name: 'pilot_tun_beacon_sources', help: 'Source IPs with a rate-limit bucket now.', type: 'gauge', read: () => stats.get().sources },
    { name: 'pilot_tun_beacon_relayed_frames_total', help: 'Tunnel frames relayed between nodes.', type: 'counter', read: () => stats.get().relayedPackets },
    { name: 'pilot_tun_beacon_relayed_bytes_total', help: 'Bytes of the relayed tunnel frames.', type: 'counter', read: () => stats.get().relayedBytes },
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
