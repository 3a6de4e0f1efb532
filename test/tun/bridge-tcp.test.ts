// TcpBridge on its own: a recording TcpBridgeOutput stands in for the TUN
// bridge, a fake host for the daemon; the reflector and the internal
// listener are real (on ::1). Non-default overlay prefix throughout.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { connect as netConnect, createServer, type Server, type Socket } from 'node:net'
import { PassThrough, type Duplex } from 'node:stream'
import { TcpBridge, listenInternal, listenerPortOf, type TcpBridgeDropReason, type TcpBridgeOutput } from '../../src/tun/bridge-tcp.js'
import { TcpReflector } from '../../src/tun/reflector.js'
import { PeerAddressCache } from '../../src/tun/peer-cache.js'
import { Ipv6Packet, parseIpv6Into } from '../../src/tun/packets/ipv6.js'
import { UNREACH_ADDRESS, UNREACH_ADMIN_PROHIBITED } from '../../src/tun/packets/icmpv6.js'
import type { IncomingStreamRequest } from '../../src/tun/bridge-host.js'
import type { PilotAddress } from '../../src/protocol/address.js'
import { mapPilotToIpv6, parseOverlayPrefix, reflectorIpv6 } from '../../src/protocol/ipv6-mapping.js'
import { nullLogger } from '../../src/logger.js'
import { naivePacket, naiveVerify, tcpHeader } from './packet-oracle.js'
import { waitFor } from '../daemon/helpers.js'

