import { test } from 'node:test'
import assert from 'node:assert/strict'
import { CryptoError } from '../../src/errors.js'
import { X25519KeyPair, agreeSessionKey } from '../../src/crypto/key-agreement.js'
import { TunnelCipher } from '../../src/crypto/aead.js'
import { fromHex, hex } from './helpers.js'

// Low-order points of Curve25519 (u-coordinates): X25519 with any of them is all zero.
const LOW_ORDER = [
  '0000000000000000000000000000000000000000000000000000000000000000',
  '0100000000000000000000000000000000000000000000000000000000000000',
  'e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800',
  '5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157',
  'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
]

const isCode = (code: string) => (e: unknown) => e instanceof CryptoError && e.code === code

test('a low-order peer key (all-zero shared secret) is refused with a typed error', () => {
  const own = X25519KeyPair.generate()
  for (const point of LOW_ORDER) {
    assert.throws(() => own.sharedSecret(fromHex(point)), isCode('PT_CRYPTO_WEAK_PEER_KEY'), point)
    assert.throws(() => agreeSessionKey(own, fromHex(point), 'hkdf'), isCode('PT_CRYPTO_WEAK_PEER_KEY'), point)
  }
})

test('wrong key lengths are typed errors', () => {
  const own = X25519KeyPair.generate()
  assert.throws(() => own.sharedSecret(new Uint8Array(31)), isCode('PT_CRYPTO_BAD_PEER_KEY'))
  assert.throws(() => X25519KeyPair.fromPrivateKey(new Uint8Array(33)), isCode('PT_CRYPTO_BAD_KEY'))
})

test('generated pairs agree from both sides, and fresh pairs differ', () => {
  const a = X25519KeyPair.generate()
  const b = X25519KeyPair.generate()
  assert.notEqual(hex(a.publicKey), hex(b.publicKey))
  assert.equal(hex(a.sharedSecret(b.publicKey)), hex(b.sharedSecret(a.publicKey)))
  for (const variant of ['legacy', 'hkdf'] as const) {
    const sender = TunnelCipher.agree(a, b.publicKey, variant)
    const receiver = TunnelCipher.agree(b, a.publicKey, variant)
    const nonce = new Uint8Array(12)
    const box = new Uint8Array(21)
    sender.sealFrame(1, nonce, new TextEncoder().encode('hello'), box, 0)
    const out = new Uint8Array(5)
    assert.equal(receiver.openFrame(1, nonce, box, out, 0), 5)
  }
})
