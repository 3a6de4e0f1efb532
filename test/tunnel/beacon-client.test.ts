// The beacon client (beacon-client.ts): what it sends to the beacon, and how it handles each
// beacon message, with a recording bind and port; no beacon server.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { BeaconType, encodeBeaconMessage } from '../../src/protocol/beacon-messages.js'
import { BeaconClient, PUNCH_COPIES } from '../../src/tunnel/beacon-client.js'
import { DEFAULT_LIMITS } from '../../src/tunnel/limits.js'
import { DEFAULT_TIMING } from '../../src/tunnel/timing.js'
import { newDropCounters, newTunnelCounters } from '../../src/tunnel/stats.js'
import type { UdpEndpoint } from '../../src/tunnel/bind.js'

const BEACON: UdpEndpoint = { host: '10.0.0.254', port: 9001 }

interface Sent {
  data: Buffer
  parts: number
  to: string
}

function setup(beacon: UdpEndpoint | null = BEACON) {
  const sent: Sent[] = []
  const calls: string[] = []
  const relayed: { frame: Buffer; sender: number }[] = []
  const drops = newDropCounters()
  const counters = newTunnelCounters()
  const clock = { t: 5_000, now(): number { return this.t } }
  const client = new BeaconClient({
    nodeId: 0x01020304,
    beacon,
    bind: {
      send: (parts, host, port) => {
        const list = Array.isArray(parts) ? (parts as readonly Uint8Array[]) : [parts as Uint8Array]
        sent.push({ data: Buffer.concat(list), parts: list.length, to: `${host}:${port}` })
      },
    },
    clock,
    keepaliveMs: 1_000,
    drops,
    counters,
    port: {
      onRelayed: (frame, host, port, sender) => {
        relayed.push({ frame, sender })
        calls.push(`relayed from ${sender} via ${host}:${port}`)
      },
      sendKeyFrameTo: (host, port) => calls.push(`key to ${host}:${port}`),
      onPunchCommand: (host, port, now) => calls.push(`punched ${host}:${port} at ${now}`),
    },
  })
  return { client, sent, calls, relayed, drops, counters, clock }
}

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex')

test('Discover (type and our node ID) goes to the beacon at once and then once per keepalive', () => {
  const { client, sent } = setup()
  client.discover(100)
  assert.deepEqual(sent.map((s) => [hex(s.data), s.to]), [['0101020304', '10.0.0.254:9001']])
  client.discoverIfDue(1_099)
  assert.equal(sent.length, 1)
  client.discoverIfDue(1_100)
  assert.equal(sent.length, 2)
})

test('PunchRequest names us and the target', () => {
  const { client, sent } = setup()
  assert.equal(client.requestPunch(0x0a0b0c0d), true)
  assert.deepEqual(sent.map((s) => [s.data[0], hex(s.data.subarray(1)), s.to]), [[BeaconType.PUNCH_REQUEST, '010203040a0b0c0d', '10.0.0.254:9001']])
})

test('a relayed frame goes to the beacon as a gather send: Relay header (us, destination), then the frame untouched', () => {
  const { client, sent } = setup()
  const frame = Buffer.from('PILSframe')
  client.sendRelayed(frame, 7)
  assert.equal(sent.length, 1)
  assert.equal(sent[0]!.parts, 2)
  assert.equal(sent[0]!.to, '10.0.0.254:9001')
  assert.deepEqual(hex(sent[0]!.data), hex(encodeBeaconMessage({ type: BeaconType.RELAY, senderId: 0x01020304, destId: 7, frame })))
})

test('without a beacon nothing is sent, and every beacon message is spoofed', () => {
  const { client, sent, drops } = setup(null)
  client.discover(0)
  assert.equal(client.requestPunch(2), false)
  assert.equal(sent.length, 0)
  client.handle(encodeBeaconMessage({ type: BeaconType.DISCOVER_REPLY, endpoint: { host: '1.2.3.4', port: 5 } }), BEACON.host, BEACON.port)
  assert.equal(drops['beacon-spoofed'], 1)
  assert.equal(client.publicEndpoint, null)
})

test('beacon messages count only from the beacon endpoint (an IPv4-mapped source is the same host)', () => {
  const { client, drops } = setup()
  const reply = encodeBeaconMessage({ type: BeaconType.DISCOVER_REPLY, endpoint: { host: '1.2.3.4', port: 5 } })
  client.handle(reply, BEACON.host, BEACON.port + 1)
  client.handle(reply, '10.0.0.253', BEACON.port)
  assert.equal(drops['beacon-spoofed'], 2)
  assert.equal(client.publicEndpoint, null)
  client.handle(reply, `::ffff:${BEACON.host}`, BEACON.port)
  assert.deepEqual(client.publicEndpoint, { host: '1.2.3.4', port: 5 })
})

