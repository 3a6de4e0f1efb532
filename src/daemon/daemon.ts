/**
 * `Daemon`: the composition root of a running Pilot node. It is the only
 * place that builds the node's objects and connects them:
 *
 *   identity (state dir) ─┐
 *   PacketBind (UDP) ─────┼─► Tunnel ◄── PeerDirectory = RegistryDirectory ──┐
 *                         │     │ onPacket                                   │
 *                         │     ▼                                            │
 *                         │  SessionDriver ─► SessionEndpoint (sans-IO)      │
 *                         │     │ admit = trust policy                       │
 *                         │     ▼                                            │
 *                         │  services: echo :7, trust :444 ─► TrustService ──┤
 *                         └─► RegistrySession (register, heartbeat, poll) ───┘
 *
 * Start order: state dir 0700 → identity (0600) → trust.json → UDP bind →
 * register (node ID) → tunnel (needs the ID) → endpoint, driver, services →
 * tunnel.start (beacon keepalive) → heartbeats. `close()` reverses it: FIN on
 * every stream, a short grace, deregister, then everything closes and no
 * timer or socket is left.
 *
 * Private by default: a stream SYN or datagram from a node without mutual
 * trust is refused (RST / dropped, counted), except on the trust port 444 and
 * on ports opened with `listenStreams(port, fn, { allowUntrusted: true })`.
 *
 * Public API for the control socket/CLI: `Daemon.start(options)`, the
 * `DaemonControl` methods, `close()`, `closed`. For the TUN bridge:
 * `openStream`, `listenStreams`, `sendDatagram`, `onDatagram`.
 */
import { chmod, mkdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { lookup as dnsLookup } from 'node:dns/promises'
import { isIP } from 'node:net'
import type { DaemonControl, DaemonStatus, PeerStatus, PingReply, ResolveResult, TrustList } from './api.js'
import type { Identity } from '../crypto/identity.js'
import { loadOrCreateIdentity } from './identity-file.js'
import { formatAddress, parseAddress, type PilotAddress } from '../protocol/address.js'
import { ipv6TextToPilot, pilotToIpv6Text } from '../protocol/ipv6-mapping.js'
import { CryptoRandom, type RandomSource } from '../random.js'
import { nullLogger, type Logger } from '../logger.js'
import { ConfigError, PilotError } from '../errors.js'
import { RegistryClient, type ReconnectPolicy } from '../registry/client.js'
import { RegistryError, RegistryErrorCode } from '../registry/errors.js'
import { Tunnel, UdpBind, type KdfMode, type PacketBind, type TunnelTiming, type UdpEndpoint } from '../tunnel/index.js'
import { DEFAULT_MSS, SessionEndpoint, SessionError, StreamState, type StreamConfig } from '../session/index.js'
import { SessionDriver, type SessionDriverStats } from './session-driver.js'
import { PilotStream } from './pilot-stream.js'
import { RegistryDirectory, RegistrySession } from './registry-session.js'
import { TrustStore } from './trust-store.js'
import { TRUST_PORT, TrustService, type TrustServiceStats } from './trust-service.js'
import { ECHO_PORT, startEchoService, startHandshakeService } from './services.js'
import { DaemonError, DaemonErrorCode, daemonClosedError } from './errors.js'
import { TunFrontDoor, precheckTunFrontDoor, type TunFrontDoorOptions } from '../tun/bridge-setup.js'
import type { BridgePong, IncomingStreamRequest } from '../tun/bridge-host.js'

/** How long `peers`/`resolve` wait for a hostname before showing the cached one. */
const DISPLAY_LOOKUP_WAIT_MS = 300

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
  /** Beacon "host:port" (UDP), or null for none (no NAT traversal, no relay). */
  beacon: string | null
  /** UDP listen address "[host]:port", e.g. ":4000", "0.0.0.0:0", "[::]:4000". Ignored with `bind`. */
  listen: string
  hostname?: string | null
  /** Registry visibility: public nodes' endpoints are revealed to everyone. */
  public?: boolean
  /** Approve every incoming trust request (tests and demos). */
  autoAccept?: boolean
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
   * The TUN front door (src/tun/bridge*.ts): creates the interface and bridges
   * it to streams, datagrams and pings. null/absent = no TUN (`--no-tun`).
   */
  tun?: TunFrontDoorOptions | null
}

