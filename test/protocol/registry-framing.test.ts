import { test } from 'node:test'
import assert from 'node:assert/strict'
import {
  encodeRegistryMessage,
  RegistryFrameDecoder,
  REGISTRY_MAX_MESSAGE,
  type JsonObject,
} from '../../src/protocol/registry-framing.js'
import { DecodeError } from '../../src/errors.js'
import { SeededRandom } from '../../src/random.js'
import { fuzzDecoder } from '../util/fuzz.js'

const isReason = (reason: string) => (e: unknown) => e instanceof DecodeError && e.reason === reason
const LOOKUP_HEX = '0000001d7b226e6f64655f6964223a312c2274797065223a226c6f6f6b7570227d' // §16.7 / §10.1

function drainAll(d: RegistryFrameDecoder): JsonObject[] {
  const out: JsonObject[] = []
  for (let m = d.next(); m !== null; m = d.next()) out.push(m)
  return out
}

test('§16.7 lookup request bytes', () => {
  assert.equal(encodeRegistryMessage({ node_id: 1, type: 'lookup' }).toString('hex'), LOOKUP_HEX)
  const d = new RegistryFrameDecoder()
  d.push(Buffer.from(LOOKUP_HEX, 'hex'))
  assert.deepEqual(drainAll(d), [{ node_id: 1, type: 'lookup' }])
  assert.equal(d.bufferedBytes, 0)
})

test('byte-at-a-time and prefix/body split as Go writes them', () => {
  const bytes = Buffer.from(LOOKUP_HEX, 'hex')
  const d = new RegistryFrameDecoder()
  for (let i = 0; i < bytes.length - 1; i++) {
    d.push(bytes.subarray(i, i + 1))
    assert.equal(d.next(), null)
  }
  d.push(bytes.subarray(bytes.length - 1))
  assert.deepEqual(d.next(), { node_id: 1, type: 'lookup' })
  assert.equal(d.next(), null)
  assert.deepEqual(d.pushAndDrain(bytes.subarray(0, 4)), [])
  assert.deepEqual(d.pushAndDrain(bytes.subarray(4)), [{ node_id: 1, type: 'lookup' }])
})

test('oversize length is refused as soon as the prefix is in, before any body', () => {
  const d = new RegistryFrameDecoder()
  d.push(Buffer.from([0x00, 0x10, 0x00]))
  assert.equal(d.next(), null)
  d.push(Buffer.from([0x01])) // 1,048,577
  assert.throws(() => d.next(), isReason('too-large'))
  assert.throws(() => d.push(Buffer.from('{}')), isReason('too-large'), 'the stream stays failed')
  assert.throws(() => d.next(), isReason('too-large'))
  // Exactly the maximum is fine as far as framing goes.
  const ok = new RegistryFrameDecoder()
  ok.push(Buffer.from([0x00, 0x10, 0x00, 0x00]))
  assert.equal(ok.next(), null)
})

test('maximum size is a parameter (control socket)', () => {
  const d = new RegistryFrameDecoder(16)
  assert.throws(() => d.pushAndDrain(encodeRegistryMessage({ type: 'a-longer-message' })), isReason('too-large'))
  assert.throws(() => encodeRegistryMessage({ type: 'a-longer-message' }, 16), isReason('too-large'))
  const big = { type: 'x', pad: 'y'.repeat(REGISTRY_MAX_MESSAGE) }
  assert.throws(() => encodeRegistryMessage(big), isReason('too-large'))
})

