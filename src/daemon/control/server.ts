/**
 * The daemon's control socket: a Unix stream socket, mode 0600, speaking the
 * protocol in protocol.ts to the CLI.
 *
 * Start-up is careful about the path: the parent directory is created (0755);
 * a socket file that another daemon answers on is refused
 * (`PT_CONTROL_IN_USE`); a socket file nobody answers on is stale and removed;
 * anything else at the path is refused (`PT_CONTROL_PATH`). The socket is
 * created under umask 0177, so it is 0600 from the moment it exists, and
 * chmod'ed again before the first connection is accepted. `close()` removes the
 * socket file if it is still ours (same inode).
 *
 * Hostile or broken clients: a bad frame, an oversized announcement or invalid
 * JSON gets one error response (id null) and the connection is closed; a bad
 * request (unknown method, wrong params) gets an error response and the
 * connection stays usable. Requests on one connection are handled one at a
 * time, in order; at most `maxPipelined` may wait. Nothing a client sends can
 * throw past the connection.
 */
import { createServer, type Server, type Socket } from 'node:net'
import { DecodeError } from '../../errors.js'
import { nullLogger, type Logger } from '../../logger.js'
import { errText, listenUnixSocket, removeUnixSocket, type UnixSocketErrors } from '../../unix-socket.js'
import type { JsonObject, RegistryFrameDecoder } from '../../protocol/registry-framing.js'
import type { DaemonControl } from '../api.js'
import {
  CONTROL_METHODS,
  ControlError,
  ControlErrorCode,
  createControlDecoder,
  dispatch,
  encodeControlMessage,
  errorBody,
  isControlMethod,
  parseRequestEnvelope,
  readRequestId,
  type ControlResponse,
  type RequestId,
} from './protocol.js'
import { SERVICE_METHODS, STREAM_BACKLOG_LIMIT, dispatchService, isServiceMethod, type StreamContext } from './service-methods.js'
import type { ServicesControl } from '../../services/api.js'
import { NETWORK_METHODS, dispatchNetwork, isNetworkMethod } from './network-methods.js'
import type { NetworkOps } from '../network-ops.js'
import { ServiceError, ServiceErrorCode } from '../../services/errors.js'
import { SECURE_METHODS, dispatchSecure, isSecureMethod } from './secure-methods.js'
import type { SecureControl } from '../../services/secure/secure-service.js'

export interface ControlServerOptions {
  /** Path of the Unix socket, e.g. /run/pilot-tun/control.sock. */
  path: string
  control: DaemonControl
  /** The data services' methods (service-methods.ts); absent or null = none. */
  services?: () => ServicesControl | null
  /** The network and audit methods (network-methods.ts); absent or null = none. */
  networks?: () => NetworkOps | null
  /** The port-443 secure channel's methods (secure-methods.ts); absent or null = none. */
  secure?: () => SecureControl | null
  logger?: Logger
  /** Concurrent connections accepted; more are closed at once. Default 64. */
  maxConnections?: number
  /** Requests that may wait behind the one being handled, per connection. Default 32. */
  maxPipelined?: number
  /** A connection with nothing in flight is closed after this long. Default 5 min. */
  idleTimeoutMs?: number
  /** How long `close()` lets in-flight requests finish before cutting connections. Default 1 s. */
  closeGraceMs?: number
}

export interface ControlServerStats {
  connections: number
  accepted: number
  refused: number
  requests: number
  badFrames: number
  badRequests: number
}

export class ControlServer {
  readonly path: string
  private readonly control: DaemonControl
  private readonly services: () => ServicesControl | null
  private readonly networks: () => NetworkOps | null
  private readonly secure: () => SecureControl | null
  private readonly logger: Logger
  private readonly maxConnections: number
  private readonly maxPipelined: number
  private readonly idleTimeoutMs: number
  private readonly closeGraceMs: number
  private readonly server: Server
  private readonly connections = new Set<ControlConnection>()
  private inode: number | null = null
  private listening = false
  private closing: Promise<void> | null = null
  private readonly counters = { accepted: 0, refused: 0, requests: 0, badFrames: 0, badRequests: 0 }

  constructor(options: ControlServerOptions) {
    this.path = options.path
    this.control = options.control
    this.services = options.services ?? (() => null)
    this.networks = options.networks ?? (() => null)
    this.secure = options.secure ?? (() => null)
    this.logger = (options.logger ?? nullLogger).child({ component: 'control' })
    this.maxConnections = options.maxConnections ?? 64
    this.maxPipelined = options.maxPipelined ?? 32
    this.idleTimeoutMs = options.idleTimeoutMs ?? 300_000
    this.closeGraceMs = options.closeGraceMs ?? 1000
    this.server = createServer({ allowHalfOpen: false, pauseOnConnect: false })
    this.server.on('connection', (socket) => this.onConnection(socket))
    this.server.on('error', (err) => this.logger.error('control socket error', { error: err.message }))
  }

