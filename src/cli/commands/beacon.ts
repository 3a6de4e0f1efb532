/**
 * `pilot-tun beacon`: runs a beacon in the foreground until SIGINT/SIGTERM.
 * `startBeacon` is the reusable part (the `rendezvous` command runs it beside
 * a registry). `--probe-listen` adds netcheck's probe ports
 * (src/netcheck/responder.ts, docs/wire.md §9.8) in front of the beacon.
 */
import type { Argv, CommandModule } from 'yargs'
import { BeaconError, BeaconErrorCode, BeaconServer, resolveBeaconLimits, type BeaconLimits } from '../../beacon/index.js'
import { BeaconClusterDriver, prepareCluster, type BeaconClusterOptions } from '../../beacon/cluster.js'
import { DecodeError, PilotError } from '../../errors.js'
import { formatHostPort, parseHostPort } from '../../protocol/host-port.js'
import { nullLogger, type Logger } from '../../logger.js'
import { PROBE_MAX_ENDPOINTS } from '../../protocol/netcheck-messages.js'
import { ProbeResponder, type ProbePortBinds } from '../../netcheck/responder.js'
import { UdpBind, type PacketBind, type UdpEndpoint } from '../../tunnel/bind.js'
import { LOG_LEVELS, createCliLogger, type LogLevel } from '../logging.js'
import { METRICS_LISTEN_DESCRIBE, metricsListenOption, serveMetricsOrUndo } from '../metrics-listen.js'

export const DEFAULT_BEACON_LISTEN = '0.0.0.0:9001'

export interface StartBeaconOptions {
  /** `HOST:PORT`, `[IPv6]:PORT`, `:PORT`, or an endpoint. Port 0 picks a free port. */
  listen: string | UdpEndpoint
  logger?: Logger
  limits?: Partial<BeaconLimits>
  /** Netcheck probe ports (at most 2; one on another address lets clients tell a full cone from a restricted one). */
  probeListen?: ReadonlyArray<string | UdpEndpoint>
  /** Peer beacons (docs/wire.md §9.7): a static list and/or a registry to register with and list from. */
  cluster?: BeaconClusterOptions
}

export interface RunningBeacon {
  readonly server: BeaconServer
  /** The endpoint actually bound (the real port when 0 was asked for). */
  readonly local: UdpEndpoint
  /** The netcheck probe ports, when `probeListen` asked for some. */
  readonly probes: ProbeResponder | null
  /** The cluster's timers (Sync, registry rounds), when peers were asked for. */
  readonly cluster: BeaconClusterDriver | null
  close(): Promise<void>
}

/** Binds the UDP socket(s) and starts a beacon; `PT_BEACON_LISTEN_FAILED` when a port is taken. */
export async function startBeacon(opts: StartBeaconOptions): Promise<RunningBeacon> {
  const listen = typeof opts.listen === 'string' ? parseListenAddress(opts.listen) : opts.listen
  const probeListen = (opts.probeListen ?? []).map((p) => (typeof p === 'string' ? parseListenAddress(p, '--probe-listen') : p))
  if (probeListen.length > PROBE_MAX_ENDPOINTS) {
    throw new BeaconError(BeaconErrorCode.INVALID_LISTEN, `at most ${PROBE_MAX_ENDPOINTS} probe ports, got ${probeListen.length}`, {
      hint: 'one on the beacon\'s address (e.g. --probe-listen :9002) and one on another address of this host',
    })
  }
  const logger = opts.logger ?? nullLogger
  const limits = resolveBeaconLimits(opts.limits) // refuse bad limits before taking the port
  const clustered = opts.cluster !== undefined && (opts.cluster.beaconId !== 0 || (opts.cluster.peers ?? []).length > 0 || !!opts.cluster.registry)
  const cluster = clustered ? await prepareCluster(opts.cluster!) : null
  const opened: PacketBind[] = []
  let probes: ProbePortBinds[]
  let bind: PacketBind
  try {
    bind = await openUdp(listen, '--listen', opened)
    probes = []
    for (const p of probeListen) {
      const discover = await openUdp(p, '--probe-listen', opened)
      const unsolicited = await openUdp({ host: p.host, port: 0 }, '--probe-listen', opened)
      probes.push({ discover, unsolicited, advertise: { host: isUnspecified(p.host) ? null : p.host, port: discover.local.port } })
    }
  } catch (err) {
    await Promise.all(opened.map((b) => b.close()))
    throw err
  }
  const responder = probes.length === 0 ? null : new ProbeResponder({ main: bind, probes, logger, limits })
  const server = new BeaconServer({ bind: responder?.beaconBind ?? bind, logger, limits, ...(cluster === null ? {} : { cluster: cluster.state }) })
  server.start()
  let driver: BeaconClusterDriver | null = null
  if (cluster !== null) {
    const c = opts.cluster!
    const advertise = c.advertise ?? formatHostPort(bind.local.host, bind.local.port)
    if (cluster.registry !== null && !c.advertise && (bind.local.host === '0.0.0.0' || bind.local.host === '::')) {
      logger.warn('registering an unspecified address: peers on other hosts will use the registry\'s host; set --advertise HOST:PORT', { advertise })
    }
    driver = new BeaconClusterDriver(server, cluster.state, {
      registry: cluster.registry,
      advertise,
      ...(c.syncIntervalMs === undefined ? {} : { syncIntervalMs: c.syncIntervalMs }),
      ...(c.registryIntervalMs === undefined ? {} : { registryIntervalMs: c.registryIntervalMs }),
    }, logger.child({ component: 'beacon-cluster' }))
    driver.start()
    logger.info('beacon cluster', {
      beaconId: cluster.state.beaconId,
      peers: cluster.staticPeers.map((p) => formatHostPort(p.host, p.port)),
      ...(cluster.registry === null ? {} : { registry: formatHostPort(cluster.registry.host, cluster.registry.port), advertise }),
    })
  }
  const local = formatHostPort(bind.local.host, bind.local.port)
  logger.info(`beacon listening on udp ${local}`, { endpoint: local })
  for (const p of probes) logger.info(`netcheck probe port on udp ${formatHostPort(p.discover.local.host, p.discover.local.port)}`)
  const close = async (): Promise<void> => {
    await driver?.close()
    await Promise.all([server.close(), responder?.close()])
  }
  return { server, local: bind.local, probes: responder, cluster: driver, close }
}

