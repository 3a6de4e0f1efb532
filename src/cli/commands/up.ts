/**
 * `pilot-tun up`: runs the daemon in the foreground until SIGINT/SIGTERM or
 * `pilot-tun down`. Settings come from flags, then the JSON config file
 * (config.ts), then defaults.
 *
 * Order: the control socket is taken first (a second daemon fails fast with
 * PT_CONTROL_IN_USE before touching the registry), then the daemon starts and
 * the socket starts answering. Shutdown is the reverse: the daemon closes (the
 * socket answers PT_DAEMON_CLOSED meanwhile), then the socket file goes, which
 * is what `pilot-tun down` waits for. A second SIGINT/SIGTERM exits at once.
 *
 * Errors nobody caught follow process-policy.ts: an unhandled rejection is
 * logged and the daemon keeps serving; an uncaught exception tears the
 * daemon down and exits non-zero (systemd restarts it).
 */
import type { Argv, CommandModule } from 'yargs'
import type { DaemonControl } from '../../daemon/api.js'
import type { ServicesControl } from '../../services/api.js'
import { ControlServer } from '../../daemon/control/server.js'
import type { SecureControl } from '../../services/secure/secure-service.js'
import { DEFAULT_CONTROL_SOCKET } from '../../daemon/control/client.js'
import { daemonClosedError } from '../../daemon/errors.js'
import { ConfigError, PilotError } from '../../errors.js'
import type { Logger } from '../../logger.js'
import { DEFAULT_OVERLAY_PREFIX_TEXT } from '../../protocol/ipv6-mapping.js'
import { DEFAULT_CONFIG_PATH, DEFAULT_LISTEN, loadConfigFile, mergeConfig, type ConfigValues } from '../config.js'
import { createCliLogger, LOG_LEVELS, type LogFormat, type LogLevel } from '../logging.js'
import { METRICS_LISTEN_DESCRIBE, metricsListenOption } from '../metrics-listen.js'
import { installProcessPolicy } from '../process-policy.js'
import { registryTlsOption, type RegistryTlsPin } from '../../registry/tls-pin.js'
import { startIpcSocket, type RunningIpcSocket } from '../ipc-socket.js'
import type { Daemon } from '../../daemon/daemon.js'
import type { NetworkOps } from '../../daemon/network-ops.js'

export const DEFAULT_STATE_DIR = '/var/lib/pilot-tun'

interface UpArgs {
  tun?: boolean
  registry?: string
  'registry-tls'?: boolean
  'registry-fingerprint'?: string
  beacon?: string
  listen?: string
  'state-dir'?: string
  'control-socket'?: string
  hostname?: string
  'auto-accept'?: boolean
  'answer-pings'?: boolean
  tasks?: boolean
  public?: boolean
  kdf?: 'auto' | 'hkdf' | 'legacy'
  config?: string
  'log-level'?: LogLevel
  'log-format'?: LogFormat
  'heartbeat-interval'?: number
  interface?: string
  prefix?: string
  mtu?: number
  mss?: number
  dns?: 'on' | 'off'
  'metrics-listen'?: string
  'ipc-socket'?: string
  dataexchange?: boolean
  eventstream?: boolean
  'inbox-max-mb'?: number
  'inbox-max-files'?: number
  'network-refresh'?: number
}

/** The TUN front door settings (`tun` null = --no-tun). */
export interface UpTunSettings {
  interface: string
  prefix: string
  mtu: number
  dns: boolean
}