/** A datagram delivered to `onDatagram` (only from trusted nodes). */
export interface ReceivedDatagram {
  from: PilotAddress
  fromPort: number
  toPort: number
  data: Uint8Array
}

export interface DaemonStats {
  driver: SessionDriverStats
  trust: TrustServiceStats
  registry: { registrations: number; heartbeatsOk: number; heartbeatsFailed: number }
}

export class Daemon implements DaemonControl {
  readonly identity: Identity
  readonly nodeId: number
  readonly address: PilotAddress
  /** Resolves when `close()` has finished (after `shutdown()` too). */
  readonly closed: Promise<void>
  private readonly opts: DaemonOptions
  private readonly timing: DaemonTiming
  private readonly logger: Logger
  private readonly bind: PacketBind
  private readonly client: RegistryClient
  private readonly session: RegistrySession
  private readonly directory: RegistryDirectory
  private readonly tunnel: Tunnel
  private readonly endpoint: SessionEndpoint
  private readonly driver: SessionDriver
  private readonly store: TrustStore
  private readonly trust: TrustService
  private readonly beaconText: string | null
  private readonly version: string
  private readonly startedAt = performance.now()
  private readonly openPorts = new Set<number>()
  private datagramHandler: ((d: ReceivedDatagram) => void) | null = null
  private tunDoor: TunFrontDoor | null = null
  private closing: Promise<void> | null = null
  private resolveClosed!: () => void

  /** Loads the identity, opens the socket, registers and starts every service. */
  static async start(options: DaemonOptions): Promise<Daemon> {
    const logger = options.logger ?? nullLogger
    const timing: DaemonTiming = { ...DEFAULT_DAEMON_TIMING, ...options.timing }
    await mkdir(options.stateDir, { recursive: true, mode: 0o700 })
    await chmod(options.stateDir, 0o700).catch(() => {})
    const { identity, created } = await loadOrCreateIdentity(options.identityPath ?? join(options.stateDir, 'identity.json'))
    if (created) logger.info('new identity created', { publicKey: Buffer.from(identity.publicKey).toString('base64') })
    const store = await TrustStore.open(options.stateDir, logger)
    const registry = parseHostPortOption(options.registry, '--registry')
    const beacon = options.beacon === null ? null : await resolveUdpEndpoint(parseHostPortOption(options.beacon, '--beacon'))
    const version = options.version ?? (await readPackageVersion())
    let bind: PacketBind | null = options.bind ?? null
    if (bind === null) {
      const listen = parseListenOption(options.listen)
      bind = await UdpBind.open({ host: listen.host, port: listen.port })
    }
    const client = new RegistryClient({
      host: registry.host,
      port: registry.port,
      identity,
      logger,
      timeoutMs: timing.registryTimeoutMs,
      reconnect: timing.registryReconnect,
    })
    let daemon: Daemon | null = null
    const session = new RegistrySession({
      client,
      logger,
      heartbeatMs: timing.heartbeatMs,
      maxFailures: timing.maxHeartbeatFailures,
      listenAddr: () => daemon?.registryListenAddr() ?? formatUdpEndpoint(bind!.local),
      hostname: options.hostname ?? null,
      isPublic: options.public === true,
      owner: options.owner,
      onInbox: (inbox) => daemon?.trust.handleInbox(inbox) ?? Promise.resolve(),
      onReregistered: () => daemon?.trust.reportAll() ?? Promise.resolve(),
    })
    try {
      // Cheap TUN checks (permission, interface free) before anything is registered.
      if (options.tun) await precheckTunFrontDoor(options.tun)
      await session.register()
    } catch (err) {
      client.close()
      await bind.close()
      throw err
    }
    daemon = new Daemon(options, timing, logger, identity, bind, client, session, store, beacon, version)
    if (options.tun) {
      const d = daemon
      try {
        d.tunDoor = await TunFrontDoor.start(d, options.tun, logger, (err) => {
          logger.error('the TUN data path failed: shutting down', { error: err.message })
          void d.close()
        })
      } catch (err) {
        await d.close()
        throw err
      }
      const t = d.tunDoor.status()
      logger.info('TUN interface up', { interface: t.interface, address: t.address, prefix: t.prefix, mtu: t.mtu, dns: t.dns })
    }
    logger.info('daemon started', {
      node: daemon.nodeId,
      address: formatAddress(daemon.address),
      listen: formatUdpEndpoint(bind.local),
      registry: options.registry,
      beacon: options.beacon,
    })
    return daemon
  }

