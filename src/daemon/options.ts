/**
 * What `Daemon.start` takes: the options, the timing knobs and their
 * defaults, and the turning of option text (--registry, --beacon, --listen)
 * into endpoints. Bad text is PT_CONFIG_INVALID naming the option, before
 * anything is bound or registered.
 */
import { readFile } from 'node:fs/promises'
import { lookup as dnsLookup } from 'node:dns/promises'
import { isIP } from 'node:net'
import { ConfigError, DecodeError, PilotError } from '../errors.js'
import type { Logger } from '../logger.js'
import { formatHostPort, parseHostPort, type HostPort, type HostPortRules } from '../protocol/host-port.js'
import { DEFAULT_OVERLAY_PREFIX_TEXT, parseOverlayPrefix, type OverlayPrefix } from '../protocol/ipv6-mapping.js'
import type { RandomSource } from '../random.js'
import type { ReconnectPolicy } from '../registry/client.js'
import type { StreamConfig } from '../session/index.js'
import type { KdfMode, PacketBind, TunnelTiming, UdpEndpoint } from '../tunnel/index.js'
import type { TunFrontDoorOptions } from '../tun/bridge-setup.js'
import type { TaskTiming } from '../services/tasks/timers.js'
import type { NetworkRegistry } from './network-ops.js'
import type { InboxQuota } from '../services/inbox-store.js'

export interface DaemonTiming {
  /** Registry heartbeat (then poll_handshakes). Go: 30 s. */
  heartbeatMs: number
  /** Failed heartbeats in a row before registering again. Go: 3. */
  maxHeartbeatFailures: number
  /** Per registry request. */
  registryTimeoutMs: number
  registryReconnect: Partial<ReconnectPolicy>
  /** Connect timeout of streams we open (Go gives up at ≈ 29 s). */
  dialTimeoutMs: number
  /** Connect timeout of a direct handshake message before the registry relay is relied on. */
  handshakeDialTimeoutMs: number
  /** Go closes the handshake stream 500 ms after its write. */
  handshakeCloseDelayMs: number
  /** The receiver waits this long for the message. Go: 10 s. */
  handshakeReadTimeoutMs: number
  /** Shutdown: how long FINs may take before the rest is reset. */
  closeGraceMs: number
  deregisterTimeoutMs: number
  /** Registry answers (keys, endpoints) are cached this long. */
  directoryTtlMs: number
  /** Tunnel knobs (relay fallback, probes, beacon keepalive, `directStaleMs`, restart recovery…). */
  tunnel: Partial<TunnelTiming>
  /** Stream defaults for every connection of this node. */
  stream: Partial<StreamConfig>
  /** Task service timers (src/services/tasks/timers.ts; tests shorten them). */
  tasks?: Partial<TaskTiming>
}

export const DEFAULT_DAEMON_TIMING: Readonly<DaemonTiming> = Object.freeze({
  heartbeatMs: 30_000,
  maxHeartbeatFailures: 3,
  registryTimeoutMs: 15_000,
  registryReconnect: {},
  dialTimeoutMs: 30_000,
  handshakeDialTimeoutMs: 10_000,
  handshakeCloseDelayMs: 500,
  handshakeReadTimeoutMs: 10_000,
  closeGraceMs: 1_000,
  deregisterTimeoutMs: 2_000,
  directoryTtlMs: 10_000,
  tunnel: {},
  stream: {},
})

export interface DaemonOptions {
  /** Holds identity.json (unless `identityPath`) and trust.json; created with mode 0700. */
  stateDir: string
  identityPath?: string
  /** Registry "host:port" (TCP). */
  registry: string
  /** TLS to the registry (`--registry-tls`); needs `registryFingerprint` (src/registry/tls-pin.ts). */
  registryTls?: boolean
  /** The registry certificate's pin: 64 lower-case hex digits. */
  registryFingerprint?: string
  /** Beacon "host:port" (UDP), or null for none (no NAT traversal, no relay). */
  beacon: string | null
  /** UDP listen address "[host]:port", e.g. ":4000", "0.0.0.0:0", "[::]:4000". Ignored with `bind`. */
  listen: string
  hostname?: string | null
  /** Registry visibility: public nodes' endpoints are revealed to everyone. */
  public?: boolean
  /** Approve every incoming trust request (tests and demos). */
  autoAccept?: boolean
  /**
   * Answer pings from every node (control pings, hence ICMPv6 echo through
   * pilot0, and the echo service on port 7 that `pilot-tun ping` uses), not
   * only from trusted ones. Default false: private by default.
   */
  answerPings?: boolean
  /** The task submission service on port 1003 (docs/wire.md §13.5; src/services/tasks/). Default true. */
  tasks?: boolean
  /** Registry `owner` string (Go's key-recovery hint). */
  owner?: string
  kdf?: KdfMode
  logger?: Logger
  timing?: Partial<DaemonTiming>
  /** A ready bind (tests: a MemoryNetwork bind); the daemon owns and closes it. */
  bind?: PacketBind
  random?: RandomSource
  /** Reported by `status().version`; read from package.json when omitted. */
  version?: string
  /**
   * The overlay IPv6 prefix (a /48) that maps Pilot addresses to IPv6: what
   * `status` and `resolve` show, which IPv6 targets are nodes, and pilot0's
   * addresses. Default fd50:494c:4f54::/48, or `tun.prefix` when only that is set.
   */
  prefix?: string
  /**
   * The TUN front door (src/tun/bridge*.ts): creates the interface and bridges
   * it to streams, datagrams and pings. null/absent = no TUN (`--no-tun`).
   */
  tun?: TunFrontDoorOptions | null
  /** `--metrics-listen`: serve Prometheus text at `/metrics` on this TCP `[host]:port` (src/metrics/). null/absent = off. */
  metricsListen?: string | null
  /** The data exchange service on port 1001 (src/services/); default on, false = `--no-dataexchange`. */
  dataExchange?: boolean
  /** The event stream broker on port 1002; default on, false = `--no-eventstream`. */
  eventStream?: boolean
  /** Limits of the inbox the data exchange service fills (default 256 MiB, 10,000 entries). */
  inboxQuota?: Partial<InboxQuota>
  /** How often the network view re-reads this node's networks (`up --network-refresh`, default 10 s). */
  networkRefreshMs?: number
  /** The registry's network methods (default: the RegistryClient); tests give a fake. */
  networkRegistry?: NetworkRegistry
}

