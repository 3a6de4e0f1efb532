/**
 * Byte buffers shared by every stream of one endpoint (one daemon): the send
 * and receive rings take theirs here while they hold live bytes and give them
 * back once drained, so an idle connection holds no buffer at all and a busy
 * one reuses what another just freed instead of allocating.
 *
 * Free buffers are kept by exact length (the rings ask for powers of two, or
 * their limit), at most `maxPooledBytes` in all: a buffer given back beyond
 * that is dropped for the garbage collector. Pure: no timers, no I/O.
 */

export interface BufferPoolStats {
  /** Buffers handed out by acquire(), and how many of them were new allocations. */
  acquired: number
  allocated: number
  /** Buffers given back, and how many of them were dropped because the pool was full. */
  released: number
  dropped: number
  /** Bytes held free in the pool now. */
  pooledBytes: number
}

/** Default bound of the free buffers of one endpoint. */
export const DEFAULT_POOLED_BYTES = 4 * 1024 * 1024

export class BufferPool {
  readonly maxPooledBytes: number
  private readonly free = new Map<number, Buffer[]>()
  private pooled = 0
  private readonly st: BufferPoolStats = { acquired: 0, allocated: 0, released: 0, dropped: 0, pooledBytes: 0 }

  constructor(maxPooledBytes: number = DEFAULT_POOLED_BYTES) {
    if (!(maxPooledBytes >= 0)) throw new RangeError(`maxPooledBytes ${maxPooledBytes} must be >= 0`)
    this.maxPooledBytes = maxPooledBytes
  }

  /** Bytes held free now (never above maxPooledBytes). */
  get pooledBytes(): number {
    return this.pooled
  }

  stats(): BufferPoolStats {
    return { ...this.st, pooledBytes: this.pooled }
  }

  /**
   * A buffer of at least `size` bytes (contents undefined): a free one of
   * exactly `size` if the pool has it, else the smallest free one up to
   * `max` bytes (so a pool full of one size still serves a smaller request
   * instead of allocating while it drops what comes back), else a new one of
   * `size` bytes.
   */
  acquire(size: number, max: number = size): Buffer {
    this.st.acquired++
    let list = this.free.get(size)
    if (list === undefined || list.length === 0) {
      list = undefined
      let best = Number.POSITIVE_INFINITY
      for (const [len, l] of this.free) {
        if (len > size && len <= max && len < best && l.length > 0) {
          best = len
          list = l
        }
      }
    }
    if (list !== undefined && list.length > 0) {
      const buf = list.pop()!
      this.pooled -= buf.length
      return buf
    }
    this.st.allocated++
    return Buffer.allocUnsafeSlow(size)
  }

  /** Gives `buf` back; the caller must not touch it any more. */
  release(buf: Buffer): void {
    const size = buf.length
    if (size === 0) return
    this.st.released++
    if (this.pooled + size > this.maxPooledBytes) {
      this.st.dropped++
      return
    }
    let list = this.free.get(size)
    if (list === undefined) {
      list = []
      this.free.set(size, list)
    }
    list.push(buf)
    this.pooled += size
  }

  /** Drops every free buffer (the endpoint closed). */
  clear(): void {
    this.free.clear()
    this.pooled = 0
  }
}