  private constructor(
    opts: DaemonOptions,
    timing: DaemonTiming,
    logger: Logger,
    identity: Identity,
    bind: PacketBind,
    client: RegistryClient,
    session: RegistrySession,
    store: TrustStore,
    beacon: UdpEndpoint | null,
    version: string,
  ) {
    this.opts = opts
    this.timing = timing
    this.logger = logger
    this.identity = identity
    this.bind = bind
    this.client = client
    this.session = session
    this.store = store
    this.version = version
    this.beaconText = opts.beacon
    this.nodeId = session.nodeId
    this.address = { network: 0, node: session.nodeId }
    this.closed = new Promise<void>((r) => {
      this.resolveClosed = r
    })
    const random = opts.random ?? new CryptoRandom()
    const selfId = (): number => this.nodeId
    this.directory = new RegistryDirectory({ client, selfId, ttlMs: timing.directoryTtlMs, logger })
    this.tunnel = new Tunnel({
      bind,
      identity,
      nodeId: this.nodeId,
      directory: this.directory,
      beacon,
      kdf: opts.kdf ?? 'auto',
      random,
      logger: logger.child({ component: 'tunnel' }),
      timing: timing.tunnel,
    })
    this.endpoint = new SessionEndpoint({ local: this.address, random, stream: { connectTimeout: timing.dialTimeoutMs, ...timing.stream } })
    this.driver = new SessionDriver({
      endpoint: this.endpoint,
      sink: this.tunnel,
      admit: (node, port, protocol) => this.admit(node, port, protocol),
      logger: logger.child({ component: 'session' }),
      onRttSample: (node, ms) => this.tunnel.recordRtt(node, ms),
    })
    this.tunnel.onPacket(this.driver.onPacket)
    this.driver.onDatagram((ev) => {
      const handler = this.datagramHandler
      if (handler !== null) handler({ from: ev.remote, fromPort: ev.remotePort, toPort: ev.localPort, data: ev.data })
    })
    this.trust = new TrustService({
      store,
      identity,
      client,
      directory: this.directory,
      selfId,
      sendDirect: (node, message) => this.sendHandshakeMessage(node, message),
      onTrustChanged: (node, trusted) => this.onTrustChanged(node, trusted),
      autoAccept: opts.autoAccept === true,
      logger: logger.child({ component: 'trust' }),
    })
    startEchoService(this.driver)
    startHandshakeService(this.driver, {
      readTimeoutMs: timing.handshakeReadTimeoutMs,
      logger,
      onMessage: (node, bytes) => {
        void this.trust.handleDirect(node, bytes).catch((err: unknown) => logger.error('handshake handling failed', { node, error: String(err) }))
      },
    })
    this.tunnel.start()
    session.start()
  }

  // ───────────────────────── DaemonControl ─────────────────────────

  async status(): Promise<DaemonStatus> {
    const ago = this.session.lastHeartbeatAgoMs()
    const pub = this.tunnel.publicEndpoint
    return {
      version: this.version,
      node_id: this.nodeId,
      address: formatAddress(this.address),
      ipv6: pilotToIpv6Text(this.address),
      hostname: this.session.hostname,
      public: this.opts.public === true,
      uptime_s: Math.floor((performance.now() - this.startedAt) / 1000),
      listen: formatUdpEndpoint(this.bind.local),
      public_endpoint: pub === null ? null : formatUdpEndpoint(pub),
      registry: { address: this.opts.registry, connected: this.session.connected, last_heartbeat_s_ago: ago === null ? null : Math.floor(ago / 1000) },
      beacon: { address: this.beaconText },
      kdf: this.opts.kdf ?? 'auto',
      auto_accept: this.trust.autoAccept,
      peers: this.tunnel.peers().length,
      connections: this.endpoint.connectionCount,
      tun: this.tunDoor?.status() ?? null,
    }
  }

