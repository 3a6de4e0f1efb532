// The TUN bridge in networks (issue 13): our address in network N is A_N
// (prefix:N::node); what a program sends into a network we are not in, or to
// a port N's policy closes, is answered at once with ICMPv6 "administratively
// prohibited"; what arrives from N is addressed to A_N.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import type { Duplex } from 'node:stream'
import { TunBridge } from '../../src/tun/bridge.js'
import { MemoryTun } from '../../src/tun/testing/memory-tun.js'
import type { BridgeDatagram, BridgeHost, BridgePong, IncomingStreamRequest, NetworkVerdict } from '../../src/tun/bridge-host.js'
import type { PilotAddress } from '../../src/protocol/address.js'
import { DEFAULT_OVERLAY_PREFIX, mapPilotToIpv6 } from '../../src/protocol/ipv6-mapping.js'
import { naivePacket, naiveVerify, udpHeader } from './packet-oracle.js'
import { waitFor } from '../daemon/helpers.js'

const PREFIX = DEFAULT_OVERLAY_PREFIX
const SELF = { network: 0, node: 0x2a }
const A = mapPilotToIpv6(SELF, PREFIX)
const A5 = mapPilotToIpv6({ network: 5, node: 0x2a }, PREFIX)
const P5 = mapPilotToIpv6({ network: 5, node: 7 }, PREFIX)
const P9 = mapPilotToIpv6({ network: 9, node: 7 }, PREFIX)
const bytes = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.byteLength)

/** Network 5: we and node 7 are members, ports 80 and 53 allowed. Network 9: not joined. */
class NetworkHost implements BridgeHost {
  readonly address = SELF
  datagramHandler: ((d: BridgeDatagram) => void) | null = null
  pongHandler: ((p: BridgePong) => void) | null = null
  readonly sent: Array<{ node: PilotAddress; port: number; sourcePort: number | undefined }> = []
  readonly pinged: PilotAddress[] = []
  readonly dialed: Array<{ node: PilotAddress; port: number }> = []
  openStream(node: PilotAddress, port: number): Promise<Duplex> {
    this.dialed.push({ node, port })
    return Promise.reject(Object.assign(new Error('no'), { code: 'PT_PEER_UNREACHABLE' }))
  }
  setDefaultStreamHandler(_h: ((r: IncomingStreamRequest) => void) | null): void {}
  sendDatagram(node: PilotAddress, port: number, data: Uint8Array, sourcePort?: number): number {
    this.sent.push({ node, port, sourcePort })
    return data.length
  }
  onDatagram(h: ((d: BridgeDatagram) => void) | null): void {
    this.datagramHandler = h
  }
  sendPing(node: PilotAddress): number {
    this.pinged.push(node)
    return 500 + this.pinged.length
  }
  onPong(h: ((p: BridgePong) => void) | null): void {
    this.pongHandler = h
  }
  isTrusted(): boolean {
    return false
  }
  networkVerdict(node: number, port: number, protocol: 'stream' | 'datagram' | 'ping', network: number, otherPort?: number): NetworkVerdict {
    if (network !== 5) return 'notJoined'
    if (node !== 7) return 'notMember'
    if (protocol === 'ping') return null
    const allowed = (p: number | undefined) => p === 80 || p === 53
    return allowed(port) || (protocol === 'datagram' && allowed(otherPort)) ? null : 'portNotAllowed'
  }
  resolve(): Promise<{ node_id: number }> {
    return Promise.reject(new Error('unused'))
  }
}

/** A bare TCP header: ports, seq 1, flags, window. */
function tcpHeader(sport: number, dport: number, flags: number): Uint8Array {
  const h = new Uint8Array(20)
  h[0] = sport >> 8
  h[1] = sport & 0xff
  h[2] = dport >> 8
  h[3] = dport & 0xff
  h[7] = 1
  h[12] = 5 << 4
  h[13] = flags
  h[14] = 0xff
  return h
}

async function withBridge(fn: (host: NetworkHost, tun: MemoryTun, bridge: TunBridge) => Promise<void>): Promise<void> {
  const host = new NetworkHost()
  const tun = new MemoryTun({ name: 'pt-nets0' })
  const bridge = await TunBridge.start({ host, device: tun, prefix: PREFIX, listenHost: '::1', inboundBindHost: '::1' })
  try {
    await fn(host, tun, bridge)
  } finally {
    await bridge.close()
    tun.close()
  }
}

/** The ICMPv6 error at `i`: type 1 (unreachable), code 1 (administratively prohibited), to `to`. */
function assertProhibited(tun: MemoryTun, i: number, to: Uint8Array): void {
  const p = tun.written[i]!
  assert.deepEqual([p[40], p[41]], [1, 1], 'destination unreachable, administratively prohibited')
  assert.deepEqual(bytes(p.subarray(24, 40)), bytes(to))
  assert.ok(naiveVerify(p))
}

