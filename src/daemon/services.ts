/**
 * Built-in stream services (docs/wire.md §13.1, §11.1):
 *
 *  - echo, port 7: every byte received is written back (pipe with
 *    back-pressure); the remote FIN ends our side too. `pilot-tun ping` and
 *    Go's ping/bench use it.
 *  - trust handshake, port 444: read the first JSON object (Go sends exactly
 *    one, in one segment, then closes 500 ms later) within 10 s, hand it to
 *    the trust service, close our side. `sendHandshakeMessage` is the sending
 *    side, with Go's timing.
 *
 * Port 444 is open to every node, so it is bounded (limits.ts): a small
 * receive buffer, a stream that delivers more than a message's worth is
 * reset, and a node (and all nodes together) may hold only a few streams at
 * once; further SYNs are refused with RST. Each refusal is counted.
 */
import { DEFAULT_MSS, type StreamConfig, type StreamConnection } from '../session/index.js'
import type { Logger } from '../logger.js'
import { PilotStream } from './pilot-stream.js'
import type { SessionDriver } from './session-driver.js'
import { TRUST_PORT } from './trust-service.js'
import { DEFAULT_HANDSHAKE_LIMITS, type HandshakeLimits } from './limits.js'

export const ECHO_PORT = 7

function ignoreError(): void {}

export function startEchoService(driver: SessionDriver): void {
  driver.listen(ECHO_PORT, (conn: StreamConnection) => {
    const stream = new PilotStream(driver, conn)
    stream.on('error', ignoreError) // the peer's reset ends the echo; nothing to report
    stream.pipe(stream)
  })
}

export interface HandshakeServiceOptions {
  /** Receives the message bytes and the stream's (tunnel-authenticated) source node. */
  onMessage: (remoteNode: number, bytes: Buffer) => void
  readTimeoutMs: number
  logger: Logger
  /** Overrides of the port-444 bounds (tests). */
  limits?: Partial<HandshakeLimits>
}

export interface HandshakeServiceStats {
  accepted: number
  /** SYNs refused because their node already had `maxStreamsPerNode` streams open. */
  refusedPerNode: number
  /** SYNs refused because `maxStreams` streams were open. */
  refusedTotal: number
  /** Streams reset for delivering more than `maxStreamBytes`. */
  oversize: number
  /** Streams open now. */
  open: number
}

/** Accepts streams on port 444 (from anyone: the admission policy lets this port through), within the limits. */
export class HandshakeService {
  private readonly limits: HandshakeLimits
  /** Open streams per node; a node without any has no entry. */
  private readonly perNode = new Map<number, number>()
  private readonly st: HandshakeServiceStats = { accepted: 0, refusedPerNode: 0, refusedTotal: 0, oversize: 0, open: 0 }

  constructor(
    private readonly driver: SessionDriver,
    private readonly options: HandshakeServiceOptions,
  ) {
    this.limits = { ...DEFAULT_HANDSHAKE_LIMITS, ...options.limits }
    driver.listen(
      TRUST_PORT,
      (conn) => this.accept(conn),
      { receiveBufferSize: this.limits.receiveBufferSize },
      (node) => this.admits(node),
    )
  }

  stats(): HandshakeServiceStats {
    return { ...this.st }
  }

  private admits(node: number): boolean {
    if (this.st.open >= this.limits.maxStreams) {
      this.st.refusedTotal++
      return false
    }
    if ((this.perNode.get(node) ?? 0) >= this.limits.maxStreamsPerNode) {
      this.st.refusedPerNode++
      return false
    }
    return true
  }

  private accept(conn: StreamConnection): void {
    const node = conn.remoteAddress.node
    this.st.accepted++
    this.st.open++
    this.perNode.set(node, (this.perNode.get(node) ?? 0) + 1)
    const stream = new PilotStream(this.driver, conn)
    stream.once('close', () => this.release(node))
    new HandshakeReader(stream, this.options, this.limits.maxStreamBytes, () => this.st.oversize++)
  }

