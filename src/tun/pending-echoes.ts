/**
 * ICMPv6 echo requests the bridge turned into Pilot pings, waiting for their
 * pong (keyed by the ping id the daemon chose). A pong turns back into the
 * echo reply the program expects: same identifier, sequence and data, sent
 * from the address it pinged. Bounded (the oldest is forgotten when full)
 * and expired on the bridge's coarse tick; insertion order is deadline order.
 */
import { addressKey, type PilotAddress } from '../protocol/address.js'
import type { Icmpv6Echo } from './packets/icmpv6.js'

export interface PendingEcho {
  /** `addressKey` of the pinged node: a pong from anyone else is ignored. */
  peerKey: number
  /** The echo's identifier and sequence number. */
  id: number
  seq: number
  /** A copy of the echo's data. */
  data: Buffer
  /** The echo's destination (16 bytes): the reply's source. */
  peerAddress: Uint8Array
  deadline: number
}

export class PendingEchoes {
  private readonly byPingId = new Map<number, PendingEcho>()
  private expiredCount = 0

  constructor(
    private readonly max: number,
    private readonly timeoutMs: number,
  ) {}

  get size(): number {
    return this.byPingId.size
  }

  /** Echo requests forgotten without a pong (timed out, or pushed out when full). */
  get expired(): number {
    return this.expiredCount
  }

  /**
   * Remembers `echo` (parsed from `buf`, destination address at
   * `buf[dst..dst+16)`), sent to `peer` as Pilot ping `pingId`. Copies what
   * it keeps, so `buf` may be reused.
   */
  add(now: number, pingId: number, peer: PilotAddress, echo: Icmpv6Echo, buf: Uint8Array, dst: number): void {
    if (this.byPingId.size >= this.max) {
      const oldest = this.byPingId.keys().next().value as number
      this.byPingId.delete(oldest)
      this.expiredCount++
    }
    this.byPingId.set(pingId, {
      peerKey: addressKey(peer),
      id: echo.id,
      seq: echo.seq,
      data: Buffer.from(buf.subarray(echo.dataOffset, echo.dataOffset + echo.dataLength)),
      peerAddress: Uint8Array.from(buf.subarray(dst, dst + 16)),
      deadline: now + this.timeoutMs,
    })
  }

  /** The echo that pong `pingId` from `remote` answers, forgotten now; null for an unknown id or another node. */
  take(pingId: number, remote: PilotAddress): PendingEcho | null {
    const pending = this.byPingId.get(pingId)
    if (pending === undefined || pending.peerKey !== addressKey(remote)) return null
    this.byPingId.delete(pingId)
    return pending
  }

  /** Forgets echoes whose deadline is at or before `now`. */
  expire(now: number): void {
    for (const [pingId, p] of this.byPingId) {
      if (p.deadline > now) break
      this.byPingId.delete(pingId)
      this.expiredCount++
    }
  }

  clear(): void {
    this.byPingId.clear()
  }
}
