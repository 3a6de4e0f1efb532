// TunFrontDoor.start with a MemoryTun: the .pilot DNS responder is optional.
// When its port cannot be bound (taken, not a local address, no privilege
// for port 53) the front door still comes up without it, says so in one
// warning and in status().dns, and closes cleanly; the packet path works.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createSocket, type Socket } from 'node:dgram'
import type { Duplex } from 'node:stream'
import { TunFrontDoor, describeDnsStartFailure } from '../../src/tun/bridge-setup.js'
import { MemoryTun } from '../../src/tun/testing/memory-tun.js'
import type { BridgeDatagram, BridgeHost, BridgePong, IncomingStreamRequest } from '../../src/tun/bridge-host.js'
import type { PilotAddress } from '../../src/protocol/address.js'
import { mapPilotToIpv6, parseOverlayPrefix } from '../../src/protocol/ipv6-mapping.js'
import { MemoryLogger } from '../../src/logger.js'
import { naivePacket, udpHeader } from './packet-oracle.js'
import { waitFor } from '../daemon/helpers.js'
import { activeResources } from '../daemon/world.js'

const PREFIX_TEXT = '2001:db8:77::/48'
const PREFIX = parseOverlayPrefix(PREFIX_TEXT)
const SELF = { network: 0, node: 0x51 }
const PEER = { network: 0, node: 0x52 }

/** Just enough daemon for the bridge: records datagrams, answers nothing else. */
class QuietHost implements BridgeHost {
  readonly address = SELF
  readonly sent: Array<{ node: PilotAddress; port: number }> = []
  openStream(): Promise<Duplex> {
    return Promise.reject(Object.assign(new Error('unreachable'), { code: 'PT_PEER_UNREACHABLE' }))
  }
  setDefaultStreamHandler(_h: ((r: IncomingStreamRequest) => void) | null): void {}
  sendDatagram(node: PilotAddress, port: number, data: Uint8Array): number {
    this.sent.push({ node, port })
    return data.length
  }
  onDatagram(_h: ((d: BridgeDatagram) => void) | null): void {}
  sendPing(): number {
    return 1
  }
  onPong(_h: ((p: BridgePong) => void) | null): void {}
  isTrusted(): boolean {
    return true
  }
  networkVerdict(): 'notJoined' {
    return 'notJoined'
  }
  resolve(): Promise<{ node_id: number }> {
    return Promise.reject(Object.assign(new Error('no such name'), { code: 'PT_NAME_NOT_FOUND' }))
  }
}

async function holdUdpPort(): Promise<{ socket: Socket; port: number }> {
  const socket = createSocket({ type: 'udp6', ipv6Only: true })
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject)
    socket.bind({ address: '::1', port: 0, exclusive: true }, () => resolve())
  })
  return { socket, port: socket.address().port }
}

function startDoor(host: BridgeHost, tun: MemoryTun, dnsBind: { host: string; port: number }, logger: MemoryLogger): Promise<TunFrontDoor> {
  return TunFrontDoor.start(host, { device: tun, prefix: PREFIX_TEXT, listenHost: '::1', dnsBind, commandRunner: () => Promise.reject(new Error('no commands here')) }, logger)
}

