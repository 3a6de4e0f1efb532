/**
 * Beacon messages (docs/wire.md §9.1): one type byte (< 0x10) and a fixed layout.
 *
 *   0x01 Discover       node_id u32                       (extra bytes ignored)
 *   0x02 DiscoverReply  ip_len u8 (4|16) || ip || port u16
 *   0x03 PunchRequest   requester_id u32 || target_id u32
 *   0x04 PunchCommand   ip_len u8 (4|16) || ip || port u16
 *   0x05 Relay          sender_id u32 || dest_id u32 || frame
 *   0x06 RelayDeliver   sender_id u32 || frame
 *   0x07 Sync           beacon_id u32 || count u16 || count x node_id u32
 *
 * Endpoints are `{ host, port }` with IPv4 dotted text or IPv6 text. An IPv4
 * address (also written IPv4-mapped, `::ffff:a.b.c.d`) travels as 4 bytes, as
 * in Go; so a 16-byte IPv4-mapped address on the wire decodes to dotted text and
 * re-encodes as 4 bytes. Fixed-layout messages ignore trailing bytes, like Go.
 * Relay frames are views into the datagram; on the send path write the 9- or
 * 5-byte header into headroom with `writeRelayHeader`/`writeRelayDeliverHeader`.
 */
import { DecodeError } from '../errors.js'
import { readU32, writeU32 } from '../bytes.js'
import { formatIpv6, isIpv4Mapped, parseIpv6 } from './ipv6-mapping.js'

export const BeaconType = {
  DISCOVER: 0x01,
  DISCOVER_REPLY: 0x02,
  PUNCH_REQUEST: 0x03,
  PUNCH_COMMAND: 0x04,
  RELAY: 0x05,
  RELAY_DELIVER: 0x06,
  SYNC: 0x07,
} as const
export type BeaconType = (typeof BeaconType)[keyof typeof BeaconType]

export interface Endpoint {
  /** IPv4 dotted text (`203.0.113.5`) or IPv6 text (`2001:db8::1`). */
  readonly host: string
  readonly port: number
}

export interface DiscoverMessage { readonly type: typeof BeaconType.DISCOVER; readonly nodeId: number }
export interface DiscoverReplyMessage { readonly type: typeof BeaconType.DISCOVER_REPLY; readonly endpoint: Endpoint }
export interface PunchRequestMessage { readonly type: typeof BeaconType.PUNCH_REQUEST; readonly requesterId: number; readonly targetId: number }
export interface PunchCommandMessage { readonly type: typeof BeaconType.PUNCH_COMMAND; readonly endpoint: Endpoint }
export interface RelayMessage { readonly type: typeof BeaconType.RELAY; readonly senderId: number; readonly destId: number; readonly frame: Uint8Array }
export interface RelayDeliverMessage { readonly type: typeof BeaconType.RELAY_DELIVER; readonly senderId: number; readonly frame: Uint8Array }
export interface SyncMessage { readonly type: typeof BeaconType.SYNC; readonly beaconId: number; readonly nodeIds: readonly number[] }

export type BeaconMessage =
  | DiscoverMessage
  | DiscoverReplyMessage
  | PunchRequestMessage
  | PunchCommandMessage
  | RelayMessage
  | RelayDeliverMessage
  | SyncMessage

export const RELAY_HEADER_SIZE = 9
export const RELAY_DELIVER_HEADER_SIZE = 5
export const SYNC_MAX_NODES = 0xffff

