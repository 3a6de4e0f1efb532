import { test } from 'node:test'
import assert from 'node:assert/strict'
import { CryptoError } from '../../src/errors.js'
import { Identity, formatIdentityFile, parseIdentityFile, verifyChallenge, verifyEd25519 } from '../../src/crypto/identity.js'
import { fromHex, hex } from './helpers.js'

const SEED = fromHex('9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60')
const GO_FILE = `{
  "private_key": "nWGxne/9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2DXWpgBgrEKt9VL/tPJZAc6DuFy89qmIyWvAhpo9wdRGg==",
  "public_key": "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="
}`

const isCode = (code: string) => (e: unknown) => e instanceof CryptoError && e.code === code

test('file text is the Go reference format (2-space pretty JSON)', () => {
  assert.equal(formatIdentityFile(Identity.fromSeed(SEED)), GO_FILE)
})

test('verify helpers never throw on junk', () => {
  const identity = Identity.fromSeed(SEED)
  const signature = identity.sign(new Uint8Array(0))
  assert.equal(verifyEd25519(identity.publicKey, new Uint8Array(0), signature), true)
  assert.equal(verifyEd25519(new Uint8Array(31), new Uint8Array(0), signature), false)
  assert.equal(verifyEd25519(identity.publicKey, new Uint8Array(0), signature.subarray(1)), false)
  assert.equal(verifyEd25519(new Uint8Array(32).fill(0xff), new Uint8Array(0), signature), false)
  assert.equal(verifyChallenge(identity.publicKey, 'heartbeat:1', '***'), false)
  assert.equal(verifyChallenge(identity.publicKey, 'heartbeat:1', ''), false)
  assert.throws(() => Identity.fromSeed(new Uint8Array(31)), isCode('PT_CRYPTO_BAD_KEY'))
})

test('exportSeed returns the seed', () => {
  assert.equal(hex(Identity.fromSeed(SEED).exportSeed()), hex(SEED))
})

test('file text written by Go parses to the same key', () => {
  assert.equal(hex(parseIdentityFile(GO_FILE).publicKey), 'd75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a')
  assert.equal(formatIdentityFile(parseIdentityFile(GO_FILE)), GO_FILE)
})
