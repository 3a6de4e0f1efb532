/**
 * `PilotStream`: a Node `Duplex` over one `StreamConnection`, with back-pressure
 * both ways. The echo and trust services use it, and so will the TUN TCP bridge.
 *
 *   write side  `_write` hands the chunk to `connection.write`; if the send
 *               buffer is full the rest waits (one pending chunk, no copy) until
 *               the connection reports Writable, and only then is the callback
 *               called. `end()` → `finish()` (FIN after all data is acked) → 'finish'.
 *   read side   `_read` pulls from the connection while `push` wants more; when
 *               nothing is buffered it waits for Readable. Remote FIN → push(null).
 *   errors      the connection's typed `SessionError` (PT_SESSION_RESET,
 *               PT_SESSION_REFUSED, …) is the stream's error. `destroy()` before a
 *               clean end sends RST; the automatic destroy after 'end' and
 *               'finish' does not (the FIN and its data are still in flight).
 *   events      'connect' once the handshake completes (dialled streams).
 *
 * Hot path: no closures per chunk (the pending write is three fields), one
 * Buffer per read chunk (push takes ownership), events arrive as small ints.
 * Readable is answered once per event-loop turn (setImmediate), not once per
 * segment: the segments of one turn reach the consumer as one chunk, so a
 * local socket behind it gets one write, not one per 1,402 bytes.
 */
import { Duplex } from 'node:stream'
import { StreamEvent, StreamState, SessionError, type StreamConnection } from '../session/index.js'
import type { PilotAddress } from '../protocol/address.js'
import type { SessionDriver, StreamHandle } from './session-driver.js'

/** Largest chunk handed to `push` at once. */
const MAX_READ_CHUNK = 64 * 1024
const HIGH_WATER_MARK = 256 * 1024

type WriteCallback = (error?: Error | null) => void

export class PilotStream extends Duplex implements StreamHandle {
  readonly connection: StreamConnection
  /** Driver bookkeeping. */
  dirty = false
  private readonly driver: SessionDriver
  private pendingChunk: Uint8Array | null = null
  private pendingOffset = 0
  private pendingCallback: WriteCallback | null = null
  private wantRead = false
  private pullScheduled = false
  private readonly pullLater = (): void => {
    this.pullScheduled = false
    if (this.wantRead && !this.destroyed) this.pull()
  }
  private isConnected: boolean
  /** Set by `abandon`: end locally without telling the peer. */
  private silent = false

  constructor(driver: SessionDriver, connection: StreamConnection) {
    super({ allowHalfOpen: true, readableHighWaterMark: HIGH_WATER_MARK, writableHighWaterMark: HIGH_WATER_MARK, decodeStrings: true })
    this.driver = driver
    this.connection = connection
    this.isConnected = connection.state !== StreamState.SynSent
    driver.attach(this)
  }

  // ───────────────────────── getters ─────────────────────────

  get remoteAddress(): PilotAddress {
    return this.connection.remoteAddress
  }

  get remotePort(): number {
    return this.connection.remotePort
  }

  get localPort(): number {
    return this.connection.localPort
  }

  /** True once the three-way handshake completed. */
  get connected(): boolean {
    return this.isConnected
  }

  // ───────────────────────── Duplex implementation ─────────────────────────

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: WriteCallback): void {
    const conn = this.connection
    const n = conn.write(this.driver.now(), chunk)
    if (n === chunk.length) {
      this.driver.touch(this)
      callback()
      return
    }
    if (conn.isClosed || (n === 0 && !this.canStillWrite())) {
      callback(this.closeError())
      return
    }
    this.pendingChunk = chunk
    this.pendingOffset = n
    this.pendingCallback = callback
    if (n > 0) this.driver.touch(this)
  }

  override _final(callback: WriteCallback): void {
    const conn = this.connection
    if (conn.isClosed && conn.error !== null) {
      callback(conn.error)
      return
    }
    conn.finish(this.driver.now())
    this.driver.touch(this)
    callback()
  }

  override _read(): void {
    this.wantRead = true
    this.pull()
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    const conn = this.connection
    if (!conn.isClosed && !this.silent) {
      // The automatic destroy after 'end' + 'finish' must not cut off our FIN and the data before it.
      const graceful = error === null && this.writableFinished && conn.readEnded
      if (!graceful) {
        conn.reset(this.driver.now())
        this.driver.touch(this)
      }
    }
    const pending = this.pendingCallback
    if (pending !== null) {
      this.pendingCallback = null
      this.pendingChunk = null
      pending(error ?? this.closeError())
    }
    callback(error)
  }

  /**
   * Closes the stream locally and sends nothing (daemon shutdown after our
   * FIN went out: an RST now would turn the peer's clean end into an error).
   * Users see 'close' without an error.
   */
  abandon(): void {
    this.silent = true
    this.destroy()
  }

  // ───────────────────────── driver events ─────────────────────────

  onStreamEvent(event: StreamEvent): void {
    switch (event) {
      case StreamEvent.Connected:
        this.isConnected = true
        this.emit('connect')
        break
      case StreamEvent.Readable:
      case StreamEvent.Finished:
        if (this.wantRead && !this.pullScheduled) {
          this.pullScheduled = true
          setImmediate(this.pullLater)
        }
        break
      case StreamEvent.Writable:
        this.resumeWrite()
        break
      case StreamEvent.Closed:
        this.onClosed()
        break
      default:
        break // SynRetransmitted: the tunnel handles path changes itself
    }
  }

  // ───────────────────────── internals ─────────────────────────

  private pull(): void {
    const conn = this.connection
    while (this.wantRead) {
      const avail = conn.readableLength
      if (avail === 0) {
        if (!conn.readEnded) return // wait for Readable
        this.wantRead = false
        if (conn.error !== null) this.destroy(conn.error)
        else this.push(null)
        return
      }
      const buf = Buffer.allocUnsafe(avail < MAX_READ_CHUNK ? avail : MAX_READ_CHUNK)
      const n = conn.read(buf)
      if (n <= 0) return
      this.driver.touch(this) // reading may reopen the window (an ACK to send)
      this.wantRead = this.push(n === buf.length ? buf : buf.subarray(0, n))
    }
  }

  private resumeWrite(): void {
    const chunk = this.pendingChunk
    if (chunk === null) return
    const conn = this.connection
    const n = conn.write(this.driver.now(), this.pendingOffset === 0 ? chunk : chunk.subarray(this.pendingOffset))
    this.pendingOffset += n
    if (n > 0) this.driver.touch(this)
    if (this.pendingOffset < chunk.length) return
    const callback = this.pendingCallback!
    this.pendingChunk = null
    this.pendingCallback = null
    this.pendingOffset = 0
    callback()
  }

  private onClosed(): void {
    const conn = this.connection
    const error = conn.error
    const pending = this.pendingCallback
    if (pending !== null) {
      this.pendingCallback = null
      this.pendingChunk = null
      pending(error ?? this.closeError())
    }
    if (error !== null) {
      // A local reset (our own destroy) needs no second error.
      if (!this.destroyed) this.destroy(error)
      return
    }
    // Orderly close: whatever is still buffered can be read, then the end.
    if (this.wantRead) this.pull()
  }

  private canStillWrite(): boolean {
    const s = this.connection.state
    return s === StreamState.SynSent || s === StreamState.SynReceived || s === StreamState.Established || s === StreamState.CloseWait
  }

  private closeError(): Error {
    return this.connection.error ?? new SessionError('closing', 'the stream is closed for writing', false)
  }
}
