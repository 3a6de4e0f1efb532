/**
 * The reflector's NAT ports that are not in use: a FIFO ring of free slots
 * and a FIFO ring of released slots in quarantine (slot = NAT port − portMin;
 * the flow table owns the live ones). A released port waits `quarantineMs`
 * before reuse, so late segments of an old flow cannot land in a new one,
 * and FIFO order means the port handed out next is the one free the longest.
 *
 * Both rings hold at most `size` slots and never allocate after construction.
 * Quarantine deadlines are `release` times plus one constant, so the ring is
 * also in deadline order and draining stops at the first slot still waiting.
 */
import type { RandomSource } from '../random.js'

export class NatPortPool {
  /** Number of slots (ports in the range). */
  readonly size: number
  private readonly quarantineMs: number
  private readonly freeRing: Int32Array
  private freeHead = 0
  private freeCount: number
  private readonly quarantineSlot: Int32Array
  private readonly quarantineUntil: Float64Array
  private quarantineHead = 0
  private quarantineCount = 0

  /** Every slot starts free, ascending, or shuffled by `random` so ports are hard to guess. */
  constructor(size: number, quarantineMs: number, random?: RandomSource) {
    this.size = size
    this.quarantineMs = quarantineMs
    this.freeRing = new Int32Array(size)
    for (let i = 0; i < size; i++) this.freeRing[i] = i
    if (random) {
      for (let i = size - 1; i > 0; i--) {
        const j = random.u32() % (i + 1)
        const t = this.freeRing[i]!
        this.freeRing[i] = this.freeRing[j]!
        this.freeRing[j] = t
      }
    }
    this.freeCount = size
    this.quarantineSlot = new Int32Array(size)
    this.quarantineUntil = new Float64Array(size)
  }

  /** Slots ready to hand out (call `drain` first to count expired quarantine). */
  get free(): number {
    return this.freeCount
  }

  get quarantined(): number {
    return this.quarantineCount
  }

  /** Moves slots whose quarantine ended at or before `now` to the free ring. */
  drain(now: number): void {
    const n = this.size
    while (this.quarantineCount > 0 && this.quarantineUntil[this.quarantineHead]! <= now) {
      this.pushFree(this.quarantineSlot[this.quarantineHead]!)
      this.quarantineHead = this.quarantineHead + 1 === n ? 0 : this.quarantineHead + 1
      this.quarantineCount--
    }
  }

  /** The next free slot, or -1 when none is free (quarantine is not drained here). */
  take(): number {
    if (this.freeCount === 0) return -1
    const slot = this.freeRing[this.freeHead]!
    this.freeHead = this.freeHead + 1 === this.size ? 0 : this.freeHead + 1
    this.freeCount--
    return slot
  }

  /** A slot back from the flow table: quarantined until `now + quarantineMs`, or free at once when that is 0. */
  release(slot: number, now: number): void {
    if (this.quarantineMs <= 0) {
      this.pushFree(slot)
      return
    }
    const n = this.size
    let tail = this.quarantineHead + this.quarantineCount
    if (tail >= n) tail -= n
    this.quarantineSlot[tail] = slot
    this.quarantineUntil[tail] = now + this.quarantineMs
    this.quarantineCount++
  }

  /**
   * For `checkInvariants`: marks every free slot `freeMark` and every
   * quarantined one `quarantineMark` in `seen` (one byte per slot), throwing
   * if a slot was marked already (held twice).
   */
  markSlots(seen: Uint8Array, freeMark: number, quarantineMark: number): void {
    const n = this.size
    for (let i = 0; i < this.freeCount; i++) {
      const s = this.freeRing[(this.freeHead + i) % n]!
      if (seen[s]) throw new Error(`reflector: slot ${s} both free and elsewhere`)
      seen[s] = freeMark
    }
    for (let i = 0; i < this.quarantineCount; i++) {
      const s = this.quarantineSlot[(this.quarantineHead + i) % n]!
      if (seen[s]) throw new Error(`reflector: slot ${s} both quarantined and elsewhere`)
      seen[s] = quarantineMark
    }
  }

  private pushFree(slot: number): void {
    const n = this.size
    let tail = this.freeHead + this.freeCount
    if (tail >= n) tail -= n
    this.freeRing[tail] = slot
    this.freeCount++
  }
}
