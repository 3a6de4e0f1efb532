// 100k random and mutated inputs for the decoders whose own test files do not
// fuzz them at that scale: SACK option, IPv6 text and prefix, identity file,
// and the PILS path (frame decode + AEAD open).
import { DEFAULT_OVERLAY_PREFIX } from '../../src/protocol/ipv6-mapping.js'
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { decodeSack, encodeSack, sackBlockCount } from '../../src/protocol/sack.js'
import { parseIpv6, formatIpv6, parseOverlayPrefix, ipv6TextToPilot, pilotToIpv6Text } from '../../src/protocol/ipv6-mapping.js'
import { decodePils, encodePils } from '../../src/protocol/tunnel-frames.js'
import { Identity, formatIdentityFile, parseIdentityFile } from '../../src/crypto/identity.js'
import { TunnelCipher, NonceSequence } from '../../src/crypto/aead.js'
import { CryptoError } from '../../src/errors.js'
import { SeededRandom } from '../../src/random.js'
import { fuzzDecoder } from '../util/fuzz.js'

const N = 100_000
/** A frame's identity for lookup: all bytes, minus the sender ID where the variant does not authenticate it. */
function frameKey(frame: Uint8Array, variant: 'legacy' | 'hkdf'): string {
  const copy = Buffer.from(frame)
  if (variant === 'legacy') copy.fill(0, 4, 8)
  return copy.toString('hex')
}
const text = (b: Uint8Array) => Buffer.from(b).toString('latin1')

test('SACK option: 100k inputs; whatever is recognised re-encodes to its prefix', () => {
  const corpus = [
    encodeSack([{ left: 8193, right: 12289 }]),
    encodeSack([{ left: 1, right: 2 }, { left: 5, right: 9 }, { left: 0xfffffff0, right: 4 }, { left: 100, right: 200 }]),
  ]
  const report = fuzzDecoder({
    iterations: N,
    seed: 21,
    corpus,
    maxRandomLength: 48,
    decode: (b) => ({ blocks: decodeSack(b), count: sackBlockCount(b) }),
    onDecoded: ({ blocks, count }, input) => {
      assert.equal(blocks === null ? 0 : blocks.length, count)
      if (blocks) assert.deepEqual(encodeSack(blocks), input.subarray(0, 5 + 8 * count))
    },
  })
  assert.equal(report.rejected, 0, 'the SACK detector never throws: non-options are data')
})

test('IPv6 text and overlay prefix parsers: 100k inputs each', () => {
  const addrCorpus = ['fd50:494c:4f54::2a', '::1', 'fe80::1%eth0', '1:2:3:4:5:6:7:8', '::ffff:1.2.3.4', 'fd50:494c:4f54:0:0:0:ffff:ffff'].map((s) => Buffer.from(s))
  const r1 = fuzzDecoder({
    iterations: N,
    seed: 22,
    corpus: addrCorpus,
    maxRandomLength: 48,
    decode: (b) => parseIpv6(text(b)),
    onDecoded: (bytes) => assert.deepEqual(parseIpv6(formatIpv6(bytes)), bytes),
  })
  assert.ok(r1.accepted > 0 && r1.rejected > 0)
  const prefixCorpus = ['fd50:494c:4f54::/48', '2001:db8:1::/48', 'fd00::/8', 'fd50:494c:4f54::/64'].map((s) => Buffer.from(s))
  const r2 = fuzzDecoder({ iterations: N, seed: 23, corpus: prefixCorpus, maxRandomLength: 48, decode: (b) => parseOverlayPrefix(text(b)) })
  assert.ok(r2.accepted > 0 && r2.rejected > 0)
  const r3 = fuzzDecoder({
    iterations: N,
    seed: 24,
    corpus: addrCorpus,
    maxRandomLength: 48,
    decode: (b) => ipv6TextToPilot(text(b), DEFAULT_OVERLAY_PREFIX),
    onDecoded: (a) => { if (a) assert.deepEqual(ipv6TextToPilot(pilotToIpv6Text(a, DEFAULT_OVERLAY_PREFIX), DEFAULT_OVERLAY_PREFIX), a) },
  })
  assert.ok(r3.accepted > 0)
})

test('identity file parser: 100k mutated files give an identity or a CryptoError', () => {
  const ids = [Identity.fromSeed(new Uint8Array(32).fill(7)), Identity.fromSeed(new Uint8Array(32).fill(9))]
  const report = fuzzDecoder({
    iterations: N,
    seed: 25,
    corpus: ids.map((id) => Buffer.from(formatIdentityFile(id))),
    maxRandomLength: 200,
    decode: (b) => parseIdentityFile(text(b)),
    isRefusal: (e) => e instanceof CryptoError,
    onDecoded: (id) => assert.equal(id.publicKey.length, 32),
  })
  assert.ok(report.accepted > 0 && report.rejected > report.accepted)
})

test('PILS receive path: 100k mutated frames either fail to decode, fail to open (-1), or are the original', () => {
  const rng = new SeededRandom(26)
  const key = new Uint8Array(32)
  rng.fill(key)
  for (const variant of ['legacy', 'hkdf'] as const) {
    const cipher = new TunnelCipher(key, variant)
    const nonces = new NonceSequence(rng)
    const originals = new Map<string, string>()
    const corpus: Uint8Array[] = []
    for (let i = 0; i < 16; i++) {
      const nonce = new Uint8Array(12)
      nonces.next(nonce, 0)
      const plain = new Uint8Array(rng.int(200))
      rng.fill(plain)
      const sealed = new Uint8Array(plain.length + 16)
      cipher.sealFrame(7, nonce, plain, sealed, 0)
      const frame = encodePils(7, nonce, sealed)
      corpus.push(frame)
      originals.set(frameKey(frame, variant), Buffer.from(plain).toString('hex'))
    }
    const out = new Uint8Array(70_000)
    let opened = 0
    fuzzDecoder({
      iterations: N / 2,
      seed: variant === 'legacy' ? 27 : 28,
      corpus,
      maxRandomLength: 120,
      decode: (b) => {
        const f = decodePils(b)
        const n = cipher.openFrame(f.senderId, f.nonce, f.sealed, out, 0)
        if (n >= 0) {
          // Only an unmodified frame may authenticate. Legacy has no AAD, so the
          // sender ID is not covered (docs/wire.md §17 item 2: the tunnel checks the inner source).
          opened++
          assert.equal(Buffer.from(out.subarray(0, n)).toString('hex'), originals.get(frameKey(b, variant)))
        }
        return n
      },
    })
    assert.ok(opened < N / 20, `${variant}: only unmutated frames open (opened ${opened})`)
  }
})
