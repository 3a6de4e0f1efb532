/**
 * Data exchange frames, port 1001 (docs/wire.md §13.3):
 *
 *     frame = type u32 ‖ length u32 ‖ payload (length bytes, ≤ 16 MiB)
 *     FILE payload = name_len u16 ‖ name (UTF-8) ‖ file bytes
 *
 * Types TEXT 1, BINARY 2, JSON 3, FILE 4; others pass through as-is. The
 * server answers each frame with a TEXT frame `ACK <TYPE> <n> bytes` or
 * `ERR <TYPE> save failed: <reason>` (n = payload bytes without the FILE name
 * header; TYPE = TEXT, BINARY, JSON, FILE or `UNKNOWN(<value>)`).
 *
 * `DataExchangeDecoder` is fed chunks split anywhere and returns whole frames;
 * an announced length above the maximum, or a FILE payload too short for its
 * name header, is a `DecodeError` (too-large / bad-length) and the decoder
 * stays failed: the connection is to be dropped. It holds at most one frame
 * (≤ 16 MiB + 8) plus the chunk being pushed.
 */
import { DecodeError } from '../errors.js'
import { ByteChunks } from './byte-chunks.js'

export const DX_HEADER_SIZE = 8
/** Largest payload of one frame (Go: 1 << 24). */
export const DX_MAX_PAYLOAD = 16 * 1024 * 1024
/** Largest FILE name (its length is a u16). */
export const DX_MAX_NAME = 0xffff

export const DxType = {
  TEXT: 1,
  BINARY: 2,
  JSON: 3,
  FILE: 4,
} as const

export type DxTypeName = 'TEXT' | 'BINARY' | 'JSON' | 'FILE'

/** One decoded frame. For FILE, `data` is the file bytes and `name` the name as sent. */
export interface DxFrame {
  type: number
  data: Uint8Array
  name?: string
}

/** TEXT, BINARY, JSON, FILE, or `UNKNOWN(<value>)`: the TYPE word of ACK and ERR answers. */
export function dxTypeName(type: number): string {
  switch (type) {
    case DxType.TEXT:
      return 'TEXT'
    case DxType.BINARY:
      return 'BINARY'
    case DxType.JSON:
      return 'JSON'
    case DxType.FILE:
      return 'FILE'
    default:
      return `UNKNOWN(${type})`
  }
}

/** `type ‖ length ‖ payload`; throws too-large above the maximum, bad-value for a type outside u32. */
export function encodeDxFrame(type: number, payload: Uint8Array): Buffer {
  if (!Number.isInteger(type) || type < 0 || type > 0xffffffff) throw new DecodeError('bad-value', `frame type ${type} is not a u32`)
  if (payload.length > DX_MAX_PAYLOAD) throw new DecodeError('too-large', `payload of ${payload.length} bytes exceeds ${DX_MAX_PAYLOAD}`)
  const out = Buffer.allocUnsafe(DX_HEADER_SIZE + payload.length)
  out.writeUInt32BE(type, 0)
  out.writeUInt32BE(payload.length, 4)
  out.set(payload, DX_HEADER_SIZE)
  return out
}

/** A FILE frame: the name (at most 65,535 UTF-8 bytes) in front of the file bytes. */
export function encodeDxFile(name: string, data: Uint8Array): Buffer {
  const nameBytes = Buffer.from(name, 'utf8')
  if (nameBytes.length > DX_MAX_NAME) throw new DecodeError('too-large', `file name of ${nameBytes.length} bytes exceeds ${DX_MAX_NAME}`)
  const size = 2 + nameBytes.length + data.length
  if (size > DX_MAX_PAYLOAD) throw new DecodeError('too-large', `file frame of ${size} bytes exceeds ${DX_MAX_PAYLOAD}`)
  const out = Buffer.allocUnsafe(DX_HEADER_SIZE + size)
  out.writeUInt32BE(DxType.FILE, 0)
  out.writeUInt32BE(size, 4)
  out.writeUInt16BE(nameBytes.length, 8)
  out.set(nameBytes, 10)
  out.set(data, 10 + nameBytes.length)
  return out
}

/** The server's answer to one frame (a TEXT frame). */
export function encodeDxAnswer(text: string): Buffer {
  return encodeDxFrame(DxType.TEXT, Buffer.from(text, 'utf8'))
}

/** `ACK <TYPE> <n> bytes`. */
export function dxAckText(type: number, n: number): string {
  return `ACK ${dxTypeName(type)} ${n} bytes`
}

/** `ERR <TYPE> save failed: <reason>`. */
export function dxErrText(type: number, reason: string): string {
  return `ERR ${dxTypeName(type)} save failed: ${reason}`
}

const lossyUtf8 = new TextDecoder('utf-8')

export class DataExchangeDecoder {
  private readonly buf = new ByteChunks()
  private readonly maxPayload: number
  private failure: DecodeError | null = null

  constructor(maxPayload = DX_MAX_PAYLOAD) {
    this.maxPayload = maxPayload
  }

  /** Bytes held that are not yet a whole frame. */
  get bufferedBytes(): number {
    return this.buf.length
  }

  /** Adds `chunk` (kept by reference) and returns every frame now complete. Throws DecodeError. */
  push(chunk: Uint8Array): DxFrame[] {
    if (this.failure !== null) throw this.failure
    this.buf.push(chunk)
    const out: DxFrame[] = []
    for (;;) {
      const f = this.next()
      if (f === null) return out
      out.push(f)
    }
  }

  private next(): DxFrame | null {
    const buf = this.buf
    if (buf.length < DX_HEADER_SIZE) return null
    const type = buf.peekU32(0)
    const length = buf.peekU32(4)
    if (length > this.maxPayload) return this.fail(new DecodeError('too-large', `frame of ${length} bytes exceeds ${this.maxPayload}`))
    if (buf.length < DX_HEADER_SIZE + length) return null
    buf.take(DX_HEADER_SIZE)
    const payload = buf.take(length)
    if (type !== DxType.FILE) return { type, data: payload }
    if (length < 2) return this.fail(new DecodeError('bad-length', `FILE frame of ${length} bytes has no name header`))
    const nameLen = (payload[0]! << 8) | payload[1]!
    if (2 + nameLen > length) return this.fail(new DecodeError('bad-length', `FILE name of ${nameLen} bytes does not fit a ${length}-byte frame`))
    return { type, name: lossyUtf8.decode(payload.subarray(2, 2 + nameLen)), data: payload.subarray(2 + nameLen) }
  }

  private fail(err: DecodeError): null {
    this.failure = err
    this.buf.clear()
    throw err
  }
}
