/**
 * A connection's timers: one table of deadlines indexed by kind (quinn's
 * TimerTable), so the next wake-up is the minimum and re-arming is a store.
 * Infinity means "not armed". The kinds are the owner's `const enum`, so the
 * indices inline where the timers are used.
 */
import type { Millis } from './types.js'

const NEVER = Number.POSITIVE_INFINITY

export class TimerTable {
  private readonly deadlines: Float64Array

  constructor(kinds: number) {
    this.deadlines = new Float64Array(kinds).fill(NEVER)
  }

  /** Deadline of timer k; Infinity when not armed. */
  get(k: number): Millis {
    return this.deadlines[k]!
  }

  set(k: number, at: Millis): void {
    this.deadlines[k] = at
  }

  stop(k: number): void {
    this.deadlines[k] = NEVER
  }

  isSet(k: number): boolean {
    return this.deadlines[k] !== NEVER
  }

  /** Arms timer k unless it is armed already. */
  setIfUnset(k: number, at: Millis): void {
    if (this.deadlines[k] === NEVER) this.deadlines[k] = at
  }

  /** True (and the timer is stopped) if timer k is due at `now`. */
  expire(k: number, now: Millis): boolean {
    if (this.deadlines[k]! > now) return false
    this.deadlines[k] = NEVER
    return true
  }

  /** The earliest deadline; Infinity when nothing is armed. */
  earliest(): Millis {
    const t = this.deadlines
    let m = t[0]!
    for (let i = 1; i < t.length; i++) if (t[i]! < m) m = t[i]!
    return m
  }

  stopAll(): void {
    this.deadlines.fill(NEVER)
  }
}
