/**
 * Recovering a session after a restart (docs/wire.md §5.10 leaves this to the
 * application in Go). A restarted daemon has a new X25519 key and no sessions,
 * and Go drops PILS it cannot open without a word. Two rules here, plus the
 * relayed-peer re-resolve in paths.ts, recover without the layers above noticing:
 *  - a PILS from a node we have no session with is answered with our PILA
 *    (to its source, or through the relay if it came relayed), and so is a
 *    peer's PILS after RECOVERY_AUTH_FAILURES authentication failures in a
 *    row (it holds a key of ours we no longer have); rate-limited per node,
 *    per source and globally (recovery-limiter.ts). The sender sees a new
 *    key from a registered node, re-derives and answers with its own PILA;
 *  - our PILS unanswered by anything authenticated for `silenceRekeyMs` →
 *    our PILA again on the peer's path (back-off), and a new resolve (a PILA
 *    to the endpoint if it is new): this reaches a restarted Go peer too,
 *    which answers a PILA from a node it has no session with.
 *
 * Owns the rate limiter; writes only the recovery fields of a `Peer`
 * (`authFailStreak`, the silence re-key back-off).
 */
import { TAG_SIZE } from '../crypto/index.js'
import { HEADER_SIZE } from '../protocol/header.js'
import { PILS_HEADER_SIZE } from '../protocol/tunnel-frames.js'
import type { Logger } from '../logger.js'
import type { Peer } from './peer.js'
import { RecoveryLimiter } from './recovery-limiter.js'
import type { TunnelScheduler, TunnelTiming } from './timing.js'
import type { TunnelCounters } from './stats.js'

/** Authentication failures in a row from one peer before we send it our key frame again. */
export const RECOVERY_AUTH_FAILURES = 3
/** Smallest PILS that can hold a packet; smaller ones are not worth an answer (reflection gain). */
export const RECOVERY_MIN_PILS = PILS_HEADER_SIZE + HEADER_SIZE + TAG_SIZE
/** Silence re-key back-off cap, as a multiple of `silenceRekeyMs`. */
export const SILENCE_BACKOFF_MAX = 8

/** What recovery needs from the tunnel; implemented once per tunnel. */
export interface RecoveryPort {
  /** Our PILA on the peer's current path (marks it sent when it went out). */
  sendKeyFrame(peer: Peer, now: number): void
  /** Our PILA (a copy) straight to host:port, counted as a key frame sent. */
  sendKeyFrameTo(host: string, port: number): void
  /** Our PILA (a copy) through the beacon relay to node `to`, counted as a key frame sent. */
  sendKeyFrameRelayed(to: number): void
  /** Resolve the peer's endpoint again unless a resolve is in flight. */
  resolveIfIdle(peer: Peer): void
  /** Have the node's registry key at hand, so its PILA is verified on arrival. */
  prefetchKey(nodeId: number): void
}

export interface SessionRecoveryOptions {
  nodeId: number
  /** A beacon is configured, so a relayed PILS can be answered through it. */
  hasRelay: boolean
  timing: Pick<TunnelTiming, 'recoveryIntervalMs' | 'silenceRekeyMs'>
  /** Recovery key frames per second, all peers together. */
  maxPerSecond: number
  clock: Pick<TunnelScheduler, 'now'>
  logger: Logger
  counters: TunnelCounters
  port: RecoveryPort
}

export class SessionRecovery {
  private readonly silenceRekeyMs: number
  private readonly limiter: RecoveryLimiter

  constructor(private readonly opts: SessionRecoveryOptions) {
    this.silenceRekeyMs = opts.timing.silenceRekeyMs
    this.limiter = new RecoveryLimiter(opts.timing.recoveryIntervalMs, opts.maxPerSecond)
  }

  /** A PILS from `sender`, with whom we have no session. */
  noSession(sender: number, frameLength: number, host: string, port: number, relayed: boolean): void {
    this.answer(sender, frameLength, host, port, relayed)
  }

  /** A PILS from a peer failed authentication; the third in a row is answered. */
  authFailed(peer: Peer, frameLength: number, host: string, port: number, relayed: boolean): void {
    // Again and again: the peer may seal with a key of ours from before our restart.
    if (++peer.authFailStreak >= RECOVERY_AUTH_FAILURES) this.answer(peer.nodeId, frameLength, host, port, relayed)
  }

  /** A PILS from the peer opened. */
  authenticated(peer: Peer): void {
    peer.authFailStreak = 0
  }

  /**
   * One peer's share of the tick: our PILS have gone unanswered for `silenceRekeyMs` → the peer
   * may have lost our key (restart), maybe on a new port: resolve, and our PILA again, backing off.
   */
  tick(peer: Peer, now: number): void {
    const t = this.silenceRekeyMs
    if (peer.silentSinceMs !== 0 && peer.ready && now - peer.silentSinceMs >= t && now >= peer.silenceRekeyAtMs) {
      this.opts.port.resolveIfIdle(peer)
      peer.silenceRekeyBackoffMs = Math.min(Math.max(peer.silenceRekeyBackoffMs * 2, t), t * SILENCE_BACKOFF_MAX)
      peer.silenceRekeyAtMs = now + peer.silenceRekeyBackoffMs
      this.opts.port.sendKeyFrame(peer, now)
    }
  }

  /**
   * Our PILA back to the sender of a PILS we cannot open, to its source or through the relay
   * the PILS came by. Rate-limited (RecoveryLimiter); never for frames too small to hold a packet.
   */
  private answer(sender: number, frameLength: number, host: string, port: number, relayed: boolean): void {
    if (sender === this.opts.nodeId || sender === 0 || frameLength < RECOVERY_MIN_PILS) return
    if (relayed && !this.opts.hasRelay) return
    const now = this.opts.clock.now()
    if (!this.limiter.allow(sender, relayed ? '' : host, relayed ? 0 : port, now)) {
      this.opts.counters.recoveryRateLimited++
      return
    }
    if (relayed) this.opts.port.sendKeyFrameRelayed(sender)
    else this.opts.port.sendKeyFrameTo(host, port)
    this.opts.counters.recoveryKeyFramesSent++
    this.opts.logger.debug('tunnel recovery key frame', { node: sender, relayed })
    // Its PILA should follow: have the registry key at hand so it is verified on arrival.
    this.opts.port.prefetchKey(sender)
  }
}
