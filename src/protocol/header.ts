/**
 * The 34-byte Pilot packet header (docs/wire.md §4) and its CRC-32.
 *
 *   off size field            off size field
 *    0   1   version<<4|flags  16   2   src port
 *    1   1   protocol          18   2   dst port
 *    2   2   payload length    20   4   seq
 *    4   6   src address       24   4   ack
 *   10   6   dst address       28   2   window (segments)
 *                              30   4   CRC-32 over header(CRC=0) || payload
 *
 * Hot-path shape: `PacketHeader` is a mutable object that callers reuse;
 * `decodePacket` fills it in place and `encodePacketInPlace` writes a header
 * in front of a payload that already sits in the buffer (headroom), so neither
 * allocates per packet.
 */
import { crc32 } from 'node:zlib'
import { DecodeError } from '../errors.js'
import type { PilotAddress } from './address.js'
import { readU32, writeU32 } from '../bytes.js'

export { readU32, writeU32 }

export const HEADER_SIZE = 34
export const PROTOCOL_VERSION = 1
export const MAX_PAYLOAD = 0xffff

export const Flag = { SYN: 0x1, ACK: 0x2, FIN: 0x4, RST: 0x8 } as const
export const Protocol = { STREAM: 0x01, DATAGRAM: 0x02, CONTROL: 0x03 } as const

const ZERO4 = new Uint8Array(4)

export class PacketHeader {
  version = PROTOCOL_VERSION
  flags = 0
  protocol: number = Protocol.STREAM
  payloadLength = 0
  srcNetwork = 0
  srcNode = 0
  dstNetwork = 0
  dstNode = 0
  srcPort = 0
  dstPort = 0
  seq = 0
  ack = 0
  window = 0
  checksum = 0

  static from(fields: Partial<PacketHeader>): PacketHeader {
    return Object.assign(new PacketHeader(), fields)
  }

  get src(): PilotAddress {
    return { network: this.srcNetwork, node: this.srcNode }
  }

  get dst(): PilotAddress {
    return { network: this.dstNetwork, node: this.dstNode }
  }

  setSrc(a: PilotAddress): this {
    this.srcNetwork = a.network
    this.srcNode = a.node
    return this
  }

  setDst(a: PilotAddress): this {
    this.dstNetwork = a.network
    this.dstNode = a.node
    return this
  }

  copyFrom(o: PacketHeader): this {
    this.version = o.version
    this.flags = o.flags
    this.protocol = o.protocol
    this.payloadLength = o.payloadLength
    this.srcNetwork = o.srcNetwork
    this.srcNode = o.srcNode
    this.dstNetwork = o.dstNetwork
    this.dstNode = o.dstNode
    this.srcPort = o.srcPort
    this.dstPort = o.dstPort
    this.seq = o.seq
    this.ack = o.ack
    this.window = o.window
    this.checksum = o.checksum
    return this
  }

  hasFlag(f: number): boolean {
    return (this.flags & f) !== 0
  }
}

/** CRC-32/IEEE over header-with-zeroed-CRC || payload, without mutating `buf`. */
export function packetChecksum(buf: Uint8Array, offset: number, payloadLength: number): number {
  let c = crc32(buf.subarray(offset, offset + 30))
  c = crc32(ZERO4, c)
  if (payloadLength > 0) c = crc32(buf.subarray(offset + HEADER_SIZE, offset + HEADER_SIZE + payloadLength), c)
  return c >>> 0
}

function writeHeaderFields(h: PacketHeader, out: Uint8Array, o: number, payloadLength: number): void {
  out[o] = ((h.version & 0x0f) << 4) | (h.flags & 0x0f)
  out[o + 1] = h.protocol & 0xff
  out[o + 2] = payloadLength >>> 8
  out[o + 3] = payloadLength & 0xff
  out[o + 4] = (h.srcNetwork >>> 8) & 0xff
  out[o + 5] = h.srcNetwork & 0xff
  writeU32(out, o + 6, h.srcNode)
  out[o + 10] = (h.dstNetwork >>> 8) & 0xff
  out[o + 11] = h.dstNetwork & 0xff
  writeU32(out, o + 12, h.dstNode)
  out[o + 16] = (h.srcPort >>> 8) & 0xff
  out[o + 17] = h.srcPort & 0xff
  out[o + 18] = (h.dstPort >>> 8) & 0xff
  out[o + 19] = h.dstPort & 0xff
  writeU32(out, o + 20, h.seq)
  writeU32(out, o + 24, h.ack)
  out[o + 28] = (h.window >>> 8) & 0xff
  out[o + 29] = h.window & 0xff
}

/**
 * Writes the header at `offset` for a payload of `payloadLength` bytes that is
 * already in place at `offset + 34`, then the CRC. Sets `h.payloadLength` and
 * `h.checksum`. Returns the packet's total size.
 */
