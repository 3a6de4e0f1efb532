// Paths: relay fallback when the direct path is blocked, upgrade back to direct,
// roaming to a new endpoint, and hole punching for a node with no public endpoint.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { BEACON, FAST, RebindableBind, World, exchange, packet, payloads, waitFor } from './helpers.js'
import type { UdpEndpoint } from '../../src/tunnel/bind.js'

const blockBetween = (x: string, y: string) => (from: UdpEndpoint, to: UdpEndpoint) =>
  !((from.host === x && to.host === y) || (from.host === y && to.host === x))

test('blocked direct path → relay within relayAfterMs, packets flow; unblocked → upgrade to direct', async () => {
  const w = await World.create()
  try {
    w.net.setFilter(blockBetween('10.0.0.1', '10.0.0.2'))
    const a = w.node(1, '10.0.0.1')
    const b = w.node(2, '10.0.0.2')
    const t0 = performance.now()
    await exchange(a, b, 'via relay', 2_000)
    const relayAt = a.paths.find((e) => e.to === 'relay')
    assert.ok(relayAt, 'a switched to relay')
    assert.equal(relayAt.reason, 'relay-timeout')
    const elapsed = performance.now() - t0
    assert.ok(elapsed < FAST.relayAfterMs! + 500, `relay after ${elapsed.toFixed(0)} ms`)
    await exchange(b, a, 'relay reply')
    assert.equal(a.tunnel.peer(2)!.path, 'relay')
    assert.equal(b.tunnel.peer(1)!.path, 'relay')
    assert.ok(w.beacon!.stats().relayedPackets >= 4)

    // Open the direct path: probes (our PILA to the peer's known endpoints) find it.
    w.net.setFilter(null)
    await waitFor(() => a.tunnel.peer(2)!.path === 'direct' && b.tunnel.peer(1)!.path === 'direct', 'upgrade to direct', 3_000)
    assert.ok(a.paths.some((e) => e.from === 'relay' && e.to === 'direct' && e.reason === 'upgrade'))
    const relayedBefore = w.beacon!.stats().relayedPackets
    await exchange(a, b, 'direct again')
    await exchange(b, a, 'direct reply')
    assert.equal(w.beacon!.stats().relayedPackets, relayedBefore, 'nothing relayed after the upgrade')
    assert.equal(a.tunnel.stats().drops['auth-failed'], 0)
  } finally {
    await w.close()
  }
})

test('a direct path that goes quiet falls back to relay, then comes back', async () => {
  const w = await World.create()
  try {
    const a = w.node(1, '10.0.0.1', { timing: { directStaleMs: 300 } })
    const b = w.node(2, '10.0.0.2', { timing: { directStaleMs: 300 } })
    await exchange(a, b, 'direct')
    await exchange(b, a, 'direct back')
    w.net.setFilter(blockBetween('10.0.0.1', '10.0.0.2'))
    // Keep sending until it comes through (via the relay).
    let i = 0
    const timer = setInterval(() => a.tunnel.send(2, packet(1, 2, `retry-${i++}`)), 50)
    try {
      await waitFor(() => a.tunnel.peer(2)!.path === 'relay', 'fallback to relay', 3_000)
      assert.ok(a.paths.some((e) => e.to === 'relay' && e.reason === 'direct-stale'))
      await waitFor(() => payloads(b, 1).some((p) => p.startsWith('retry-')), 'a packet over the relay', 3_000)
    } finally {
      clearInterval(timer)
    }
    w.net.setFilter(null)
    await waitFor(() => a.tunnel.peer(2)!.path === 'direct', 'back to direct', 3_000)
  } finally {
    await w.close()
  }
})

test('roaming: the peer moves to a new host and port and is followed after its first authenticated frame', async () => {
  const w = await World.create()
  try {
    const rb = new RebindableBind(w.net.bind('10.0.0.2', 4000))
    const a = w.node(1, '10.0.0.1')
    const b = w.node(2, '10.0.0.2', { bind: rb })
    await exchange(a, b, 'before')
    await exchange(b, a, 'before back')
    assert.deepEqual(a.tunnel.peer(2)!.endpoint, { host: '10.0.0.2', port: 4000 })
    await rb.rebind(w.net.bind('10.0.0.9', 5555))
    await exchange(b, a, 'from the new address')
    assert.deepEqual(a.tunnel.peer(2)!.endpoint, { host: '10.0.0.9', port: 5555 })
    assert.ok(a.paths.some((e) => e.reason === 'roam' && e.endpoint?.port === 5555))
    await exchange(a, b, 'to the new address')
    assert.equal(a.tunnel.peer(2)!.path, 'direct')
  } finally {
    await w.close()
  }
})