test('PunchCommand: three PILP and our PILA towards the endpoint, then the tunnel hears of it; port 0 is only counted', () => {
  const { client, sent, calls, counters } = setup()
  client.handle(encodeBeaconMessage({ type: BeaconType.PUNCH_COMMAND, endpoint: { host: '::ffff:192.0.2.7', port: 4444 } }), BEACON.host, BEACON.port)
  assert.deepEqual(sent.map((s) => [s.data.toString('latin1'), s.to]), [
    ['PILP', '192.0.2.7:4444'],
    ['PILP', '192.0.2.7:4444'],
    ['PILP', '192.0.2.7:4444'],
  ])
  assert.deepEqual(calls, ['key to 192.0.2.7:4444', 'punched 192.0.2.7:4444 at 5000'])
  client.handle(encodeBeaconMessage({ type: BeaconType.PUNCH_COMMAND, endpoint: { host: '192.0.2.7', port: 0 } }), BEACON.host, BEACON.port)
  assert.equal(counters.punchCommands, 2)
  assert.equal(sent.length, 3)
  assert.equal(calls.length, 2)
})

test('10,000 PunchCommands for random targets: at most the burst of punches (4 datagrams each) until the budget refills', () => {
  const { client, sent, calls, drops, counters, clock } = setup()
  const punch = (host: string, port: number): void =>
    client.handle(encodeBeaconMessage({ type: BeaconType.PUNCH_COMMAND, endpoint: { host, port } }), BEACON.host, BEACON.port)
  for (let i = 0; i < 10_000; i++) punch(`198.51.${(i >> 8) & 255}.${i & 255}`, 1_000 + (i % 60_000))
  const keyFrames = (): number => calls.filter((c) => c.startsWith('key to')).length
  assert.equal(counters.punchCommands, 10_000)
  assert.equal(sent.length, DEFAULT_LIMITS.punchBurst * PUNCH_COPIES, `PILP sent: ${sent.length}`)
  assert.equal(keyFrames(), DEFAULT_LIMITS.punchBurst, 'one PILA per punch')
  assert.equal(drops['punch-limited'], 10_000 - DEFAULT_LIMITS.punchBurst)
  clock.t += 1_000 // the global budget refills at punchesPerSecond
  for (let i = 0; i < 1_000; i++) punch(`203.0.113.${i & 255}`, 2_000 + i)
  assert.equal(keyFrames(), DEFAULT_LIMITS.punchBurst + DEFAULT_LIMITS.punchesPerSecond)
})

test('PunchCommands towards one target: one punch per punchTargetIntervalMs, without spending the global budget', () => {
  const { client, calls, drops, clock } = setup()
  const punch = (port: number): void =>
    client.handle(encodeBeaconMessage({ type: BeaconType.PUNCH_COMMAND, endpoint: { host: '192.0.2.9', port } }), BEACON.host, BEACON.port)
  for (let i = 0; i < 100; i++) punch(4444)
  assert.deepEqual(calls, ['key to 192.0.2.9:4444', 'punched 192.0.2.9:4444 at 5000'])
  assert.equal(drops['punch-limited'], 99)
  punch(4445) // another port is another target
  clock.t += DEFAULT_TIMING.punchTargetIntervalMs
  punch(4444)
  assert.deepEqual(calls.filter((c) => c.startsWith('key to')), ['key to 192.0.2.9:4444', 'key to 192.0.2.9:4445', 'key to 192.0.2.9:4444'])
})

test('RelayDeliver hands the inner frame (a view) and the sender the beacon vouches for to the tunnel', () => {
  const { client, relayed, calls, counters, drops } = setup()
  const inner = Buffer.from('PILS0123456789')
  const msg = encodeBeaconMessage({ type: BeaconType.RELAY_DELIVER, senderId: 42, frame: inner })
  client.handle(msg, BEACON.host, BEACON.port)
  assert.deepEqual(calls, ['relayed from 42 via 10.0.0.254:9001'])
  assert.equal(relayed[0]!.frame.toString(), inner.toString())
  assert.equal(relayed[0]!.frame.buffer, msg.buffer, 'a view into the datagram, not a copy')
  assert.equal(counters.relayDelivers, 1)
  // Shorter than a header and a magic: malformed, not handed on.
  client.handle(msg.subarray(0, 8), BEACON.host, BEACON.port)
  assert.equal(drops['relay-malformed'], 1)
  assert.equal(relayed.length, 1)
})

test('messages a daemon never receives are unexpected; a broken PunchCommand is malformed', () => {
  const { client, drops, calls } = setup()
  client.handle(encodeBeaconMessage({ type: BeaconType.DISCOVER, nodeId: 1 }), BEACON.host, BEACON.port)
  client.handle(encodeBeaconMessage({ type: BeaconType.PUNCH_REQUEST, requesterId: 1, targetId: 2 }), BEACON.host, BEACON.port)
  assert.equal(drops['beacon-unexpected'], 2)
  const broken = encodeBeaconMessage({ type: BeaconType.PUNCH_COMMAND, endpoint: { host: '1.2.3.4', port: 5 } }).subarray(0, 4)
  client.handle(broken, BEACON.host, BEACON.port)
  assert.equal(drops['beacon-malformed'], 1)
  assert.deepEqual(calls, [])
})
