/**
 * Who may move a known node's `real_addr` (hardening of docs/wire.md §10.5.1).
 *
 * `register` is unsigned (Go daemons send it so) and public keys are public
 * (`lookup` shows them), so a `register` carrying a known key proves nothing.
 * It still gets the node's ID back, as in Go, and brings an offline node back
 * online, but a *changed* address (or owner) is only committed once the node
 * has signed a request on the same connection:
 *   - on a connection where the node already signed something, at once (our
 *     daemon re-registers on its long-lived connection when its endpoint moves);
 *   - otherwise the change waits on the connection, and the node's next signed
 *     request there commits it — in practice the heartbeat (Go: within 30 s)
 *     or the set_visibility/set_hostname/poll_handshakes that follow a register.
 * The TCP source IP of the connection is what `real_addr` is made from, so a
 * signature on that connection is what ties the key to that address. No new
 * field on the wire. A recorded signature can still be replayed on another
 * connection (challenges carry no nonce, §17 item 10); only TLS would stop that.
 */
import type { NodeRecord, RegistryTx } from './store-api.js'

/** What one connection has shown; the server keeps one per connection, so it is bounded by the connection count. */
export interface ConnectionState {
  /** The node that most recently signed a request on this connection; 0 for none. */
  provenNode: number
  /** The newest change a `register` asked for here that no signature has backed yet. */
  pending: PendingClaim | null
}

export interface PendingClaim {
  nodeId: number
  realAddr: string
  owner: string | null
}

export function newConnectionState(): ConnectionState {
  return { provenNode: 0, pending: null }
}

/**
 * A `register` for known node `node` asking for `realAddr` (and `owner`, when
 * given). Revives or refreshes the node; applies the address and owner only if
 * they are unchanged or this connection speaks for the node, else keeps them
 * pending on the connection. Returns the node as stored now.
 */
export async function claimRegistration(
  store: RegistryTx,
  node: NodeRecord,
  claim: { realAddr: string; owner: string | null; now: number },
  connection: ConnectionState,
): Promise<NodeRecord> {
  const owner = claim.owner ?? node.owner
  const changes = claim.realAddr !== node.realAddr || owner !== node.owner
  if (!changes || connection.provenNode === node.id || node.realAddr === null) {
    if (connection.pending?.nodeId === node.id) connection.pending = null
    return store.reviveNode(node.id, { owner, realAddr: claim.realAddr, now: claim.now })
  }
  connection.pending = { nodeId: node.id, realAddr: claim.realAddr, owner }
  return store.reviveNode(node.id, { owner: node.owner, realAddr: node.realAddr, now: claim.now })
}

/**
 * `node` just signed a request on this connection: from now on the connection
 * speaks for it, and a change its `register` left pending here is committed.
 * Returns the node as stored now.
 */
export async function confirmSigner(store: RegistryTx, node: NodeRecord, connection: ConnectionState): Promise<NodeRecord> {
  connection.provenNode = node.id
  const pending = connection.pending
  if (pending === null || pending.nodeId !== node.id) return node
  await store.setEndpoint(node.id, pending.realAddr, pending.owner)
  if (connection.pending === pending) connection.pending = null
  return (await store.getNode(node.id)) ?? node
}
