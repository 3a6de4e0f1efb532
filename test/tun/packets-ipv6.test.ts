import { test } from 'node:test'
import assert from 'node:assert/strict'
import {
  IPV6_HEADER_SIZE,
  Ipv6Packet,
  NEXT_DEST_OPTIONS,
  NEXT_FRAGMENT,
  NEXT_HOP_BY_HOP,
  NEXT_NO_NEXT,
  NEXT_ROUTING,
  PROTO_UNSUPPORTED,
  parseIpv6,
  parseIpv6Into,
  writeIpv6Header,
} from '../../src/tun/packets/ipv6.js'
import { IPPROTO_ICMPV6, IPPROTO_TCP, IPPROTO_UDP } from '../../src/tun/packets/checksum.js'
import { DecodeError } from '../../src/errors.js'
import { SeededRandom } from '../../src/random.js'
import { fuzzDecoder } from '../util/fuzz.js'
import { hex, naivePacket, randomAddress, tcpHeader, udpHeader } from './packet-oracle.js'

const A = hex('fd50494c4f540000000000000000002a')
const P = hex('fd50494c4f5400000000000000000007')
const isReason = (reason: string) => (e: unknown) => e instanceof DecodeError && e.reason === reason

const opts8 = () => new Uint8Array(8) // pad options: length 0 = 8 bytes, all Pad1/PadN zeros are fine for us
const frag = (offsetUnits: number, more: boolean) => {
  const b = new Uint8Array(8)
  const w = (offsetUnits << 3) | (more ? 1 : 0)
  b[2] = w >>> 8
  b[3] = w & 0xff
  b[7] = 0x42
  return b
}

test('plain TCP: every header field and the upper-layer bounds', () => {
  const l4 = tcpHeader({ sport: 1234, dport: 80, seq: 1, ack: 0, flags: 2, data: new Uint8Array(5) })
  const pkt = naivePacket({ src: A, dst: P, protocol: IPPROTO_TCP, l4, hopLimit: 17, trafficClass: 0xb8, flowLabel: 0xabcde })
  const v = parseIpv6(pkt)
  assert.equal(v.buf, pkt)
  assert.equal(v.offset, 0)
  assert.equal(v.length, pkt.length)
  assert.equal(v.payloadLength, l4.length)
  assert.equal(v.trafficClass, 0xb8)
  assert.equal(v.flowLabel, 0xabcde)
  assert.equal(v.hopLimit, 17)
  assert.equal(v.nextHeader, IPPROTO_TCP)
  assert.equal(v.protocol, IPPROTO_TCP)
  assert.equal(v.l4Offset, 40)
  assert.equal(v.l4Length, l4.length)
  assert.equal(v.srcOffset, 8)
  assert.equal(v.dstOffset, 24)
  assert.equal(v.fragmented, false)
  assert.ok(v.isWholeSupported)
})

test('a packet at an offset inside a larger buffer, with trailing bytes past the payload length', () => {
  const pkt = naivePacket({ src: A, dst: P, protocol: IPPROTO_UDP, l4: udpHeader(1, 2, Uint8Array.of(9, 9)) })
  const buf = new Uint8Array(pkt.length + 40)
  buf.set(pkt, 30)
  const v = new Ipv6Packet()
  assert.equal(parseIpv6Into(v, buf, 30, pkt.length + 10), null)
  assert.equal(v.offset, 30)
  assert.equal(v.length, pkt.length)
  assert.equal(v.l4Offset, 70)
  assert.equal(v.l4Length, 10)
  assert.equal(v.srcOffset, 38)
})

