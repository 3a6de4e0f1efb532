/**
 * Pilot addresses (docs/wire.md §2): 48 bits = network (u16) || node (u32).
 *
 * Text form follows the Go reference, which is what peers and the registry
 * accept: `N:NNNN.HHHH.LLLL`, N decimal, NNNN the same network in 4 hex digits,
 * HHHH/LLLL the node's upper and lower 16 bits. Output is upper-case.
 */
import { DecodeError } from '../errors.js'

export interface PilotAddress {
  readonly network: number
  readonly node: number
}

export const ADDRESS_SIZE = 6
export const BROADCAST_NODE = 0xffffffff

export const UNSPECIFIED_ADDRESS: PilotAddress = Object.freeze({ network: 0, node: 0 })
/** Nominal only: the Go registry hands out node IDs from 1, so these collide with real nodes (§2.4). */
export const REGISTRY_ADDRESS: PilotAddress = Object.freeze({ network: 0, node: 1 })
export const BEACON_ADDRESS: PilotAddress = Object.freeze({ network: 0, node: 2 })
export const NAMESERVER_ADDRESS: PilotAddress = Object.freeze({ network: 0, node: 3 })

const TWO_POW_32 = 0x1_0000_0000

export function makeAddress(network: number, node: number): PilotAddress {
  if (!Number.isInteger(network) || network < 0 || network > 0xffff) {
    throw new DecodeError('bad-address', `network ID ${network} is not a u16`)
  }
  if (!Number.isInteger(node) || node < 0 || node > 0xffffffff) {
    throw new DecodeError('bad-address', `node ID ${node} is not a u32`)
  }
  return { network, node }
}

/** A 48-bit number that identifies the address; a cheap Map key for hot paths. */
export function addressKey(a: PilotAddress): number {
  return a.network * TWO_POW_32 + a.node
}

export function addressFromKey(key: number): PilotAddress {
  return { network: Math.floor(key / TWO_POW_32), node: key % TWO_POW_32 }
}

export function addressEquals(a: PilotAddress, b: PilotAddress): boolean {
  return a.network === b.network && a.node === b.node
}

export function isBroadcast(a: PilotAddress): boolean {
  return a.node === BROADCAST_NODE
}

export function isUnspecified(a: PilotAddress): boolean {
  return a.network === 0 && a.node === 0
}

export function broadcastAddress(network: number): PilotAddress {
  return makeAddress(network, BROADCAST_NODE)
}

export function writeAddress(a: PilotAddress, out: Uint8Array, offset: number): void {
  if (out.length - offset < ADDRESS_SIZE) throw new DecodeError('short-buffer', 'no room for a 6-byte address')
  out[offset] = a.network >>> 8
  out[offset + 1] = a.network & 0xff
  out[offset + 2] = a.node >>> 24
  out[offset + 3] = (a.node >>> 16) & 0xff
  out[offset + 4] = (a.node >>> 8) & 0xff
  out[offset + 5] = a.node & 0xff
}

export function readAddress(buf: Uint8Array, offset: number): PilotAddress {
  if (offset < 0 || buf.length - offset < ADDRESS_SIZE) {
    throw new DecodeError('short-buffer', `need 6 bytes for an address, have ${Math.max(0, buf.length - offset)}`)
  }
  return {
    network: (buf[offset]! << 8) | buf[offset + 1]!,
    node: ((buf[offset + 2]! << 24) | (buf[offset + 3]! << 16) | (buf[offset + 4]! << 8) | buf[offset + 5]!) >>> 0,
  }
}

function hex4(n: number): string {
  return n.toString(16).toUpperCase().padStart(4, '0')
}

export function formatAddress(a: PilotAddress): string {
  return `${a.network}:${hex4(a.network)}.${hex4(a.node >>> 16)}.${hex4(a.node & 0xffff)}`
}

const DECIMAL = /^[0-9]+$/
const HEX4 = /^[0-9a-fA-F]{4}$/

/** Parses `N:NNNN.HHHH.LLLL` with the Go reference's rules (§2.2). */
export function parseAddress(text: string): PilotAddress {
  if (typeof text !== 'string') throw new DecodeError('bad-address', 'address must be a string')
  const colon = text.indexOf(':')
  if (colon < 0 || text.indexOf(':', colon + 1) >= 0) {
    throw new DecodeError('bad-address', `"${clip(text)}": expected exactly one ':' as in 0:0000.0000.002A`)
  }
  const netText = text.slice(0, colon)
  const groups = text.slice(colon + 1).split('.')
  if (!DECIMAL.test(netText)) throw new DecodeError('bad-address', `"${clip(text)}": network must be decimal`)
  const network = Number.parseInt(netText, 10)
  if (network > 0xffff) throw new DecodeError('bad-address', `"${clip(text)}": network ${netText} does not fit in 16 bits`)
  if (groups.length !== 3) throw new DecodeError('bad-address', `"${clip(text)}": expected three 4-digit hex groups`)
  for (const g of groups) {
    if (!HEX4.test(g)) throw new DecodeError('bad-address', `"${clip(text)}": group "${clip(g)}" is not 4 hex digits`)
  }
  const netHex = Number.parseInt(groups[0]!, 16)
  if (netHex !== network) {
    throw new DecodeError('bad-address', `"${clip(text)}": hex network ${groups[0]} does not match decimal ${netText}`)
  }
  const node = ((Number.parseInt(groups[1]!, 16) << 16) | Number.parseInt(groups[2]!, 16)) >>> 0
  return { network, node }
}

export interface SocketAddress {
  readonly address: PilotAddress
  readonly port: number
}

export function formatSocketAddress(s: SocketAddress): string {
  return `${formatAddress(s.address)}:${s.port}`
}

/** `<address>:<port>`, split at the last ':' (§2.3). */
export function parseSocketAddress(text: string): SocketAddress {
  if (typeof text !== 'string') throw new DecodeError('bad-address', 'socket address must be a string')
  const colon = text.lastIndexOf(':')
  if (colon < 0) throw new DecodeError('bad-port', `"${clip(text)}": missing ':<port>'`)
  const portText = text.slice(colon + 1)
  if (!DECIMAL.test(portText)) throw new DecodeError('bad-port', `"${clip(text)}": port must be decimal`)
  const port = Number.parseInt(portText, 10)
  if (port > 0xffff) throw new DecodeError('bad-port', `"${clip(text)}": port ${portText} exceeds 65535`)
  return { address: parseAddress(text.slice(0, colon)), port }
}

function clip(s: string): string {
  return s.length > 40 ? `${s.slice(0, 40)}…` : s
}
