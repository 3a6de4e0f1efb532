// A whole Pilot network in one process for the daemon tests: a registry (real
// TCP on 127.0.0.1, SQLite file in a temp dir), an optional beacon, and
// daemons on either real loopback UDP or a MemoryNetwork (filters force relay).
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startRegistry, type RunningRegistry } from '../../src/registry/start.js'
import { BeaconServer } from '../../src/beacon/server.js'
import { UdpBind, type PacketBind, type UdpEndpoint } from '../../src/tunnel/index.js'
import { MemoryNetwork } from '../../src/tunnel/testing/memory-bind.js'
import { Daemon, type DaemonOptions, type DaemonTiming } from '../../src/daemon/daemon.js'

export const FAST_TIMING: Partial<DaemonTiming> = {
  heartbeatMs: 200,
  maxHeartbeatFailures: 3,
  registryTimeoutMs: 2_000,
  registryReconnect: { maxAttempts: 2, initialDelayMs: 50, maxDelayMs: 100, dialTimeoutMs: 500 },
  dialTimeoutMs: 5_000,
  handshakeDialTimeoutMs: 1_500,
  handshakeCloseDelayMs: 100,
  handshakeReadTimeoutMs: 2_000,
  closeGraceMs: 300,
  deregisterTimeoutMs: 500,
  directoryTtlMs: 200,
  tunnel: {
    directStaleMs: 1_000,
    tickMs: 20,
    relayAfterMs: 300,
    probeIntervalMs: 200,
    probeMaxMs: 400,
    keyRetryMs: 100,
    beaconKeepaliveMs: 200,
    keyRefetchMs: 200,
    negativeKeyCacheMs: 200,
  },
}

export interface WorldOptions {
  /** MemoryNetwork instead of loopback UDP (the registry stays real TCP). */
  memory?: boolean
  beacon?: boolean
  timing?: Partial<DaemonTiming>
}

export class World {
  readonly daemons: Daemon[] = []
  readonly net: MemoryNetwork | null
  registry!: RunningRegistry
  beacon: BeaconServer | null = null
  beaconEndpoint: UdpEndpoint | null = null
  private constructor(
    readonly dir: string,
    readonly opts: WorldOptions,
  ) {
    this.net = opts.memory === true ? new MemoryNetwork() : null
  }

  static async create(opts: WorldOptions = {}): Promise<World> {
    const w = new World(await mkdtemp(join(tmpdir(), 'pilot-daemon-')), opts)
    w.registry = await startRegistry({ host: '127.0.0.1', port: 0, storePath: join(w.dir, 'registry.db') })
    if (opts.beacon !== false) await w.startBeacon()
    return w
  }

  get registryText(): string {
    return `127.0.0.1:${this.registry.address.port}`
  }

  async startBeacon(port = this.beaconEndpoint?.port ?? 0): Promise<void> {
    const bind: PacketBind = this.net !== null ? this.net.bind('127.0.0.1', port === 0 ? 9001 : port) : await UdpBind.open({ host: '127.0.0.1', port })
    this.beacon = new BeaconServer({ bind })
    this.beacon.start()
    this.beaconEndpoint = bind.local
  }

  async stopBeacon(): Promise<void> {
    await this.beacon?.close()
    this.beacon = null
  }

  async restartRegistry(downMs = 0, between?: () => Promise<void>): Promise<void> {
    const port = this.registry.address.port
    await this.registry.close()
    if (between !== undefined) await between()
    if (downMs > 0) await new Promise((r) => setTimeout(r, downMs))
    this.registry = await startRegistry({ host: '127.0.0.1', port, storePath: join(this.dir, 'registry.db') })
  }

  async daemon(name: string, opts: Partial<DaemonOptions> = {}): Promise<Daemon> {
    const bind = opts.bind ?? (this.net !== null ? this.net.bind('127.0.0.1', 0) : undefined)
    const d = await Daemon.start({
      stateDir: join(this.dir, name),
      registry: this.registryText,
      beacon: this.beaconEndpoint === null ? null : `127.0.0.1:${this.beaconEndpoint.port}`,
      listen: '127.0.0.1:0',
      kdf: 'auto',
      version: 'test',
      ...opts,
      ...(bind === undefined ? {} : { bind }),
      timing: { ...FAST_TIMING, ...this.opts.timing, ...opts.timing },
    })
    this.daemons.push(d)
    return d
  }

  async close(): Promise<void> {
    await Promise.all(this.daemons.map((d) => d.close()))
    await this.stopBeacon()
    await this.registry.close()
    await rm(this.dir, { recursive: true, force: true })
  }
}

/** Resources that must not outlive a test (timers, sockets, handles). */
export function activeResources(): string[] {
  return process.getActiveResourcesInfo().filter((r) => r !== 'TTYWrap' && r !== 'PipeWrap' && r !== 'FSReqCallback')
}