  stats(): ControlServerStats {
    return { connections: this.connections.size, ...this.counters }
  }

  /** Creates the socket; rejects with PT_CONTROL_IN_USE or PT_CONTROL_PATH. */
  async listen(): Promise<void> {
    if (this.listening || this.closing) throw new Error('ControlServer.listen called twice')
    this.inode = await listenUnixSocket(this.server, this.path, CONTROL_SOCKET_ERRORS, this.logger)
    this.listening = true
    this.logger.debug('control socket listening', { path: this.path })
  }

  /**
   * Stops accepting, lets in-flight requests finish (up to closeGraceMs), then
   * closes every connection and removes the socket file if it is still ours.
   */
  close(): Promise<void> {
    this.closing ??= this.doClose()
    return this.closing
  }

  private async doClose(): Promise<void> {
    if (!this.listening) return
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()))
    for (const c of this.connections) c.closeWhenIdle()
    const grace = setTimeout(() => {
      for (const c of this.connections) c.destroy()
    }, this.closeGraceMs)
    await closed
    clearTimeout(grace)
    await removeUnixSocket(this.path, this.inode, 'control socket', this.logger)
  }

  private onConnection(socket: Socket): void {
    if (this.closing || this.connections.size >= this.maxConnections) {
      this.counters.refused++
      socket.destroy()
      return
    }
    this.counters.accepted++
    const conn = new ControlConnection(this, socket)
    this.connections.add(conn)
    socket.once('close', () => this.connections.delete(conn))
  }

  /** @internal used by ControlConnection */
  get settings(): { maxPipelined: number; idleTimeoutMs: number; logger: Logger } {
    return { maxPipelined: this.maxPipelined, idleTimeoutMs: this.idleTimeoutMs, logger: this.logger }
  }

  /** @internal counts and answers one decoded message; never throws. */
  async handle(msg: JsonObject, ctx: StreamContext): Promise<ControlResponse> {
    this.counters.requests++
    const id = readRequestId(msg)
    try {
      const req = parseRequestEnvelope(msg)
      if (isServiceMethod(req.method)) {
        const result = await dispatchService(this.services(), req.method, req.params, ctx)
        return { id: req.id, ok: true, result: result ?? null }
      }
      if (isSecureMethod(req.method)) {
        const result = await dispatchSecure(this.secure(), req.method, req.params, ctx)
        return { id: req.id, ok: true, result: result ?? null }
      }
      if (isNetworkMethod(req.method)) {
        const result = await dispatchNetwork(this.networks(), req.method, req.params)
        return { id: req.id, ok: true, result: result ?? null }
      }
      if (!isControlMethod(req.method)) {
        throw new ControlError(ControlErrorCode.UNKNOWN_METHOD, `unknown method "${req.method.slice(0, 64)}"`, {
          hint: `methods: ${[...CONTROL_METHODS, ...SERVICE_METHODS, ...NETWORK_METHODS, ...SECURE_METHODS].join(', ')}; is the CLI newer than the running daemon?`,
        })
      }
      const result = await dispatch(this.control, req.method, req.params)
      return { id: req.id, ok: true, result: result ?? null }
    } catch (err) {
      const body = errorBody(err)
      if (body.code === ControlErrorCode.BAD_REQUEST || body.code === ControlErrorCode.UNKNOWN_METHOD) this.counters.badRequests++
      if (body.code === ControlErrorCode.INTERNAL) {
        this.logger.error('control request failed', { method: msg.method, error: err instanceof Error ? err.stack : String(err) })
      }
      return { id, ok: false, error: body }
    }
  }

  /** @internal */
  countBadFrame(): void {
    this.counters.badFrames++
  }
}

/** One client connection: decode, queue, answer in order. */
class ControlConnection {
  private readonly owner: ControlServer
  private readonly socket: Socket
  private readonly decoder: RegistryFrameDecoder
  private readonly queue: JsonObject[] = []
  private busy = false
  private ending = false
  private drainWhenIdle = false
  /** Aborts the request in progress (a streaming one) when the client goes away. */
  private current: AbortController | null = null

