/**
 * The receiver's data: segments are written straight into a ring at their
 * stream offset, in or out of order. [readOff, nxt) is in order and waits for
 * read(); beyond nxt, the ranges received out of order are a short sorted list
 * of [start, end) pairs, which also yields the SACK blocks (the lowest four,
 * as the reference sends them, docs/wire.md §6.7).
 *
 * The advertised window is the free space in 4096-byte slots, never 0 (the
 * reference reads 0 as "no limit", §20 item 11). Because a full buffer still
 * advertises one slot, the ring may hold up to one slot and a segment more
 * than the buffer (§17 item 15): that is the hard limit.
 */
import { MAX_SACK_BLOCKS, encodeSackInto } from '../protocol/sack.js'
import { ByteRing } from './byte-ring.js'
import type { BufferPool } from './buffer-pool.js'
import { seqDiff } from './seq.js'
import type { StreamStats } from './stream-config.js'
import { WINDOW_UNIT } from './stream-config.js'

/** What became of a segment given to accept(). */
export const Accepted = {
  /** Extends the in-order data (nxt moved). */
  InOrder: 0,
  /** In order, and it joined ranges held out of order. */
  FilledGap: 1,
  /** Held beyond a gap. */
  OutOfOrder: 2,
  /** Everything in it had arrived before. */
  Duplicate: 3,
  /** Nothing in it lies before the end of the stream. */
  BeyondEnd: 4,
  /** Dropped: beyond the hard limit, or too many out-of-order ranges. */
  NoSpace: 5,
} as const
export type Accepted = (typeof Accepted)[keyof typeof Accepted]

export interface ReceiveAssemblerConfig {
  /** The receive buffer the window advertises. */
  receiveBufferSize: number
  mss: number
  /** Distinct out-of-order ranges held. */
  maxOutOfOrderRanges: number
  /** Where the ring takes its buffers (null: allocated and dropped). */
  buffers?: BufferPool | null
}

/** Smallest ring buffer taken: it doubles as segments need and goes back to the pool when everything is read. */
const INITIAL_RING = 4 * 1024

export class ReceiveAssembler {
  private readonly ring: ByteRing
  private readonly bufferSize: number
  private readonly hardLimit: number
  private readonly maxRanges: number
  private _readOff = 0
  private _nxt = 0
  private readonly oooStart: number[] = []
  private readonly oooEnd: number[] = []
  private readonly sackOut = new Uint32Array(2 * MAX_SACK_BLOCKS)
  /** How often accept() answered each code, indexed by it. */
  private readonly outcomes = new Float64Array(Accepted.NoSpace + 1)

  constructor(cfg: ReceiveAssemblerConfig) {
    this.bufferSize = cfg.receiveBufferSize
    this.hardLimit = cfg.receiveBufferSize + WINDOW_UNIT + cfg.mss
    this.maxRanges = cfg.maxOutOfOrderRanges
    this.ring = new ByteRing(Math.min(INITIAL_RING, this.hardLimit), cfg.buffers ?? null)
  }

  /** Bytes of ring buffer held now (0 while nothing waits to be read or is held out of order). */
  get ringCapacity(): number {
    return this.ring.capacity
  }

  /** Next offset expected in order. */
  get nxt(): number {
    return this._nxt
  }

  /** Bytes waiting for read(). */
  get readable(): number {
    return this._nxt - this._readOff
  }

  get hasOutOfOrder(): boolean {
    return this.oooStart.length > 0
  }

  /** Whether a stream end at `off` lies beyond what arrived in order and within the hard limit. */
  canEndAt(off: number): boolean {
    return off > this._nxt && off <= this._readOff + this.hardLimit
  }

  /** The stream offset of sequence number `seq`, where `dataIsn` is the sequence number of offset 0. */
  offsetOf(seq: number, dataIsn: number): number {
    return this._nxt + seqDiff(seq, (dataIsn + this._nxt) >>> 0)
  }

  /** Segments given to accept(), and those that were duplicates, out of order or dropped. */
  fillStats(st: StreamStats): void {
    const c = this.outcomes
    let n = 0
    for (let i = 0; i < c.length; i++) n += c[i]!
    st.dataSegmentsReceived = n
    st.duplicateSegments = c[Accepted.Duplicate]!
    st.outOfOrderSegments = c[Accepted.OutOfOrder]!
    st.droppedNoSpace = c[Accepted.NoSpace]!
  }

  /**
   * Takes payload[0..) arriving at stream offset `off`, cut at `endOff` (the
   * end of the stream when known, else −1).
   */
  accept(off: number, payload: Uint8Array, endOff: number): Accepted {
    const code = this.place(off, payload, endOff)
    this.outcomes[code]++
    return code
  }

