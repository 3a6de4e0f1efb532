/**
 * Which way each peer's frames go (docs/wire.md §9, §17): a direct endpoint
 * (from the registry, or roaming), a hole-punched one (from a beacon
 * PunchCommand), or the beacon relay; and how a peer moves between them.
 *
 *  - a working direct endpoint moves only on an authenticated PILS. A signed
 *    PILA can be replayed from anywhere: one with the peer's current key from
 *    elsewhere is a candidate only; one bringing a new key from elsewhere (a
 *    restart on a new port, or a capture forwarded from another address)
 *    makes that address the pending endpoint, which gets copies of our frames
 *    until a PILS from it authenticates (then it is the endpoint) or
 *    `directStaleMs` passes;
 *  - set-up that finds no authenticated direct frame within `relayAfterMs`
 *    falls back to the relay, and so does a direct path whose PILS go
 *    unanswered for `directStaleMs`;
 *  - a relayed peer is probed (our PILA to each known endpoint, with a fresh
 *    resolve) on a doubling schedule, so it is upgraded when a direct answer
 *    authenticates, and a restarted peer on a new port is found again.
 *
 * Owns the endpoints we punched towards and the path-change handler; writes
 * only the path fields of a `Peer`. Sends through `PathPort`.
 */
import type { Logger } from '../logger.js'
import type { UdpEndpoint } from './bind.js'
import type { PeerDirectory } from './peer-directory.js'
import type { PathChangeEvent, PathKind, Peer } from './peer.js'
import { endpointEquals, formatEndpoint, normalizeHost } from './endpoints.js'
import type { TunnelScheduler, TunnelTiming } from './timing.js'
import type { DropCounters } from './stats.js'

export type PathChangeHandler = (event: PathChangeEvent) => void

/** Punched endpoints remembered (oldest forgotten), to label a direct path through one `punched`. */
export const MAX_PUNCHED_ENDPOINTS = 16

/** What paths need from the tunnel; implemented once per tunnel. */
export interface PathPort {
  /** Our PILA on the peer's current path; when it went out, the peer counts as having our key. */
  sendKeyFrame(peer: Peer, now: number): void
  /** Our PILA (a copy) straight to host:port, counted as a key frame sent. */
  sendKeyFrameTo(host: string, port: number): void
  /** Our PILA went out towards a peer being set up (its queue may flush). */
  keySent(peer: Peer, now: number): void
  /** False once the tunnel closed or forgot this peer (a resolve answer arriving late). */
  isCurrent(peer: Peer): boolean
}

export type PathTiming = Pick<TunnelTiming, 'relayAfterMs' | 'probeIntervalMs' | 'probeMaxMs' | 'directStaleMs' | 'punchMatchMs'>

export interface PathManagerOptions {
  directory: Pick<PeerDirectory, 'resolveEndpoint' | 'lastKnownEndpoint'>
  /** A beacon is configured, so the relay exists. */
  hasRelay: boolean
  timing: PathTiming
  clock: Pick<TunnelScheduler, 'now'>
  logger: Logger
  drops: DropCounters
  port: PathPort
}

interface PunchedEndpoint {
  host: string
  port: number
  atMs: number
}

export class PathManager {
  private readonly punched: PunchedEndpoint[] = []
  private handler: PathChangeHandler | null = null

  constructor(private readonly opts: PathManagerOptions) {}

  onChange(handler: PathChangeHandler | null): void {
    this.handler = handler
  }

  // ------------------------------------------------------------------ authenticated frames

  /** An authenticated PILS arrived directly from host:port (the packet path: no work unless it moved). */
  noteDirectPils(peer: Peer, host: string, port: number, now: number): void {
    peer.lastDirectAuthMs = now
    peer.unansweredSinceMs = 0
    const pending = peer.pendingEndpoint
    if (pending !== null) peer.pendingEndpoint = null // settled: the peer's new key speaks from here
    if ((peer.path === 'direct' || peer.path === 'punched') && endpointEquals(peer.endpoint, host, port)) return
    let reason: PathChangeEvent['reason'] = peer.path === 'relay' ? 'upgrade' : peer.path === 'none' ? 'confirmed' : 'roam'
    if (reason === 'roam' && pending !== null && pending.port === port && pending.host === host) reason = 'key-change'
    this.setDirect(peer, host, port, reason, now)
  }

  /** A verified PILA arrived directly. Returns true if it upgraded a relayed peer. */
  noteDirectPila(peer: Peer, host: string, port: number, keyChanged: boolean, now: number): boolean {
    if (peer.path === 'direct' || peer.path === 'punched') {
      if (endpointEquals(peer.endpoint, host, port)) {
        peer.lastDirectAuthMs = now
        peer.unansweredSinceMs = 0
      } else if (keyChanged) {
        // A new key from elsewhere: reach it too, but move only on a PILS from there.
        peer.pendingEndpoint = peer.findCandidate(host, port) ?? peer.addCandidate(host, port, this.isPunched(host, port), false)
        peer.pendingSinceMs = now
      } else {
        // A signed PILA can be replayed from anywhere: keep it as a candidate only.
        peer.addCandidate(host, port, this.isPunched(host, port), false)
      }
      return false
    }
    const wasRelay = peer.path === 'relay'
    this.setDirect(peer, host, port, wasRelay ? 'upgrade' : 'confirmed', now)
    return wasRelay
  }

