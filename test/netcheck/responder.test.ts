// The beacon's probe ports (src/netcheck/responder.ts) in front of a BeaconServer, on the in-memory network.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { BeaconServer } from '../../src/beacon/index.js'
import { BeaconType, encodeBeaconMessage } from '../../src/protocol/beacon-messages.js'
import { NetcheckType, decodeNetcheckMessage, encodeNetcheckMessage } from '../../src/protocol/netcheck-messages.js'
import { ProbeResponder, type ProbePortBinds } from '../../src/netcheck/responder.js'
import { MemoryNetwork } from '../../src/tunnel/testing/memory-bind.js'

const hex = (s: string): string => s.replace(/\s+/g, '')

async function settle(rounds = 6): Promise<void> {
  for (let i = 0; i < rounds; i++) await new Promise((r) => setImmediate(r))
}

function rig(opts: { secondAddress?: boolean; controlBurst?: number } = {}) {
  const net = new MemoryNetwork()
  const main = net.bind('192.0.2.1', 9001)
  const probes: ProbePortBinds[] = [{ discover: net.bind('192.0.2.1', 9002), unsolicited: net.bind('192.0.2.1', 0), advertise: { host: null, port: 9002 } }]
  if (opts.secondAddress) probes.push({ discover: net.bind('192.0.2.2', 9003), unsolicited: net.bind('192.0.2.2', 0), advertise: { host: '192.0.2.2', port: 9003 } })
  let ms = 0
  const responder = new ProbeResponder({
    main,
    probes,
    now: () => ms,
    ...(opts.controlBurst === undefined ? {} : { limits: { controlBurst: opts.controlBurst, controlPerSecond: 1 } }),
  })
  const server = new BeaconServer({ bind: responder.beaconBind, now: () => ms })
  server.start()
  const client = net.bind('203.0.113.7', 4000)
  const inbox: Array<{ hex: string; from: string }> = []
  client.onDatagram((d, h, p) => inbox.push({ hex: d.toString('hex'), from: `${h}:${p}` }))
  return {
    net,
    server,
    responder,
    client,
    inbox,
    unsolicitedPorts: probes.map((p) => p.unsolicited.local.port),
    advance: (d: number) => (ms += d),
    async close() {
      await Promise.all([server.close(), responder.close()])
    },
  }
}

const request = (txid: number): Buffer => encodeNetcheckMessage({ type: NetcheckType.PROBE_REQUEST, txid })

test('a ProbeRequest gets ProbeInfo from the beacon port and a ProbeReply from each never-contacted socket', async () => {
  const r = rig({ secondAddress: true })
  try {
    r.client.send(request(5), '192.0.2.1', 9001)
    await settle()
    assert.deepEqual(r.inbox, [
      { hex: hex('09 00000005 04 cb007107 0fa0 02 00 232a 04 c0000202 232b'), from: '192.0.2.1:9001' },
      { hex: hex('0a 00000005 00 04 cb007107 0fa0'), from: `192.0.2.1:${r.unsolicitedPorts[0]}` },
      { hex: hex('0a 00000005 01 04 cb007107 0fa0'), from: `192.0.2.2:${r.unsolicitedPorts[1]}` },
    ])
    const s = r.responder.stats()
    assert.deepEqual([s.probeRequests, s.probeInfosSent, s.unsolicitedSent], [1, 1, 2])
    // The beacon never saw it.
    assert.equal(r.server.stats().datagrams, 0)
  } finally {
    await r.close()
  }
})

test('a short ProbeRequest is dropped: nothing goes out (no amplification)', async () => {
  const r = rig()
  try {
    r.client.send(Buffer.from('0800000005', 'hex'), '192.0.2.1', 9001)
    await settle()
    assert.deepEqual(r.inbox, [])
    assert.equal(r.responder.stats().dropped.malformed, 1)
  } finally {
    await r.close()
  }
})

test('everything else on the beacon port reaches the BeaconServer unchanged', async () => {
  const r = rig()
  try {
    r.client.send(encodeBeaconMessage({ type: BeaconType.DISCOVER, nodeId: 7 }), '192.0.2.1', 9001)
    r.client.send(Buffer.from('0b00', 'hex'), '192.0.2.1', 9001)
    await settle()
    assert.deepEqual(r.inbox, [{ hex: hex('02 04 cb007107 0fa0'), from: '192.0.2.1:9001' }])
    const s = r.server.stats()
    assert.equal(s.nodes, 1)
    assert.equal(s.dropped['unknown-type'], 1)
    assert.equal(r.responder.stats().probeRequests, 0)
  } finally {
    await r.close()
  }
})

test('a probe port answers Discover with the endpoint it saw and records nothing; other messages there are dropped', async () => {
  const r = rig()
  try {
    r.client.send(encodeBeaconMessage({ type: BeaconType.DISCOVER, nodeId: 7 }), '192.0.2.1', 9002)
    r.client.send(encodeBeaconMessage({ type: BeaconType.PUNCH_REQUEST, requesterId: 7, targetId: 8 }), '192.0.2.1', 9002)
    r.client.send(request(1), '192.0.2.1', 9002)
    await settle()
    assert.deepEqual(r.inbox, [{ hex: hex('02 04 cb007107 0fa0'), from: '192.0.2.1:9002' }])
    assert.equal(r.server.stats().nodes, 0)
    const s = r.responder.stats()
    assert.equal(s.discoversAnswered, 1)
    assert.equal(s.dropped.notForProbePort, 2)
  } finally {
    await r.close()
  }
})

test('whatever reaches an unsolicited socket is dropped and counted', async () => {
  const r = rig()
  try {
    r.client.send(encodeBeaconMessage({ type: BeaconType.DISCOVER, nodeId: 0 }), '192.0.2.1', r.unsolicitedPorts[0]!)
    await settle()
    assert.deepEqual(r.inbox, [])
    assert.equal(r.responder.stats().dropped.notForProbePort, 1)
  } finally {
    await r.close()
  }
})

test('probe traffic is rate-limited per source IP, in buckets of its own', async () => {
  const r = rig({ controlBurst: 2 })
  try {
    for (let i = 0; i < 4; i++) r.client.send(request(i), '192.0.2.1', 9001)
    await settle()
    assert.equal(r.inbox.filter((m) => m.hex.startsWith('09')).length, 2)
    assert.equal(r.responder.stats().dropped.rateLimited, 2)
    // The beacon's own budget is untouched.
    r.client.send(encodeBeaconMessage({ type: BeaconType.DISCOVER, nodeId: 0 }), '192.0.2.1', 9001)
    await settle()
    assert.equal(r.server.stats().sent.discoverReply, 1)
    r.advance(5000)
    r.client.send(request(9), '192.0.2.1', 9001)
    await settle()
    assert.equal(decodeNetcheckMessage(Buffer.from(r.inbox.at(-2)!.hex, 'hex')).txid, 9)
  } finally {
    await r.close()
  }
})

test('closing the beacon and the responder closes every socket', async () => {
  const r = rig({ secondAddress: true })
  await r.close()
  // Each port is free again.
  for (const [h, p] of [['192.0.2.1', 9001], ['192.0.2.1', 9002], ['192.0.2.2', 9003], ['192.0.2.1', r.unsolicitedPorts[0]!]] as const) {
    r.net.bind(h, p)
  }
  assert.throws(() => new ProbeResponder({ main: r.net.bind('192.0.2.9', 1), probes: [] }), RangeError)
})
