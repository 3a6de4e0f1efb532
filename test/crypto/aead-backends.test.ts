/**
 * The two AES-256-GCM backends of `TunnelCipher` (the data-path addon and
 * node:crypto) against @noble/ciphers and against each other, on seeded
 * random keys, nonces, lengths and AADs, including the in-place cases the
 * tunnel relies on.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { gcm } from '@noble/ciphers/aes.js'
import { SeededRandom } from '../../src/random.js'
import { TAG_SIZE, TunnelCipher } from '../../src/crypto/aead.js'
import { loadDatapathAddon } from '../../src/native-datapath.js'
import { hex } from './helpers.js'

const CASES = 300

function bytes(random: SeededRandom, n: number): Uint8Array {
  const out = new Uint8Array(n)
  random.fill(out)
  return out
}

test('the data-path addon is built and loads on Linux (otherwise the tunnel silently runs the slow path)', { skip: process.platform !== 'linux' }, () => {
  assert.notEqual(loadDatapathAddon({}), null)
  assert.equal(new TunnelCipher(new Uint8Array(32), 'hkdf').backend, 'native')
  assert.equal(new TunnelCipher(new Uint8Array(32), 'hkdf', 'node').backend, 'node')
  assert.equal(loadDatapathAddon({ PILOT_NATIVE_DATAPATH: '0' }), null)
})

test('native and node backends: seal equals @noble, each opens the other, in place both ways', () => {
  const random = new SeededRandom(0xae5)
  for (let i = 0; i < CASES; i++) {
    const key = bytes(random, 32)
    const nonce = bytes(random, 12)
    const variant = i % 2 === 0 ? 'hkdf' : 'legacy'
    const aad = variant === 'hkdf' ? bytes(random, 4) : null
    const len = i < 20 ? i : random.int(3000)
    const plaintext = bytes(random, len)
    const native = new TunnelCipher(key, variant)
    const node = new TunnelCipher(key, variant, 'node')
    const expected = gcm(key, nonce, aad ?? undefined).encrypt(plaintext)

    const off = 28
    const a = new Uint8Array(off + len + TAG_SIZE)
    assert.equal(native.seal(nonce, plaintext, aad, a, off), len + TAG_SIZE)
    assert.equal(hex(a.subarray(off)), hex(expected), `case ${i}: native seal`)
    const b = new Uint8Array(off + len + TAG_SIZE)
    node.seal(nonce, plaintext, aad, b, off)
    assert.equal(hex(b.subarray(off)), hex(expected), `case ${i}: node seal`)

    // In-place seal: the plaintext already sits where the ciphertext goes.
    const inPlace = new Uint8Array(off + len + TAG_SIZE)
    inPlace.set(plaintext, off)
    native.seal(nonce, inPlace.subarray(off, off + len), aad, inPlace, off)
    assert.equal(hex(inPlace.subarray(off)), hex(expected), `case ${i}: native in-place seal`)

    for (const [opener, name] of [
      [native, 'native'],
      [node, 'node'],
    ] as const) {
      const out = new Uint8Array(len)
      assert.equal(opener.open(nonce, expected, aad, out, 0), len, `case ${i}: ${name} open`)
      assert.equal(hex(out), hex(plaintext))
      // In place, as the tunnel opens a PILS frame.
      const frame = new Uint8Array(off + len + TAG_SIZE)
      frame.set(expected, off)
      assert.equal(opener.open(nonce, frame.subarray(off), aad, frame, off), len)
      assert.equal(hex(frame.subarray(off, off + len)), hex(plaintext))
    }
  }
})

test('native open: a bad tag, a flipped bit, a wrong AAD or key give -1 and leave the buffer untouched (in place)', () => {
  const random = new SeededRandom(0xbad)
  for (let i = 0; i < 100; i++) {
    const key = bytes(random, 32)
    const nonce = bytes(random, 12)
    const aad = bytes(random, 4)
    const plaintext = bytes(random, 1 + random.int(1500))
    const cipher = new TunnelCipher(key, 'hkdf')
    const sealed = gcm(key, nonce, aad).encrypt(plaintext)
    const frame = new Uint8Array(28 + sealed.length)
    frame.set(sealed, 28)
    const which = i % 4
    if (which === 0) frame[28 + random.int(sealed.length)] ^= 1 << (i % 8)
    const before = hex(frame)
    const wrongAad = which === 1 ? Uint8Array.from([aad[0]! ^ 0x80, aad[1]!, aad[2]!, aad[3]!]) : aad
    const opener = which === 2 ? new TunnelCipher(bytes(random, 32), 'hkdf') : cipher
    const openAad = which === 3 ? null : wrongAad
    assert.equal(opener.open(nonce, frame.subarray(28), openAad, frame, 28), -1, `case ${i} (${which})`)
    assert.equal(hex(frame), before, `case ${i}: the frame changed after a failed open`)
  }
})

test('native open of fewer than 16 bytes, or output too small, is -1; seal into a short buffer throws', () => {
  const cipher = new TunnelCipher(new Uint8Array(32).fill(7), 'hkdf')
  const nonce = new Uint8Array(12)
  assert.equal(cipher.open(nonce, new Uint8Array(15), null, new Uint8Array(64), 0), -1)
  assert.equal(cipher.open(nonce, new Uint8Array(40), null, new Uint8Array(10), 0), -1)
  assert.throws(() => cipher.seal(nonce, new Uint8Array(10), null, new Uint8Array(20), 0), RangeError)
  assert.throws(() => cipher.seal(new Uint8Array(11), new Uint8Array(10), null, new Uint8Array(40), 0), RangeError)
})