/** Everything `up` runs with, after flags, file and defaults. */
export interface UpSettings {
  /** The overlay prefix (a /48), for the daemon and its TUN. */
  prefix: string
  tun: UpTunSettings | null
  registry: string
  /** `--registry-tls --registry-fingerprint`: the pinned certificate, null = plaintext TCP. */
  registryTls: RegistryTlsPin | null
  beacon: string | null
  listen: string
  stateDir: string
  controlSocket: string
  hostname: string | null
  autoAccept: boolean
  /** Answer pings (ICMPv6 echo, `pilot-tun ping`) from nodes without trust too. */
  answerPings: boolean
  /** The task service on port 1003 (`--no-tasks` turns it off). */
  tasks: boolean
  public: boolean
  kdf: 'auto' | 'hkdf' | 'legacy'
  logLevel: LogLevel
  logFormat: LogFormat
  /** Payload bytes per Pilot stream segment we send; null = the session default (1,402: unfragmented on a 1,500-byte path). */
  mss: number | null
  /** Hidden test knob (--heartbeat-interval): registry heartbeat period, null = the daemon's default. */
  heartbeatMs: number | null
  /** `--metrics-listen`: TCP `[host]:port` of the Prometheus endpoint, null = off. */
  metricsListen: string | null
  /** `--ipc-socket`: the Go reference's driver IPC socket (src/ipc/), null = off. */
  ipcSocket: string | null
  /** Data exchange (port 1001) and event stream (port 1002) services on. */
  dataExchange: boolean
  eventStream: boolean
  /** The inbox quota (received messages and files together). */
  inboxMaxBytes: number
  inboxMaxFiles: number
  /** `--network-refresh`: how often the daemon re-reads its networks from the registry (ms). */
  networkRefreshMs: number
}

/** What `up` needs from the daemon module. */
interface RunningDaemon extends DaemonControl {
  readonly services: ServicesControl
  readonly networkOps: NetworkOps | null
  readonly secure: SecureControl
  close(): Promise<void>
  readonly closed: Promise<void>
}

export const upCommand: CommandModule<object, UpArgs> = {
  command: 'up',
  describe: 'run the pilot-tun daemon in the foreground (until Ctrl-C, SIGTERM or `pilot-tun down`)',
  builder: (y) =>
    y
      .option('tun', { type: 'boolean', describe: 'create the TUN interface; --no-tun runs tunnel, sessions, echo and trust only', defaultDescription: 'true' })
      .option('interface', { type: 'string', describe: 'TUN interface name', defaultDescription: 'pilot0' })
      .option('prefix', { type: 'string', describe: 'overlay IPv6 prefix (a /48)', defaultDescription: 'fd50:494c:4f54::/48' })
      .option('mtu', { type: 'number', describe: 'TUN MTU (1280..65535; large = fewer packets through the daemon)', defaultDescription: '65520' })
      .option('mss', {
        type: 'number',
        describe: 'payload bytes per Pilot stream segment we send (536..65000); above 1402 the underlay fragments, which cuts per-packet work on clean paths (the Go reference uses 4096)',
        defaultDescription: '1402',
      })
      .option('dns', { choices: ['on', 'off'] as const, describe: 'answer <hostname>.pilot AAAA on the node\'s address, port 53', defaultDescription: 'on' })
      .option('registry', { type: 'string', describe: 'registry HOST:PORT, or several front ends of one registry as HOST:PORT,HOST:PORT (tried in turn; required, here or in the config file)' })
      .option('registry-tls', { type: 'boolean', describe: 'talk TLS to the registry (needs --registry-fingerprint)', defaultDescription: 'false' })
      .option('registry-fingerprint', { type: 'string', describe: 'the registry certificate\'s pin: lower-case hex SHA-256 of its DER (`pilot-tun registry` prints it)' })
      .option('beacon', { type: 'string', describe: 'beacon HOST:PORT for NAT traversal and relay; several, comma-separated: this node uses list[node ID % count]' })
      .option('listen', { type: 'string', describe: 'UDP [HOST]:PORT of the tunnel socket', defaultDescription: DEFAULT_LISTEN })
      .option('state-dir', { type: 'string', describe: 'identity and trust state (created 0700)', defaultDescription: DEFAULT_STATE_DIR })
      .option('control-socket', { type: 'string', describe: 'Unix socket the CLI talks to (mode 0600)', defaultDescription: DEFAULT_CONTROL_SOCKET })
      .option('hostname', { type: 'string', describe: 'register this hostname' })
      .option('auto-accept', { type: 'boolean', describe: 'approve every incoming trust request', defaultDescription: 'false' })
      .option('answer-pings', { type: 'boolean', describe: 'answer pings (ping6 over pilot0, `pilot-tun ping`) from nodes without trust too', defaultDescription: 'false' })
      .option('tasks', { type: 'boolean', describe: 'run the task submission service on port 1003 (`pilot-tun task ...`); --no-tasks turns it off', defaultDescription: 'true' })
      .option('public', { type: 'boolean', describe: 'show this node\'s endpoint to every node at the registry (connecting still needs mutual trust)', defaultDescription: 'false' })
      .option('kdf', { choices: ['auto', 'hkdf', 'legacy'] as const, describe: 'tunnel key derivation', defaultDescription: 'auto' })
      .option('config', { type: 'string', describe: 'JSON config file; flags win over it', defaultDescription: DEFAULT_CONFIG_PATH })
      .option('log-level', { choices: LOG_LEVELS, describe: 'log verbosity', defaultDescription: 'info' })
      .option('log-format', { choices: ['auto', 'text', 'json'] as const, describe: 'text or JSON log lines (auto: JSON when stderr is not a terminal)', defaultDescription: 'auto' })
      .option('metrics-listen', { type: 'string', describe: METRICS_LISTEN_DESCRIBE })
      .option('ipc-socket', { type: 'string', describe: 'also serve the Go reference\'s driver IPC on this Unix socket (mode 0600), for its pilotctl and driver programs; off by default' })
      .option('dataexchange', { type: 'boolean', describe: 'run the data exchange service on port 1001 (send-message/send-file land in the inbox); --no-dataexchange turns it off', defaultDescription: 'true' })
      .option('eventstream', { type: 'boolean', describe: 'run the event stream broker on port 1002 (publish/subscribe); --no-eventstream turns it off', defaultDescription: 'true' })
      .option('inbox-max-mb', { type: 'number', describe: 'inbox quota in MiB (messages and files together; over it the sender gets ERR)', defaultDescription: '256' })
      .option('inbox-max-files', { type: 'number', describe: 'inbox quota in entries (messages and files together)', defaultDescription: '10000' })
      .option('network-refresh', { type: 'number', describe: 'seconds between re-reads of this node\'s networks (members, policy) from the registry (1..3600)', defaultDescription: '10' })
      .option('heartbeat-interval', { type: 'number', hidden: true, describe: 'registry heartbeat period in seconds (tests)' }) as Argv<UpArgs>,
  handler: async (args) => {
    const settings = await resolveUpSettings(args)
    const logger = createCliLogger(settings.logLevel, settings.logFormat)
    await runDaemon(settings, logger)
  },
}

