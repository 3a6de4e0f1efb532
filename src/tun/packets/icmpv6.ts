/**
 * ICMPv6 (RFC 4443): echo request/reply parse and build, and the two error
 * messages the bridge sends into the TUN: Destination Unreachable (type 1)
 * and Packet Too Big (type 2).
 *
 *   | type | code | checksum | id (echo) / unused / MTU ... | data or quote
 *
 * Errors quote as much of the invoking packet as fits in 1280 bytes in total
 * (RFC 4443 §2.4 c) and are never sent (§2.4 e) in answer to:
 *   - an ICMPv6 error message (type < 128) or a Redirect (137),
 *   - a packet to a multicast address, except Packet Too Big (which the RFC
 *     allows so that path MTU discovery works for multicast),
 *   - a packet whose source is not one node (unspecified `::` or multicast),
 *   - a packet that does not parse as IPv6 (we cannot know what it was).
 * Rate limiting (§2.4 f) belongs to the caller, which owns the clock.
 */
import { readU16, writeU16, writeU32 } from '../../bytes.js'
import type { DecodeReason } from '../../errors.js'
import { IPPROTO_ICMPV6, setTransportChecksum, sumWords, adjustChecksumField } from './checksum.js'
import {
  IPV6_DST_OFFSET,
  IPV6_HEADER_SIZE,
  IPV6_MIN_MTU,
  IPV6_SRC_OFFSET,
  Ipv6Packet,
  PROTO_UNSUPPORTED,
  isMulticastIpv6,
  isUnspecifiedIpv6,
  parseIpv6Into,
  writeIpv6Header,
} from './ipv6.js'

export const ICMPV6_DEST_UNREACHABLE = 1
export const ICMPV6_PACKET_TOO_BIG = 2
export const ICMPV6_TIME_EXCEEDED = 3
export const ICMPV6_PARAMETER_PROBLEM = 4
export const ICMPV6_ECHO_REQUEST = 128
export const ICMPV6_ECHO_REPLY = 129
export const ICMPV6_REDIRECT = 137

/** Destination Unreachable codes we use. */
export const UNREACH_NO_ROUTE = 0
/** Administratively prohibited: the bridge uses it for nodes without trust. */
export const UNREACH_ADMIN_PROHIBITED = 1
export const UNREACH_ADDRESS = 3
export const UNREACH_PORT = 4

export const ICMPV6_HEADER_SIZE = 8
/** IPv6 + ICMPv6 headers in front of echo data or an error's quote. */
export const ICMPV6_HEADROOM = IPV6_HEADER_SIZE + ICMPV6_HEADER_SIZE
/** Largest quote: an error packet is at most the IPv6 minimum MTU. */
export const ICMPV6_MAX_QUOTE = IPV6_MIN_MTU - ICMPV6_HEADROOM
export const DEFAULT_HOP_LIMIT = 64

export function icmpv6Type(buf: Uint8Array, l4: number): number {
  return buf[l4]!
}

export function icmpv6Code(buf: Uint8Array, l4: number): number {
  return buf[l4 + 1]!
}

/** True for error messages (types 0..127). */
export function isIcmpv6Error(type: number): boolean {
  return type < 128
}

/** A reusable view of an echo request or reply. Offsets are absolute. */
export class Icmpv6Echo {
  type = 0
  code = 0
  id = 0
  seq = 0
  dataOffset = 0
  dataLength = 0
}

/**
 * Parses an echo request/reply at `buf[l4 .. l4+l4Length)` into `out`.
 * `null` on success; `bad-type` for other ICMPv6 types; `short-buffer` under 8 bytes.
 */
