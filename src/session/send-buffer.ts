/**
 * The sender's data: written bytes kept in a ring until acknowledged, and the
 * segments cut from them as records (offset, length, when and how often sent,
 * scoreboard flags) in a second ring, struct of arrays. A retransmission reads
 * the bytes again through its record, so it repeats the original boundaries
 * (docs/wire.md §20 item 10) without keeping copies.
 *
 * Positions are stream offsets: una ≤ nxt ≤ end, where [una, nxt) was sent and
 * is unacknowledged (one record per segment, sorted by offset) and [nxt, end)
 * is written but not yet sent. The scoreboard (RFC 6675) marks each record in
 * flight, SACKED or LOST (waiting for retransmission); the byte and segment
 * counts of both marks are kept here, so pipe() is arithmetic, not a scan.
 *
 * Records are addressed two ways: `k` counts from the oldest (0 … count−1) and
 * `i = index(k)` is the slot in the arrays, valid until the next pop or push.
 */
import { MAX_SACK_BLOCKS } from '../protocol/sack.js'
import { ByteRing } from './byte-ring.js'
import type { BufferPool } from './buffer-pool.js'
import type { StreamStats } from './stream-config.js'
import type { Millis } from './types.js'

// Record flags.
const SACKED = 1
/** Deemed lost and waiting for retransmission (not counted in the pipe). */
const LOST = 2
/** Last sent as a tail loss probe. */
const PROBED = 4
const MAX_U8 = 255
const INITIAL_RECORDS = 16 // a power of two: slots are (head + k) & (capacity − 1)

/** Bytes and records carrying one scoreboard mark, so that pipe needs no scan. */
class Tally {
  bytes = 0
  records = 0

  add(len: number): void {
    this.bytes += len
    this.records++
  }

  remove(len: number): void {
    this.bytes -= len
    this.records--
  }

  clear(): void {
    this.bytes = 0
    this.records = 0
  }
}

export class SendBuffer {
  private readonly ring: ByteRing
  private readonly maxBytes: number
  private _una = 0
  private _nxt = 0
  private _end = 0

  private segOff = new Float64Array(INITIAL_RECORDS)
  private segLen = new Int32Array(INITIAL_RECORDS)
  private segSentAt = new Float64Array(INITIAL_RECORDS)
  /** Transmission order: counts every data segment sent, so "sent after" needs no timestamps. */
  private segXmit = new Float64Array(INITIAL_RECORDS)
  private segTx = new Uint8Array(INITIAL_RECORDS)
  private segFlags = new Uint8Array(INITIAL_RECORDS)
  private _head = 0
  private _count = 0
  /** Data segments sent, first transmissions and repeats. */
  private xmitCount = 0
  private repeats = 0
  private readonly sacked = new Tally()
  /** Deemed lost, waiting for retransmission. */
  private readonly lost = new Tally()
  /** Records below this k are not LOST: where the search for the next retransmission starts. */
  private lostScan = 0

  /**
   * `maxBytes`: how much may be written and unacknowledged. The ring takes a
   * buffer of at least `initialRing` bytes (from `pool`) when data is written,
   * grows as needed and gives it back whenever everything is acknowledged.
   */
  constructor(maxBytes: number, initialRing: number, pool: BufferPool | null = null) {
    this.maxBytes = maxBytes
    this.ring = new ByteRing(Math.min(initialRing, maxBytes), pool)
  }

  /** Bytes of ring buffer held now (0 while nothing is unacknowledged). */
  get ringCapacity(): number {
    return this.ring.capacity
  }

  // ── offsets and byte counts ──

  /** Oldest unacknowledged offset. */
  get una(): number { return this._una }

  /** Next offset to send for the first time. */
  get nxt(): number { return this._nxt }

  /** End of the written data. */
  get end(): number { return this._end }

  /** Room for write(). */
  get capacity(): number {
    return this.maxBytes - (this._end - this._una)
  }

  /** Written, not yet sent. */
  get unsent(): number {
    return this._end - this._nxt
  }

  /** Sent and not cumulatively acknowledged (the peer's window counts these). */
  get outstanding(): number {
    return this._nxt - this._una
  }

  /** Outstanding and not SACKed: what the congestion controller sees in flight. */
  get flight(): number {
    return this._nxt - this._una - this.sacked.bytes
  }

  /** RFC 6675 pipe: outstanding, not SACKed and not deemed lost. */
  get pipe(): number {
    return this._nxt - this._una - this.sacked.bytes - this.lost.bytes
  }

  /** una plus SACKed bytes: grows by what one ACK delivered. */
  get delivered(): number {
    return this._una + this.sacked.bytes
  }