  /** An authenticated frame came through the relay. */
  noteRelayed(peer: Peer, now: number): void {
    if (peer.path === 'relay') return
    if (peer.path === 'none' || now - peer.lastDirectAuthMs > this.opts.timing.relayAfterMs) this.setRelay(peer, 'relay-reachable', now)
  }

  // ------------------------------------------------------------------ endpoints

  /** The beacon had us punch towards host:port. It does not say for which node: see below. */
  notePunchCommand(host: string, port: number, now: number, peers: Iterable<Peer>): void {
    this.rememberPunched(host, port, now)
    // Offer it to every peer with a recent PunchRequest. A wrong guess is harmless — paths move
    // only on frames that authenticate as the peer.
    for (const peer of peers) {
      if (peer.punchRequestedMs === 0 || now - peer.punchRequestedMs > this.opts.timing.punchMatchMs) continue
      if (peer.path === 'direct' || peer.path === 'punched') continue
      const c = peer.addCandidate(host, port, true, false)
      if (peer.endpoint === null && peer.path === 'none') peer.endpoint = c
    }
  }

  /**
   * Set-up begins with no endpoint: take the one a resolve last gave for the node, however old
   * (a trusted peer's is resolved when the daemon starts, `Tunnel.prefetchPeers`), so our key
   * frame goes out now instead of after a registry round trip. The resolve still runs and
   * replaces it (onResolved); only an authenticated answer from there makes it the path.
   * True when an endpoint was taken.
   */
  useLastKnown(peer: Peer): boolean {
    if (peer.endpoint !== null || peer.path !== 'none') return false
    const ep = this.opts.directory.lastKnownEndpoint?.(peer.nodeId) ?? null
    if (ep === null || typeof ep.host !== 'string' || !(ep.port > 0 && ep.port <= 0xffff)) return false
    peer.endpoint = peer.addCandidate(normalizeHost(ep.host), ep.port, false, false)
    return true
  }

  /** Resolves the node's endpoint into the directory's cache (for `useLastKnown`); no peer needed. */
  prefetch(nodeId: number): void {
    this.opts.directory.resolveEndpoint(nodeId).catch((err: unknown) => this.opts.logger.warn('tunnel endpoint prefetch failed', { node: nodeId, error: String(err) }))
  }

  /** Asks the registry for the peer's endpoint (one request in flight per peer). */
  startResolve(peer: Peer): void {
    peer.resolveStarted = true
    peer.resolving = true
    peer.resolveAgain = false
    const nodeId = peer.nodeId
    this.opts.directory.resolveEndpoint(nodeId).then(
      (ep) => this.onResolved(peer, ep),
      (err: unknown) => {
        peer.resolveStarted = false
        this.opts.logger.warn('tunnel resolve failed', { node: nodeId, error: String(err) })
        this.afterResolve(peer)
      },
    )
  }

  /** Trust changed: resolve again now, and probe at once if the peer is relayed. */
  refresh(peer: Peer, now: number): void {
    if (peer.resolving) peer.resolveAgain = true
    if (peer.path === 'relay') {
      peer.probeIntervalMs = this.opts.timing.probeIntervalMs
      this.probe(peer, now)
    } else if (!peer.resolving) {
      this.startResolve(peer)
    }
  }

  // ------------------------------------------------------------------ housekeeping

  /** One peer's share of the tick: relay fallback during set-up, relay probes, stale direct paths. */
  tick(peer: Peer, now: number): void {
    if (peer.pendingEndpoint !== null && now - peer.pendingSinceMs >= this.opts.timing.directStaleMs) peer.pendingEndpoint = null
    if (peer.path === 'none') {
      if (this.opts.hasRelay && peer.setupStartedMs !== 0 && now - peer.setupStartedMs >= this.opts.timing.relayAfterMs) {
        this.setRelay(peer, 'relay-timeout', now)
        this.opts.port.sendKeyFrame(peer, now)
      }
    } else if (peer.path === 'relay') {
      if (now >= peer.nextProbeMs) this.probe(peer, now)
    } else if (peer.unansweredSinceMs !== 0 && this.opts.hasRelay && now - peer.unansweredSinceMs >= this.opts.timing.directStaleMs) {
      // Direct path went quiet while we kept sending: fall back to the relay (and probe).
      this.setRelay(peer, 'direct-stale', now)
    }
  }

