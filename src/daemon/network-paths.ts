/**
 * Networks on the data path: keeps what the daemon enforces and what pilot0
 * carries in step with its view of the registry (network-view.ts).
 *
 *   joined N   → pilot0 gets A_N = prefix:N::node and the route prefix:N::/64
 *   left N     → every flow in N ends (RST), then the address and route go
 *   changed N  → flows the new members or allowed_ports no longer admit end
 *
 * Admission (admission.ts) reads the view directly; this module only reacts
 * to its changes. The order on leave matters: flows end while A_N still
 * exists, so the kernel delivers the resets to the programs.
 */
import type { Logger } from '../logger.js'
import type { StreamConnection } from '../session/stream.js'
import type { NetworkMembership, TrustAdmission } from './admission.js'
import type { SessionDriver } from './session-driver.js'

/** What this module needs of the daemon's network view. */
export interface NetworkViewLike {
  get(networkId: number): object | undefined
  isMember(networkId: number, node: number): boolean
  portAllowed(networkId: number, port: number): boolean
  refresh(networkId?: number): Promise<void>
  refreshSoon(networkId: number): void
  onChange(listener: (change: { joined: number[]; left: number[]; changed: number[] }) => void | Promise<void>): () => void
}

/** The interface side (the TUN front door; absent without a TUN). */
export interface NetworkInterfaces {
  addNetwork(network: number): Promise<void>
  removeNetwork(network: number): Promise<void>
}

export interface NetworkPathStats {
  /** Flows ended because we left their network or its rules stopped admitting them. */
  flowsEnded: number
  /** Address/route changes on pilot0 that failed (logged). */
  interfaceErrors: number
}

export class NetworkPaths {
  private readonly st: NetworkPathStats = { flowsEnded: 0, interfaceErrors: 0 }
  private readonly unsubscribe: () => void
  /** Networks we are in, as the view's changes said (the interface may come later). */
  private readonly current = new Set<number>()

  constructor(
    private readonly view: NetworkViewLike,
    private readonly driver: SessionDriver,
    admission: TrustAdmission,
    private iface: NetworkInterfaces | null,
    private readonly logger: Logger,
    /** Called with a network's members when we join it or it changes (the tunnel prefetches their keys). */
    private readonly onMembers: ((network: number) => void) | null = null,
  ) {
    admission.useNetworks(membershipOf(view))
    this.unsubscribe = view.onChange((c) => this.apply(c))
  }

  /**
   * The TUN interface, once it exists (the view may have reported networks
   * before): every network joined so far gets its address and route now.
   */
  async attachInterfaces(iface: NetworkInterfaces): Promise<void> {
    this.iface = iface
    for (const n of this.current) await this.interfaceStep(n, 'add')
  }

  stats(): NetworkPathStats {
    return { ...this.st }
  }

  close(): void {
    this.unsubscribe()
  }

  private async apply(change: { joined: number[]; left: number[]; changed: number[] }): Promise<void> {
    for (const n of change.left) {
      this.current.delete(n)
      this.endFlows(n, () => false)
      await this.interfaceStep(n, 'remove')
    }
    for (const n of change.changed) {
      this.endFlows(n, (c) => this.stillAdmitted(n, c))
      this.onMembers?.(n)
    }
    for (const n of change.joined) {
      this.current.add(n)
      await this.interfaceStep(n, 'add')
      this.onMembers?.(n)
    }
  }

  /** A flow in `network` stays when its peer is a member and its service port (ours or theirs) is allowed. */
  private stillAdmitted(network: number, c: StreamConnection): boolean {
    const v = this.view
    return v.isMember(network, c.remoteAddress.node) && (v.portAllowed(network, c.localPort) || v.portAllowed(network, c.remotePort))
  }

  /** Resets the flows in `network` that `keep` rejects. */
  endFlows(network: number, keep: (c: StreamConnection) => boolean): number {
    const driver = this.driver
    const now = driver.now()
    let ended = 0
    for (const h of driver.streamHandles()) {
      const c = h.connection
      if (c.remoteAddress.network !== network || c.isClosed || keep(c)) continue
      c.reset(now)
      driver.touch(h)
      ended++
    }
    if (ended > 0) {
      driver.flushNow()
      this.st.flowsEnded += ended
      this.logger.info('ended flows in a network', { network, flows: ended })
    }
    return ended
  }

  private async interfaceStep(network: number, step: 'add' | 'remove'): Promise<void> {
    if (this.iface === null) return
    try {
      if (step === 'add') await this.iface.addNetwork(network)
      else await this.iface.removeNetwork(network)
    } catch (err) {
      this.st.interfaceErrors++
      this.logger.error(`could not ${step} network ${network}'s address on the TUN interface`, { error: (err as Error).message })
    }
  }
}

/** The view as admission asks it. */
function membershipOf(view: NetworkViewLike): NetworkMembership {
  return {
    has: (n) => view.get(n) !== undefined,
    isMember: (n, node) => view.isMember(n, node),
    portAllowed: (n, port) => view.portAllowed(n, port),
    refresh: (n) => view.refresh(n),
    refreshSoon: (n) => view.refreshSoon(n),
  }
}
