/**
 * `FlightShare`: the bytes in flight of every stream to one peer, under one
 * limit (the congestion-manager idea of RFC 3124, reduced to its flight cap).
 *
 * Why: the streams to a peer share one path, one pair of tunnel sockets and
 * one receiving daemon. Each stream on its own may have its peer's whole
 * receive window in flight, and each reacts to a loss by halving only its own
 * window, so N streams together queue N windows at the slowest point (the
 * receiver's UDP socket buffer on a CPU-bound host) and overflow it: measured
 * with 8 flows, ~4 % of the frames were dropped there and retransmitted, and
 * the aggregate fell below one flow's goodput. With the share, new data of
 * all the streams together stays under `limit` (by default what one stream
 * may have in flight), so N flows queue no more than one does.
 *
 * Only new data waits for the share: retransmissions, probes, ACKs and FINs
 * never do (a repair must not wait behind other streams' data), and a stream
 * with nothing of its own in flight may always send one segment (a new or
 * interactive stream does not queue behind the bulk ones; the overshoot is at
 * most one segment per member). A stream that finds the share full registers
 * as a waiter; as the flight drops, waiters are woken in the order they
 * waited, about one per `unit` bytes of room (all of them once nothing is in
 * flight), so an ACK costs O(1) however many streams wait; the endpoint's
 * round-robin transmit then gives every woken stream its turn. A stream at or
 * past its fair part (`fairShare`) leaves freed room to the hungry ones (those
 * the share refused that have not sent since) instead of taking it first.
 *
 * Bookkeeping is by difference: each member reports its own current flight
 * (`update`), the share adds the change. A member leaving reports 0.
 */

/** A member that stopped on a full share and wants to hear when it has room. */
export interface FlightShareWaiter {
  /** Bookkeeping: true while in the share's wait list. */
  shareWaiting: boolean
  /** Bookkeeping: refused by the share and has not sent new data since (woken or not). */
  shareHungry: boolean
  onShareRoom(): void
}

/** Default limit: 2 MiB, a stream's default receive window (512 slots of 4096 bytes). */
export const DEFAULT_PEER_FLIGHT_LIMIT = 2 * 1024 * 1024

export class FlightShare {
  /** Bytes in flight of every member together. */
  private _flight = 0
  private _active = 0
  private _hungry = 0
  /** Members at the moment (the endpoint drops a share without members). */
  members = 0
  /** Waiters in the order they waited; `head` is the next to wake. */
  private waiters: Array<FlightShareWaiter | null> = []
  private head = 0
  /** New-data segments held back because the share was full. */
  blocked = 0
  /**
   * The latest smoothed RTT a member measured (−1: none yet). The members' flight queues at the
   * same place, so a stream that starts sending while the others keep a queue there starts from
   * this RTT rather than its handshake's (taken on an idle path): a handshake RTT of 2 ms against
   * a 90 ms queue fires the tail probe and the RTO at once, spurious losses that leave the new
   * stream crawling in congestion avoidance while the others keep the room.
   */
  srtt = -1

  /**
   * `limit`: bytes in flight of all members together. `unit`: room that wakes one more waiter
   * (a segment: the MSS).
   */
  constructor(
    readonly limit: number,
    readonly unit: number,
  ) {}

  /** Members in the wait list (some may have left it: `forget`). */
  get waiting(): number {
    return this.waiters.length - this.head
  }

  /** Members refused by the share that have not sent new data since, woken or still waiting. */
  get hungry(): number {
    return this._hungry
  }

  get flight(): number {
    return this._flight
  }

  /** Bytes of new data that may still leave (may be ≤ 0). */
  get room(): number {
    return this.limit - this._flight
  }

  /** Members with something in flight. */
  get active(): number {
    return this._active
  }

  /**
   * A member's fair part of the limit: the limit over the members with something in flight. One
   * at or above it yields the room to hungry members (it waits behind them) instead of taking it
   * first: a stream with more in flight gets more ACKs, and would otherwise win every freed byte.
   */
  get fairShare(): number {
    return this.limit / (this._active > 0 ? this._active : 1)
  }

  /** A member's flight went from `before` to `after` bytes; wakes waiters while there is room. */
  update(before: number, after: number): void {
    if (before === after) return
    if (before === 0) this._active++
    else if (after === 0) this._active--
    this.add(after - before)
  }

  /** The flight of all members changed by `delta` bytes; wakes waiters while there is room. */
  add(delta: number): void {
    this._flight += delta
    if (this._flight < 0) this._flight = 0 // never below: a rounding slip must not grant extra room forever
    if (delta < 0 && this.head < this.waiters.length && this._flight < this.limit) this.wake()
  }

  /** `w` found the share full: it hears `onShareRoom` once the flight drops. */
  wait(w: FlightShareWaiter): void {
    this.blocked++
    if (!w.shareHungry) {
      w.shareHungry = true
      this._hungry++
    }
    if (w.shareWaiting) return
    w.shareWaiting = true
    this.waiters.push(w)
  }

  /** `w` sent new data: it is no longer hungry. */
  fed(w: FlightShareWaiter): void {
    if (!w.shareHungry) return
    w.shareHungry = false
    this._hungry--
  }

  /** Whether `w`, with `flight` bytes of its own in flight, must leave freed room to hungry others. */
  mustYield(w: FlightShareWaiter, flight: number): boolean {
    return this._hungry > (w.shareHungry ? 1 : 0) && flight >= this.fairShare
  }

  /** `w` leaves the wait list (it closed). */
  forget(w: FlightShareWaiter): void {
    this.fed(w)
    if (!w.shareWaiting) return
    w.shareWaiting = false
    const i = this.waiters.indexOf(w, this.head)
    if (i >= 0) this.waiters[i] = null
  }

  /** Wakes about one waiter per `unit` of room, oldest first; every waiter once nothing is in flight. */
  private wake(): void {
    let n = this._flight === 0 ? Number.POSITIVE_INFINITY : Math.max(1, Math.floor((this.limit - this._flight) / this.unit))
    const list = this.waiters
    // Taken off the list before the call: a woken member still without room waits again at the end.
    while (n > 0 && this.head < list.length) {
      const w = list[this.head]
      list[this.head++] = null
      if (w === null || w === undefined || !w.shareWaiting) continue
      w.shareWaiting = false
      n--
      w.onShareRoom()
    }
    if (this.head === list.length) {
      list.length = 0
      this.head = 0
    } else if (this.head > 1024 && this.head * 2 > list.length) {
      this.waiters = list.slice(this.head)
      this.head = 0
    }
  }
}