  private place(off: number, payload: Uint8Array, endOff: number): Accepted {
    let start = 0
    let len = payload.length
    if (off < this._nxt) {
      if (off + len <= this._nxt) return Accepted.Duplicate
      start = this._nxt - off // trim the already-received head
      len -= start
      off = this._nxt
    }
    if (endOff >= 0 && off + len > endOff) {
      len = endOff - off
      if (len <= 0) return Accepted.BeyondEnd
    }
    const end = off + len
    if (end - this._readOff > this.hardLimit) return Accepted.NoSpace
    if (off > this._nxt && !this.insertRange(off, end)) return Accepted.NoSpace
    this.grow(end - this._readOff)
    this.ring.write(off, payload, start, len)
    if (off > this._nxt) return Accepted.OutOfOrder
    this._nxt = end
    if (this.oooStart.length === 0) return Accepted.InOrder
    this.mergeInOrder()
    return Accepted.FilledGap
  }

  /** The stream ends at `off` (≤ nxt): data received beyond it is not the peer's. */
  endAt(off: number): void {
    if (this._nxt > off) this._nxt = off
    this.releaseIfDrained()
  }

  /** Forgets the out-of-order ranges (the stream ended before them). */
  clearOutOfOrder(): void {
    this.oooStart.length = 0
    this.oooEnd.length = 0
    this.releaseIfDrained()
  }

  /** Nobody will read any more (local abort): what is held is dropped and the ring's buffer goes back. */
  discard(): void {
    this._readOff = this._nxt
    this.clearOutOfOrder()
  }

  /** Copies in-order bytes to `into`; returns the count. */
  read(into: Uint8Array): number {
    const n = Math.min(this._nxt - this._readOff, into.length)
    this.ring.read(this._readOff, into, 0, n)
    this._readOff += n
    this.releaseIfDrained()
    return n
  }

  /** Nothing waits to be read and nothing is held out of order: the ring needs no buffer. */
  private releaseIfDrained(): void {
    if (this._readOff === this._nxt && this.oooStart.length === 0) this.ring.release()
  }

  /** The window to advertise, in slots: free buffer space, 1 … 65535. */
  window(): number {
    const slots = Math.floor((this.bufferSize - (this._nxt - this._readOff)) / WINDOW_UNIT)
    return slots < 1 ? 1 : slots > 0xffff ? 0xffff : slots
  }

  /** The window of an empty buffer, in slots. */
  get maxWindow(): number {
    return Math.floor(this.bufferSize / WINDOW_UNIT)
  }

  /**
   * Writes a SACK option for the lowest out-of-order ranges at `out[at]`
   * (sequence numbers from `dataIsn`); returns its size, 0 with no ranges.
   */
  writeSack(out: Uint8Array, at: number, dataIsn: number): number {
    const n = Math.min(MAX_SACK_BLOCKS, this.oooStart.length)
    if (n === 0) return 0
    for (let i = 0; i < n; i++) {
      this.sackOut[2 * i] = (dataIsn + this.oooStart[i]!) >>> 0
      this.sackOut[2 * i + 1] = (dataIsn + this.oooEnd[i]!) >>> 0
    }
    return encodeSackInto(this.sackOut, n, out, at)
  }

  private grow(needed: number): void {
    let liveEnd = this._nxt
    if (this.oooEnd.length > 0) liveEnd = Math.max(liveEnd, this.oooEnd[this.oooEnd.length - 1]!)
    this.ring.reserve(needed, this.hardLimit, this._readOff, liveEnd)
  }

  /** Adds [s, e) to the sorted out-of-order ranges, merging overlaps. False if full. */
  private insertRange(s: number, e: number): boolean {
    const S = this.oooStart
    const E = this.oooEnd
    let i = 0
    while (i < S.length && E[i]! < s) i++
    if (i < S.length && S[i]! <= e) {
      // Overlaps or touches range i (and maybe following ones).
      if (s < S[i]!) S[i] = s
      if (e > E[i]!) E[i] = e
      while (i + 1 < S.length && S[i + 1]! <= E[i]!) {
        if (E[i + 1]! > E[i]!) E[i] = E[i + 1]!
        S.splice(i + 1, 1)
        E.splice(i + 1, 1)
      }
      return true
    }
    if (S.length >= this.maxRanges) return false
    S.splice(i, 0, s)
    E.splice(i, 0, e)
    return true
  }

  /** nxt moved: ranges it reached join the in-order data. */
  private mergeInOrder(): void {
    const S = this.oooStart
    const E = this.oooEnd
    let k = 0
    while (k < S.length && S[k]! <= this._nxt) {
      if (E[k]! > this._nxt) this._nxt = E[k]!
      k++
    }
    if (k > 0) {
      S.splice(0, k)
      E.splice(0, k)
    }
  }
}
