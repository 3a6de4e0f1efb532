// TunBridge.start with a MemoryTun and a fake daemon (BridgeHost), in a
// non-default overlay prefix: what it builds (A, R, the listener and the
// reflector for its port), the hooks it sets and removes, and the address
// mapping on the UDP, ICMPv6 and drop paths. bridge.test.ts runs the same
// bridge against whole daemons in the default prefix.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { connect as netConnect } from 'node:net'
import type { Duplex } from 'node:stream'
import { TunBridge } from '../../src/tun/bridge.js'
import { MemoryTun } from '../../src/tun/testing/memory-tun.js'
import type { BridgeDatagram, BridgeHost, BridgePong, IncomingStreamRequest } from '../../src/tun/bridge-host.js'
import type { PilotAddress } from '../../src/protocol/address.js'
import { DEFAULT_OVERLAY_PREFIX, mapPilotToIpv6, parseIpv6, parseOverlayPrefix, reflectorIpv6 } from '../../src/protocol/ipv6-mapping.js'
import { naivePacket, naiveVerify, udpHeader } from './packet-oracle.js'
import { waitFor } from '../daemon/helpers.js'
import { activeResources } from '../daemon/world.js'

const PREFIX = parseOverlayPrefix('2001:db8:42::/48')
const SELF = { network: 3, node: 0x2a }
const PEER = { network: 3, node: 7 }
const A = mapPilotToIpv6(SELF, PREFIX)
const P = mapPilotToIpv6(PEER, PREFIX)
const bytes = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.byteLength)
const u16 = (b: Uint8Array, o: number) => (b[o]! << 8) | b[o + 1]!

class FakeHost implements BridgeHost {
  readonly address = SELF
  datagramHandler: ((d: BridgeDatagram) => void) | null = null
  pongHandler: ((p: BridgePong) => void) | null = null
  streamHandler: ((r: IncomingStreamRequest) => void) | null = null
  readonly sent: Array<{ node: PilotAddress; port: number; data: string; sourcePort: number | undefined }> = []
  readonly pinged: PilotAddress[] = []
  openStream(): Promise<Duplex> {
    return Promise.reject(Object.assign(new Error('no'), { code: 'PT_PEER_UNREACHABLE' }))
  }
  setDefaultStreamHandler(h: ((r: IncomingStreamRequest) => void) | null): void {
    this.streamHandler = h
  }
  sendDatagram(node: PilotAddress, port: number, data: Uint8Array, sourcePort?: number): number {
    this.sent.push({ node, port, data: Buffer.from(data).toString(), sourcePort })
    return data.length
  }
  onDatagram(h: ((d: BridgeDatagram) => void) | null): void {
    this.datagramHandler = h
  }
  sendPing(node: PilotAddress): number {
    this.pinged.push(node)
    return 100 + this.pinged.length
  }
  onPong(h: ((p: BridgePong) => void) | null): void {
    this.pongHandler = h
  }
  isTrusted(node: number): boolean {
    return node === PEER.node
  }
  networkVerdict(): 'notJoined' {
    return 'notJoined'
  }
  resolve(): Promise<{ node_id: number }> {
    return Promise.reject(new Error('unused'))
  }
}

