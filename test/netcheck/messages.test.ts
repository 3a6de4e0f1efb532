// The netcheck extension messages of the beacon protocol (docs/wire.md §9.8).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { DecodeError } from '../../src/errors.js'
import { decodeBeaconMessage } from '../../src/protocol/beacon-messages.js'
import {
  NetcheckType,
  PROBE_REQUEST_MIN_SIZE,
  decodeNetcheckMessage,
  encodeNetcheckMessage,
  isNetcheckType,
  type NetcheckMessage,
} from '../../src/protocol/netcheck-messages.js'
import { fuzzDecoder } from '../util/fuzz.js'

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex')

test('ProbeRequest: type, txid and zero padding to 128 bytes', () => {
  const b = encodeNetcheckMessage({ type: NetcheckType.PROBE_REQUEST, txid: 0x01020304 })
  assert.equal(b.length, PROBE_REQUEST_MIN_SIZE)
  assert.deepEqual(b.subarray(0, 5), hex('08 01020304'))
  assert.ok(b.subarray(5).every((x) => x === 0))
  assert.deepEqual(decodeNetcheckMessage(b), { type: 0x08, txid: 0x01020304 })
})

test('a ProbeRequest shorter than 128 bytes is refused (anti-amplification)', () => {
  assert.throws(() => decodeNetcheckMessage(hex('08 01020304')), (e: unknown) => e instanceof DecodeError && e.reason === 'short-buffer')
  assert.throws(() => decodeNetcheckMessage(Buffer.alloc(127, 8)), DecodeError)
  assert.equal(decodeNetcheckMessage(Buffer.concat([hex('08 00000009'), Buffer.alloc(200)])).type, 0x08) // longer is fine
})

test('ProbeInfo: the §9.8 example bytes, with an "own address" probe (ip_len 0) and one on another address', () => {
  const msg: NetcheckMessage = {
    type: NetcheckType.PROBE_INFO,
    txid: 7,
    observed: { host: '203.0.113.5', port: 4000 },
    probes: [{ host: null, port: 9002 }, { host: '198.51.100.9', port: 9003 }],
  }
  const b = encodeNetcheckMessage(msg)
  assert.deepEqual(b, hex('09 00000007 04 cb007105 0fa0 02 00 232a 04 c6336409 232b'))
  assert.deepEqual(decodeNetcheckMessage(b), msg)
})

test('ProbeReply: txid, index and the endpoint it was sent to; IPv6 travels as 16 bytes', () => {
  const msg: NetcheckMessage = { type: NetcheckType.PROBE_REPLY, txid: 0xffffffff, index: 1, observed: { host: '2001:db8::5', port: 4000 } }
  const b = encodeNetcheckMessage(msg)
  assert.deepEqual(b, hex('0a ffffffff 01 10 20010db8000000000000000000000005 0fa0'))
  assert.deepEqual(decodeNetcheckMessage(b), msg)
})

test('a 16-byte IPv4-mapped endpoint decodes to dotted text and the next field is still found', () => {
  const b = hex('09 00000001 10 00000000000000000000ffffcb007105 0fa0 01 00 232a')
  const m = decodeNetcheckMessage(b)
  assert.equal(m.type, NetcheckType.PROBE_INFO)
  if (m.type !== NetcheckType.PROBE_INFO) return
  assert.deepEqual(m.observed, { host: '203.0.113.5', port: 4000 })
  assert.deepEqual(m.probes, [{ host: null, port: 9002 }])
})

test('refusals: too many probes, an index out of range, ip_len 0 where an address is required, truncation', () => {
  const reason = (b: Buffer): string => {
    try {
      decodeNetcheckMessage(b)
    } catch (err) {
      if (err instanceof DecodeError) return err.reason
      throw err
    }
    return 'accepted'
  }
  assert.equal(reason(hex('09 00000001 04 01020304 0001 03 00 0001 00 0002 00 0003')), 'bad-value')
  assert.equal(reason(hex('0a 00000001 02 04 01020304 0001')), 'bad-value')
  assert.equal(reason(hex('0a 00000001 00 00 0001')), 'bad-address')
  assert.equal(reason(hex('09 00000001 04 01020304 0001 01 04 0102')), 'short-buffer')
  assert.equal(reason(hex('05 00000001')), 'bad-type')
  assert.equal(reason(Buffer.alloc(0)), 'short-buffer')
  assert.throws(() => encodeNetcheckMessage({ type: NetcheckType.PROBE_REPLY, txid: 1, index: 2, observed: { host: '1.2.3.4', port: 1 } }), DecodeError)
})

test('the type bytes are beacon types unknown to the reference (0x08-0x0A), which the beacon codec refuses', () => {
  for (const t of [0x08, 0x09, 0x0a]) {
    assert.ok(isNetcheckType(t))
    assert.throws(() => decodeBeaconMessage(Buffer.alloc(PROBE_REQUEST_MIN_SIZE, t)), (e: unknown) => e instanceof DecodeError && e.reason === 'bad-type')
  }
  assert.ok(!isNetcheckType(0x07) && !isNetcheckType(0x0b))
})

test('fuzz: the decoder answers a message or a DecodeError, and what it accepts decodes the same after re-encoding', () => {
  const corpus = [
    encodeNetcheckMessage({ type: NetcheckType.PROBE_REQUEST, txid: 5 }),
    hex('09 00000007 04 cb007105 0fa0 02 00 232a 04 c6336409 232b'),
    hex('0a ffffffff 01 10 20010db8000000000000000000000005 0fa0'),
  ]
  const report = fuzzDecoder({
    iterations: 20_000,
    seed: 0x9c7c,
    corpus,
    maxRandomLength: 160,
    decode: decodeNetcheckMessage,
    onDecoded(m, input) {
      assert.deepEqual(decodeNetcheckMessage(encodeNetcheckMessage(m)), m, Buffer.from(input).toString('hex'))
    },
  })
  assert.ok(report.accepted > 100 && report.rejected > 100, JSON.stringify([...report.reasons]))
})
