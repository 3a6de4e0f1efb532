/** Test fixtures for the registry: a server on 127.0.0.1:0 with a fake clock, and a raw framed TCP connection. */
import { connect, createServer, type AddressInfo, type Socket } from 'node:net'
import { encodeRegistryMessage, RegistryFrameDecoder, type JsonObject } from '../../src/protocol/registry-framing.js'
import { RegistryServer } from '../../src/registry/server.js'
import { SqliteRegistryStore } from '../../src/registry/store.js'
import type { RegistryLimits } from '../../src/registry/limits.js'
import { RegistryClient, type RegistryClientOptions } from '../../src/registry/client.js'
import { Identity } from '../../src/crypto/identity.js'

export class FakeClock {
  ms: number
  constructor(ms = 1_795_776_000_000) {
    this.ms = ms
  }
  readonly now = (): number => this.ms
  advance(ms: number): void {
    this.ms += ms
  }
}

export interface TestRegistry {
  server: RegistryServer
  store: SqliteRegistryStore
  clock: FakeClock
  port: number
  /** Closes the server and the store. */
  close(): Promise<void>
}

export async function startTestRegistry(
  options: { storePath?: string; limits?: Partial<RegistryLimits>; clock?: FakeClock; port?: number } = {},
): Promise<TestRegistry> {
  const clock = options.clock ?? new FakeClock()
  const store = new SqliteRegistryStore({ path: options.storePath ?? ':memory:' })
  const server = new RegistryServer({ store, now: clock.now, limits: options.limits ?? {} })
  const { port } = await server.listen('127.0.0.1', options.port ?? 0)
  return {
    server,
    store,
    clock,
    port,
    close: async () => {
      await server.close()
      await store.close()
    },
  }
}

/** A client for `port` with short timeouts, so failing tests fail fast. */
export function testClient(port: number, identity = Identity.generate(), extra: Partial<RegistryClientOptions> = {}): RegistryClient {
  return new RegistryClient({
    host: '127.0.0.1',
    port,
    identity,
    timeoutMs: 3_000,
    reconnect: { initialDelayMs: 20, maxDelayMs: 100, maxAttempts: 5, dialTimeoutMs: 1_000 },
    ...extra,
  })
}

/** A framed connection driven by hand: send anything, read answers one by one. */
export class RawConnection {
  readonly socket: Socket
  private readonly decoder = new RegistryFrameDecoder()
  private readonly messages: JsonObject[] = []
  private readonly rawFrames: Buffer[] = []
  private waiters: Array<() => void> = []
  closed = false
  private readonly closedPromise: Promise<void>

  private constructor(socket: Socket) {
    this.socket = socket
    socket.on('data', (chunk: Buffer) => {
      try {
        this.decoder.push(chunk)
        for (let m = this.decoder.next(); m !== null; m = this.decoder.next()) {
          this.messages.push(m)
          this.rawFrames.push(encodeRegistryMessage(m))
        }
      } catch {
        socket.destroy()
      }
      this.wake()
    })
    socket.on('error', () => {})
    this.closedPromise = new Promise((resolve) =>
      socket.on('close', () => {
        this.closed = true
        this.wake()
        resolve()
      }),
    )
  }

  static open(port: number): Promise<RawConnection> {
    return new Promise((resolve, reject) => {
      const socket = connect({ host: '127.0.0.1', port })
      socket.once('connect', () => {
        socket.off('error', reject)
        resolve(new RawConnection(socket))
      })
      socket.once('error', reject)
    })
  }

  send(message: JsonObject): void {
    this.socket.write(encodeRegistryMessage(message))
  }

  sendRaw(bytes: Uint8Array): void {
    this.socket.write(bytes)
  }

  /** Sends and waits for the answer. */
  async ask(message: JsonObject, timeoutMs = 2_000): Promise<JsonObject> {
    this.send(message)
    return this.next(timeoutMs)
  }

  async next(timeoutMs = 2_000): Promise<JsonObject> {
    const deadline = Date.now() + timeoutMs
    while (this.messages.length === 0) {
      if (this.closed) throw new Error('connection closed before an answer arrived')
      const left = deadline - Date.now()
      if (left <= 0) throw new Error('no answer in time')
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left)
        this.waiters.push(() => {
          clearTimeout(timer)
          resolve()
        })
      })
    }
    return this.messages.shift()!
  }

  /** Resolves when the server closed the connection (rejects after `timeoutMs`). */
  async waitClosed(timeoutMs = 2_000): Promise<void> {
    let timer: NodeJS.Timeout | undefined
    await Promise.race([
      this.closedPromise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error('connection still open')), timeoutMs)
      }),
    ]).finally(() => clearTimeout(timer))
  }

  destroy(): void {
    this.socket.destroy()
  }

  private wake(): void {
    const waiters = this.waiters
    this.waiters = []
    for (const w of waiters) w()
  }
}

/**
 * Sockets, servers and timers still alive (docs/style.md §1: compare after the tests).
 * Closed sockets can take a tick to disappear, so this waits briefly for them.
 */
export async function leakedHandles(): Promise<string[]> {
  const watched = (r: string): boolean => r === 'TCPSocketWrap' || r === 'TCPServerWrap' || r === 'Timeout'
  for (let i = 0; i < 50; i++) {
    const left = process.getActiveResourcesInfo().filter(watched)
    if (left.length === 0) return []
    await new Promise((resolve) => setImmediate(resolve))
    if (i > 10) await new Promise((resolve) => setTimeout(resolve, 10).unref())
  }
  return process.getActiveResourcesInfo().filter(watched)
}

/** A scripted registry on 127.0.0.1 (see `scriptedRegistry`). */
export interface ScriptedRegistry {
  port: number
  /** Raw request frames (length prefix included), in arrival order. */
  frames: Buffer[]
  /** The decoded requests, in arrival order. */
  requests: JsonObject[]
  sockets: Set<Socket>
  close(): Promise<void>
}

/**
 * A fake registry: records every request and answers it with `answer(request)`
 * (null = stay silent), after `delayMs` when given (a slow registry).
 */
export async function scriptedRegistry(
  answer: (req: JsonObject, socket: Socket) => JsonObject | null,
  options: { delayMs?: number } = {},
): Promise<ScriptedRegistry> {
  const frames: Buffer[] = []
  const requests: JsonObject[] = []
  const sockets = new Set<Socket>()
  const server = createServer((socket) => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
    socket.on('error', () => {})
    const decoder = new RegistryFrameDecoder()
    let raw = Buffer.alloc(0)
    socket.on('data', (chunk: Buffer) => {
      raw = Buffer.concat([raw, chunk])
      decoder.push(chunk)
      for (let m = decoder.next(); m !== null; m = decoder.next()) {
        const size = raw.readUInt32BE(0) + 4
        frames.push(raw.subarray(0, size))
        raw = raw.subarray(size)
        requests.push(m)
        const reply = answer(m, socket)
        if (reply === null) continue
        if (options.delayMs === undefined) socket.write(encodeRegistryMessage(reply))
        else setTimeout(() => socket.write(encodeRegistryMessage(reply)), options.delayMs)
      }
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    port: (server.address() as AddressInfo).port,
    frames,
    requests,
    sockets,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy()
        server.close(() => resolve())
      }),
  }
}
