/**
 * What the control socket can ask of a running daemon. The daemon implements
 * `DaemonControl`; the control server exposes each method as a request type;
 * the CLI prints the results (as-is with --json). Field names are snake_case
 * because they are the JSON users see.
 *
 * TARGET arguments accept a hostname, a Pilot address (N:NNNN.HHHH.LLLL) or a
 * mapped IPv6 address.
 */
import type { TaskControl } from '../services/tasks/task-api.js'

export type PathKind = 'direct' | 'punched' | 'relay' | 'none'

export interface DaemonStatus {
  version: string
  node_id: number
  address: string
  ipv6: string
  hostname: string | null
  public: boolean
  uptime_s: number
  /** Our UDP socket. */
  listen: string
  /** Our endpoint as the beacon sees it, when known. */
  public_endpoint: string | null
  /** `address` as given (one or several front ends); `front_end` the one in use or dialled next. */
  registry: {
    address: string
    front_end: string
    connected: boolean
    last_heartbeat_s_ago: number | null
    /** The pinned registry certificate (`--registry-tls`, issue 15); null = plaintext TCP. */
    tls_pin?: string | null
  }
  /** `of`: the whole `--beacon` list when it names several (`address` is the one this node uses, by node ID). */
  beacon: { address: string | null; of?: string[] }
  kdf: 'auto' | 'hkdf' | 'legacy'
  auto_accept: boolean
  peers: number
  connections: number
  /** Null when trust.json holds every trust change; else why the last write failed (it is retried, the daemon acts on the change already). */
  trust_unsaved: string | null
  /**
   * How packets are processed: AES-GCM in the data-path addon ('openssl') or node:crypto
   * ('node'); UDP out in sendmmsg batches (+ GSO) or one dgram send each; UDP in through
   * recvmmsg (+ GRO) or node's dgram. Optional: absent in daemons built without it.
   */
  datapath?: { aead: 'openssl' | 'node'; send: 'sendmmsg+gso' | 'sendmmsg' | 'dgram'; receive: 'recvmmsg+gro' | 'recvmmsg' | 'dgram' }
  /**
   * The networks this node is a member of (issue 13), as its view last saw
   * them: our address and IPv6 there, our role, the ports open inside.
   * Optional: absent in daemons built without networks.
   */
  networks?: Array<{ id: number; name: string; role: string; address: string; ipv6: string; allowed_ports: number[]; members: number }>
  /** Flows in networks this node refused, by cause (we are not in the network, the peer is not, the port is closed). */
  network_refusals?: { not_joined: number; not_member: number; port_not_allowed: number }
  /** Filled in by the TUN front door; null with --no-tun. */
  tun: { interface: string; address: string; prefix: string; mtu: number; dns: string } | null
}

export interface PeerStatus {
  node_id: number
  address: string
  hostname: string | null
  path: PathKind
  endpoint: string | null
  rtt_ms: number | null
  kdf: 'hkdf' | 'legacy' | null
  /** The variant was seen to open the peer's frames (learned in `--kdf auto`, docs/wire.md §5.4). */
  kdf_confirmed: boolean
  authenticated: boolean
  trusted: boolean
  bytes_in: number
  bytes_out: number
  last_seen_s_ago: number | null
}

export interface PingReply {
  address: string
  hostname: string | null
  rtt_ms: number
  path: PathKind
}

export interface ResolveResult {
  address: string
  node_id: number
  ipv6: string
  hostname: string | null
}

export interface TrustedPeer {
  node_id: number
  address: string
  approved_at: string
  mutual: boolean
}

export interface PendingRequest {
  node_id: number
  address: string
  justification: string
  received_at: string
}

export interface TrustList {
  trusted: TrustedPeer[]
  pending: PendingRequest[]
  /** Requests we sent that were not answered yet. */
  outgoing: Array<{ node_id: number; address: string; sent_at: string }>
}

/** `task(command)` is the task service's (src/services/tasks/task-api.ts). */
export interface DaemonControl extends TaskControl {
  status(): Promise<DaemonStatus>
  peers(): Promise<PeerStatus[]>
  /** One echo round trip; rejects with PT_PING_TIMEOUT after `timeoutMs`. */
  ping(target: string, timeoutMs: number): Promise<PingReply>
  resolve(target: string): Promise<ResolveResult>
  trustRequest(target: string, reason: string): Promise<{ status: 'sent' | 'trusted'; node_id: number }>
  trustApprove(target: string): Promise<{ status: 'approved'; node_id: number }>
  trustReject(target: string, reason: string): Promise<{ status: 'rejected'; node_id: number }>
  trustRevoke(target: string): Promise<{ status: 'revoked'; node_id: number }>
  trustList(): Promise<TrustList>
  setHostname(name: string): Promise<{ hostname: string }>
  /** Starts a clean shutdown; resolves once it has begun. */
  shutdown(): Promise<void>
}
