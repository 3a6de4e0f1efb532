/**
 * TCP header access (RFC 9293 §3.1) for the reflector: ports, flags, header
 * length, get/set in place, and an RST built in place as the answer to a
 * segment. Readers take the absolute offset of the TCP header; nothing allocates.
 *
 *   0        2        4           8           12      13     14      16       18
 *   | sport  | dport  | seq       | ack       |off|rsv|flags | window | cksum | urg |
 */
import { readU16, readU32, writeU16, writeU32 } from '../../bytes.js'
import type { DecodeReason } from '../../errors.js'
import { IPPROTO_TCP, setTransportChecksum } from './checksum.js'
import { IPV6_DST_OFFSET, IPV6_HEADER_SIZE, IPV6_SRC_OFFSET, copy16 } from './ipv6.js'

export const TCP_MIN_HEADER_SIZE = 20
export const TCP_FIN = 0x01
export const TCP_SYN = 0x02
export const TCP_RST = 0x04
export const TCP_PSH = 0x08
export const TCP_ACK = 0x10
export const TCP_URG = 0x20
export const TCP_ECE = 0x40
export const TCP_CWR = 0x80
/** Offset of the checksum inside the TCP header. */
export const TCP_CHECKSUM_OFFSET = 16
/** Length of an IPv6 + TCP packet without options or data (what `writeRstReply` produces). */
export const TCP_RST_PACKET_SIZE = IPV6_HEADER_SIZE + TCP_MIN_HEADER_SIZE

export function tcpSourcePort(buf: Uint8Array, l4: number): number {
  return readU16(buf, l4)
}

export function tcpDestinationPort(buf: Uint8Array, l4: number): number {
  return readU16(buf, l4 + 2)
}

export function setTcpPorts(buf: Uint8Array, l4: number, sourcePort: number, destinationPort: number): void {
  writeU16(buf, l4, sourcePort)
  writeU16(buf, l4 + 2, destinationPort)
}

export function tcpSeq(buf: Uint8Array, l4: number): number {
  return readU32(buf, l4 + 4)
}

export function tcpAck(buf: Uint8Array, l4: number): number {
  return readU32(buf, l4 + 8)
}

/** The eight flag bits (CWR..FIN) of byte 13. */
export function tcpFlags(buf: Uint8Array, l4: number): number {
  return buf[l4 + 13]!
}

/** Header length in bytes from the data offset field (20..60). */
export function tcpHeaderLength(buf: Uint8Array, l4: number): number {
  return (buf[l4 + 12]! >>> 4) * 4
}

export function tcpWindow(buf: Uint8Array, l4: number): number {
  return readU16(buf, l4 + 14)
}

/**
 * Checks a TCP header against the upper-layer length: at least 20 bytes and a
 * data offset between 20 and the segment length. `null` or the reason.
 */
export function checkTcp(buf: Uint8Array, l4: number, l4Length: number): DecodeReason | null {
  if (l4Length < TCP_MIN_HEADER_SIZE) return 'short-buffer'
  const hl = (buf[l4 + 12]! >>> 4) * 4
  if (hl < TCP_MIN_HEADER_SIZE || hl > l4Length) return 'bad-length'
  return null
}

/**
 * Sequence space the segment occupies: data bytes + 1 for SYN + 1 for FIN.
 * `l4Length` is the TCP segment length (header + data).
 */
export function tcpSegmentLength(buf: Uint8Array, l4: number, l4Length: number): number {
  const flags = buf[l4 + 13]!
  return l4Length - tcpHeaderLength(buf, l4) + (flags & TCP_SYN ? 1 : 0) + (flags & TCP_FIN ? 1 : 0)
}

/**
 * Overwrites the segment at `buf[ipOffset..]` (IPv6 header at `ipOffset`, TCP
 * at `l4`) with the RST that answers it (RFC 9293 §3.10.7.1): addresses and
 * ports swapped; if the segment had ACK, `seq = SEG.ACK` and no ACK flag,
 * else `seq = 0`, `ack = SEG.SEQ + SEG.LEN` and ACK. No options, no data.
 * The caller must not answer a RST with a RST. Needs the original segment to
 * be a valid TCP packet (`checkTcp`). Returns the new packet length (60),
 * which starts at `ipOffset`; the TCP header now starts at `ipOffset + 40`.
 */