test('extension headers: hop-by-hop, destination options, routing and a first fragment are walked', () => {
  const l4 = Uint8Array.of(128, 0, 0, 0, 0, 1, 0, 2)
  const longOpts = new Uint8Array(24)
  longOpts[1] = 2 // (2 + 1) * 8 = 24 bytes
  const pkt = naivePacket({
    src: A,
    dst: P,
    protocol: IPPROTO_ICMPV6,
    l4,
    ext: [[NEXT_HOP_BY_HOP, opts8()], [NEXT_DEST_OPTIONS, longOpts], [NEXT_ROUTING, opts8()], [NEXT_FRAGMENT, frag(0, true)]],
  })
  const v = parseIpv6(pkt)
  assert.equal(v.nextHeader, NEXT_HOP_BY_HOP)
  assert.equal(v.protocol, IPPROTO_ICMPV6)
  assert.equal(v.l4Offset, 40 + 8 + 24 + 8 + 8)
  assert.equal(v.l4Length, 8)
  assert.equal(v.fragmented, true)
  assert.equal(v.moreFragments, true)
  assert.equal(v.fragmentOffset, 0)
  assert.equal(v.isWholeSupported, false)
})

test('a non-first fragment and unknown upper layers are "unsupported", not errors', () => {
  const later = parseIpv6(naivePacket({ src: A, dst: P, protocol: IPPROTO_TCP, l4: new Uint8Array(16), ext: [[NEXT_FRAGMENT, frag(185, false)]] }))
  assert.equal(later.protocol, PROTO_UNSUPPORTED)
  assert.equal(later.unsupportedHeader, NEXT_FRAGMENT)
  assert.equal(later.fragmentOffset, 185)
  assert.equal(later.moreFragments, false)
  assert.equal(later.l4Offset, 48)
  for (const nh of [NEXT_NO_NEXT, 50 /* ESP */, 51 /* AH */, 135, 4, 253]) {
    const v = parseIpv6(naivePacket({ src: A, dst: P, protocol: nh, l4: new Uint8Array(12) }))
    assert.equal(v.protocol, PROTO_UNSUPPORTED)
    assert.equal(v.unsupportedHeader, nh)
    assert.equal(v.l4Offset, 40)
  }
  const empty = parseIpv6(naivePacket({ src: A, dst: P, protocol: NEXT_NO_NEXT, l4: new Uint8Array(0) }))
  assert.equal(empty.payloadLength, 0)
  assert.equal(empty.l4Length, 0)
})

test('malformed packets give typed reasons', () => {
  const good = naivePacket({ src: A, dst: P, protocol: IPPROTO_UDP, l4: udpHeader(1, 2, new Uint8Array(4)) })
  assert.throws(() => parseIpv6(good.subarray(0, 39)), isReason('short-buffer'))
  assert.throws(() => parseIpv6(new Uint8Array(0)), isReason('short-buffer'))
  const v4 = Uint8Array.from(good)
  v4[0] = 0x45
  assert.throws(() => parseIpv6(v4), isReason('bad-protocol'))
  assert.throws(() => parseIpv6(good.subarray(0, good.length - 1)), isReason('bad-length'))
  assert.throws(() => parseIpv6(good, 0, good.length + 1), isReason('short-buffer'))
  assert.throws(() => parseIpv6(good, -1), isReason('short-buffer'))
  // Extension header longer than the payload.
  const longExt = new Uint8Array(8)
  longExt[1] = 9
  assert.throws(() => parseIpv6(naivePacket({ src: A, dst: P, protocol: IPPROTO_TCP, l4: new Uint8Array(20), ext: [[NEXT_DEST_OPTIONS, longExt]] })), isReason('bad-length'))
  // Extension header cut short.
  assert.throws(() => parseIpv6(naivePacket({ src: A, dst: P, protocol: NEXT_DEST_OPTIONS, l4: new Uint8Array(4) })), isReason('bad-length'))
  // Hop-by-hop after another header.
  assert.throws(() => parseIpv6(naivePacket({ src: A, dst: P, protocol: IPPROTO_TCP, l4: new Uint8Array(20), ext: [[NEXT_DEST_OPTIONS, opts8()], [NEXT_HOP_BY_HOP, opts8()]] })), isReason('bad-value'))
  // Too many extension headers.
  const many: Array<[number, Uint8Array]> = Array.from({ length: 9 }, () => [NEXT_DEST_OPTIONS, opts8()])
  assert.throws(() => parseIpv6(naivePacket({ src: A, dst: P, protocol: IPPROTO_TCP, l4: new Uint8Array(20), ext: many })), isReason('bad-value'))
  const v = new Ipv6Packet()
  assert.equal(parseIpv6Into(v, v4), 'bad-protocol')
})

