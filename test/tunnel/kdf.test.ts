// The KDF chooser (kdf.ts): the starting variant per mode, and what `open` learns from a frame.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { TAG_SIZE, TunnelCipher, type KdfVariant } from '../../src/crypto/index.js'
import { nullLogger } from '../../src/logger.js'
import { DATA_OFFSET, KdfChooser, sealingCipher, type KdfMode } from '../../src/tunnel/kdf.js'
import { Peer } from '../../src/tunnel/peer.js'

const SENDER = 7

/** A peer whose ciphers under both variants exist (keys made up; the peer holds the same ones). */
function peerWithKeys(): { peer: Peer; legacy: TunnelCipher; hkdf: TunnelCipher } {
  const peer = new Peer(SENDER)
  const legacy = new TunnelCipher(randomBytes(32), 'legacy')
  const hkdf = new TunnelCipher(randomBytes(32), 'hkdf')
  peer.legacy = legacy
  peer.hkdf = hkdf
  return { peer, legacy, hkdf }
}

let counter = 1
/** A PILS body sealed by SENDER with `cipher` (the 20-byte header holds the nonce at 8). */
function sealed(cipher: TunnelCipher, text: string): Buffer {
  const plain = Buffer.from(text)
  const out = Buffer.alloc(DATA_OFFSET + plain.length + TAG_SIZE)
  const nonce = Buffer.alloc(12)
  nonce.writeUInt32BE(0xabcd0000, 0)
  nonce.writeUInt32BE(counter++, 8)
  out.set(nonce, 8)
  cipher.sealFrame(SENDER, nonce, plain, out, DATA_OFFSET)
  return out
}

function opened(frame: Buffer, n: number): string {
  return frame.subarray(DATA_OFFSET, DATA_OFFSET + n).toString()
}

test('choose: auto starts legacy unless the peer advertised HKDF, unconfirmed; forced modes are confirmed', () => {
  const cases: [KdfMode, boolean, KdfVariant, boolean][] = [
    ['auto', false, 'legacy', false],
    ['auto', true, 'hkdf', false],
    ['legacy', true, 'legacy', true],
    ['hkdf', false, 'hkdf', true],
  ]
  for (const [mode, advertises, kdf, confirmed] of cases) {
    const peer = new Peer(1)
    peer.peerAdvertisesHkdf = advertises
    peer.kdfConfirmed = !confirmed // must be overwritten either way
    new KdfChooser(mode, nullLogger).choose(peer)
    assert.deepEqual([peer.kdf, peer.kdfConfirmed], [kdf, confirmed], `${mode}, advertises ${advertises}`)
  }
})

test('our PILA advertises HKDF in auto and hkdf mode, not in legacy mode', () => {
  assert.equal(new KdfChooser('auto', nullLogger).advertisesHkdf, true)
  assert.equal(new KdfChooser('hkdf', nullLogger).advertisesHkdf, true)
  assert.equal(new KdfChooser('legacy', nullLogger).advertisesHkdf, false)
})

test('auto: a frame that opens only with the other variant switches the peer to it, confirmed', () => {
  const chooser = new KdfChooser('auto', nullLogger)
  const { peer, hkdf } = peerWithKeys()
  chooser.choose(peer)
  assert.equal(peer.kdf, 'legacy')
  const frame = sealed(hkdf, 'hello')
  const n = chooser.open(peer, SENDER, frame)
  assert.equal(opened(frame, n), 'hello')
  assert.deepEqual([peer.kdf, peer.kdfConfirmed], ['hkdf', true])
  assert.equal(sealingCipher(peer), hkdf)
})

test('auto: a frame that opens with the expected variant confirms it; once confirmed, the other is never tried', () => {
  const chooser = new KdfChooser('auto', nullLogger)
  const { peer, legacy, hkdf } = peerWithKeys()
  chooser.choose(peer)
  const n = chooser.open(peer, SENDER, sealed(legacy, 'one'))
  assert.ok(n > 0)
  assert.deepEqual([peer.kdf, peer.kdfConfirmed], ['legacy', true])
  // Confirmed: a frame under the other variant is a failure, not a reason to switch.
  assert.equal(chooser.open(peer, SENDER, sealed(hkdf, 'two')), -1)
  assert.deepEqual([peer.kdf, peer.kdfConfirmed], ['legacy', true])
  assert.equal(sealingCipher(peer), legacy)
})

test('forced mode: a frame under the other variant fails and teaches nothing', () => {
  const chooser = new KdfChooser('hkdf', nullLogger)
  const { peer, legacy } = peerWithKeys()
  chooser.choose(peer)
  assert.equal(chooser.open(peer, SENDER, sealed(legacy, 'x')), -1)
  assert.equal(peer.kdf, 'hkdf')
})

test('a frame under the wrong key, or tampered, fails with every variant', () => {
  const chooser = new KdfChooser('auto', nullLogger)
  const { peer, legacy } = peerWithKeys()
  chooser.choose(peer)
  const stranger = new TunnelCipher(randomBytes(32), 'legacy')
  assert.equal(chooser.open(peer, SENDER, sealed(stranger, 'x')), -1)
  const frame = sealed(legacy, 'tampered')
  frame[frame.length - 1]! ^= 1
  assert.equal(chooser.open(peer, SENDER, frame), -1)
  // Failures teach nothing.
  assert.equal(peer.kdfConfirmed, false)
})

test('after our key rotation: frames under the old keys still open until one under the new keys arrives', () => {
  const chooser = new KdfChooser('legacy', nullLogger)
  const old = peerWithKeys()
  const fresh = peerWithKeys()
  const peer = fresh.peer
  peer.prevLegacy = old.legacy
  peer.prevHkdf = old.hkdf
  chooser.choose(peer)
  let frame = sealed(old.legacy, 'in flight')
  assert.equal(opened(frame, chooser.open(peer, SENDER, frame)), 'in flight')
  assert.equal(peer.prevLegacy, old.legacy, 'old keys kept while the peer still uses them')
  frame = sealed(fresh.legacy, 'new key')
  assert.equal(opened(frame, chooser.open(peer, SENDER, frame)), 'new key')
  assert.deepEqual([peer.prevLegacy, peer.prevHkdf], [null, null], 'old keys dropped once the new ones work')
  assert.equal(chooser.open(peer, SENDER, sealed(old.legacy, 'late')), -1)
})
