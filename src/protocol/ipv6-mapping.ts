/**
 * Pilot address <-> IPv6 address inside the overlay prefix (docs/design.md "Address mapping").
 *
 *   prefix (48 bits) : NNNN : 0000 : 0000 : HHHH : LLLL
 *   |---- bytes 0..5 --|6..7-|-- 8..11 ---|-- 12..15 --|
 *
 * Every Pilot network is one /64; bits 64..95 (bytes 8..11) are zero for a node.
 * Addresses in the prefix with non-zero bits 64..95 are not nodes: the daemon
 * uses them internally (the TCP reflector address, `reflectorIpv6`).
 *
 * The byte-level functions work on 16 bytes at an offset, so the TUN path can
 * map the address fields of an IPv6 header in place without copying or
 * allocating. `mapIpv6ToPilot` answers `null` for anything that is not a node;
 * `classifyOverlayIpv6` says why (`outside-prefix` or `not-a-node`) without
 * allocating. Text helpers use the `ip-address` package and print the
 * RFC 5952 compressed form (node 0:0000.0000.002A -> `fd50:494c:4f54::2a`).
 */
import { isIPv6 } from 'node:net'
import { Address6 } from 'ip-address'
import { DecodeError } from '../errors.js'
import { makeAddress, type PilotAddress } from './address.js'
import { readU32, writeU32 } from '../bytes.js'

export const IPV6_SIZE = 16
export const OVERLAY_PREFIX_LENGTH = 48
export const DEFAULT_OVERLAY_PREFIX_TEXT = 'fd50:494c:4f54::/48'

/**
 * A parsed /48 overlay prefix. Frozen, and held as numbers (not a shared byte
 * array anyone could write to), which also keeps the hot-path compare cheap.
 */
export interface OverlayPrefix {
  /** Bytes 0..3 as a u32. */
  readonly high32: number
  /** Bytes 4..5 as a u16. */
  readonly low16: number
  /** Canonical text, e.g. `fd50:494c:4f54::/48`. */
  readonly text: string
}

/** What an IPv6 address is with respect to an overlay prefix. */
export type OverlayIpv6Kind = 'node' | 'outside-prefix' | 'not-a-node'

/** Parses `xxxx:xxxx:xxxx::/48`. Only /48 is accepted, and the bits past 48 must be zero. */
export function parseOverlayPrefix(text: string): OverlayPrefix {
  if (typeof text !== 'string') throw new DecodeError('bad-address', 'overlay prefix must be a string')
  const slash = text.indexOf('/')
  if (slash < 0) throw new DecodeError('bad-address', `overlay prefix "${clip(text)}" needs a length, as in ${DEFAULT_OVERLAY_PREFIX_TEXT}`)
  const lengthText = text.slice(slash + 1)
  if (lengthText !== String(OVERLAY_PREFIX_LENGTH)) {
    throw new DecodeError('bad-value', `overlay prefix "${clip(text)}" must be a /48 (the mapping puts the network in bits 48..63)`)
  }
  const bytes = parseIpv6(text.slice(0, slash))
  for (let i = 6; i < IPV6_SIZE; i++) {
    if (bytes[i] !== 0) throw new DecodeError('bad-value', `overlay prefix "${clip(text)}" has bits set past /48`)
  }
  return Object.freeze({
    high32: readU32(bytes, 0),
    low16: (bytes[4]! << 8) | bytes[5]!,
    text: `${formatIpv6(bytes)}/${OVERLAY_PREFIX_LENGTH}`,
  })
}

/** The 6 prefix bytes, as a new array. */
export function overlayPrefixBytes(prefix: OverlayPrefix): Uint8Array {
  const out = new Uint8Array(6)
  writeU32(out, 0, prefix.high32)
  out[4] = prefix.low16 >>> 8
  out[5] = prefix.low16 & 0xff
  return out
}

export const DEFAULT_OVERLAY_PREFIX: OverlayPrefix = parseOverlayPrefix(DEFAULT_OVERLAY_PREFIX_TEXT)

/** True iff the first 48 bits of `bytes[offset..]` equal the prefix. */
export function isInOverlayPrefix(bytes: Uint8Array, prefix: OverlayPrefix, offset = 0): boolean {
  checkRoom(bytes, offset)
  return readU32(bytes, offset) === prefix.high32 && ((bytes[offset + 4]! << 8) | bytes[offset + 5]!) === prefix.low16
}

export function classifyOverlayIpv6(bytes: Uint8Array, prefix: OverlayPrefix, offset = 0): OverlayIpv6Kind {
  if (!isInOverlayPrefix(bytes, prefix, offset)) return 'outside-prefix'
  return readU32(bytes, offset + 8) === 0 ? 'node' : 'not-a-node'
}

/**
 * The Pilot address of the 16 bytes at `offset`, or `null` if they are outside
 * the prefix or inside it but not a node (use `classifyOverlayIpv6` to tell which).
 */
export function mapIpv6ToPilot(bytes: Uint8Array, prefix: OverlayPrefix, offset = 0): PilotAddress | null {
  if (classifyOverlayIpv6(bytes, prefix, offset) !== 'node') return null
  return { network: overlayNetworkAt(bytes, offset), node: overlayNodeAt(bytes, offset) }
}

