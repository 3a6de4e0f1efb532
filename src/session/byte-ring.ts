/**
 * Bytes addressed by stream offset (a plain number from 0 that never wraps):
 * offset `o` lives at `o % capacity`, so a live range [from, to) no longer
 * than the capacity can be written and read without moving anything. The
 * send buffer keeps written-but-unacknowledged data in one; the receiver
 * writes segments straight in at their offset, in or out of order.
 *
 * Memory on demand: the ring holds no buffer until bytes arrive, grows by
 * doubling as the live range needs (never beyond the owner's limit), and
 * gives its buffer back (`release`, when the owner has nothing live) to the
 * endpoint's `BufferPool`. The next buffer is taken at the size the live
 * bytes reached while the last one was held, so a busy connection does not
 * grow again from the minimum after every drain, and one that went quiet
 * comes back small.
 */
import type { BufferPool } from './buffer-pool.js'

const EMPTY = Buffer.alloc(0)
/** A pooled buffer up to this many times the size asked for is taken rather than allocating a new one. */
const SPARE_FACTOR = 8

export class ByteRing {
  private buf: Buffer = EMPTY
  private readonly pool: BufferPool | null
  /** Smallest buffer taken. */
  private readonly minSize: number
  /** Size of the next buffer taken. */
  private nextSize: number
  /** Most live bytes reserved while the current buffer is held. */
  private peak = 0

  constructor(minSize: number, pool: BufferPool | null = null) {
    if (!(minSize >= 1)) throw new RangeError(`ring size ${minSize} must be >= 1`)
    this.minSize = minSize
    this.nextSize = minSize
    this.pool = pool
  }

  /** Bytes of the buffer held now (0 when released). */
  get capacity(): number {
    return this.buf.length
  }

  /** Copies data[start..start+n) into the ring at stream offset `off` (the caller reserved room). */
  write(off: number, data: Uint8Array, start: number, n: number): void {
    if (n === 0) return
    if (this.buf.length === 0) this.take(n, Number.POSITIVE_INFINITY)
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
    if (n === 0) return
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
   * Makes room for `needed` live bytes: a buffer is taken if none is held, or
   * the capacity doubles until they fit (never beyond `limit`), and the live
   * range [from, to) moves to its positions in the larger ring.
   */
  reserve(needed: number, limit: number, from: number, to: number): void {
    if (needed > this.peak) this.peak = needed
    const old = this.buf
    if (needed <= old.length) return
    if (old.length === 0) {
      this.take(needed, limit)
      return
    }
    let want = old.length
    while (want < needed) want *= 2
    const next = this.alloc(Math.min(want, limit), limit)
    const size = next.length
    let o = from
    while (o < to) {
      const po = o % old.length
      const pn = o % size
      const n = Math.min(to - o, old.length - po, size - pn)
      old.copy(next, pn, po, po + n)
      o += n
    }
    this.buf = next
    this.pool?.release(old)
  }

  /**
   * Nothing is live any more: the buffer goes back to the pool and the ring
   * holds none until the next reserve or write.
   */
  release(): void {
    const old = this.buf
    if (old.length === 0) return
    let size = this.minSize
    while (size < this.peak && size < old.length) size *= 2
    this.nextSize = Math.min(size, old.length)
    this.peak = 0
    this.buf = EMPTY
    this.pool?.release(old)
  }

  private take(needed: number, limit: number): void {
    let size = this.nextSize
    while (size < needed) size *= 2
    this.buf = this.alloc(Math.max(Math.min(size, limit), needed), Math.max(limit, needed))
    if (needed > this.peak) this.peak = needed
  }

  /** `size` bytes, or a free pooled buffer up to 8 times larger (never beyond `limit`). */
  private alloc(size: number, limit: number): Buffer {
    if (this.pool === null) return Buffer.allocUnsafe(size)
    return this.pool.acquire(size, Math.min(limit, size * SPARE_FACTOR))
  }
}
