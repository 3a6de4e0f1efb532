import { test } from 'node:test'
import assert from 'node:assert/strict'
import {
  IPPROTO_ICMPV6,
  IPPROTO_TCP,
  IPPROTO_UDP,
  adjustChecksum,
  adjustChecksumField,
  foldSum,
  setTransportChecksum,
  sumWords,
  transportChecksum,
  verifyTransportChecksum,
} from '../../src/tun/packets/checksum.js'
import { readU16 } from '../../src/bytes.js'
import { SeededRandom } from '../../src/random.js'
import { hex, loopback, naiveChecksum, naivePacket, naiveVerify, randomAddress, tcpHeader, udpHeader } from './packet-oracle.js'

test('RFC 1071 §3 example: words 0001 f203 f4f5 f6f7 sum to ddf2', () => {
  const b = hex('0001 f203 f4f5 f6f7')
  assert.equal(foldSum(sumWords(b, 0, b.length)), 0xddf2)
  assert.equal(naiveChecksum([b]), ~0xddf2 & 0xffff)
})

test('sumWords + foldSum equal the naive checksum on random buffers, lengths and odd offsets', () => {
  const rng = new SeededRandom(1071)
  for (let i = 0; i < 3000; i++) {
    const len = rng.int(i < 100 ? 70000 : 200)
    const buf = new Uint8Array(len + 3)
    rng.fill(buf)
    const start = rng.int(3)
    const end = start + rng.int(len + 1)
    const c = ~foldSum(sumWords(buf, start, end)) & 0xffff
    assert.equal(c, naiveChecksum([buf.subarray(start, end)]), `len ${end - start}`)
  }
})

test('all-ones and all-zero inputs fold correctly (no lost carries)', () => {
  const ones = new Uint8Array(131072).fill(0xff)
  assert.equal(foldSum(sumWords(ones, 0, ones.length)), 0xffff)
  assert.equal(foldSum(sumWords(new Uint8Array(64), 0, 64)), 0)
  // Large unfolded sums: the folded value is congruent mod 0xffff and in 1..0xffff.
  const rng = new SeededRandom(48)
  for (const s of [2 ** 48 - 1, 2 ** 32, 2 ** 32 - 1, 2 ** 52 + 12345, 0xffff, 0x10000]) {
    const f = foldSum(s)
    assert.ok(f >= 1 && f <= 0xffff)
    assert.equal(f % 0xffff, s % 0xffff)
  }
  for (let i = 0; i < 1000; i++) {
    const s = rng.u32() * 4096 + rng.u32()
    assert.equal(foldSum(s) % 0xffff, s % 0xffff)
  }
})

// Packets whose checksums the Linux kernel computed (raw sockets with IPV6_CHECKSUM, ::1 -> ::1).
const KERNEL = {
  udp: '9c400009000d1fb768656c6c6f', // 40000 -> 9, "hello"
  tcp: '9c41005001020304000000005002ffff9748000078', // 40001 -> 80, SYN, seq 0x01020304, data "x"
  echoRequest: '80003a011234000170696c6f742d74756e', // id 0x1234, seq 1, "pilot-tun"
  echoReply: '810039011234000170696c6f742d74756e',
}

function withHeader(protocol: number, l4hex: string): Uint8Array {
  return naivePacket({ src: loopback(), dst: loopback(), protocol, l4: hex(l4hex), keepChecksum: true })
}

for (const [name, protocol, l4hex, field] of [
  ['UDP', IPPROTO_UDP, KERNEL.udp, 6],
  ['TCP', IPPROTO_TCP, KERNEL.tcp, 16],
  ['ICMPv6 echo request', IPPROTO_ICMPV6, KERNEL.echoRequest, 2],
  ['ICMPv6 echo reply', IPPROTO_ICMPV6, KERNEL.echoReply, 2],
] as const) {
  test(`kernel vector: ${name} checksum verifies, and recomputing gives the kernel's value`, () => {
    const pkt = withHeader(protocol, l4hex)
    const expected = readU16(pkt, 40 + field)
    assert.ok(verifyTransportChecksum(pkt, 0, 40, pkt.length - 40, protocol))
    assert.ok(naiveVerify(pkt))
    assert.equal(setTransportChecksum(pkt, 0, 40, pkt.length - 40, protocol), expected)
    assert.equal(readU16(pkt, 40 + field), expected)
    pkt[pkt.length - 1]! ^= 1
    assert.equal(verifyTransportChecksum(pkt, 0, 40, pkt.length - 40, protocol), false)
  })
}

