/**
 * The records the registry store hands out, shared by both backends
 * (store.ts for SQLite, the PostgreSQL one) and by the interface between them
 * (store-api.ts). Kept apart from store.ts so the interface can name them
 * without importing the SQLite backend (no import cycles).
 */

export interface NodeRecord {
  id: number
  /** Standard base64 of the current 32-byte Ed25519 key. */
  publicKey: string
  owner: string | null
  /** `ip:port` or `[ipv6]:port`, as seen at the last registration. */
  realAddr: string | null
  isPublic: boolean
  hostname: string | null
  tags: string[]
  poloScore: number
  taskExec: boolean
  /** ms, from the server's clock. */
  lastSeen: number
  online: boolean
}

export interface HandshakeRequestRecord {
  fromNodeId: number
  justification: string
  /** Unix seconds. */
  timestamp: number
}

export interface HandshakeResponseRecord {
  fromNodeId: number
  accept: boolean
  /** Unix seconds. */
  timestamp: number
}

export interface BeaconRecord {
  id: number
  addr: string
  lastSeen: number
}

/** How a trust pair came about; kept for operators and audits. */
export type TrustOrigin = 'handshake' | 'mutual-report'

export interface TrustPairRecord {
  nodeA: number
  nodeB: number
  origin: TrustOrigin
  created: number
}

/** Keys found in `key_index`: the node that owns it and whether it is still that node's key. */
export interface KeyIndexEntry {
  nodeId: number
  retired: boolean
}