/** Flags over the config file over defaults; PT_CONFIG_* on anything wrong. */
export async function resolveUpSettings(args: UpArgs): Promise<UpSettings> {
  const file = await loadConfigFile(args.config ?? DEFAULT_CONFIG_PATH, args.config !== undefined)
  const flags: ConfigValues = {
    tun: args.tun,
    registry: args.registry,
    'registry-tls': args['registry-tls'],
    'registry-fingerprint': args['registry-fingerprint'],
    beacon: args.beacon,
    listen: args.listen,
    'state-dir': args['state-dir'],
    'control-socket': args['control-socket'],
    hostname: args.hostname,
    'auto-accept': args['auto-accept'],
    'answer-pings': args['answer-pings'],
    tasks: args.tasks,
    public: args.public,
    kdf: args.kdf,
    'log-level': args['log-level'],
    'log-format': args['log-format'],
    interface: args.interface,
    prefix: args.prefix,
    mtu: args.mtu,
    mss: args.mss,
    dns: args.dns,
    'metrics-listen': args['metrics-listen'],
    'ipc-socket': args['ipc-socket'],
    dataexchange: args.dataexchange,
    eventstream: args.eventstream,
    'inbox-max-mb': args['inbox-max-mb'],
    'inbox-max-files': args['inbox-max-files'],
    'network-refresh': args['network-refresh'],
  }
  const c = mergeConfig(file, flags)
  if (c.registry === undefined || c.registry === '') {
    throw new ConfigError('no registry given', 'pass --registry HOST:PORT or set "registry" in the config file (a registry of your own: `pilot-tun rendezvous`)')
  }
  const mtu = c.mtu ?? 65520
  if (!Number.isInteger(mtu) || mtu < 1280 || mtu > 65535) throw new ConfigError(`--mtu ${mtu} is out of range`, 'use an integer in 1280..65535 (IPv6 needs at least 1280)')
  const prefix = c.prefix ?? DEFAULT_OVERLAY_PREFIX_TEXT
  metricsListenOption(c['metrics-listen']) // refused here, before the control socket is taken
  return {
    // One prefix for the daemon (status, resolve, targets) and its TUN, also with --no-tun.
    prefix,
    tun: (c.tun ?? true) ? { interface: c.interface ?? 'pilot0', prefix, mtu, dns: (c.dns ?? 'on') === 'on' } : null,
    registry: c.registry,
    registryTls: registryTlsOption(c['registry-tls'], c['registry-fingerprint']),
    beacon: c.beacon ?? null,
    listen: c.listen ?? DEFAULT_LISTEN,
    stateDir: c['state-dir'] ?? DEFAULT_STATE_DIR,
    controlSocket: c['control-socket'] ?? DEFAULT_CONTROL_SOCKET,
    hostname: c.hostname ?? null,
    autoAccept: c['auto-accept'] ?? false,
    answerPings: c['answer-pings'] ?? false,
    tasks: c.tasks ?? true,
    public: c.public ?? false,
    kdf: c.kdf ?? 'auto',
    logLevel: c['log-level'] ?? 'info',
    logFormat: c['log-format'] ?? 'auto',
    mss: checkMss(c.mss),
    heartbeatMs: heartbeatMs(args['heartbeat-interval']),
    metricsListen: c['metrics-listen'] ?? null,
    ipcSocket: c['ipc-socket'] ?? null,
    dataExchange: c.dataexchange ?? true,
    eventStream: c.eventstream ?? true,
    inboxMaxBytes: Math.round(rangeOption(c['inbox-max-mb'], 256, 1, 1_048_576, '--inbox-max-mb') * 1024 * 1024),
    inboxMaxFiles: Math.round(rangeOption(c['inbox-max-files'], 10_000, 1, 10_000_000, '--inbox-max-files')),
    networkRefreshMs: Math.round(rangeOption(c['network-refresh'], 10, 1, 3600, '--network-refresh') * 1000),
  }
}

