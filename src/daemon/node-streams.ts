/**
 * `NodeStreams`: what a running node offers to the code above it: open and
 * accept Pilot streams, send and receive datagrams, ping, ask about trust,
 * resolve a name. It is the TUN bridge's host (`BridgeHost`, tun/bridge-host.ts),
 * and the daemon's own stream methods, the control ping and the trust
 * handshakes go through it too.
 *
 * It turns session errors into the daemon's: a refused dial is
 * PT_TRUST_REQUIRED when we have no trust with the peer (it refuses strangers)
 * or PT_CONNECTION_REFUSED when we do (nothing listens), and a dial nobody
 * answers is PT_PEER_UNREACHABLE. Once `beginClose()` was called, new work is
 * refused with PT_DAEMON_CLOSED.
 */
import { formatAddress, type PilotAddress } from '../protocol/address.js'
import { SessionError, type StreamConfig } from '../session/index.js'
import type { BridgeHost, BridgePong, IncomingStreamRequest, NetworkVerdict } from '../tun/bridge-host.js'
import type { ResolveResult } from './api.js'
import type { TrustAdmission } from './admission.js'
import { DaemonError, DaemonErrorCode, daemonClosedError } from './errors.js'
import { PilotStream } from './pilot-stream.js'
import type { SessionDriver } from './session-driver.js'
import { TRUST_PORT } from './trust-service.js'

/** A datagram delivered to `onDatagram` (only from trusted nodes). */
export interface ReceivedDatagram {
  from: PilotAddress
  fromPort: number
  toPort: number
  data: Uint8Array
}

export interface NodeStreamsOptions {
  address: PilotAddress
  driver: SessionDriver
  admission: TrustAdmission
  /** Whether the tunnel already has an authenticated session with a node (the tunnel). */
  peers: { peer(node: number): { authenticated: boolean } | null }
  /** Whether the registry knows a node: false = it said no, null = it cannot be asked (the registry directory). */
  registry: { isRegistered(node: number): Promise<boolean | null> }
  /** Names for `resolve` (the target resolver). */
  names: { resolve(target: string): Promise<ResolveResult> }
  /** `host.netname.pilot` (the network view, network-view.ts); absent = no networks. */
  networks?: { resolveInNetwork(netname: string, host: string): Promise<{ network: number; node_id: number } | null> }
}

export class NodeStreams implements BridgeHost {
  readonly address: PilotAddress
  private readonly driver: SessionDriver
  private readonly admission: TrustAdmission
  /** The tunnel, the registry directory and the target resolver, asked by `openStream` and `resolve`. */
  private readonly lookups: Pick<NodeStreamsOptions, 'peers' | 'registry' | 'names' | 'networks'>
  private datagramHandler: ((d: ReceivedDatagram) => void) | null = null
  /** Further receivers next to `datagramHandler` (the driver IPC). */
  private readonly datagramListeners = new Set<(d: ReceivedDatagram) => void>()
  private closing = false

  constructor(options: NodeStreamsOptions) {
    this.address = options.address
    this.driver = options.driver
    this.admission = options.admission
    this.lookups = options
    this.driver.onDatagram((ev) => {
      const handler = this.datagramHandler
      if (handler === null && this.datagramListeners.size === 0) return
      const d: ReceivedDatagram = { from: ev.remote, fromPort: ev.remotePort, toPort: ev.localPort, data: ev.data }
      if (handler !== null) handler(d)
      for (const l of this.datagramListeners) l(d)
    })
  }

  /** From now on new streams, datagrams and pings are refused with PT_DAEMON_CLOSED. */
  beginClose(): void {
    this.closing = true
  }

  /** Throws PT_DAEMON_CLOSED once the daemon is closing. */
  checkOpen(): void {
    if (this.closing) throw daemonClosedError()
  }

  /**
   * Opens a stream to `node`:`port` and resolves once it is connected.
   * Rejects with PT_TRUST_REQUIRED when the peer refuses and we have no trust
   * with it, PT_CONNECTION_REFUSED when it refuses although trusted (nothing
   * listens), PT_PEER_UNREACHABLE when no SYN|ACK arrives in time.
   */
  async openStream(node: number | PilotAddress, port: number, config?: Partial<StreamConfig>): Promise<PilotStream> {
    this.checkOpen()
    const remote = typeof node === 'number' ? { network: 0, node } : node
    if (remote.network !== 0 && this.admission.networkVerdict(remote.node, port, 'stream', remote.network) !== null) {
      // Our view may be a policy change behind: one refresh before we refuse.
      await this.admission.recheckOutbound(remote.network)
      this.checkNetwork(remote, port, 'stream')
    }
    // A node the registry has never heard of cannot answer: say so as soon as the registry
    // does instead of retrying a dial for half a minute. Asked alongside the SYN, not before
    // it: the tunnel's set-up (key, endpoint, PILA) starts at once, so a new peer's first
    // connection does not wait a registry round trip more. (No session and registry
    // unreachable: dial anyway, the tunnel may still know a path.)
    const { peers, registry } = this.lookups
    const check = peers.peer(remote.node)?.authenticated === true ? null : registry.isRegistered(remote.node)
    const stream = new PilotStream(this.driver, this.driver.connect(remote, port, config))
    return new Promise<PilotStream>((resolve, reject) => {
      let settled = false
      const onConnect = (): void => {
        settled = true
        stream.off('error', onError)
        resolve(stream)
      }
      const onError = (err: Error): void => {
        settled = true
        stream.off('connect', onConnect)
        reject(this.dialError(remote, port, err))
      }
      stream.once('connect', onConnect)
      stream.once('error', onError)
      check?.then(
        (registered) => {
          if (registered !== false || settled) return
          settled = true
          stream.off('connect', onConnect)
          stream.off('error', onError)
          stream.on('error', noop)
          stream.destroy()
          reject(
            new DaemonError(DaemonErrorCode.PEER_UNREACHABLE, `node ${formatAddress(remote)} is not registered`, {
              hint: 'check the address, or `pilot-tun resolve <hostname>` for the right one',
            }),
          )
        },
        noop, // the registry could not be asked: the dial decides
      )
    })
  }

