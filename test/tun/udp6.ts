// Hand-built IPv6/UDP packets for the TUN tests: the kernel checks the UDP
// checksum (mandatory over IPv6), so these must be exact. Written with
// DataView on purpose: a naive oracle, independent of src/tun/packets/.
import { parseIpv6, formatIpv6 } from '../../src/protocol/ipv6-mapping.js'

export const IPV6_HEADER = 40
export const UDP_HEADER = 8
const NEXT_UDP = 17

function sum16(buf: Uint8Array, start: number, end: number, acc: number): number {
  for (let i = start; i + 1 < end; i += 2) acc += (buf[i]! << 8) | buf[i + 1]!
  if ((end - start) % 2 === 1) acc += buf[end - 1]! << 8
  return acc
}

function fold(acc: number): number {
  while (acc > 0xffff) acc = (acc & 0xffff) + Math.floor(acc / 0x10000)
  return acc
}

/** UDP checksum over the IPv6 pseudo-header; `pkt` is a whole IPv6 packet with the UDP header at 40. */
export function udp6Checksum(pkt: Uint8Array): number {
  const udpLen = pkt.length - IPV6_HEADER
  let acc = sum16(pkt, 8, 40, 0) // source and destination
  acc += Math.floor(udpLen / 0x10000) + (udpLen & 0xffff) + NEXT_UDP
  acc = sum16(pkt, IPV6_HEADER, 46, acc) // UDP header without the checksum field
  acc = sum16(pkt, IPV6_HEADER + UDP_HEADER, pkt.length, acc)
  const c = ~fold(acc) & 0xffff
  return c === 0 ? 0xffff : c
}

/** Writes an IPv6/UDP packet into `out` at `offset`; returns its length. */
export function writeUdp6(
  out: Uint8Array,
  offset: number,
  src: string,
  dst: string,
  srcPort: number,
  dstPort: number,
  payload: Uint8Array,
): number {
  const len = IPV6_HEADER + UDP_HEADER + payload.length
  const pkt = out.subarray(offset, offset + len)
  const v = new DataView(pkt.buffer, pkt.byteOffset, pkt.byteLength)
  v.setUint32(0, 0x60000000) // version 6, no traffic class, no flow label
  v.setUint16(4, UDP_HEADER + payload.length)
  v.setUint8(6, NEXT_UDP)
  v.setUint8(7, 64)
  pkt.set(parseIpv6(src), 8)
  pkt.set(parseIpv6(dst), 24)
  v.setUint16(40, srcPort)
  v.setUint16(42, dstPort)
  v.setUint16(44, UDP_HEADER + payload.length)
  v.setUint16(46, 0)
  pkt.set(payload, IPV6_HEADER + UDP_HEADER)
  v.setUint16(46, udp6Checksum(pkt))
  return len
}

export function buildUdp6(src: string, dst: string, srcPort: number, dstPort: number, payload: Uint8Array): Buffer {
  const out = Buffer.alloc(IPV6_HEADER + UDP_HEADER + payload.length)
  writeUdp6(out, 0, src, dst, srcPort, dstPort, payload)
  return out
}

export interface Udp6 {
  src: string
  dst: string
  srcPort: number
  dstPort: number
  payload: Buffer
  checksumOk: boolean
}

/** Parses an IPv6 packet carrying UDP directly (no extension headers); null for anything else. */
export function parseUdp6(pkt: Uint8Array): Udp6 | null {
  if (pkt.length < IPV6_HEADER + UDP_HEADER || pkt[0]! >> 4 !== 6 || pkt[6] !== NEXT_UDP) return null
  const v = new DataView(pkt.buffer, pkt.byteOffset, pkt.byteLength)
  const udpLen = v.getUint16(44)
  if (udpLen < UDP_HEADER || IPV6_HEADER + udpLen > pkt.length) return null
  const whole = pkt.subarray(0, IPV6_HEADER + udpLen)
  return {
    src: formatIpv6(pkt, 8),
    dst: formatIpv6(pkt, 24),
    srcPort: v.getUint16(40),
    dstPort: v.getUint16(42),
    payload: Buffer.from(pkt.subarray(IPV6_HEADER + UDP_HEADER, IPV6_HEADER + udpLen)),
    checksumOk: udp6Checksum(whole) === v.getUint16(46),
  }
}
