/**
 * Bytes addressed by stream offset (a plain number from 0 that never wraps):
 * offset `o` lives at `o % capacity`, so a live range [from, to) no longer
 * than the capacity can be written and read without moving anything. The
 * send buffer keeps written-but-unacknowledged data in one; the receiver
 * writes segments straight in at their offset, in or out of order.
 */
export class ByteRing {
  private buf: Buffer

  constructor(initialSize: number) {
    this.buf = Buffer.allocUnsafe(initialSize)
  }

  get capacity(): number {
    return this.buf.length
  }

  /** Copies data[start..start+n) into the ring at stream offset `off`. */
  write(off: number, data: Uint8Array, start: number, n: number): void {
    const ring = this.buf
    const cap = ring.length
    const p = off % cap
    const first = Math.min(n, cap - p)
    if (start === 0 && first === data.length) ring.set(data, p)
    else ring.set(data.subarray(start, start + first), p)
    if (first < n) ring.set(data.subarray(start + first, start + n), 0)
  }

  /** Copies n bytes at stream offset `off` into `out[at..]`. */
  read(off: number, out: Uint8Array, at: number, n: number): void {
    const ring = this.buf
    const cap = ring.length
    const p = off % cap
    const first = Math.min(n, cap - p)
    ring.copy(out, at, p, p + first)
    if (first < n) ring.copy(out, at + first, 0, n - first)
  }

  byteAt(off: number): number {
    return this.buf[off % this.buf.length]!
  }

  /**
   * Makes room for `needed` live bytes: the capacity doubles until they fit
   * (never beyond `limit`), and the live range [from, to) moves to its
   * positions in the larger ring.
   */
  reserve(needed: number, limit: number, from: number, to: number): void {
    const old = this.buf
    if (needed <= old.length) return
    let size = old.length
    while (size < needed) size *= 2
    size = Math.min(size, limit)
    const next = Buffer.allocUnsafe(size)
    let o = from
    while (o < to) {
      const po = o % old.length
      const pn = o % size
      const n = Math.min(to - o, old.length - po, size - pn)
      old.copy(next, pn, po, po + n)
      o += n
    }
    this.buf = next
  }
}
