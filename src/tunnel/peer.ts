/**
 * Per-peer tunnel state: keys, nonces, replay windows, path and counters.
 * One object per remote node ID, every field set in the constructor (stable
 * shape for the hot path). Only tunnel/ mutates it, each group of fields by
 * its piece: keys by key-exchange.ts and kdf.ts, the path by paths.ts, the
 * recovery fields by recovery.ts, the rest by the tunnel. The packets waiting
 * for keys live in the tunnel's `SendQueue`, not here.
 */
import { NONCE_SIZE, NonceSequence, ReplayWindows, type KdfVariant, type TunnelCipher } from '../crypto/index.js'
import type { UdpEndpoint } from './bind.js'
import type { CandidateEndpoint } from './endpoints.js'

export type PathKind = 'direct' | 'punched' | 'relay' | 'none'

/** What `Tunnel.peers()` reports for one peer. */
export interface PeerInfo {
  nodeId: number
  path: PathKind
  /** Direct endpoint we send to (null on relay without one, or before any is known). */
  endpoint: UdpEndpoint | null
  /** Variant we encrypt with; null before keys exist. */
  kdf: KdfVariant | null
  /** True once the peer's variant was confirmed by a frame that opened with it (or forced). */
  kdfConfirmed: boolean
  /** Keys exist both ways: we hold the peer's verified key and have sent ours. */
  authenticated: boolean
  /** Clock value of the last authenticated frame from the peer, 0 = never. */
  lastReceiveMs: number
  /**
   * Smoothed round trip in ms (EWMA, gain 1/8) of the samples given to `Tunnel.recordRtt`
   * (the daemon's pings, pongs and stream handshakes); until the first one, the key-exchange
   * round trip (our PILA → the peer's, which includes the peer's registry lookup). Absent
   * when nothing was measured.
   */
  rttMs?: number
  bytesIn: number
  bytesOut: number
  packetsIn: number
  packetsOut: number
  queued: number
  dropped: { replay: number; authFailed: number; badPacket: number; sourceMismatch: number; queueOverflow: number }
}

/** Emitted whenever a peer's path or direct endpoint changes. */
export interface PathChangeEvent {
  nodeId: number
  from: PathKind
  to: PathKind
  endpoint: UdpEndpoint | null
  reason: 'confirmed' | 'relay-timeout' | 'relay-reachable' | 'direct-stale' | 'upgrade' | 'roam' | 'key-change'
}

export const MAX_CANDIDATES = 4

/** EWMA gain of the RTT estimate (RFC 6298's alpha). */
const RTT_GAIN = 1 / 8

export class Peer {
  readonly nodeId: number

  // --- keys
  /** The peer's X25519 public key (copy), null before its first verified PILA. */
  peerX25519: Uint8Array | null = null
  legacy: TunnelCipher | null = null
  hkdf: TunnelCipher | null = null
  /** Ciphers under our previous X25519 key (after a rotation), tried when the current ones fail. */
  prevLegacy: TunnelCipher | null = null
  prevHkdf: TunnelCipher | null = null
  /** Variant we send with (and try first on receive). */
  kdf: KdfVariant = 'legacy'
  kdfConfirmed = false
  /** The peer's PILA carried trailing capability bytes (a newer, HKDF-speaking daemon). */
  peerAdvertisesHkdf = false
  sendSeq: NonceSequence | null = null
  readonly nonce = new Uint8Array(NONCE_SIZE)
  /** Replaced only when a removed peer is set up again (peer-table.ts gives back its windows). */
  replay = new ReplayWindows()
  /** The peer's previous X25519 keys (oldest first, bounded): a PILA carrying one is refused. */
  retiredKeys: Uint8Array[] = []
  /**
   * The key this peer had when it was removed (peer-table.ts), until its next PILA: the same key
   * keeps `replay`, another one retires it.
   */
  restoredKey: Uint8Array | null = null
  /** We have sent our current key frame to this peer (clock value, 0 = not yet). */
  keySentMs = 0
  /** We hold a peer key verified since our current key pair was made. */
  peerKeyCurrent = false
  /** Clock value of the first PILA we sent while waiting for the peer's key, for the RTT estimate. */
  keyProbeMs = 0
  gotPils = false
  /** PILS from the peer that failed authentication since the last one that opened. */
  authFailStreak = 0

