/**
 * `ControlApi`: the daemon's answers to the control socket's methods
 * (`DaemonControl`, api.ts): status, peers, ping, resolve, the trust
 * commands, hostname, shutdown. It only reads the node's parts and calls
 * them; the `Daemon` builds it and forwards its `DaemonControl` methods here.
 *
 * Every part is a narrow interface, so a test can hand in small fakes.
 */
import { loadDatapathAddon } from '../native-datapath.js'
import type { DaemonControl, DaemonStatus, PathKind, PeerStatus, PingReply, ResolveResult, TrustList } from './api.js'
import { formatAddress, type PilotAddress } from '../protocol/address.js'
import { formatHostPort } from '../protocol/host-port.js'
import { pilotToIpv6Text, type OverlayPrefix } from '../protocol/ipv6-mapping.js'
import type { StreamConfig } from '../session/index.js'
import type { PeerInfo, UdpEndpoint } from '../tunnel/index.js'
import { DaemonError, DaemonErrorCode } from './errors.js'
import type { PilotStream } from './pilot-stream.js'
import { ECHO_PORT } from './services.js'
import type { TargetResolver } from './target-resolver.js'
import type { TrustService } from './trust-service.js'
import type { TrustStore } from './trust-store.js'

export interface ControlApiOptions {
  version: string
  address: PilotAddress
  /** The daemon's overlay prefix (the `ipv6` that status shows). */
  prefix: OverlayPrefix
  /** As configured (shown as given). */
  registryText: string
  /** The registry front end in use (RegistryClient.address). */
  registryFrontEnd: () => string
  /** The registry certificate pin in use (`--registry-fingerprint`), null = plaintext. */
  registryTlsPin?: string | null
  beaconText: string | null
  /** Every beacon of `--beacon` (the chosen one is `beaconText`); shown when there are several. */
  beaconList?: readonly string[]
  isPublic: boolean
  kdf: DaemonStatus['kdf']
  /** `performance.now()` when the node came up. */
  startedAt: number
  /** The UDP socket. */
  bind: { readonly local: UdpEndpoint; readonly sendPath?: string; readonly receivePath?: string }
  tunnel: {
    readonly publicEndpoint: UdpEndpoint | null
    peers(): PeerInfo[]
    peer(node: number): PeerInfo | null
    recordRtt(node: number, ms: number): void
  }
  /** The session endpoint (open stream count). */
  endpoint: { readonly connectionCount: number }
  session: {
    readonly hostname: string | null
    readonly connected: boolean
    lastHeartbeatAgoMs(): number | null
    setHostname(name: string): Promise<string>
  }
  store: Pick<TrustStore, 'isTrusted' | 'listTrusted' | 'listPending' | 'listOutgoing' | 'unsavedReason'>
  trust: Pick<TrustService, 'autoAccept' | 'request' | 'approve' | 'reject' | 'revoke'>
  names: Pick<TargetResolver, 'resolveTarget' | 'resolve' | 'displayHostname'>
  streams: {
    openStream(node: number | PilotAddress, port: number, config?: Partial<StreamConfig>): Promise<PilotStream>
    /** Throws PT_DAEMON_CLOSED once the daemon is closing. */
    checkOpen(): void
  }
  /** The networks we are in (the daemon's view); absent in tests that have none. */
  networks?: { joined(): ReadonlyArray<{ id: number; name: string; role: string; policy: { allowedPorts: number[] }; members: ReadonlySet<number> }> }
  /** Refusals in networks by cause (admission). */
  networkRefusals?: () => { notJoined: number; notMember: number; portNotAllowed: number }
  /** The TUN front door's status line, null without one. */
  tun: { status(): NonNullable<DaemonStatus['tun']> } | null
  /** Starts the daemon's clean shutdown. */
  requestClose: () => void
}

export class ControlApi implements Omit<DaemonControl, 'task'> {
  private readonly o: ControlApiOptions

  constructor(options: ControlApiOptions) {
    this.o = options
  }

  async status(): Promise<DaemonStatus> {
    const o = this.o
    const ago = o.session.lastHeartbeatAgoMs()
    const pub = o.tunnel.publicEndpoint
    return {
      version: o.version,
      node_id: o.address.node,
      address: formatAddress(o.address),
      ipv6: pilotToIpv6Text(o.address, o.prefix),
      hostname: o.session.hostname,
      public: o.isPublic,
      uptime_s: Math.floor((performance.now() - o.startedAt) / 1000),
      listen: formatHostPort(o.bind.local.host, o.bind.local.port),
      public_endpoint: pub === null ? null : formatHostPort(pub.host, pub.port),
      registry: { address: o.registryText, front_end: o.registryFrontEnd(), connected: o.session.connected, last_heartbeat_s_ago: ago === null ? null : Math.floor(ago / 1000), tls_pin: o.registryTlsPin ?? null },
      beacon: { address: o.beaconText, ...((o.beaconList?.length ?? 0) > 1 ? { of: [...o.beaconList!] } : {}) },
      kdf: o.kdf,
      auto_accept: o.trust.autoAccept,
      peers: o.tunnel.peers().length,
      connections: o.endpoint.connectionCount,
      trust_unsaved: o.store.unsavedReason,
      datapath: {
        aead: loadDatapathAddon() === null ? 'node' : 'openssl',
        send: (o.bind.sendPath ?? 'dgram') as NonNullable<DaemonStatus['datapath']>['send'],
        receive: (o.bind.receivePath ?? 'dgram') as NonNullable<DaemonStatus['datapath']>['receive'],
      },
      ...(o.networks === undefined
        ? {}
        : {
            networks: o.networks.joined().map((n) => {
              const at = { network: n.id, node: o.address.node }
              return {
                id: n.id,
                name: n.name,
                role: n.role,
                address: formatAddress(at),
                ipv6: pilotToIpv6Text(at, o.prefix),
                allowed_ports: [...n.policy.allowedPorts],
                members: n.members.size,
              }
            }),
          }),
      ...(o.networkRefusals === undefined
        ? {}
        : (() => {
            const r = o.networkRefusals()
            return { network_refusals: { not_joined: r.notJoined, not_member: r.notMember, port_not_allowed: r.portNotAllowed } }
          })()),
      tun: o.tun?.status() ?? null,
    }
  }

