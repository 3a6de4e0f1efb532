/**
 * `Daemon`: the composition root of a running Pilot node. It is the only
 * place that builds the node's objects and connects them:
 *
 *   identity (state dir) ─┐
 *   PacketBind (UDP) ─────┼─► Tunnel ◄── PeerDirectory = RegistryDirectory ──┐
 *                         │     │ onPacket                                   │
 *                         │     ▼                                            │
 *                         │  SessionDriver ─► SessionEndpoint (sans-IO)      │
 *                         │     │ admit = TrustAdmission (trust policy)      │
 *                         │     ▼                                            │
 *                         │  services: echo :7, trust :444 ─► TrustService ──┤
 *                         │  NodeStreams (streams, datagrams, pings) ◄── TUN front door
 *                         └─► RegistrySession (heartbeat, poll) ─────────────┘
 *
 *   ControlApi (control-api.ts) answers the control socket from these parts.
 *
 * Start order: state dir 0700 → identity (0600) → trust.json → UDP bind →
 * register (node ID) → tunnel (needs the ID) → endpoint, driver, trust,
 * services, registry session (its inbox goes straight to the trust service,
 * so nothing the registry relays during start-up is lost) → tunnel.start
 * (beacon keepalive) → heartbeats → TUN front door → the `Daemon`, built in
 * one step from finished parts. `close()` reverses it: FIN on every stream, a
 * short grace, deregister, then everything closes and no timer or socket is
 * left.
 * With `metricsListen` the metrics port (src/metrics/) is bound just before
 * registering, and closed with the tunnel.
 *
 * Private by default: a stream SYN, datagram or ping from a node without
 * mutual trust is refused (RST / dropped, counted), except on the trust port
 * 444, on ports opened with `listenStreams(port, fn, { allowUntrusted: true })`
 * and, with `answerPings`, pings and the echo port 7.
 *
 * Public API for the control socket/CLI: `Daemon.start(options)`, the
 * `DaemonControl` methods, `close()`, `closed`. For the TUN bridge and
 * applications: `openStream`, `listenStreams`, `sendDatagram`, `onDatagram`
 * (the bridge itself is given the `NodeStreams`).
 */
