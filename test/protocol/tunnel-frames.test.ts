import { test } from 'node:test'
import assert from 'node:assert/strict'
import {
  classifyDatagram,
  datagramKindName,
  DatagramKind,
  Magic,
  writeMagic,
  decodePilt,
  encodePilt,
  PILT_PACKET_OFFSET,
  writePilsHeader,
  decodePils,
  encodePils,
  PILS_HEADER_SIZE,
  PILS_MIN_SIZE,
  PILS_TAG_SIZE,
  encodePilk,
  decodePilk,
  writePilk,
  PILK_SIZE,
  encodePila,
  decodePila,
  PILA_SIZE,
  PILA_X25519_OFFSET,
  PILA_ED25519_OFFSET,
  PILA_SIGNATURE_OFFSET,
  encodePilp,
  decodePilp,
} from '../../src/protocol/tunnel-frames.js'
import { PacketHeader, decodePacket, encodePacket, packetPayload, HEADER_SIZE } from '../../src/protocol/header.js'
import { DecodeError } from '../../src/errors.js'
import { SeededRandom } from '../../src/random.js'
import { fuzzDecoder, randomBytes } from '../util/fuzz.js'

const isReason = (reason: string) => (e: unknown) => e instanceof DecodeError && e.reason === reason
const h2b = (hex: string) => Buffer.from(hex, 'hex')

// docs/wire.md §16.2 P1 and §16.4.
const P1 = '11010000000000000001000000000002c00003e800000000000000000200145ed874'
const PILS_G =
  '50494c5300000001a1b2c3d4000000000000000156dfe3f8d3d878e2a8d87fc3412afca4dfc38b354ce7f0e1ecd34717b908c5461fcc585a0951448836deeed10cb8a3de519c'
const PILK_1 = '50494c4b000000018520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a'
const ALICE_X25519 = '8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a'
const ED25519_PUB = 'd75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a'
const PILA_1 =
  '50494c41000000018520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6ad75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a880af5e2ce0d44fc98432c2ff8c867567f42f442cd9e00c298199823844f1e7d54c5560c7c7480b2f90855b73178c665295538bd30e521f794c494e793e7610d'

test('magics are the ASCII names', () => {
  for (const [name, value] of Object.entries(Magic)) assert.equal(h2b(value.toString(16)).toString('ascii'), name)
})

test('§5.1 demultiplexing, in order', () => {
  const cases: Array<[string, DatagramKind]> = [
    ['', DatagramKind.DROP_EMPTY],
    ['00', DatagramKind.BEACON],
    ['04', DatagramKind.BEACON], // short beacon: still a beacon; its decoder refuses it
    ['0f00000000', DatagramKind.BEACON],
    ['10', DatagramKind.DROP_SHORT],
    ['504c49', DatagramKind.DROP_SHORT],
    ['50494c54', DatagramKind.PILT],
    ['50494c53', DatagramKind.PILS],
    ['50494c4b', DatagramKind.PILK],
    ['50494c41', DatagramKind.PILA],
    ['50494c50', DatagramKind.PILP],
    ['50494c58', DatagramKind.DROP_UNKNOWN_MAGIC],
    ['70696c74', DatagramKind.DROP_UNKNOWN_MAGIC], // lower-case "pilt"
    ['ffffffffff', DatagramKind.DROP_UNKNOWN_MAGIC],
  ]
  for (const [hex, kind] of cases) assert.equal(classifyDatagram(h2b(hex)), kind, `${hex} -> ${datagramKindName(kind)}`)
})

test('PILT wraps §16.2 P1; the inner packet sits at offset 4 and decodes as a view', () => {
  const frame = encodePilt(h2b(P1))
  assert.equal(frame.toString('hex'), '50494c54' + P1)
  assert.equal(classifyDatagram(frame), DatagramKind.PILT)
  const off = decodePilt(frame)
  assert.equal(off, PILT_PACKET_OFFSET)
  const h = decodePacket(frame, off, new PacketHeader())
  assert.equal(h.dstPort, 1000)
  assert.throws(() => decodePilt(frame.subarray(0, 37)), isReason('short-buffer'))
  assert.throws(() => decodePilt(h2b('50494c53' + P1)), isReason('bad-magic'))
  assert.throws(() => decodePilt(h2b('5049')), isReason('short-buffer'))
  assert.throws(() => encodePilt(new Uint8Array(33)), isReason('short-buffer'))
})