function rangeOption(v: number | undefined, fallback: number, min: number, max: number, name: string): number {
  if (v === undefined) return fallback
  if (!(v >= min && v <= max)) throw new ConfigError(`${name} ${v} is out of range`, `use ${min}..${max}`)
  return v
}

function checkMss(mss: number | undefined): number | null {
  if (mss === undefined) return null
  if (!Number.isInteger(mss) || mss < 536 || mss > 65000) throw new ConfigError(`--mss ${mss} is out of range`, 'use an integer in 536..65000')
  return mss
}

function heartbeatMs(seconds: number | undefined): number | null {
  if (seconds === undefined) return null
  if (!(seconds >= 0.05 && seconds <= 3600)) throw new ConfigError(`--heartbeat-interval ${seconds} is out of range`, 'use 0.05..3600 seconds')
  return Math.round(seconds * 1000)
}

/** Starts control socket and daemon, waits for a stop, closes both. */
async function runDaemon(settings: UpSettings, logger: Logger): Promise<void> {
  let daemon: RunningDaemon | null = null
  let ipc: RunningIpcSocket | null = null
  let requestStop: (why: string) => void = () => {}
  const stopped = new Promise<string>((resolve) => {
    requestStop = resolve
  })
  const control = controlFacade(() => daemon, () => requestStop('shutdown requested over the control socket'))
  const server = new ControlServer({ path: settings.controlSocket, control, logger, services: () => daemon?.services ?? null, networks: () => daemon?.networkOps ?? null, secure: () => daemon?.secure ?? null })
  await server.listen()
  const policy = installProcessPolicy({
    logger,
    teardown: async () => {
      // The daemon first (pilot0 and its routes go with it), then the socket file.
      await ipc?.close()
      await daemon?.close()
      await server.close()
    },
  })

  let signals = 0
  const onSignal = (signal: NodeJS.Signals): void => {
    signals++
    if (signals === 1) {
      requestStop(signal)
      return
    }
    logger.warn(`${signal} again: exiting without a clean shutdown`)
    process.exit(130)
  }
  process.on('SIGINT', onSignal)
  process.on('SIGTERM', onSignal)
  try {
    logger.info(`starting: registering with ${settings.registry}`, { stateDir: settings.stateDir, listen: settings.listen })
    try {
      const started = await startDaemon(settings, logger)
      daemon = started
      if (settings.ipcSocket !== null) ipc = await startIpcSocket(started, settings.ipcSocket, logger).catch(async (err: unknown) => {
        await started.close()
        throw err
      })
    } catch (err) {
      await server.close()
      throw err
    }
    void daemon.closed.then(() => requestStop('the daemon closed'))
    const s = await daemon.status()
    logger.info('pilot-tun up', {
      address: s.address,
      ipv6: s.ipv6,
      hostname: s.hostname ?? '-',
      registry: settings.registry,
      beacon: settings.beacon ?? '-',
      listen: s.listen,
      control: settings.controlSocket,
      tun: s.tun === null ? 'none (--no-tun)' : `${s.tun.interface} ${s.tun.address} (${s.tun.prefix}, mtu ${s.tun.mtu})`,
      dns: s.tun === null ? '-' : s.tun.dns,
    })
    const why = await stopped
    logger.info(`${why}: shutting down`)
    await ipc?.close()
    await daemon.close()
    await server.close()
    logger.info('pilot-tun stopped')
  } finally {
    process.off('SIGINT', onSignal)
    process.off('SIGTERM', onSignal)
    policy.uninstall()
  }
  // A clean shutdown leaves nothing running; if something still holds the
  // event loop, do not hang the service manager.
  setTimeout(() => {
    logger.warn('handles still open 2 s after shutdown; exiting anyway')
    process.exit(0)
  }, 2000).unref()
}

