/**
 * `ByteChunks`: bytes received in chunks split anywhere, read back in exact
 * sizes. Chunks are kept by reference until consumed (no concatenation per
 * chunk); a read that sits inside one chunk is a view, one that spans chunks
 * is copied once. The incremental decoders of the data-exchange and event
 * frames (§13.3, §13.4) sit on it.
 */
export class ByteChunks {
  private readonly chunks: Uint8Array[] = []
  /** Index of the first unconsumed chunk. */
  private head = 0
  /** Bytes already consumed from `chunks[head]`. */
  private headOffset = 0
  private total = 0

  /** Bytes held and not yet read. */
  get length(): number {
    return this.total
  }

  push(chunk: Uint8Array): void {
    if (chunk.length === 0) return
    this.chunks.push(chunk)
    this.total += chunk.length
  }

  /** The byte at `offset` from the read position (caller checks `length`). */
  peekByte(offset: number): number {
    let i = this.head
    let o = this.headOffset + offset
    while (o >= this.chunks[i]!.length) {
      o -= this.chunks[i]!.length
      i++
    }
    return this.chunks[i]![o]!
  }

  /** Big-endian u16 / u32 at `offset` from the read position (caller checks `length`). */
  peekU16(offset: number): number {
    return (this.peekByte(offset) << 8) | this.peekByte(offset + 1)
  }

  peekU32(offset: number): number {
    return ((this.peekByte(offset) << 24) >>> 0) + ((this.peekByte(offset + 1) << 16) | (this.peekByte(offset + 2) << 8) | this.peekByte(offset + 3))
  }

  /** Removes and returns the next `n` bytes (caller checks `length`). */
  take(n: number): Uint8Array {
    if (n > this.total) throw new RangeError(`take(${n}) with ${this.total} bytes held`)
    this.total -= n
    const first = this.chunks[this.head]
    if (n === 0 || first === undefined) return new Uint8Array(0)
    const avail = first.length - this.headOffset
    if (n <= avail) {
      const view = first.subarray(this.headOffset, this.headOffset + n)
      this.advance(n)
      return view
    }
    const out = new Uint8Array(n)
    let filled = 0
    while (filled < n) {
      const c = this.chunks[this.head]!
      const k = Math.min(n - filled, c.length - this.headOffset)
      out.set(c.subarray(this.headOffset, this.headOffset + k), filled)
      filled += k
      this.advance(k)
    }
    return out
  }

  /** Drops everything held. */
  clear(): void {
    this.chunks.length = 0
    this.head = 0
    this.headOffset = 0
    this.total = 0
  }

  private advance(n: number): void {
    this.headOffset += n
    while (this.head < this.chunks.length && this.headOffset >= this.chunks[this.head]!.length) {
      this.headOffset -= this.chunks[this.head]!.length
      this.head++
    }
    // Compact now and then so the array does not grow without bound.
    if (this.head > 64 || this.head === this.chunks.length) {
      this.chunks.splice(0, this.head)
      this.head = 0
    }
  }
}
