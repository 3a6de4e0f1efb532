// The port-443 secure channel's pure core (docs/wire.md §13.6): the §16.6
// vectors through the real key swap, both key derivations, auto-detection,
// and the checks the reference lacks: reflection, replay, order, tampering,
// bad prefixes and lengths, low-order keys.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { X25519KeyPair } from '../../src/crypto/key-agreement.js'
import { TunnelCipher } from '../../src/crypto/aead.js'
import { SecureError } from '../../src/services/secure/errors.js'
import { fuzzDecoder } from '../util/fuzz.js'
import {
  SECURE_MAX_FRAME,
  SecureFrameDecoder,
  SecureHandshake,
  SecureSession,
  type SecureSessionOptions,
} from '../../src/services/secure/secure-core.js'

const ALICE_PRIVATE = '77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a'
const BOB_PRIVATE = '5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb'
// §16.6: client role, counter 1, plaintext "hi", the port-443 keys of §16.3.
const SECURE_KEY_HKDF = 'cddb817500383058931b912ed913882f4a6f0facbe47dd907100dac3913a2dbf'
const FRAME_LEGACY = '0000001e00000002000000000000000170d7738eec8cdaacc2648576fd8351998564'
const FRAME_HKDF = '0000001e000000020000000000000001ac6f6be655adbcaca42a05459458d96ece31'

const SECURE_KEY_LEGACY = 'b55aeee28f960d0c20cb8a1b955983e4162fa9ba1edabf539f26c426aea92927'
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex')
const fromHex = (h: string): Buffer => Buffer.from(h, 'hex')

/** The port-443 keys of Alice and Bob (§16.3). */
const KEYS = { legacy: Buffer.from(SECURE_KEY_LEGACY, 'hex'), hkdf: Buffer.from(SECURE_KEY_HKDF, 'hex') }

/** Alice is the client, Bob the server (the §16.3 keys). */
function pair(client: SecureSessionOptions = {}, server: SecureSessionOptions = {}): { c: SecureSession; s: SecureSession } {
  const alice = new SecureHandshake('client', X25519KeyPair.fromPrivateKey(fromHex(ALICE_PRIVATE)))
  const bob = new SecureHandshake('server', X25519KeyPair.fromPrivateKey(fromHex(BOB_PRIVATE)))
  return { c: alice.complete(bob.hello, client), s: bob.complete(alice.hello, server) }
}

/** A whole frame's body (length field stripped), checking the length field on the way. */
function body(frame: Buffer): Buffer {
  assert.equal(frame.readUInt32BE(0), frame.length - 4)
  return frame.subarray(4)
}

function code(fn: () => unknown): string {
  try {
    fn()
  } catch (err) {
    assert.ok(err instanceof SecureError, `not a SecureError: ${String(err)}`)
    return err.code
  }
  return 'no error'
}

test('§16.6 vectors: the client\'s first frame "hi" under the legacy key (no AAD) and the HKDF key (AAD = role prefix)', () => {
  assert.equal(hex(pair({ send: 'legacy' }).c.seal(Buffer.from('hi'))), FRAME_LEGACY)
  assert.equal(hex(pair({ send: 'hkdf' }).c.seal(Buffer.from('hi'))), FRAME_HKDF)
  // And the server side opens them, telling which derivation the client used.
  for (const [frame, kdf] of [[FRAME_LEGACY, 'legacy'], [FRAME_HKDF, 'hkdf']] as const) {
    const { s } = pair()
    assert.equal(s.open(body(fromHex(frame))).toString(), 'hi')
    assert.equal(s.peerKdf, kdf)
    assert.equal(s.kdf, kdf, 'a server in auto mode answers in the client\'s derivation')
  }
})

test('a conversation both ways, counters from 1, in each derivation', () => {
  for (const kdf of ['legacy', 'hkdf'] as const) {
    const { c, s } = pair({ send: kdf, receive: kdf }, { send: kdf, receive: kdf })
    for (let i = 0; i < 5; i++) {
      assert.equal(s.open(body(c.seal(Buffer.from(`ping ${i}`)))).toString(), `ping ${i}`)
      assert.equal(c.open(body(s.seal(Buffer.from(`pong ${i}`)))).toString(), `pong ${i}`)
    }
    assert.equal(c.sentFrames, 5)
    // Empty writes are frames too (len 28).
    const empty = c.seal(new Uint8Array(0))
    assert.equal(empty.length, 32)
    assert.equal(s.open(body(empty)).length, 0)
  }
})

