/**
 * The daemon's trust policy, as the session driver asks it about each stream
 * SYN, datagram and control ping (the driver only reports; this decides).
 * Private by default: only nodes with mutual trust get through, except stream
 * SYNs to the trust port 444 (how trust is asked for) and to ports opened to
 * everyone. Pings from untrusted nodes go unanswered unless `answerPings`
 * (`up --answer-pings`) is set.
 *
 * Networks (issue 13): a flow in network N ≠ 0 needs no pairwise trust. It is
 * admitted iff we and the sender are members of N (the daemon's view of the
 * registry) and, for streams and datagrams, the port is in N's
 * `allowed_ports` (empty = every port); pings need membership only. The trust
 * port 444 and ports opened to everyone are backbone things: in a network
 * they follow the network's rules like any other port.
 */
import type { AdmitPolicy, AdmitRecheck } from './session-driver.js'
import { TRUST_PORT } from './trust-service.js'

export interface TrustLookup {
  isTrusted(node: number): boolean
}

/** What admission needs of the daemon's network view (network-view.ts implements it). */
export interface NetworkMembership {
  /** We and `node` are both members of `networkId`. */
  isMember(networkId: number, node: number): boolean
  /** `port` is allowed in `networkId` (empty allowed_ports = every port). */
  portAllowed(networkId: number, port: number): boolean
  /** We are a member of `networkId`. */
  has(networkId: number): boolean
  /** Asks the registry about `networkId` now. */
  refresh(networkId: number): Promise<void>
  /** Asks again soon (rate limited): a decision our view may have made on stale data. */
  refreshSoon(networkId: number): void
}

/** Refusals of flows in a network other than the backbone, by cause. */
export interface NetworkRefusals {
  /** Addressed to a network we are not a member of. */
  notJoined: number
  /** The sender is not a member of the network (as far as the view knows). */
  notMember: number
  /** The port is not in the network's allowed_ports. */
  portNotAllowed: number
}

/** Re-asking the registry about one network on a miss: at most this often. */
const RECHECK_INTERVAL_MS = 1_000

export interface TrustAdmissionOptions {
  /** Answer control pings (port 0) from every node, not only trusted ones. Default false. */
  answerPings?: boolean
}

export class TrustAdmission {
  private readonly trust: TrustLookup
  /** Stream ports open to untrusted nodes too (`listenStreams(…, { allowUntrusted: true })`). */
  private readonly openPorts = new Set<number>()
  readonly answerPings: boolean
  private networks: NetworkMembership | null = null
  private readonly refused: NetworkRefusals = { notJoined: 0, notMember: 0, portNotAllowed: 0 }
  /** Per network: the refresh in flight, or when the last one ended. */
  private readonly rechecks = new Map<number, { inFlight: Promise<void> | null; endedAt: number }>()
  private readonly now: () => number

  /** The policy to give the session driver (bound once). */
  readonly admit: AdmitPolicy = (node, port, protocol, network, remotePort) => {
    if (network !== 0) return this.admitInNetwork(node, port, protocol, network, remotePort)
    if (protocol === 'stream' && (port === TRUST_PORT || this.openPorts.has(port))) return true
    if (protocol === 'ping' && this.answerPings) return true
    return this.trust.isTrusted(node)
  }

  /**
   * For the session driver: a network SYN from a node our view does not list
   * (it may have joined a moment ago) waits for one refresh of that network,
   * at most once a second per network. Networks we are not in, and ports the
   * policy closes, are refused at once.
   */
  readonly recheck: AdmitRecheck = (node, network) => {
    const view = this.networks
    if (view === null || !view.has(network) || view.isMember(network, node)) return null
    return this.refreshOnce(network)
  }

  /**
   * What we send into a network our view refuses (not joined, or a closed
   * port) may be refused on stale data (a policy changed a moment ago): one
   * refresh of that network, at most once a second, then the caller decides
   * again. Null when a refresh ran less than a second ago.
   */
  recheckOutbound(network: number): Promise<void> | null {
    return this.networks === null ? null : this.refreshOnce(network)
  }

  /** A data-path decision in `network` that may rest on stale data: refresh soon (rate limited). */
  networkMiss(network: number): void {
    this.networks?.refreshSoon(network)
  }

  private refreshOnce(network: number): Promise<void> | null {
    const view = this.networks!
    let r = this.rechecks.get(network)
    if (r === undefined) {
      r = { inFlight: null, endedAt: -Infinity }
      this.rechecks.set(network, r)
    }
    if (r.inFlight !== null) return r.inFlight
    if (this.now() - r.endedAt < RECHECK_INTERVAL_MS) return null
    const entry = r
    entry.inFlight = view.refresh(network).finally(() => {
      entry.inFlight = null
      entry.endedAt = this.now()
    })
    return entry.inFlight
  }

  constructor(trust: TrustLookup, options: TrustAdmissionOptions & { now?: () => number } = {}) {
    this.trust = trust
    this.answerPings = options.answerPings === true
    this.now = options.now ?? Date.now
  }

  /** Attaches the network view (the daemon creates it after registering). */
  useNetworks(view: NetworkMembership | null): void {
    this.networks = view
    this.rechecks.clear()
  }

  networkRefusals(): NetworkRefusals {
    return { ...this.refused }
  }

  /**
   * The network rules, also for what we send (the TUN bridge asks before a
   * packet leaves): null = allowed, else the cause.
   */
  networkVerdict(node: number, port: number, protocol: 'stream' | 'datagram' | 'ping', network: number, otherPort?: number): keyof NetworkRefusals | null {
    const view = this.networks
    if (view === null || !view.has(network)) return 'notJoined'
    if (!view.isMember(network, node)) return 'notMember'
    if (protocol === 'ping' || view.portAllowed(network, port)) return null
    // A datagram answering from an allowed port (a service's reply to an ephemeral port).
    if (protocol === 'datagram' && otherPort !== undefined && view.portAllowed(network, otherPort)) return null
    return 'portNotAllowed'
  }

  private admitInNetwork(node: number, port: number, protocol: 'stream' | 'datagram' | 'ping', network: number, otherPort?: number): boolean {
    const verdict = this.networkVerdict(node, port, protocol, network, otherPort)
    if (verdict === null) return true
    this.refused[verdict]++
    return false
  }

  /** Mutual trust with `node`. */
  isTrusted(node: number): boolean {
    return this.trust.isTrusted(node)
  }

  /** Stream SYNs to `port` are admitted from every node. */
  openToAll(port: number): void {
    this.openPorts.add(port)
  }

  /** `port` is back to trusted nodes only. */
  closeToAll(port: number): void {
    this.openPorts.delete(port)
  }
}