  get sackedSegments(): number { return this.sacked.records }

  get lostSegments(): number { return this.lost.records }

  /** Data segments sent, and how many of them repeated a record sent before. */
  fillStats(st: StreamStats): void {
    st.dataSegmentsSent = this.xmitCount
    st.retransmits = this.repeats
  }

  /** Takes data[0..n) (the caller checked capacity). */
  write(data: Uint8Array, n: number): void {
    this.ring.reserve(this._end + n - this._una, this.maxBytes, this._una, this._end)
    this.ring.write(this._end, data, 0, n)
    this._end += n
  }

  /**
   * Whether `len` bytes at nxt would begin like a SACK option: data must never
   * start with that pattern (§17 item 14), or the peer would read it as SACK.
   */
  nextLooksLikeSack(len: number): boolean {
    const r = this.ring
    const off = this._nxt
    if (r.byteAt(off) !== 0x53 || r.byteAt(off + 1) !== 0x41 || r.byteAt(off + 2) !== 0x43 || r.byteAt(off + 3) !== 0x4b) {
      return false
    }
    const count = r.byteAt(off + 4)
    return count >= 1 && count <= MAX_SACK_BLOCKS && len >= 5 + 8 * count
  }

  /** Everything unacknowledged is dropped: the peer will not take it. */
  abandon(): void {
    this._count = 0
    this._head = 0
    this.sacked.clear()
    this.lost.clear()
    this.lostScan = 0
    this._una = this._nxt = this._end
    this.ring.release()
  }

  // ── segment records ──

  /** Number of records (sent, unacknowledged segments). */
  get count(): number { return this._count }

  /** Slot of the oldest record. */
  get head(): number { return this._head }

  /** Slot of the k-th oldest record. */
  index(k: number): number {
    return (this._head + k) & (this.segOff.length - 1)
  }

  offsetOf(i: number): number {
    return this.segOff[i]!
  }

  lengthOf(i: number): number {
    return this.segLen[i]!
  }

  endOf(i: number): number {
    return this.segOff[i]! + this.segLen[i]!
  }

  sentAt(i: number): Millis {
    return this.segSentAt[i]!
  }

  /** Position in the order of all data transmissions (the last one of this record). */
  sendOrder(i: number): number {
    return this.segXmit[i]!
  }

  /** How often the record was sent (saturates at 255). */
  transmissions(i: number): number {
    return this.segTx[i]!
  }

  isSacked(i: number): boolean {
    return (this.segFlags[i]! & SACKED) !== 0
  }

  isLost(i: number): boolean {
    return (this.segFlags[i]! & LOST) !== 0
  }

  /** Neither SACKed nor deemed lost: in the pipe. */
  isInFlight(i: number): boolean {
    return (this.segFlags[i]! & (SACKED | LOST)) === 0
  }

  wasProbed(i: number): boolean {
    return (this.segFlags[i]! & PROBED) !== 0
  }

  /** Cuts the next `len` unsent bytes into a new record; returns its slot. */
  cutSegment(len: number): number {
    if (this._count === this.segOff.length) this.growRecords()
    const i = (this._head + this._count) & (this.segOff.length - 1)
    this.segOff[i] = this._nxt
    this.segLen[i] = len
    this.segTx[i] = 0
    this.segFlags[i] = 0
    this._count++
    this._nxt += len
    return i
  }

  /** Copies record i's bytes to `out[at..]` and notes the transmission; returns the length. */
  transmit(i: number, now: Millis, out: Uint8Array, at: number): number {
    const len = this.segLen[i]!
    this.ring.read(this.segOff[i]!, out, at, len)
    this.segSentAt[i] = now
    this.segXmit[i] = ++this.xmitCount
    if (this.segTx[i]! > 0) this.repeats++
    if (this.segTx[i]! < MAX_U8) this.segTx[i] = this.segTx[i]! + 1
    return len
  }

  /** Record i is about to be sent again (RTO, loss repair or probe): no longer lost or probed. */
  prepareRetransmit(i: number): void {
    if ((this.segFlags[i]! & LOST) !== 0) this.unmarkLost(i)
    this.segFlags[i] = this.segFlags[i]! & ~PROBED
  }

  markProbed(i: number): void {
    this.segFlags[i] = this.segFlags[i]! | PROBED
  }

  /** Marks record i SACKed (and no longer lost); false if it already was. */
  markSacked(i: number): boolean {
    const f = this.segFlags[i]!
    if ((f & SACKED) !== 0) return false
    if ((f & LOST) !== 0) this.unmarkLost(i)
    this.segFlags[i] = this.segFlags[i]! | SACKED
    this.sacked.add(this.segLen[i]!)
    return true
  }