/** "host:port" / "[v6]:port" with a host name or IP and a port in 1..65535; throws PT_CONFIG_INVALID naming `option`. */
export function parseHostPortOption(text: string, option: string): HostPort {
  return parseOption(text, { flag: option }, `for example ${option} 127.0.0.1:9000`)
}

/**
 * A comma-separated list of "host:port" (several registry front ends, issue 14):
 * at least one, at most 16, no repeats; throws PT_CONFIG_INVALID naming `option`.
 */
export function parseHostPortListOption(text: string, option: string): HostPort[] {
  const parts = text.split(',').map((t) => t.trim())
  if (parts.length > MAX_LIST_ENTRIES) {
    throw new ConfigError(`${option} lists ${parts.length} addresses; at most ${MAX_LIST_ENTRIES} are allowed`, `for example ${option} 10.0.0.1:9000,10.0.0.2:9000`)
  }
  const list = parts.map((t) => parseHostPortOption(t, option))
  const seen = new Set<string>()
  for (const e of list) {
    const key = formatHostPort(e.host, e.port)
    if (seen.has(key)) throw new ConfigError(`${option} lists ${key} twice`, 'give each address once')
    seen.add(key)
  }
  return list
}

const MAX_LIST_ENTRIES = 16

/** "[ip]:port" with an optional host (":4000" = every IPv4 address) and a port in 0..65535; throws PT_CONFIG_INVALID. */
export function parseListenOption(text: string): HostPort {
  return parseOption(text, { flag: '--listen', hosts: 'ip', listen: true }, 'for example --listen :4000 or --listen 127.0.0.1:0')
}

/**
 * The one overlay prefix of a daemon, from `prefix` and `tun.prefix`; throws
 * PT_CONFIG_INVALID when it is not a /48 or the two disagree.
 */
export function parsePrefixOption(options: Pick<DaemonOptions, 'prefix' | 'tun'>): OverlayPrefix {
  const given = options.prefix ?? options.tun?.prefix ?? DEFAULT_OVERLAY_PREFIX_TEXT
  let prefix: OverlayPrefix
  try {
    prefix = parseOverlayPrefix(given)
  } catch (err) {
    if (!(err instanceof DecodeError)) throw err
    throw new ConfigError(`--prefix: ${err.message}`, `use a /48, for example --prefix ${DEFAULT_OVERLAY_PREFIX_TEXT}`)
  }
  const tunPrefix = options.tun?.prefix
  if (tunPrefix !== undefined && tunPrefix !== given) {
    let same = false
    try {
      same = parseOverlayPrefix(tunPrefix).text === prefix.text
    } catch {
      same = false
    }
    if (!same) throw new ConfigError(`--prefix: the daemon's prefix ${prefix.text} differs from the TUN's ${tunPrefix}`, 'give the prefix once, with --prefix')
  }
  return prefix
}

function parseOption(text: string, rules: HostPortRules, hint: string): HostPort {
  try {
    return parseHostPort(text, rules)
  } catch (err) {
    if (!(err instanceof DecodeError)) throw err
    throw new ConfigError(err.message, hint)
  }
}

/** The --beacon option as an endpoint to send to: a host name is looked up once, IPv4 first. */
export async function resolveBeaconOption(text: string): Promise<UdpEndpoint> {
  const hp = parseHostPortOption(text, '--beacon')
  if (isIP(hp.host) !== 0) return hp
  try {
    const r = await dnsLookup(hp.host, { family: 4 }).catch(() => dnsLookup(hp.host))
    return { host: r.address, port: hp.port }
  } catch (err) {
    throw new PilotError('PT_CONFIG_INVALID', `cannot resolve beacon host ${hp.host}`, { hint: 'check --beacon', cause: err })
  }
}

/** An endpoint as `host:port` / `[v6]:port` (status output, registry `listen_addr`). */
export function formatUdpEndpoint(e: UdpEndpoint): string {
  return formatHostPort(e.host, e.port)
}

/** This package's version, from package.json (dist/src/daemon or src/daemon layouts). */
export async function readPackageVersion(): Promise<string> {
  for (const rel of ['../../../package.json', '../../package.json']) {
    try {
      const pkg = JSON.parse(await readFile(new URL(rel, import.meta.url), 'utf8')) as { name?: string; version?: string }
      if (pkg.name === 'pilot-tun' && typeof pkg.version === 'string') return pkg.version
    } catch {
      /* try the next layout */
    }
  }
  return '0.0.0'
}
