/**
 * `pilot-tun beacon`: runs a beacon in the foreground until SIGINT/SIGTERM.
 * `startBeacon` is the reusable part (the `rendezvous` command runs it beside
 * a registry).
 */
import type { Argv, CommandModule } from 'yargs'
import { BeaconError, BeaconErrorCode, BeaconServer, resolveBeaconLimits, type BeaconLimits } from '../../beacon/index.js'
import { DecodeError, PilotError } from '../../errors.js'
import { formatHostPort, parseHostPort } from '../../protocol/host-port.js'
import { nullLogger, type Logger } from '../../logger.js'
import { UdpBind, type UdpEndpoint } from '../../tunnel/bind.js'
import { LOG_LEVELS, createCliLogger, type LogLevel } from '../logging.js'
import { METRICS_LISTEN_DESCRIBE, metricsListenOption, serveMetricsOrUndo } from '../metrics-listen.js'

export const DEFAULT_BEACON_LISTEN = '0.0.0.0:9001'

export interface StartBeaconOptions {
  /** `HOST:PORT`, `[IPv6]:PORT`, `:PORT`, or an endpoint. Port 0 picks a free port. */
  listen: string | UdpEndpoint
  logger?: Logger
  limits?: Partial<BeaconLimits>
}

export interface RunningBeacon {
  readonly server: BeaconServer
  /** The endpoint actually bound (the real port when 0 was asked for). */
  readonly local: UdpEndpoint
  close(): Promise<void>
}

/** Binds the UDP socket and starts a beacon on it; `PT_BEACON_LISTEN_FAILED` when the port is taken. */
export async function startBeacon(opts: StartBeaconOptions): Promise<RunningBeacon> {
  const listen = typeof opts.listen === 'string' ? parseListenAddress(opts.listen) : opts.listen
  const logger = opts.logger ?? nullLogger
  const limits = resolveBeaconLimits(opts.limits) // refuse bad limits before taking the port
  let bind: UdpBind
  try {
    bind = await UdpBind.open({ host: listen.host, port: listen.port })
  } catch (err) {
    const cause = err instanceof PilotError && err.cause !== undefined ? err.cause : err
    const inUse = (cause as NodeJS.ErrnoException | undefined)?.code === 'EADDRINUSE'
    throw new BeaconError(
      BeaconErrorCode.LISTEN_FAILED,
      `cannot listen on UDP ${formatHostPort(listen.host, listen.port)}: ${inUse ? 'address already in use' : cause instanceof Error ? cause.message : String(cause)}`,
      {
        hint: inUse
          ? 'another process (maybe another beacon) holds this port; stop it or pick another with --listen'
          : 'check that the address is one of this host\'s addresses (or 0.0.0.0 / ::)',
        cause: err,
      },
    )
  }
  const server = new BeaconServer({ bind, logger, limits })
  server.start()
  const local = formatHostPort(bind.local.host, bind.local.port)
  logger.info(`beacon listening on udp ${local}`, { endpoint: local })
  return { server, local: bind.local, close: () => server.close() }
}

/** An IP `HOST:PORT`, `[IPv6]:PORT`, `:PORT` (all IPv4 interfaces) or `PORT`; PT_BEACON_INVALID_LISTEN names `flag`. */
export function parseListenAddress(text: string, flag = '--listen'): UdpEndpoint {
  try {
    return parseHostPort(text, { flag, hosts: 'ip', listen: true, barePort: true })
  } catch (err) {
    if (!(err instanceof DecodeError)) throw err
    throw new BeaconError(BeaconErrorCode.INVALID_LISTEN, err.message, { hint: 'use HOST:PORT, e.g. 0.0.0.0:9001 or [::]:9001', cause: err })
  }
}

/** Resolves with the first SIGINT or SIGTERM, then stops listening for them. */
export function waitForShutdownSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const onSignal = (signal: NodeJS.Signals): void => {
      process.off('SIGINT', onSignal)
      process.off('SIGTERM', onSignal)
      resolve(signal)
    }
    process.on('SIGINT', onSignal)
    process.on('SIGTERM', onSignal)
  })
}

interface BeaconArgs {
  listen: string
  'log-level': LogLevel
  'max-nodes'?: number | undefined
  'node-ttl'?: number | undefined
  'metrics-listen'?: string | undefined
}

export const beaconCommand: CommandModule<object, BeaconArgs> = {
  command: 'beacon',
  describe: 'run a beacon: endpoint discovery, hole-punch coordination and relay (UDP, foreground)',
  builder: (y: Argv) =>
    y
      .option('listen', { type: 'string', default: DEFAULT_BEACON_LISTEN, describe: 'UDP HOST:PORT to listen on' })
      .option('log-level', { choices: LOG_LEVELS, default: 'info' as LogLevel, describe: 'log verbosity' })
      .option('max-nodes', { type: 'number', describe: 'nodes remembered at most (least recently seen evicted)' })
      .option('node-ttl', { type: 'number', describe: 'seconds a node is remembered after its last Discover' })
      .option('metrics-listen', { type: 'string', describe: METRICS_LISTEN_DESCRIBE }) as Argv<BeaconArgs>,
  handler: async (args) => {
    const listen = parseListenAddress(args.listen)
    const metricsAt = metricsListenOption(args['metrics-listen'])
    const logger = createCliLogger(args['log-level'])
    const limits: Partial<BeaconLimits> = {}
    if (args['max-nodes'] !== undefined) limits.maxNodes = args['max-nodes']
    if (args['node-ttl'] !== undefined) limits.nodeTtlMs = args['node-ttl'] * 1000
    const beacon = await startBeacon({ listen, logger, limits })
    const metrics = metricsAt === null ? null : await serveMetricsOrUndo(metricsAt, { beacon: beacon.server }, logger, () => beacon.close())
    const signal = await waitForShutdownSignal()
    logger.info(`${signal}: shutting down`)
    await metrics?.close()
    await beacon.close()
    const s = beacon.server.stats()
    logger.info('beacon stopped', {
      datagrams: s.datagrams, nodes: s.nodes, relayedPackets: s.relayedPackets, relayedBytes: s.relayedBytes,
    })
  },
}