export function parseIcmpv6EchoInto(out: Icmpv6Echo, buf: Uint8Array, l4: number, l4Length: number): DecodeReason | null {
  if (l4Length < ICMPV6_HEADER_SIZE) return 'short-buffer'
  const type = buf[l4]!
  if (type !== ICMPV6_ECHO_REQUEST && type !== ICMPV6_ECHO_REPLY) return 'bad-type'
  out.type = type
  out.code = buf[l4 + 1]!
  out.id = readU16(buf, l4 + 4)
  out.seq = readU16(buf, l4 + 6)
  out.dataOffset = l4 + ICMPV6_HEADER_SIZE
  out.dataLength = l4Length - ICMPV6_HEADER_SIZE
  return null
}

/**
 * Builds IPv6 + ICMPv6 echo (request 128 or reply 129) around `dataLength`
 * bytes of data already at `out[offset + 48 ..]`. Returns the packet length.
 */
export function buildIcmpv6Echo(
  out: Uint8Array,
  offset: number,
  type: typeof ICMPV6_ECHO_REQUEST | typeof ICMPV6_ECHO_REPLY,
  src: Uint8Array,
  srcOffset: number,
  dst: Uint8Array,
  dstOffset: number,
  id: number,
  seq: number,
  dataLength: number,
  hopLimit = DEFAULT_HOP_LIMIT,
): number {
  const len = ICMPV6_HEADER_SIZE + dataLength
  const total = writeIpv6Header(out, offset, len, IPPROTO_ICMPV6, hopLimit, src, srcOffset, dst, dstOffset)
  const l4 = offset + IPV6_HEADER_SIZE
  out[l4] = type
  out[l4 + 1] = 0
  writeU16(out, l4 + 4, id)
  writeU16(out, l4 + 6, seq)
  setTransportChecksum(out, offset, l4, len, IPPROTO_ICMPV6)
  return total
}

/**
 * Turns a parsed echo request (a whole packet, `pkt.protocol === 58`) into
 * its reply in place: addresses swapped, type 129, hop limit reset, checksum
 * updated incrementally (the pseudo-header sum is unchanged by a swap).
 * Extension headers are kept as they are. Returns false (and changes nothing)
 * if the packet is not an echo request.
 */
export function echoRequestToReplyInPlace(pkt: Ipv6Packet, hopLimit = DEFAULT_HOP_LIMIT): boolean {
  const buf = pkt.buf
  const l4 = pkt.l4Offset
  if (pkt.protocol !== IPPROTO_ICMPV6 || pkt.l4Length < ICMPV6_HEADER_SIZE || buf[l4] !== ICMPV6_ECHO_REQUEST) return false
  const s = pkt.offset + IPV6_SRC_OFFSET
  const d = pkt.offset + IPV6_DST_OFFSET
  for (let i = 0; i < 16; i++) {
    const t = buf[s + i]!
    buf[s + i] = buf[d + i]!
    buf[d + i] = t
  }
  buf[pkt.offset + 7] = hopLimit
  const oldWord = sumWords(buf, l4, l4 + 2)
  buf[l4] = ICMPV6_ECHO_REPLY
  adjustChecksumField(buf, l4 + 2, oldWord, sumWords(buf, l4, l4 + 2))
  return true
}

/** Why `buildIcmpv6Error` sent nothing (stable strings for counters). */
export type Icmpv6SuppressReason =
  | 'invoking-malformed'
  | 'invoking-icmpv6-error'
  | 'invoking-multicast-destination'
  | 'invoking-source-not-unicast'

const scratch = new Ipv6Packet()

/**
 * Why no error may answer the invoking packet, or `null` if one may. Reads the
 * packet only (no allocation).
 */
