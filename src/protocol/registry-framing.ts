/**
 * Registry framing (docs/wire.md §10.1): `length u32 BE || UTF-8 JSON object`, at most
 * 1 MiB of JSON. The same framing serves the daemon's control socket, so the
 * maximum size is a parameter.
 *
 * `RegistryFrameDecoder` is fed TCP chunks split anywhere. It keeps a list of
 * chunks and a running length instead of concatenating per chunk; a message body
 * that sits inside one chunk is parsed from a view, and one that spans chunks is
 * copied once. The length prefix is checked as soon as its 4 bytes are in, so an
 * oversized announcement fails before any of its body is waited for.
 */
import { DecodeError } from '../errors.js'

export const REGISTRY_MAX_MESSAGE = 1_048_576
export const REGISTRY_LENGTH_SIZE = 4

/** A parsed JSON object (never an array, null or a primitive). */
export type JsonObject = { [key: string]: unknown }

/** Serializes `obj` behind its length prefix. Throws too-large above `maxSize` bytes of JSON. */
export function encodeRegistryMessage(obj: JsonObject, maxSize = REGISTRY_MAX_MESSAGE): Buffer {
  if (!isJsonObject(obj)) throw new DecodeError('bad-json', 'a registry message must be a JSON object')
  const json = JSON.stringify(obj)
  const size = Buffer.byteLength(json, 'utf8')
  if (size > maxSize) throw new DecodeError('too-large', `message of ${size} bytes exceeds ${maxSize}`)
  const out = Buffer.allocUnsafe(REGISTRY_LENGTH_SIZE + size)
  out.writeUInt32BE(size, 0)
  out.write(json, REGISTRY_LENGTH_SIZE, 'utf8')
  return out
}

const utf8 = new TextDecoder('utf-8', { fatal: true })

/**
 * Incremental decoder: `push` chunks, then call `next` until it returns null.
 * After a DecodeError the stream is unusable (framing is lost): the decoder keeps
 * throwing the same error and the caller should close the connection.
 *
 * Chunks are kept by reference until consumed: do not reuse a pushed buffer.
 */
export class RegistryFrameDecoder {
  private readonly maxSize: number
  private readonly chunks: Uint8Array[] = []
  /** Index of the first unconsumed chunk in `chunks`. */
  private head = 0
  /** Bytes already consumed from `chunks[head]`. */
  private headOffset = 0
  private buffered = 0
  private failure: DecodeError | null = null

  constructor(maxSize = REGISTRY_MAX_MESSAGE) {
    if (!Number.isInteger(maxSize) || maxSize < 0 || maxSize > 0xffffffff) throw new RangeError(`maxSize ${maxSize} is not a u32`)
    this.maxSize = maxSize
  }

  /** Bytes received and not yet returned as messages. */
  get bufferedBytes(): number {
    return this.buffered
  }

  push(chunk: Uint8Array): void {
    if (this.failure !== null) throw this.failure
    if (chunk.length === 0) return
    this.chunks.push(chunk)
    this.buffered += chunk.length
  }

  /** The next complete message, or null if more bytes are needed. */
  next(): JsonObject | null {
    if (this.failure !== null) throw this.failure
    if (this.buffered < REGISTRY_LENGTH_SIZE) return null
    const size = this.peekLength()
    if (size > this.maxSize) return this.fail(new DecodeError('too-large', `announced message of ${size} bytes exceeds ${this.maxSize}`))
    if (this.buffered < REGISTRY_LENGTH_SIZE + size) return null
    this.skip(REGISTRY_LENGTH_SIZE)
    const body = this.take(size)
    let value: unknown
    try {
      value = JSON.parse(utf8.decode(body))
    } catch {
      return this.fail(new DecodeError('bad-json', `message of ${size} bytes is not valid UTF-8 JSON`))
    }
    if (!isJsonObject(value)) return this.fail(new DecodeError('bad-json', 'message is JSON but not an object'))
    return value
  }

  /** Pushes `chunk` and returns every message it completed. */
  pushAndDrain(chunk: Uint8Array): JsonObject[] {
    this.push(chunk)
    const out: JsonObject[] = []
    for (let m = this.next(); m !== null; m = this.next()) out.push(m)
    return out
  }

  private fail(e: DecodeError): never {
    this.failure = e
    this.chunks.length = 0
    this.head = 0
    this.headOffset = 0
    this.buffered = 0
    throw e
  }

  private peekLength(): number {
    let v = 0
    let i = this.head
    let o = this.headOffset
    for (let n = 0; n < REGISTRY_LENGTH_SIZE; n++) {
      while (o >= this.chunks[i]!.length) {
        i++
        o = 0
      }
      v = v * 256 + this.chunks[i]![o++]!
    }
    return v
  }

  private skip(n: number): void {
    this.take(n)
  }

  /** Removes `n` buffered bytes: a view if they lie in one chunk, else one copy. */
  private take(n: number): Uint8Array {
    if (n === 0) return EMPTY
    this.buffered -= n
    const first = this.chunks[this.head]!
    if (first.length - this.headOffset >= n) {
      const view = first.subarray(this.headOffset, this.headOffset + n)
      this.headOffset += n
      this.dropConsumedHead()
      return view
    }
    const out = new Uint8Array(n)
    let filled = 0
    while (filled < n) {
      const c = this.chunks[this.head]!
      const count = Math.min(c.length - this.headOffset, n - filled)
      out.set(c.subarray(this.headOffset, this.headOffset + count), filled)
      filled += count
      this.headOffset += count
      this.dropConsumedHead()
    }
    return out
  }

  private dropConsumedHead(): void {
    if (this.headOffset < this.chunks[this.head]!.length) return
    this.chunks[this.head] = EMPTY // release the chunk for GC
    this.head++
    this.headOffset = 0
    if (this.head === this.chunks.length) {
      this.chunks.length = 0
      this.head = 0
    } else if (this.head > 64 && this.head * 2 > this.chunks.length) {
      this.chunks.splice(0, this.head) // compact now and then, not per chunk
      this.head = 0
    }
  }
}

const EMPTY = new Uint8Array(0)

function isJsonObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}