test('start builds A, R, the listener and a reflector for its port in the configured prefix; close undoes every hook', async () => {
  const baseline = activeResources()
  const host = new FakeHost()
  const tun = new MemoryTun({ name: 'pt-start0' })
  const bridge = await TunBridge.start({ host, device: tun, prefix: PREFIX, listenHost: '::1', inboundBindHost: '::1', tickMs: 50 })
  assert.equal(bridge.localAddressText, '2001:db8:42:3::2a')
  assert.deepEqual(bytes(bridge.localAddress), bytes(A))
  assert.deepEqual(bytes(bridge.reflectorAddress), bytes(reflectorIpv6(PREFIX, 3)))
  assert.equal(bridge.reflector.reflectorAddress, '2001:db8:42:3:0:1:0:1')
  assert.equal(bridge.reflector.prefix, PREFIX)
  assert.equal(bridge.reflector.listenerPort, bridge.listenerPort)
  assert.ok(host.datagramHandler && host.pongHandler && host.streamHandler, 'hooks set')
  // The listener is up on that port (a stranger is counted and dropped).
  const s = netConnect({ host: '::1', port: bridge.listenerPort })
  s.on('error', () => {})
  await new Promise<void>((r) => s.once('close', () => r()))
  assert.equal(bridge.stats().tcp.listenerStrangers, 1)
  await bridge.close()
  assert.ok(bridge.closed)
  assert.equal(host.datagramHandler, null)
  assert.equal(host.pongHandler, null)
  assert.equal(host.streamHandler, null)
  tun.close()
  await waitFor(() => activeResources().length <= baseline.length, `handles: ${activeResources().join(', ')}`, 3_000)
})

test('a listener that cannot bind fails start and leaves no hook behind', async () => {
  const host = new FakeHost()
  const tun = new MemoryTun({ name: 'pt-start1' })
  // A is not a local address here, so binding the listener to it fails.
  await assert.rejects(TunBridge.start({ host, device: tun, prefix: PREFIX }))
  assert.equal(host.datagramHandler, null)
  assert.equal(host.streamHandler, null)
  tun.inject(naivePacket({ src: A, dst: P, protocol: 17, l4: udpHeader(1, 2, Buffer.from('x')) }))
  await new Promise((r) => setImmediate(r))
  assert.equal(host.sent.length, 0, 'nobody reads the TUN')
  tun.close()
})

test('packet paths map addresses with the configured prefix: UDP out and in, echo and reply, strays', async () => {
  const host = new FakeHost()
  const tun = new MemoryTun({ name: 'pt-start2' })
  const bridge = await TunBridge.start({ host, device: tun, prefix: PREFIX, listenHost: '::1', inboundBindHost: '::1' })
  try {
    // UDP out: to P in this prefix → a Pilot datagram to node 3:7 with both ports.
    tun.inject(naivePacket({ src: A, dst: P, protocol: 17, l4: udpHeader(5000, 6000, Buffer.from('hi')) }))
    await waitFor(() => host.sent.length === 1, 'datagram sent')
    assert.deepEqual({ ...host.sent[0]!.node }, PEER)
    assert.deepEqual([host.sent[0]!.port, host.sent[0]!.sourcePort, host.sent[0]!.data], [6000, 5000, 'hi'])

    // UDP in: from P's node → IPv6/UDP from P (this prefix) to A.
    host.datagramHandler!({ from: PEER, fromPort: 6000, toPort: 5000, data: Buffer.from('back') })
    await waitFor(() => tun.written.length === 1, 'datagram written')
    const udp = tun.written[0]!
    assert.deepEqual(bytes(udp.subarray(8, 24)), bytes(P))
    assert.deepEqual(bytes(udp.subarray(24, 40)), bytes(A))
    assert.equal(udp.subarray(48).toString(), 'back')
    assert.ok(naiveVerify(udp))

    // Echo request to P → Pilot ping to 3:7 → pong → echo reply from P.
    const l4 = Uint8Array.of(128, 0, 0, 0, 0x12, 0x34, 0, 9, 0xaa, 0xbb)
    tun.inject(naivePacket({ src: A, dst: P, protocol: 58, l4 }))
    await waitFor(() => host.pinged.length === 1, 'ping sent')
    assert.deepEqual({ ...host.pinged[0]! }, PEER)
    host.pongHandler!({ remote: { network: 3, node: 8 }, id: 101 }) // from someone else: ignored
    host.pongHandler!({ remote: PEER, id: 101 })
    await waitFor(() => tun.written.length === 2, 'echo reply written')
    const reply = tun.written[1]!
    assert.equal(reply[40], 129)
    assert.deepEqual(bytes(reply.subarray(8, 24)), bytes(P))
    assert.deepEqual([u16(reply, 44), u16(reply, 46)], [0x1234, 9])
    assert.ok(naiveVerify(reply))

    // Strays: the same node in the default prefix is outside ours; node 0, the
    // broadcast node and a non-node address in ours are answered with code 3.
    const before = bridge.stats().drops
    tun.inject(naivePacket({ src: A, dst: mapPilotToIpv6(PEER, DEFAULT_OVERLAY_PREFIX), protocol: 17, l4: udpHeader(1, 2, Buffer.from('x')) }))
    for (const dst of [mapPilotToIpv6({ network: 3, node: 0 }, PREFIX), mapPilotToIpv6({ network: 3, node: 0xffffffff }, PREFIX), parseIpv6('2001:db8:42:3:0:7::1')]) {
      tun.inject(naivePacket({ src: A, dst, protocol: 17, l4: udpHeader(1, 2, Buffer.from('x')) }))
    }
    tun.inject(naivePacket({ src: A, dst: bridge.reflectorAddress, protocol: 17, l4: udpHeader(1, 2, Buffer.from('x')) }))
    await waitFor(() => tun.written.length === 6, 'four unreachables')
    const after = bridge.stats().drops
    assert.equal(after['outside-prefix'] - before['outside-prefix'], 1)
    assert.equal(after['not-a-node'] - before['not-a-node'], 4)
    for (const err of tun.written.slice(2)) {
      assert.deepEqual([err[40], err[41]], [1, 3])
      assert.ok(naiveVerify(err))
    }
    assert.equal(host.sent.length, 1, 'none of them became a datagram')
  } finally {
    await bridge.close()
    tun.close()
  }
})