test('writeIpv6Header matches the DataView twin, and round-trips through the parser', () => {
  const rng = new SeededRandom(40)
  for (let i = 0; i < 500; i++) {
    const src = randomAddress(rng)
    const dst = randomAddress(rng)
    const l4 = udpHeader(rng.int(65536), rng.int(65536), new Uint8Array(rng.int(100)))
    const tc = rng.int(256)
    const fl = rng.int(1 << 20)
    const hl = rng.int(256)
    const expected = naivePacket({ src, dst, protocol: IPPROTO_UDP, l4, hopLimit: hl, trafficClass: tc, flowLabel: fl, keepChecksum: true })
    const out = new Uint8Array(expected.length + 8)
    out.set(l4, 48)
    const n = writeIpv6Header(out, 8, l4.length, IPPROTO_UDP, hl, src, 0, dst, 0, tc, fl)
    assert.equal(n, expected.length)
    assert.deepEqual(out.subarray(8), expected)
    const v = parseIpv6(out, 8)
    assert.equal(v.trafficClass, tc)
    assert.equal(v.flowLabel, fl)
    assert.equal(v.hopLimit, hl)
  }
  assert.throws(() => writeIpv6Header(new Uint8Array(39), 0, 0, 6, 64, A, 0, P, 0), isReason('short-buffer'))
  assert.throws(() => writeIpv6Header(new Uint8Array(40), 0, 70000, 6, 64, A, 0, P, 0), isReason('bad-length'))
})

test('fuzz: 100,000 random and mutated packets only ever fail with DecodeError, and accepted views stay in bounds', () => {
  const corpus = [
    naivePacket({ src: A, dst: P, protocol: IPPROTO_TCP, l4: tcpHeader({ sport: 1, dport: 2, seq: 3, ack: 4, flags: 0x12, data: new Uint8Array(30) }) }),
    naivePacket({ src: A, dst: P, protocol: IPPROTO_UDP, l4: udpHeader(5353, 53, new Uint8Array(20)) }),
    naivePacket({ src: A, dst: P, protocol: IPPROTO_ICMPV6, l4: Uint8Array.of(128, 0, 0, 0, 0, 1, 0, 1), ext: [[NEXT_HOP_BY_HOP, opts8()], [NEXT_FRAGMENT, frag(0, true)]] }),
    naivePacket({ src: A, dst: P, protocol: IPPROTO_TCP, l4: new Uint8Array(20), ext: [[NEXT_DEST_OPTIONS, opts8()], [NEXT_ROUTING, opts8()]] }),
  ]
  const view = new Ipv6Packet()
  const report = fuzzDecoder({
    iterations: 100_000,
    seed: 0x1e7,
    corpus,
    maxRandomLength: 120,
    decode: (b) => {
      // Most random bytes fail the version check; give half of them a 6 so the walk is exercised.
      if (b.length > 0 && (b[0]! & 1) === 1) b[0] = 0x60 | (b[0]! & 0x0f)
      return parseIpv6(b, 0, b.length, view)
    },
    onDecoded: (v, input) => {
      assert.ok(v.length >= IPV6_HEADER_SIZE && v.length <= input.length)
      assert.ok(v.l4Offset >= 40 && v.l4Offset + v.l4Length === v.offset + v.length)
      assert.ok(v.l4Length >= 0)
    },
  })
  assert.ok(report.accepted > 10_000, `accepted ${report.accepted}`)
  assert.ok(report.rejected > 10_000, `rejected ${report.rejected}`)
})