test('transportChecksum equals the naive oracle on random TCP, UDP and ICMPv6 packets', () => {
  const rng = new SeededRandom(8200)
  for (let i = 0; i < 2000; i++) {
    const protocol = [IPPROTO_TCP, IPPROTO_UDP, IPPROTO_ICMPV6][i % 3]!
    const data = new Uint8Array(rng.int(1500))
    rng.fill(data)
    const l4 = protocol === IPPROTO_TCP
      ? tcpHeader({ sport: rng.int(65536), dport: rng.int(65536), seq: rng.u32(), ack: rng.u32(), flags: rng.int(256), data })
      : protocol === IPPROTO_UDP ? udpHeader(rng.int(65536), rng.int(65536), data) : Uint8Array.of(128, 0, 0, 0, 1, 2, 3, 4, ...data)
    const pkt = naivePacket({ src: randomAddress(rng), dst: randomAddress(rng), protocol, l4 })
    const field = 40 + (protocol === IPPROTO_TCP ? 16 : protocol === IPPROTO_UDP ? 6 : 2)
    assert.ok(verifyTransportChecksum(pkt, 0, 40, pkt.length - 40, protocol))
    const naive = readU16(pkt, field)
    pkt[field] = 0
    pkt[field + 1] = 0
    const c = transportChecksum(pkt, 0, 40, pkt.length - 40, protocol)
    assert.equal(protocol === IPPROTO_UDP && c === 0 ? 0xffff : c, naive)
  }
})

test('a zero UDP checksum is invalid over IPv6 and a computed 0 is sent as 0xffff', () => {
  // Find a UDP packet whose checksum computes to 0 by adjusting one data word.
  const pkt = naivePacket({ src: loopback(), dst: loopback(), protocol: IPPROTO_UDP, l4: udpHeader(1, 2, new Uint8Array(2)) })
  pkt[46] = 0
  pkt[47] = 0
  const c = transportChecksum(pkt, 0, 40, 10, IPPROTO_UDP)
  // Adding c into the data word makes the sum 0xffff, so the checksum computes to 0.
  pkt[48] = c >>> 8
  pkt[49] = c & 0xff
  assert.equal(transportChecksum(pkt, 0, 40, 10, IPPROTO_UDP), 0)
  assert.equal(setTransportChecksum(pkt, 0, 40, 10, IPPROTO_UDP), 0xffff)
  assert.ok(verifyTransportChecksum(pkt, 0, 40, 10, IPPROTO_UDP))
  pkt[46] = 0
  pkt[47] = 0
  assert.equal(verifyTransportChecksum(pkt, 0, 40, 10, IPPROTO_UDP), false)
})

test('RFC 1624 incremental update equals full recomputation on 10,000 random rewrites', () => {
  const rng = new SeededRandom(1624)
  const fields: Array<[number, number]> = [] // [offset, length] of aligned regions a NAT rewrites
  for (let i = 0; i < 10_000; i++) {
    const protocol = [IPPROTO_TCP, IPPROTO_UDP, IPPROTO_ICMPV6][i % 3]!
    const data = new Uint8Array(rng.int(i % 7 === 0 ? 3000 : 200))
    rng.fill(data)
    const l4 = protocol === IPPROTO_TCP
      ? tcpHeader({ sport: rng.int(65536), dport: rng.int(65536), seq: rng.u32(), ack: rng.u32(), flags: rng.int(256), data })
      : protocol === IPPROTO_UDP ? udpHeader(rng.int(65536), rng.int(65536), data) : Uint8Array.of(128, 0, 0, 0, 1, 2, 3, 4, ...data)
    // Some packets with extreme addresses (all ones / all zeros) to hit carry corner cases.
    const src = i % 11 === 0 ? new Uint8Array(16).fill(0xff) : randomAddress(rng)
    const dst = i % 13 === 0 ? new Uint8Array(16) : randomAddress(rng)
    const pkt = naivePacket({ src, dst, protocol, l4 })
    const l4Len = pkt.length - 40
    const field = 40 + (protocol === IPPROTO_TCP ? 16 : protocol === IPPROTO_UDP ? 6 : 2)
    // Rewrite: source and/or destination address, and the ports (TCP/UDP), like the reflector.
    fields.length = 0
    if (rng.int(2)) fields.push([8, 16])
    if (rng.int(2)) fields.push([24, 16])
    if (protocol !== IPPROTO_ICMPV6 && rng.int(2)) fields.push([40, 4])
    if (protocol === IPPROTO_ICMPV6) fields.push([44, 4]) // echo id + seq
    if (fields.length === 0) fields.push([8, 32])
    let before = 0
    for (const [o, n] of fields) before += sumWords(pkt, o, o + n)
    for (const [o, n] of fields) {
      for (let k = 0; k < n; k++) pkt[o + k] = rng.int(4) === 0 ? [0, 0xff][rng.int(2)]! : rng.int(256)
    }
    let after = 0
    for (const [o, n] of fields) after += sumWords(pkt, o, o + n)
    adjustChecksumField(pkt, field, before, after, protocol === IPPROTO_UDP)
    const incremental = readU16(pkt, field)
    assert.ok(verifyTransportChecksum(pkt, 0, 40, l4Len, protocol), `packet ${i} does not verify after the update`)
    const full = setTransportChecksum(pkt, 0, 40, l4Len, protocol)
    assert.equal(incremental, full, `packet ${i}: incremental ${incremental.toString(16)} != full ${full.toString(16)}`)
  }
})

test('adjustChecksum: replacing words by themselves changes nothing', () => {
  for (const c of [0, 1, 0x1234, 0xfffe]) {
    for (const s of [0, 1, 0xffff, 0x12345, 0xfffff]) assert.equal(adjustChecksum(c, s, s), c)
  }
})
