/**
 * `pilot-tun rendezvous`: a registry (TCP) and a beacon (UDP) in one process,
 * everything a new Pilot network needs besides its nodes. Foreground until
 * SIGINT/SIGTERM; both are closed cleanly.
 */
import type { Argv, CommandModule } from 'yargs'
import { PilotError } from '../../errors.js'
import { formatHostPort } from '../../protocol/host-port.js'
import { RegistryError, RegistryErrorCode } from '../../registry/errors.js'
import { parseStoreFlag, STORE_DESCRIBE } from '../store-flag.js'
import { openRegistryStore } from '../../registry/open-store.js'
import { createCliLogger, LOG_LEVELS, type LogFormat, type LogLevel } from '../logging.js'
import { METRICS_LISTEN_DESCRIBE, metricsListenOption, serveMetricsOrUndo } from '../metrics-listen.js'
import { announceRegistryTls, registryTlsFromArgs, withRegistryTlsOptions, type RegistryTlsArgs } from '../registry-tls-flags.js'
import { startBeacon, parseListenAddress as parseUdpListen, waitForShutdownSignal, DEFAULT_BEACON_LISTEN, PROBE_LISTEN_HELP } from './beacon.js'
import {
  startRegistry,
  parseListenAddress as parseTcpListen,
  adminTokenOption,
  ADMIN_TOKEN_DESCRIBE,
  DEFAULT_REGISTRY_LISTEN,
  DEFAULT_REGISTRY_STORE,
} from './registry.js'

interface RendezvousArgs extends RegistryTlsArgs {
  'registry-listen': string
  'beacon-listen': string
  'beacon-probe-listen'?: string[]
  store: string
  'log-level': LogLevel
  'log-format': LogFormat
  'metrics-listen'?: string
  'admin-token'?: string
}

export const rendezvousCommand: CommandModule<object, RendezvousArgs> = {
  command: 'rendezvous',
  describe: 'run a registry and a beacon together in the foreground (a whole rendezvous point)',
  builder: (y) =>
    withRegistryTlsOptions(y)
      .option('registry-listen', { type: 'string', default: DEFAULT_REGISTRY_LISTEN, describe: 'registry TCP HOST:PORT' })
      .option('beacon-listen', { type: 'string', default: DEFAULT_BEACON_LISTEN, describe: 'beacon UDP HOST:PORT' })
      .option('beacon-probe-listen', { type: 'string', array: true, describe: PROBE_LISTEN_HELP })
      .option('store', { type: 'string', default: DEFAULT_REGISTRY_STORE, describe: STORE_DESCRIBE })
      .option('log-level', { choices: LOG_LEVELS, default: 'info' as LogLevel, describe: 'log verbosity' })
      .option('log-format', {
        choices: ['auto', 'text', 'json'] as const,
        default: 'auto' as LogFormat,
        describe: 'log lines as text or JSON (auto: JSON when stderr is not a terminal)',
      })
      .option('metrics-listen', { type: 'string', describe: `${METRICS_LISTEN_DESCRIBE}: the registry's and the beacon's` })
      .option('admin-token', { type: 'string', describe: ADMIN_TOKEN_DESCRIBE }) as Argv<RendezvousArgs>,
  handler: async (args) => {
    // Check both addresses before taking either port.
    const tcp = parseTcpListen(args['registry-listen'], '--registry-listen')
    const udp = parseUdpListen(args['beacon-listen'], '--beacon-listen')
    const metricsAt = metricsListenOption(args['metrics-listen'])
    const store = parseStoreFlag(args.store)
    const probeListen = (args['beacon-probe-listen'] ?? []).map((p) => parseUdpListen(p, '--beacon-probe-listen'))
    const adminToken = adminTokenOption(args['admin-token'] ?? process.env.PILOT_TUN_ADMIN_TOKEN)
    const logger = createCliLogger(args['log-level'], args['log-format'])
    const tls = await registryTlsFromArgs(args, args.store)
    const signal = waitForShutdownSignal()
    let registry
    try {
      registry = await startRegistry({
        host: tcp.host,
        port: tcp.port,
        store: await openRegistryStore(args.store, { logger }),
        logger: logger.child({ component: 'registry' }),
        ...adminToken,
        ...(tls === null ? {} : { tls: tls.listen }),
      })
    } catch (err) {
      if (err instanceof PilotError) throw err
      throw new RegistryError(RegistryErrorCode.LISTEN, `cannot listen on ${args['registry-listen']}: ${(err as Error).message}`, {
        hint: 'is another registry already running there, or does the port need privileges?',
      })
    }
    let beacon
    try {
      beacon = await startBeacon({ listen: udp, probeListen, logger: logger.child({ component: 'beacon' }) })
    } catch (err) {
      await registry.close()
      throw err
    }
    logger.info('rendezvous running', {
      registry: formatHostPort(registry.address.host, registry.address.port),
      beacon: formatHostPort(beacon.local.host, beacon.local.port),
      store: store.label,
    })
    announceRegistryTls(tls, args, logger, {
      registry: formatHostPort(registry.address.host, registry.address.port),
      beacon: formatHostPort(beacon.local.host, beacon.local.port),
    })
    const started = { registry, beacon } // consts for the closure below (the lets above lose their narrowing in it)
    const stopBoth = (): Promise<unknown> => Promise.all([started.beacon.close(), started.registry.close()])
    const metrics = metricsAt === null ? null : await serveMetricsOrUndo(metricsAt, { registry, beacon: beacon.server }, logger, stopBoth)
    const sig = await signal
    logger.info(`${sig}: shutting down`)
    await metrics?.close()
    await Promise.all([beacon.close(), registry.close()])
    logger.info('rendezvous stopped')
  },
}