test('a reflected frame (our own role prefix) is refused; the reference would decrypt it', () => {
  const { c, s } = pair()
  const mine = c.seal(Buffer.from('secret'))
  assert.equal(code(() => c.open(body(mine))), 'PT_SECURE_REFLECTED')
  // The same bytes are a valid frame for the peer: the key is the same both ways.
  assert.equal(s.open(body(mine)).toString(), 'secret')
  // And the server's frame sent back to the server:
  const theirs = s.seal(Buffer.from('answer'))
  assert.equal(code(() => s.open(body(theirs))), 'PT_SECURE_REFLECTED')
  assert.equal(c.open(body(theirs)).toString(), 'answer')
})

test('replayed and reordered frames are refused (counters must increase); the state does not move on a refusal', () => {
  const { c, s } = pair()
  const f1 = body(c.seal(Buffer.from('one')))
  const f2 = body(c.seal(Buffer.from('two')))
  const f3 = body(c.seal(Buffer.from('three')))
  assert.equal(s.open(f2).toString(), 'two')
  assert.equal(code(() => s.open(f1)), 'PT_SECURE_REPLAY', 'older than the last one')
  assert.equal(code(() => s.open(f2)), 'PT_SECURE_REPLAY', 'the same frame again')
  assert.equal(s.open(f3).toString(), 'three', 'a refused frame left the counter where it was')
})

test('tampering with the nonce, ciphertext, tag or length is refused; a forged high counter does not block the real frames', () => {
  const { c, s } = pair()
  const frame = body(c.seal(Buffer.from('payload')))
  for (const offset of [5, 11, 12, 14, frame.length - 1]) {
    const bad = Buffer.from(frame)
    bad[offset]! ^= 0x01
    assert.equal(code(() => s.open(bad)), 'PT_SECURE_AUTH', `byte ${offset} flipped`)
  }
  const forged = Buffer.from(frame)
  forged.writeUInt32BE(0xffff, 4) // counter 0xffff_0000_0001: fails auth, must not move the counter
  assert.equal(code(() => s.open(forged)), 'PT_SECURE_AUTH')
  assert.equal(s.open(frame).toString(), 'payload')
  // Neither role's prefix.
  const odd = Buffer.from(frame)
  odd.writeUInt32BE(3, 0)
  assert.equal(code(() => s.open(odd)), 'PT_SECURE_BAD_NONCE')
  // A body that cannot hold nonce and tag.
  assert.equal(code(() => s.open(frame.subarray(0, 27))), 'PT_SECURE_BAD_FRAME')
})

test('the two derivations do not mix: a fixed receiver refuses the other one\'s frames; auto learns once and then sticks', () => {
  const { c: legacyClient, s: hkdfServer } = pair({ send: 'legacy' }, { receive: 'hkdf' })
  assert.equal(code(() => hkdfServer.open(body(legacyClient.seal(Buffer.from('x'))))), 'PT_SECURE_AUTH')
  const auto = pair({ send: 'hkdf' }, {})
  assert.equal(auto.s.open(body(auto.c.seal(Buffer.from('a')))).toString(), 'a')
  assert.equal(auto.s.peerKdf, 'hkdf')
  // A legacy frame under the same counter sequence now fails: the variant is fixed.
  const legacyAlso = pair({ send: 'legacy' }).c
  legacyAlso.seal(Buffer.from('skip'))
  assert.equal(code(() => auto.s.open(body(legacyAlso.seal(Buffer.from('b'))))), 'PT_SECURE_AUTH')
  // A server that already sent keeps its own variant (it cannot take back what it sent).
  const early = pair({ send: 'hkdf', receive: 'legacy' }, { send: 'legacy' })
  assert.equal(early.c.open(body(early.s.seal(Buffer.from('first')))).toString(), 'first')
  early.s.open(body(early.c.seal(Buffer.from('hkdf now'))))
  assert.equal(early.s.kdf, 'legacy')
})

