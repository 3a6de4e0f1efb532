import { test } from 'node:test'
import assert from 'node:assert/strict'
import { IPPROTO_TCP, IPPROTO_UDP, verifyTransportChecksum } from '../../src/tun/packets/checksum.js'
import { parseIpv6 } from '../../src/tun/packets/ipv6.js'
import { UDP_HEADROOM, buildUdpPacket, checkUdp, setUdpPorts, udpDestinationPort, udpLength, udpPayloadOffset, udpSourcePort } from '../../src/tun/packets/udp.js'
import {
  TCP_ACK,
  TCP_FIN,
  TCP_PSH,
  TCP_RST,
  TCP_SYN,
  buildTcpPacket,
  checkTcp,
  setTcpPorts,
  tcpAck,
  tcpDestinationPort,
  tcpFlags,
  tcpHeaderLength,
  tcpSegmentLength,
  tcpSeq,
  tcpSourcePort,
  tcpWindow,
  writeRstReply,
} from '../../src/tun/packets/tcp.js'
import { hex, loopback, naivePacket, naiveVerify, tcpHeader, udpHeader } from './packet-oracle.js'

const A = hex('fd50494c4f540000000000000000002a')
const P = hex('fd50494c4f5400000000000000000007')

test('buildUdpPacket reproduces the kernel-computed UDP packet (::1:40000 -> ::1:9, "hello")', () => {
  const out = new Uint8Array(UDP_HEADROOM + 5)
  out.set(Buffer.from('hello'), UDP_HEADROOM)
  const n = buildUdpPacket(out, 0, loopback(), 0, loopback(), 0, 40000, 9, 5)
  assert.equal(n, 53)
  assert.equal(Buffer.from(out.subarray(40)).toString('hex'), '9c400009000d1fb768656c6c6f')
  const v = parseIpv6(out)
  assert.equal(v.protocol, IPPROTO_UDP)
  assert.equal(checkUdp(out, v.l4Offset, v.l4Length), null)
  assert.equal(udpSourcePort(out, 40), 40000)
  assert.equal(udpDestinationPort(out, 40), 9)
  assert.equal(udpLength(out, 40), 13)
  assert.equal(udpPayloadOffset(40), 48)
})

test('UDP: build at an offset equals the DataView twin; ports set in place; header checks', () => {
  const data = Uint8Array.from({ length: 33 }, (_, i) => i * 7)
  const out = new Uint8Array(100 + UDP_HEADROOM + data.length)
  out.set(data, 100 + UDP_HEADROOM)
  const n = buildUdpPacket(out, 100, A, 0, P, 0, 5353, 53, data.length, 61)
  const twin = naivePacket({ src: A, dst: P, protocol: IPPROTO_UDP, l4: udpHeader(5353, 53, data), hopLimit: 61 })
  assert.deepEqual(out.subarray(100, 100 + n), twin)
  setUdpPorts(out, 140, 1, 2)
  assert.equal(udpSourcePort(out, 140), 1)
  assert.equal(udpDestinationPort(out, 140), 2)
  assert.equal(checkUdp(out, 140, 7), 'short-buffer')
  assert.equal(checkUdp(out, 140, 8 + data.length - 1), 'bad-length')
  assert.equal(checkUdp(out, 140, 8 + data.length + 4), null) // trailing bytes are fine
  out[144] = 0
  out[145] = 7
  assert.equal(checkUdp(out, 140, 8 + data.length), 'bad-length')
})

test('TCP field readers and setters', () => {
  const opts = Uint8Array.of(2, 4, 0x05, 0xb4) // MSS 1460
  const pkt = naivePacket({ src: A, dst: P, protocol: IPPROTO_TCP, l4: tcpHeader({ sport: 40001, dport: 80, seq: 0xfffffff0, ack: 7, flags: TCP_SYN | TCP_ACK, window: 1234, options: opts, data: new Uint8Array(3) }) })
  const t = 40
  assert.equal(tcpSourcePort(pkt, t), 40001)
  assert.equal(tcpDestinationPort(pkt, t), 80)
  assert.equal(tcpSeq(pkt, t), 0xfffffff0)
  assert.equal(tcpAck(pkt, t), 7)
  assert.equal(tcpFlags(pkt, t), TCP_SYN | TCP_ACK)
  assert.equal(tcpHeaderLength(pkt, t), 24)
  assert.equal(tcpWindow(pkt, t), 1234)
  assert.equal(tcpSegmentLength(pkt, t, 27), 3 + 1)
  assert.equal(checkTcp(pkt, t, 27), null)
  assert.equal(checkTcp(pkt, t, 19), 'short-buffer')
  assert.equal(checkTcp(pkt, t, 23), 'bad-length')
  setTcpPorts(pkt, t, 1, 2)
  assert.equal(tcpSourcePort(pkt, t), 1)
  assert.equal(tcpDestinationPort(pkt, t), 2)
  pkt[t + 12] = 0x40 // 16-byte header
  assert.equal(checkTcp(pkt, t, 27), 'bad-length')
})

test('buildTcpPacket reproduces the kernel-computed TCP segment', () => {
  const out = new Uint8Array(61)
  out[60] = 0x78 // "x"
  buildTcpPacket(out, 0, loopback(), 0, loopback(), 0, 40001, 80, 0x01020304, 0, TCP_SYN, 65535, 1)
  assert.equal(Buffer.from(out.subarray(40)).toString('hex'), '9c41005001020304000000005002ffff9748000078')
})

test('writeRstReply: answers an ACK segment with seq = SEG.ACK, no ACK', () => {
  const pkt = naivePacket({ src: A, dst: P, protocol: IPPROTO_TCP, l4: tcpHeader({ sport: 40001, dport: 80, seq: 100, ack: 5000, flags: TCP_ACK | TCP_PSH, data: new Uint8Array(10) }) })
  const n = writeRstReply(pkt, 0, 40, pkt.length - 40)
  assert.equal(n, 60)
  const rst = pkt.subarray(0, n)
  const v = parseIpv6(rst)
  assert.deepEqual(rst.subarray(8, 24), P)
  assert.deepEqual(rst.subarray(24, 40), A)
  assert.equal(v.payloadLength, 20)
  assert.equal(tcpSourcePort(rst, 40), 80)
  assert.equal(tcpDestinationPort(rst, 40), 40001)
  assert.equal(tcpSeq(rst, 40), 5000)
  assert.equal(tcpFlags(rst, 40), TCP_RST)
  assert.ok(verifyTransportChecksum(rst, 0, 40, 20, IPPROTO_TCP))
  assert.ok(naiveVerify(rst))
})

test('writeRstReply: answers a non-ACK segment (SYN|FIN with data) with ack = SEG.SEQ + SEG.LEN and RST|ACK; drops extension headers', () => {
  const ext = new Uint8Array(8)
  const pkt = naivePacket({ src: A, dst: P, protocol: IPPROTO_TCP, ext: [[60, ext]], l4: tcpHeader({ sport: 1, dport: 2, seq: 0xfffffffe, ack: 0, flags: TCP_SYN | TCP_FIN, data: new Uint8Array(5) }) })
  const n = writeRstReply(pkt, 0, 48, pkt.length - 48)
  const rst = pkt.subarray(0, n)
  assert.equal(rst[6], IPPROTO_TCP)
  assert.equal(tcpSeq(rst, 40), 0)
  assert.equal(tcpAck(rst, 40), (0xfffffffe + 5 + 2) >>> 0)
  assert.equal(tcpFlags(rst, 40), TCP_RST | TCP_ACK)
  assert.ok(naiveVerify(rst))
})