export function decodeBeaconMessage(buf: Uint8Array): BeaconMessage {
  if (buf.length === 0) throw new DecodeError('short-buffer', 'empty beacon message')
  const type = buf[0]!
  switch (type) {
    case BeaconType.DISCOVER:
      need(buf, 5, 'Discover')
      return { type, nodeId: readU32(buf, 1) }
    case BeaconType.DISCOVER_REPLY:
      return { type, endpoint: readEndpoint(buf, 1, 'DiscoverReply') }
    case BeaconType.PUNCH_REQUEST:
      need(buf, 9, 'PunchRequest')
      return { type, requesterId: readU32(buf, 1), targetId: readU32(buf, 5) }
    case BeaconType.PUNCH_COMMAND:
      return { type, endpoint: readEndpoint(buf, 1, 'PunchCommand') }
    case BeaconType.RELAY:
      need(buf, RELAY_HEADER_SIZE + 1, 'Relay') // a relay without a frame is meaningless
      return { type, senderId: readU32(buf, 1), destId: readU32(buf, 5), frame: buf.subarray(RELAY_HEADER_SIZE) }
    case BeaconType.RELAY_DELIVER:
      need(buf, RELAY_DELIVER_HEADER_SIZE + 1, 'RelayDeliver') // Go wants >= 5 bytes after the type
      return { type, senderId: readU32(buf, 1), frame: buf.subarray(RELAY_DELIVER_HEADER_SIZE) }
    case BeaconType.SYNC: {
      need(buf, 7, 'Sync')
      const count = (buf[5]! << 8) | buf[6]!
      need(buf, 7 + 4 * count, 'Sync')
      const nodeIds = new Array<number>(count)
      for (let i = 0; i < count; i++) nodeIds[i] = readU32(buf, 7 + 4 * i)
      return { type, beaconId: readU32(buf, 1), nodeIds }
    }
    default:
      throw new DecodeError('bad-type', `unknown beacon message type 0x${type.toString(16).padStart(2, '0')}`)
  }
}

/** Allocates the message's bytes. Relay frames are copied; use the header writers to avoid that. */
export function encodeBeaconMessage(msg: BeaconMessage): Buffer {
  switch (msg.type) {
    case BeaconType.DISCOVER: {
      const out = Buffer.allocUnsafe(5)
      out[0] = msg.type
      writeU32(out, 1, u32(msg.nodeId, 'node ID'))
      return out
    }
    case BeaconType.DISCOVER_REPLY:
    case BeaconType.PUNCH_COMMAND: {
      const ip = hostBytes(msg.endpoint.host)
      const port = u16(msg.endpoint.port, 'port')
      const out = Buffer.allocUnsafe(2 + ip.length + 2)
      out[0] = msg.type
      out[1] = ip.length
      out.set(ip, 2)
      out[2 + ip.length] = port >>> 8
      out[3 + ip.length] = port & 0xff
      return out
    }
    case BeaconType.PUNCH_REQUEST: {
      const out = Buffer.allocUnsafe(9)
      out[0] = msg.type
      writeU32(out, 1, u32(msg.requesterId, 'requester ID'))
      writeU32(out, 5, u32(msg.targetId, 'target ID'))
      return out
    }
    case BeaconType.RELAY: {
      nonEmpty(msg.frame, 'Relay')
      const out = Buffer.allocUnsafe(RELAY_HEADER_SIZE + msg.frame.length)
      writeRelayHeader(out, 0, msg.senderId, msg.destId)
      out.set(msg.frame, RELAY_HEADER_SIZE)
      return out
    }
    case BeaconType.RELAY_DELIVER: {
      nonEmpty(msg.frame, 'RelayDeliver')
      const out = Buffer.allocUnsafe(RELAY_DELIVER_HEADER_SIZE + msg.frame.length)
      writeRelayDeliverHeader(out, 0, msg.senderId)
      out.set(msg.frame, RELAY_DELIVER_HEADER_SIZE)
      return out
    }
    case BeaconType.SYNC: {
      const ids = msg.nodeIds
      if (ids.length > SYNC_MAX_NODES) throw new DecodeError('too-large', `Sync carries at most ${SYNC_MAX_NODES} node IDs, got ${ids.length}`)
      const out = Buffer.allocUnsafe(7 + 4 * ids.length)
      out[0] = msg.type
      writeU32(out, 1, u32(msg.beaconId, 'beacon ID'))
      out[5] = ids.length >>> 8
      out[6] = ids.length & 0xff
      for (let i = 0; i < ids.length; i++) writeU32(out, 7 + 4 * i, u32(ids[i]!, 'node ID'))
      return out
    }
    default:
      throw new DecodeError('bad-type', `unknown beacon message type ${(msg as { type: unknown }).type}`)
  }
}

