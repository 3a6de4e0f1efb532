/**
 * What the reflector remembers of a flow's TCP state: one byte of flags per
 * flow (SYN, FIN and RST seen from each side), and the idle timeout those
 * flags select. No sequence numbers: the kernels on both ends run TCP, the
 * reflector only needs to know when a flow may be forgotten.
 *
 * "App side" is the program or local server (packets A → P), "daemon side"
 * the daemon's listener or inbound socket (packets A → R).
 */
import { TCP_FIN, TCP_RST, TCP_SYN } from './packets/tcp.js'

export interface ReflectorTimeouts {
  /** Until both sides have sent SYN (also: an inbound registration the daemon never connects). */
  synMs: number
  /** Idle established flow (RFC 5382 REQ-5 asks at least 2 h 4 min). */
  establishedMs: number
  /** After one side's FIN. */
  finWaitMs: number
  /** After both FINs (the last ACK and retransmitted FINs still pass). */
  timeWaitMs: number
  /** After an RST. */
  resetMs: number
  /** A freed NAT port is not reused for this long. */
  quarantineMs: number
}

export const DEFAULT_REFLECTOR_TIMEOUTS: Readonly<ReflectorTimeouts> = Object.freeze({
  synMs: 120_000,
  establishedMs: 7_440_000,
  finWaitMs: 240_000,
  timeWaitMs: 120_000,
  resetMs: 10_000,
  quarantineMs: 60_000,
})

// Flow flags, one byte per flow. F_LIVE: the flow table holds a live flow in this slot.
export const F_LIVE = 0x01
export const F_SYN_APP = 0x02
export const F_SYN_DAEMON = 0x04
export const F_FIN_APP = 0x08
export const F_FIN_DAEMON = 0x10
export const F_RST = 0x20

/**
 * The flags after one segment with TCP flags `tcpFlags` from the side whose
 * SYN and FIN bits are `synBit` and `finBit` (F_SYN_APP/F_FIN_APP or the
 * daemon's pair). An RST from either side counts the same.
 */
export function flowFlagsAfter(flags: number, tcpFlags: number, synBit: number, finBit: number): number {
  let f = flags
  if (tcpFlags & TCP_RST) f |= F_RST
  if (tcpFlags & TCP_SYN) f |= synBit
  if (tcpFlags & TCP_FIN) f |= finBit
  return f
}

/** How long a flow with these flags lives without another segment. */
export function flowTimeout(flags: number, t: ReflectorTimeouts): number {
  if (flags & F_RST) return t.resetMs
  if ((flags & (F_FIN_APP | F_FIN_DAEMON)) === (F_FIN_APP | F_FIN_DAEMON)) return t.timeWaitMs
  if (flags & (F_FIN_APP | F_FIN_DAEMON)) return t.finWaitMs
  if ((flags & (F_SYN_APP | F_SYN_DAEMON)) === (F_SYN_APP | F_SYN_DAEMON)) return t.establishedMs
  return t.synMs
}

/** Reset, or both sides sent FIN: a new SYN on the same 4-tuple starts a new flow. */
export function isFlowClosed(flags: number): boolean {
  return (flags & F_RST) !== 0 || (flags & (F_FIN_APP | F_FIN_DAEMON)) === (F_FIN_APP | F_FIN_DAEMON)
}