/**
 * The DaemonControl the socket serves: forwards to the daemon once it runs,
 * answers PT_DAEMON_CLOSED before and after, and turns `shutdown` into a stop
 * of this process (the daemon is closed by `runDaemon`, in order).
 */
function controlFacade(get: () => RunningDaemon | null, stop: () => void): DaemonControl {
  const d = (): RunningDaemon => {
    const daemon = get()
    if (daemon === null) throw daemonClosedError()
    return daemon
  }
  return {
    status: async () => d().status(),
    peers: async () => d().peers(),
    ping: async (target, timeoutMs) => d().ping(target, timeoutMs),
    resolve: async (target) => d().resolve(target),
    trustRequest: async (target, reason) => d().trustRequest(target, reason),
    trustApprove: async (target) => d().trustApprove(target),
    trustReject: async (target, reason) => d().trustReject(target, reason),
    trustRevoke: async (target) => d().trustRevoke(target),
    trustList: async () => d().trustList(),
    setHostname: async (name) => d().setHostname(name),
    task: async (command) => d().task(command),
    shutdown: async () => stop(),
  }
}

/** Builds the daemon (src/daemon/daemon.ts, loaded only when `up` runs so client commands start fast). */
async function startDaemon(settings: UpSettings, logger: Logger): Promise<Daemon> {
  const { Daemon } = await import('../../daemon/daemon.js')
  try {
    return await Daemon.start({
      registry: settings.registry,
      ...(settings.registryTls === null ? {} : { registryTls: true, registryFingerprint: settings.registryTls.pin }),
      beacon: settings.beacon,
      listen: settings.listen,
      stateDir: settings.stateDir,
      hostname: settings.hostname,
      autoAccept: settings.autoAccept,
      answerPings: settings.answerPings,
      tasks: settings.tasks,
      public: settings.public,
      kdf: settings.kdf,
      logger,
      prefix: settings.prefix,
      tun: settings.tun,
      metricsListen: settings.metricsListen,
      dataExchange: settings.dataExchange,
      eventStream: settings.eventStream,
      inboxQuota: { maxBytes: settings.inboxMaxBytes, maxCount: settings.inboxMaxFiles },
      networkRefreshMs: settings.networkRefreshMs,
      timing: {
        ...(settings.heartbeatMs === null ? {} : { heartbeatMs: settings.heartbeatMs }),
        ...(settings.mss === null ? {} : { stream: { mss: settings.mss } }),
      },
    })
  } catch (err) {
    if (err instanceof PilotError) throw err
    const code = (err as NodeJS.ErrnoException).code
    throw new PilotError('PT_DAEMON_START_FAILED', `the daemon could not start: ${(err as Error).message}`, {
      hint:
        code === 'EACCES' || code === 'EPERM'
          ? `run as root (sudo), or point --state-dir (now ${settings.stateDir}) somewhere this user may write`
          : 'see the log lines above',
      cause: err,
    })
  }
}