  /** Relayed peer: resolve again, our PILA to each known direct endpoint; exponential back-off. */
  private probe(peer: Peer, now: number): void {
    if (!peer.resolving) this.startResolve(peer)
    for (const c of peer.candidates) this.opts.port.sendKeyFrameTo(c.host, c.port)
    peer.nextProbeMs = now + peer.probeIntervalMs
    peer.probeIntervalMs = Math.min(peer.probeIntervalMs * 2, this.opts.timing.probeMaxMs)
  }

  private afterResolve(peer: Peer): void {
    peer.resolving = false
    if (peer.resolveAgain && this.opts.port.isCurrent(peer)) this.startResolve(peer)
  }

  private onResolved(peer: Peer, ep: UdpEndpoint | null): void {
    if (!this.opts.port.isCurrent(peer)) return
    try {
      if (ep === null || !(ep.port > 0 && ep.port <= 0xffff) || typeof ep.host !== 'string') {
        peer.resolveStarted = false // try again on a later retry
        return
      }
      const host = normalizeHost(ep.host)
      const known = peer.findCandidate(host, ep.port) !== null
      const c = peer.addCandidate(host, ep.port, false, true)
      const now = this.opts.clock.now()
      // During set-up the registry's answer replaces a last-known endpoint (useLastKnown), not a punched one.
      if (peer.path === 'none' && (peer.endpoint === null || isLastKnownOnly(peer))) peer.endpoint = c
      if (peer.path === 'none' || !known) {
        // Direct key frame: the set-up attempt, or the first probe of a new endpoint (a relayed
        // peer revealed by trust, a restart on a new port; known ones get theirs from probe()).
        // Only an authenticated answer from there moves the path (noteDirectPils/Pila).
        this.opts.port.sendKeyFrameTo(host, ep.port)
        // Counts as "our key went out" only when direct is the path we are trying; a probe of a
        // relayed peer proves nothing about the relay path.
        if (peer.path === 'none') this.opts.port.keySent(peer, now)
      } else if (peer.path === 'punched' && peer.endpoint === c) {
        // The registry names the endpoint we punched to: it is the peer's own, a direct path.
        peer.path = 'direct'
        this.emit(peer, 'punched', 'upgrade')
      }
    } catch (err) {
      this.opts.drops['internal-error']++
      this.opts.logger.error('tunnel resolve handling failed', { error: String(err) })
    } finally {
      this.afterResolve(peer)
    }
  }

  // ------------------------------------------------------------------ transitions

  private setDirect(peer: Peer, host: string, port: number, reason: PathChangeEvent['reason'], now: number): void {
    const c = peer.findCandidate(host, port) ?? peer.addCandidate(host, port, this.isPunched(host, port), false)
    const kind: PathKind = c.fromPunch && !c.fromResolve ? 'punched' : 'direct'
    const from = peer.path
    peer.path = kind
    peer.endpoint = c
    peer.lastDirectAuthMs = now
    peer.unansweredSinceMs = 0
    peer.probeIntervalMs = 0
    this.emit(peer, from, reason)
  }

  private setRelay(peer: Peer, reason: PathChangeEvent['reason'], now: number): void {
    if (!this.opts.hasRelay) return
    const from = peer.path
    peer.path = 'relay'
    peer.unansweredSinceMs = 0
    peer.probeIntervalMs = this.opts.timing.probeIntervalMs
    peer.nextProbeMs = now + peer.probeIntervalMs
    this.emit(peer, from, reason)
    // The endpoint we knew may be stale (a restart on a new port): ask again.
    if (!peer.resolving) this.startResolve(peer)
  }

  private emit(peer: Peer, from: PathKind, reason: PathChangeEvent['reason']): void {
    const event: PathChangeEvent = {
      nodeId: peer.nodeId,
      from,
      to: peer.path,
      endpoint: peer.endpoint === null ? null : { host: peer.endpoint.host, port: peer.endpoint.port },
      reason,
    }
    this.opts.logger.info('tunnel path', { node: peer.nodeId, from, to: peer.path, endpoint: formatEndpoint(peer.endpoint), reason })
    const h = this.handler
    if (h !== null) {
      try {
        h(event)
      } catch (err) {
        this.opts.logger.error('path-change handler threw', { error: String(err) })
      }
    }
  }

  private rememberPunched(host: string, port: number, now: number): void {
    for (const p of this.punched) {
      if (p.port === port && p.host === host) {
        p.atMs = now
        return
      }
    }
    this.punched.push({ host, port, atMs: now })
    if (this.punched.length > MAX_PUNCHED_ENDPOINTS) this.punched.shift()
  }

  private isPunched(host: string, port: number): boolean {
    for (const p of this.punched) if (p.port === port && p.host === host) return true
    return false
  }
}

/** The peer's endpoint is a last-known one only (useLastKnown): neither resolved now nor punched. */
function isLastKnownOnly(peer: Peer): boolean {
  const e = peer.endpoint
  const c = e === null ? null : peer.findCandidate(e.host, e.port)
  return c !== null && !c.fromPunch && !c.fromResolve
}
