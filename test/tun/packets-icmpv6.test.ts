import { test } from 'node:test'
import assert from 'node:assert/strict'
import { IPPROTO_ICMPV6, IPPROTO_TCP, IPPROTO_UDP, verifyTransportChecksum } from '../../src/tun/packets/checksum.js'
import { IPV6_MIN_MTU, parseIpv6 } from '../../src/tun/packets/ipv6.js'
import {
  ICMPV6_DEST_UNREACHABLE,
  ICMPV6_ECHO_REPLY,
  ICMPV6_ECHO_REQUEST,
  ICMPV6_HEADROOM,
  ICMPV6_MAX_QUOTE,
  ICMPV6_PACKET_TOO_BIG,
  Icmpv6Echo,
  UNREACH_ADMIN_PROHIBITED,
  UNREACH_NO_ROUTE,
  UNREACH_PORT,
  buildDestinationUnreachable,
  buildIcmpv6Echo,
  buildPacketTooBig,
  echoRequestToReplyInPlace,
  icmpv6ErrorSuppression,
  parseIcmpv6EchoInto,
} from '../../src/tun/packets/icmpv6.js'
import { readU32 } from '../../src/bytes.js'
import { hex, loopback, naivePacket, naiveVerify, tcpHeader, udpHeader } from './packet-oracle.js'

const A = hex('fd50494c4f540000000000000000002a')
const P = hex('fd50494c4f5400000000000000000007')
const MULTICAST = hex('ff020000000000000000000000000001')

// Captured from Linux (raw ICMPv6 sockets on ::1): an echo request, the kernel's reply, and the
// kernel's Port Unreachable for a UDP datagram ::1:40000 -> ::1:9 (quote = whole invoking packet).
const KERNEL_ECHO_REQUEST = '80003a011234000170696c6f742d74756e'
const KERNEL_ECHO_REPLY = '810039011234000170696c6f742d74756e'
const KERNEL_PORT_UNREACH =
  '0104297000000000' + '600b63d8000d114000000000000000000000000000000001000000000000000000000000000000019c400009000d1fb768656c6c6f'

test('echo: build reproduces the kernel request; parse reads id, seq and data', () => {
  const data = Buffer.from('pilot-tun')
  const out = new Uint8Array(ICMPV6_HEADROOM + data.length)
  out.set(data, ICMPV6_HEADROOM)
  const n = buildIcmpv6Echo(out, 0, ICMPV6_ECHO_REQUEST, loopback(), 0, loopback(), 0, 0x1234, 1, data.length)
  assert.equal(Buffer.from(out.subarray(40, n)).toString('hex'), KERNEL_ECHO_REQUEST)
  const v = parseIpv6(out)
  const e = new Icmpv6Echo()
  assert.equal(parseIcmpv6EchoInto(e, out, v.l4Offset, v.l4Length), null)
  assert.equal(e.type, ICMPV6_ECHO_REQUEST)
  assert.equal(e.id, 0x1234)
  assert.equal(e.seq, 1)
  assert.equal(Buffer.from(out.subarray(e.dataOffset, e.dataOffset + e.dataLength)).toString(), 'pilot-tun')
  assert.equal(parseIcmpv6EchoInto(e, out, v.l4Offset, 7), 'short-buffer')
  out[40] = 1
  assert.equal(parseIcmpv6EchoInto(e, out, v.l4Offset, v.l4Length), 'bad-type')
})

test('echoRequestToReplyInPlace gives the kernel reply, addresses swapped, checksum still valid', () => {
  const pkt = naivePacket({ src: A, dst: P, protocol: IPPROTO_ICMPV6, l4: hex(KERNEL_ECHO_REQUEST) })
  const v = parseIpv6(pkt)
  assert.ok(echoRequestToReplyInPlace(v))
  assert.deepEqual(pkt.subarray(8, 24), P)
  assert.deepEqual(pkt.subarray(24, 40), A)
  assert.equal(pkt[40], ICMPV6_ECHO_REPLY)
  assert.ok(naiveVerify(pkt))
  const lo = naivePacket({ src: loopback(), dst: loopback(), protocol: IPPROTO_ICMPV6, l4: hex(KERNEL_ECHO_REQUEST), keepChecksum: true })
  assert.ok(echoRequestToReplyInPlace(parseIpv6(lo)))
  assert.equal(Buffer.from(lo.subarray(40)).toString('hex'), KERNEL_ECHO_REPLY)
  assert.equal(echoRequestToReplyInPlace(parseIpv6(lo)), false) // already a reply
})

test('Destination Unreachable (port) reproduces the kernel message byte for byte', () => {
  const invoking = hex(KERNEL_PORT_UNREACH.slice(16))
  const out = new Uint8Array(1500)
  const n = buildDestinationUnreachable(out, 0, UNREACH_PORT, loopback(), 0, invoking, 0, invoking.length)
  assert.equal(n, 40 + 8 + invoking.length)
  assert.equal(Buffer.from(out.subarray(40, n)).toString('hex'), KERNEL_PORT_UNREACH)
})

