/**
 * The registry's TCP edge (docs/wire.md §10.1): length-prefixed JSON, one request
 * answered before the next is read from the same connection. The logic lives
 * in RegistryRequestHandler; this file owns sockets, timers and counters.
 *
 * Requests are asynchronous (the store is): each connection answers its
 * requests one at a time, in order, awaiting each before decoding the next.
 * Bytes that arrive meanwhile wait in the connection's decoder (counted by
 * the guard below, with a fresh frame deadline), and the socket stops reading
 * until the backlog is answered. A request whose store fails is answered
 * "registry store unavailable"; the connection and the server carry on.
 *
 * Bad input never stops the server:
 *   - a length prefix above the limit: error response, then the connection is
 *     closed (the body that follows cannot be skipped safely);
 *   - a body that is not a JSON object: error response, then close (the shared
 *     frame decoder does not resume after a bad body);
 *   - wrong or missing fields, bad signatures: error response, connection stays;
 *   - a client that vanishes mid-frame: its decoder goes with its socket.
 * And against exhaustion (connection-guard.ts): too many connections from one
 * source are closed at once; a frame still incomplete `frameDeadlineMs` after
 * its first byte closes its connection; when partly received frames across all
 * connections pass `maxBufferedFrameBytes`, the largest holder is closed.
 * Each refusal is counted by reason in `stats()`.
 */
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net'
import { DecodeError } from '../errors.js'
import { nullLogger, type Logger } from '../logger.js'
import { encodeRegistryMessage, RegistryFrameDecoder, type JsonObject } from '../protocol/registry-framing.js'
import { newConnectionState } from './address-claims.js'
import { ConnectionGuard } from './connection-guard.js'
import { normalizeRemoteIp, sourceKeyOf } from './endpoints.js'
import { withSortedKeys } from './json-order.js'
import { DEFAULT_REGISTRY_LIMITS, type RegistryLimits } from './limits.js'
import { errorResponse, RegistryRequestHandler, type RequestOrigin } from './request-handler.js'
import type { RejectReason } from './request-fields.js'
import type { RegistryStore } from './store-api.js'
import { TlsFront, type RegistryTlsListenOptions, type TlsFrontStats } from './tls-front.js'

export interface RegistryServerOptions {
  store: RegistryStore
  logger?: Logger
  /** Wall clock in ms; tests pass a fake one. */
  now?: () => number
  limits?: Partial<RegistryLimits>
  /** Lets `audit_log` of the trust chain (network 0) be read by whoever presents it (issue 13). */
  adminToken?: string
  /** TLS on the listening port (tls-front.ts, issue 15): both plaintext and TLS, or TLS only. */
  tls?: RegistryTlsListenOptions
}

export interface RegistryServerStats {
  /** Connections open now. */
  connections: number
  /** Every connection accepted, including those then closed at once for the per-source cap. */
  connectionsAccepted: number
  /** Connections closed because of bad framing or the idle limit. */
  connectionsClosedForInput: number
  connectionsClosedIdle: number
  /** Connections closed at once because their source already had `maxConnectionsPerIp`. */
  connectionsRefusedPerIp: number
  /** Connections closed because a frame was not complete `frameDeadlineMs` after its first byte. */
  connectionsClosedSlowFrame: number
  /** Connections closed because partly received frames passed `maxBufferedFrameBytes`. */
  connectionsClosedForBudget: number
  /** Bytes of partly received frames held now, across all connections. */
  bufferedFrameBytes: number
  requests: number
  /** Refused requests (and refused frames) by reason. */
  rejected: Partial<Record<RejectReason, number>>
  nodesReaped: number
}

/** How often gathered heartbeats are written (a crash loses at most this much of last_seen). */
const TOUCH_FLUSH_MS = 1_000

export class RegistryServer {
  private readonly store: RegistryStore
  private readonly logger: Logger
  private readonly limits: RegistryLimits
  private readonly handler: RegistryRequestHandler
  private readonly sockets = new Set<Socket>()
  private readonly counters: Omit<RegistryServerStats, 'connections' | 'rejected' | 'bufferedFrameBytes'> = {
    connectionsAccepted: 0,
    connectionsClosedForInput: 0,
    connectionsClosedIdle: 0,
    connectionsRefusedPerIp: 0,
    connectionsClosedSlowFrame: 0,
    connectionsClosedForBudget: 0,
    requests: 0,
    nodesReaped: 0,
  }
  private readonly rejected: Partial<Record<RejectReason, number>> = {}
  private readonly guard: ConnectionGuard<Socket>
  private server: Server | null = null
  private reapTimer: NodeJS.Timeout | null = null
  /** A reaper pass still running (the next tick then skips). */
  private reaping = false
  /** When listen() started (performance.now()): no reaping in the first interval (see reapTick). */
  private listenedAt = 0
  private readonly now: () => number
  /** Writes the heartbeats the store gathered, once a second. */
  private touchTimer: NodeJS.Timeout | null = null
  private frameTimer: NodeJS.Timeout | null = null
  private readonly tlsFront: TlsFront | null