test('a Pilot datagram whose source is in another network than ours is dropped, not written as IPv6 from that network', async () => {
  const host = new FakeHost()
  const tun = new MemoryTun({ name: 'pt-start3' })
  const bridge = await TunBridge.start({ host, device: tun, prefix: PREFIX, listenHost: '::1', inboundBindHost: '::1' })
  try {
    host.datagramHandler!({ from: { network: 4, node: 7 }, fromPort: 6000, toPort: 5000, data: Buffer.from('spoofed') })
    host.datagramHandler!({ from: PEER, fromPort: 6000, toPort: 5000, data: Buffer.from('fine') })
    await waitFor(() => tun.written.length >= 1, 'the good datagram written')
    await new Promise((r) => setTimeout(r, 20))
    assert.equal(tun.written.length, 1)
    assert.equal(tun.written[0]!.subarray(48).toString(), 'fine')
    assert.equal(bridge.stats().udpInForeignNetwork, 1)
  } finally {
    await bridge.close()
    tun.close()
  }
})

test('a bug in the housekeeping tick is caught: the bridge keeps ticking and the process keeps running', async () => {
  const host = new FakeHost()
  const tun = new MemoryTun({ name: 'pt-start4' })
  const bridge = await TunBridge.start({ host, device: tun, prefix: PREFIX, listenHost: '::1', inboundBindHost: '::1', tickMs: 10, pingTimeoutMs: 30 })
  try {
    let calls = 0
    const reflector = bridge.reflector as unknown as { expire(now: number): void }
    reflector.expire = () => {
      calls++
      throw new Error('housekeeping bug')
    }
    await waitFor(() => calls >= 3, 'three ticks despite the throw', 2_000)
    assert.ok(bridge.stats().tickErrors >= 3)
    // The other parts still expire: an unanswered echo is forgotten after pingTimeoutMs.
    tun.inject(naivePacket({ src: A, dst: P, protocol: 58, l4: Uint8Array.of(128, 0, 0, 0, 0, 1, 0, 1) }))
    await waitFor(() => bridge.stats().pingsExpired === 1, 'the echo expired by the tick', 2_000)
  } finally {
    await bridge.close()
    tun.close()
  }
})