test('invalid JSON, invalid UTF-8 and non-objects are bad-json', () => {
  const frame = (body: Uint8Array) => {
    const out = Buffer.alloc(4 + body.length)
    out.writeUInt32BE(body.length)
    out.set(body, 4)
    return out
  }
  for (const body of ['', '{', '[1,2]', 'null', '42', '"str"', '{"a":1}x', '\u00ff']) {
    const d = new RegistryFrameDecoder()
    d.push(frame(Buffer.from(body, 'latin1')))
    assert.throws(() => d.next(), isReason('bad-json'), JSON.stringify(body))
  }
  const d = new RegistryFrameDecoder()
  d.push(frame(Buffer.from([0x7b, 0x22, 0xc3, 0x28, 0x22, 0x3a, 0x31, 0x7d]))) // {"\xc3(":1}
  assert.throws(() => d.next(), isReason('bad-json'))
  assert.throws(() => encodeRegistryMessage([] as unknown as JsonObject), isReason('bad-json'))
})

test('UTF-8 text survives splits inside multi-byte characters', () => {
  const msg = { hostname: 'añ€😀', type: 'x' }
  const bytes = encodeRegistryMessage(msg)
  for (let cut = 1; cut < bytes.length; cut++) {
    const d = new RegistryFrameDecoder()
    assert.deepEqual([...d.pushAndDrain(bytes.subarray(0, cut)), ...d.pushAndDrain(bytes.subarray(cut))], [msg])
  }
})

function randomJson(rnd: SeededRandom, depth = 0): unknown {
  switch (rnd.int(depth > 2 ? 4 : 6)) {
    case 0:
      return rnd.u32()
    case 1:
      return rnd.int(2) === 0
    case 2:
      return Buffer.from(Array.from({ length: rnd.int(40) }, () => rnd.int(256))).toString('base64')
    case 3:
      return String.fromCodePoint(...Array.from({ length: rnd.int(8) }, () => 32 + rnd.int(0x2000)))
    case 4:
      return Array.from({ length: rnd.int(4) }, () => randomJson(rnd, depth + 1))
    default:
      return randomObject(rnd, depth + 1)
  }
}

function randomObject(rnd: SeededRandom, depth = 0): JsonObject {
  const o: JsonObject = { type: `t${rnd.int(100)}` }
  for (let i = rnd.int(6); i > 0; i--) o[`k${rnd.int(1000)}`] = randomJson(rnd, depth)
  return o
}

test('random messages in random splits: encode -> decode -> encode (2,000 seeded messages)', () => {
  const rnd = new SeededRandom(77)
  const messages = Array.from({ length: 2000 }, () => randomObject(rnd))
  const encoded = messages.map((m) => encodeRegistryMessage(m))
  const stream = Buffer.concat(encoded)
  const d = new RegistryFrameDecoder()
  const got: JsonObject[] = []
  for (let at = 0; at < stream.length; ) {
    const n = rnd.int(4) === 0 ? 1 + rnd.int(3) : 1 + rnd.int(400)
    got.push(...d.pushAndDrain(stream.subarray(at, at + n)))
    at += n
  }
  assert.equal(d.bufferedBytes, 0)
  assert.deepEqual(got, messages)
  for (let i = 0; i < got.length; i++) assert.ok(encodeRegistryMessage(got[i]!).equals(encoded[i]!))
})

test('fuzz: the decoder gives objects or a DecodeError (100k inputs, random splits)', () => {
  const rnd = new SeededRandom(21)
  const corpus = [Buffer.from(LOOKUP_HEX, 'hex'), ...Array.from({ length: 20 }, () => encodeRegistryMessage(randomObject(rnd)))]
  const report = fuzzDecoder({
    iterations: 100_000,
    seed: 22,
    corpus,
    maxRandomLength: 64,
    decode: (b) => {
      const d = new RegistryFrameDecoder(4096)
      const out: JsonObject[] = []
      for (let at = 0; at < b.length; at += 7) out.push(...d.pushAndDrain(b.subarray(at, at + 7)))
      return out
    },
    onDecoded: (messages) => {
      for (const m of messages) assert.ok(typeof m === 'object' && m !== null && !Array.isArray(m))
    },
  })
  assert.ok(report.accepted > 0 && report.rejected > 0)
})
