/**
 * The CLI's side of the control socket. `ControlClient.connect(path)` opens the
 * socket; `call(method, params, timeoutMs)` sends one request and resolves with
 * its result, or rejects with the daemon's error re-thrown as a PilotError
 * (same code, message and hint).
 *
 * Failures that mean "there is no daemon to talk to" are PT_DAEMON_NOT_RUNNING
 * with a hint on how to start one; a socket this user may not open is
 * PT_CONTROL_ACCESS_DENIED; no answer in time is PT_CONTROL_TIMEOUT.
 */
import { createConnection, type Socket } from 'node:net'
import { PilotError } from '../../errors.js'
import type { JsonObject, RegistryFrameDecoder } from '../../protocol/registry-framing.js'
import {
  ControlError,
  ControlErrorCode,
  createControlDecoder,
  encodeControlMessage,
  parseResponse,
  type ControlMethod,
  type ControlParams,
  type ControlResults,
} from './protocol.js'

export const DEFAULT_CONTROL_SOCKET = '/run/pilot-tun/control.sock'
export const DEFAULT_CALL_TIMEOUT_MS = 10_000

interface Pending {
  id: number
  method: string
  resolve: (v: unknown) => void
  reject: (e: Error) => void
  timer: NodeJS.Timeout
  /** Streaming methods: each `{"id", "event"}` frame before the answer. */
  onEvent?: (event: unknown) => void
}

export class ControlClient {
  readonly path: string
  private readonly socket: Socket
  private readonly decoder: RegistryFrameDecoder
  private readonly pending = new Map<number, Pending>()
  private nextId = 1
  private failure: PilotError | null = null

  private constructor(path: string, socket: Socket) {
    this.path = path
    this.socket = socket
    this.decoder = createControlDecoder()
    socket.on('data', (chunk: Buffer) => this.onData(chunk))
    socket.on('error', (err) => this.fail(closedError(path, err)))
    socket.on('close', () => this.fail(closedError(path)))
  }

  /** Connects to the daemon's control socket; rejects with PT_DAEMON_NOT_RUNNING and friends. */
  static connect(path: string = DEFAULT_CONTROL_SOCKET, timeoutMs = 5000): Promise<ControlClient> {
    return new Promise((resolve, reject) => {
      const socket = createConnection({ path })
      const timer = setTimeout(() => {
        socket.destroy()
        reject(timeoutError(path, 'connect', timeoutMs))
      }, timeoutMs)
      const onError = (err: NodeJS.ErrnoException): void => {
        clearTimeout(timer)
        socket.destroy()
        reject(connectError(path, err))
      }
      socket.once('error', onError)
      socket.once('connect', () => {
        clearTimeout(timer)
        socket.off('error', onError)
        resolve(new ControlClient(path, socket))
      })
    })
  }

