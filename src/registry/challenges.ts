/**
 * The ASCII strings a node signs for registry requests (docs/wire.md §10.3). Node
 * IDs are plain decimal. Client and server build them from the same functions
 * so they cannot drift apart.
 */
export const RegistryChallenge = {
  heartbeat: (nodeId: number) => `heartbeat:${nodeId}`,
  deregister: (nodeId: number) => `deregister:${nodeId}`,
  setVisibility: (nodeId: number) => `set_visibility:${nodeId}`,
  setHostname: (nodeId: number) => `set_hostname:${nodeId}`,
  setTags: (nodeId: number) => `set_tags:${nodeId}`,
  setTaskExec: (nodeId: number) => `set_task_exec:${nodeId}`,
  pollHandshakes: (nodeId: number) => `poll_handshakes:${nodeId}`,
  resolve: (requesterId: number, nodeId: number) => `resolve:${requesterId}:${nodeId}`,
  reportTrust: (nodeId: number, peerId: number) => `report_trust:${nodeId}:${peerId}`,
  revokeTrust: (nodeId: number, peerId: number) => `revoke_trust:${nodeId}:${peerId}`,
  punch: (nodeA: number, nodeB: number) => `punch:${nodeA}:${nodeB}`,
  /** Signed by the sender of the request. */
  requestHandshake: (fromNodeId: number, toNodeId: number) => `handshake:${fromNodeId}:${toNodeId}`,
  /** Signed by the responder; responder first. */
  respondHandshake: (nodeId: number, peerId: number) => `respond:${nodeId}:${peerId}`,
  /** Signed with the node's current (old) key. */
  rotateKey: (nodeId: number) => `rotate:${nodeId}`,
  /** Every network write (issue 13): `subject` 0 when none, `networkId` 0 for create. */
  network: (c: { action: string; nodeId: number; networkId: number; subject: number; detail: string; timestamp: number; nonce: string }) =>
    `pilot-net:v1:${c.action}:${c.nodeId}:${c.networkId}:${c.subject}:${c.detail}:${c.timestamp}:${c.nonce}`,
  /** Signed by the inviter (an owner or admin of the network). */
  invite: (i: { networkId: number; inviterId: number; inviteeId: number; expires: number; nonce: string }) =>
    `pilot-invite:v1:${i.networkId}:${i.inviterId}:${i.inviteeId}:${i.expires}:${i.nonce}`,
  listNodes: (requesterId: number, networkId: number) => `list_nodes:${requesterId}:${networkId}`,
  networkInfo: (nodeId: number, networkId: number) => `network_info:${nodeId}:${networkId}`,
  auditLog: (nodeId: number, networkId: number) => `audit_log:${nodeId}:${networkId}`,
} as const