  constructor(options: RegistryServerOptions) {
    this.store = options.store
    this.logger = (options.logger ?? nullLogger).child({ component: 'registry' })
    this.limits = { ...DEFAULT_REGISTRY_LIMITS, ...options.limits }
    this.guard = new ConnectionGuard(this.limits)
    this.now = options.now ?? Date.now
    this.tlsFront = options.tls === undefined ? null : new TlsFront({ maxPendingPerSource: this.limits.maxConnectionsPerIp, ...options.tls }, this.logger)
    this.handler = new RegistryRequestHandler({
      store: this.store,
      now: this.now,
      limits: this.limits,
      logger: this.logger,
      ...(options.adminToken !== undefined ? { adminToken: options.adminToken } : {}),
    })
  }

  /** Starts accepting connections and the reaper. Resolves with the bound address (port 0 picks one). */
  async listen(host: string, port: number): Promise<{ host: string; port: number }> {
    if (this.server !== null) throw new Error('registry server is already listening')
    const tlsFront = this.tlsFront
    const accept = (socket: Socket): void => this.accept(socket)
    const server = createServer({ noDelay: true }, tlsFront === null ? accept : (socket) => tlsFront.route(socket, accept))
    server.maxConnections = this.limits.maxConnections
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(port, host, () => {
        server.off('error', reject)
        resolve()
      })
    })
    server.on('error', (err) => this.logger.error('listener error', { error: err.message }))
    this.server = server
    this.listenedAt = performance.now()
    // Ticks four times an interval; the store's maintain() runs the reaper once an interval across
    // every front end of the database, whichever ticks first after the interval passed.
    this.reapTimer = setInterval(() => void this.reapTick(), Math.max(1, Math.floor(this.limits.reapIntervalMs / 4)))
    this.reapTimer.unref()
    this.touchTimer = setInterval(() => void this.flushTouches(), TOUCH_FLUSH_MS)
    this.touchTimer.unref()
    this.frameTimer = setInterval(() => this.closeOverdue(), this.guard.checkIntervalMs)
    this.frameTimer.unref()
    const bound = server.address() as AddressInfo
    return { host: bound.address, port: bound.port }
  }

  /** Stops listening, closes every connection and the reaper. The store stays open (the caller owns it). */
  async close(): Promise<void> {
    if (this.reapTimer !== null) clearInterval(this.reapTimer)
    if (this.touchTimer !== null) clearInterval(this.touchTimer)
    this.touchTimer = null
    await this.flushTouches()
    if (this.frameTimer !== null) clearInterval(this.frameTimer)
    this.reapTimer = null
    this.frameTimer = null
    const server = this.server
    this.server = null
    this.tlsFront?.closeAll()
    for (const socket of this.sockets) socket.destroy()
    this.sockets.clear()
    if (server !== null) await new Promise<void>((resolve) => server.close(() => resolve()))
  }

  private async flushTouches(): Promise<void> {
    try {
      await this.store.flushTouches()
    } catch (err) {
      this.logger.error('writing heartbeats failed', { error: (err as Error).message })
    }
  }

  /** The timer's reaper pass: only if no front end on this database reaped within `reapIntervalMs`. */
  private async reapTick(): Promise<void> {
    // Not in this front end's first interval, as before the store was shared: after an outage of the
    // registry, daemons need a heartbeat's time to reach it before their silence counts against them.
    if (this.reaping || performance.now() - this.listenedAt < this.limits.reapIntervalMs) return
    this.reaping = true
    try {
      await this.store.maintain('reap', this.limits.reapIntervalMs, this.now(), () => this.reapNow())
    } catch (err) {
      this.logger.error('reaper failed', { error: (err as Error).message })
    } finally {
      this.reaping = false
    }
  }

  /** One reaper pass now, whenever the last one was (the timer goes through `maintain` instead). */
  async reapNow(): Promise<{ nodes: number[]; beacons: number; requests: number }> {
    try {
      const result = await this.handler.reap()
      this.counters.nodesReaped += result.nodes.length
      if (result.nodes.length > 0) this.logger.info('nodes went offline', { nodes: result.nodes })
      return result
    } catch (err) {
      this.logger.error('reaper failed', { error: (err as Error).message })
      return { nodes: [], beacons: 0, requests: 0 }
    }
  }

  stats(): RegistryServerStats {
    return {
      connections: this.sockets.size,
      ...this.counters,
      bufferedFrameBytes: this.guard.bufferedBytes,
      rejected: { ...this.rejected },
    }
  }

  private accept(socket: Socket): void {
    this.counters.connectionsAccepted++
    socket.on('error', () => {}) // resets and the like; 'close' follows and cleans up
    const ip = normalizeRemoteIp(socket.remoteAddress ?? '0.0.0.0')
    const guarded = this.guard.admit(sourceKeyOf(ip), socket)
    if (guarded === null) {
      this.counters.connectionsRefusedPerIp++
      socket.destroy()
      return
    }
    this.sockets.add(socket)
    const origin: RequestOrigin = { ip, port: socket.remotePort ?? 0, connection: newConnectionState() }
    const decoder = new RegistryFrameDecoder(this.limits.maxMessageSize)
    let closing = false
    /** A request of this connection is being answered: the next waits for it. */
    let busy = false
    /** The socket stopped reading: the client is not reading our answers, or a backlog is being answered. */
    let writeBlocked = false
    let backlogPaused = false

    const closeAfter = (frame: Buffer): void => {
      closing = true
      this.guard.remove(guarded)
      this.counters.connectionsClosedForInput++
      socket.end(frame, () => socket.destroy())
    }
    const resumeIfFree = (): void => {
      if (!writeBlocked && !backlogPaused && !closing && !socket.destroyed) socket.resume()
    }
    const account = (completed: boolean): void => {
      for (const over of this.guard.afterChunk(guarded, decoder.bufferedBytes, completed, performance.now())) {
        this.counters.connectionsClosedForBudget++
        over.handle.destroy()
      }
    }

    /** Answers every complete frame in the decoder, one at a time, in order. */
    const answerAll = async (): Promise<void> => {
      busy = true
      let completed = false
      try {
        for (;;) {
          if (closing || socket.destroyed) return
          let request: JsonObject | null
          try {
            request = decoder.next()
          } catch (err) {
            const reason: RejectReason = err instanceof DecodeError && err.reason === 'too-large' ? 'too-large' : 'bad-json'
            this.count(reason)
            closeAfter(encodeRegistryMessage(errorResponse(reason === 'too-large' ? 'message too large' : 'invalid json')))
            return
          }
          if (request === null) break
          completed = true
          this.counters.requests++
          const { response, rejected } = await this.handler.handle(request, origin)
          if (rejected !== null) {
            this.count(rejected)
            if (this.logger.debugEnabled) {
              this.logger.debug('request refused', { type: String(request.type).slice(0, 40), reason: rejected, peer: origin.ip })
            }
          }
          if (closing || socket.destroyed) return
          // A client that pipelines without reading gets no more work done until it reads.
          if (!socket.write(this.encodeResponse(response))) {
            writeBlocked = true
            socket.pause()
          }
        }
      } finally {
        busy = false
      }
      account(completed)
      if (backlogPaused) {
        backlogPaused = false
        resumeIfFree()
      }
    }

    socket.setTimeout(this.limits.idleTimeoutMs)
    socket.on('timeout', () => {
      this.counters.connectionsClosedIdle++
      socket.destroy()
    })
    socket.on('close', () => {
      this.sockets.delete(socket)
      this.guard.remove(guarded)
    })
    socket.on('drain', () => {
      writeBlocked = false
      resumeIfFree()
    })
    socket.on('data', (chunk: Buffer) => {
      if (closing || !guarded.counted) return
      decoder.push(chunk)
      if (busy) {
        // Arrived while a request is answered (the store awaited): hold it, read no more until done.
        backlogPaused = true
        socket.pause()
        account(true)
        return
      }
      answerAll().catch((err: unknown) => {
        this.logger.error('registry connection failed', { error: (err as Error).message, peer: origin.ip })
        socket.destroy()
      })
    })
  }

  /** TLS connection counters, or null when TLS is off. */
  tlsStats(): TlsFrontStats | null {
    return this.tlsFront?.stats() ?? null
  }

  /** Closes connections whose partial frame passed `frameDeadlineMs` (the frame timer calls this). */
  private closeOverdue(): void {
    for (const late of this.guard.overdue(performance.now())) {
      this.counters.connectionsClosedSlowFrame++
      late.handle.destroy()
    }
  }

  private encodeResponse(response: JsonObject): Buffer {
    try {
      return encodeRegistryMessage(withSortedKeys(response), this.limits.maxMessageSize)
    } catch {
      this.count('internal')
      return encodeRegistryMessage(errorResponse('response too large'))
    }
  }

  private count(reason: RejectReason): void {
    this.rejected[reason] = (this.rejected[reason] ?? 0) + 1
  }
}
