/**
 * IPv6 packets as they come out of (and go into) the TUN (RFC 8200).
 *
 * `parseIpv6Into` fills a reusable `Ipv6Packet` view and returns `null` or the
 * `DecodeReason` of a malformed packet, without throwing or allocating: the
 * TUN receive loop counts the reason and drops. `parseIpv6` is the same with
 * a `DecodeError` thrown instead, for callers off the hot path.
 *
 * The walk over extension headers (hop-by-hop 0, routing 43, fragment 44,
 * destination options 60) finds the upper layer. Only TCP (6), UDP (17) and
 * ICMPv6 (58) are *supported*; anything else (No Next Header 59, ESP, AH,
 * Mobility, unknown values, a non-first fragment) parses fine but reports
 * `protocol === PROTO_UNSUPPORTED` with the stopping value in
 * `unsupportedHeader`. A malformed chain (a header running past the payload,
 * hop-by-hop anywhere but first) is an error.
 *
 *   0      4      12               32 bits
 *   |ver(6)| TC   |  flow label    |
 *   | payload length | next hdr | hop limit |
 *   | source address (16 bytes, offset 8)    |
 *   | destination address (16 bytes, off 24) |
 */
import { DecodeError, type DecodeReason } from '../../errors.js'
import { readU16, writeU16 } from '../../bytes.js'
import { IPPROTO_ICMPV6, IPPROTO_TCP, IPPROTO_UDP } from './checksum.js'

export const IPV6_HEADER_SIZE = 40
export const IPV6_MIN_MTU = 1280
export const IPV6_SRC_OFFSET = 8
export const IPV6_DST_OFFSET = 24

export const NEXT_HOP_BY_HOP = 0
export const NEXT_ROUTING = 43
export const NEXT_FRAGMENT = 44
export const NEXT_NO_NEXT = 59
export const NEXT_DEST_OPTIONS = 60

/** `Ipv6Packet.protocol` when the upper layer is none of TCP, UDP, ICMPv6 (or is not in this fragment). */
export const PROTO_UNSUPPORTED = -1

/** At most this many extension headers are walked; more is treated as malformed. */
export const MAX_EXTENSION_HEADERS = 8

/**
 * A view of one parsed packet. All offsets are absolute indexes into `buf`.
 * Reuse one per receive loop: every field is set by each parse.
 */
export class Ipv6Packet {
  buf: Uint8Array = EMPTY
  /** Start of the IPv6 header. */
  offset = 0
  /** 40 + payload length: the packet's own length (a buffer may hold trailing bytes). */
  length = 0
  trafficClass = 0
  flowLabel = 0
  payloadLength = 0
  /** Next header of the fixed header (the first extension header, or the upper layer). */
  nextHeader = 0
  hopLimit = 0
  /** 6, 17, 58, or PROTO_UNSUPPORTED. */
  protocol = PROTO_UNSUPPORTED
  /** The next-header value that stopped the walk when `protocol` is unsupported, else the protocol. */
  unsupportedHeader = 0
  /** Start and length of the upper-layer packet (header + data). */
  l4Offset = 0
  l4Length = 0
  /** A fragment header was present (any fragment, first or not). */
  fragmented = false
  /** Fragment offset in 8-byte units (0 for the first fragment or no fragment header). */
  fragmentOffset = 0
  moreFragments = false

  get srcOffset(): number {
    return this.offset + IPV6_SRC_OFFSET
  }

  get dstOffset(): number {
    return this.offset + IPV6_DST_OFFSET
  }

  /** True for a complete TCP/UDP/ICMPv6 packet (not a fragment). */
  get isWholeSupported(): boolean {
    return this.protocol !== PROTO_UNSUPPORTED && !this.fragmented
  }
}

const EMPTY = new Uint8Array(0)

/**
 * Parses the packet at `buf[offset .. offset+length)` into `out`. Returns
 * `null` on success, else why the bytes are not an IPv6 packet (then `out` is
 * partly filled and must not be used).
 */
