/**
 * The SACK option (docs/wire.md §6.7), carried as the payload of a stream ACK:
 *
 *   "SACK" (4 ASCII bytes) || count u8 (1..4) || count × (left u32, right u32)
 *
 * `left` is the sequence number of a block's first byte, `right` the one after
 * its last byte (exclusive). A stream payload *is* a SACK option iff it passes
 * `sackBlockCount` — the exact rule the Go reference applies, so any data
 * segment that would pass it must never be sent (§17 item 14).
 */
import { DecodeError } from '../errors.js'
import { readU32, writeU32 } from './header.js'

export const SACK_MAGIC_0 = 0x53 // 'S'
export const SACK_MAGIC_1 = 0x41 // 'A'
export const SACK_MAGIC_2 = 0x43 // 'C'
export const SACK_MAGIC_3 = 0x4b // 'K'
export const MAX_SACK_BLOCKS = 4
export const SACK_HEADER_SIZE = 5
export const SACK_BLOCK_SIZE = 8
/** Largest SACK option: 5 + 4 × 8 = 37 bytes. */
export const MAX_SACK_SIZE = SACK_HEADER_SIZE + MAX_SACK_BLOCKS * SACK_BLOCK_SIZE

/** Size of an option with `count` blocks. */
export function sackOptionSize(count: number): number {
  return SACK_HEADER_SIZE + count * SACK_BLOCK_SIZE
}

/**
 * Number of blocks if `payload[offset .. offset+length)` is a SACK option by the
 * §6.7 rule (length ≥ 5, magic, 1 ≤ count ≤ 4, length ≥ 5 + 8·count), else 0.
 * Trailing bytes after the blocks are allowed, as in the reference.
 */
export function sackBlockCount(payload: Uint8Array, offset = 0, length = payload.length - offset): number {
  if (length < SACK_HEADER_SIZE) return 0
  if (
    payload[offset] !== SACK_MAGIC_0 ||
    payload[offset + 1] !== SACK_MAGIC_1 ||
    payload[offset + 2] !== SACK_MAGIC_2 ||
    payload[offset + 3] !== SACK_MAGIC_3
  ) {
    return 0
  }
  const count = payload[offset + 4]!
  if (count < 1 || count > MAX_SACK_BLOCKS) return 0
  if (length < SACK_HEADER_SIZE + SACK_BLOCK_SIZE * count) return 0
  return count
}

export function isSackOption(payload: Uint8Array): boolean {
  return sackBlockCount(payload) !== 0
}

/**
 * Decodes the blocks into `into` as flat pairs (left0, right0, left1, ...).
 * Returns the block count, 0 if the payload is not a SACK option. No allocation.
 */
export function decodeSackInto(payload: Uint8Array, into: Uint32Array | number[]): number {
  const count = sackBlockCount(payload)
  if (into.length < count * 2) throw new DecodeError('short-buffer', `need room for ${count} SACK blocks`)
  for (let i = 0; i < count; i++) {
    const o = SACK_HEADER_SIZE + i * SACK_BLOCK_SIZE
    into[2 * i] = readU32(payload, o)
    into[2 * i + 1] = readU32(payload, o + 4)
  }
  return count
}

export interface SackBlock {
  readonly left: number
  readonly right: number
}

/** Convenience decoder for tests and logs; null if not a SACK option. */
export function decodeSack(payload: Uint8Array): SackBlock[] | null {
  const tmp = new Uint32Array(2 * MAX_SACK_BLOCKS)
  const count = decodeSackInto(payload, tmp)
  if (count === 0) return null
  const out: SackBlock[] = []
  for (let i = 0; i < count; i++) out.push({ left: tmp[2 * i]!, right: tmp[2 * i + 1]! })
  return out
}

/**
 * Writes an option with `count` blocks, given as flat (left, right) pairs, at
 * `out[offset]`. Returns the bytes written. Throws on count outside 1..4.
 */
export function encodeSackInto(pairs: ArrayLike<number>, count: number, out: Uint8Array, offset: number): number {
  if (!Number.isInteger(count) || count < 1 || count > MAX_SACK_BLOCKS) {
    throw new DecodeError('bad-value', `a SACK option carries 1..4 blocks, not ${count}`)
  }
  const size = sackOptionSize(count)
  if (offset < 0 || out.length - offset < size) throw new DecodeError('short-buffer', `need ${size} bytes for the SACK option`)
  out[offset] = SACK_MAGIC_0
  out[offset + 1] = SACK_MAGIC_1
  out[offset + 2] = SACK_MAGIC_2
  out[offset + 3] = SACK_MAGIC_3
  out[offset + 4] = count
  for (let i = 0; i < count; i++) {
    const o = offset + SACK_HEADER_SIZE + i * SACK_BLOCK_SIZE
    writeU32(out, o, pairs[2 * i]! >>> 0)
    writeU32(out, o + 4, pairs[2 * i + 1]! >>> 0)
  }
  return size
}

/** Allocating encoder for tests. */
export function encodeSack(blocks: readonly SackBlock[]): Uint8Array {
  const pairs: number[] = []
  for (const b of blocks) pairs.push(b.left, b.right)
  const out = new Uint8Array(sackOptionSize(blocks.length))
  encodeSackInto(pairs, blocks.length, out, 0)
  return out
}
