/**
 * Token buckets keyed by source IP: `capacity` tokens, refilled continuously
 * at `capacity` per `periodMs`. Buckets that have refilled completely carry no
 * information and are dropped when the table grows, so a flood of source
 * addresses cannot grow it without bound.
 */
interface Bucket {
  tokens: number
  updated: number
}

export class KeyedRateLimiter {
  private readonly buckets = new Map<string, Bucket>()
  private readonly capacity: number
  private readonly ratePerMs: number
  private readonly maxKeys: number

  constructor(options: { capacity: number; periodMs: number; maxKeys?: number }) {
    this.capacity = options.capacity
    this.ratePerMs = options.capacity / options.periodMs
    this.maxKeys = options.maxKeys ?? 10_000
  }

  /** Takes one token for `key`; false if its bucket is empty. */
  tryTake(key: string, now: number): boolean {
    let bucket = this.buckets.get(key)
    if (bucket === undefined) {
      if (this.buckets.size >= this.maxKeys) this.pruneFull(now)
      bucket = { tokens: this.capacity, updated: now }
      this.buckets.set(key, bucket)
    } else {
      bucket.tokens = Math.min(this.capacity, bucket.tokens + Math.max(0, now - bucket.updated) * this.ratePerMs)
      bucket.updated = now
    }
    if (bucket.tokens < 1) return false
    bucket.tokens -= 1
    return true
  }

  get size(): number {
    return this.buckets.size
  }

  /** Drops full buckets; if none are full, the oldest (a flood of fresh keys should not lock out everyone). */
  pruneFull(now: number): void {
    for (const [key, b] of this.buckets) {
      if (b.tokens + (now - b.updated) * this.ratePerMs >= this.capacity) this.buckets.delete(key)
    }
    if (this.buckets.size >= this.maxKeys) {
      const oldest = this.buckets.keys().next()
      if (!oldest.done) this.buckets.delete(oldest.value)
    }
  }
}
