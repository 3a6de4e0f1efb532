import { test } from 'node:test'
import assert from 'node:assert/strict'
import * as crypto from '../../src/crypto/index.js'

test('index re-exports the public API', () => {
  for (const name of [
    'Identity', 'X25519KeyPair', 'TunnelCipher', 'NonceSequence', 'ReplayWindow', 'ReplayWindows',
    'signPila', 'verifyPila', 'parseIdentityFile', 'formatIdentityFile', 'agreeSessionKeys', 'CryptoErrorCode',
  ]) {
    assert.ok(name in crypto && (crypto as Record<string, unknown>)[name] !== undefined, name)
  }
})

test('crypto stays sans-IO: no file I/O in its public API (identity files are read and written by daemon/identity-file)', () => {
  for (const name of ['saveIdentityFile', 'loadIdentityFile']) assert.equal(name in crypto, false, name)
})

test('every crypto error code is PT_CRYPTO_* and unique', () => {
  const codes = Object.values(crypto.CryptoErrorCode)
  for (const code of codes) assert.match(code, /^PT_CRYPTO_[A-Z_]+$/)
  assert.equal(new Set(codes).size, codes.length)
})
