/**
 * `--metrics-listen ADDR` of the server commands (`registry`, `beacon`,
 * `rendezvous`; `up` hands it to the daemon). The address is checked with the
 * other flags, before any port is taken; the HTTP server starts once the
 * servers run and is closed before them. prom-client is loaded only when the
 * flag is given.
 */
import type { Logger } from '../logger.js'
import type { HostPort } from '../protocol/host-port.js'
import { parseMetricsListen, type MetricsHttpServer } from '../metrics/http-server.js'
import type { BeaconMetricsSource, RegistryMetricsSource } from '../metrics/server-metrics.js'

export const METRICS_LISTEN_DESCRIBE = 'serve Prometheus metrics at http://ADDR/metrics (TCP HOST:PORT, e.g. 127.0.0.1:9101; off by default)'

/** The flag's text as an address (PT_CONFIG_INVALID naming the flag), or null when it was not given. */
export function metricsListenOption(text: string | undefined): HostPort | null {
  return text === undefined ? null : parseMetricsListen(text)
}

/**
 * Serves the servers' metrics on `at`. When the port cannot be bound, `undo`
 * (closing the servers) runs before the PT_METRICS_LISTEN_FAILED is thrown.
 */
export async function serveMetricsOrUndo(
  at: HostPort,
  servers: { registry?: RegistryMetricsSource; beacon?: BeaconMetricsSource },
  logger: Logger,
  undo: () => Promise<unknown>,
): Promise<MetricsHttpServer> {
  let http: MetricsHttpServer
  try {
    const { serveServerMetrics } = await import('../metrics/server-metrics.js')
    http = await serveServerMetrics(at, servers, logger)
  } catch (err) {
    await undo()
    throw err
  }
  logger.info(`metrics at ${http.url}`, { metrics: http.url })
  return http
}
