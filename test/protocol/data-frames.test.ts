// Data exchange (§13.3) and event (§13.4) frames: encoders, the incremental
// decoders (split anywhere, limits, sticky failure), a fuzz run and a memory bound.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { DecodeError } from '../../src/errors.js'
import { SeededRandom } from '../../src/random.js'
import {
  DX_MAX_PAYLOAD,
  DataExchangeDecoder,
  DxType,
  dxAckText,
  dxErrText,
  dxTypeName,
  encodeDxAnswer,
  encodeDxFile,
  encodeDxFrame,
} from '../../src/protocol/dataexchange-frames.js'
import { EVENT_MAX_TOPIC, EventDecoder, encodeEvent } from '../../src/protocol/event-frames.js'
import { fuzzDecoder, randomBytes } from '../util/fuzz.js'

function feedSplit<T>(push: (c: Uint8Array) => T[], bytes: Uint8Array, cut: number): T[] {
  return [...push(bytes.subarray(0, cut)), ...push(bytes.subarray(cut))]
}

test('data exchange: a frame is type u32 ‖ length u32 ‖ payload, big-endian', () => {
  const f = encodeDxFrame(DxType.TEXT, Buffer.from('hi'))
  assert.equal(f.toString('hex'), '00000001' + '00000002' + '6869')
  const file = encodeDxFile('a.txt', Buffer.from([9, 8]))
  // length covers name_len u16 + name + data
  assert.equal(file.toString('hex'), '00000004' + '00000009' + '0005' + Buffer.from('a.txt').toString('hex') + '0908')
})

test('data exchange: ACK/ERR texts and type names are the reference\'s', () => {
  assert.equal(dxAckText(DxType.TEXT, 11), 'ACK TEXT 11 bytes')
  assert.equal(dxAckText(DxType.FILE, 12), 'ACK FILE 12 bytes')
  assert.equal(dxErrText(DxType.JSON, 'disk full'), 'ERR JSON save failed: disk full')
  assert.equal(dxTypeName(DxType.BINARY), 'BINARY')
  assert.equal(dxTypeName(7), 'UNKNOWN(7)')
  const answer = new DataExchangeDecoder().push(encodeDxAnswer('ACK TEXT 1 bytes'))
  assert.equal(Buffer.from(answer[0]!.data).toString(), 'ACK TEXT 1 bytes')
})

test('data exchange decoder: several frames, split at every byte, come out whole and in order', () => {
  const bytes = Buffer.concat([
    encodeDxFrame(DxType.TEXT, Buffer.from('hello')),
    encodeDxFile('dir/x.bin', Buffer.from([1, 2, 3])),
    encodeDxFrame(DxType.JSON, Buffer.from('{}')),
    encodeDxFrame(99, Buffer.alloc(0)),
  ])
  for (let cut = 0; cut <= bytes.length; cut++) {
    const d = new DataExchangeDecoder()
    const frames = feedSplit((c) => d.push(c), bytes, cut)
    assert.equal(frames.length, 4)
    assert.equal(Buffer.from(frames[0]!.data).toString(), 'hello')
    assert.equal(frames[1]!.type, DxType.FILE)
    assert.equal(frames[1]!.name, 'dir/x.bin')
    assert.deepEqual([...frames[1]!.data], [1, 2, 3])
    assert.equal(frames[3]!.type, 99)
    assert.equal(d.bufferedBytes, 0)
  }
  // One byte at a time.
  const d = new DataExchangeDecoder()
  let n = 0
  for (const b of bytes) n += d.push(Uint8Array.of(b)).length
  assert.equal(n, 4)
})

test('data exchange decoder: an oversized length fails at once (before the body), and stays failed', () => {
  const d = new DataExchangeDecoder()
  const header = Buffer.alloc(8)
  header.writeUInt32BE(1, 0)
  header.writeUInt32BE(DX_MAX_PAYLOAD + 1, 4)
  assert.throws(() => d.push(header), (e: unknown) => e instanceof DecodeError && e.reason === 'too-large')
  assert.throws(() => d.push(encodeDxFrame(1, Buffer.from('x'))), DecodeError)
  // Exactly the maximum is allowed (announced; the decoder waits for it).
  const ok = new DataExchangeDecoder()
  header.writeUInt32BE(DX_MAX_PAYLOAD, 4)
  assert.deepEqual(ok.push(header), [])
})

