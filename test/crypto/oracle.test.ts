/**
 * node:crypto against independent @noble implementations, on seeded random
 * inputs (≥ 200 cases each). Any disagreement prints the seed and case.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { x25519, ed25519 } from '@noble/curves/ed25519.js'
import { gcm } from '@noble/ciphers/aes.js'
import { hkdf } from '@noble/hashes/hkdf.js'
import { sha256 } from '@noble/hashes/sha2.js'
import { SeededRandom } from '../../src/random.js'
import { TunnelCipher } from '../../src/crypto/aead.js'
import { Identity, verifyEd25519 } from '../../src/crypto/identity.js'
import { X25519KeyPair, deriveSessionKey, type KeyPurpose } from '../../src/crypto/key-agreement.js'
import { hex } from './helpers.js'

const CASES = 200

function bytes(random: SeededRandom, n: number): Uint8Array {
  const out = new Uint8Array(n)
  random.fill(out)
  return out
}

test('X25519: public keys and shared secrets equal @noble/curves', () => {
  const random = new SeededRandom(0x25519)
  for (let i = 0; i < CASES; i++) {
    const a = bytes(random, 32)
    const b = bytes(random, 32)
    const ours = X25519KeyPair.fromPrivateKey(a)
    const theirPublic = x25519.getPublicKey(b)
    assert.equal(hex(ours.publicKey), hex(x25519.getPublicKey(a)), `case ${i}: public key`)
    assert.equal(hex(ours.sharedSecret(theirPublic)), hex(x25519.getSharedSecret(a, theirPublic)), `case ${i}: shared`)
  }
})

test('Ed25519: public keys and signatures equal @noble/curves, each verifies the other', () => {
  const random = new SeededRandom(0xed25519)
  for (let i = 0; i < CASES; i++) {
    const seed = bytes(random, 32)
    const message = bytes(random, random.int(300))
    const identity = Identity.fromSeed(seed)
    assert.equal(hex(identity.publicKey), hex(ed25519.getPublicKey(seed)), `case ${i}: public key`)
    const ours = identity.sign(message)
    const theirs = ed25519.sign(message, seed)
    assert.equal(hex(ours), hex(theirs), `case ${i}: signature`) // Ed25519 is deterministic
    assert.equal(ed25519.verify(ours, message, identity.publicKey), true, `case ${i}: noble verifies ours`)
    assert.equal(verifyEd25519(identity.publicKey, message, theirs), true, `case ${i}: we verify noble's`)
    // One flipped bit anywhere in the signature: both refuse.
    const bad = new Uint8Array(ours)
    bad[random.int(64)]! ^= 1 << random.int(8)
    assert.equal(verifyEd25519(identity.publicKey, message, bad), false, `case ${i}: tampered (ours)`)
    assert.equal(ed25519.verify(bad, message, identity.publicKey), false, `case ${i}: tampered (noble)`)
  }
})

test('AES-256-GCM: seal equals @noble/ciphers gcm and both open each other, with and without AAD', () => {
  const random = new SeededRandom(0x6c3)
  const out = new Uint8Array(1500 + 16)
  const back = new Uint8Array(1500)
  for (let i = 0; i < CASES; i++) {
    const key = bytes(random, 32)
    const nonce = bytes(random, 12)
    const plaintext = bytes(random, random.int(1501))
    const aad = random.int(3) === 0 ? null : bytes(random, random.int(2) === 0 ? 4 : random.int(64))
    const cipher = new TunnelCipher(key, aad === null ? 'legacy' : 'hkdf')
    const written = cipher.seal(nonce, plaintext, aad, out, 0)
    const expected = gcm(key, nonce, aad ?? undefined).encrypt(plaintext)
    assert.equal(written, expected.length, `case ${i}: length`)
    assert.equal(hex(out.subarray(0, written)), hex(expected), `case ${i}: ciphertext ‖ tag`)
    assert.equal(hex(gcm(key, nonce, aad ?? undefined).decrypt(out.subarray(0, written))), hex(plaintext), `case ${i}: noble opens ours`)
    const n = cipher.open(nonce, expected, aad, back, 0)
    assert.equal(n, plaintext.length, `case ${i}: we open noble's`)
    assert.equal(hex(back.subarray(0, n)), hex(plaintext), `case ${i}: plaintext`)
  }
})

test('HKDF-SHA256 (empty salt, both labels) equals @noble/hashes hkdf', () => {
  const random = new SeededRandom(0x4bdf)
  for (let i = 0; i < CASES; i++) {
    const shared = bytes(random, 32)
    const purpose: KeyPurpose = i % 2 === 0 ? 'tunnel' : 'secure'
    const info = new TextEncoder().encode(purpose === 'tunnel' ? 'pilot-tunnel-v1' : 'pilot-secure-v1')
    const expected = hkdf(sha256, shared, new Uint8Array(0), info, 32)
    assert.equal(hex(deriveSessionKey(shared, 'hkdf', purpose)), hex(expected), `case ${i}`)
    assert.equal(hex(hkdf(sha256, shared, undefined, info, 32)), hex(expected), 'empty salt = no salt')
  }
})

test('legacy KDF equals @noble/hashes sha256(label ‖ ":" ‖ shared)', () => {
  const random = new SeededRandom(0x5a256)
  for (let i = 0; i < CASES; i++) {
    const shared = bytes(random, 32)
    const purpose: KeyPurpose = i % 2 === 0 ? 'tunnel' : 'secure'
    const label = new TextEncoder().encode(purpose === 'tunnel' ? 'pilot-tunnel-v1:' : 'pilot-secure-v1:')
    const input = new Uint8Array(label.length + 32)
    input.set(label)
    input.set(shared, label.length)
    assert.equal(hex(deriveSessionKey(shared, 'legacy', purpose)), hex(sha256(input)), `case ${i}`)
  }
})