test('errors are well formed: addresses, type/code, checksum, quote; codes 0, 1, 4', () => {
  const invoking = naivePacket({ src: A, dst: P, protocol: IPPROTO_TCP, l4: tcpHeader({ sport: 1, dport: 22, seq: 9, ack: 0, flags: 2 }) })
  for (const code of [UNREACH_NO_ROUTE, UNREACH_ADMIN_PROHIBITED, 3, UNREACH_PORT]) {
    const out = new Uint8Array(2000)
    const n = buildDestinationUnreachable(out, 10, code, P, 0, invoking, 0, invoking.length)
    const e = out.subarray(10, 10 + n)
    const v = parseIpv6(e)
    assert.equal(v.protocol, IPPROTO_ICMPV6)
    assert.deepEqual(e.subarray(8, 24), P, 'source = the unreachable destination')
    assert.deepEqual(e.subarray(24, 40), A, 'destination = the invoking source')
    assert.equal(e[40], ICMPV6_DEST_UNREACHABLE)
    assert.equal(e[41], code)
    assert.equal(readU32(e, 44), 0)
    assert.deepEqual(e.subarray(48), invoking)
    assert.ok(verifyTransportChecksum(e, 0, 40, v.l4Length, IPPROTO_ICMPV6))
    assert.ok(naiveVerify(e))
  }
})

test('Packet Too Big: MTU field, and a large invoking packet is quoted up to exactly 1280 bytes', () => {
  const big = naivePacket({ src: A, dst: P, protocol: IPPROTO_UDP, l4: udpHeader(4000, 5000, Uint8Array.from({ length: 3000 }, (_, i) => i & 0xff)) })
  const out = new Uint8Array(4000)
  const n = buildPacketTooBig(out, 0, 1400, P, 0, big, 0, big.length)
  assert.equal(n, IPV6_MIN_MTU)
  assert.equal(out[40], ICMPV6_PACKET_TOO_BIG)
  assert.equal(out[41], 0)
  assert.equal(readU32(out, 44), 1400)
  assert.deepEqual(out.subarray(48, n), big.subarray(0, ICMPV6_MAX_QUOTE))
  assert.ok(naiveVerify(out.subarray(0, n)))
  // An output buffer smaller than 1280 gets a shorter quote, never an overflow.
  const small = new Uint8Array(300)
  const m = buildPacketTooBig(small, 0, 1400, P, 0, big, 0, big.length)
  assert.equal(m, 300)
  assert.ok(naiveVerify(small))
  assert.equal(buildPacketTooBig(new Uint8Array(47), 0, 1400, P, 0, big, 0, big.length), 0)
})

test('no error answers an ICMPv6 error, a Redirect, a multicast destination, a non-unicast source or junk', () => {
  const out = new Uint8Array(1500)
  const errorMsg = naivePacket({ src: A, dst: P, protocol: IPPROTO_ICMPV6, l4: Uint8Array.of(1, 4, 0, 0, 0, 0, 0, 0) })
  assert.equal(icmpv6ErrorSuppression(ICMPV6_DEST_UNREACHABLE, errorMsg, 0, errorMsg.length), 'invoking-icmpv6-error')
  assert.equal(buildDestinationUnreachable(out, 0, 0, P, 0, errorMsg, 0, errorMsg.length), 0)
  assert.equal(buildPacketTooBig(out, 0, 1280, P, 0, errorMsg, 0, errorMsg.length), 0)
  for (const t of [2, 3, 4, 127, 137]) {
    const m = naivePacket({ src: A, dst: P, protocol: IPPROTO_ICMPV6, l4: Uint8Array.of(t, 0, 0, 0, 0, 0, 0, 0) })
    assert.equal(buildDestinationUnreachable(out, 0, 0, P, 0, m, 0, m.length), 0, `type ${t}`)
  }
  // ICMPv6 error behind an extension header is still recognized.
  const behindExt = naivePacket({ src: A, dst: P, protocol: IPPROTO_ICMPV6, l4: Uint8Array.of(2, 0, 0, 0, 0, 0, 5, 0), ext: [[60, new Uint8Array(8)]] })
  assert.equal(icmpv6ErrorSuppression(ICMPV6_DEST_UNREACHABLE, behindExt, 0, behindExt.length), 'invoking-icmpv6-error')
  // Echo requests and other informational messages may be answered.
  const echo = naivePacket({ src: A, dst: P, protocol: IPPROTO_ICMPV6, l4: Uint8Array.of(128, 0, 0, 0, 0, 0, 0, 0) })
  assert.ok(buildDestinationUnreachable(out, 0, 0, P, 0, echo, 0, echo.length) > 0)
  const toGroup = naivePacket({ src: A, dst: MULTICAST, protocol: IPPROTO_UDP, l4: udpHeader(1, 2, new Uint8Array(4)) })
  assert.equal(icmpv6ErrorSuppression(ICMPV6_DEST_UNREACHABLE, toGroup, 0, toGroup.length), 'invoking-multicast-destination')
  assert.equal(buildDestinationUnreachable(out, 0, UNREACH_PORT, P, 0, toGroup, 0, toGroup.length), 0)
  // RFC 4443 §2.4 (e.3): Packet Too Big is the exception, so PMTUD works for multicast.
  assert.ok(buildPacketTooBig(out, 0, 1280, P, 0, toGroup, 0, toGroup.length) > 0)
  const fromUnspecified = naivePacket({ src: new Uint8Array(16), dst: P, protocol: IPPROTO_UDP, l4: udpHeader(1, 2, new Uint8Array(4)) })
  assert.equal(buildDestinationUnreachable(out, 0, 0, P, 0, fromUnspecified, 0, fromUnspecified.length), 0)
  const fromGroup = naivePacket({ src: MULTICAST, dst: P, protocol: IPPROTO_UDP, l4: udpHeader(1, 2, new Uint8Array(4)) })
  assert.equal(icmpv6ErrorSuppression(ICMPV6_PACKET_TOO_BIG, fromGroup, 0, fromGroup.length), 'invoking-source-not-unicast')
  assert.equal(buildDestinationUnreachable(out, 0, 0, P, 0, new Uint8Array(30), 0, 30), 0)
  assert.equal(icmpv6ErrorSuppression(1, new Uint8Array(30), 0, 30), 'invoking-malformed')
})
