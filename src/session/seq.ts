/**
 * RFC 1982 serial arithmetic on 32-bit sequence numbers (docs/wire.md §6.5):
 * `a` is after `b` iff int32(a − b) > 0, so comparisons survive the wrap at 2^32.
 *
 * Inside a connection, byte positions are kept as plain stream offsets
 * (numbers that count from 0 and never wrap below 2^53); these helpers convert
 * at the wire boundary only.
 */

/** Signed distance a − b in the range [−2^31, 2^31). */
export function seqDiff(a: number, b: number): number {
  return (a - b) | 0
}

export function seqLt(a: number, b: number): boolean {
  return ((a - b) | 0) < 0
}

export function seqLe(a: number, b: number): boolean {
  return ((a - b) | 0) <= 0
}

export function seqGt(a: number, b: number): boolean {
  return ((a - b) | 0) > 0
}

export function seqGe(a: number, b: number): boolean {
  return ((a - b) | 0) >= 0
}

export function seqAdd(a: number, n: number): number {
  return (a + n) >>> 0
}