import { chmod, mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import type { DaemonControl, DaemonStatus, PeerStatus, PingReply, ResolveResult, TrustList } from './api.js'
import type { Identity } from '../crypto/identity.js'
import { loadOrCreateIdentity } from './identity-file.js'
import { formatAddress, type PilotAddress } from '../protocol/address.js'
import { formatHostPort } from '../protocol/host-port.js'
import { CryptoRandom } from '../random.js'
import { nullLogger, type Logger } from '../logger.js'
import { RegistryClient } from '../registry/client.js'
import { registryTlsOption } from '../registry/tls-pin.js'
import { Tunnel, UdpBind, type PacketBind, type UdpEndpoint } from '../tunnel/index.js'
import { SessionEndpoint, SessionError, StreamState, warmUpSessions, type StreamConfig } from '../session/index.js'
import { SessionDriver, type SessionDriverStats } from './session-driver.js'
import { PilotStream } from './pilot-stream.js'
import { RegistryDirectory, RegistrySession, registerNode, type Registration } from './registry-session.js'
import { TrustStore } from './trust-store.js'
import { TRUST_PORT, TrustService, type TrustServiceStats } from './trust-service.js'
import { ECHO_PORT, sendHandshakeMessage, startEchoService, startHandshakeService, type HandshakeService, type HandshakeServiceStats } from './services.js'
import { TunFrontDoor, precheckTunFrontDoor } from '../tun/bridge-setup.js'
import type { BridgePong, IncomingStreamRequest } from '../tun/bridge-host.js'
import { TrustAdmission, type NetworkRefusals } from './admission.js'
import { NetworkPaths, type NetworkPathStats } from './network-paths.js'
import { ControlApi } from './control-api.js'
import { NodeStreams, type ReceivedDatagram } from './node-streams.js'
import { TargetResolver } from './target-resolver.js'
import { DEFAULT_DAEMON_TIMING, parseHostPortListOption, parseListenOption, parsePrefixOption, readPackageVersion } from './options.js'
import { pickBeacon, resolveBeaconList } from './beacon-choice.js'
import type { DaemonOptions, DaemonTiming } from './options.js'
import type { OverlayPrefix } from '../protocol/ipv6-mapping.js'
import type { HostPort } from '../protocol/host-port.js'
import { parseMetricsListen } from '../metrics/http-server.js'
import type { DaemonMetrics } from '../metrics/daemon-metrics.js'
import { startTaskService, tasksDisabledError, type TaskService } from '../services/tasks/index.js'
import type { TaskCommand, TaskResults } from '../services/tasks/task-api.js'
import { DataServices } from '../services/data-services.js'
import { SecureService } from '../services/secure/secure-service.js'
import type { NetworkView } from './network-view.js'
import type { NetworkOps, NetworkRegistry } from './network-ops.js'
import type { TrustLog } from './trust-log.js'
import { buildNetworkOps, buildNetworkParts } from './network-parts.js'

export { DEFAULT_DAEMON_TIMING, type DaemonOptions, type DaemonTiming } from './options.js'
export type { ReceivedDatagram } from './node-streams.js'

export interface DaemonStats {
  driver: SessionDriverStats
  trust: TrustServiceStats
  handshake: HandshakeServiceStats
  registry: { registrations: number; heartbeatsOk: number; heartbeatsFailed: number }
  /** Issue 13: refusals in networks by cause, flows ended by leaves and policy changes, the view's refreshes. */
  networks: { refused: NetworkRefusals; paths: NetworkPathStats; view: ReturnType<NetworkView['stats']> }
}

/** Everything `buildNode` makes, finished and connected; the `Daemon` and `closeNode` work on this. */
export interface NodeParts {
  readonly nodeId: number
  readonly address: PilotAddress
  readonly startedAt: number
  readonly bind: PacketBind
  readonly client: RegistryClient
  readonly session: RegistrySession
  readonly directory: RegistryDirectory
  readonly tunnel: Tunnel
  readonly endpoint: SessionEndpoint
  readonly driver: SessionDriver
  readonly store: TrustStore
  readonly trust: TrustService
  readonly handshake: HandshakeService
  readonly names: TargetResolver
  readonly streams: NodeStreams
  /** `--metrics-listen`: the node's metrics and their HTTP server (null when off). */
  readonly metrics: DaemonMetrics | null
  /** The networks this node is a member of (issue 13; the data path reads it). */
  readonly networks: NetworkView
  readonly admission: TrustAdmission
  /** Keeps admission, flows and pilot0's addresses in step with `networks`. */
  readonly paths: NetworkPaths
  /** The registry's network methods (the RegistryClient unless a test gave a fake). */
  readonly networkRegistry: NetworkRegistry
  /** `<state dir>/trust-log.jsonl`: this node's trust decisions, hash-chained and signed. */
  readonly trustLog: TrustLog
}

/** What `buildNode` needs: the loaded and opened pieces, and the first registration. */
interface NodeInputs {
  readonly options: DaemonOptions
  readonly timing: DaemonTiming
  readonly logger: Logger
  readonly identity: Identity
  readonly store: TrustStore
  readonly bind: PacketBind
  readonly client: RegistryClient
  readonly beacon: UdpEndpoint | null
  /** The beacon chosen from `--beacon` (by node ID when it lists several), as written, and the whole list. */
  readonly beaconText: string | null
  readonly beaconList: readonly string[]
  readonly registration: Registration
  /** The overlay prefix (status, resolve, targets and the TUN agree on it). */
  readonly prefix: OverlayPrefix
  readonly metrics: DaemonMetrics | null
}

export class Daemon implements DaemonControl {
  readonly identity: Identity
  readonly nodeId: number
  readonly address: PilotAddress
  /** Resolves when `close()` has finished (after `shutdown()` too). */
  readonly closed: Promise<void>
  private readonly node: NodeParts
  private readonly control: ControlApi
  private readonly tunDoor: TunFrontDoor | null
  /** What the node was built from (timing and logger for the shutdown). */
  private readonly inputs: NodeInputs
  private readonly resolveClosed: () => void
  private closing: Promise<void> | null = null
  /** Port 1003 (null with `tasks: false`). */
  private readonly tasks: TaskService | null
  /** Data exchange and event stream, and their control methods (the control socket's `services`). */
  readonly services: DataServices
  /** The networks this node is a member of (issue 13): membership, policy, change events. */
  readonly networks: NetworkView
  /** The control socket's `network.*` and `audit.*` methods. */
  readonly networkOps: NetworkOps
  private secureService: SecureService | null = null

  /** Loads the identity, opens the socket, registers and starts every service. */
  static async start(options: DaemonOptions): Promise<Daemon> {
    const logger = options.logger ?? nullLogger
    const timing: DaemonTiming = { ...DEFAULT_DAEMON_TIMING, ...options.timing }
    // Option text first: a typo is refused before anything is written, bound or registered.
    // Several front ends of one registry may be given, comma-separated (issue 14).
    const [registry, ...registryFallbacks] = parseHostPortListOption(options.registry, '--registry') as [HostPort, ...HostPort[]]
    const registryTls = registryTlsOption(options.registryTls, options.registryFingerprint)
    const prefix = parsePrefixOption(options)
    const metricsAt = options.metricsListen == null ? null : parseMetricsListen(options.metricsListen)
    const tunOptions = options.tun ? { ...options.tun, prefix: prefix.text } : null
    await mkdir(options.stateDir, { recursive: true, mode: 0o700 })
    await chmod(options.stateDir, 0o700).catch(() => {})
    const { identity, created } = await loadOrCreateIdentity(options.identityPath ?? join(options.stateDir, 'identity.json'))
    if (created) logger.info('new identity created', { publicKey: Buffer.from(identity.publicKey).toString('base64') })
    const store = await TrustStore.open(options.stateDir, logger)
    const beacons = options.beacon === null ? null : await resolveBeaconList(options.beacon)
    const version = options.version ?? (await readPackageVersion())
    const bind = options.bind ?? (await UdpBind.open(parseListenOption(options.listen)))
    const client = new RegistryClient({
      host: registry.host,
      port: registry.port,
      fallbacks: registryFallbacks,
      tls: registryTls,
      identity,
      logger,
      timeoutMs: timing.registryTimeoutMs,
      reconnect: timing.registryReconnect,
    })
    let registration: Registration
    let metrics: DaemonMetrics | null = null
    try {
      // Cheap TUN checks (permission, interface free) before anything is registered.
      if (tunOptions) await precheckTunFrontDoor(tunOptions)
      // The metrics port too (a taken one fails here); prom-client is loaded only when asked for.
      if (metricsAt !== null) metrics = await (await import('../metrics/daemon-metrics.js')).DaemonMetrics.serve(metricsAt, logger)
      registration = await registerNode(
        client,
        { listenAddr: formatHostPort(bind.local.host, bind.local.port), hostname: options.hostname ?? null, isPublic: options.public === true, owner: options.owner },
        logger,
      )
    } catch (err) {
      await metrics?.close()
      client.close()
      await bind.close()
      throw err
    }
    // Several beacons: ours is list[nodeId % length] (src/daemon/beacon-choice.ts).
    const { beacon, beaconText, beaconList } = pickBeacon(beacons, registration.nodeId)
    const inputs: NodeInputs = { options, timing, logger, identity, store, bind, client, beacon, beaconText, beaconList, registration, prefix, metrics }
    const node = buildNode(inputs)
    // Data exchange (1001) and event stream (1002), each unless switched off (src/services/).
    let services: DataServices
    try {
      services = await DataServices.start({
        stateDir: options.stateDir,
        selfNode: node.nodeId,
        names: node.names,
        streams: node.streams,
        dataExchange: options.dataExchange,
        eventStream: options.eventStream,
        inboxQuota: options.inboxQuota,
        logger,
      })
    } catch (err) {
      await closeNode(node, timing, logger)
      throw err
    }
    // Task submission (1003) unless switched off (src/services/tasks/).
    let tasks: TaskService | null = null
    if (options.tasks !== false) {
      try {
        const t = timing.tasks ?? {}
        tasks = await startTaskService(options.stateDir, { ...taskDeps(node), ...(t.tickMs === undefined ? {} : { tickMs: t.tickMs }), timers: t }, logger)
      } catch (err) {
        services.close()
        await closeNode(node, timing, logger)
        throw err
      }
    }
    // A TUN failure after start-up shuts the daemon down; it may come before the Daemon object exists.
    const tunFailed = new AbortController()
    let tunDoor: TunFrontDoor | null = null
    if (tunOptions) {
      try {
        tunDoor = await TunFrontDoor.start(node.streams, tunOptions, logger, (err) => {
          logger.error('the TUN data path failed: shutting down', { error: err.message })
          tunFailed.abort(err)
        })
      } catch (err) {
        tasks?.close()
        services.close()
        await closeNode(node, timing, logger)
        throw err
      }
      await node.paths.attachInterfaces(tunDoor)
      const t = tunDoor.status()
      logger.info('TUN interface up', { interface: t.interface, address: t.address, prefix: t.prefix, mtu: t.mtu, dns: t.dns })
    }
    const daemon = new Daemon(node, inputs, version, tunDoor, tunFailed.signal, services, tasks)
    logger.info('daemon started', {
      node: daemon.nodeId,
      address: formatAddress(daemon.address),
      listen: formatHostPort(bind.local.host, bind.local.port),
      registry: options.registry,
      beacon: beaconText,
      ...(beaconList.length > 1 ? { beacons: beaconList.length } : {}),
      ...(metrics?.url ? { metrics: metrics.url } : {}),
    })
    return daemon
  }

  private constructor(
    node: NodeParts,
    inputs: NodeInputs,
    version: string,
    tunDoor: TunFrontDoor | null,
    tunFailed: AbortSignal,
    services: DataServices,
    tasks: TaskService | null,
  ) {
    this.services = services
    this.tasks = tasks
    const { options } = inputs
    this.identity = inputs.identity
    this.nodeId = node.nodeId
    this.address = node.address
    let resolveClosed!: () => void
    this.closed = new Promise<void>((r) => {
      resolveClosed = r
    })
    this.resolveClosed = resolveClosed
    this.node = node
    this.inputs = inputs
    this.tunDoor = tunDoor
    this.networks = node.networks
    this.networkOps = buildNetworkOps(node)
    this.control = new ControlApi({
      version,
      address: node.address,
      prefix: inputs.prefix,
      registryText: options.registry,
      registryFrontEnd: () => node.client.address,
      registryTlsPin: node.client.tls?.pin ?? null,
      beaconText: inputs.beaconText,
      beaconList: inputs.beaconList,
      isPublic: options.public === true,
      kdf: options.kdf ?? 'auto',
      startedAt: node.startedAt,
      bind: node.bind,
      tunnel: node.tunnel,
      endpoint: node.endpoint,
      session: node.session,
      store: node.store,
      trust: node.trust,
      names: node.names,
      streams: node.streams,
      tun: tunDoor,
      networks: node.networks,
      networkRefusals: () => node.admission.networkRefusals(),
      requestClose: () => void this.close(),
    })
    if (tunFailed.aborted) void this.close()
    else tunFailed.addEventListener('abort', () => void this.close(), { once: true })
  }

  // ───────────────────────── DaemonControl (control-api.ts) ─────────────────────────

  status(): Promise<DaemonStatus> {
    return this.control.status()
  }

  peers(): Promise<PeerStatus[]> {
    return this.control.peers()
  }

  ping(target: string, timeoutMs: number): Promise<PingReply> {
    return this.control.ping(target, timeoutMs)
  }

  resolve(target: string): Promise<ResolveResult> {
    return this.control.resolve(target)
  }

  trustRequest(target: string, reason: string): Promise<{ status: 'sent' | 'trusted'; node_id: number }> {
    return this.control.trustRequest(target, reason)
  }

  trustApprove(target: string): Promise<{ status: 'approved'; node_id: number }> {
    return this.control.trustApprove(target)
  }

  trustReject(target: string, reason: string): Promise<{ status: 'rejected'; node_id: number }> {
    return this.control.trustReject(target, reason)
  }

  trustRevoke(target: string): Promise<{ status: 'revoked'; node_id: number }> {
    return this.control.trustRevoke(target)
  }

  trustList(): Promise<TrustList> {
    return this.control.trustList()
  }

  setHostname(name: string): Promise<{ hostname: string }> {
    return this.control.setHostname(name)
  }

  shutdown(): Promise<void> {
    return this.control.shutdown()
  }

  /** `pilot-tun task ...` (src/services/tasks/); PT_TASK_DISABLED with `tasks: false`. */
  async task<C extends TaskCommand>(command: C): Promise<TaskResults[C['op']]> {
    if (this.tasks === null) throw tasksDisabledError()
    this.node.streams.checkOpen()
    return this.tasks.task(command)
  }

  /** The task service (tests, stats); null when off. */
  get taskService(): TaskService | null {
    return this.tasks
  }

  // ───────────────────────── streams and datagrams (node-streams.ts) ─────────────────────────

  /** Opens a stream to `node`:`port`; PT_TRUST_REQUIRED / PT_CONNECTION_REFUSED / PT_PEER_UNREACHABLE on failure. */
  openStream(node: number | PilotAddress, port: number, config?: Partial<StreamConfig>): Promise<PilotStream> {
    return this.node.streams.openStream(node, port, config)
  }

  /** Accepts streams on `port`, from trusted nodes only unless `allowUntrusted`. */
  listenStreams(port: number, onStream: (stream: PilotStream) => void, options: { allowUntrusted?: boolean } = {}): void {
    this.node.streams.listenStreams(port, onStream, options)
  }

  unlistenStreams(port: number): void {
    this.node.streams.unlistenStreams(port)
  }

  /** Sends one datagram (docs/wire.md §7); returns the source port used. */
  sendDatagram(node: number | PilotAddress, port: number, data: Uint8Array, sourcePort?: number): number {
    return this.node.streams.sendDatagram(node, port, data, sourcePort)
  }

  /** Receives datagrams from trusted nodes (others are dropped and counted). One handler. */
  onDatagram(handler: ((d: ReceivedDatagram) => void) | null): void {
    this.node.streams.onDatagram(handler)
  }

  /** Admitted stream SYNs to ports without a listener go to `handler` (null = RST at once). */
  setDefaultStreamHandler(handler: ((incoming: IncomingStreamRequest) => void) | null): void {
    this.node.streams.setDefaultStreamHandler(handler)
  }

  /** Control ping (Pilot port 0) to `node`; the pong goes to `onPong`. Returns the ping id. */
  sendPing(node: number | PilotAddress): number {
    return this.node.streams.sendPing(node)
  }

  /** Receives pongs of `sendPing` (one handler). */
  onPong(handler: ((p: BridgePong) => void) | null): void {
    this.node.streams.onPong(handler)
  }

  /** Mutual trust with `node`. */
  isTrusted(node: number): boolean {
    return this.node.streams.isTrusted(node)
  }

  /** The TUN front door, when `options.tun` was set (tests, stats). */
  get tun(): TunFrontDoor | null {
    return this.tunDoor
  }

  // ───────────────────────── diagnostics ─────────────────────────

  stats(): DaemonStats {
    const { driver, trust, handshake, session } = this.node
    return {
      driver: driver.stats(),
      trust: trust.stats(),
      handshake: handshake.stats(),
      registry: { registrations: session.registrations, heartbeatsOk: session.heartbeatsOk, heartbeatsFailed: session.heartbeatsFailed },
      networks: { refused: this.node.admission.networkRefusals(), paths: this.node.paths.stats(), view: this.node.networks.stats() },
    }
  }

  /** The node's parts, for in-process front ends built outside (the driver IPC: ipc-host.ts). */
  get parts(): NodeParts {
    return this.node
  }

  /** The port-443 secure channel's control methods (`secure.*`, src/services/secure/), made on first use. */
  get secure(): SecureService {
    return (this.secureService ??= new SecureService({ selfNode: this.nodeId, names: this.node.names, streams: this.node.streams, logger: this.inputs.logger }))
  }

  /** The tunnel (tests and `peers` details). */
  get tunnelEngine(): Tunnel {
    return this.node.tunnel
  }

  /** Where `/metrics` is served (`metricsListen`, port 0 resolved); null when off. */
  get metricsAddress(): HostPort | null {
    return this.node.metrics?.address ?? null
  }

  /** The UDP socket's local endpoint. */
  get localEndpoint(): UdpEndpoint {
    return this.node.bind.local
  }

  /** One registry heartbeat + poll now (tests; the timer does this every `heartbeatMs`). */
  heartbeatNow(): Promise<void> {
    return this.node.session.heartbeatOnce()
  }

  // ───────────────────────── shutdown ─────────────────────────

  /** FIN on every stream, a short grace, deregister, close everything. Idempotent. */
  close(): Promise<void> {
    this.closing ??= this.closeNow().finally(() => this.resolveClosed())
    return this.closing
  }

  private async closeNow(): Promise<void> {
    this.tasks?.close()
    this.node.streams.beginClose()
    this.services.close()
    // The TUN first: bridge (sockets, DNS, resolvectl), then the interface and its routes.
    if (this.tunDoor !== null) await this.tunDoor.close()
    await closeNode(this.node, this.inputs.timing, this.inputs.logger)
  }
}

/** What the task service needs from the node's parts. */
function taskDeps(node: NodeParts): Parameters<typeof startTaskService>[1] {
  return {
    selfId: node.nodeId,
    openStream: (n, port) => node.streams.openStream(n, port),
    listenStreams: (port, fn) => node.streams.listenStreams(port, fn),
    unlistenStreams: (port) => node.streams.unlistenStreams(port),
    registry: node.client,
    resolveTarget: (target) => node.names.resolveTarget(target),
  }
}

/** Builds the node's parts from the first registration and starts the tunnel and the heartbeats. */
function buildNode(inputs: NodeInputs): NodeParts {
  const { options, timing, logger, identity, store, bind, client, registration, metrics } = inputs
  const nodeId = registration.nodeId
  const address: PilotAddress = { network: 0, node: nodeId }
  const random = options.random ?? new CryptoRandom()
  const selfId = (): number => nodeId
  const directory = new RegistryDirectory({ client, selfId, ttlMs: timing.directoryTtlMs, logger })
  const tunnel = new Tunnel({
    bind,
    identity,
    nodeId,
    directory,
    beacon: inputs.beacon,
    kdf: options.kdf ?? 'auto',
    random,
    logger: logger.child({ component: 'tunnel' }),
    timing: timing.tunnel,
  })
  const endpoint = new SessionEndpoint({ local: address, random, stream: { connectTimeout: timing.dialTimeoutMs, ...timing.stream } })
  const admission = new TrustAdmission(store, { answerPings: options.answerPings === true })
  // Pingable by everyone: `pilot-tun ping` (and Go's) is an echo stream on port 7.
  if (admission.answerPings) admission.openToAll(ECHO_PORT)
  const driver = new SessionDriver({
    endpoint,
    sink: tunnel,
    admit: admission.admit,
    recheck: admission.recheck,
    logger: logger.child({ component: 'session' }),
    onRttSample:
      metrics === null
        ? (node, ms) => tunnel.recordRtt(node, ms)
        : (node, ms) => {
            tunnel.recordRtt(node, ms)
            metrics.observeRtt(ms)
          },
  })
  tunnel.onPacket(driver.onPacket)
  const names = new TargetResolver({ client, directory, prefix: inputs.prefix })
  const net = buildNetworkParts({
    client,
    ...(options.networkRegistry === undefined ? {} : { networkRegistry: options.networkRegistry }),
    nodeId,
    stateDir: options.stateDir,
    identity,
    ...(options.networkRefreshMs === undefined ? {} : { refreshMs: options.networkRefreshMs }),
    logger,
    resolveTarget: (t) => names.resolveTarget(t),
  })
  const { networks, networkRegistry, trustLog } = net
  const streams = new NodeStreams({ address, driver, admission, peers: tunnel, registry: directory, names, networks: net })
  const handshakeTiming = { dialTimeoutMs: timing.handshakeDialTimeoutMs, closeDelayMs: timing.handshakeCloseDelayMs }
  const trust = new TrustService({
    store,
    identity,
    client,
    directory,
    selfId,
    sendDirect: (node, message) => sendHandshakeMessage(streams, node, message, handshakeTiming),
    onTrustChanged: (node, trusted) => applyTrustChange({ directory, tunnel, driver }, node, trusted),
    autoAccept: options.autoAccept === true,
    onDecision: (action, node, detail) => void trustLog.append(action, node, detail),
    logger: logger.child({ component: 'trust' }),
  })
  startEchoService(driver)
  const handshake = startHandshakeService(driver, {
    readTimeoutMs: timing.handshakeReadTimeoutMs,
    logger,
    onMessage: (node, bytes) => {
      void trust.handleDirect(node, bytes).catch((err: unknown) => logger.error('handshake handling failed', { node, error: String(err) }))
    },
  })
  const session = new RegistrySession({
    client,
    logger,
    heartbeatMs: timing.heartbeatMs,
    maxFailures: timing.maxHeartbeatFailures,
    registered: registration,
    // What the beacon says we are, once it said so; until then the socket's own address.
    listenAddr: () => {
      const e = tunnel.publicEndpoint ?? bind.local
      return formatHostPort(e.host, e.port)
    },
    hostname: options.hostname ?? null,
    isPublic: options.public === true,
    owner: options.owner,
    onInbox: (inbox) => trust.handleInbox(inbox),
    handshakesAwaited: () => store.listOutgoing().length > 0,
    onReregistered: () => trust.reportAll(),
  })
  tunnel.start()
  // The session engine's first calls cost ~12 ms of CPU (lazy compilation, cold caches): pay them
  // now, on a throwaway in-memory stream, not on the first real connection's critical path.
  try {
    warmUpSessions(random)
  } catch (err) {
    logger.warn('session warm-up failed', { error: String(err) })
  }
  // Trusted peers are the ones we will talk to: their keys and endpoints at hand for a first connection.
  tunnel.prefetchPeers(store.listTrusted().map((e) => e.node_id))
  session.start()
  const paths = new NetworkPaths(networks, driver, admission, null, logger.child({ component: 'networks' }), (n) => {
    const members = networks.get(n)?.members
    if (members !== undefined) tunnel.prefetchPeers([...members].filter((m) => m !== nodeId))
  })
  networks.start()
  metrics?.watch({ tunnel, endpoint, driver, session, admission })
  return { nodeId, address, startedAt: performance.now(), bind, client, session, directory, tunnel, endpoint, driver, store, trust, handshake, names, streams, metrics, networks, networkRegistry, trustLog, admission, paths }
}

/** The node's half of `close()` (also after a failed TUN start): FINs, grace, deregister, then every part closes. */
async function closeNode(node: NodeParts, timing: DaemonTiming, logger: Logger): Promise<void> {
  const { driver, endpoint } = node
  node.networks.close()
  node.paths.close()
  node.streams.beginClose()
  const now = driver.now()
  for (const h of driver.streamHandles()) {
    const c = h.connection
    // A half-open accepted stream (SYN_RECV) finishes too: its FIN follows the peer's ACK.
    if (c.state === StreamState.Established || c.state === StreamState.CloseWait || c.state === StreamState.SynReceived) c.finish(now)
    else if (c.state === StreamState.SynSent) c.reset(now)
  }
  driver.flushNow()
  const graceEnd = performance.now() + timing.closeGraceMs
  while (endpoint.connectionCount > 0 && performance.now() < graceEnd) {
    await new Promise((r) => setTimeout(r, 10))
    if (allQuiet(driver)) break
  }
  await node.trust.close(Math.min(500, timing.closeGraceMs))
  await node.trustLog.flush()
  await node.session.stop(timing.deregisterTimeoutMs)
  node.client.close()
  // Whatever is still open ends here: its users see PT_SESSION_CLOSING.
  const closingError = new SessionError('closing', 'the daemon is shutting down', false)
  for (const h of driver.streamHandles()) {
    if (!(h instanceof PilotStream) || h.destroyed) continue
    const s = h.connection.state
    // Our FIN is out (or theirs and ours crossed): end quietly. Anything else is cut off with RST.
    if (s === StreamState.FinWait || s === StreamState.Closing || s === StreamState.TimeWait) h.abandon()
    else h.destroy(closingError)
  }
  driver.flushNow()
  driver.close()
  // Scrapes work until here; then nothing is left listening.
  await node.metrics?.close()
  await node.tunnel.close()
  await node.store.close()
  logger.info('daemon stopped', { node: node.nodeId })
}

function allQuiet(driver: SessionDriver): boolean {
  for (const h of driver.streamHandles()) {
    const s = h.connection.state
    if (s !== StreamState.TimeWait && s !== StreamState.Closed) return false
  }
  return true
}

/**
 * Trust established (locally and reported to the registry) or revoked. A peer we could not
 * `resolve` before may be resolvable now: the tunnel asks again at once and probes it, so a
 * relayed or punched path can become direct. (A restarted peer needs nothing from us: the
 * tunnel re-keys by itself, see tunnel.ts.)
 */
function applyTrustChange(parts: Pick<NodeParts, 'directory' | 'tunnel' | 'driver'>, node: number, trusted: boolean): void {
  const { directory, tunnel, driver } = parts
  directory.invalidate(node)
  if (trusted) {
    tunnel.refreshPeer(node)
    tunnel.prefetchPeers([node])
    return
  }
  // Revocation stops communication at once (draft behaviour): drop streams and the tunnel session.
  const now = driver.now()
  for (const h of driver.streamHandles()) {
    const c = h.connection
    // Flows in a network stand on membership, not on pairwise trust.
    if (c.remoteAddress.node === node && c.remoteAddress.network === 0 && c.localPort !== TRUST_PORT && c.remotePort !== TRUST_PORT) {
      c.reset(now)
      driver.touch(h)
    }
  }
  driver.flushNow()
  tunnel.forget(node)
}
