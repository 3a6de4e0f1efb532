/**
 * The secure channel on a stream (docs/wire.md §13.6): `secureClient` and
 * `secureServer` swap keys on a connected `ServiceStream` (10 s deadline, as
 * the reference) and give a `SecureStream`, a Duplex of plaintext. Each
 * write becomes one frame (larger ones several of 64 KiB); each frame read
 * is pushed as one chunk. Back-pressure both ways: a full readable side
 * pauses the inner stream, writes complete when the inner stream took them.
 * Any bad frame (secure-core.ts) destroys the channel with its SecureError
 * and resets the inner stream.
 */
import { Duplex } from 'node:stream'
import type { PilotAddress } from '../../protocol/address.js'
import type { ServiceStream } from '../service-stream.js'
import { SecureError, SecureErrorCode } from './errors.js'
import {
  SECURE_HELLO_SIZE,
  SECURE_MAX_PLAINTEXT,
  SecureFrameDecoder,
  SecureHandshake,
  type SecureKdf,
  type SecureRole,
  type SecureSession,
  type SecureSessionOptions,
} from './secure-core.js'

/** The reference's key-swap deadline. */
export const SECURE_HANDSHAKE_TIMEOUT_MS = 10_000

export interface SecureStreamOptions extends SecureSessionOptions {
  /** Deadline of the key swap (default 10 s). */
  handshakeTimeoutMs?: number
  /** A handshake to use instead of a fresh one (tests: fixed keys). */
  handshake?: SecureHandshake
}

export class SecureStream extends Duplex {
  readonly remoteAddress: PilotAddress
  readonly role: SecureRole
  private readonly inner: ServiceStream
  private readonly session: SecureSession
  private readonly decoder = new SecureFrameDecoder()
  private readonly onData = (chunk: Buffer): void => this.receive(chunk)
  /** The inner stream delivered its end (a FIN): a later close is orderly. */
  private innerEnded = false

  constructor(inner: ServiceStream, session: SecureSession, leftover: Buffer) {
    super({ allowHalfOpen: true })
    this.inner = inner
    this.session = session
    this.role = session.role
    this.remoteAddress = inner.remoteAddress
    inner.on('data', this.onData)
    inner.once('end', () => {
      this.innerEnded = true
      if (this.decoder.pending > 0) this.fail(new SecureError(SecureErrorCode.BAD_FRAME, `the stream ended inside a frame (${this.decoder.pending} bytes held)`))
      else this.push(null)
    })
    inner.on('error', (err) => this.destroy(err))
    inner.once('close', () => {
      if (!this.destroyed && !this.innerEnded) this.destroy(new SecureError(SecureErrorCode.NO_ANSWER, 'the stream under the secure channel closed'))
    })
    inner.pause()
    if (leftover.length > 0) this.receive(leftover)
  }

  /** The variant we send in. */
  get kdf(): SecureKdf {
    return this.session.kdf
  }

  /** The peer's variant; null before its first frame. */
  get peerKdf(): SecureKdf | null {
    return this.session.peerKdf
  }

  override _read(): void {
    if (!this.inner.destroyed) this.inner.resume()
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    // An empty write sends nothing: an empty frame would read as a 0-byte Read on a Go peer.
    if (chunk.length === 0) return cb()
    try {
      if (chunk.length <= SECURE_MAX_PLAINTEXT) {
        this.inner.write(this.session.seal(chunk), cb)
        return
      }
      for (let o = 0; o < chunk.length; o += SECURE_MAX_PLAINTEXT) {
        const end = Math.min(chunk.length, o + SECURE_MAX_PLAINTEXT)
        const frame = this.session.seal(chunk.subarray(o, end))
        if (end === chunk.length) this.inner.write(frame, cb)
        else this.inner.write(frame)
      }
    } catch (err) {
      cb(err as Error)
    }
  }

  override _final(cb: (err?: Error | null) => void): void {
    this.inner.end(() => cb())
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    this.inner.off('data', this.onData)
    if (!this.inner.destroyed) this.inner.destroy()
    cb(err)
  }

  private receive(chunk: Buffer): void {
    if (this.destroyed) return
    try {
      for (const body of this.decoder.push(chunk)) {
        const plain = this.session.open(body)
        if (plain.length > 0 && !this.push(plain)) this.inner.pause()
      }
    } catch (err) {
      this.fail(err as Error)
    }
  }

  private fail(err: Error): void {
    this.inner.off('data', this.onData)
    this.destroy(err)
  }
}

/** Dials side: sends our key, reads the server's, returns the channel. */
export async function secureClient(inner: ServiceStream, options: SecureStreamOptions = {}): Promise<SecureStream> {
  return swap(inner, 'client', options)
}

/** Accepting side: reads the client's key, sends ours, returns the channel. */
export async function secureServer(inner: ServiceStream, options: SecureStreamOptions = {}): Promise<SecureStream> {
  return swap(inner, 'server', options)
}

async function swap(inner: ServiceStream, role: SecureRole, options: SecureStreamOptions): Promise<SecureStream> {
  const handshake = options.handshake ?? new SecureHandshake(role)
  if (handshake.role !== role) throw new RangeError(`a ${handshake.role} handshake given to the ${role} side`)
  const timeoutMs = options.handshakeTimeoutMs ?? SECURE_HANDSHAKE_TIMEOUT_MS
  if (role === 'client') inner.write(Buffer.from(handshake.hello))
  let received: Buffer
  try {
    received = await readAtLeast(inner, SECURE_HELLO_SIZE, timeoutMs)
  } catch (err) {
    inner.destroy()
    throw err
  }
  let session: SecureSession
  try {
    session = handshake.complete(received.subarray(0, SECURE_HELLO_SIZE), options)
  } catch (err) {
    inner.destroy()
    throw err
  }
  if (role === 'server') inner.write(Buffer.from(handshake.hello))
  return new SecureStream(inner, session, received.subarray(SECURE_HELLO_SIZE))
}

/** Reads until `n` bytes came (maybe more: the rest is returned too), the stream ends, or the deadline. */
function readAtLeast(inner: ServiceStream, n: number, timeoutMs: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    let got = 0
    const done = (err: Error | null): void => {
      clearTimeout(timer)
      inner.off('data', onData)
      inner.off('end', onEnd)
      inner.off('close', onEnd)
      inner.off('error', onError)
      inner.pause()
      if (err !== null) reject(err)
      else resolve(Buffer.concat(chunks, got))
    }
    const onData = (c: Buffer): void => {
      chunks.push(c)
      got += c.length
      if (got >= n) done(null)
    }
    const onEnd = (): void => done(new SecureError(SecureErrorCode.HANDSHAKE, `the peer closed after ${got} of the ${n} key bytes`))
    const onError = (err: Error): void => done(new SecureError(SecureErrorCode.HANDSHAKE, `the stream failed during the key swap: ${err.message}`, { cause: err }))
    const timer = setTimeout(
      () => done(new SecureError(SecureErrorCode.HANDSHAKE, `no key from the peer within ${timeoutMs} ms (${got} of ${n} bytes)`, { hint: 'is a secure-channel server listening on that port?' })),
      timeoutMs,
    )
    inner.on('data', onData)
    inner.once('end', onEnd)
    inner.once('close', onEnd)
    inner.once('error', onError)
    inner.resume()
  })
}
