/**
 * What the TUN bridge needs from the daemon, as a small interface (the
 * daemon implements it structurally; tests can fake it). tun/ sits below
 * daemon/ in the layering, so nothing here imports the daemon.
 */
import type { Duplex } from 'node:stream'
import type { PilotAddress } from '../protocol/address.js'
import { HEADER_SIZE } from '../protocol/header.js'
import { PILS_OVERHEAD } from '../protocol/tunnel-frames.js'

/** A stream SYN to a port without a listener, offered to the bridge. Call `accept` or `refuse` exactly once. */
export interface IncomingStreamRequest {
  readonly remote: PilotAddress
  readonly remotePort: number
  readonly localPort: number
  /** Accepts the Pilot SYN; the returned stream is connected once the peer's ACK arrives. */
  accept(): Duplex
  /** Answers the Pilot SYN with RST. */
  refuse(): void
}

export interface BridgeDatagram {
  from: PilotAddress
  fromPort: number
  toPort: number
  data: Uint8Array
}

export interface BridgePong {
  readonly remote: PilotAddress
  readonly id: number
}

export type NetworkVerdict = 'notJoined' | 'notMember' | 'portNotAllowed' | null

export interface BridgeHost {
  /** Our own Pilot address (A is its mapped IPv6 address). */
  readonly address: PilotAddress
  /**
   * Resolves with a connected stream, or rejects with an error whose `code` is
   * PT_TRUST_REQUIRED, PT_CONNECTION_REFUSED, PT_PEER_UNREACHABLE (or another).
   */
  openStream(node: PilotAddress, port: number): Promise<Duplex>
  /** Stream SYNs (from admitted nodes) to ports without a listener; null restores RST at once. */
  setDefaultStreamHandler(handler: ((incoming: IncomingStreamRequest) => void) | null): void
  sendDatagram(node: PilotAddress, port: number, data: Uint8Array, sourcePort?: number): number
  onDatagram(handler: ((d: BridgeDatagram) => void) | null): void
  /** Control ping (Pilot port 0); returns the ping id that the pong carries. */
  sendPing(node: PilotAddress): number
  onPong(handler: ((p: BridgePong) => void) | null): void
  /** Mutual trust with `node` (datagrams to others are refused by the peer). */
  isTrusted(node: number): boolean
  /**
   * The rules of network `network` (≠ 0) for what we send: null = allowed,
   * `notJoined` = we are not a member, `notMember` = our view does not list
   * the peer (it may have just joined: the peer decides), `portNotAllowed` =
   * the network's policy closes `port` (and, for datagrams, `otherPort`: a
   * reply from an allowed port passes).
   */
  networkVerdict(node: number, port: number, protocol: 'stream' | 'datagram' | 'ping', network: number, otherPort?: number): NetworkVerdict
  /** Hostname → node; rejects with code PT_NAME_NOT_FOUND when there is none. */
  resolve(target: string): Promise<{ node_id: number }>
  /**
   * `host.netname.pilot` (issue 13): the node `host` in the network named
   * `netname`, when we and it are members; null otherwise (NXDOMAIN).
   * Absent = no networks (every such name is NXDOMAIN).
   */
  resolveInNetwork?(netname: string, host: string): Promise<{ network: number; node_id: number } | null>
}

/** The underlay's largest UDP payload (IPv4: 65,535 − 20 − 8). */
export const UNDERLAY_MAX_UDP_PAYLOAD = 65_507
/**
 * Largest UDP payload one Pilot datagram can carry: the underlay limit minus
 * the PILS framing (20-byte header + 16-byte tag) and the 34-byte Pilot
 * header, and never more than the header's 16-bit payload length.
 * 65,507 − 36 − 34 = 65,437.
 */
export const MAX_BRIDGED_UDP_PAYLOAD = Math.min(0xffff, UNDERLAY_MAX_UDP_PAYLOAD - PILS_OVERHEAD - HEADER_SIZE)
/** The MTU announced in Packet Too Big: the largest IPv6/UDP packet that fits one Pilot datagram. */
export const BRIDGED_UDP_MTU = MAX_BRIDGED_UDP_PAYLOAD + 48