test('a spoofed (unauthenticated) datagram from a new address does not move the endpoint', async () => {
  const w = await World.create()
  try {
    const a = w.node(1, '10.0.0.1')
    const b = w.node(2, '10.0.0.2')
    await exchange(a, b, 'x')
    await exchange(b, a, 'y')
    const evil = w.net.bind('10.6.6.6', 666)
    // A PILS claiming to be node 2 with garbage ciphertext, and a copy of a real one.
    const forged = Buffer.alloc(80)
    forged.write('PILS', 0, 'latin1')
    forged.writeUInt32BE(2, 4)
    evil.send(forged, '10.0.0.1', 4000)
    await new Promise((r) => setTimeout(r, 30))
    assert.deepEqual(a.tunnel.peer(2)!.endpoint, { host: '10.0.0.2', port: 4000 })
    assert.equal(a.tunnel.stats().drops['auth-failed'], 1)
    await evil.close()
  } finally {
    await w.close()
  }
})

test('hole punching: a node without a public endpoint is reached through the PunchCommand (path "punched")', async () => {
  const w = await World.create()
  try {
    const a = w.node(1, '10.0.0.1')
    const b = w.node(2, '10.0.0.2', { publicEndpoint: false })
    // b must be known to the beacon (its Discover on start) before a asks for a punch.
    await waitFor(() => w.beacon!.stats().nodes >= 2, 'beacon knows both nodes')
    await exchange(a, b, 'punched hello')
    assert.equal(a.tunnel.peer(2)!.path, 'punched')
    assert.equal(b.tunnel.peer(1)!.path, 'punched')
    await exchange(b, a, 'punched reply')
    assert.ok(a.tunnel.stats().punchCommands >= 1)
    assert.ok(b.tunnel.stats().punchesReceived >= 3)
    assert.equal(w.beacon!.stats().relayedPackets, 0)
  } finally {
    await w.close()
  }
})

test('beacon keepalive: Discover on start and periodically; DiscoverReply gives the public endpoint', async () => {
  const w = await World.create()
  try {
    const a = w.node(1, '10.0.0.1', { timing: { beaconKeepaliveMs: 50 } })
    await waitFor(() => a.tunnel.publicEndpoint !== null, 'DiscoverReply')
    assert.deepEqual(a.tunnel.publicEndpoint, { host: '10.0.0.1', port: 4000 })
    const before = a.bind.stats.datagramsSent
    await new Promise((r) => setTimeout(r, 180))
    assert.ok(a.bind.stats.datagramsSent - before >= 2, 'periodic Discover')
    void BEACON
  } finally {
    await w.close()
  }
})

/** Drops the beacon's PunchCommands: hole punching fails, so peers without a resolvable endpoint stay relayed. */
const noPunching = (from: UdpEndpoint, _to: UdpEndpoint, d: Uint8Array): boolean => !(from.host === BEACON.host && d[0] === 0x04)

test('private peers stay relayed until trust lets them resolve each other; refreshPeer → direct (not punched) at once', async () => {
  const w = await World.create()
  try {
    w.net.setFilter(noPunching)
    const slowProbes = { probeIntervalMs: 10_000, probeMaxMs: 10_000 }
    const a = w.node(1, '10.0.0.1', { publicEndpoint: false, timing: slowProbes })
    const b = w.node(2, '10.0.0.2', { publicEndpoint: false, timing: slowProbes })
    await exchange(a, b, 'relayed')
    await exchange(b, a, 'relayed back')
    assert.equal(a.tunnel.peer(2)!.path, 'relay')
    assert.equal(b.tunnel.peer(1)!.path, 'relay')
    // Trust established: the registry now reveals both endpoints, and each daemon says so.
    w.directory.setEndpoint(1, a.bind.local).setEndpoint(2, b.bind.local)
    const t0 = performance.now()
    a.tunnel.refreshPeer(2)
    b.tunnel.refreshPeer(1)
    await waitFor(() => a.tunnel.peer(2)!.path === 'direct' && b.tunnel.peer(1)!.path === 'direct', 'both direct', 1_000)
    assert.ok(performance.now() - t0 < 500, 'without waiting for the probe schedule')
    assert.ok(a.paths.some((e) => e.from === 'relay' && e.to === 'direct' && e.reason === 'upgrade'))
    const relayed = w.beacon!.stats().relayedPackets
    await exchange(a, b, 'direct now')
    await exchange(b, a, 'direct back')
    assert.equal(w.beacon!.stats().relayedPackets, relayed)
    a.tunnel.refreshPeer(99) // unknown peer: nothing happens
  } finally {
    await w.close()
  }
})

test('a relayed peer re-resolves on its probe schedule: direct once the registry reveals it, no refreshPeer needed', async () => {
  const w = await World.create()
  try {
    w.net.setFilter(noPunching)
    const a = w.node(1, '10.0.0.1', { publicEndpoint: false })
    const b = w.node(2, '10.0.0.2', { publicEndpoint: false })
    await exchange(a, b, 'relayed')
    assert.equal(a.tunnel.peer(2)!.path, 'relay')
    const resolves = w.directory.resolves
    await new Promise((r) => setTimeout(r, 300))
    const retries = w.directory.resolves - resolves
    assert.ok(retries >= 1 && retries <= 6, `resolve retried with back-off (${retries} in 300 ms)`)
    w.directory.setEndpoint(2, b.bind.local)
    await waitFor(() => a.tunnel.peer(2)!.path === 'direct' && b.tunnel.peer(1)!.path === 'direct', 'both direct', 2_000)
  } finally {
    await w.close()
  }
})
