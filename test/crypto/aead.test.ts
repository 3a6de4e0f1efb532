import { test } from 'node:test'
import assert from 'node:assert/strict'
import { SeededRandom } from '../../src/random.js'
import { CryptoError } from '../../src/errors.js'
import {
  MAX_NONCE_COUNTER,
  NonceSequence,
  REKEY_NONCE_COUNTER,
  TunnelCipher,
  aadFor,
  readNonceCounter,
  readNoncePrefix,
  writeNonceCounter,
} from '../../src/crypto/aead.js'
import { FixedRandom, fromHex, hex } from './helpers.js'

const KEY = fromHex('7fba3471bc8efe5a218c59651ad860926646b44c842bb2747ad11d976d60c50e')

function sealed(variant: 'legacy' | 'hkdf', senderId: number, length: number, seed = 1) {
  const random = new SeededRandom(seed)
  const cipher = new TunnelCipher(KEY, variant)
  const nonce = new Uint8Array(12)
  random.fill(nonce)
  const plaintext = new Uint8Array(length)
  random.fill(plaintext)
  const box = new Uint8Array(length + 16)
  cipher.sealFrame(senderId, nonce, plaintext, box, 0)
  return { cipher, nonce, plaintext, box }
}

for (const variant of ['legacy', 'hkdf'] as const) {
  test(`${variant}: any flipped bit in ciphertext, tag or nonce makes open return -1`, () => {
    const { cipher, nonce, box } = sealed(variant, 7, 40)
    const out = new Uint8Array(40)
    assert.equal(cipher.openFrame(7, nonce, box, out, 0), 40)
    for (let bit = 0; bit < box.length * 8; bit++) {
      const bad = new Uint8Array(box)
      bad[bit >> 3]! ^= 1 << (bit & 7)
      assert.equal(cipher.openFrame(7, nonce, bad, out, 0), -1, `box bit ${bit}`)
    }
    for (let bit = 0; bit < 96; bit++) {
      const bad = new Uint8Array(nonce)
      bad[bit >> 3]! ^= 1 << (bit & 7)
      assert.equal(cipher.openFrame(7, bad, box, out, 0), -1, `nonce bit ${bit}`)
    }
  })
}

test('hkdf: the AAD (sender ID) is authenticated, every bit of it', () => {
  const { cipher, nonce, box } = sealed('hkdf', 0x01020304, 10)
  const out = new Uint8Array(10)
  for (let bit = 0; bit < 32; bit++) {
    assert.equal(cipher.openFrame((0x01020304 ^ (1 << bit)) >>> 0, nonce, box, out, 0), -1, `AAD bit ${bit}`)
  }
  // And with raw `open`: missing AAD, or AAD given where none was used, fails too.
  assert.equal(cipher.open(nonce, box, null, out, 0), -1)
  const legacy = sealed('legacy', 1, 10)
  assert.equal(legacy.cipher.open(legacy.nonce, legacy.box, fromHex('00000001'), out, 0), -1)
})

test('legacy ignores the sender ID (no AAD), hkdf binds it', () => {
  assert.equal(aadFor('legacy', 5, new Uint8Array(4)), null)
  assert.equal(hex(aadFor('hkdf', 5, new Uint8Array(4))!), '00000005')
  const { cipher, nonce, box } = sealed('legacy', 1, 10)
  assert.equal(cipher.openFrame(99, nonce, box, new Uint8Array(10), 0), 10)
})

test('failed open writes nothing; in-place seal and open round-trip', () => {
  const { cipher, nonce, plaintext, box } = sealed('hkdf', 3, 100)
  const out = new Uint8Array(120).fill(0xee)
  const bad = new Uint8Array(box)
  bad[0]! ^= 1
  assert.equal(cipher.openFrame(3, nonce, bad, out, 10), -1)
  assert.ok(out.every((b) => b === 0xee), 'out untouched after a failure')

  // A frame buffer with the plaintext already at its final offset, sealed and opened in place.
  const frame = new Uint8Array(20 + 100 + 16)
  frame.set(plaintext, 20)
  assert.equal(cipher.sealFrame(3, nonce, frame.subarray(20, 120), frame, 20), 116)
  assert.equal(hex(frame.subarray(20)), hex(box))
  assert.equal(cipher.openFrame(3, nonce, frame.subarray(20), frame, 20), 100)
  assert.equal(hex(frame.subarray(20, 120)), hex(plaintext))
})

