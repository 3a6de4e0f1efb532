// The TUN bridge between a MemoryTun (the test plays the kernel) and two
// whole in-process daemons over loopback UDP: outbound SYN held and
// reflected, refusal/untrusted/unreachable answers, UDP both ways with
// checksums, echo → Pilot ping → echo reply, Packet Too Big, DNS, strays,
// inbound streams to a local server, and nothing left open after close.
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { createServer, connect as netConnect, type Server, type Socket } from 'node:net'
import { createSocket } from 'node:dgram'
import { MemoryTun } from '../../src/tun/testing/memory-tun.js'
import type { Daemon } from '../../src/daemon/daemon.js'
import { mapPilotToIpv6, parseIpv6, reflectorIpv6, formatIpv6, DEFAULT_OVERLAY_PREFIX } from '../../src/protocol/ipv6-mapping.js'
import { BRIDGED_UDP_MTU, MAX_BRIDGED_UDP_PAYLOAD } from '../../src/tun/bridge-host.js'
import { World, activeResources } from '../daemon/world.js'
import { waitFor, readStream } from '../daemon/helpers.js'
import { naivePacket, naiveVerify, tcpHeader, udpHeader } from './packet-oracle.js'

const TCP = 6
const UDP = 17
const ICMP6 = 58

function hex4(n: number): string {
  return n.toString(16).toUpperCase().padStart(4, '0')
}
function pilotText(node: number): string {
  return `0:0000.${hex4(node >>> 16)}.${hex4(node & 0xffff)}`
}
async function trustPair(a: Daemon, b: Daemon): Promise<void> {
  await a.trustRequest(pilotText(b.nodeId), 'test')
  await waitFor(async () => (await a.trustList()).trusted.some((t) => t.node_id === b.nodeId), 'a trusts b', 8_000)
  await waitFor(async () => (await b.trustList()).trusted.some((t) => t.node_id === a.nodeId), 'b trusts a', 8_000)
}
function addr(d: Daemon): Uint8Array {
  return mapPilotToIpv6(d.address, DEFAULT_OVERLAY_PREFIX)
}
function u16(b: Uint8Array, o: number): number {
  return (b[o]! << 8) | b[o + 1]!
}
function u32(b: Uint8Array, o: number): number {
  return ((b[o]! << 24) | (b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!) >>> 0
}
function same(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.from(a).equals(Buffer.from(b))
}

/** The next packet written into `tun` (after `since`) that satisfies `pred`. */
async function written(tun: MemoryTun, pred: (p: Buffer) => boolean, what: string, since = 0, timeoutMs = 6_000): Promise<Buffer> {
  let found: Buffer | undefined
  await waitFor(() => (found = tun.written.slice(since).find(pred)) !== undefined, what, timeoutMs)
  return found!
}

let w: World
let a: Daemon // with the TUN
let b: Daemon // trusted by a, hostname bob
let c: Daemon // no trust with a
let d: Daemon // no trust with a, but answers pings from everyone (--answer-pings)
let tun: MemoryTun
let A: Uint8Array
let B: Uint8Array
let C: Uint8Array
let D: Uint8Array
/** Inbound connections land on this loopback server (the test's stand-in for "the kernel connects to R:y"). */
let localServer: Server
let localPort = 0
const localSockets: Socket[] = []
let inboundConnects: Array<{ host: string; port: number; localAddress?: string }> = []
let baseline: string[]

before(async () => {
  localServer = createServer({ allowHalfOpen: true }, (s) => {
    localSockets.push(s)
    // An echo server that upper-cases, then ends when the client ends.
    s.on('data', (d: Buffer) => s.write(d.toString('utf8').toUpperCase()))
    s.on('end', () => s.end())
    s.on('error', () => {})
  })
  await new Promise<void>((r) => localServer.listen({ host: '::1', port: 0 }, r))
  localPort = (localServer.address() as { port: number }).port
  baseline = activeResources()
  w = await World.create()
  tun = new MemoryTun({ name: 'pilot-test0' })
  a = await w.daemon('a', {
    timing: { dialTimeoutMs: 1_500 },
    tun: {
      device: tun,
      listenHost: '::1',
      dnsBind: { host: '::1', port: 0 },
      bridge: {
        tickMs: 100,
        icmpErrorsPerSecond: 1000,
        // Port 8080 connects to the local server; anything else is refused, as a kernel with no listener would.
        inboundConnect: (o) => {
          inboundConnects.push({ host: o.host!, port: o.port, ...(o.localAddress ? { localAddress: o.localAddress } : {}) })
          const target = a.tun!.bridge.reflector.lookupByReflectedPort(o.port)?.localPort === 8080 ? localPort : 1
          return netConnect({ host: '::1', port: target, allowHalfOpen: true })
        },
      },
    },
  })
  b = await w.daemon('b', { autoAccept: true, hostname: 'bob' })
  c = await w.daemon('c')
  d = await w.daemon('d', { answerPings: true })
  A = addr(a)
  B = addr(b)
  C = addr(c)
  D = addr(d)
  await trustPair(a, b)
})

after(async () => {
  await w.close()
  for (const s of localSockets) s.destroy()
  await new Promise<void>((r) => localServer.close(() => r()))
})

test('status().tun names the interface, address, prefix, MTU and the DNS hint', async () => {
  const s = await a.status()
  assert.ok(s.tun)
  assert.equal(s.tun.interface, 'pilot-test0')
  assert.equal(s.tun.address, formatIpv6(A))
  assert.equal(s.tun.prefix, 'fd50:494c:4f54::/48')
  assert.equal(s.tun.mtu, 65520)
  assert.match(s.tun.dns, /dig @::1 <hostname>\.pilot AAAA/)
  assert.equal((await b.status()).tun, null)
})

test('outbound TCP: the SYN is held until the Pilot stream is up, then reflected R:x → A:L', async () => {
  const accepted: Array<import('node:stream').Duplex> = []
  b.listenStreams(80, (s) => accepted.push(s))
  try {
    const since = tun.written.length
    const syn = naivePacket({ src: A, dst: B, protocol: TCP, l4: tcpHeader({ sport: 40001, dport: 80, seq: 1000, ack: 0, flags: 0x02 }) })
    tun.inject(syn)
    tun.inject(syn) // a retransmission while the dial runs: ignored
    const R = reflectorIpv6(DEFAULT_OVERLAY_PREFIX, 0)
    const refl = await written(tun, (p) => p[6] === TCP && same(p.subarray(8, 24), R), 'reflected SYN', since)
    const bridge = a.tun!.bridge
    assert.ok(same(refl.subarray(24, 40), A), 'to A')
    const x = u16(refl, 40)
    assert.equal(u16(refl, 42), bridge.listenerPort, 'to the internal listener L')
    assert.equal(u32(refl, 44), 1000, 'sequence number kept')
    assert.equal(refl[53], 0x02, 'still a SYN')
    assert.ok(naiveVerify(refl), 'checksum right after the rewrite')
    assert.ok(bridge.reflector.isReflectedPeer(R, x))
    assert.deepEqual(
      { ...bridge.reflector.lookupByReflectedPort(x), peer: undefined },
      { kind: 1, natPort: x, peer: undefined, peerAddress: formatIpv6(B), peerPort: 80, localPort: 40001 },
    )
    await waitFor(() => accepted.length === 1, 'b accepted the Pilot stream')
    assert.equal(bridge.stats().drops['tcp-syn-pending'], 1)
    // The kernel's SYN|ACK from the listener (A:L → R:x) goes back to the app as B:80 → A:40001.
    const since2 = tun.written.length
    const synAck = naivePacket({ src: A, dst: R, protocol: TCP, l4: tcpHeader({ sport: bridge.listenerPort, dport: x, seq: 5000, ack: 1001, flags: 0x12 }) })
    tun.inject(synAck)
    const back = await written(tun, (p) => p[6] === TCP && same(p.subarray(8, 24), B), 'SYN|ACK to the app', since2)
    assert.ok(same(back.subarray(24, 40), A))
    assert.equal(u16(back, 40), 80)
    assert.equal(u16(back, 42), 40001)
    assert.ok(naiveVerify(back))
  } finally {
    for (const s of accepted) s.destroy()
    b.unlistenStreams(80)
  }
})

test('outbound TCP refused by a trusting peer → TCP RST to the app', async () => {
  const since = tun.written.length
  tun.inject(naivePacket({ src: A, dst: B, protocol: TCP, l4: tcpHeader({ sport: 40002, dport: 81, seq: 7777, ack: 0, flags: 0x02 }) }))
  const rst = await written(tun, (p) => p[6] === TCP && (p[53]! & 0x04) !== 0, 'RST', since)
  assert.ok(same(rst.subarray(8, 24), B))
  assert.ok(same(rst.subarray(24, 40), A))
  assert.equal(u16(rst, 40), 81)
  assert.equal(u16(rst, 42), 40002)
  assert.equal(u32(rst, 48), 7778, 'acks the SYN')
  assert.ok(naiveVerify(rst))
  assert.equal(a.tun!.bridge.stats().tcp.outboundRefused, 1)
})

test('outbound TCP to a node without trust → ICMPv6 Destination Unreachable code 1 quoting the SYN', async () => {
  const since = tun.written.length
  const syn = naivePacket({ src: A, dst: C, protocol: TCP, l4: tcpHeader({ sport: 40003, dport: 80, seq: 1, ack: 0, flags: 0x02 }) })
  tun.inject(syn)
  const err = await written(tun, (p) => p[6] === ICMP6 && p[40] === 1, 'unreachable', since)
  assert.equal(err[41], 1, 'code 1: administratively prohibited')
  assert.ok(same(err.subarray(8, 24), C), 'from the destination')
  assert.ok(same(err.subarray(24, 40), A))
  assert.ok(Buffer.from(err.subarray(48)).equals(Buffer.from(syn)), 'quotes the whole SYN')
  assert.ok(naiveVerify(err))
})

test('outbound TCP to a node nobody can reach → ICMPv6 unreachable code 3', async () => {
  const since = tun.written.length
  const ghost = mapPilotToIpv6({ network: 0, node: 0x00ee_0001 }, DEFAULT_OVERLAY_PREFIX)
  tun.inject(naivePacket({ src: A, dst: ghost, protocol: TCP, l4: tcpHeader({ sport: 40004, dport: 80, seq: 1, ack: 0, flags: 0x02 }) }))
  const err = await written(tun, (p) => p[6] === ICMP6 && p[40] === 1, 'unreachable', since, 8_000)
  assert.equal(err[41], 3)
  assert.ok(same(err.subarray(8, 24), ghost))
})

test('UDP both ways: app datagram → Pilot datagram with its ports; Pilot datagram → IPv6/UDP with a right checksum', async () => {
  const got: Array<{ fromPort: number; toPort: number; data: string; from: number }> = []
  b.onDatagram((d) => got.push({ fromPort: d.fromPort, toPort: d.toPort, data: Buffer.from(d.data).toString(), from: d.from.node }))
  try {
    tun.inject(naivePacket({ src: A, dst: B, protocol: UDP, l4: udpHeader(5000, 6000, Buffer.from('hello bob')) }))
    await waitFor(() => got.length === 1, 'b got the datagram')
    assert.deepEqual(got[0], { fromPort: 5000, toPort: 6000, data: 'hello bob', from: a.nodeId })
    const since = tun.written.length
    b.sendDatagram(a.nodeId, 5000, Buffer.from('hello app'), 6000)
    const p = await written(tun, (q) => q[6] === UDP, 'UDP into the TUN', since)
    assert.ok(same(p.subarray(8, 24), B))
    assert.ok(same(p.subarray(24, 40), A))
    assert.equal(u16(p, 40), 6000)
    assert.equal(u16(p, 42), 5000)
    assert.equal(Buffer.from(p.subarray(48)).toString(), 'hello app')
    assert.ok(naiveVerify(p), 'UDP checksum (naive oracle)')
  } finally {
    b.onDatagram(null)
  }
})

test('UDP to a node without trust → unreachable code 1; to a non-node in the prefix → code 3', async () => {
  let since = tun.written.length
  tun.inject(naivePacket({ src: A, dst: C, protocol: UDP, l4: udpHeader(5001, 53, Buffer.from('x')) }))
  let err = await written(tun, (p) => p[6] === ICMP6 && p[40] === 1, 'unreachable (trust)', since)
  assert.equal(err[41], 1)
  since = tun.written.length
  const notNode = parseIpv6('fd50:494c:4f54:0:0:7:0:5')
  tun.inject(naivePacket({ src: A, dst: notNode, protocol: UDP, l4: udpHeader(5001, 53, Buffer.from('x')) }))
  err = await written(tun, (p) => p[6] === ICMP6 && p[40] === 1, 'unreachable (not a node)', since)
  assert.equal(err[41], 3)
  assert.ok(same(err.subarray(8, 24), notNode))
})

test('oversize UDP → Packet Too Big from the destination, MTU = largest that fits one Pilot datagram', async () => {
  assert.equal(MAX_BRIDGED_UDP_PAYLOAD, 65_507 - 36 - 34)
  const since = tun.written.length
  const big = naivePacket({ src: A, dst: B, protocol: UDP, l4: udpHeader(5002, 6000, Buffer.alloc(MAX_BRIDGED_UDP_PAYLOAD + 1, 7)) })
  tun.inject(big)
  const ptb = await written(tun, (p) => p[6] === ICMP6 && p[40] === 2, 'Packet Too Big', since)
  assert.equal(u32(ptb, 44), BRIDGED_UDP_MTU)
  assert.ok(same(ptb.subarray(8, 24), B))
  assert.equal(ptb.length, 1280, 'quote fills the minimum MTU')
  assert.ok(naiveVerify(ptb))
  assert.equal(a.tun!.bridge.stats().drops['too-big'], 1)
})

test('ICMPv6 echo → Pilot ping → pong → echo reply from the peer (same id, seq, data)', async () => {
  const since = tun.written.length
  const data = Buffer.from('ping6 payload 0123456789')
  const l4 = Buffer.alloc(8 + data.length)
  l4[0] = 128
  l4.writeUInt16BE(0x1234, 4)
  l4.writeUInt16BE(7, 6)
  data.copy(l4, 8)
  tun.inject(naivePacket({ src: A, dst: B, protocol: ICMP6, l4 }))
  const reply = await written(tun, (p) => p[6] === ICMP6 && p[40] === 129, 'echo reply', since)
  assert.ok(same(reply.subarray(8, 24), B))
  assert.ok(same(reply.subarray(24, 40), A))
  assert.equal(u16(reply, 44), 0x1234)
  assert.equal(u16(reply, 46), 7)
  assert.ok(Buffer.from(reply.subarray(48)).equals(data))
  assert.ok(naiveVerify(reply))
})

test('ICMPv6 echo to a node without trust: it does not answer (private by default) unless it answers pings for all', async () => {
  const l4 = Buffer.from([128, 0, 0, 0, 0x12, 0x35, 0, 1, 0x61, 0x62])
  const since = tun.written.length
  tun.inject(naivePacket({ src: A, dst: C, protocol: ICMP6, l4 }))
  await waitFor(() => c.stats().driver.pingsRefused === 1, 'c refused the ping')
  await new Promise((r) => setTimeout(r, 200))
  assert.equal(tun.written.slice(since).filter((p) => p[6] === ICMP6 && p[40] === 129).length, 0, 'no echo reply from c')
  await assert.rejects(a.ping(pilotText(c.nodeId), 5_000), { code: 'PT_TRUST_REQUIRED' })
  // d runs with answerPings: `pilot-tun ping` (an echo stream on port 7, which also sets up
  // the tunnel to d) and the same ICMPv6 echo are answered.
  assert.ok((await a.ping(pilotText(d.nodeId), 5_000)).rtt_ms >= 0)
  tun.inject(naivePacket({ src: A, dst: D, protocol: ICMP6, l4 }))
  await written(tun, (p) => p[6] === ICMP6 && p[40] === 129 && same(p.subarray(8, 24), D), 'echo reply from d', since)
})

test('DNS: bob.pilot AAAA → b\'s mapped address; unknown names NXDOMAIN; cached', async () => {
  const port = (a.tun!.dns as unknown as { port: number }).port
  const query = (name: string, id: number): Promise<Buffer> => {
    const labels = name.split('.')
    const q = Buffer.concat([
      Buffer.from([id >> 8, id & 0xff, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0]),
      ...labels.map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l)])),
      Buffer.from([0, 0, 28, 0, 1]),
    ])
    return new Promise((resolve, reject) => {
      const s = createSocket('udp6')
      const t = setTimeout(() => {
        s.close()
        reject(new Error('no DNS answer'))
      }, 3000)
      s.on('message', (m) => {
        clearTimeout(t)
        s.close()
        resolve(m)
      })
      s.send(q, port, '::1')
    })
  }
  const r = await query('bob.pilot', 0x4242)
  assert.equal(u16(r, 0), 0x4242)
  assert.equal(r[3]! & 0x0f, 0, 'NOERROR')
  assert.equal(u16(r, 6), 1, 'one answer')
  assert.ok(Buffer.from(r.subarray(r.length - 16)).equals(Buffer.from(B)))
  const again = await query('BOB.pilot', 2)
  assert.ok(Buffer.from(again.subarray(again.length - 16)).equals(Buffer.from(B)))
  assert.ok(a.tun!.dns!.stats().answeredFromCache >= 1)
  const nx = await query('nobody-here.pilot', 3)
  assert.equal(nx[3]! & 0x0f, 3, 'NXDOMAIN')
})