  // --- path
  path: PathKind = 'none'
  endpoint: UdpEndpoint | null = null
  readonly candidates: CandidateEndpoint[] = []
  /**
   * Where a PILA with a new key came from, when that is not `endpoint` (a restart on a new port,
   * or a capture replayed from elsewhere): it gets copies of our frames, and becomes the endpoint
   * only when an authenticated PILS arrives from it. Null = none.
   */
  pendingEndpoint: CandidateEndpoint | null = null
  pendingSinceMs = 0
  /** Set-up started (first send or first key frame), 0 = not started. */
  setupStartedMs = 0
  /** Set-up resolve started and not failed (a later success keeps it set). */
  resolveStarted = false
  /** A `resolveEndpoint` call is in flight. */
  resolving = false
  /** Resolve again when the one in flight settles (trust changed meanwhile). */
  resolveAgain = false
  punchRequestedMs = 0
  lastDirectAuthMs = 0
  nextProbeMs = 0
  /** First PILS sent on the direct path since the last direct authenticated frame, 0 = none. */
  unansweredSinceMs = 0
  probeIntervalMs = 0
  /** First PILS sent (any path) since the last authenticated frame from the peer, 0 = none. */
  silentSinceMs = 0
  /** Next silence re-key allowed at, and the current back-off. */
  silenceRekeyAtMs = 0
  silenceRekeyBackoffMs = 0

  // --- counters
  lastReceiveMs = 0
  /** Last clock value with traffic either way (as the tick saw it), for idle expiry. */
  lastActiveMs = 0
  /** `packetsIn + packetsOut` when the tick last looked: a change is traffic. */
  activityMark = 0
  /** Smoothed RTT, -1 = none; provisional while it only holds the key-exchange sample. */
  rttMs = -1
  rttProvisional = false
  bytesIn = 0
  bytesOut = 0
  packetsIn = 0
  packetsOut = 0
  dropReplay = 0
  dropAuthFailed = 0
  dropBadPacket = 0
  dropSourceMismatch = 0
  dropQueueOverflow = 0

  constructor(nodeId: number) {
    this.nodeId = nodeId
  }

  /** PILS may be sent: ciphers exist, the peer's key is current and ours has gone out. */
  get ready(): boolean {
    return this.sendSeq !== null && this.peerKeyCurrent && this.keySentMs !== 0
  }

  /** Adds or refreshes a direct endpoint candidate (bounded; the oldest goes). */
  addCandidate(host: string, port: number, fromPunch: boolean, fromResolve: boolean): CandidateEndpoint {
    for (const c of this.candidates) {
      if (c.port === port && c.host === host) {
        if (fromPunch) c.fromPunch = true
        if (fromResolve) c.fromResolve = true
        return c
      }
    }
    const c: CandidateEndpoint = { host, port, fromPunch, fromResolve }
    this.candidates.push(c)
    if (this.candidates.length > MAX_CANDIDATES) this.candidates.shift()
    return c
  }

  /** One RTT sample. A provisional one (key exchange) never overrides a real estimate. */
  recordRtt(ms: number, provisional: boolean): void {
    if (provisional) {
      if (this.rttMs >= 0) return
      this.rttMs = ms
      this.rttProvisional = true
      return
    }
    if (this.rttMs < 0 || this.rttProvisional) this.rttMs = ms
    else this.rttMs += (ms - this.rttMs) * RTT_GAIN
    this.rttProvisional = false
  }

  findCandidate(host: string, port: number): CandidateEndpoint | null {
    for (const c of this.candidates) if (c.port === port && c.host === host) return c
    return null
  }

  /** `queued`: the packets the tunnel's send queue holds for this peer. */
  info(queued: number): PeerInfo {
    const info: PeerInfo = {
      nodeId: this.nodeId,
      path: this.path,
      endpoint: this.endpoint === null ? null : { host: this.endpoint.host, port: this.endpoint.port },
      kdf: this.sendSeq === null ? null : this.kdf,
      kdfConfirmed: this.kdfConfirmed,
      authenticated: this.ready,
      lastReceiveMs: this.lastReceiveMs,
      bytesIn: this.bytesIn,
      bytesOut: this.bytesOut,
      packetsIn: this.packetsIn,
      packetsOut: this.packetsOut,
      queued,
      dropped: {
        replay: this.dropReplay,
        authFailed: this.dropAuthFailed,
        badPacket: this.dropBadPacket,
        sourceMismatch: this.dropSourceMismatch,
        queueOverflow: this.dropQueueOverflow,
      },
    }
    if (this.rttMs >= 0) info.rttMs = this.rttMs
    return info
  }
}