test('a first counter of 0 (the draft\'s senders) is accepted, and then only higher ones', () => {
  // A [D] client's first frame, built by hand with the §16.3 HKDF port-443 key: nonce 00000002 ‖ counter 0.
  const cipher = new TunnelCipher(fromHex(SECURE_KEY_HKDF), 'hkdf')
  const frameAt = (counter: number, text: string): Buffer => {
    const nonce = Buffer.alloc(12)
    nonce.writeUInt32BE(2, 0)
    nonce.writeUInt32BE(counter, 8)
    const out = Buffer.alloc(text.length + 16)
    cipher.sealFrame(2, nonce, Buffer.from(text), out, 0)
    return Buffer.concat([nonce, out])
  }
  const { s } = pair()
  assert.equal(s.open(frameAt(0, 'zero')).toString(), 'zero')
  assert.equal(s.peerKdf, 'hkdf')
  assert.equal(code(() => s.open(frameAt(0, 'zero again'))), 'PT_SECURE_REPLAY')
  assert.equal(s.open(frameAt(1, 'one')).toString(), 'one')
})

test('key swap: a low-order peer key or a wrong size fails with PT_SECURE_HANDSHAKE', () => {
  const h = new SecureHandshake('server')
  assert.equal(code(() => h.complete(new Uint8Array(32))), 'PT_SECURE_HANDSHAKE')
  assert.equal(code(() => h.complete(new Uint8Array(31))), 'PT_SECURE_HANDSHAKE')
  // Fresh handshakes give fresh keys: two sessions of the same client cannot read each other's frames.
  const a = new SecureHandshake('client')
  const b = new SecureHandshake('client')
  assert.notEqual(hex(a.hello), hex(b.hello))
})

test('frame decoder: any split of the byte stream gives the same frames; bad lengths fail before buffering', () => {
  const { c, s } = pair()
  const frames = [c.seal(Buffer.from('a')), c.seal(Buffer.alloc(70_000, 7)), c.seal(Buffer.from('last'))]
  const all = Buffer.concat(frames)
  for (const step of [1, 3, 4, 29, 4096, all.length]) {
    const d = new SecureFrameDecoder()
    const got: Buffer[] = []
    for (let o = 0; o < all.length; o += step) got.push(...d.push(all.subarray(o, o + step)))
    assert.deepEqual(got.map((g) => hex(g)), frames.map((f) => hex(f.subarray(4))), `step ${step}`)
    assert.equal(d.pending, 0)
  }
  assert.equal(s.open(new SecureFrameDecoder().push(frames[0]!)[0]!).toString(), 'a')
  const tooBig = Buffer.alloc(4)
  tooBig.writeUInt32BE(SECURE_MAX_FRAME + 1)
  assert.equal(code(() => new SecureFrameDecoder().push(tooBig)), 'PT_SECURE_BAD_FRAME')
  const tooSmall = Buffer.from('0000001b', 'hex') // 27 < 12 + 16
  assert.equal(code(() => new SecureFrameDecoder().push(tooSmall)), 'PT_SECURE_BAD_FRAME')
  // A smaller limit (what a caller may choose) applies the same way.
  const small = new SecureFrameDecoder(1024)
  assert.equal(code(() => small.push(frames[1]!)), 'PT_SECURE_BAD_FRAME')
})

test('fuzz: 10k random and mutated byte streams through the decoder and open: only SecureErrors, and a mutated frame never opens', () => {
  const { c } = pair()
  const frames = [c.seal(Buffer.from('a')), c.seal(Buffer.from('hello there')), c.seal(Buffer.alloc(300, 1))]
  const valid = new Set(frames.map((f) => hex(f)))
  const report = fuzzDecoder({
    iterations: 10_000,
    seed: 443,
    corpus: frames,
    maxRandomLength: 96,
    decode: (input) => {
      // A fresh server each time: the counter rule must not be what refuses the mutants.
      const s = new SecureSession('server', KEYS)
      const opened: Buffer[] = []
      for (const b of new SecureFrameDecoder(4096).push(input)) opened.push(s.open(b))
      return opened
    },
    onDecoded: (opened, input) => {
      if (opened.length > 0) assert.ok([...valid].some((v) => hex(input).startsWith(v)), `a frame that is not one of ours opened: ${hex(input)}`)
    },
    isRefusal: (err) => err instanceof SecureError,
  })
  assert.ok(report.rejected > 0)
})
