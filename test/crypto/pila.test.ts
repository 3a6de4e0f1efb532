import { test } from 'node:test'
import assert from 'node:assert/strict'
import { CryptoError } from '../../src/errors.js'
import { Identity, ed25519PublicKeyObject } from '../../src/crypto/identity.js'
import { X25519KeyPair } from '../../src/crypto/key-agreement.js'
import { PILA_SIGNED_MESSAGE_SIZE, pilaSignedMessage, signPila, verifyPila } from '../../src/crypto/pila.js'
import { hex } from './helpers.js'

const identity = Identity.generate()
const tunnelKey = X25519KeyPair.generate().publicKey

test('signed message: "auth" (no colon) ‖ node ID u32 BE ‖ X25519 key', () => {
  const message = pilaSignedMessage(0xdeadbeef, tunnelKey)
  assert.equal(message.length, PILA_SIGNED_MESSAGE_SIZE)
  assert.equal(hex(message.subarray(0, 8)), '61757468deadbeef')
  assert.equal(hex(message.subarray(8)), hex(tunnelKey))
})

test('sign then verify, with raw key and with a cached KeyObject', () => {
  const signature = signPila(identity, 42, tunnelKey)
  assert.equal(signature.length, 64)
  assert.equal(verifyPila(identity.publicKey, 42, tunnelKey, signature), true)
  assert.equal(verifyPila(ed25519PublicKeyObject(identity.publicKey), 42, tunnelKey, signature), true)
})

test('verify is false for any change: node ID, X25519 key, Ed25519 key, signature', () => {
  const signature = signPila(identity, 42, tunnelKey)
  assert.equal(verifyPila(identity.publicKey, 43, tunnelKey, signature), false)
  const otherKey = new Uint8Array(tunnelKey)
  otherKey[0]! ^= 1
  assert.equal(verifyPila(identity.publicKey, 42, otherKey, signature), false)
  assert.equal(verifyPila(Identity.generate().publicKey, 42, tunnelKey, signature), false)
  const badSig = new Uint8Array(signature)
  badSig[63]! ^= 0x80
  assert.equal(verifyPila(identity.publicKey, 42, tunnelKey, badSig), false)
  // "auth:" (Go's comment) is not what is signed.
  const withColon = identity.sign(new Uint8Array([...Buffer.from('auth:'), 0, 0, 0, 42, ...tunnelKey]))
  assert.equal(verifyPila(identity.publicKey, 42, tunnelKey, withColon), false)
})

test('verify never throws on bad lengths or values', () => {
  const signature = signPila(identity, 1, tunnelKey)
  assert.equal(verifyPila(identity.publicKey.subarray(0, 31), 1, tunnelKey, signature), false)
  assert.equal(verifyPila(identity.publicKey, 1, tunnelKey.subarray(1), signature), false)
  assert.equal(verifyPila(identity.publicKey, 1, tunnelKey, signature.subarray(0, 63)), false)
  assert.equal(verifyPila(identity.publicKey, 1, tunnelKey, new Uint8Array(65)), false)
  for (const id of [-1, 2 ** 32, 1.5, NaN]) assert.equal(verifyPila(identity.publicKey, id, tunnelKey, signature), false)
  assert.equal(verifyPila(new Uint8Array(32), 1, tunnelKey, signature), false)
})

test('signing with a bad node ID or key length is a typed error', () => {
  assert.throws(() => signPila(identity, -1, tunnelKey), (e: unknown) => e instanceof CryptoError && e.code === 'PT_CRYPTO_BAD_INPUT')
  assert.throws(() => signPila(identity, 1, new Uint8Array(31)), (e: unknown) => e instanceof CryptoError && e.code === 'PT_CRYPTO_BAD_KEY')
})
