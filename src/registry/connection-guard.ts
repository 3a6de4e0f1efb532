/**
 * The registry server's defences against connection exhaustion and slowloris,
 * without sockets or timers: the server reports what happens on each
 * connection, the guard says which connections to close.
 *
 *   - at most `maxConnectionsPerIp` connections per source (an IPv4 address or
 *     an IPv6 /64, `sourceKeyOf`);
 *   - a frame must be complete `frameDeadlineMs` after its first byte;
 *   - partly received frames across all connections hold at most
 *     `maxBufferedFrameBytes`; past that, the connection holding the most is
 *     closed (again, until the total fits), so one small request split in two
 *     TCP segments is never what gets cut while large partial frames exist.
 *
 * All three are ours; the Go reference has none (docs/wire.md §10.1).
 */
import type { RegistryLimits } from './limits.js'

/** One connection as the guard sees it; `handle` is the caller's (the socket). */
export interface GuardedConnection<T> {
  readonly handle: T
  readonly source: string
  /** Bytes of a partly received frame counted for this connection. */
  buffered: number
  /** When the partial frame's first byte arrived (ms), or -1 when none is pending. */
  frameStartedAt: number
  /** False once removed: its slot and bytes are given back. */
  counted: boolean
}

export type ConnectionGuardLimits = Pick<RegistryLimits, 'maxConnectionsPerIp' | 'frameDeadlineMs' | 'maxBufferedFrameBytes'>

export class ConnectionGuard<T> {
  private readonly limits: ConnectionGuardLimits
  private readonly perSource = new Map<string, number>()
  private readonly connections = new Set<GuardedConnection<T>>()
  private buffered = 0

  constructor(limits: ConnectionGuardLimits) {
    this.limits = limits
  }

  /** Bytes of partly received frames held now, across all connections. */
  get bufferedBytes(): number {
    return this.buffered
  }

  /** How often the caller should call `overdue`: a quarter of the deadline, within 10 ms … 1 s. */
  get checkIntervalMs(): number {
    return Math.max(10, Math.min(1000, Math.floor(this.limits.frameDeadlineMs / 4)))
  }

  /** A new connection from `source`; null when that source already holds its maximum (close it at once). */
  admit(source: string, handle: T): GuardedConnection<T> | null {
    const count = this.perSource.get(source) ?? 0
    if (count >= this.limits.maxConnectionsPerIp) return null
    this.perSource.set(source, count + 1)
    const connection: GuardedConnection<T> = { handle, source, buffered: 0, frameStartedAt: -1, counted: true }
    this.connections.add(connection)
    return connection
  }

  /** The connection is closing or closed: its slot and its bytes are given back. Idempotent. */
  remove(connection: GuardedConnection<T>): void {
    if (!connection.counted) return
    connection.counted = false
    this.connections.delete(connection)
    this.buffered -= connection.buffered
    connection.buffered = 0
    connection.frameStartedAt = -1
    const count = (this.perSource.get(connection.source) ?? 1) - 1
    if (count <= 0) this.perSource.delete(connection.source)
    else this.perSource.set(connection.source, count)
  }

  /**
   * A chunk was decoded: the connection now holds `buffered` bytes of a partial
   * frame, and `completedFrame` says whether a frame ended in the chunk (the
   * rest then starts a new one). Returns the connections to close because the
   * budget is exceeded, largest first; they are already removed.
   */
  afterChunk(connection: GuardedConnection<T>, buffered: number, completedFrame: boolean, now: number): GuardedConnection<T>[] {
    if (!connection.counted) return []
    this.buffered += buffered - connection.buffered
    connection.buffered = buffered
    if (buffered === 0) connection.frameStartedAt = -1
    else if (completedFrame || connection.frameStartedAt < 0) connection.frameStartedAt = now
    if (this.buffered <= this.limits.maxBufferedFrameBytes) return []
    const evicted: GuardedConnection<T>[] = []
    while (this.buffered > this.limits.maxBufferedFrameBytes) {
      // On a tie the connection that just grew goes first: older ones were inside the budget.
      let largest = connection.counted ? connection : null
      for (const c of this.connections) if (largest === null || c.buffered > largest.buffered) largest = c
      if (largest === null || largest.buffered === 0) break
      this.remove(largest)
      evicted.push(largest)
    }
    return evicted
  }

  /** Connections whose partial frame is older than the deadline at `now`; they are already removed. */
  overdue(now: number): GuardedConnection<T>[] {
    const late: GuardedConnection<T>[] = []
    for (const c of this.connections) {
      if (c.frameStartedAt >= 0 && now - c.frameStartedAt >= this.limits.frameDeadlineMs) late.push(c)
    }
    for (const c of late) this.remove(c)
    return late
  }
}
