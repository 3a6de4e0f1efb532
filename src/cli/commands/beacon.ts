/**
 * `pilot-tun beacon`: runs a beacon in the foreground until SIGINT/SIGTERM.
 * `startBeacon` is the reusable part (the `rendezvous` command runs it beside
 * a registry).
 */
import type { Argv, CommandModule } from 'yargs'
import { isIP } from 'node:net'
import { BeaconError, BeaconErrorCode, BeaconServer, resolveBeaconLimits, type BeaconLimits } from '../../beacon/index.js'
import { PilotError } from '../../errors.js'
import { nullLogger, type Logger } from '../../logger.js'
import { UdpBind, type UdpEndpoint } from '../../tunnel/bind.js'
import { LOG_LEVELS, createCliLogger, type LogLevel } from '../logging.js'

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
      `cannot listen on UDP ${formatEndpoint(listen)}: ${inUse ? 'address already in use' : cause instanceof Error ? cause.message : String(cause)}`,
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
  logger.info(`beacon listening on udp ${formatEndpoint(bind.local)}`, { endpoint: formatEndpoint(bind.local) })
  return { server, local: bind.local, close: () => server.close() }
}

/** `HOST:PORT`, `[IPv6]:PORT`, `:PORT` (all IPv4 interfaces) or `PORT`. */
export function parseListenAddress(text: string): UdpEndpoint {
  const bad = (why: string) =>
    new BeaconError(BeaconErrorCode.INVALID_LISTEN, `--listen ${JSON.stringify(text)}: ${why}`, {
      hint: 'use HOST:PORT, e.g. 0.0.0.0:9001 or [::]:9001',
    })
  let host: string
  let portText: string
  const bracket = /^\[([^\]]+)\]:(\d+)$/.exec(text)
  if (bracket) {
    host = bracket[1]!
    portText = bracket[2]!
  } else if (/^\d+$/.test(text)) {
    host = '0.0.0.0'
    portText = text
  } else {
    const colon = text.lastIndexOf(':')
    if (colon < 0) throw bad('no port')
    host = text.slice(0, colon) || '0.0.0.0'
    portText = text.slice(colon + 1)
    if (host.includes(':')) throw bad('write an IPv6 host in brackets')
  }
  if (!/^\d{1,5}$/.test(portText) || Number(portText) > 65535) throw bad('port must be 0..65535')
  if (isIP(host) === 0) throw bad(`${host} is not an IP address`)
  return { host, port: Number(portText) }
}

function formatEndpoint(e: UdpEndpoint): string {
  return e.host.includes(':') ? `[${e.host}]:${e.port}` : `${e.host}:${e.port}`
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
}

export const beaconCommand: CommandModule<object, BeaconArgs> = {
  command: 'beacon',
  describe: 'run a beacon: endpoint discovery, hole-punch coordination and relay (UDP, foreground)',
  builder: (y: Argv) =>
    y
      .option('listen', { type: 'string', default: DEFAULT_BEACON_LISTEN, describe: 'UDP HOST:PORT to listen on' })
      .option('log-level', { choices: LOG_LEVELS, default: 'info' as LogLevel, describe: 'log verbosity' })
      .option('max-nodes', { type: 'number', describe: 'nodes remembered at most (least recently seen evicted)' })
      .option('node-ttl', { type: 'number', describe: 'seconds a node is remembered after its last Discover' }) as Argv<BeaconArgs>,
  handler: async (args) => {
    const listen = parseListenAddress(args.listen)
    const logger = createCliLogger(args['log-level'])
    const limits: Partial<BeaconLimits> = {}
    if (args['max-nodes'] !== undefined) limits.maxNodes = args['max-nodes']
    if (args['node-ttl'] !== undefined) limits.nodeTtlMs = args['node-ttl'] * 1000
    const beacon = await startBeacon({ listen, logger, limits })
    const signal = await waitForShutdownSignal()
    logger.info(`${signal}: shutting down`)
    await beacon.close()
    const s = beacon.server.stats()
    logger.info('beacon stopped', {
      datagrams: s.datagrams, nodes: s.nodes, relayedPackets: s.relayedPackets, relayedBytes: s.relayedBytes,
    })
  },
}