  /**
   * Accepts streams on `port`. By default only trusted nodes get through
   * (others are answered with RST); `allowUntrusted` opens the port to all.
   */
  listenStreams(port: number, onStream: (stream: PilotStream) => void, options: { allowUntrusted?: boolean } = {}): void {
    this.driver.listen(port, (conn) => onStream(new PilotStream(this.driver, conn)))
    if (options.allowUntrusted === true) this.admission.openToAll(port)
  }

  unlistenStreams(port: number): void {
    this.driver.unlisten(port)
    this.admission.closeToAll(port)
  }

  /** Sends one datagram (docs/wire.md §7); returns the source port used. */
  sendDatagram(node: number | PilotAddress, port: number, data: Uint8Array, sourcePort?: number): number {
    this.checkOpen()
    const remote = typeof node === 'number' ? { network: 0, node } : node
    if (remote.network !== 0) this.checkNetwork(remote, port, 'datagram')
    return this.driver.sendDatagram(remote, port, data, sourcePort)
  }

  /** Receives datagrams from trusted nodes (others are dropped and counted). One handler. */
  onDatagram(handler: ((d: ReceivedDatagram) => void) | null): void {
    this.datagramHandler = handler
  }

  /** Adds a datagram receiver next to the `onDatagram` handler; returns its removal. */
  addDatagramListener(listener: (d: ReceivedDatagram) => void): () => void {
    this.datagramListeners.add(listener)
    return () => this.datagramListeners.delete(listener)
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
    this.checkOpen()
    const remote = typeof node === 'number' ? { network: 0, node } : node
    if (remote.network !== 0) this.checkNetwork(remote, 0, 'ping')
    return this.driver.sendPing(remote)
  }

  /** Receives pongs of `sendPing` (one handler). */
  onPong(handler: ((p: BridgePong) => void) | null): void {
    this.driver.onPong(handler)
  }

  /** Mutual trust with `node`. */
  isTrusted(node: number): boolean {
    return this.admission.isTrusted(node)
  }

  networkVerdict(node: number, port: number, protocol: 'stream' | 'datagram' | 'ping', network: number, otherPort?: number): NetworkVerdict {
    const verdict = this.admission.networkVerdict(node, port, protocol, network, otherPort)
    // The TUN refuses at once on this verdict; if our view was stale, the program's retry finds it fresh.
    if (verdict !== null) this.admission.networkMiss(network)
    return verdict
  }

  /** Hostname, Pilot address or overlay IPv6 → node; PT_NAME_NOT_FOUND when there is none. */
  resolve(target: string): Promise<ResolveResult> {
    return this.lookups.names.resolve(target)
  }

  /**
   * What we send in a network obeys the network's rules as the peer will
   * apply them: refused here at once rather than by the peer's RST (or, for
   * a datagram, its silence). A peer our view does not list yet is left to
   * the peer to judge (it may have just joined).
   */
  private checkNetwork(remote: PilotAddress, port: number, protocol: 'stream' | 'datagram' | 'ping'): void {
    const verdict = this.admission.networkVerdict(remote.node, port, protocol, remote.network)
    if (verdict === null) return
    this.admission.networkMiss(remote.network)
    if (verdict === 'notMember') return
    const addr = formatAddress(remote)
    if (verdict === 'notJoined') {
      throw new DaemonError(DaemonErrorCode.NETWORK_REFUSED, `cannot reach ${addr}: this node is not a member of network ${remote.network}`, {
        hint: `join it first: pilot-tun network join ${remote.network}`,
      })
    }
    throw new DaemonError(DaemonErrorCode.NETWORK_REFUSED, `port ${port} is not allowed in network ${remote.network}`, {
      hint: `see the network's allowed ports: pilot-tun network policy ${remote.network}`,
    })
  }

  /** `host.netname.pilot`: a member of a network we are in, or null. */
  async resolveInNetwork(netname: string, host: string): Promise<{ network: number; node_id: number } | null> {
    return this.lookups.networks === undefined ? null : this.lookups.networks.resolveInNetwork(netname, host)
  }

  private dialError(remote: PilotAddress, port: number, err: Error): Error {
    if (!(err instanceof SessionError)) return err
    const addr = formatAddress(remote)
    if (remote.network !== 0) this.admission.networkMiss(remote.network) // the peer's view and ours may differ
    if (err.reason === 'refused' && remote.network !== 0) {
      return new DaemonError(DaemonErrorCode.NETWORK_REFUSED, `${addr} refused the connection to port ${port}`, {
        hint: `we may not be a member of network ${remote.network} in its view, the port may be closed by the network's policy, or nothing listens there`,
        cause: err,
      })
    }
    if (err.reason === 'refused') {
      if (port !== TRUST_PORT && !this.admission.isTrusted(remote.node)) {
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
}

function noop(): void {}
