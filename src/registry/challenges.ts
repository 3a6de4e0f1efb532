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
} as const
