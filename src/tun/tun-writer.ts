/**
 * Everything the bridge writes into the TUN goes through one `TunWriter`:
 * packets queued during a read batch leave in one `writePackets` at the end
 * of the batch, and packets queued outside a batch (Pilot datagrams, pongs,
 * the TCP bridge's reflected SYNs) leave in one `writePackets` at the end of
 * the callback that queued them (a microtask): the session driver's flush
 * delivers a whole receive batch in one callback, so they stay batched, and a
 * lone pong goes out without waiting for the event loop's next turn.
 *
 * It also builds the ICMPv6 errors the bridge answers with (Destination
 * Unreachable, Packet Too Big), rate-limited by a token bucket (RFC 4443
 * §2.4 f) and never about another ICMPv6 error, a multicast destination or
 * an unspecified source (§2.4 e).
 */
import type { TunDevice } from './device.js'
import { IPV6_DST_OFFSET } from './packets/ipv6.js'
import {
  ICMPV6_DEST_UNREACHABLE,
  ICMPV6_HEADROOM,
  ICMPV6_MAX_QUOTE,
  ICMPV6_PACKET_TOO_BIG,
  buildIcmpv6Error,
  icmpv6ErrorSuppression,
} from './packets/icmpv6.js'

export interface TunWriterStats {
  /** Packets the device accepted. */
  packetsOut: number
  icmpErrorsSent: number
  icmpErrorsRateLimited: number
  icmpErrorsSuppressed: number
}

export class TunWriter {
  private readonly device: Pick<TunDevice, 'writePackets'>
  /** Writes waiting for the end of the batch (or of the current callback). */
  private out: Uint8Array[] = []
  private inBatch = false
  private flushScheduled = false
  private isClosed = false
  // ICMPv6 error token bucket: `icmpRate` tokens a second, burst the same.
  private readonly icmpRate: number
  private icmpTokens: number
  private icmpRefilledAt = 0
  private readonly st: TunWriterStats = { packetsOut: 0, icmpErrorsSent: 0, icmpErrorsRateLimited: 0, icmpErrorsSuppressed: 0 }
  private readonly flushBound: () => void

  constructor(device: Pick<TunDevice, 'writePackets'>, icmpErrorsPerSecond: number) {
    this.device = device
    this.icmpRate = icmpErrorsPerSecond
    this.icmpTokens = icmpErrorsPerSecond
    this.flushBound = () => {
      this.flushScheduled = false
      this.flush()
    }
  }

  stats(): TunWriterStats {
    return { ...this.st }
  }

  /** From now until `endBatch`, queued packets wait for the batch's end. */
  beginBatch(): void {
    this.inBatch = true
  }

  /** Writes everything queued, in one `writePackets`. */
  endBatch(): void {
    this.inBatch = false
    this.flush()
  }

  /** Queues one packet for the TUN; it is written at the end of the batch, or of the current callback. */
  queue(packet: Uint8Array): void {
    if (this.isClosed) return
    this.out.push(packet)
    if (!this.inBatch && !this.flushScheduled) {
      this.flushScheduled = true
      queueMicrotask(this.flushBound)
    }
  }

  /**
   * Destination Unreachable with `code`, answering the packet at
   * `buf[off..off+len)` and sent from its destination; rate-limited.
   */
  unreachable(now: number, code: number, buf: Uint8Array, off: number, len: number): void {
    this.icmpError(now, ICMPV6_DEST_UNREACHABLE, code, 0, buf, off, len)
  }

  /** Packet Too Big announcing `mtu`, answering the packet at `buf[off..off+len)`; rate-limited. */
  packetTooBig(now: number, mtu: number, buf: Uint8Array, off: number, len: number): void {
    this.icmpError(now, ICMPV6_PACKET_TOO_BIG, 0, mtu, buf, off, len)
  }

  /** Drops what is queued; later packets are ignored. Idempotent. */
  close(): void {
    this.isClosed = true
    this.out.length = 0
  }

  private flush(): void {
    if (this.out.length === 0 || this.isClosed) return
    const list = this.out
    this.out = []
    this.st.packetsOut += this.device.writePackets(list)
  }

  private icmpError(now: number, type: number, code: number, param: number, buf: Uint8Array, off: number, len: number): void {
    if (!this.takeIcmpToken(now)) return
    if (icmpv6ErrorSuppression(type, buf, off, len) !== null) {
      this.st.icmpErrorsSuppressed++
      return
    }
    const quote = len < ICMPV6_MAX_QUOTE ? len : ICMPV6_MAX_QUOTE
    const out = Buffer.allocUnsafe(ICMPV6_HEADROOM + quote)
    const n = buildIcmpv6Error(out, 0, type, code, param, buf, off + IPV6_DST_OFFSET, buf, off, len)
    if (n === 0) return
    this.st.icmpErrorsSent++
    this.queue(out.subarray(0, n))
  }

  private takeIcmpToken(now: number): boolean {
    const elapsed = now - this.icmpRefilledAt
    if (elapsed > 0) {
      this.icmpTokens = Math.min(this.icmpRate, this.icmpTokens + (elapsed * this.icmpRate) / 1000)
      this.icmpRefilledAt = now
    }
    if (this.icmpTokens < 1) {
      this.st.icmpErrorsRateLimited++
      return false
    }
    this.icmpTokens -= 1
    return true
  }
}
