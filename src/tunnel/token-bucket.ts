/**
 * Token buckets for the tunnel's rate limits (PILA-caused registry lookups per source,
 * PunchCommand answers). Time is the caller's `now` in ms, so tests drive a fake clock.
 */

/** `burst` tokens, refilled continuously at `perSecond`; one `take` spends one. */
export class TokenBucket {
  private tokens: number
  /** When the bucket was last used; null before the first `take` (it starts full). */
  private stampMs: number | null = null

  constructor(
    readonly burst: number,
    readonly perSecond: number,
  ) {
    this.tokens = burst
  }

  /** Spends a token if there is one. */
  take(now: number): boolean {
    if (this.stampMs === null || now > this.stampMs) {
      // Refill for the time since the last use; a clock going backwards refills nothing.
      if (this.stampMs !== null) this.tokens = Math.min(this.burst, this.tokens + ((now - this.stampMs) * this.perSecond) / 1_000)
      this.stampMs = now
    }
    if (this.tokens < 1) return false
    this.tokens -= 1
    return true
  }
}

/**
 * One `TokenBucket` per key (a source IP, a target endpoint), at most `maxKeys` of them: a
 * new key past that replaces the least recently used one, so a flood of keys costs a bounded
 * table (and the global limits behind this one still hold).
 */
export class KeyedTokenBuckets {
  private readonly buckets = new Map<string, TokenBucket>()

  constructor(
    readonly burst: number,
    readonly perSecond: number,
    readonly maxKeys: number,
  ) {}

  get size(): number {
    return this.buckets.size
  }

  take(key: string, now: number): boolean {
    let bucket = this.buckets.get(key)
    if (bucket === undefined) {
      if (this.buckets.size >= this.maxKeys) this.buckets.delete(this.buckets.keys().next().value as string)
      bucket = new TokenBucket(this.burst, this.perSecond)
    } else {
      this.buckets.delete(key) // re-inserted below: the map stays in least-recently-used order
    }
    this.buckets.set(key, bucket)
    return bucket.take(now)
  }
}