test('a DNS port already in use: the front door comes up without DNS, warns once, status says why', async () => {
  const baseline = activeResources()
  const held = await holdUdpPort()
  const logger = new MemoryLogger()
  const host = new QuietHost()
  const tun = new MemoryTun({ name: 'pt-dns0' })
  const door = await startDoor(host, tun, { host: '::1', port: held.port }, logger)
  try {
    assert.equal(door.dns, null, 'no responder')
    const dns = door.status().dns
    assert.match(dns, /^failed: /, dns)
    assert.match(dns, new RegExp(`\\[::1\\]:${held.port}`), 'names the address it tried')
    assert.match(dns, /EADDRINUSE/)
    assert.equal(door.stats().dns, null)

    const warnings = logger.lines.filter((l) => l.level === 'warn')
    assert.equal(warnings.length, 1, JSON.stringify(logger.lines))
    assert.match(warnings[0]!.message, /DNS/)
    assert.equal(warnings[0]!.fields['code'], 'EADDRINUSE')
    assert.equal(warnings[0]!.fields['component'], 'dns')

    // The rest of the front door works: a UDP packet to a peer goes out as a Pilot datagram.
    tun.inject(naivePacket({ src: mapPilotToIpv6(SELF, PREFIX), dst: mapPilotToIpv6(PEER, PREFIX), protocol: 17, l4: udpHeader(4000, 5000, Buffer.from('x')) }))
    await waitFor(() => host.sent.length === 1, 'datagram through the bridge')
    assert.deepEqual([host.sent[0]!.node.node, host.sent[0]!.port], [PEER.node, 5000])
  } finally {
    await door.close()
    await new Promise<void>((r) => held.socket.close(() => r()))
  }
  assert.ok(tun.closed, 'close() closed the device')
  await waitFor(() => activeResources().length <= baseline.length, `handles left: ${activeResources().join(', ')}`, 3_000)
})

test('a DNS address that is not local (EADDRNOTAVAIL) degrades the same way', async () => {
  const logger = new MemoryLogger()
  const tun = new MemoryTun({ name: 'pt-dns1' })
  const door = await startDoor(new QuietHost(), tun, { host: '2001:db8:77::99', port: 0 }, logger)
  try {
    assert.equal(door.dns, null)
    assert.match(door.status().dns, /^failed: .*EADDRNOTAVAIL/)
    assert.equal(logger.lines.filter((l) => l.level === 'warn').length, 1)
  } finally {
    await door.close()
  }
})

test('a DNS responder that binds is reported with its hint, not as failed', async () => {
  const logger = new MemoryLogger()
  const tun = new MemoryTun({ name: 'pt-dns2' })
  const door = await startDoor(new QuietHost(), tun, { host: '::1', port: 0 }, logger)
  try {
    assert.notEqual(door.dns, null)
    assert.match(door.status().dns, /^dig @::1 /)
    assert.deepEqual(logger.lines.filter((l) => l.level === 'warn'), [])
  } finally {
    await door.close()
  }
})

test('dns: off is "off", with nothing bound and nothing logged', async () => {
  const logger = new MemoryLogger()
  const tun = new MemoryTun({ name: 'pt-dns3' })
  const door = await TunFrontDoor.start(new QuietHost(), { device: tun, prefix: PREFIX_TEXT, listenHost: '::1', dns: false }, logger)
  try {
    assert.equal(door.status().dns, 'off')
    assert.deepEqual(logger.lines.filter((l) => l.level === 'warn'), [])
  } finally {
    await door.close()
  }
})

test('describeDnsStartFailure names the address, the errno and what to do about it', () => {
  const errno = (code: string, message: string) => Object.assign(new Error(message), { code })
  const eacces = describeDnsStartFailure(errno('EACCES', 'bind EACCES fd50::2a:53'), 'fd50::2a', 53)
  assert.match(eacces, /^cannot bind \[fd50::2a\]:53 \(EACCES\)/)
  assert.match(eacces, /CAP_NET_BIND_SERVICE/)
  const inUse = describeDnsStartFailure(errno('EADDRINUSE', 'bind EADDRINUSE'), 'fd50::2a', 53)
  assert.match(inUse, /^cannot bind \[fd50::2a\]:53 \(EADDRINUSE\)/)
  assert.match(inUse, /another DNS server/)
  assert.doesNotMatch(inUse, /CAP_NET_BIND_SERVICE/)
  // Something without an errno keeps its message.
  assert.equal(describeDnsStartFailure(new Error('odd'), '::1', 5353), 'cannot bind [::1]:5353: odd')
})