/** Writes the IPv6 address of `addr` at `out[offset..offset+16]` (a new array if `out` is omitted); returns `out`. */
export function mapPilotToIpv6(
  addr: PilotAddress,
  prefix: OverlayPrefix,
  out: Uint8Array = new Uint8Array(IPV6_SIZE),
  offset = 0,
): Uint8Array {
  checkRoom(out, offset)
  const { network, node } = addr
  // Range check without allocating; makeAddress only builds the typed bad-address error.
  if (!(Number.isInteger(network) && network >= 0 && network <= 0xffff && Number.isInteger(node) && node >= 0 && node <= 0xffffffff)) {
    makeAddress(network, node)
  }
  writeU32(out, offset, prefix.high32)
  out[offset + 4] = prefix.low16 >>> 8
  out[offset + 5] = prefix.low16 & 0xff
  out[offset + 6] = network >>> 8
  out[offset + 7] = network & 0xff
  writeU32(out, offset + 8, 0)
  writeU32(out, offset + 12, node)
  return out
}

/**
 * The network field (bits 48..63) of the address at `bytes[offset..]`. No
 * checks: for the packet path, after `classifyOverlayIpv6` said `node`.
 */
export function overlayNetworkAt(bytes: Uint8Array, offset: number): number {
  return (bytes[offset + 6]! << 8) | bytes[offset + 7]!
}

/** The node field (bits 96..127) of the address at `bytes[offset..]`. No checks, as `overlayNetworkAt`. */
export function overlayNodeAt(bytes: Uint8Array, offset: number): number {
  return readU32(bytes, offset + 12)
}

/**
 * `addressKey` (network * 2^32 + node) of the node address at `bytes[offset..]`,
 * a number to key maps by without building a `PilotAddress`. No checks, as `overlayNetworkAt`.
 */
export function overlayNodeKeyAt(bytes: Uint8Array, offset: number): number {
  return overlayNetworkAt(bytes, offset) * 0x1_0000_0000 + overlayNodeAt(bytes, offset)
}

/**
 * The address the daemon uses for TCP reflection (docs/design.md): `prefix:NNNN:0:1:0:1`,
 * e.g. `fd50:494c:4f54::1:0:1` for network 0. Bits 64..95 are 0x00000001, so it is
 * never a node and `classifyOverlayIpv6` reports `not-a-node` for it.
 */
export function reflectorIpv6(
  prefix: OverlayPrefix,
  network = 0,
  out: Uint8Array = new Uint8Array(IPV6_SIZE),
  offset = 0,
): Uint8Array {
  mapPilotToIpv6({ network, node: 1 }, prefix, out, offset)
  writeU32(out, offset + 8, 1)
  return out
}

/** `fd50:494c:4f54::2a` for node 0:0000.0000.002A in the default prefix. */
export function pilotToIpv6Text(addr: PilotAddress, prefix: OverlayPrefix): string {
  return formatIpv6(mapPilotToIpv6(addr, prefix))
}

/** The node behind IPv6 text, or `null` if it is not a node of the prefix. Throws bad-address on bad text. */
export function ipv6TextToPilot(text: string, prefix: OverlayPrefix): PilotAddress | null {
  return mapIpv6ToPilot(parseIpv6(text), prefix)
}

/** IPv6 text (any valid form, no prefix length, no zone) to 16 bytes. */
export function parseIpv6(text: string): Uint8Array {
  // node:net decides what is IPv6 text (it agrees with ip-address, and refuses zones and lengths here).
  if (typeof text !== 'string' || !isIPv6(text) || text.includes('%')) {
    throw new DecodeError('bad-address', `"${clip(String(text))}" is not a plain IPv6 address`)
  }
  let parsed: Address6
  try {
    parsed = new Address6(text)
  } catch {
    throw new DecodeError('bad-address', `"${clip(text)}" is not an IPv6 address`)
  }
  const bytes = parsed.toUnsignedByteArray()
  const out = new Uint8Array(IPV6_SIZE)
  out.set(bytes, IPV6_SIZE - bytes.length) // toUnsignedByteArray drops leading zero bytes
  return out
}

/** RFC 5952 text of the 16 bytes at `offset`; IPv4-mapped addresses print as `::ffff:a.b.c.d`. */
export function formatIpv6(bytes: Uint8Array, offset = 0): string {
  checkRoom(bytes, offset)
  const b = bytes.subarray(offset, offset + IPV6_SIZE)
  if (isIpv4Mapped(b)) return `::ffff:${b[12]}.${b[13]}.${b[14]}.${b[15]}`
  return Address6.fromUnsignedByteArray(Array.from(b)).correctForm()
}

/** True for `::ffff:a.b.c.d`. */
export function isIpv4Mapped(b: Uint8Array, offset = 0): boolean {
  for (let i = 0; i < 10; i++) if (b[offset + i] !== 0) return false
  return b[offset + 10] === 0xff && b[offset + 11] === 0xff
}

function checkRoom(buf: Uint8Array, offset: number): void {
  if (!Number.isInteger(offset) || offset < 0 || buf.length - offset < IPV6_SIZE) {
    throw new DecodeError('short-buffer', `need ${IPV6_SIZE} bytes for an IPv6 address at offset ${offset}, have ${Math.max(0, buf.length - offset)}`)
  }
}

function clip(s: string): string {
  return s.length > 48 ? `${s.slice(0, 48)}…` : s
}
