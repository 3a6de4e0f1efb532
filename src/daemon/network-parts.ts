/**
 * The daemon's network pieces (issue 13), built in one step once the node is
 * registered: the `NetworkView` (its source: `lookup` of ourselves for the
 * IDs, `network_info` for each), the local trust log, and the
 * `host.netname.pilot` lookup the TUN's DNS responder asks.
 */
import type { Identity } from '../crypto/identity.js'
import type { Logger } from '../logger.js'
import type { RegistryClient } from '../registry/client.js'
import { BACKBONE_NETWORK } from '../registry/network-types.js'
import { NetworkOps, type NetworkRegistry } from './network-ops.js'
import { decodeInviteText, encodeInviteText, verifyAuditChain } from './network-deps.js'
import { NetworkView } from './network-view.js'
import { TrustLog } from './trust-log.js'

export interface NetworkParts {
  readonly networks: NetworkView
  readonly networkRegistry: NetworkRegistry
  readonly trustLog: TrustLog
  /** For NodeStreams (the BridgeHost): `host.netname.pilot`. */
  resolveInNetwork(netname: string, host: string): Promise<{ network: number; node_id: number } | null>
}

export function buildNetworkParts(o: {
  client: Pick<RegistryClient, 'lookup'> & NetworkRegistry
  /** The registry's network methods; default the client itself. */
  networkRegistry?: NetworkRegistry
  nodeId: number
  stateDir: string
  identity: Identity
  refreshMs?: number
  logger: Logger
  /** hostname | address | id → node (the daemon's target resolver). */
  resolveTarget: (target: string) => Promise<{ node: number }>
}): NetworkParts {
  const { client, nodeId, logger } = o
  const networkRegistry: NetworkRegistry = o.networkRegistry ?? client
  const networks = new NetworkView({
    source: {
      myNetworks: async () => (await client.lookup(nodeId)).networks.filter((n) => n !== BACKBONE_NETWORK),
      info: (networkId) => networkRegistry.networkInfo(nodeId, networkId),
    },
    logger: logger.child({ component: 'networks' }),
    refreshMs: o.refreshMs ?? 10_000,
    selfId: nodeId,
  })
  const trustLog = new TrustLog({ stateDir: o.stateDir, identity: o.identity, nodeId: () => nodeId, logger })
  networks.onChange((c) => {
    // Joining a network admits its members (policy permitting) without pairwise trust: a trust decision.
    for (const id of c.joined) void trustLog.append('network-trust', 0, `joined network ${id} (${networks.get(id)?.name ?? '?'}): its members are admitted`)
    for (const id of c.left) void trustLog.append('network-trust', 0, `left network ${id}: its members are no longer admitted`)
  })
  const resolveHost = async (h: string): Promise<number | null> => {
    try {
      return (await o.resolveTarget(h)).node
    } catch {
      return null
    }
  }
  return {
    networks,
    networkRegistry,
    trustLog,
    resolveInNetwork: (netname, host) => networks.resolveInNetwork(netname, host, resolveHost),
  }
}

/** The control socket's network and audit commands over the node's parts. */
export function buildNetworkOps(node: {
  networkRegistry: NetworkRegistry
  networks: NetworkView
  nodeId: number
  names: { resolveTarget(target: string): Promise<{ node: number }> }
  trustLog: TrustLog
}): NetworkOps {
  return new NetworkOps({
    registry: node.networkRegistry,
    view: node.networks,
    selfId: node.nodeId,
    resolveNode: async (target) => (await node.names.resolveTarget(target)).node,
    verify: verifyAuditChain,
    inviteText: { encode: encodeInviteText, decode: decodeInviteText },
    trustLog: node.trustLog,
  })
}