  async peers(): Promise<PeerStatus[]> {
    const now = performance.now()
    const out: PeerStatus[] = []
    const peers = this.tunnel.peers()
    const names = await Promise.all(peers.map((p) => this.displayHostname(p.nodeId)))
    for (let i = 0; i < peers.length; i++) {
      const p = peers[i]!
      out.push({
        node_id: p.nodeId,
        address: formatAddress({ network: 0, node: p.nodeId }),
        hostname: names[i]!,
        path: p.path,
        endpoint: p.endpoint === null ? null : formatUdpEndpoint(p.endpoint),
        rtt_ms: p.rttMs === undefined ? null : Math.round(p.rttMs * 1000) / 1000,
        kdf: p.kdf,
        authenticated: p.authenticated,
        trusted: this.store.isTrusted(p.nodeId),
        bytes_in: p.bytesIn,
        bytes_out: p.bytesOut,
        last_seen_s_ago: p.lastReceiveMs === 0 ? null : Math.floor((now - p.lastReceiveMs) / 1000),
      })
    }
    return out
  }

  async ping(target: string, timeoutMs: number): Promise<PingReply> {
    this.checkOpen()
    const { node, hostname } = await this.resolveTarget(target)
    const deadline = performance.now() + timeoutMs
    let stream: PilotStream | null = null
    let timer: NodeJS.Timeout | null = null
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new DaemonError(DaemonErrorCode.PING_TIMEOUT, `no echo from ${target} within ${timeoutMs} ms`, { hint: 'the peer may be offline, unreachable, or not trust us' })),
        timeoutMs,
      )
    })
    try {
      stream = await Promise.race([this.openStream(node, ECHO_PORT, { connectTimeout: Math.max(1, deadline - performance.now()) }), timeout])
      const s = stream
      const payload = Buffer.from(`pilot-tun ping ${Date.now()}`)
      const started = performance.now()
      const echoed = new Promise<void>((resolve, reject) => {
        let got = 0
        s.on('data', (chunk: Buffer) => {
          got += chunk.length
          if (got >= payload.length) resolve()
        })
        s.once('error', reject)
        s.once('end', () => (got >= payload.length ? resolve() : reject(new DaemonError(DaemonErrorCode.PEER_UNREACHABLE, 'the echo service closed early'))))
      })
      s.write(payload)
      await Promise.race([echoed, timeout])
      const rtt = performance.now() - started
      this.tunnel.recordRtt(node, rtt)
      s.end()
      return { address: formatAddress({ network: 0, node }), hostname, rtt_ms: Math.round(rtt * 1000) / 1000, path: this.tunnel.peer(node)?.path ?? 'none' }
    } catch (err) {
      stream?.destroy()
      throw err
    } finally {
      if (timer !== null) clearTimeout(timer)
    }
  }

  async resolve(target: string): Promise<ResolveResult> {
    const { node, hostname } = await this.resolveTarget(target)
    const addr = { network: 0, node }
    let name = hostname
    if (name === null) name = await this.displayHostname(node)
    return { address: formatAddress(addr), node_id: node, ipv6: pilotToIpv6Text(addr), hostname: name }
  }

  async trustRequest(target: string, reason: string): Promise<{ status: 'sent' | 'trusted'; node_id: number }> {
    this.checkOpen()
    const { node } = await this.resolveTarget(target)
    return { status: await this.trust.request(node, reason), node_id: node }
  }

  async trustApprove(target: string): Promise<{ status: 'approved'; node_id: number }> {
    this.checkOpen()
    const { node } = await this.resolveTarget(target)
    await this.trust.approve(node)
    return { status: 'approved', node_id: node }
  }

  async trustReject(target: string, reason: string): Promise<{ status: 'rejected'; node_id: number }> {
    this.checkOpen()
    const { node } = await this.resolveTarget(target)
    await this.trust.reject(node, reason)
    return { status: 'rejected', node_id: node }
  }

  async trustRevoke(target: string): Promise<{ status: 'revoked'; node_id: number }> {
    this.checkOpen()
    const { node } = await this.resolveTarget(target)
    await this.trust.revoke(node)
    return { status: 'revoked', node_id: node }
  }

  async trustList(): Promise<TrustList> {
    const addr = (node: number): string => formatAddress({ network: 0, node })
    return {
      trusted: this.store.listTrusted().map((t) => ({ node_id: t.node_id, address: addr(t.node_id), approved_at: t.approved_at, mutual: t.mutual })),
      pending: this.store.listPending().map((p) => ({
        node_id: p.node_id,
        address: addr(p.node_id),
        justification: p.justification ?? '',
        received_at: p.received_at,
      })),
      outgoing: this.store.listOutgoing().map((o) => ({ node_id: o.node_id, address: addr(o.node_id), sent_at: o.sent_at })),
    }
  }

  async setHostname(name: string): Promise<{ hostname: string }> {
    this.checkOpen()
    return { hostname: await this.session.setHostname(name) }
  }

  async shutdown(): Promise<void> {
    // Let the control socket answer first; the close runs right after.
    setImmediate(() => void this.close())
  }

  // ───────────────────────── streams and datagrams (TUN bridge) ─────────────────────────

  /**
   * Opens a stream to `node`:`port` and resolves once it is connected.
   * Rejects with PT_TRUST_REQUIRED when the peer refuses and we have no trust
   * with it, PT_CONNECTION_REFUSED when it refuses although trusted (nothing
   * listens), PT_PEER_UNREACHABLE when no SYN|ACK arrives in time.
   */
  async openStream(node: number | PilotAddress, port: number, config?: Partial<StreamConfig>): Promise<PilotStream> {
    if (this.closing !== null) throw daemonClosedError()
    const remote = typeof node === 'number' ? { network: 0, node } : node
    // A node the registry has never heard of cannot answer: say so now instead
    // of retrying a dial for half a minute. (No session and registry unreachable:
    // dial anyway, the tunnel may still know a path.)
    if (this.tunnel.peer(remote.node)?.authenticated !== true && (await this.directory.isRegistered(remote.node)) === false) {
      throw new DaemonError(DaemonErrorCode.PEER_UNREACHABLE, `node ${formatAddress(remote)} is not registered`, {
        hint: 'check the address, or `pilot-tun resolve <hostname>` for the right one',
      })
    }
    if (this.closing !== null) throw daemonClosedError()
    const stream = new PilotStream(this.driver, this.driver.connect(remote, port, config))
    return new Promise<PilotStream>((resolve, reject) => {
      const onConnect = (): void => {
        stream.off('error', onError)
        resolve(stream)
      }
      const onError = (err: Error): void => {
        stream.off('connect', onConnect)
        reject(this.dialError(remote, port, err))
      }
      stream.once('connect', onConnect)
      stream.once('error', onError)
    })
  }

  /**
   * Accepts streams on `port`. By default only trusted nodes get through
   * (others are answered with RST); `allowUntrusted` opens the port to all.
   */
  listenStreams(port: number, onStream: (stream: PilotStream) => void, options: { allowUntrusted?: boolean } = {}): void {
    this.driver.listen(port, (conn) => onStream(new PilotStream(this.driver, conn)))
    if (options.allowUntrusted === true) this.openPorts.add(port)
  }

  unlistenStreams(port: number): void {
    this.driver.unlisten(port)
    this.openPorts.delete(port)
  }

  /** Sends one datagram (docs/wire.md §7); returns the source port used. */
  sendDatagram(node: number | PilotAddress, port: number, data: Uint8Array, sourcePort?: number): number {
    if (this.closing !== null) throw daemonClosedError()
    const remote = typeof node === 'number' ? { network: 0, node } : node
    return this.driver.sendDatagram(remote, port, data, sourcePort)
  }

  /** Receives datagrams from trusted nodes (others are dropped and counted). One handler. */
  onDatagram(handler: ((d: ReceivedDatagram) => void) | null): void {
    this.datagramHandler = handler
  }

  /**
   * TUN bridge hook: admitted stream SYNs to ports without a listener go to
   * `handler`, which answers each with `accept()` (→ a PilotStream) or
   * `refuse()` (RST) exactly once, possibly later (the peer's retransmitted
   * SYNs are ignored meanwhile). Ports with a listener (echo 7, trust 444, …)
   * never reach it. null = RST at once (the default).
   */
  setDefaultStreamHandler(handler: ((incoming: IncomingStreamRequest) => void) | null): void {
    if (handler === null) {
      this.driver.setDefaultHandler(null)
      return
    }
    const driver = this.driver
    driver.setDefaultHandler((inc) => {
      handler({
        remote: inc.remote,
        remotePort: inc.remotePort,
        localPort: inc.localPort,
        accept: () => new PilotStream(driver, driver.acceptIncoming(inc)),
        refuse: () => driver.refuseIncoming(inc),
      })
    })
  }

  /** Control ping (Pilot port 0) to `node`; the pong goes to `onPong`. Returns the ping id. */
  sendPing(node: number | PilotAddress): number {
    if (this.closing !== null) throw daemonClosedError()
    return this.driver.sendPing(typeof node === 'number' ? { network: 0, node } : node)
  }

  /** Receives pongs of `sendPing` (one handler). */
  onPong(handler: ((p: BridgePong) => void) | null): void {
    this.driver.onPong(handler)
  }

  /** Mutual trust with `node`. */
  isTrusted(node: number): boolean {
    return this.store.isTrusted(node)
  }

  /** The TUN front door, when `options.tun` was set (tests, stats). */
  get tun(): TunFrontDoor | null {
    return this.tunDoor
  }

  // ───────────────────────── diagnostics ─────────────────────────

  stats(): DaemonStats {
    return {
      driver: this.driver.stats(),
      trust: this.trust.stats(),
      registry: { registrations: this.session.registrations, heartbeatsOk: this.session.heartbeatsOk, heartbeatsFailed: this.session.heartbeatsFailed },
    }
  }

  /** The tunnel (tests and `peers` details). */
  get tunnelEngine(): Tunnel {
    return this.tunnel
  }

  /** The UDP socket's local endpoint. */
  get localEndpoint(): UdpEndpoint {
    return this.bind.local
  }

  /** One registry heartbeat + poll now (tests; the timer does this every `heartbeatMs`). */
  heartbeatNow(): Promise<void> {
    return this.session.heartbeatOnce()
  }

  // ───────────────────────── shutdown ─────────────────────────

  /** FIN on every stream, a short grace, deregister, close everything. Idempotent. */
  close(): Promise<void> {
    this.closing ??= this.closeNow().finally(() => this.resolveClosed())
    return this.closing
  }

  private async closeNow(): Promise<void> {
    // The TUN first: bridge (sockets, DNS, resolvectl), then the interface and its routes.
    if (this.tunDoor !== null) await this.tunDoor.close()
    const now = this.driver.now()
    for (const h of this.driver.streamHandles()) {
      const c = h.connection
      // A half-open accepted stream (SYN_RECV) finishes too: its FIN follows the peer's ACK.
      if (c.state === StreamState.Established || c.state === StreamState.CloseWait || c.state === StreamState.SynReceived) c.finish(now)
      else if (c.state === StreamState.SynSent) c.reset(now)
    }
    this.driver.flushNow()
    const graceEnd = performance.now() + this.timing.closeGraceMs
    while (this.endpoint.connectionCount > 0 && performance.now() < graceEnd) {
      await new Promise((r) => setTimeout(r, 10))
      if (allQuiet(this.driver)) break
    }
    await this.trust.close(Math.min(500, this.timing.closeGraceMs))
    await this.session.stop(this.timing.deregisterTimeoutMs)
    this.client.close()
    // Whatever is still open ends here: its users see PT_SESSION_CLOSING.
    const closingError = new SessionError('closing', 'the daemon is shutting down', false)
    for (const h of this.driver.streamHandles()) {
      if (!(h instanceof PilotStream) || h.destroyed) continue
      const s = h.connection.state
      // Our FIN is out (or theirs and ours crossed): end quietly. Anything else is cut off with RST.
      if (s === StreamState.FinWait || s === StreamState.Closing || s === StreamState.TimeWait) h.abandon()
      else h.destroy(closingError)
    }
    this.driver.flushNow()
    this.driver.close()
    await this.tunnel.close()
    await this.store.flush()
    this.logger.info('daemon stopped', { node: this.nodeId })
  }

  // ───────────────────────── internals ─────────────────────────

  private admit(node: number, port: number, protocol: 'stream' | 'datagram'): boolean {
    if (protocol === 'stream' && (port === TRUST_PORT || this.openPorts.has(port))) return true
    return this.store.isTrusted(node)
  }

  /**
   * Trust established (locally and reported to the registry) or revoked. A peer we could not
   * `resolve` before may be resolvable now: the tunnel asks again at once and probes it, so a
   * relayed or punched path can become direct. (A restarted peer needs nothing from us: the
   * tunnel re-keys by itself, see tunnel.ts.)
   */
  private onTrustChanged(node: number, trusted: boolean): void {
    this.directory.invalidate(node)
    if (trusted) {
      this.tunnel.refreshPeer(node)
      return
    }
    // Revocation stops communication at once (draft behaviour): drop streams and the tunnel session.
    const now = this.driver.now()
    for (const h of this.driver.streamHandles()) {
      const c = h.connection
      if (c.remoteAddress.node === node && c.localPort !== TRUST_PORT && c.remotePort !== TRUST_PORT) {
        c.reset(now)
        this.driver.touch(h)
      }
    }
    this.driver.flushNow()
    this.tunnel.forget(node)
  }

  /** Port 444: one message on a fresh stream, closed `handshakeCloseDelayMs` later (Go's timing). */
  private async sendHandshakeMessage(node: number, message: Buffer): Promise<void> {
    // The message must leave as one segment (Go reads only the first): raise the MSS for big ones.
    const mss = Math.max(DEFAULT_MSS, message.length)
    const stream = await this.openStream(node, TRUST_PORT, { connectTimeout: this.timing.handshakeDialTimeoutMs, mss, noDelay: true })
    stream.on('error', () => {})
    stream.write(message)
    const closer = setTimeout(() => stream.end(), this.timing.handshakeCloseDelayMs)
    stream.once('close', () => clearTimeout(closer))
    // Not waiting for the peer's close: the peer answers on its own connection.
    setTimeout(() => {
      if (!stream.destroyed) stream.destroy()
    }, this.timing.handshakeCloseDelayMs + 5_000).unref()
  }

  private dialError(remote: PilotAddress, port: number, err: Error): Error {
    if (!(err instanceof SessionError)) return err
    const addr = formatAddress(remote)
    if (err.reason === 'refused') {
      if (port !== TRUST_PORT && !this.store.isTrusted(remote.node)) {
        return new DaemonError(DaemonErrorCode.TRUST_REQUIRED, `${addr} refused the connection to port ${port}: no mutual trust`, {
          hint: `ask for trust first: pilot-tun trust request ${addr}`,
          cause: err,
        })
      }
      return new DaemonError(DaemonErrorCode.CONNECTION_REFUSED, `${addr} refused the connection to port ${port}`, {
        hint: 'nothing listens on that port at the peer',
        cause: err,
      })
    }
    if (err.reason === 'connect-timeout') {
      return new DaemonError(DaemonErrorCode.PEER_UNREACHABLE, `${addr} did not answer on port ${port}`, {
        hint: 'the peer may be offline, or no direct, punched or relayed path works (is a beacon configured?)',
        cause: err,
      })
    }
    return err
  }

  /**
   * A peer's hostname for display. Never waits long on the registry: a status
   * command must answer while the registry is down, so after a short wait this
   * falls back to the last answer seen (or null).
   */
  private async displayHostname(node: number): Promise<string | null> {
    let timer: NodeJS.Timeout | undefined
    const fallback = new Promise<null>((resolve) => {
      timer = setTimeout(resolve, DISPLAY_LOOKUP_WAIT_MS, null)
    })
    try {
      const r = await Promise.race([this.directory.lookup(node).catch(() => null), fallback])
      return (r ?? this.directory.peek(node))?.hostname ?? null
    } finally {
      clearTimeout(timer)
    }
  }

  /** Hostname, Pilot address or mapped IPv6 → node ID. */
  private async resolveTarget(target: string): Promise<{ node: number; hostname: string | null }> {
    const text = target.trim()
    if (/^[0-9]+:[0-9A-Fa-f]{4}\./.test(text)) {
      let addr: PilotAddress
      try {
        addr = parseAddress(text)
      } catch (err) {
        throw new DaemonError(DaemonErrorCode.NAME_NOT_FOUND, (err as Error).message, { hint: 'addresses look like 0:0000.0000.002A' })
      }
      return { node: checkNode(addr, text), hostname: null }
    }
    if (text.includes(':')) {
      let addr: PilotAddress | null = null
      try {
        addr = ipv6TextToPilot(text)
      } catch {
        addr = null
      }
      if (addr === null) {
        throw new DaemonError(DaemonErrorCode.NAME_NOT_FOUND, `"${text}" is not a Pilot address or an overlay IPv6 address of a node`, {
          hint: 'use a hostname, N:NNNN.HHHH.LLLL, or an address in fd50:494c:4f54::/48',
        })
      }
      return { node: checkNode(addr, text), hostname: null }
    }
    try {
      const r = await this.client.resolveHostname(text.toLowerCase())
      return { node: r.nodeId, hostname: r.hostname }
    } catch (err) {
      if (err instanceof RegistryError && err.code === RegistryErrorCode.ERROR) {
        throw new DaemonError(DaemonErrorCode.NAME_NOT_FOUND, `no node is called "${text}"`, {
          hint: 'check the spelling; hostnames are set with `pilot-tun hostname set`',
          cause: err,
        })
      }
      throw err
    }
  }

  private registryListenAddr(): string {
    return formatUdpEndpoint(this.tunnel.publicEndpoint ?? this.bind.local)
  }

  private checkOpen(): void {
    if (this.closing !== null) throw daemonClosedError()
  }
}