  constructor(owner: ControlServer, socket: Socket) {
    this.owner = owner
    this.socket = socket
    this.decoder = createControlDecoder()
    const { idleTimeoutMs } = owner.settings
    socket.setTimeout(idleTimeoutMs)
    socket.on('timeout', () => {
      if (!this.busy) socket.destroy()
    })
    socket.on('data', (chunk: Buffer) => this.onData(chunk))
    socket.on('error', (err) => owner.settings.logger.debug('control client error', { error: err.message }))
    socket.once('close', () => this.current?.abort())
  }

  closeWhenIdle(): void {
    this.drainWhenIdle = true
    if (!this.busy && this.queue.length === 0) this.end()
  }

  destroy(): void {
    this.socket.destroy()
  }

  private onData(chunk: Buffer): void {
    if (this.ending) return
    let messages: JsonObject[]
    try {
      messages = this.decoder.pushAndDrain(chunk)
    } catch (err) {
      this.owner.countBadFrame()
      const message = err instanceof DecodeError ? err.message : errText(err)
      this.reject(`bad frame: ${message}`)
      return
    }
    for (const m of messages) {
      if (this.queue.length >= this.owner.settings.maxPipelined) {
        this.reject(`more than ${this.owner.settings.maxPipelined} requests waiting on one connection`)
        return
      }
      this.queue.push(m)
    }
    if (!this.busy && this.queue.length > 0) void this.pump()
  }

  /** Sends one error response with id null, then closes: framing is lost. */
  private reject(message: string): void {
    this.queue.length = 0
    this.write({
      id: null,
      ok: false,
      error: {
        code: ControlErrorCode.BAD_REQUEST,
        message,
        hint: 'control messages are a u32 big-endian length followed by that many bytes of JSON (at most 256 KiB)',
      },
    })
    this.end()
  }

  private async pump(): Promise<void> {
    this.busy = true
    while (this.queue.length > 0 && !this.ending) {
      const msg = this.queue.shift()!
      const response = await this.owner.handle(msg, this.streamContext(readRequestId(msg)))
      this.current = null
      if (this.socket.destroyed || this.ending) break
      this.write(response)
    }
    this.busy = false
    if (this.drainWhenIdle) this.end()
  }

  /** Event frames of a streaming answer, bounded by the socket's unsent bytes. */
  private streamContext(id: RequestId | null): StreamContext {
    const abort = new AbortController()
    this.current = abort
    return {
      signal: abort.signal,
      emit: (event: unknown) => {
        if (abort.signal.aborted || this.socket.destroyed || !this.socket.writable) return
        if (this.socket.writableLength > STREAM_BACKLOG_LIMIT) {
          abort.abort(
            new ServiceError(ServiceErrorCode.SLOW_SUBSCRIBER, `the client read events too slowly (over ${STREAM_BACKLOG_LIMIT} bytes waiting): cut off`, {
              hint: 'read the output faster, or subscribe with --count',
            }),
          )
          return
        }
        let bytes: Buffer
        try {
          bytes = encodeControlMessage({ id, event } as unknown as ControlResponse)
        } catch {
          return // larger than a control frame: the service keeps events small, so this is not reached
        }
        this.socket.write(bytes)
      },
    }
  }

  private write(response: ControlResponse): void {
    if (this.socket.destroyed || !this.socket.writable) return
    let bytes: Buffer
    try {
      bytes = encodeControlMessage(response)
    } catch (err) {
      bytes = encodeControlMessage({
        id: response.id,
        ok: false,
        error: { code: ControlErrorCode.INTERNAL, message: `response could not be sent: ${errText(err)}` },
      })
    }
    this.socket.write(bytes)
  }

  private end(): void {
    if (this.ending) return
    this.ending = true
    this.socket.end()
  }
}

const CONTROL_SOCKET_ERRORS: UnixSocketErrors = { inUse: inUseError, path: pathError, what: 'control socket', flag: '--control-socket' }

function inUseError(path: string): ControlError {
  return new ControlError(ControlErrorCode.IN_USE, `another pilot-tun daemon is answering on ${path}`, {
    hint: `stop it first (\`pilot-tun down --control-socket ${path}\`), or give this one another --control-socket`,
  })
}

function pathError(message: string, cause?: unknown, hint?: string): ControlError {
  const code = (cause as NodeJS.ErrnoException | undefined)?.code
  return new ControlError(ControlErrorCode.PATH, message, {
    hint:
      hint ??
      (code === 'EACCES' || code === 'EPERM'
        ? 'run the daemon as root (sudo) or choose a writable path with --control-socket'
        : 'choose another path with --control-socket'),
    ...(cause === undefined ? {} : { cause }),
  })
}

export { probeSocket } from '../../unix-socket.js'
