/**
 * Event stream frames, port 1002 (docs/wire.md §13.4, the [G] binary form):
 *
 *     event = topic_len u16 ‖ topic (UTF-8, ≤ 1024 bytes) ‖ payload_len u32 ‖ payload (≤ 16 MiB)
 *
 * A connection's first event is its subscription (`*` = every topic), every
 * later one a publication. `EventDecoder` is fed chunks split anywhere; a
 * topic above 1,024 bytes or a payload above the maximum is a `DecodeError`
 * (too-large) and the decoder stays failed (drop the connection). It holds at
 * most one event plus the chunk being pushed. `raw` is the event's bytes as
 * received, so a broker forwards them without re-encoding.
 */
import { DecodeError } from '../errors.js'
import { ByteChunks } from './byte-chunks.js'

export const EVENT_MAX_TOPIC = 1024
export const EVENT_MAX_PAYLOAD = 16 * 1024 * 1024
/** The subscription topic that matches every topic. */
export const EVENT_WILDCARD = '*'

export interface EventFrame {
  topic: string
  payload: Uint8Array
  /** The whole event as received (header included). */
  raw: Uint8Array
}

/** Encodes one event; throws too-large for a topic above 1,024 bytes or a payload above 16 MiB. */
export function encodeEvent(topic: string, payload: Uint8Array): Buffer {
  const t = Buffer.from(topic, 'utf8')
  if (t.length > EVENT_MAX_TOPIC) throw new DecodeError('too-large', `topic of ${t.length} bytes exceeds ${EVENT_MAX_TOPIC}`)
  if (payload.length > EVENT_MAX_PAYLOAD) throw new DecodeError('too-large', `payload of ${payload.length} bytes exceeds ${EVENT_MAX_PAYLOAD}`)
  const out = Buffer.allocUnsafe(2 + t.length + 4 + payload.length)
  out.writeUInt16BE(t.length, 0)
  out.set(t, 2)
  out.writeUInt32BE(payload.length, 2 + t.length)
  out.set(payload, 6 + t.length)
  return out
}

const lossyUtf8 = new TextDecoder('utf-8')

export class EventDecoder {
  private readonly buf = new ByteChunks()
  private readonly maxPayload: number
  private failure: DecodeError | null = null

  constructor(maxPayload = EVENT_MAX_PAYLOAD) {
    this.maxPayload = maxPayload
  }

  get bufferedBytes(): number {
    return this.buf.length
  }

  /** Adds `chunk` (kept by reference) and returns every event now complete. Throws DecodeError. */
  push(chunk: Uint8Array): EventFrame[] {
    if (this.failure !== null) throw this.failure
    this.buf.push(chunk)
    const out: EventFrame[] = []
    for (;;) {
      const e = this.next()
      if (e === null) return out
      out.push(e)
    }
  }

  private next(): EventFrame | null {
    const buf = this.buf
    if (buf.length < 2) return null
    const topicLen = buf.peekU16(0)
    if (topicLen > EVENT_MAX_TOPIC) return this.fail(new DecodeError('too-large', `topic of ${topicLen} bytes exceeds ${EVENT_MAX_TOPIC}`))
    if (buf.length < 6 + topicLen) return null
    const payloadLen = buf.peekU32(2 + topicLen)
    if (payloadLen > this.maxPayload) return this.fail(new DecodeError('too-large', `event payload of ${payloadLen} bytes exceeds ${this.maxPayload}`))
    const size = 6 + topicLen + payloadLen
    if (buf.length < size) return null
    const raw = buf.take(size)
    return { topic: lossyUtf8.decode(raw.subarray(2, 2 + topicLen)), payload: raw.subarray(6 + topicLen), raw }
  }

  private fail(err: DecodeError): null {
    this.failure = err
    this.buf.clear()
    throw err
  }
}
