import { test } from 'node:test'
import assert from 'node:assert/strict'
import { PacketHeader, decodePacket, encodePacket, packetPayload, HEADER_SIZE } from '../../src/protocol/header.js'
import { parseAddress, formatAddress, parseSocketAddress, readAddress } from '../../src/protocol/address.js'
import { SeededRandom } from '../../src/random.js'
import { fuzzDecoder } from '../util/fuzz.js'

const ITERATIONS = 100_000

function validPackets(n: number): Uint8Array[] {
  const rng = new SeededRandom(7)
  const out: Uint8Array[] = []
  for (let i = 0; i < n; i++) {
    const h = PacketHeader.from({
      flags: rng.int(16), protocol: 1 + rng.int(3), srcNetwork: rng.int(3), srcNode: rng.u32(),
      dstNetwork: rng.int(3), dstNode: rng.u32(), srcPort: rng.int(65536), dstPort: rng.int(65536),
      seq: rng.u32(), ack: rng.u32(), window: rng.int(65536),
    })
    const payload = new Uint8Array(rng.int(64))
    rng.fill(payload)
    out.push(encodePacket(h, payload))
  }
  return out
}

test('header decoder: 100k random and mutated packets give a value or a DecodeError', () => {
  const into = new PacketHeader()
  const report = fuzzDecoder({
    iterations: ITERATIONS,
    seed: 1,
    corpus: validPackets(64),
    maxRandomLength: 128,
    decode: (b) => decodePacket(b, 0, into),
    onDecoded: (h, input) => {
      // Whatever was accepted re-encodes to the same bytes (minus ignored trailing bytes).
      const again = encodePacket(h, packetPayload(input, 0, h))
      assert.deepEqual(again, Buffer.from(input.subarray(0, HEADER_SIZE + h.payloadLength)))
    },
  })
  assert.ok(report.rejected > ITERATIONS * 0.5, 'most mutations must be caught (CRC)')
  assert.ok(report.accepted > 0, 'trailing-byte extensions of valid packets are accepted')
  assert.ok(report.reasons.has('bad-crc') && report.reasons.has('short-buffer') && report.reasons.has('bad-length'))
})

test('address text parser: 100k random and mutated strings give a value or a DecodeError', () => {
  const rng = new SeededRandom(2)
  const corpus = ['0:0000.0000.0001', '1:0001.F291.0004', '65535:FFFF.FFFF.FFFF', '23:0017.0000.0001', '0:0000.0000.002a:80']
  const alphabet = '0123456789abcdefABCDEF:.xyz -+/\u0000é'
  const report = fuzzDecoder({
    iterations: ITERATIONS,
    seed: 3,
    corpus: corpus.map((s) => Buffer.from(s)),
    decode: (b) => {
      // Map bytes onto an alphabet so random inputs look address-like often enough.
      const s = rng.int(3) === 0 ? Buffer.from(b).toString('latin1') : Array.from(b, (x) => alphabet[x % alphabet.length]).join('')
      return rng.int(2) === 0 ? { a: parseAddress(s), s } : { a: parseSocketAddress(s).address, s }
    },
    onDecoded: ({ a }) => {
      assert.deepEqual(parseAddress(formatAddress(a)), a)
    },
  })
  assert.ok(report.accepted > 0 && report.rejected > 0)
})

test('binary address reader never reads out of bounds', () => {
  const rng = new SeededRandom(4)
  for (let i = 0; i < 10_000; i++) {
    const b = new Uint8Array(rng.int(12))
    rng.fill(b)
    const off = rng.int(12) - 2
    if (off >= 0 && b.length - off >= 6) assert.equal(readAddress(b, off).node >>> 0, readAddress(b, off).node)
    else assert.throws(() => readAddress(b, off), { name: 'DecodeError' })
  }
})
