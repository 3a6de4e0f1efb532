/**
 * Receive-side replay protection for PILS (docs/wire.md §5.6), hardened per §17.
 *
 * Order of use per frame, and the reason for the split API:
 *   1. `check(counter)`  — pure; false = too old or already seen: drop before decrypting.
 *   2. AEAD open         — a forged frame fails here and leaves no trace.
 *   3. `commit(counter)` — only for authenticated frames; the window moves only here.
 * Go updates its window before authenticating, so one forged frame with a
 * huge counter blocks a peer (§17 item 3); this order cannot be poisoned.
 *
 * Semantics otherwise follow Go so a Go sender sees the same acceptance:
 * 256 entries; `max == 0` means "nothing seen yet" (a frame with counter 0
 * stays acceptable until a higher counter commits, docs/wire.md §20 item 6);
 * a counter `max − 256` or older is rejected. One deliberate difference:
 * the first counter above 0 clears the stale bits a 0 may have left (Go keeps
 * them and can drop a never-seen counter 256 later).
 */
export const REPLAY_WINDOW_SIZE = 256

const WORDS = REPLAY_WINDOW_SIZE / 32

export class ReplayWindow {
  private max = 0
  private readonly bits = new Uint32Array(WORDS)

  /** Highest committed counter, 0 if none. */
  get highest(): number {
    return this.max
  }

  /**
   * Would a frame with this counter be fresh? No state changes. False also for
   * anything that is not a non-negative safe integer (e.g. -1 from
   * `readNonceCounter`).
   */
  check(counter: number): boolean {
    if (!Number.isSafeInteger(counter) || counter < 0) return false
    if (this.max === 0 || counter > this.max) return true
    if (this.max - counter >= REPLAY_WINDOW_SIZE) return false
    return !this.isSet(counter)
  }

  /**
   * Records an authenticated counter. Re-checks first and returns false (no
   * change) if it is no longer fresh, so `check → open → commit` stays
   * correct even if another frame committed in between.
   */
  commit(counter: number): boolean {
    if (!this.check(counter)) return false
    if (counter > this.max) {
      this.clearAbove(this.max, counter)
      this.max = counter
    }
    this.set(counter)
    return true
  }

  /** Forgets everything (a new key). */
  reset(): void {
    this.max = 0
    this.bits.fill(0)
  }

  /** Clears the positions `from+1 … to`, all of them if the jump spans the window. */
  private clearAbove(from: number, to: number): void {
    if (to - from >= REPLAY_WINDOW_SIZE) {
      this.bits.fill(0)
      return
    }
    for (let c = from + 1; c <= to; c++) {
      // `& 255` etc. are exact for integers up to 2^53: ToInt32 keeps the low 32 bits.
      this.bits[(c >>> 5) & (WORDS - 1)]! &= ~(1 << (c & 31))
    }
  }

  private isSet(counter: number): boolean {
    return (this.bits[(counter >>> 5) & (WORDS - 1)]! & (1 << (counter & 31))) !== 0
  }

  private set(counter: number): void {
    this.bits[(counter >>> 5) & (WORDS - 1)]! |= 1 << (counter & 31)
  }
}

/**
 * One `ReplayWindow` per 4-byte nonce prefix of one peer key (docs/wire.md §17
 * item 4). Go restarts its counter at 1 under a new random prefix whenever it
 * accepts a key frame, and a replayed key frame would otherwise let an
 * attacker reset our window and replay old PILS. So:
 *   - a new prefix gets a fresh window, created only by `commit` (after auth);
 *   - at most `maxActive` prefixes keep windows; the oldest-created is retired;
 *   - frames under a retired prefix are refused while it is remembered
 *     (the last `maxRetired` retired prefixes).
 * Residual risk: a prefix forgotten after `maxRetired` newer retirements
 * becomes acceptable again.
 */
export class ReplayWindows {
  private readonly active = new Map<number, ReplayWindow>()
  private readonly retired = new Set<number>()
  // One-entry cache: nearly every frame carries the same prefix as the last one.
  private lastPrefix = -1
  private lastWindow: ReplayWindow | null = null

  constructor(
    readonly maxActive = 4,
    readonly maxRetired = 1024,
  ) {
    if (maxActive < 1 || maxRetired < 0) throw new RangeError('bad ReplayWindows bounds')
  }

  /** Number of prefixes with a live window. */
  get activeCount(): number {
    return this.active.size
  }

  /** Pure: would (prefix, counter) be fresh? */
  check(prefix: number, counter: number): boolean {
    const window = this.windowFor(prefix)
    if (window !== null) return window.check(counter)
    return !this.retired.has(prefix) && Number.isSafeInteger(counter) && counter >= 0
  }

  /** Records an authenticated frame. Returns false (no change) if it was not fresh. */
  commit(prefix: number, counter: number): boolean {
    let window = this.windowFor(prefix)
    if (window === null) {
      if (!this.check(prefix, counter)) return false
      window = new ReplayWindow()
      this.active.set(prefix, window)
      if (this.active.size > this.maxActive) this.retireOldest()
      this.lastPrefix = prefix
      this.lastWindow = window
    }
    return window.commit(counter)
  }

  /** Forgets all prefixes (a new peer key). */
  reset(): void {
    this.active.clear()
    this.retired.clear()
    this.lastPrefix = -1
    this.lastWindow = null
  }

  private windowFor(prefix: number): ReplayWindow | null {
    if (prefix === this.lastPrefix) return this.lastWindow
    const window = this.active.get(prefix)
    if (window === undefined) return null
    this.lastPrefix = prefix
    this.lastWindow = window
    return window
  }

  private retireOldest(): void {
    const oldest = this.active.keys().next().value as number
    this.active.delete(oldest)
    if (oldest === this.lastPrefix) {
      this.lastPrefix = -1
      this.lastWindow = null
    }
    if (this.maxRetired === 0) return
    this.retired.add(oldest)
    if (this.retired.size > this.maxRetired) this.retired.delete(this.retired.values().next().value as number)
  }
}