const PREFIX = parseOverlayPrefix('2001:db8:42::/48')
const A = mapPilotToIpv6({ network: 0, node: 0x2a }, PREFIX)
const P = mapPilotToIpv6({ network: 0, node: 7 }, PREFIX)
const R = reflectorIpv6(PREFIX, 0)
const bytes = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.byteLength)
const u16 = (b: Uint8Array, o: number) => (b[o]! << 8) | b[o + 1]!
const u32 = (b: Uint8Array, o: number) => ((b[o]! << 24) | (b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!) >>> 0

class RecordingOutput implements TcpBridgeOutput {
  readonly queued: Buffer[] = []
  readonly unreachables: Array<{ code: number; packet: Buffer }> = []
  readonly drops: TcpBridgeDropReason[] = []
  queue(packet: Uint8Array): void {
    this.queued.push(Buffer.from(packet))
  }
  unreachable(_now: number, code: number, buf: Uint8Array, off: number, len: number): void {
    this.unreachables.push({ code, packet: Buffer.from(buf.subarray(off, off + len)) })
  }
  drop(reason: TcpBridgeDropReason): void {
    this.drops.push(reason)
  }
}

interface Dial {
  node: PilotAddress
  port: number
  resolve: (s: Duplex) => void
  reject: (e: unknown) => void
}

async function rig(over: { acceptTimeoutMs?: number; connect?: (o: { host?: string; port: number }) => Socket } = {}) {
  const server = await listenInternal('::1', nullLogger)
  const reflector = new TcpReflector({ localAddress: A, listenerPort: listenerPortOf(server), prefix: PREFIX })
  const output = new RecordingOutput()
  const dials: Dial[] = []
  let now = 1000
  const tcp = new TcpBridge({
    output,
    reflector,
    server,
    host: {
      openStream: (node, port) => new Promise<Duplex>((resolve, reject) => dials.push({ node, port, resolve, reject })),
    },
    peers: new PeerAddressCache(),
    clock: () => now,
    logger: nullLogger,
    inboundBindHost: '::1',
    acceptTimeoutMs: over.acceptTimeoutMs ?? 10_000,
    inboundConnectTimeoutMs: 2_000,
    ...(over.connect ? { connect: over.connect as never } : {}),
  })
  return { tcp, reflector, server, output, dials, setNow: (t: number) => (now = t) }
}

function parsed(packet: Uint8Array): Ipv6Packet {
  const p = new Ipv6Packet()
  assert.equal(parseIpv6Into(p, Buffer.from(packet)), null)
  return p
}

const syn = (sport: number, dport: number, seq = 1000) => naivePacket({ src: A, dst: P, protocol: 6, l4: tcpHeader({ sport, dport, seq, ack: 0, flags: 0x02 }) })

test('a SYN to P is held until the Pilot stream opens, retransmissions are dropped, then it is reflected R:x → A:L', async () => {
  const { tcp, output, dials, server, reflector } = await rig()
  try {
    tcp.handleOutbound(0, parsed(syn(40000, 80)))
    assert.equal(dials.length, 1)
    assert.deepEqual({ ...dials[0]!.node }, { network: 0, node: 7 })
    assert.equal(dials[0]!.port, 80)
    assert.equal(output.queued.length, 0, 'held, not reflected yet')
    tcp.handleOutbound(0, parsed(syn(40000, 80)))
    assert.deepEqual(output.drops, ['tcp-syn-pending'])
    assert.equal(dials.length, 1, 'no second dial')
    dials[0]!.resolve(new PassThrough())
    await waitFor(() => output.queued.length === 1, 'reflected SYN')
    const out = output.queued[0]!
    assert.deepEqual(bytes(out.subarray(8, 24)), bytes(R))
    assert.deepEqual(bytes(out.subarray(24, 40)), bytes(A))
    assert.equal(u16(out, 42), listenerPortOf(server))
    assert.equal(u32(out, 44), 1000, 'same sequence number')
    assert.ok(naiveVerify(out))
    assert.equal(reflector.lookupByReflectedPort(u16(out, 40))?.localPort, 40000)
    assert.equal(tcp.stats().outboundConnected, 1)
  } finally {
    await tcp.close()
  }
})

test('dial failures: refused → RST to the program; no trust → unreachable code 1; anything else → code 3; daemon closing → nothing', async () => {
  const { tcp, output, dials } = await rig()
  try {
    for (const port of [1, 2, 3, 4]) tcp.handleOutbound(0, parsed(syn(41000 + port, port, 5000)))
    dials[0]!.reject(Object.assign(new Error('refused'), { code: 'PT_CONNECTION_REFUSED' }))
    dials[1]!.reject(Object.assign(new Error('trust'), { code: 'PT_TRUST_REQUIRED' }))
    dials[2]!.reject(Object.assign(new Error('lost'), { code: 'PT_PEER_UNREACHABLE' }))
    dials[3]!.reject(Object.assign(new Error('closing'), { code: 'PT_DAEMON_CLOSED' }))
    await waitFor(() => output.queued.length === 1 && output.unreachables.length === 2, 'answers')
    const rst = output.queued[0]!
    assert.deepEqual(bytes(rst.subarray(8, 24)), bytes(P), 'from P')
    assert.deepEqual([u16(rst, 40), u16(rst, 42)], [1, 41001])
    assert.equal(rst[53]! & 0x04, 0x04, 'RST')
    assert.equal(u32(rst, 48), 5001, 'acks the SYN')
    assert.ok(naiveVerify(rst))
    assert.deepEqual(
      output.unreachables.map((u) => [u.code, u16(u.packet, 42)]),
      [
        [UNREACH_ADMIN_PROHIBITED, 2],
        [UNREACH_ADDRESS, 3],
      ],
    )
    assert.deepEqual(bytes(output.unreachables[0]!.packet), bytes(syn(41002, 2, 5000)), 'quotes the held SYN')
    const s = tcp.stats()
    assert.deepEqual([s.outboundRefused, s.outboundUntrusted, s.outboundUnreachable], [1, 1, 1])
    // The failed dials are forgotten: a new SYN dials again.
    tcp.handleOutbound(0, parsed(syn(41001, 1)))
    assert.equal(dials.length, 5)
  } finally {
    await tcp.close()
  }
})

test('a malformed TCP header is counted through the output; an unknown flow to R is answered by the reflector', async () => {
  const { tcp, output } = await rig()
  try {
    const bad = naivePacket({ src: A, dst: P, protocol: 6, l4: new Uint8Array(12) })
    tcp.handleOutbound(0, parsed(bad))
    assert.deepEqual(output.drops, ['malformed'])
    const stray = naivePacket({ src: A, dst: R, protocol: 6, l4: tcpHeader({ sport: 5555, dport: 12345, seq: 1, ack: 2, flags: 0x10 }) })
    tcp.handleReflected(0, parsed(stray))
    assert.equal(output.queued.length, 1)
    assert.equal(output.queued[0]![53]! & 0x04, 0x04, 'an RST back')
    const rstToR = naivePacket({ src: A, dst: R, protocol: 6, l4: tcpHeader({ sport: 5555, dport: 12345, seq: 1, ack: 2, flags: 0x04 }) })
    tcp.handleReflected(0, parsed(rstToR))
    assert.deepEqual(output.drops, ['malformed', 'tcp-reflector'])
  } finally {
    await tcp.close()
  }
})

test('a connected dial the kernel never accepts times out on the tick; its stream is destroyed', async () => {
  const { tcp, output, dials, setNow } = await rig({ acceptTimeoutMs: 500 })
  try {
    setNow(2000)
    tcp.handleOutbound(0, parsed(syn(40100, 80)))
    const stream = new PassThrough()
    dials[0]!.resolve(stream)
    await waitFor(() => output.queued.length === 1, 'reflected SYN')
    tcp.expire(2499)
    assert.equal(stream.destroyed, false)
    tcp.expire(2500)
    assert.equal(stream.destroyed, true)
    assert.equal(tcp.stats().acceptTimeouts, 1)
  } finally {
    await tcp.close()
  }
})

test('the listener destroys connections that are not reflected flows', async () => {
  const { tcp, server } = await rig()
  try {
    const s = netConnect({ host: '::1', port: listenerPortOf(server) })
    s.on('error', () => {})
    await new Promise<void>((r) => s.once('close', () => r()))
    assert.equal(tcp.stats().listenerStrangers, 1)
  } finally {
    await tcp.close()
  }
  assert.equal(server.listening, false, 'close() closes the listener')
})

test('inbound: refused by the local kernel → the Pilot SYN is refused and the reflector flow released', async () => {
  // Find a port with nothing listening: bind, note, close.
  const probe: Server = createServer()
  await new Promise<void>((r) => probe.listen({ host: '::1', port: 0 }, r))
  const deadPort = (probe.address() as { port: number }).port
  await new Promise<void>((r) => probe.close(() => r()))
  const { tcp, reflector } = await rig({ connect: () => netConnect({ host: '::1', port: deadPort }) })
  try {
    let refused = 0
    let accepted = 0
    const req: IncomingStreamRequest = {
      remote: { network: 0, node: 7 },
      remotePort: 50000,
      localPort: 8080,
      accept: () => {
        accepted++
        return new PassThrough()
      },
      refuse: () => void refused++,
    }
    tcp.onIncoming(req)
    assert.equal(reflector.liveFlows, 1, 'registered while connecting')
    await waitFor(() => refused === 1, 'refused')
    assert.equal(accepted, 0)
    assert.equal(reflector.liveFlows, 0)
    assert.deepEqual([tcp.stats().inboundOffered, tcp.stats().inboundRefused], [1, 1])
  } finally {
    await tcp.close()
  }
})