test('open answers -1, never throws, on malformed input', () => {
  const { cipher, nonce, box } = sealed('hkdf', 3, 30)
  const out = new Uint8Array(64)
  assert.equal(cipher.openFrame(3, nonce, box.subarray(0, 15), out, 0), -1, 'shorter than a tag')
  assert.equal(cipher.openFrame(3, nonce.subarray(0, 11), box, out, 0), -1, 'short nonce')
  assert.equal(cipher.openFrame(3, nonce, box, new Uint8Array(29), 0), -1, 'does not fit out')
  assert.equal(cipher.openFrame(3, nonce, box, out, 40), -1, 'does not fit at offset')
  assert.equal(cipher.openFrame(3, nonce, box.subarray(30), out, 0), -1, 'tag alone, wrong')
})

test('an empty plaintext seals to a bare tag and opens to length 0', () => {
  const { cipher, nonce, box } = sealed('hkdf', 3, 0)
  assert.equal(box.length, 16)
  assert.equal(cipher.openFrame(3, nonce, box, new Uint8Array(0), 0), 0)
})

test('seal refuses programming errors with RangeError; bad key length is a CryptoError', () => {
  const cipher = new TunnelCipher(KEY, 'legacy')
  assert.throws(() => cipher.seal(new Uint8Array(8), new Uint8Array(1), null, new Uint8Array(17), 0), RangeError)
  assert.throws(() => cipher.seal(new Uint8Array(12), new Uint8Array(2), null, new Uint8Array(17), 0), RangeError)
  assert.throws(() => new TunnelCipher(new Uint8Array(16), 'legacy'), (e: unknown) => e instanceof CryptoError && e.code === 'PT_CRYPTO_BAD_KEY')
})

test('NonceSequence: prefix from the RandomSource, counters 1, 2, 3 … big-endian', () => {
  const nonces = new NonceSequence(new FixedRandom(fromHex('a1b2c3d4')))
  const out = new Uint8Array(14)
  assert.equal(nonces.lastCounter, 0)
  assert.equal(nonces.next(out, 2), 1)
  assert.equal(hex(out.subarray(2)), 'a1b2c3d40000000000000001')
  assert.equal(nonces.next(out, 2), 2)
  assert.equal(hex(out.subarray(2)), 'a1b2c3d40000000000000002')
  assert.equal(nonces.prefixValue, 0xa1b2c3d4)
  assert.equal(readNoncePrefix(out, 2), 0xa1b2c3d4)
  assert.equal(readNonceCounter(out, 2), 2)
  // Two sequences from a seeded source get their own prefixes.
  const random = new SeededRandom(9)
  assert.notEqual(new NonceSequence(random).prefixValue, new NonceSequence(random).prefixValue)
})

test('NonceSequence: counters above 2^32, rekey hint at 2^48, refusal past 2^53 − 1', () => {
  const out = new Uint8Array(12)
  const crossing = new NonceSequence(new FixedRandom(fromHex('00000000')), 0xffff_ffff)
  assert.equal(crossing.next(out), 0x1_0000_0000)
  assert.equal(hex(out.subarray(4)), '0000000100000000')

  const nearRekey = new NonceSequence(new SeededRandom(1), REKEY_NONCE_COUNTER - 2)
  nearRekey.next(out)
  assert.equal(nearRekey.needsRekey, false)
  nearRekey.next(out)
  assert.equal(nearRekey.needsRekey, true)
  assert.equal(hex(out.subarray(4)), '0001000000000000')

  const nearEnd = new NonceSequence(new SeededRandom(1), MAX_NONCE_COUNTER - 1)
  assert.equal(nearEnd.next(out), MAX_NONCE_COUNTER)
  assert.equal(hex(out.subarray(4)), '001fffffffffffff')
  assert.throws(() => nearEnd.next(out), (e: unknown) => e instanceof CryptoError && e.code === 'PT_CRYPTO_NONCE_EXHAUSTED')
  assert.equal(nearEnd.lastCounter, MAX_NONCE_COUNTER, 'a refused call uses no counter')
})

test('readNonceCounter: exact up to 2^53 − 1, -1 above', () => {
  const nonce = new Uint8Array(12)
  for (const c of [0, 1, 255, 256, 0xffff_ffff, 2 ** 32 + 5, 2 ** 48, MAX_NONCE_COUNTER]) {
    writeNonceCounter(nonce, 4, c)
    assert.equal(readNonceCounter(nonce), c)
  }
  nonce.set(fromHex('0020000000000000'), 4)
  assert.equal(readNonceCounter(nonce), -1)
  nonce.set(fromHex('ffffffffffffffff'), 4)
  assert.equal(readNonceCounter(nonce), -1)
})