test('PILT header in headroom: writeMagic + encodePacketInto at offset 4', () => {
  const out = Buffer.alloc(4 + HEADER_SIZE)
  writeMagic(out, 0, Magic.PILT)
  out.set(h2b(P1), 4)
  assert.equal(out.toString('hex'), '50494c54' + P1)
  assert.throws(() => writeMagic(out, out.length - 3, Magic.PILT), isReason('short-buffer'))
})

test('§16.4 PILS [G] frame: layout fields', () => {
  const frame = h2b(PILS_G)
  assert.equal(frame.length, 70)
  assert.equal(classifyDatagram(frame), DatagramKind.PILS)
  const f = decodePils(frame)
  assert.equal(f.senderId, 1)
  assert.equal(Buffer.from(f.nonce).toString('hex'), 'a1b2c3d40000000000000001')
  assert.equal(f.sealed.length, 34 + PILS_TAG_SIZE) // P1 encrypted + tag
  assert.equal(f.sealed.buffer, frame.buffer, 'sealed is a view, not a copy')
  assert.equal(f.sealed.byteOffset, frame.byteOffset + PILS_HEADER_SIZE)
  assert.ok(encodePils(f.senderId, f.nonce, f.sealed).equals(frame))
  const out = Buffer.alloc(PILS_HEADER_SIZE)
  assert.equal(writePilsHeader(out, 0, 1, h2b('a1b2c3d40000000000000001')), PILS_HEADER_SIZE)
  assert.equal(out.toString('hex'), PILS_G.slice(0, 40))
})

test('PILS length checks', () => {
  const min = Buffer.alloc(PILS_MIN_SIZE)
  writeMagic(min, 0, Magic.PILS)
  assert.equal(decodePils(min).sealed.length, PILS_TAG_SIZE) // empty ciphertext, tag only
  assert.throws(() => decodePils(min.subarray(0, PILS_MIN_SIZE - 1)), isReason('short-buffer'))
  assert.throws(() => writePilsHeader(Buffer.alloc(20), 0, 1, new Uint8Array(11)), isReason('bad-length'))
  assert.throws(() => writePilsHeader(Buffer.alloc(19), 0, 1, new Uint8Array(12)), isReason('short-buffer'))
  assert.throws(() => writePilsHeader(Buffer.alloc(20), 0, -1, new Uint8Array(12)), isReason('bad-value'))
  assert.throws(() => encodePils(1, new Uint8Array(12), new Uint8Array(15)), isReason('short-buffer'))
})

test('§16.4 PILK bytes', () => {
  const frame = encodePilk({ senderId: 1, x25519Public: h2b(ALICE_X25519) })
  assert.equal(frame.toString('hex'), PILK_1)
  const f = decodePilk(h2b(PILK_1))
  assert.equal(f.senderId, 1)
  assert.equal(Buffer.from(f.x25519Public).toString('hex'), ALICE_X25519)
  assert.throws(() => decodePilk(h2b(PILK_1).subarray(0, 39)), isReason('short-buffer'))
  assert.equal(decodePilk(Buffer.concat([h2b(PILK_1), h2b('00')])).senderId, 1) // trailing bytes ignored
  assert.throws(() => encodePilk({ senderId: 1, x25519Public: new Uint8Array(31) }), isReason('bad-length'))
})

test('§16.4 PILA: field offsets and bytes', () => {
  const frame = h2b(PILA_1)
  assert.equal(frame.length, PILA_SIZE)
  assert.deepEqual([PILA_X25519_OFFSET, PILA_ED25519_OFFSET, PILA_SIGNATURE_OFFSET], [8, 40, 72])
  const f = decodePila(frame)
  assert.equal(f.senderId, 1)
  assert.equal(Buffer.from(f.x25519Public).toString('hex'), ALICE_X25519)
  assert.equal(Buffer.from(f.ed25519Public).toString('hex'), ED25519_PUB)
  assert.equal(Buffer.from(f.signature).toString('hex'), PILA_1.slice(2 * 72))
  assert.equal(f.signature.length, 64)
  assert.equal(f.signature.byteOffset, frame.byteOffset + 72, 'views, not copies')
  assert.ok(encodePila(f).equals(frame))
})