/** One UDP socket, added to `opened`; PT_BEACON_LISTEN_FAILED naming `flag` when it cannot be bound. */
async function openUdp(listen: UdpEndpoint, flag: string, opened: PacketBind[]): Promise<PacketBind> {
  try {
    const bind = await UdpBind.open({ host: listen.host, port: listen.port })
    opened.push(bind)
    return bind
  } catch (err) {
    const cause = err instanceof PilotError && err.cause !== undefined ? err.cause : err
    const inUse = (cause as NodeJS.ErrnoException | undefined)?.code === 'EADDRINUSE'
    throw new BeaconError(
      BeaconErrorCode.LISTEN_FAILED,
      `cannot listen on UDP ${formatHostPort(listen.host, listen.port)}: ${inUse ? 'address already in use' : cause instanceof Error ? cause.message : String(cause)}`,
      {
        hint: inUse
          ? `another process (maybe another beacon) holds this port; stop it or pick another with ${flag}`
          : 'check that the address is one of this host\'s addresses (or 0.0.0.0 / ::)',
        cause: err,
      },
    )
  }
}

function isUnspecified(host: string): boolean {
  return host === '0.0.0.0' || host === '::'
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

export const PROBE_LISTEN_HELP =
  'a netcheck probe port, UDP HOST:PORT (up to 2: :PORT for another port of this address, IP:PORT on a second address to tell full from restricted cones)'

interface BeaconArgs {
  listen: string
  'probe-listen'?: string[]
  'log-level': LogLevel
  'max-nodes'?: number | undefined
  'node-ttl'?: number | undefined
  'metrics-listen'?: string | undefined
  'beacon-id': number
  peers?: string[]
  registry?: string | undefined
  advertise?: string | undefined
}

export const beaconCommand: CommandModule<object, BeaconArgs> = {
  command: 'beacon',
  describe: 'run a beacon: endpoint discovery, hole-punch coordination and relay (UDP, foreground)',
  builder: (y: Argv) =>
    y
      .option('listen', { type: 'string', default: DEFAULT_BEACON_LISTEN, describe: 'UDP HOST:PORT to listen on' })
      .option('probe-listen', { type: 'string', array: true, describe: PROBE_LISTEN_HELP })
      .option('log-level', { choices: LOG_LEVELS, default: 'info' as LogLevel, describe: 'log verbosity' })
      .option('max-nodes', { type: 'number', describe: 'nodes remembered at most (least recently seen evicted)' })
      .option('node-ttl', { type: 'number', describe: 'seconds a node is remembered after its last Discover' })
      .option('metrics-listen', { type: 'string', describe: METRICS_LISTEN_DESCRIBE })
      .option('beacon-id', { type: 'number', default: 0, describe: 'this beacon\'s ID in a cluster (unique, non-zero; 0 = standalone)' })
      .option('peers', {
        type: 'string',
        array: true,
        describe: 'peer beacons, HOST:PORT (comma-separated or repeated): Sync every 10 s, relay and punch forwarded to the beacon holding the node',
      })
      .option('registry', { type: 'string', describe: 'registry HOST:PORT: every 30 s beacon_register (needs --beacon-id) and beacon_list for more peers' })
      .option('advertise', { type: 'string', describe: 'the UDP HOST:PORT registered for this beacon (default: --listen)' })
      .epilog(
        'Clustering: beacons peer only with the beacons named by --peers or listed by the registry, and accept Syncs, '
        + 'forwarded relays and punches only from them. Daemons pick a beacon from their own --beacon list by node ID. '
        + 'Example: pilot-tun beacon --listen 0.0.0.0:9001 --beacon-id 1 --peers 10.0.0.2:9001',
      ) as Argv<BeaconArgs>,
  handler: async (args) => {
    const listen = parseListenAddress(args.listen)
    const metricsAt = metricsListenOption(args['metrics-listen'])
    const logger = createCliLogger(args['log-level'])
    const limits: Partial<BeaconLimits> = {}
    if (args['max-nodes'] !== undefined) limits.maxNodes = args['max-nodes']
    if (args['node-ttl'] !== undefined) limits.nodeTtlMs = args['node-ttl'] * 1000
    const peers = (args.peers ?? []).flatMap((p) => p.split(',')).map((p) => p.trim()).filter((p) => p !== '')
    const cluster: BeaconClusterOptions = { beaconId: args['beacon-id'], peers, registry: args.registry ?? null, advertise: args.advertise ?? null }
    const beacon = await startBeacon({ listen, logger, limits, probeListen: args['probe-listen'] ?? [], cluster })
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
