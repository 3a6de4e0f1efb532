/** `pilot-tun registry`: run a registry server in the foreground until SIGINT/SIGTERM. */
import type { CommandModule } from 'yargs'
import { ConfigError, DecodeError, PilotError } from '../../errors.js'
import { formatHostPort, parseHostPort, type HostPort } from '../../protocol/host-port.js'
import { RegistryError, RegistryErrorCode } from '../../registry/errors.js'
import { startRegistry, type RunningRegistry } from '../../registry/start.js'
import { parseStoreFlag, STORE_DESCRIBE } from '../store-flag.js'
import { openRegistryStore } from '../../registry/open-store.js'
import { createCliLogger, LOG_LEVELS, type LogFormat, type LogLevel } from '../logging.js'
import { METRICS_LISTEN_DESCRIBE, metricsListenOption, serveMetricsOrUndo } from '../metrics-listen.js'
import { announceRegistryTls, registryPinCommand, registryTlsFromArgs, withRegistryTlsOptions, type RegistryTlsArgs } from '../registry-tls-flags.js'

export { startRegistry, type RunningRegistry, type StartRegistryOptions } from '../../registry/start.js'

export const DEFAULT_REGISTRY_LISTEN = '0.0.0.0:9000'
export const DEFAULT_REGISTRY_STORE = '/var/lib/pilot-tun/registry.db'

interface RegistryArgs extends RegistryTlsArgs {
  listen: string
  store: string
  'log-level': LogLevel
  'log-format': LogFormat
  'metrics-listen'?: string
  'admin-token'?: string
}

/** An IP (or `localhost`) `HOST:PORT`, `[IPv6]:PORT` or `:PORT` (all IPv4 interfaces); PT_CONFIG_INVALID names `flag`. */
export function parseListenAddress(text: string, flag = '--listen'): HostPort {
  try {
    return parseHostPort(text, { flag, hosts: 'ip-or-localhost', listen: true })
  } catch (err) {
    if (!(err instanceof DecodeError)) throw err
    throw new ConfigError(err.message, 'for example 0.0.0.0:9000 or [::]:9000')
  }
}

export const ADMIN_TOKEN_DESCRIBE =
  'secret that lets `pilot-tun audit --network 0 --admin-token T` read the trust audit chain (unset: nobody can; or set PILOT_TUN_ADMIN_TOKEN, which keeps it out of the process list)'

/** `--admin-token`: empty means unset (compared in constant time by the registry, networks.ts). */
export function adminTokenOption(token: string | undefined): { adminToken?: string } {
  if (token === undefined || token === '') return {}
  return { adminToken: token }
}

export const registryCommand: CommandModule<object, RegistryArgs> = {
  command: 'registry',
  describe: 'run a registry server (node directory, trust pairs, handshake relay) in the foreground',
  builder: (y) =>
    withRegistryTlsOptions(y.command(registryPinCommand(DEFAULT_REGISTRY_STORE)))
      .option('listen', { type: 'string', default: DEFAULT_REGISTRY_LISTEN, describe: 'TCP address to listen on (HOST:PORT)' })
      .option('store', { type: 'string', default: DEFAULT_REGISTRY_STORE, describe: STORE_DESCRIBE })
      .option('log-level', { choices: LOG_LEVELS, default: 'info' as LogLevel, describe: 'log verbosity' })
      .option('log-format', {
        choices: ['auto', 'text', 'json'] as const,
        default: 'auto' as LogFormat,
        describe: 'log lines as text or JSON (auto: JSON when stderr is not a terminal)',
      })
      .option('metrics-listen', { type: 'string', describe: METRICS_LISTEN_DESCRIBE })
      .option('admin-token', { type: 'string', describe: ADMIN_TOKEN_DESCRIBE }),
  handler: async (args) => {
    const { host, port } = parseListenAddress(args.listen)
    const metricsAt = metricsListenOption(args['metrics-listen'])
    const store = parseStoreFlag(args.store)
    const logger = createCliLogger(args['log-level'], args['log-format'])
    const tls = await registryTlsFromArgs(args, args.store)
    let registry: RunningRegistry
    try {
      registry = await startRegistry({
        host,
        port,
        store: await openRegistryStore(args.store, { logger }),
        logger,
        ...adminTokenOption(args['admin-token'] ?? process.env.PILOT_TUN_ADMIN_TOKEN),
        ...(tls === null ? {} : { tls: tls.listen }),
      })
    } catch (err) {
      if (err instanceof PilotError) throw err
      throw new RegistryError(RegistryErrorCode.LISTEN, `cannot listen on ${args.listen}: ${(err as Error).message}`, {
        hint: 'is another registry already running there, or does the port need privileges?',
      })
    }
    logger.info(`listening on ${args.listen}`, { port: registry.address.port, store: store.label })
    announceRegistryTls(tls, args, logger, { registry: formatHostPort(registry.address.host, registry.address.port) })
    const metrics = metricsAt === null ? null : await serveMetricsOrUndo(metricsAt, { registry }, logger, () => registry.close())
    await waitForSignal()
    logger.info('shutting down')
    await metrics?.close()
    await registry.close()
  },
}

/** Resolves on the first SIGINT or SIGTERM. */
function waitForSignal(): Promise<NodeJS.Signals> {
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