export function icmpv6ErrorSuppression(type: number, invoking: Uint8Array, invokingOffset: number, invokingLength: number): Icmpv6SuppressReason | null {
  if (parseIpv6Into(scratch, invoking, invokingOffset, invokingLength) !== null) return 'invoking-malformed'
  const src = invokingOffset + IPV6_SRC_OFFSET
  if (isMulticastIpv6(invoking, src) || isUnspecifiedIpv6(invoking, src)) return 'invoking-source-not-unicast'
  if (type !== ICMPV6_PACKET_TOO_BIG && isMulticastIpv6(invoking, invokingOffset + IPV6_DST_OFFSET)) return 'invoking-multicast-destination'
  if (scratch.protocol === IPPROTO_ICMPV6 && !scratch.fragmented) {
    if (scratch.l4Length < 1) return 'invoking-malformed'
    const t = invoking[scratch.l4Offset]!
    if (t < 128 || t === ICMPV6_REDIRECT) return 'invoking-icmpv6-error'
  } else if (scratch.protocol === PROTO_UNSUPPORTED && scratch.unsupportedHeader === IPPROTO_ICMPV6) {
    return 'invoking-malformed'
  }
  return null
}

/**
 * Writes an ICMPv6 error into `out[offset..]` answering the invoking packet
 * `invoking[invokingOffset .. +invokingLength)`: IPv6 source `src[srcOffset..]`
 * (the mapped address of the unreachable destination, or ours), destination
 * the invoking packet's source, the 4-byte field `param` (unused = 0 for
 * Destination Unreachable, the MTU for Packet Too Big), then as much of the
 * invoking packet as fits in 1280 bytes. `out` must not overlap the invoking
 * packet. Returns the packet length, or 0 when the RFC forbids an answer or
 * `out` has no room for the headers; `icmpv6ErrorSuppression` tells why
 * (call it first when the reason is to be counted).
 */
export function buildIcmpv6Error(
  out: Uint8Array,
  offset: number,
  type: number,
  code: number,
  param: number,
  src: Uint8Array,
  srcOffset: number,
  invoking: Uint8Array,
  invokingOffset: number,
  invokingLength: number,
  hopLimit = DEFAULT_HOP_LIMIT,
): number {
  const why = icmpv6ErrorSuppression(type, invoking, invokingOffset, invokingLength)
  if (why !== null) return 0
  const room = out.length - offset - ICMPV6_HEADROOM
  if (offset < 0 || room < 0) return 0
  let quote = invokingLength
  if (quote > ICMPV6_MAX_QUOTE) quote = ICMPV6_MAX_QUOTE
  if (quote > room) quote = room
  const len = ICMPV6_HEADER_SIZE + quote
  const l4 = offset + IPV6_HEADER_SIZE
  out.set(invoking.subarray(invokingOffset, invokingOffset + quote), l4 + ICMPV6_HEADER_SIZE)
  const total = writeIpv6Header(out, offset, len, IPPROTO_ICMPV6, hopLimit, src, srcOffset, invoking, invokingOffset + IPV6_SRC_OFFSET)
  out[l4] = type
  out[l4 + 1] = code
  writeU32(out, l4 + 4, param >>> 0)
  setTransportChecksum(out, offset, l4, len, IPPROTO_ICMPV6)
  return total
}

/** Destination Unreachable (type 1) with one of the UNREACH_* codes. */
export function buildDestinationUnreachable(
  out: Uint8Array,
  offset: number,
  code: number,
  src: Uint8Array,
  srcOffset: number,
  invoking: Uint8Array,
  invokingOffset: number,
  invokingLength: number,
): number {
  return buildIcmpv6Error(out, offset, ICMPV6_DEST_UNREACHABLE, code, 0, src, srcOffset, invoking, invokingOffset, invokingLength)
}

/** Packet Too Big (type 2, code 0) announcing `mtu` (at least 1280 per RFC 8200 §5). */
export function buildPacketTooBig(
  out: Uint8Array,
  offset: number,
  mtu: number,
  src: Uint8Array,
  srcOffset: number,
  invoking: Uint8Array,
  invokingOffset: number,
  invokingLength: number,
): number {
  return buildIcmpv6Error(out, offset, ICMPV6_PACKET_TOO_BIG, 0, mtu, src, srcOffset, invoking, invokingOffset, invokingLength)
}
