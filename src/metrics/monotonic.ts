/**
 * `MonotonicTotal`: a counter summed over things that come and go.
 *
 * Some figures live on objects that disappear: a peer's byte counts go with
 * the peer when trust is revoked, a stream's retransmits with the stream when
 * it closes. Summing the live objects at each scrape would make a Prometheus
 * counter fall (read as a restart, and `rate()` would spike). Instead each
 * scrape adds only what every live object gained since the last scrape, so
 * the total never falls. What an object gained between the last scrape and
 * its end is not seen: the total is a lower bound, exact for objects that
 * outlive a scrape interval.
 */
export class MonotonicTotal<K> {
  private total = 0
  /** Each live key's value at the last fold. */
  private last = new Map<K, number>()

  /**
   * Adds what each of `items` gained since the last fold and returns the
   * total. A key seen for the first time contributes its whole value (it
   * started at 0 after the previous scrape, or is the first scrape); a value
   * below the last one (the object was replaced under the same key) counts
   * from 0 again.
   */
  fold<T>(items: Iterable<T>, key: (item: T) => K, value: (item: T) => number): number {
    const seen = new Map<K, number>()
    for (const item of items) {
      const k = key(item)
      const v = value(item)
      const before = this.last.get(k)
      this.total += before === undefined || v < before ? v : v - before
      seen.set(k, v)
    }
    this.last = seen
    return this.total
  }

  get value(): number {
    return this.total
  }
}