test('UDP into a network: allowed ports go out from A_N, others and networks we are not in are refused at once', async () => {
  await withBridge(async (host, tun, bridge) => {
    tun.inject(naivePacket({ src: A5, dst: P5, protocol: 17, l4: udpHeader(40000, 80, Buffer.from('to 80')) }))
    // A service's reply from port 53 to the peer's ephemeral port passes too.
    tun.inject(naivePacket({ src: A5, dst: P5, protocol: 17, l4: udpHeader(53, 41000, Buffer.from('reply')) }))
    await waitFor(() => host.sent.length === 2, 'two datagrams sent')
    assert.deepEqual(host.sent.map((s) => [s.node.network, s.node.node, s.port, s.sourcePort]), [
      [5, 7, 80, 40000],
      [5, 7, 41000, 53],
    ])
    tun.inject(naivePacket({ src: A5, dst: P5, protocol: 17, l4: udpHeader(40000, 8080, Buffer.from('closed')) }))
    // Network 9: the kernel picks A (the /48 route) as source; we are no member.
    tun.inject(naivePacket({ src: A, dst: P9, protocol: 17, l4: udpHeader(40000, 80, Buffer.from('stranger')) }))
    await waitFor(() => tun.written.length === 2, 'two refusals')
    assertProhibited(tun, 0, A5)
    assertProhibited(tun, 1, A)
    const d = bridge.stats().drops
    assert.equal(d['port-not-allowed'], 1)
    assert.equal(d['not-member'], 1)
    assert.equal(host.sent.length, 2)
  })
})

test('TCP SYN into a network: a closed port or a network we are not in is refused before any dial', async () => {
  await withBridge(async (host, tun, bridge) => {
    tun.inject(naivePacket({ src: A5, dst: P5, protocol: 6, l4: tcpHeader(40000, 8080, 0x02) }))
    tun.inject(naivePacket({ src: A, dst: P9, protocol: 6, l4: tcpHeader(40001, 80, 0x02) }))
    // A5 towards network 9: an address of ours in another network than the destination's.
    tun.inject(naivePacket({ src: A5, dst: P9, protocol: 6, l4: tcpHeader(40002, 80, 0x02) }))
    await waitFor(() => tun.written.length === 3, 'three refusals')
    assertProhibited(tun, 0, A5)
    assertProhibited(tun, 1, A)
    assertProhibited(tun, 2, A5)
    const d = bridge.stats().drops
    assert.equal(d['port-not-allowed'], 1)
    assert.equal(d['not-member'], 2)
    // An allowed port is reflected and dialled in network 5.
    tun.inject(naivePacket({ src: A5, dst: P5, protocol: 6, l4: tcpHeader(40003, 80, 0x02) }))
    await waitFor(() => host.dialed.length === 1, 'dialled')
    assert.deepEqual([host.dialed[0]!.node.network, host.dialed[0]!.node.node, host.dialed[0]!.port], [5, 7, 80])
  })
})

test('what arrives from network 5 is addressed to A_5: datagrams and echo replies', async () => {
  await withBridge(async (host, tun) => {
    host.datagramHandler!({ from: { network: 5, node: 7 }, fromPort: 80, toPort: 40000, data: Buffer.from('back') })
    await waitFor(() => tun.written.length === 1, 'datagram written')
    const udp = tun.written[0]!
    assert.deepEqual(bytes(udp.subarray(8, 24)), bytes(P5))
    assert.deepEqual(bytes(udp.subarray(24, 40)), bytes(A5))
    assert.ok(naiveVerify(udp))
    // From network 9 (not ours): dropped, counted.
    host.datagramHandler!({ from: { network: 9, node: 7 }, fromPort: 80, toPort: 40000, data: Buffer.from('stray') })
    const l4 = Uint8Array.of(128, 0, 0, 0, 0x12, 0x34, 0, 1, 0xaa)
    tun.inject(naivePacket({ src: A5, dst: P5, protocol: 58, l4 }))
    await waitFor(() => host.pinged.length === 1, 'pinged')
    assert.deepEqual({ ...host.pinged[0]! }, { network: 5, node: 7 })
    host.pongHandler!({ remote: { network: 5, node: 7 }, id: 501 })
    await waitFor(() => tun.written.length === 2, 'echo reply written')
    const reply = tun.written[1]!
    assert.equal(reply[40], 129)
    assert.deepEqual(bytes(reply.subarray(24, 40)), bytes(A5))
    assert.ok(naiveVerify(reply))
    // Ping into network 9: refused at once.
    tun.inject(naivePacket({ src: A, dst: P9, protocol: 58, l4 }))
    await waitFor(() => tun.written.length === 3, 'refused')
    assertProhibited(tun, 2, A)
  })
})