export function encodePacketInPlace(h: PacketHeader, out: Uint8Array, offset: number, payloadLength: number): number {
  if (payloadLength < 0 || payloadLength > MAX_PAYLOAD) {
    throw new DecodeError('too-large', `payload of ${payloadLength} bytes exceeds ${MAX_PAYLOAD}`)
  }
  const total = HEADER_SIZE + payloadLength
  if (offset < 0 || out.length - offset < total) {
    throw new DecodeError('short-buffer', `need ${total} bytes to encode the packet, have ${out.length - offset}`)
  }
  writeHeaderFields(h, out, offset, payloadLength)
  const c = packetChecksum(out, offset, payloadLength)
  writeU32(out, offset + 30, c)
  h.payloadLength = payloadLength
  h.checksum = c
  return total
}

/** Copies `payload` behind the header into `out` at `offset`. Returns bytes written. */
export function encodePacketInto(h: PacketHeader, payload: Uint8Array, out: Uint8Array, offset: number): number {
  if (payload.length > MAX_PAYLOAD) throw new DecodeError('too-large', `payload of ${payload.length} bytes exceeds ${MAX_PAYLOAD}`)
  if (offset < 0 || out.length - offset < HEADER_SIZE + payload.length) {
    throw new DecodeError('short-buffer', `need ${HEADER_SIZE + payload.length} bytes to encode the packet`)
  }
  out.set(payload, offset + HEADER_SIZE)
  return encodePacketInPlace(h, out, offset, payload.length)
}

/** Allocates and returns a complete packet. For tests and the control plane. */
export function encodePacket(h: PacketHeader, payload: Uint8Array = ZERO4.subarray(0, 0)): Buffer {
  const out = Buffer.allocUnsafe(HEADER_SIZE + payload.length)
  encodePacketInto(h, payload, out, 0)
  return out
}

/**
 * Parses the packet at `buf[offset..]` into `into` and verifies its CRC
 * (§4.2: bytes beyond 34 + payload length are ignored). Throws `DecodeError`
 * with reason short-buffer, bad-length or bad-crc. The version is not checked
 * here (Go never checks it); the session layer applies §15.1.
 */
export function decodePacket(buf: Uint8Array, offset: number, into: PacketHeader): PacketHeader {
  const avail = buf.length - offset
  if (offset < 0 || avail < HEADER_SIZE) {
    throw new DecodeError('short-buffer', `packet needs ${HEADER_SIZE} header bytes, have ${Math.max(0, avail)}`)
  }
  const o = offset
  const payloadLength = (buf[o + 2]! << 8) | buf[o + 3]!
  if (avail < HEADER_SIZE + payloadLength) {
    throw new DecodeError('bad-length', `header announces ${payloadLength} payload bytes, only ${avail - HEADER_SIZE} present`)
  }
  const stored = readU32(buf, o + 30)
  const computed = packetChecksum(buf, o, payloadLength)
  if (stored !== computed) {
    throw new DecodeError('bad-crc', `CRC mismatch: packet says ${hex8(stored)}, computed ${hex8(computed)}`)
  }
  into.version = buf[o]! >>> 4
  into.flags = buf[o]! & 0x0f
  into.protocol = buf[o + 1]!
  into.payloadLength = payloadLength
  into.srcNetwork = (buf[o + 4]! << 8) | buf[o + 5]!
  into.srcNode = readU32(buf, o + 6)
  into.dstNetwork = (buf[o + 10]! << 8) | buf[o + 11]!
  into.dstNode = readU32(buf, o + 12)
  into.srcPort = (buf[o + 16]! << 8) | buf[o + 17]!
  into.dstPort = (buf[o + 18]! << 8) | buf[o + 19]!
  into.seq = readU32(buf, o + 20)
  into.ack = readU32(buf, o + 24)
  into.window = (buf[o + 28]! << 8) | buf[o + 29]!
  into.checksum = stored
  return into
}

/** The payload of a packet decoded from `buf` at `offset`: a view, not a copy. */
export function packetPayload(buf: Uint8Array, offset: number, h: PacketHeader): Uint8Array {
  return buf.subarray(offset + HEADER_SIZE, offset + HEADER_SIZE + h.payloadLength)
}

function hex8(n: number): string {
  return n.toString(16).padStart(8, '0')
}

const FLAG_NAMES: ReadonlyArray<[number, string]> = [
  [Flag.SYN, 'SYN'],
  [Flag.ACK, 'ACK'],
  [Flag.FIN, 'FIN'],
  [Flag.RST, 'RST'],
]
const PROTOCOL_NAMES: Record<number, string> = { 1: 'stream', 2: 'datagram', 3: 'control' }

/** One line for logs and test failures, e.g. `stream 0:1:49152>0:2:1000 SYN seq=0 ack=0 win=512 len=0`. */
export function describePacket(h: PacketHeader): string {
  const flags = FLAG_NAMES.filter(([f]) => (h.flags & f) !== 0).map(([, n]) => n).join('|') || '-'
  const proto = PROTOCOL_NAMES[h.protocol] ?? `proto${h.protocol}`
  return `${proto} ${h.srcNetwork}:${h.srcNode}:${h.srcPort}>${h.dstNetwork}:${h.dstNode}:${h.dstPort} ${flags} seq=${h.seq} ack=${h.ack} win=${h.window} len=${h.payloadLength}`
}
