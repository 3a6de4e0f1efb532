/**
 * The data exchange service, port 1001 (docs/wire.md §13.3), both halves:
 *
 *  - `DataExchangeService` accepts any number of frames per connection,
 *    stores each in the `InboxStore` (TEXT, BINARY, JSON → inbox/, FILE →
 *    received/; other types are acknowledged and dropped, like the reference)
 *    and answers each, in order, with a TEXT frame `ACK <TYPE> <n> bytes` or
 *    `ERR <TYPE> save failed: <reason>`, as the Go reference does. An
 *    announced length above 16 MiB (or a FILE frame too short for its name)
 *    drops the connection. Frames are stored one at a time; while one is
 *    being written the stream is paused, so a fast sender waits in the
 *    session's receive window instead of in our memory. Connections are
 *    bounded in all and per node (more are reset), idle ones are closed.
 *  - `sendDataFrame` is the client: one frame on a fresh stream, the answer
 *    text back, then our FIN.
 */
import type { Logger } from '../logger.js'
import { nullLogger } from '../logger.js'
import { formatAddress } from '../protocol/address.js'
import { DataExchangeDecoder, DxType, dxAckText, dxErrText, dxTypeName, encodeDxAnswer, type DxFrame } from '../protocol/dataexchange-frames.js'
import { ServiceError, ServiceErrorCode } from './errors.js'
import type { InboxStore } from './inbox-store.js'
import { DATA_EXCHANGE_PORT, ignoreError, type ServiceStream, type StreamOpener } from './service-stream.js'
import { HeldBytesBudget, type HeldBytesShare } from './held-bytes.js'

export interface DataExchangeLimits {
  maxConnections: number
  maxConnectionsPerNode: number
  /** A connection with no frame for this long is closed. */
  idleTimeoutMs: number
  /** Bytes of partial frames all connections together may hold; the connection that passes it is dropped. */
  maxHeldBytes: number
}

export const DEFAULT_DATA_EXCHANGE_LIMITS: Readonly<DataExchangeLimits> = Object.freeze({
  maxConnections: 16,
  maxConnectionsPerNode: 4,
  idleTimeoutMs: 120_000,
  maxHeldBytes: 128 * 1024 * 1024,
})

export interface DataExchangeStats {
  connections: number
  refused: number
  frames: number
  acked: number
  errors: number
  dropped: number
}

export class DataExchangeService {
  readonly store: InboxStore
  private readonly limits: DataExchangeLimits
  private readonly logger: Logger
  private readonly perNode = new Map<number, number>()
  private readonly open = new Set<ServiceStream>()
  private readonly st = { refused: 0, frames: 0, acked: 0, errors: 0, dropped: 0 }
  /** Bytes of partial frames held by all connections' decoders. */
  readonly heldBytes: HeldBytesBudget

  constructor(store: InboxStore, options: { limits?: Partial<DataExchangeLimits>; logger?: Logger } = {}) {
    this.store = store
    this.limits = { ...DEFAULT_DATA_EXCHANGE_LIMITS, ...options.limits }
    this.heldBytes = new HeldBytesBudget(this.limits.maxHeldBytes)
    this.logger = options.logger ?? nullLogger
  }

  stats(): DataExchangeStats {
    return { connections: this.open.size, ...this.st }
  }

  /** One accepted stream (the daemon's port-1001 listener calls this). */
  accept(stream: ServiceStream): void {
    const node = stream.remoteAddress.node
    const n = this.perNode.get(node) ?? 0
    if (this.open.size >= this.limits.maxConnections || n >= this.limits.maxConnectionsPerNode) {
      this.st.refused++
      stream.on('error', ignoreError)
      stream.destroy()
      return
    }
    this.perNode.set(node, n + 1)
    this.open.add(stream)
    stream.once('close', () => {
      this.open.delete(stream)
      const left = (this.perNode.get(node) ?? 1) - 1
      if (left <= 0) this.perNode.delete(node)
      else this.perNode.set(node, left)
    })
    new DataExchangeConnection(this, stream, this.limits.idleTimeoutMs)
  }

  /**
   * Stores one frame from `from` and returns the answer text (ACK or ERR).
   * Also the local path: a message this node sends to itself.
   */
  async deliver(from: string, frame: DxFrame): Promise<string> {
    this.st.frames++
    const size = frame.data.length
    try {
      if (frame.type === DxType.FILE) await this.store.saveFile(frame.name ?? '', frame.data)
      else if (frame.type >= DxType.TEXT && frame.type <= DxType.JSON) await this.store.saveMessage(dxTypeName(frame.type), from, frame.data)
      // Other types are acknowledged and not kept, as the reference does (observed: `ACK UNKNOWN(9) 3 bytes`, nothing in its inbox).
      this.st.acked++
      return dxAckText(frame.type, size)
    } catch (err) {
      this.st.errors++
      this.logger.warn('data exchange: could not store a frame', { from, type: dxTypeName(frame.type), error: (err as Error).message })
      return dxErrText(frame.type, (err as Error).message)
    }
  }

  /** Resets every open connection (daemon shutdown). */
  close(): void {
    for (const s of this.open) s.destroy()
  }

  /** @internal */
  countDropped(): void {
    this.st.dropped++
  }