function allQuiet(driver: SessionDriver): boolean {
  for (const h of driver.streamHandles()) {
    const s = h.connection.state
    if (s !== StreamState.TimeWait && s !== StreamState.Closed) return false
  }
  return true
}

function checkNode(addr: PilotAddress, text: string): number {
  if (addr.network !== 0 || addr.node === 0 || addr.node === 0xffffffff) {
    throw new DaemonError(DaemonErrorCode.NAME_NOT_FOUND, `${text} is not a node on the backbone (network 0)`)
  }
  return addr.node
}

/** "host:port" / "[v6]:port" → parts; throws PT_CONFIG_INVALID. */
export function parseHostPortOption(text: string, option: string): { host: string; port: number } {
  const i = text.lastIndexOf(':')
  let host = i < 0 ? '' : text.slice(0, i)
  if (host.startsWith('[') && host.endsWith(']')) host = host.slice(1, -1)
  const port = Number(text.slice(i + 1))
  if (i <= 0 || host === '' || !Number.isInteger(port) || port <= 0 || port > 0xffff) {
    throw new ConfigError(`${option} "${text}" is not host:port`, `for example ${option} 127.0.0.1:9000`)
  }
  return { host, port }
}

/** "[host]:port" with an optional host (":4000" = every IPv4 address). */
export function parseListenOption(text: string): { host: string; port: number } {
  const i = text.lastIndexOf(':')
  let host = i < 0 ? '' : text.slice(0, i)
  if (host.startsWith('[') && host.endsWith(']')) host = host.slice(1, -1)
  const port = Number(text.slice(i + 1))
  if (i < 0 || !Number.isInteger(port) || port < 0 || port > 0xffff || (host !== '' && isIP(host) === 0)) {
    throw new ConfigError(`--listen "${text}" is not [ip]:port`, 'for example --listen :4000 or --listen 127.0.0.1:0')
  }
  return { host: host === '' ? '0.0.0.0' : host, port }
}

async function resolveUdpEndpoint(hp: { host: string; port: number }): Promise<UdpEndpoint> {
  if (isIP(hp.host) !== 0) return hp
  try {
    const r = await dnsLookup(hp.host, { family: 4 }).catch(() => dnsLookup(hp.host))
    return { host: r.address, port: hp.port }
  } catch (err) {
    throw new PilotError('PT_CONFIG_INVALID', `cannot resolve beacon host ${hp.host}`, { hint: 'check --beacon', cause: err })
  }
}

export function formatUdpEndpoint(e: UdpEndpoint): string {
  return e.host.includes(':') ? `[${e.host}]:${e.port}` : `${e.host}:${e.port}`
}

async function readPackageVersion(): Promise<string> {
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
