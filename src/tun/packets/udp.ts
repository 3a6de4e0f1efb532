/**
 * UDP over IPv6 (RFC 768, RFC 8200 §8.1). Readers take the absolute offset of
 * the UDP header (`Ipv6Packet.l4Offset`); nothing allocates.
 *
 *   | source port | destination port | length | checksum | data ...
 */
import { readU16, writeU16 } from '../../bytes.js'
import type { DecodeReason } from '../../errors.js'
import { IPPROTO_UDP, setTransportChecksum } from './checksum.js'
import { IPV6_HEADER_SIZE, writeIpv6Header } from './ipv6.js'

export const UDP_HEADER_SIZE = 8
/** Headroom a caller leaves before a UDP payload so `buildUdpPacket` can write both headers in place. */
export const UDP_HEADROOM = IPV6_HEADER_SIZE + UDP_HEADER_SIZE

export function udpSourcePort(buf: Uint8Array, l4: number): number {
  return readU16(buf, l4)
}

export function udpDestinationPort(buf: Uint8Array, l4: number): number {
  return readU16(buf, l4 + 2)
}

export function udpLength(buf: Uint8Array, l4: number): number {
  return readU16(buf, l4 + 4)
}

export function setUdpPorts(buf: Uint8Array, l4: number, sourcePort: number, destinationPort: number): void {
  writeU16(buf, l4, sourcePort)
  writeU16(buf, l4 + 2, destinationPort)
}

/**
 * Checks a UDP header against the IPv6 payload it sits in: at least 8 bytes,
 * length field between 8 and the upper-layer length (trailing bytes past it
 * are ignored). Returns `null` or the reason. The checksum is not verified
 * here (see `verifyTransportChecksum`).
 */
export function checkUdp(buf: Uint8Array, l4: number, l4Length: number): DecodeReason | null {
  if (l4Length < UDP_HEADER_SIZE) return 'short-buffer'
  const len = readU16(buf, l4 + 4)
  if (len < UDP_HEADER_SIZE || len > l4Length) return 'bad-length'
  return null
}

/** Start of the UDP payload. */
export function udpPayloadOffset(l4: number): number {
  return l4 + UDP_HEADER_SIZE
}

/**
 * Builds IPv6 + UDP around a payload of `payloadLength` bytes that is already
 * at `out[offset + 48 ..]`. Writes both headers and the checksum; returns the
 * packet length. Addresses are copied from `src[srcOffset..]`, `dst[dstOffset..]`.
 */
export function buildUdpPacket(
  out: Uint8Array,
  offset: number,
  src: Uint8Array,
  srcOffset: number,
  dst: Uint8Array,
  dstOffset: number,
  sourcePort: number,
  destinationPort: number,
  payloadLength: number,
  hopLimit = 64,
): number {
  const udpLen = UDP_HEADER_SIZE + payloadLength
  const total = writeIpv6Header(out, offset, udpLen, IPPROTO_UDP, hopLimit, src, srcOffset, dst, dstOffset)
  const l4 = offset + IPV6_HEADER_SIZE
  writeU16(out, l4, sourcePort)
  writeU16(out, l4 + 2, destinationPort)
  writeU16(out, l4 + 4, udpLen)
  setTransportChecksum(out, offset, l4, udpLen, IPPROTO_UDP)
  return total
}