/** Writes `0x05 || senderId || destId` at `offset` (the frame follows); returns 9. */
export function writeRelayHeader(out: Uint8Array, offset: number, senderId: number, destId: number): number {
  room(out, offset, RELAY_HEADER_SIZE)
  out[offset] = BeaconType.RELAY
  writeU32(out, offset + 1, u32(senderId, 'sender ID'))
  writeU32(out, offset + 5, u32(destId, 'destination ID'))
  return RELAY_HEADER_SIZE
}

/** Writes `0x06 || senderId` at `offset` (the frame follows); returns 5. */
export function writeRelayDeliverHeader(out: Uint8Array, offset: number, senderId: number): number {
  room(out, offset, RELAY_DELIVER_HEADER_SIZE)
  out[offset] = BeaconType.RELAY_DELIVER
  writeU32(out, offset + 1, u32(senderId, 'sender ID'))
  return RELAY_DELIVER_HEADER_SIZE
}

/** 4 bytes for IPv4 (dotted or IPv4-mapped IPv6 text), 16 for other IPv6. */
export function hostBytes(host: string): Uint8Array {
  if (typeof host !== 'string') throw new DecodeError('bad-address', 'endpoint host must be a string')
  const v4 = parseIpv4(host)
  if (v4 !== null) return v4
  if (!host.includes(':')) throw new DecodeError('bad-address', `"${host.slice(0, 48)}" is neither IPv4 nor IPv6`)
  const v6 = parseIpv6(host)
  return isIpv4Mapped(v6) ? v6.subarray(12) : v6
}

/** Dotted text for 4 bytes; for 16 bytes IPv6 text, or dotted text if IPv4-mapped. */
export function hostText(ip: Uint8Array): string {
  if (ip.length === 4) return `${ip[0]}.${ip[1]}.${ip[2]}.${ip[3]}`
  if (ip.length === 16) return isIpv4Mapped(ip) ? `${ip[12]}.${ip[13]}.${ip[14]}.${ip[15]}` : formatIpv6(ip)
  throw new DecodeError('bad-length', `an IP address is 4 or 16 bytes, got ${ip.length}`)
}

function readEndpoint(buf: Uint8Array, offset: number, name: string): Endpoint {
  need(buf, offset + 1, name)
  const ipLen = buf[offset]!
  if (ipLen !== 4 && ipLen !== 16) throw new DecodeError('bad-address', `${name}: ip_len must be 4 or 16, got ${ipLen}`)
  need(buf, offset + 1 + ipLen + 2, name)
  const ip = buf.subarray(offset + 1, offset + 1 + ipLen)
  const p = offset + 1 + ipLen
  return { host: hostText(ip), port: (buf[p]! << 8) | buf[p + 1]! }
}

/** Strict dotted quad (no leading zeros, each 0..255), or null if `text` is not one. */
function parseIpv4(text: string): Uint8Array | null {
  const parts = text.split('.')
  if (parts.length !== 4) return null
  const out = new Uint8Array(4)
  for (let i = 0; i < 4; i++) {
    const p = parts[i]!
    if (!/^(0|[1-9][0-9]{0,2})$/.test(p)) return null
    const v = Number(p)
    if (v > 255) return null
    out[i] = v
  }
  return out
}

function need(buf: Uint8Array, size: number, name: string): void {
  if (buf.length < size) throw new DecodeError('short-buffer', `${name} needs ${size} bytes, got ${buf.length}`)
}

function nonEmpty(frame: Uint8Array, name: string): void {
  if (!(frame instanceof Uint8Array) || frame.length === 0) throw new DecodeError('short-buffer', `${name} needs a non-empty frame`)
}

function room(out: Uint8Array, offset: number, size: number): void {
  if (!Number.isInteger(offset) || offset < 0 || out.length - offset < size) {
    throw new DecodeError('short-buffer', `need ${size} bytes at offset ${offset}, have ${Math.max(0, out.length - offset)}`)
  }
}

function u32(v: number, what: string): number {
  if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new DecodeError('bad-value', `${what} ${v} is not a u32`)
  return v
}

function u16(v: number, what: string): number {
  if (!Number.isInteger(v) || v < 0 || v > 0xffff) throw new DecodeError('bad-port', `${what} ${v} is not a u16`)
  return v
}
