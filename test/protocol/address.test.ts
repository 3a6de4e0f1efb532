import { test } from 'node:test'
import assert from 'node:assert/strict'
import {
  parseAddress,
  formatAddress,
  parseSocketAddress,
  formatSocketAddress,
  readAddress,
  writeAddress,
  addressKey,
  addressFromKey,
} from '../../src/protocol/address.js'
import { DecodeError } from '../../src/errors.js'
import { SeededRandom } from '../../src/random.js'

const isReason = (reason: string) => (e: unknown) => e instanceof DecodeError && e.reason === reason

// docs/wire.md §2.2 [G] examples.
const VALID: Array<[string, number, number]> = [
  ['0:0000.0000.0001', 0, 1],
  ['1:0001.F291.0004', 1, 0xf2910004],
  ['23:0017.0000.0001', 23, 1],
  ['0:0000.0000.002A', 0, 0x2a],
  ['0:0000.FFFF.FFFF', 0, 0xffffffff], // broadcast (§2.4)
  ['65535:FFFF.FFFF.FFFF', 0xffff, 0xffffffff],
]

for (const [text, network, node] of VALID) {
  test(`§2.2 ${text} parses and formats back`, () => {
    assert.deepEqual(parseAddress(text), { network, node })
    assert.equal(formatAddress({ network, node }), text)
  })
}

const INVALID = [
  '1:0000.0000.0001', // network mismatch
  '0:000.0000.0000', // 3-digit group
  '99999:0000.0000.0000', // network too large
  '1:00A3.F291.0004', // the draft's example (§2.2 [D])
  '0:0000.0000', // two groups
  '0:0000.0000.0000.0000',
  '0:0000.0000.000G',
  '0:0000.0000.00001',
  '-1:0000.0000.0000',
  '0x0:0000.0000.0000',
  ':0000.0000.0000',
  '0:0000:0000.0000',
  '0 :0000.0000.0000',
  '',
]

for (const text of INVALID) {
  test(`§2.2 "${text}" is refused with bad-address`, () => {
    assert.throws(() => parseAddress(text), isReason('bad-address'))
  })
}

test('parsing is case-insensitive, output is upper-case', () => {
  assert.deepEqual(parseAddress('1:0001.f291.0004'), { network: 1, node: 0xf2910004 })
  assert.deepEqual(parseAddress('10:000a.AbCd.eF01'), { network: 10, node: 0xabcdef01 })
  assert.equal(formatAddress(parseAddress('10:000a.abcd.ef01')), '10:000A.ABCD.EF01')
})

test('leading zeros in the decimal network are accepted', () => {
  assert.deepEqual(parseAddress('007:0007.0000.0001'), { network: 7, node: 1 })
})

test('socket addresses split at the last colon (§2.3)', () => {
  assert.deepEqual(parseSocketAddress('1:0001.F291.0004:1000'), { address: { network: 1, node: 0xf2910004 }, port: 1000 })
  assert.equal(formatSocketAddress({ address: { network: 0, node: 2 }, port: 49152 }), '0:0000.0000.0002:49152')
  assert.throws(() => parseSocketAddress('0:0000.0000.0001:65536'), isReason('bad-port'))
  assert.throws(() => parseSocketAddress('0:0000.0000.0001:'), isReason('bad-port'))
  assert.throws(() => parseSocketAddress('0:0000.0000.0001:x'), isReason('bad-port'))
  assert.throws(() => parseSocketAddress('0:0000.0000.0001'), isReason('bad-port')) // no port: the last ':' is the address's own
  assert.throws(() => parseSocketAddress('1:0000.0000.0001:80'), isReason('bad-address'))
})

test('random addresses: text, socket text, binary and key round trips (2,000 seeded cases)', () => {
  const rnd = new SeededRandom(0x2a)
  const buf = new Uint8Array(8)
  for (let i = 0; i < 2000; i++) {
    const a = { network: rnd.int(0x10000), node: rnd.u32() }
    const text = formatAddress(a)
    assert.match(text, /^\d{1,5}:[0-9A-F]{4}\.[0-9A-F]{4}\.[0-9A-F]{4}$/)
    assert.deepEqual(parseAddress(text), a)
    assert.deepEqual(parseAddress(text.toLowerCase()), a)
    const port = rnd.int(0x10000)
    assert.deepEqual(parseSocketAddress(formatSocketAddress({ address: a, port })), { address: a, port })
    writeAddress(a, buf, 1)
    assert.deepEqual(readAddress(buf, 1), a)
    assert.deepEqual(addressFromKey(addressKey(a)), a)
  }
})

test('readAddress on short input throws short-buffer, not RangeError', () => {
  assert.throws(() => readAddress(new Uint8Array(5), 0), isReason('short-buffer'))
  assert.throws(() => readAddress(new Uint8Array(8), 3), isReason('short-buffer'))
})
