/**
 * The clock of a clustered beacon (docs/wire.md §9.7): every 10 s it has the
 * server send a Sync round to each peer, and with `--registry` every 30 s it
 * registers this beacon and replaces the registry-listed peers with the list
 * the registry returns (the first round at start). The state and the datagram
 * handling live in cluster-state.ts and server.ts; this file owns the timers.
 */
import { isIP } from 'node:net'
import { lookup } from 'node:dns/promises'
import { nullLogger, type Logger } from '../logger.js'
import { DecodeError } from '../errors.js'
import { formatHostPort, parseHostPort, type HostPort } from '../protocol/host-port.js'
import type { UdpEndpoint } from '../tunnel/bind.js'
import { BeaconError, BeaconErrorCode } from './errors.js'
import { ClusterState, DEFAULT_CLUSTER_LIMITS, normalizeHost, type ClusterLimits } from './cluster-state.js'
import { listedEndpoint, registerAndList } from './registry-peers.js'
import type { BeaconServer } from './server.js'

export const SYNC_INTERVAL_MS = 10_000
export const REGISTRY_INTERVAL_MS = 30_000

export interface BeaconClusterOptions {
  /** This beacon's ID, unique in the cluster; required (non-zero) with `registry`. 0 = none. */
  beaconId: number
  /** Peer beacons, `HOST:PORT` each (host names are looked up once at start). */
  peers?: readonly string[]
  /** A registry `HOST:PORT` to register with and list peers from. */
  registry?: string | null
  /** The `HOST:PORT` registered for this beacon (default: the listen address). */
  advertise?: string | null
  syncIntervalMs?: number
  registryIntervalMs?: number
  limits?: Partial<ClusterLimits>
}

/** Checks the options before anything is bound; throws PT_BEACON_INVALID_CLUSTER. */
export async function prepareCluster(opts: BeaconClusterOptions): Promise<{ state: ClusterState; staticPeers: UdpEndpoint[]; registry: HostPort | null }> {
  const id = opts.beaconId
  if (!Number.isInteger(id) || id < 0 || id > 0xffffffff) throw invalid(`--beacon-id must be 0..4294967295, got ${id}`, 'a small positive number unique among your beacons')
  const registry = opts.registry ? parse(opts.registry, '--registry') : null
  if (registry !== null && id === 0) throw invalid('--registry needs a non-zero --beacon-id (the registry lists beacons by ID)', 'add --beacon-id N')
  if (opts.advertise) parse(opts.advertise, '--advertise')
  const staticPeers: UdpEndpoint[] = []
  for (const text of opts.peers ?? []) {
    const hp = parse(text, '--peers')
    if (isIP(hp.host) !== 0) {
      staticPeers.push(hp)
      continue
    }
    try {
      const r = await lookup(hp.host, { family: 4 }).catch(() => lookup(hp.host))
      staticPeers.push({ host: r.address, port: hp.port })
    } catch (err) {
      throw invalid(`cannot resolve peer beacon ${text}: ${(err as Error).message}`, 'check --peers')
    }
  }
  const limits = { ...DEFAULT_CLUSTER_LIMITS, ...opts.limits }
  if (staticPeers.length > limits.maxPeers) throw invalid(`at most ${limits.maxPeers} peer beacons, got ${staticPeers.length}`, 'list fewer --peers')
  const state = new ClusterState(id, limits)
  state.setPeers(staticPeers, 'static')
  return { state, staticPeers, registry }
}

export class BeaconClusterDriver {
  private readonly timers: NodeJS.Timeout[] = []
  private closed = false
  private registryRound: Promise<void> | null = null
  registryRounds = 0
  registryFailures = 0

  constructor(
    private readonly server: BeaconServer,
    private readonly state: ClusterState,
    private readonly opts: { registry: HostPort | null; advertise: string; syncIntervalMs?: number; registryIntervalMs?: number },
    private readonly logger: Logger = nullLogger,
  ) {}

  start(): void {
    const sync = setInterval(() => this.server.syncPeers(), this.opts.syncIntervalMs ?? SYNC_INTERVAL_MS)
    sync.unref()
    this.timers.push(sync)
    if (this.opts.registry !== null) {
      void this.refreshFromRegistry()
      const reg = setInterval(() => void this.refreshFromRegistry(), this.opts.registryIntervalMs ?? REGISTRY_INTERVAL_MS)
      reg.unref()
      this.timers.push(reg)
    }
  }

  /** One registry round (skipped while one is running); failures are logged and retried next round. */
  refreshFromRegistry(): Promise<void> {
    if (this.registryRound !== null) return this.registryRound
    this.registryRound = this.registryRoundOnce().finally(() => {
      this.registryRound = null
    })
    return this.registryRound
  }

  async close(): Promise<void> {
    this.closed = true
    for (const t of this.timers) clearInterval(t)
    await this.registryRound?.catch(() => {})
  }

  private async registryRoundOnce(): Promise<void> {
    const registry = this.opts.registry
    if (registry === null || this.closed) return
    try {
      const listed = await registerAndList(registry, this.state.beaconId, this.opts.advertise)
      if (this.closed) return
      const local = this.server.local
      const peers: Array<UdpEndpoint & { beaconId: number }> = []
      for (const b of listed) {
        if (b.id === this.state.beaconId) continue
        const e = await listedEndpoint(b.addr, registry.host)
        if (e === null) continue
        if (e.port === local.port && normalizeHost(e.host) === normalizeHost(local.host)) continue
        peers.push({ ...e, beaconId: b.id })
      }
      const refused = this.state.setPeers(peers, 'registry')
      this.registryRounds++
      if (refused > 0) this.logger.warn('peer beacons over the limit were ignored', { refused })
      this.logger.debug('registry round', { peers: this.state.peerCount, listed: listed.length })
    } catch (err) {
      this.registryFailures++
      this.logger.warn('beacon registry round failed', { registry: formatHostPort(registry.host, registry.port), error: (err as Error).message })
    }
  }
}

function parse(text: string, flag: string): HostPort {
  try {
    return parseHostPort(text.trim(), { flag, hosts: 'name' })
  } catch (err) {
    if (!(err instanceof DecodeError)) throw err
    throw invalid(err.message, 'use HOST:PORT')
  }
}

function invalid(message: string, hint: string): BeaconError {
  return new BeaconError(BeaconErrorCode.INVALID_CLUSTER, message, { hint })
}