  /** Bytes of partial frames held now (tests). */
  get held(): number {
    return this.heldBytes.held
  }
}

/** One connection: decode, store in order, answer. */
class DataExchangeConnection {
  private readonly decoder = new DataExchangeDecoder()
  private readonly queue: DxFrame[] = []
  private busy = false
  private ended = false
  private idle: NodeJS.Timeout | null = null
  private readonly from: string

  constructor(
    private readonly service: DataExchangeService,
    private readonly stream: ServiceStream,
    private readonly idleTimeoutMs: number,
  ) {
    this.from = formatAddress(stream.remoteAddress)
    this.held = service.heldBytes.share()
    stream.on('error', ignoreError)
    stream.on('data', (chunk: Buffer) => this.onData(chunk))
    stream.on('end', () => {
      this.ended = true
      this.maybeFinish()
    })
    stream.once('close', () => {
      this.clearIdle()
      this.held.release()
    })
    this.armIdle()
  }

  /** Bytes this connection's decoder holds, as counted in the service's total. */
  private readonly held: HeldBytesShare

  private onData(chunk: Buffer): void {
    let frames: DxFrame[]
    try {
      frames = this.decoder.push(chunk)
    } catch {
      // Oversized or malformed: framing is lost, drop the connection (as Go does).
      this.service.countDropped()
      this.stream.destroy()
      return
    }
    if (!this.held.set(this.decoder.bufferedBytes)) {
      // All connections together hold too many partial frames: this one goes.
      this.service.countDropped()
      this.stream.destroy()
      return
    }
    this.armIdle()
    if (frames.length === 0) return
    this.queue.push(...frames)
    if (!this.busy) void this.pump()
  }

  private async pump(): Promise<void> {
    this.busy = true
    this.stream.pause()
    while (this.queue.length > 0 && !this.stream.destroyed) {
      const frame = this.queue.shift()!
      const answer = await this.service.deliver(this.from, frame)
      if (this.stream.destroyed || !this.stream.writable) break
      this.stream.write(encodeDxAnswer(answer))
    }
    this.busy = false
    if (!this.stream.destroyed) this.stream.resume()
    this.maybeFinish()
  }

  private maybeFinish(): void {
    if (!this.ended || this.busy || this.queue.length > 0) return
    this.clearIdle()
    if (!this.stream.destroyed && this.stream.writable) this.stream.end()
    // The sender closes its side too; do not keep a silent stream around.
    const reaper = setTimeout(() => this.stream.destroy(), 10_000)
    reaper.unref?.()
    this.stream.once('close', () => clearTimeout(reaper))
  }

  private armIdle(): void {
    this.clearIdle()
    this.idle = setTimeout(() => {
      if (this.busy) return this.armIdle()
      this.stream.destroy()
    }, this.idleTimeoutMs)
    this.idle.unref?.()
  }

  private clearIdle(): void {
    if (this.idle !== null) clearTimeout(this.idle)
    this.idle = null
  }
}

/**
 * Sends one encoded frame to `node`:1001 and resolves with the answer text
 * (`ACK …` or `ERR …`); PT_SERVICE_NO_ANSWER when the stream ends, fails or
 * stays silent for `timeoutMs` without one.
 */
export async function sendDataFrame(opener: StreamOpener, node: number, frame: Uint8Array, timeoutMs = 30_000): Promise<string> {
  const stream = await opener.openStream(node, DATA_EXCHANGE_PORT)
  const addr = formatAddress({ network: 0, node })
  const noAnswer = (why: string): ServiceError =>
    new ServiceError(ServiceErrorCode.NO_ANSWER, `${addr} did not answer on the data exchange port (${DATA_EXCHANGE_PORT}): ${why}`, {
      hint: 'the peer may have the service switched off, or dropped a frame it thought too large',
    })
  try {
    return await new Promise<string>((resolve, reject) => {
      const decoder = new DataExchangeDecoder(64 * 1024)
      // The clock starts once the whole frame is in the send buffer: a 16 MiB file may take a while to get there.
      let timer: NodeJS.Timeout | null = null
      let settled = false
      const done = (fn: () => void): void => {
        settled = true
        if (timer !== null) clearTimeout(timer)
        fn()
      }
      stream.on('data', (chunk: Buffer) => {
        try {
          const frames = decoder.push(chunk)
          if (frames.length > 0) done(() => resolve(Buffer.from(frames[0]!.data).toString('utf8')))
        } catch (err) {
          done(() => reject(noAnswer(`undecodable answer (${(err as Error).message})`)))
        }
      })
      stream.on('error', (err) => done(() => reject(noAnswer(`the stream failed (${err.message})`))))
      stream.on('end', () => done(() => reject(noAnswer('the stream ended'))))
      stream.write(frame, (err) => {
        if (err || settled) return
        timer = setTimeout(() => reject(noAnswer(`nothing within ${timeoutMs} ms of sending`)), timeoutMs)
      })
    })
  } finally {
    stream.removeAllListeners('data')
    stream.on('error', ignoreError)
    stream.resume()
    stream.end()
    const reaper = setTimeout(() => stream.destroy(), 5_000)
    reaper.unref?.()
    stream.once('close', () => clearTimeout(reaper))
  }
}