test('inbound TCP: an agent dials a port here → the bridge connects to R:y and pipes; refused ports refuse the Pilot SYN', async () => {
  inboundConnects = []
  const s = await b.openStream(a.nodeId, 8080)
  assert.equal(inboundConnects.length, 1)
  const R = formatIpv6(reflectorIpv6(DEFAULT_OVERLAY_PREFIX, 0))
  assert.equal(inboundConnects[0]!.host, R, 'connects to the reflector address')
  assert.equal(inboundConnects[0]!.localAddress, '::1', 'from the bind host (A in production)')
  const info = a.tun!.bridge.reflector.lookupByReflectedPort(inboundConnects[0]!.port)
  assert.equal(info?.kind, 2)
  assert.equal(info?.peer.node, b.nodeId)
  assert.equal(info?.localPort, 8080)
  const body = readStream(s)
  s.end('hello server')
  assert.equal((await body).toString(), 'HELLO SERVER')
  await assert.rejects(b.openStream(a.nodeId, 9), (err: Error & { code?: string }) => err.code === 'PT_CONNECTION_REFUSED')
  // The daemon's own ports stay with the daemon: echo (7) answers without the bridge.
  const before = a.tun!.bridge.stats().tcp.inboundOffered
  const echo = await b.openStream(a.nodeId, 7)
  echo.destroy()
  assert.equal(a.tun!.bridge.stats().tcp.inboundOffered, before)
  // Untrusted nodes never reach the bridge.
  await assert.rejects(c.openStream(a.nodeId, 8080), (err: Error & { code?: string }) => err.code === 'PT_TRUST_REQUIRED')
  assert.equal(a.tun!.bridge.stats().tcp.inboundOffered, before)
})