  async peers(): Promise<PeerStatus[]> {
    const now = performance.now()
    const peers = this.o.tunnel.peers()
    const names = await Promise.all(peers.map((p) => this.o.names.displayHostname(p.nodeId)))
    return peers.map((p, i) => ({
      node_id: p.nodeId,
      address: formatAddress({ network: 0, node: p.nodeId }),
      hostname: names[i]!,
      path: p.path,
      endpoint: p.endpoint === null ? null : formatHostPort(p.endpoint.host, p.endpoint.port),
      rtt_ms: p.rttMs === undefined ? null : roundMs(p.rttMs),
      kdf: p.kdf,
      kdf_confirmed: p.kdfConfirmed,
      authenticated: p.authenticated,
      trusted: this.o.store.isTrusted(p.nodeId),
      bytes_in: p.bytesIn,
      bytes_out: p.bytesOut,
      last_seen_s_ago: p.lastReceiveMs === 0 ? null : Math.floor((now - p.lastReceiveMs) / 1000),
    }))
  }

  /** One echo round trip on port 7; rejects with PT_PING_TIMEOUT after `timeoutMs`. */
  async ping(target: string, timeoutMs: number): Promise<PingReply> {
    this.o.streams.checkOpen()
    // A network address (N:…, prefix:N::node) pings inside that network.
    const { node, hostname, network } = await this.o.names.resolveTarget(target, { anyNetwork: true })
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
      stream = await Promise.race([this.o.streams.openStream({ network, node }, ECHO_PORT, { connectTimeout: Math.max(1, deadline - performance.now()) }), timeout])
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
      this.o.tunnel.recordRtt(node, rtt)
      s.end()
      const path: PathKind = this.o.tunnel.peer(node)?.path ?? 'none'
      return { address: formatAddress({ network, node }), hostname, rtt_ms: roundMs(rtt), path }
    } catch (err) {
      stream?.destroy()
      throw err
    } finally {
      if (timer !== null) clearTimeout(timer)
    }
  }

  resolve(target: string): Promise<ResolveResult> {
    return this.o.names.resolve(target)
  }

  async trustRequest(target: string, reason: string): Promise<{ status: 'sent' | 'trusted'; node_id: number }> {
    const node = await this.openTarget(target)
    return { status: await this.o.trust.request(node, reason), node_id: node }
  }

  async trustApprove(target: string): Promise<{ status: 'approved'; node_id: number }> {
    const node = await this.openTarget(target)
    await this.o.trust.approve(node)
    return { status: 'approved', node_id: node }
  }

  async trustReject(target: string, reason: string): Promise<{ status: 'rejected'; node_id: number }> {
    const node = await this.openTarget(target)
    await this.o.trust.reject(node, reason)
    return { status: 'rejected', node_id: node }
  }

  async trustRevoke(target: string): Promise<{ status: 'revoked'; node_id: number }> {
    const node = await this.openTarget(target)
    await this.o.trust.revoke(node)
    return { status: 'revoked', node_id: node }
  }

  async trustList(): Promise<TrustList> {
    const store = this.o.store
    const addr = (node: number): string => formatAddress({ network: 0, node })
    return {
      trusted: store.listTrusted().map((t) => ({ node_id: t.node_id, address: addr(t.node_id), approved_at: t.approved_at, mutual: t.mutual })),
      pending: store.listPending().map((p) => ({
        node_id: p.node_id,
        address: addr(p.node_id),
        justification: p.justification ?? '',
        received_at: p.received_at,
      })),
      outgoing: store.listOutgoing().map((o) => ({ node_id: o.node_id, address: addr(o.node_id), sent_at: o.sent_at })),
    }
  }

  async setHostname(name: string): Promise<{ hostname: string }> {
    this.o.streams.checkOpen()
    return { hostname: await this.o.session.setHostname(name) }
  }

  async shutdown(): Promise<void> {
    // Let the control socket answer first; the close runs right after.
    setImmediate(this.o.requestClose)
  }

  /** Refused once closing; then the target's node ID. */
  private async openTarget(target: string): Promise<number> {
    this.o.streams.checkOpen()
    return (await this.o.names.resolveTarget(target)).node
  }
}

function roundMs(ms: number): number {
  return Math.round(ms * 1000) / 1000
}