export function parseIpv6Into(out: Ipv6Packet, buf: Uint8Array, offset = 0, length = buf.length - offset): DecodeReason | null {
  if (!Number.isInteger(offset) || !Number.isInteger(length) || offset < 0 || length < 0 || offset + length > buf.length) {
    return 'short-buffer'
  }
  if (length < IPV6_HEADER_SIZE) return 'short-buffer'
  const b0 = buf[offset]!
  if (b0 >>> 4 !== 6) return 'bad-protocol'
  const payloadLength = readU16(buf, offset + 4)
  if (IPV6_HEADER_SIZE + payloadLength > length) return 'bad-length'
  out.buf = buf
  out.offset = offset
  out.length = IPV6_HEADER_SIZE + payloadLength
  out.trafficClass = ((b0 & 0x0f) << 4) | (buf[offset + 1]! >>> 4)
  out.flowLabel = ((buf[offset + 1]! & 0x0f) << 16) | (buf[offset + 2]! << 8) | buf[offset + 3]!
  out.payloadLength = payloadLength
  const first = buf[offset + 6]!
  out.nextHeader = first
  out.hopLimit = buf[offset + 7]!
  out.fragmented = false
  out.fragmentOffset = 0
  out.moreFragments = false

  const end = offset + out.length
  let next = first
  let at = offset + IPV6_HEADER_SIZE
  for (let walked = 0; ; walked++) {
    if (next === IPPROTO_TCP || next === IPPROTO_UDP || next === IPPROTO_ICMPV6) {
      out.protocol = next
      out.unsupportedHeader = next
      break
    }
    if (next !== NEXT_HOP_BY_HOP && next !== NEXT_ROUTING && next !== NEXT_DEST_OPTIONS && next !== NEXT_FRAGMENT) {
      out.protocol = PROTO_UNSUPPORTED
      out.unsupportedHeader = next
      break
    }
    if (walked >= MAX_EXTENSION_HEADERS) return 'bad-value'
    if (next === NEXT_HOP_BY_HOP && walked !== 0) return 'bad-value' // RFC 8200 §4.3: only right after the fixed header
    if (end - at < 8) return 'bad-length'
    const following = buf[at]!
    let size: number
    if (next === NEXT_FRAGMENT) {
      size = 8
      const word = readU16(buf, at + 2)
      out.fragmented = true
      out.fragmentOffset = word >>> 3
      out.moreFragments = (word & 1) === 1
      if (out.fragmentOffset !== 0) {
        // Not the first fragment: the upper-layer header is elsewhere.
        at += size
        out.protocol = PROTO_UNSUPPORTED
        out.unsupportedHeader = NEXT_FRAGMENT
        break
      }
    } else {
      size = (buf[at + 1]! + 1) * 8
    }
    if (end - at < size) return 'bad-length'
    at += size
    next = following
  }
  out.l4Offset = at
  out.l4Length = end - at
  return null
}

/** `parseIpv6Into`, throwing `DecodeError` on malformed bytes. Returns `out`. */
export function parseIpv6(buf: Uint8Array, offset = 0, length = buf.length - offset, out: Ipv6Packet = new Ipv6Packet()): Ipv6Packet {
  const reason = parseIpv6Into(out, buf, offset, length)
  if (reason !== null) throw new DecodeError(reason, ipv6ReasonText(reason))
  return out
}

function ipv6ReasonText(reason: DecodeReason): string {
  switch (reason) {
    case 'short-buffer': return 'IPv6 packet shorter than its 40-byte header'
    case 'bad-protocol': return 'not an IPv6 packet (version is not 6)'
    case 'bad-length': return 'IPv6 payload length or an extension header runs past the packet'
    case 'bad-value': return 'malformed IPv6 extension header chain'
    default: return `malformed IPv6 packet (${reason})`
  }
}

/**
 * Writes a 40-byte IPv6 header at `out[offset..]`; the payload (of
 * `payloadLength` bytes) is expected at `offset + 40`, so build payloads
 * with that much headroom. Addresses are copied from `src[srcOffset..]` and
 * `dst[dstOffset..]` (which may be `out` itself if the regions do not overlap the header).
 * Returns the total packet length. Throws `DecodeError` only on a bad argument.
 */
export function writeIpv6Header(
  out: Uint8Array,
  offset: number,
  payloadLength: number,
  nextHeader: number,
  hopLimit: number,
  src: Uint8Array,
  srcOffset: number,
  dst: Uint8Array,
  dstOffset: number,
  trafficClass = 0,
  flowLabel = 0,
): number {
  if (offset < 0 || out.length - offset < IPV6_HEADER_SIZE) throw new DecodeError('short-buffer', 'no room for an IPv6 header')
  if (!(payloadLength >= 0 && payloadLength <= 0xffff)) throw new DecodeError('bad-length', `IPv6 payload length ${payloadLength} is not a u16`)
  out[offset] = 0x60 | ((trafficClass >>> 4) & 0x0f)
  out[offset + 1] = ((trafficClass & 0x0f) << 4) | ((flowLabel >>> 16) & 0x0f)
  out[offset + 2] = (flowLabel >>> 8) & 0xff
  out[offset + 3] = flowLabel & 0xff
  writeU16(out, offset + 4, payloadLength)
  out[offset + 6] = nextHeader & 0xff
  out[offset + 7] = hopLimit & 0xff
  copy16(src, srcOffset, out, offset + IPV6_SRC_OFFSET)
  copy16(dst, dstOffset, out, offset + IPV6_DST_OFFSET)
  return IPV6_HEADER_SIZE + payloadLength
}

/** Copies 16 bytes (an address) without allocating; handles overlap by going through locals only when needed. */
export function copy16(from: Uint8Array, fromOffset: number, to: Uint8Array, toOffset: number): void {
  if (from === to && fromOffset === toOffset) return
  if (from === to && Math.abs(fromOffset - toOffset) < 16) {
    to.copyWithin(toOffset, fromOffset, fromOffset + 16)
    return
  }
  for (let i = 0; i < 16; i++) to[toOffset + i] = from[fromOffset + i]!
}

/** True if the 16 bytes at `a[ao..]` and `b[bo..]` are equal. */
export function equal16(a: Uint8Array, ao: number, b: Uint8Array, bo: number): boolean {
  for (let i = 0; i < 16; i++) if (a[ao + i] !== b[bo + i]) return false
  return true
}

/** Multicast: ff00::/8. */
export function isMulticastIpv6(buf: Uint8Array, offset: number): boolean {
  return buf[offset] === 0xff
}

/** The unspecified address `::`. */
export function isUnspecifiedIpv6(buf: Uint8Array, offset: number): boolean {
  for (let i = 0; i < 16; i++) if (buf[offset + i] !== 0) return false
  return true
}
