/**
 * The Internet checksum (RFC 1071) with the IPv6 pseudo-header (RFC 8200 §8.1),
 * and its incremental update (RFC 1624) for address and port rewrites.
 *
 * Sums are kept as plain (unfolded) JavaScript numbers: each 16-bit word adds
 * at most 0xffff, so a sum stays exact far past any packet size (2^53 / 2^16
 * words), and one fold at the end replaces the per-word carry handling. The
 * loop reads four words per turn over a `Uint8Array`; no DataView, no
 * allocation.
 *
 * Vocabulary:
 * - a *sum* is the ones'-complement sum of some 16-bit words, not yet folded;
 * - `foldSum(sum)` folds it to 16 bits with end-around carry (1..0xffff for
 *   any non-zero input, 0 only for an all-zero input);
 * - a *checksum* is `~foldSum(...)`, the value written in the header.
 *
 * Verification: the sum over pseudo-header + whole upper-layer packet
 * (checksum field included) folds to 0xffff when the checksum is right.
 */
import { readU16, writeU16 } from '../../bytes.js'

export const IPPROTO_TCP = 6
export const IPPROTO_UDP = 17
export const IPPROTO_ICMPV6 = 58

/** Sum of the big-endian 16-bit words of `buf[start..end)`; an odd last byte is padded with a zero (RFC 1071). */
export function sumWords(buf: Uint8Array, start: number, end: number, initial = 0): number {
  let sum = initial
  let i = start
  const end8 = end - 7
  for (; i < end8; i += 8) {
    sum += ((buf[i]! << 8) | buf[i + 1]!) + ((buf[i + 2]! << 8) | buf[i + 3]!) +
      ((buf[i + 4]! << 8) | buf[i + 5]!) + ((buf[i + 6]! << 8) | buf[i + 7]!)
  }
  for (; i + 1 < end; i += 2) sum += (buf[i]! << 8) | buf[i + 1]!
  if (i < end) sum += buf[i]! << 8
  return sum
}

/** Folds an unfolded sum to 16 bits with end-around carry. */
export function foldSum(sum: number): number {
  // Sums past 32 bits (over 64 KiB of words, never on the TUN path) fold 32 bits at a time first.
  while (sum > 0xffffffff) sum = (sum % 0x1_0000_0000) + Math.floor(sum / 0x1_0000_0000)
  sum = (sum >>> 16) + (sum & 0xffff)
  sum = (sum >>> 16) + (sum & 0xffff)
  sum = (sum >>> 16) + (sum & 0xffff)
  return sum
}

/**
 * Sum of the IPv6 pseudo-header: source and destination addresses (16 bytes
 * each, at `srcOffset` / `dstOffset` of `buf`), the upper-layer length (u32)
 * and the next header (u32, zero-padded).
 */
export function pseudoHeaderSum(buf: Uint8Array, srcOffset: number, dstOffset: number, upperLength: number, nextHeader: number): number {
  return sumWords(buf, srcOffset, srcOffset + 16) + sumWords(buf, dstOffset, dstOffset + 16) +
    (upperLength >>> 16) + (upperLength & 0xffff) + nextHeader
}

/**
 * The checksum for an upper-layer packet at `buf[l4Offset .. l4Offset+l4Length)`
 * with the addresses of the IPv6 header at `ipOffset`. The checksum field is
 * included in the sum, so zero it first (or use `setTransportChecksum`).
 * The result is in 0..0xfffe (never 0xffff: the pseudo-header is never all zero).
 */
export function transportChecksum(buf: Uint8Array, ipOffset: number, l4Offset: number, l4Length: number, protocol: number): number {
  const sum = pseudoHeaderSum(buf, ipOffset + 8, ipOffset + 24, l4Length, protocol) + sumWords(buf, l4Offset, l4Offset + l4Length)
  return ~foldSum(sum) & 0xffff
}

/** Offset of the checksum field inside the upper-layer header, or -1 if the protocol has none we know. */
export function checksumFieldOffset(protocol: number): number {
  switch (protocol) {
    case IPPROTO_TCP: return 16
    case IPPROTO_UDP: return 6
    case IPPROTO_ICMPV6: return 2
    default: return -1
  }
}

/**
 * Zeroes the checksum field, computes the checksum and writes it. UDP's 0 is
 * sent as 0xffff (RFC 8200 §8.1: a zero UDP checksum is invalid over IPv6).
 * Returns the value written.
 */
export function setTransportChecksum(buf: Uint8Array, ipOffset: number, l4Offset: number, l4Length: number, protocol: number): number {
  const field = l4Offset + checksumFieldOffset(protocol)
  buf[field] = 0
  buf[field + 1] = 0
  let c = transportChecksum(buf, ipOffset, l4Offset, l4Length, protocol)
  if (c === 0 && protocol === IPPROTO_UDP) c = 0xffff
  writeU16(buf, field, c)
  return c
}

/** True when the checksum already in the packet is right. A zero UDP checksum is wrong (IPv6 forbids it). */
export function verifyTransportChecksum(buf: Uint8Array, ipOffset: number, l4Offset: number, l4Length: number, protocol: number): boolean {
  if (protocol === IPPROTO_UDP && l4Length >= 8 && buf[l4Offset + 6] === 0 && buf[l4Offset + 7] === 0) return false
  const sum = pseudoHeaderSum(buf, ipOffset + 8, ipOffset + 24, l4Length, protocol) + sumWords(buf, l4Offset, l4Offset + l4Length)
  return foldSum(sum) === 0xffff
}

/**
 * RFC 1624 eqn. 3: the new checksum after some words whose sum was `oldSum`
 * were replaced by words whose sum is `newSum` (both unfolded or folded; any
 * size). HC' = ~(~HC + ~m + m'), with ~m taken on the folded old sum.
 *
 * For a checksum made by full computation (so never 0xffff) the result equals
 * full recomputation over the new bytes. `udp` keeps the UDP rule: 0 is sent as 0xffff.
 */
export function adjustChecksum(checksum: number, oldSum: number, newSum: number, udp = false): number {
  const sum = (~checksum & 0xffff) + (~foldSum(oldSum) & 0xffff) + newSum
  const c = ~foldSum(sum) & 0xffff
  return udp && c === 0 ? 0xffff : c
}

/** Applies `adjustChecksum` to the 16-bit checksum field at `fieldOffset` in place. */
export function adjustChecksumField(buf: Uint8Array, fieldOffset: number, oldSum: number, newSum: number, udp = false): void {
  writeU16(buf, fieldOffset, adjustChecksum(readU16(buf, fieldOffset), oldSum, newSum, udp))
}