  /** Marks the k-th record (slot i) lost; the caller checked it is in flight. */
  markLost(k: number, i: number): void {
    this.segFlags[i] = this.segFlags[i]! | LOST
    this.lost.add(this.segLen[i]!)
    if (k < this.lostScan) this.lostScan = k
  }

  private unmarkLost(i: number): void {
    this.segFlags[i] = this.segFlags[i]! & ~LOST
    this.lost.remove(this.segLen[i]!)
  }

  /** Marks every record in flight lost (after a retransmission timeout). */
  markAllLost(): void {
    for (let k = 0; k < this._count; k++) {
      const i = this.index(k)
      if (this.isInFlight(i)) this.markLost(k, i)
    }
  }

  /**
   * The oldest lost record to send again, if the window allows (RFC 6675
   * NextSeg rule 1): with anything in the pipe, pipe + its length must fit in
   * `cwnd`. Returns its slot, or −1.
   */
  nextLostToSend(cwnd: number): number {
    for (let k = this.lostScan; k < this._count; k++) {
      const i = this.index(k)
      if ((this.segFlags[i]! & LOST) === 0) continue
      const pipe = this.pipe
      if (pipe > 0 && pipe + this.segLen[i]! > cwnd) {
        this.lostScan = k
        return -1
      }
      this.lostScan = k + 1
      return i
    }
    this.lostScan = this._count
    return -1
  }

  /** Slot of the oldest record not SACKed, or −1. */
  firstUnsacked(): number {
    for (let k = 0; k < this._count; k++) {
      const i = this.index(k)
      if ((this.segFlags[i]! & SACKED) === 0) return i
    }
    return -1
  }

  /** Slot of the newest record not SACKed, or −1. */
  lastUnsacked(): number {
    for (let k = this._count - 1; k >= 0; k--) {
      const i = this.index(k)
      if ((this.segFlags[i]! & SACKED) === 0) return i
    }
    return -1
  }

  /** k of the first record whose offset is ≥ off (binary search; records are sorted). */
  lowerBound(off: number): number {
    let lo = 0
    let hi = this._count
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      if (this.segOff[this.index(mid)]! < off) lo = mid + 1
      else hi = mid
    }
    return lo
  }

  /** Removes the oldest record (cumulatively acknowledged) from the counts. */
  popHead(): void {
    const i = this._head
    const f = this.segFlags[i]!
    if ((f & SACKED) !== 0) this.sacked.remove(this.segLen[i]!)
    else if ((f & LOST) !== 0) this.lost.remove(this.segLen[i]!)
    this._head = (i + 1) & (this.segOff.length - 1)
    this._count--
    if (this.lostScan > 0) this.lostScan--
  }

  /** A cumulative ACK inside the oldest record (never from a well-behaved peer): trims it to start at `ackOff`. */
  trimHead(ackOff: number): void {
    const i = this._head
    if (this.segOff[i]! >= ackOff) return
    const cut = ackOff - this.segOff[i]!
    if ((this.segFlags[i]! & SACKED) !== 0) this.sacked.bytes -= cut
    if ((this.segFlags[i]! & LOST) !== 0) this.lost.bytes -= cut
    this.segOff[i] = ackOff
    this.segLen[i] = this.segLen[i]! - cut
  }

  /** The connection closed: no byte is sent or read again, so the ring's buffer goes back (the offsets stay). */
  dropBytes(): void {
    this.ring.release()
  }

  /** Everything below `ackOff` is acknowledged (the records below it were popped). */
  acknowledge(ackOff: number): void {
    this._una = ackOff
    if (ackOff === this._end) this.ring.release()
  }

  private growRecords(): void {
    const h = this._head
    const c = this._count
    const n = 2 * this.segOff.length
    this.segOff = unwrap(this.segOff, new Float64Array(n), h, c)
    this.segLen = unwrap(this.segLen, new Int32Array(n), h, c)
    this.segSentAt = unwrap(this.segSentAt, new Float64Array(n), h, c)
    this.segXmit = unwrap(this.segXmit, new Float64Array(n), h, c)
    this.segTx = unwrap(this.segTx, new Uint8Array(n), h, c)
    this.segFlags = unwrap(this.segFlags, new Uint8Array(n), h, c)
    this._head = 0
  }
}

/** Copies `count` ring entries starting at `head` to the start of `next`, in order. */
function unwrap<T extends Float64Array | Int32Array | Uint8Array>(old: T, next: T, head: number, count: number): T {
  const first = Math.min(count, old.length - head)
  next.set(old.subarray(head, head + first))
  if (first < count) next.set(old.subarray(0, count - first), first)
  return next
}