test('PILA: trailing bytes (capability data of later daemons) are ignored; short frames refused', () => {
  const long = Buffer.concat([h2b(PILA_1), h2b('0102030405')])
  assert.ok(encodePila(decodePila(long)).equals(h2b(PILA_1)))
  assert.throws(() => decodePila(long.subarray(0, 135)), isReason('short-buffer'))
  assert.throws(() => decodePila(h2b(PILK_1)), isReason('bad-magic'))
  assert.throws(() => encodePila({ ...decodePila(long), signature: new Uint8Array(63) }), isReason('bad-length'))
})

test('PILP: 4-byte form encoded, 4 and 8 accepted, other sizes refused', () => {
  assert.equal(encodePilp().toString('hex'), '50494c50')
  assert.equal(encodePilp(7).toString('hex'), '50494c5000000007')
  assert.deepEqual(decodePilp(h2b('50494c50')), { senderId: null })
  assert.deepEqual(decodePilp(h2b('50494c50fffffffe')), { senderId: 0xfffffffe })
  assert.throws(() => decodePilp(h2b('50494c5000')), isReason('bad-length'))
  assert.throws(() => decodePilp(h2b('50494c500000000000')), isReason('bad-length'))
  assert.throws(() => decodePilp(h2b('50494c')), isReason('short-buffer'))
})

test('random round trips encode -> decode -> encode (1,000 seeded cases per frame)', () => {
  const rnd = new SeededRandom(5)
  const h = new PacketHeader()
  for (let i = 0; i < 1000; i++) {
    const senderId = rnd.u32()
    // PILT around a random packet
    const payload = randomBytes(rnd, rnd.int(200))
    const pkt = encodePacket(
      PacketHeader.from({ flags: rnd.int(16), protocol: 1 + rnd.int(3), srcNode: rnd.u32(), dstNode: rnd.u32(), seq: rnd.u32(), ack: rnd.u32(), window: rnd.int(65536) }),
      payload,
    )
    const pilt = encodePilt(pkt)
    const off = decodePilt(pilt)
    decodePacket(pilt, off, h)
    assert.ok(encodePilt(encodePacket(h, packetPayload(pilt, off, h))).equals(pilt))
    // PILS
    const nonce = randomBytes(rnd, 12)
    const sealed = randomBytes(rnd, PILS_TAG_SIZE + rnd.int(200))
    const pils = encodePils(senderId, nonce, sealed)
    const s = decodePils(pils)
    assert.equal(s.senderId, senderId)
    assert.ok(encodePils(s.senderId, s.nonce, s.sealed).equals(pils))
    // PILK, written at an offset
    const pilkOut = Buffer.alloc(PILK_SIZE + 3)
    writePilk(pilkOut, 3, { senderId, x25519Public: randomBytes(rnd, 32) })
    const k = decodePilk(pilkOut.subarray(3))
    assert.equal(k.senderId, senderId)
    assert.ok(encodePilk(k).equals(pilkOut.subarray(3)))
    // PILA
    const pila = encodePila({ senderId, x25519Public: randomBytes(rnd, 32), ed25519Public: randomBytes(rnd, 32), signature: randomBytes(rnd, 64) })
    assert.ok(encodePila(decodePila(pila)).equals(pila))
    // PILP
    const pilp = encodePilp(rnd.int(2) === 0 ? null : senderId)
    assert.ok(encodePilp(decodePilp(pilp).senderId).equals(pilp))
  }
})

test('fuzz: the demux and every frame decoder each get 100k inputs and give a value or a DecodeError', () => {
  const corpus = [
    encodePilt(h2b(P1)),
    h2b(PILS_G),
    h2b(PILK_1),
    h2b(PILA_1),
    encodePilp(),
    encodePilp(9),
  ]
  const decoders = { decodePilt, decodePils, decodePilk, decodePila, decodePilp, classifyDatagram }
  let seed = 11
  for (const [name, decode] of Object.entries(decoders)) {
    const report = fuzzDecoder<unknown>({ iterations: 100_000, seed: seed++, corpus, maxRandomLength: 160, decode })
    assert.ok(report.accepted > 0, `${name} accepts something`)
    if (name !== 'classifyDatagram') assert.ok(report.reasons.has('short-buffer') || report.reasons.has('bad-length'), `${name} rejects short input`)
  }
})
