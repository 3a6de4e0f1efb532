/**
 * Per-source-IP token buckets: one budget for control messages, two for relay
 * (packets and bytes). Keyed by the IP text the socket reports; the port is
 * left out so a flooder cannot get fresh budgets by changing ports.
 *
 * The Map is kept in last-active order (an entry moves to the back at most once
 * a second), so idle buckets are reaped and the least active one is evicted
 * from the front. A reaped bucket had refilled completely, so forgetting it
 * changes nothing.
 */
import type { BeaconLimits } from './limits.js'

class SourceBudget {
  control: number
  relayPackets: number
  relayBytes: number
  refilledAt: number
  /** When the entry last moved to the back of the map. */
  touchedAt: number

  constructor(limits: BeaconLimits, now: number) {
    this.control = limits.controlBurst
    this.relayPackets = limits.relayPacketBurst
    this.relayBytes = limits.relayByteBurst
    this.refilledAt = now
    this.touchedAt = now
  }
}

const TOUCH_GRANULARITY_MS = 1000

export class SourceRateLimiter {
  private readonly sources = new Map<string, SourceBudget>()
  /** A bucket untouched this long is full again. */
  private readonly reapAfterMs: number
  private readonly controlPerMs: number
  private readonly relayPacketsPerMs: number
  private readonly relayBytesPerMs: number
  evicted = 0

  constructor(private readonly limits: BeaconLimits) {
    this.controlPerMs = limits.controlPerSecond / 1000
    this.relayPacketsPerMs = limits.relayPacketsPerSecond / 1000
    this.relayBytesPerMs = limits.relayBytesPerSecond / 1000
    this.reapAfterMs =
      1000 *
        Math.max(
          limits.controlBurst / limits.controlPerSecond,
          limits.relayPacketBurst / limits.relayPacketsPerSecond,
          limits.relayByteBurst / limits.relayBytesPerSecond,
        ) +
      TOUCH_GRANULARITY_MS
  }

  get size(): number {
    return this.sources.size
  }

  /** Takes one control token from `host`'s budget; false = over the limit. */
  allowControl(host: string, now: number): boolean {
    const b = this.budget(host, now)
    if (b.control < 1) return false
    b.control -= 1
    return true
  }

  /** Takes one packet and `bytes` bytes from `host`'s relay budget; false (and nothing taken) = over the limit. */
  allowRelay(host: string, bytes: number, now: number): boolean {
    const b = this.budget(host, now)
    if (b.relayPackets < 1 || b.relayBytes < bytes) return false
    b.relayPackets -= 1
    b.relayBytes -= bytes
    return true
  }

  /** Forgets buckets idle long enough to have refilled. */
  sweep(now: number): void {
    for (const [host, b] of this.sources) {
      if (now - b.touchedAt < this.reapAfterMs) break
      this.sources.delete(host)
    }
  }

  private budget(host: string, now: number): SourceBudget {
    let b = this.sources.get(host)
    if (b === undefined) {
      if (this.sources.size >= this.limits.maxSources) {
        const oldest = this.sources.keys().next()
        if (!oldest.done) {
          this.sources.delete(oldest.value)
          this.evicted++
        }
      }
      b = new SourceBudget(this.limits, now)
      this.sources.set(host, b)
      return b
    }
    const dt = now - b.refilledAt
    if (dt > 0) {
      const l = this.limits
      b.control = Math.min(l.controlBurst, b.control + dt * this.controlPerMs)
      b.relayPackets = Math.min(l.relayPacketBurst, b.relayPackets + dt * this.relayPacketsPerMs)
      b.relayBytes = Math.min(l.relayByteBurst, b.relayBytes + dt * this.relayBytesPerMs)
      b.refilledAt = now
    }
    if (now - b.touchedAt >= TOUCH_GRANULARITY_MS) {
      b.touchedAt = now
      this.sources.delete(host)
      this.sources.set(host, b)
    }
    return b
  }
}