test('strays are dropped and counted per reason', async () => {
  const bridge = a.tun!.bridge
  const before = bridge.stats().drops
  const ll = parseIpv6('fe80::1')
  const icmp = (type: number): Uint8Array => Uint8Array.from([type, 0, 0, 0, 0, 0, 0, 0])
  tun.inject(Uint8Array.from([0x45, 0, 0, 20, 0, 0, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2])) // IPv4
  tun.inject(naivePacket({ src: ll, dst: parseIpv6('ff02::2'), protocol: ICMP6, l4: icmp(133) })) // RS
  tun.inject(naivePacket({ src: ll, dst: parseIpv6('ff02::16'), protocol: ICMP6, l4: icmp(143) })) // MLDv2 report
  tun.inject(naivePacket({ src: ll, dst: parseIpv6('ff02::1:ff00:1'), protocol: ICMP6, l4: icmp(135) })) // NS
  tun.inject(naivePacket({ src: A, dst: parseIpv6('ff02::fb'), protocol: UDP, l4: udpHeader(5353, 5353, Buffer.from('m')) })) // mDNS
  tun.inject(naivePacket({ src: A, dst: parseIpv6('2001:db8::1'), protocol: UDP, l4: udpHeader(1, 2, Buffer.from('m')) }))
  tun.inject(Uint8Array.from([0x60, 0, 0, 0, 0, 99])) // truncated IPv6
  const d = () => bridge.stats().drops
  await waitFor(() => d()['outside-prefix'] > before['outside-prefix'], 'strays handled')
  const now = d()
  assert.equal(now['not-ipv6'] - before['not-ipv6'], 1)
  assert.equal(now['router-solicitation'] - before['router-solicitation'], 1)
  assert.equal(now.mld - before.mld, 1)
  assert.equal(now['neighbor-discovery'] - before['neighbor-discovery'], 1)
  assert.equal(now.multicast - before.multicast, 1)
  assert.equal(now.malformed - before.malformed, 1)
})

test('a failing TUN reader (interface deleted) shuts the daemon down cleanly', async () => {
  const dead = new MemoryTun({ name: 'pilot-test1' })
  const d = await w.daemon('d', { tun: { device: dead, listenHost: '::1', dns: false } })
  assert.equal((await d.status()).tun?.dns, 'off')
  dead.fail()
  await d.closed
  assert.ok(dead.closed, 'device closed')
  assert.ok(d.tun!.bridge.closed, 'bridge closed')
})

test('close: the TUN, listener, DNS socket and daemons leave no handles behind', async () => {
  const t = a.tun!
  await w.close()
  assert.ok(t.bridge.closed)
  assert.ok(tun.closed, 'the device was closed')
  for (const s of localSockets) s.destroy()
  await waitFor(() => activeResources().length <= baseline.length, `handles: ${activeResources().join(', ')}`, 3_000)
  w = { close: async () => {} } as unknown as World
})