export function writeRstReply(buf: Uint8Array, ipOffset: number, l4: number, l4Length: number): number {
  const sport = readU16(buf, l4)
  const dport = readU16(buf, l4 + 2)
  const seq = readU32(buf, l4 + 4)
  const ack = readU32(buf, l4 + 8)
  const flags = buf[l4 + 13]!
  const segLen = tcpSegmentLength(buf, l4, l4Length)
  // Swap the addresses in place.
  const s = ipOffset + IPV6_SRC_OFFSET
  const d = ipOffset + IPV6_DST_OFFSET
  for (let i = 0; i < 16; i++) {
    const t = buf[s + i]!
    buf[s + i] = buf[d + i]!
    buf[d + i] = t
  }
  buf[ipOffset] = 0x60 // traffic class and flow label cleared
  buf[ipOffset + 1] = 0
  buf[ipOffset + 2] = 0
  buf[ipOffset + 3] = 0
  writeU16(buf, ipOffset + 4, TCP_MIN_HEADER_SIZE)
  buf[ipOffset + 6] = IPPROTO_TCP // any extension headers are dropped
  buf[ipOffset + 7] = 64
  const t = ipOffset + IPV6_HEADER_SIZE
  writeU16(buf, t, dport)
  writeU16(buf, t + 2, sport)
  if (flags & TCP_ACK) {
    writeU32(buf, t + 4, ack)
    writeU32(buf, t + 8, 0)
    buf[t + 13] = TCP_RST
  } else {
    writeU32(buf, t + 4, 0)
    writeU32(buf, t + 8, (seq + segLen) >>> 0)
    buf[t + 13] = TCP_RST | TCP_ACK
  }
  buf[t + 12] = (TCP_MIN_HEADER_SIZE / 4) << 4
  writeU16(buf, t + 14, 0) // window
  writeU16(buf, t + 18, 0) // urgent pointer
  setTransportChecksum(buf, ipOffset, t, TCP_MIN_HEADER_SIZE, IPPROTO_TCP)
  return TCP_RST_PACKET_SIZE
}

/**
 * Builds a complete IPv6 + TCP packet (no options) with the data already at
 * `out[offset + 60 ..]`; for tests and tools rather than the hot path.
 */
export function buildTcpPacket(
  out: Uint8Array,
  offset: number,
  src: Uint8Array,
  srcOffset: number,
  dst: Uint8Array,
  dstOffset: number,
  sourcePort: number,
  destinationPort: number,
  seq: number,
  ack: number,
  flags: number,
  window: number,
  dataLength: number,
  hopLimit = 64,
): number {
  const segLen = TCP_MIN_HEADER_SIZE + dataLength
  out[offset] = 0x60
  out[offset + 1] = 0
  out[offset + 2] = 0
  out[offset + 3] = 0
  writeU16(out, offset + 4, segLen)
  out[offset + 6] = IPPROTO_TCP
  out[offset + 7] = hopLimit
  copy16(src, srcOffset, out, offset + IPV6_SRC_OFFSET)
  copy16(dst, dstOffset, out, offset + IPV6_DST_OFFSET)
  const t = offset + IPV6_HEADER_SIZE
  writeU16(out, t, sourcePort)
  writeU16(out, t + 2, destinationPort)
  writeU32(out, t + 4, seq >>> 0)
  writeU32(out, t + 8, ack >>> 0)
  out[t + 12] = (TCP_MIN_HEADER_SIZE / 4) << 4
  out[t + 13] = flags
  writeU16(out, t + 14, window)
  writeU16(out, t + 18, 0)
  setTransportChecksum(out, offset, t, segLen, IPPROTO_TCP)
  return IPV6_HEADER_SIZE + segLen
}
