/**
 * When does a trust pair exist? (Hardening of docs/wire.md §17 item 11.)
 *
 * In the Go reference one node's `report_trust` alone creates the pair that
 * lets it `resolve` the other's endpoint. Here a pair needs the consent of
 * both nodes, each given by a request that node signed:
 *
 *   - `report_trust(node → peer)`, or an accepting `respond_handshake` from
 *     node to peer, records "node trusts peer" (a trust report);
 *   - an outstanding `request_handshake(node → peer)` is node's consent too,
 *     for as long as it is not answered.
 *
 * What real Go daemons send still ends in a pair: the approving side sends
 * `respond_handshake(accept)` (answering the requester's pending request) and
 * `report_trust`; two daemons that approve each other directly on port 444
 * both send `report_trust`. Either side's `revoke_trust` removes the pair and
 * both reports, so one side re-reporting afterwards is unilateral again.
 */
import type { RegistryTx, TrustOrigin } from './store-api.js'

/** True if `from` has consented to trust `to`. */
export async function hasConsented(store: RegistryTx, from: number, to: number): Promise<boolean> {
  return (await store.hasTrustReport(from, to)) || (await store.hasHandshakeRequest(from, to))
}

/** Creates the pair if both sides have consented. Returns whether a pair exists afterwards. Call it inside a transaction. */
export async function establishIfMutual(store: RegistryTx, a: number, b: number, now: number): Promise<boolean> {
  if (await store.hasTrustPair(a, b)) return true
  if (!(await hasConsented(store, a, b)) || !(await hasConsented(store, b, a))) return false
  const origin: TrustOrigin =
    (await store.hasHandshakeRequest(a, b)) || (await store.hasHandshakeRequest(b, a)) ? 'handshake' : 'mutual-report'
  await store.addTrustPair(a, b, origin, now)
  return true
}

/**
 * May `requester` learn `target`'s endpoint? Yes for itself, for public
 * targets, for trusted pairs (§10.5.4), and for two members of a network
 * whose policy has members_resolve (issue 13).
 */
export async function mayResolve(store: RegistryTx, requester: number, target: number, targetIsPublic: boolean): Promise<boolean> {
  return (
    requester === target ||
    targetIsPublic ||
    (await store.hasTrustPair(requester, target)) ||
    (await store.networks.shareResolvableNetwork(requester, target))
  )
}
