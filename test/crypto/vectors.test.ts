/**
 * docs/wire.md §16.3–§16.6 reproduced byte for byte. Frames are assembled here from
 * raw bytes (protocol/ owns the real frame codecs).
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createHmac } from 'node:crypto'
import { TunnelCipher, NonceSequence } from '../../src/crypto/aead.js'
import { Identity, formatIdentityFile, verifyChallenge } from '../../src/crypto/identity.js'
import { X25519KeyPair, agreeSessionKey, agreeSessionKeys, deriveSessionKey } from '../../src/crypto/key-agreement.js'
import { pilaSignedMessage, signPila, verifyPila } from '../../src/crypto/pila.js'
import { FixedRandom, concat, fromHex, hex } from './helpers.js'

// §16.3
const ALICE_PRIVATE = '77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a'
const ALICE_PUBLIC = '8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a'
const BOB_PRIVATE = '5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb'
const BOB_PUBLIC = 'de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f'
const SHARED = '4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742'
const TUNNEL_KEY_LEGACY = '7fba3471bc8efe5a218c59651ad860926646b44c842bb2747ad11d976d60c50e'
const HKDF_PRK = 'fd5b81e5379cfe3599ea059945250eabdb0913b8c3ae8bd85d6b735f15538be5'
const TUNNEL_KEY_HKDF = '3e765a2f49fe2a9185dd5d57c08a3525060d2d2c2b2a356fadef25f614d38662'
const SECURE_KEY_LEGACY = 'b55aeee28f960d0c20cb8a1b955983e4162fa9ba1edabf539f26c426aea92927'
const SECURE_KEY_HKDF = 'cddb817500383058931b912ed913882f4a6f0facbe47dd907100dac3913a2dbf'

// §16.2 P1 and §16.4
const P1 = '11010000000000000001000000000002c00003e800000000000000000200145ed874'
const PILS_LEGACY =
  '50494c5300000001a1b2c3d4000000000000000156dfe3f8d3d878e2a8d87fc3412afca4dfc38b354ce7f0e1ecd34717b908c5461fcc585a0951448836deeed10cb8a3de519c'
const PILS_HKDF =
  '50494c5300000001a1b2c3d400000000000000010443bba68eebfd923233a502903a7c30a9e289a73d0c94e7cca9e98eed540fd163a1b5b13d992ea53c306e479af3bf448922'
const PILK = '50494c4b000000018520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a'
const ED_SEED = '9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60'
const ED_PUBLIC = 'd75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a'
const ED_PUBLIC_B64 = '11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo='
const PILA =
  '50494c41000000018520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6ad75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a880af5e2ce0d44fc98432c2ff8c867567f42f442cd9e00c298199823844f1e7d54c5560c7c7480b2f90855b73178c665295538bd30e521f794c494e793e7610d'

// §16.5
const SIGNATURES: Record<string, string> = {
  'heartbeat:1': 'VnlNDnMgPNrEstsrIUUV4v6d2E7QkVIddCAIpv1x28UtcY15dnl85d0ldVgesmCWwT8vPsUTgZrs82oJtGTtAQ==',
  'resolve:1:2': 'a782c6+50CLxw5CdBgYqTOdXCgBvP0bH1Pc1vA1BZE/zb4XhaloIU6GMcNtJVitQIMY57SgoK21CUKmjSAItAw==',
  'handshake:1:2': '9S+I5TI03acn8tKkIroprBmv6NzljsX4+ZcP04hlEtUrmPJEww0O11uGhVSGh4Xs/so1V4HlVcLx5g/kulFZCw==',
}
const IDENTITY_PRIVATE_KEY_B64 = 'nWGxne/9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2DXWpgBgrEKt9VL/tPJZAc6DuFy89qmIyWvAhpo9wdRGg=='

// §16.6
const SECURE_FRAME_LEGACY = '0000001e00000002000000000000000170d7738eec8cdaacc2648576fd8351998564'
const SECURE_FRAME_HKDF = '0000001e000000020000000000000001ac6f6be655adbcaca42a05459458d96ece31'

const ascii = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'ascii'))
const u32be = (n: number): Uint8Array => {
  const b = Buffer.alloc(4)
  b.writeUInt32BE(n)
  return new Uint8Array(b)
}

const alice = X25519KeyPair.fromPrivateKey(fromHex(ALICE_PRIVATE))
const bob = X25519KeyPair.fromPrivateKey(fromHex(BOB_PRIVATE))

test('§16.3 X25519 public keys and the shared secret, from both sides', () => {
  assert.equal(hex(alice.publicKey), ALICE_PUBLIC)
  assert.equal(hex(bob.publicKey), BOB_PUBLIC)
  assert.equal(hex(alice.sharedSecret(bob.publicKey)), SHARED)
  assert.equal(hex(bob.sharedSecret(alice.publicKey)), SHARED)
})

test('§16.3 tunnel and port-443 keys, both variants', () => {
  const shared = fromHex(SHARED)
  assert.equal(hex(deriveSessionKey(shared, 'legacy')), TUNNEL_KEY_LEGACY)
  assert.equal(hex(deriveSessionKey(shared, 'hkdf')), TUNNEL_KEY_HKDF)
  assert.equal(hex(deriveSessionKey(shared, 'legacy', 'secure')), SECURE_KEY_LEGACY)
  assert.equal(hex(deriveSessionKey(shared, 'hkdf', 'secure')), SECURE_KEY_HKDF)
  assert.equal(hex(agreeSessionKey(alice, bob.publicKey, 'legacy')), TUNNEL_KEY_LEGACY)
  assert.equal(hex(agreeSessionKey(bob, alice.publicKey, 'hkdf')), TUNNEL_KEY_HKDF)
  const both = agreeSessionKeys(alice, bob.publicKey, 'secure')
  assert.deepEqual([hex(both.legacy), hex(both.hkdf)], [SECURE_KEY_LEGACY, SECURE_KEY_HKDF])
})

test('§16.3 HKDF spelled out: PRK = HMAC(empty, shared), key = HMAC(PRK, info ‖ 01)', () => {
  const prk = createHmac('sha256', Buffer.alloc(0)).update(fromHex(SHARED)).digest()
  assert.equal(prk.toString('hex'), HKDF_PRK)
  const key = createHmac('sha256', prk).update('pilot-tunnel-v1').update(Buffer.from([1])).digest()
  assert.equal(key.toString('hex'), TUNNEL_KEY_HKDF)
})

function pilsFrame(cipher: TunnelCipher, senderId: number, prefix: string, plaintext: Uint8Array): Uint8Array {
  const nonces = new NonceSequence(new FixedRandom(fromHex(prefix)))
  const frame = new Uint8Array(4 + 4 + 12 + plaintext.length + 16)
  frame.set(ascii('PILS'), 0)
  frame.set(u32be(senderId), 4)
  assert.equal(nonces.next(frame, 8), 1, 'first counter is 1 (§5.5)')
  const written = cipher.sealFrame(senderId, frame.subarray(8, 20), plaintext, frame, 20)
  assert.equal(written, plaintext.length + 16)
  return frame
}

for (const [variant, key, expected] of [
  ['legacy', TUNNEL_KEY_LEGACY, PILS_LEGACY],
  ['hkdf', TUNNEL_KEY_HKDF, PILS_HKDF],
] as const) {
  test(`§16.4 PILS ${variant} frame, 70 bytes, byte for byte`, () => {
    const cipher = new TunnelCipher(fromHex(key), variant)
    const frame = pilsFrame(cipher, 1, 'a1b2c3d4', fromHex(P1))
    assert.equal(hex(frame.subarray(8, 20)), 'a1b2c3d40000000000000001')
    assert.equal(frame.length, 70)
    assert.equal(hex(frame), expected)

    // And the receiving side: opens with the right variant, refuses with the other.
    const received = fromHex(expected)
    const out = new Uint8Array(64)
    const n = cipher.openFrame(1, received.subarray(8, 20), received.subarray(20), out, 0)
    assert.equal(hex(out.subarray(0, n)), P1)
    const other = new TunnelCipher(fromHex(variant === 'legacy' ? TUNNEL_KEY_HKDF : TUNNEL_KEY_LEGACY), variant === 'legacy' ? 'hkdf' : 'legacy')
    assert.equal(other.openFrame(1, received.subarray(8, 20), received.subarray(20), out, 0), -1)
    // Built from the key exchange rather than the raw key, the cipher is the same.
    const agreed = TunnelCipher.agree(bob, alice.publicKey, variant)
    assert.equal(agreed.openFrame(1, received.subarray(8, 20), received.subarray(20), out, 0), 34)
  })
}

test('§16.4 PILK frame of node 1', () => {
  assert.equal(hex(concat(ascii('PILK'), u32be(1), alice.publicKey)), PILK)
})

test('§16.4 Ed25519 identity from the RFC 8032 test-1 seed', () => {
  const identity = Identity.fromSeed(fromHex(ED_SEED))
  assert.equal(hex(identity.publicKey), ED_PUBLIC)
  assert.equal(Buffer.from(identity.publicKey).toString('base64'), ED_PUBLIC_B64)
})

test('§16.4 PILA signed message and 136-byte frame', () => {
  const identity = Identity.fromSeed(fromHex(ED_SEED))
  assert.equal(hex(pilaSignedMessage(1, alice.publicKey)), '61757468' + '00000001' + ALICE_PUBLIC)
  const signature = signPila(identity, 1, alice.publicKey)
  const frame = concat(ascii('PILA'), u32be(1), alice.publicKey, identity.publicKey, signature)
  assert.equal(frame.length, 136)
  assert.equal(hex(frame), PILA)
  const received = fromHex(PILA)
  assert.equal(verifyPila(received.subarray(40, 72), 1, received.subarray(8, 40), received.subarray(72, 136)), true)
  assert.equal(verifyPila(received.subarray(40, 72), 2, received.subarray(8, 40), received.subarray(72, 136)), false)
})

for (const [challenge, signature] of Object.entries(SIGNATURES)) {
  test(`§16.5 signature of "${challenge}"`, () => {
    const identity = Identity.fromSeed(fromHex(ED_SEED))
    assert.equal(identity.signChallenge(challenge), signature)
    assert.equal(verifyChallenge(identity.publicKey, challenge, signature), true)
    assert.equal(verifyChallenge(identity.publicKey, challenge + ' ', signature), false)
  })
}

test('§16.5 identity file private_key and public_key', () => {
  const doc = JSON.parse(formatIdentityFile(Identity.fromSeed(fromHex(ED_SEED))))
  assert.deepEqual(doc, { private_key: IDENTITY_PRIVATE_KEY_B64, public_key: ED_PUBLIC_B64 })
})

for (const [variant, key, expected] of [
  ['legacy', SECURE_KEY_LEGACY, SECURE_FRAME_LEGACY],
  ['hkdf', SECURE_KEY_HKDF, SECURE_FRAME_HKDF],
] as const) {
  test(`§16.6 port-443 ${variant} frame, client role, counter 1, "hi"`, () => {
    const CLIENT_ROLE = 2
    const cipher = new TunnelCipher(fromHex(key), variant)
    const nonces = new NonceSequence(new FixedRandom(u32be(CLIENT_ROLE)))
    const plaintext = ascii('hi')
    const frame = new Uint8Array(4 + 12 + plaintext.length + 16)
    frame.set(u32be(frame.length - 4), 0) // len = nonce + ciphertext + tag
    nonces.next(frame, 4)
    cipher.sealFrame(CLIENT_ROLE, frame.subarray(4, 16), plaintext, frame, 16)
    assert.equal(hex(frame), expected)
    const out = new Uint8Array(2)
    assert.equal(cipher.openFrame(CLIENT_ROLE, frame.subarray(4, 16), frame.subarray(16), out, 0), 2)
    assert.equal(Buffer.from(out).toString(), 'hi')
    // The server's role prefix as AAD must not open a client frame (HKDF only: legacy has no AAD).
    assert.equal(cipher.openFrame(1, frame.subarray(4, 16), frame.subarray(16), out, 0), variant === 'hkdf' ? -1 : 2)
  })
}