test('data exchange decoder: a FILE frame too short for its name header is bad-length', () => {
  const short = Buffer.from('00000004' + '00000001' + '00', 'hex')
  assert.throws(() => new DataExchangeDecoder().push(short), (e: unknown) => e instanceof DecodeError && e.reason === 'bad-length')
  const nameTooLong = Buffer.from('00000004' + '00000003' + '0009' + '41', 'hex')
  assert.throws(() => new DataExchangeDecoder().push(nameTooLong), (e: unknown) => e instanceof DecodeError && e.reason === 'bad-length')
  assert.throws(() => encodeDxFile('x'.repeat(70_000), Buffer.alloc(0)), DecodeError)
  assert.throws(() => encodeDxFrame(1, Buffer.alloc(DX_MAX_PAYLOAD + 1)), DecodeError)
})

test('events: topic_len u16 ‖ topic ‖ payload_len u32 ‖ payload; split anywhere; raw is the bytes received', () => {
  const e = encodeEvent('news', Buffer.from('hi'))
  assert.equal(e.toString('hex'), '0004' + Buffer.from('news').toString('hex') + '00000002' + '6869')
  const bytes = Buffer.concat([encodeEvent('*', Buffer.alloc(0)), e, encodeEvent('ü', Buffer.alloc(1000, 7))])
  for (let cut = 0; cut <= bytes.length; cut += 7) {
    const d = new EventDecoder()
    const events = feedSplit((c) => d.push(c), bytes, cut)
    assert.deepEqual(events.map((x) => x.topic), ['*', 'news', 'ü'])
    assert.equal(Buffer.from(events[1]!.raw).toString('hex'), e.toString('hex'))
    assert.equal(events[2]!.payload.length, 1000)
  }
})

test('events: a topic over 1,024 bytes or a payload over 16 MiB is refused, encoding and decoding', () => {
  assert.throws(() => encodeEvent('t'.repeat(EVENT_MAX_TOPIC + 1), Buffer.alloc(0)), DecodeError)
  assert.ok(encodeEvent('t'.repeat(EVENT_MAX_TOPIC), Buffer.alloc(0)))
  const longTopic = Buffer.alloc(2)
  longTopic.writeUInt16BE(EVENT_MAX_TOPIC + 1)
  const d = new EventDecoder()
  assert.throws(() => d.push(longTopic), (e: unknown) => e instanceof DecodeError && e.reason === 'too-large')
  assert.throws(() => d.push(encodeEvent('a', Buffer.alloc(0))), DecodeError, 'stays failed')
  const big = Buffer.from('0001' + '61' + '01000001', 'hex')
  assert.throws(() => new EventDecoder().push(big), (e: unknown) => e instanceof DecodeError && e.reason === 'too-large')
})

test('fuzz: random and mutated bytes only ever give frames or a DecodeError (both decoders)', () => {
  const dxCorpus = [encodeDxFrame(1, Buffer.from('hello')), encodeDxFile('f.txt', Buffer.from('data')), Buffer.concat([encodeDxFrame(3, Buffer.from('{}')), encodeDxFrame(2, Buffer.alloc(3))])]
  const r1 = fuzzDecoder({
    iterations: 20_000,
    seed: 1001,
    corpus: dxCorpus,
    maxRandomLength: 64,
    decode: (input) => {
      const d = new DataExchangeDecoder(1024)
      const out = d.push(input)
      assert.ok(d.bufferedBytes <= 1024 + 8 + input.length)
      return out
    },
  })
  assert.ok(r1.accepted > 0 && r1.rejected > 0)
  const r2 = fuzzDecoder({
    iterations: 20_000,
    seed: 1002,
    corpus: [encodeEvent('news', Buffer.from('x')), Buffer.concat([encodeEvent('*', Buffer.alloc(0)), encodeEvent('a', Buffer.alloc(5))])],
    maxRandomLength: 64,
    decode: (input) => new EventDecoder(1024).push(input),
  })
  assert.ok(r2.accepted > 0 && r2.rejected > 0)
})

test('fuzz: a long random byte stream in random chunks never holds more than one frame plus a chunk', () => {
  const rng = new SeededRandom(7)
  const dx = new DataExchangeDecoder(4096)
  const ev = new EventDecoder(4096)
  let dxFailed = false
  let evFailed = false
  for (let i = 0; i < 5_000; i++) {
    const chunk = randomBytes(rng, rng.int(200))
    if (!dxFailed) {
      try {
        dx.push(chunk)
        assert.ok(dx.bufferedBytes <= 4096 + 8 + chunk.length)
      } catch (e) {
        assert.ok(e instanceof DecodeError)
        dxFailed = true
      }
    }
    if (!evFailed) {
      try {
        ev.push(chunk)
        assert.ok(ev.bufferedBytes <= 4096 + 6 + EVENT_MAX_TOPIC + chunk.length)
      } catch (e) {
        assert.ok(e instanceof DecodeError)
        evFailed = true
      }
    }
  }
})