  /** Sends `method` and waits up to `timeoutMs` for its answer. */
  call<M extends ControlMethod>(method: M, params: ControlParams[M], timeoutMs?: number): Promise<ControlResults[M]>
  /** Untyped form, for tests and tools: any method name and params object. */
  call(method: string, params: JsonObject, timeoutMs?: number): Promise<unknown>
  call(method: string, params: object, timeoutMs = DEFAULT_CALL_TIMEOUT_MS): Promise<unknown> {
    if (this.failure) return Promise.reject(this.failure)
    const id = this.nextId++
    let bytes: Buffer
    try {
      bytes = encodeControlMessage({ id, method, params: params as JsonObject })
    } catch (err) {
      return Promise.reject(new ControlError(ControlErrorCode.BAD_REQUEST, `request too large: ${(err as Error).message}`))
    }
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id)
        reject(timeoutError(this.path, method, timeoutMs))
      }, timeoutMs)
      this.pending.set(id, { id, method, resolve, reject, timer })
      this.socket.write(bytes)
    })
  }

  /**
   * A streaming method (e.g. events.subscribe): every event frame goes to
   * `onEvent`, then the final answer resolves or rejects as with `call`.
   */
  stream(method: string, params: object, onEvent: (event: unknown) => void, timeoutMs = DEFAULT_CALL_TIMEOUT_MS): Promise<unknown> {
    const id = this.nextId
    const answer = this.call(method, params as JsonObject, timeoutMs)
    const p = this.pending.get(id)
    if (p !== undefined) p.onEvent = onEvent
    return answer
  }

  close(): void {
    this.fail(new ControlError(ControlErrorCode.CLOSED, 'control connection closed by the client'))
    this.socket.destroy()
  }

  private onData(chunk: Buffer): void {
    let messages: JsonObject[]
    try {
      messages = this.decoder.pushAndDrain(chunk)
    } catch (err) {
      this.fail(badResponse(`undecodable answer: ${(err as Error).message}`))
      this.socket.destroy()
      return
    }
    for (const m of messages) {
      if (Object.hasOwn(m, 'event') && typeof m.id === 'number') {
        this.pending.get(m.id)?.onEvent?.(m.event)
        continue
      }
      const r = parseResponse(m)
      if (r === null) {
        this.fail(badResponse('an answer is not a control response'))
        this.socket.destroy()
        return
      }
      if (r.id === null && !r.ok) {
        // The daemon could not read our request at all; it closes after this.
        this.fail(new PilotError(r.error.code, r.error.message, r.error.hint === undefined ? {} : { hint: r.error.hint }))
        return
      }
      const p = typeof r.id === 'number' ? this.pending.get(r.id) : undefined
      if (!p) continue // answer to a request we gave up on
      this.pending.delete(p.id)
      clearTimeout(p.timer)
      if (r.ok) p.resolve(r.result)
      else p.reject(new PilotError(r.error.code, r.error.message, r.error.hint === undefined ? {} : { hint: r.error.hint }))
    }
  }

  private fail(err: PilotError): void {
    if (this.failure === null) this.failure = err
    for (const p of this.pending.values()) {
      clearTimeout(p.timer)
      p.reject(err)
    }
    this.pending.clear()
  }
}

/** Opens a connection, makes one call, closes. */
export async function callDaemon<M extends ControlMethod>(
  path: string,
  method: M,
  params: ControlParams[M],
  timeoutMs?: number,
): Promise<ControlResults[M]> {
  const client = await ControlClient.connect(path)
  try {
    return await client.call(method, params, timeoutMs)
  } finally {
    client.close()
  }
}

function connectError(path: string, err: NodeJS.ErrnoException): ControlError {
  const start = 'start it with `sudo pilot-tun up`, or pass --control-socket if it uses another path'
  switch (err.code) {
    case 'ENOENT':
      return new ControlError(ControlErrorCode.DAEMON_NOT_RUNNING, `the pilot-tun daemon is not running (no control socket at ${path})`, {
        hint: start,
        cause: err,
      })
    case 'ECONNREFUSED':
      return new ControlError(
        ControlErrorCode.DAEMON_NOT_RUNNING,
        `the pilot-tun daemon is not running (nothing answers on ${path}; the socket file is left over)`,
        { hint: start, cause: err },
      )
    case 'ENOTDIR':
    case 'ENOTSOCK':
      return new ControlError(ControlErrorCode.DAEMON_NOT_RUNNING, `the pilot-tun daemon is not running (${path} is not a socket)`, {
        hint: 'check --control-socket',
        cause: err,
      })
    case 'EACCES':
    case 'EPERM':
      return new ControlError(ControlErrorCode.ACCESS_DENIED, `permission denied opening the control socket ${path}`, {
        hint: 'the socket is mode 0600, owned by the user the daemon runs as; run this command as that user (e.g. with sudo)',
        cause: err,
      })
    default:
      return new ControlError(ControlErrorCode.DAEMON_NOT_RUNNING, `cannot reach the pilot-tun daemon at ${path}: ${err.message}`, {
        hint: start,
        cause: err,
      })
  }
}

function timeoutError(path: string, method: string, timeoutMs: number): ControlError {
  return new ControlError(ControlErrorCode.TIMEOUT, `the daemon at ${path} did not answer ${method} within ${(timeoutMs / 1000).toFixed(1)} s`, {
    hint: 'it is running but busy or stuck; check its log (journalctl -u pilot-tun)',
  })
}

function closedError(path: string, cause?: Error): ControlError {
  return new ControlError(ControlErrorCode.CLOSED, `the daemon closed the control connection (${path})${cause ? `: ${cause.message}` : ''}`, {
    hint: 'the daemon may have stopped or restarted; check its log',
    ...(cause === undefined ? {} : { cause }),
  })
}

function badResponse(message: string): ControlError {
  return new ControlError(ControlErrorCode.BAD_RESPONSE, message, {
    hint: 'is something other than pilot-tun listening on the control socket?',
  })
}