  private release(node: number): void {
    this.st.open--
    const n = (this.perNode.get(node) ?? 1) - 1
    if (n <= 0) this.perNode.delete(node)
    else this.perNode.set(node, n)
  }
}

/** Starts the port-444 service on `driver`. */
export function startHandshakeService(driver: SessionDriver, options: HandshakeServiceOptions): HandshakeService {
  return new HandshakeService(driver, options)
}

/** Collects one JSON object from a port-444 stream (control plane: a closure or two is fine here). */
class HandshakeReader {
  private readonly chunks: Buffer[] = []
  private size = 0
  private done = false
  private readonly timer: NodeJS.Timeout

  constructor(
    private readonly stream: PilotStream,
    private readonly options: HandshakeServiceOptions,
    private readonly maxBytes: number,
    private readonly onOversize: () => void,
  ) {
    this.timer = setTimeout(() => this.finish(false), options.readTimeoutMs)
    stream.on('error', ignoreError)
    stream.on('data', (chunk: Buffer) => this.onData(chunk))
    stream.on('end', () => this.finish(true))
    stream.on('close', () => this.finish(false))
  }

  private onData(chunk: Buffer): void {
    this.size += chunk.length
    if (this.size > this.maxBytes) {
      // More than any trust message (also counting what follows one): cut the sender off (RST).
      if (!this.done) this.onOversize()
      this.done = true
      clearTimeout(this.timer)
      this.stream.destroy()
      return
    }
    if (this.done) return // discarded: anything after the object
    this.chunks.push(chunk)
    // One object in one segment: try as soon as the bytes look complete.
    if (chunk[chunk.length - 1] === 0x7d /* } */ && isCompleteJson(this.bytes())) this.finish(true)
  }

  private bytes(): Buffer {
    return this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks)
  }

  private finish(deliver: boolean): void {
    if (this.done) return
    this.done = true
    clearTimeout(this.timer)
    const stream = this.stream
    if (deliver && this.size > 0) {
      try {
        this.options.onMessage(stream.remoteAddress.node, this.bytes())
      } catch (err) {
        this.options.logger.error('handshake handler threw', { error: String(err) })
      }
    }
    if (!stream.destroyed) {
      stream.resume() // discard anything after the object
      stream.end()
    }
    // The sender closes within ~500 ms; do not keep a silent stream around.
    const reaper = setTimeout(() => stream.destroy(), 5_000)
    stream.once('close', () => clearTimeout(reaper))
  }
}

export interface HandshakeSendTiming {
  /** Connect timeout before the registry relay is relied on. */
  dialTimeoutMs: number
  /** Go closes the handshake stream 500 ms after its write. */
  closeDelayMs: number
}

/** Port 444: one message on a fresh stream, closed `closeDelayMs` later; rejects when the stream cannot be opened. */
export async function sendHandshakeMessage(
  streams: { openStream(node: number, port: number, config?: Partial<StreamConfig>): Promise<PilotStream> },
  node: number,
  message: Buffer,
  timing: HandshakeSendTiming,
): Promise<void> {
  // The message must leave as one segment (Go reads only the first): raise the MSS for big ones.
  const mss = Math.max(DEFAULT_MSS, message.length)
  const stream = await streams.openStream(node, TRUST_PORT, { connectTimeout: timing.dialTimeoutMs, mss, noDelay: true })
  stream.on('error', ignoreError)
  stream.write(message)
  const closer = setTimeout(() => stream.end(), timing.closeDelayMs)
  stream.once('close', () => clearTimeout(closer))
  // Not waiting for the peer's close: the peer answers on its own connection.
  setTimeout(() => {
    if (!stream.destroyed) stream.destroy()
  }, timing.closeDelayMs + 5_000).unref()
}

function isCompleteJson(bytes: Buffer): boolean {
  try {
    JSON.parse(bytes.toString('utf8'))
    return true
  } catch {
    return false
  }
}
