/**
 * `MetricsHttpServer`: serves one prom-client `Registry` as Prometheus text at
 * `GET /metrics` (`--metrics-listen ADDR` of `up`, `registry`, `beacon` and
 * `rendezvous`). Plain node:http, no other routes. `close()` stops listening
 * and ends keep-alive connections at once, so nothing is left open.
 *
 * The listen address is text checked like every other flag (host-port.ts):
 * a bad one is PT_CONFIG_INVALID naming the flag, before any port is taken;
 * a port that cannot be bound is PT_METRICS_LISTEN_FAILED.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Registry } from 'prom-client'
import { ConfigError, DecodeError, PilotError } from '../errors.js'
import { nullLogger, type Logger } from '../logger.js'
import { formatHostPort, parseHostPort, type HostPort } from '../protocol/host-port.js'

export const METRICS_LISTEN_FAILED = 'PT_METRICS_LISTEN_FAILED'
export const METRICS_PATH = '/metrics'

/** `HOST:PORT`, `[IPv6]:PORT` or `:PORT` (every IPv4 interface); port 0 picks a free one. PT_CONFIG_INVALID names `flag`. */
export function parseMetricsListen(text: string, flag = '--metrics-listen'): HostPort {
  try {
    return parseHostPort(text, { flag, hosts: 'ip-or-localhost', listen: true })
  } catch (err) {
    if (!(err instanceof DecodeError)) throw err
    throw new ConfigError(err.message, `for example ${flag} 127.0.0.1:9101`)
  }
}

export class MetricsHttpServer {
  /** The bound address (port 0 resolved). */
  readonly address: HostPort
  private readonly server: Server
  private closing: Promise<void> | null = null

  /** Binds `at` and serves `registry`; PT_METRICS_LISTEN_FAILED when the address cannot be bound. */
  static async listen(at: HostPort, registry: Registry, options: { flag?: string; logger?: Logger } = {}): Promise<MetricsHttpServer> {
    const logger = options.logger ?? nullLogger
    const server = createServer((req, res) => void answer(registry, logger, req, res))
    // Scrapers keep connections alive; a scrape is one small response, so idle ones need not linger.
    server.keepAliveTimeout = 5_000
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject)
        server.listen(at.port, at.host, () => {
          server.off('error', reject)
          resolve()
        })
      })
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code
      const flag = options.flag ?? '--metrics-listen'
      throw new PilotError(METRICS_LISTEN_FAILED, `${flag}: cannot listen on ${formatHostPort(at.host, at.port)}: ${code === 'EADDRINUSE' ? 'address already in use' : (err as Error).message}`, {
        hint:
          code === 'EADDRINUSE'
            ? `another process holds this port; stop it or pick another with ${flag}`
            : code === 'EACCES'
              ? 'ports below 1024 need privileges; pick a higher one'
              : 'check that the address is one of this host\'s addresses (or 0.0.0.0 / [::])',
        cause: err,
      })
    }
    server.on('error', (err) => logger.error('metrics listener error', { error: err.message }))
    const bound = server.address() as AddressInfo
    return new MetricsHttpServer(server, { host: bound.address, port: bound.port })
  }

  private constructor(server: Server, address: HostPort) {
    this.server = server
    this.address = address
  }

  /** `http://host:port/metrics` of the bound address. */
  get url(): string {
    return `http://${formatHostPort(this.address.host, this.address.port)}${METRICS_PATH}`
  }

  /** Stops listening and closes every connection, idle or not. Idempotent. */
  close(): Promise<void> {
    this.closing ??= new Promise<void>((resolve) => {
      this.server.close(() => resolve())
      this.server.closeAllConnections()
    })
    return this.closing
  }
}

async function answer(registry: Registry, logger: Logger, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const path = (req.url ?? '/').split('?', 1)[0]
  if (path !== METRICS_PATH) {
    res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end(`not found: the metrics are at ${METRICS_PATH}\n`)
    return
  }
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain; charset=utf-8' }).end('use GET\n')
    return
  }
  let text: string
  try {
    text = await registry.metrics()
  } catch (err) {
    logger.error('metrics scrape failed', { error: (err as Error).message })
    res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' }).end('metrics collection failed; see the log\n')
    return
  }
  res.writeHead(200, { 'content-type': registry.contentType })
  res.end(req.method === 'HEAD' ? undefined : text)
}
