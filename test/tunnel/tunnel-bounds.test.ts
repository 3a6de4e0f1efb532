// The peer table is bounded and shrinks: no peer for a node the registry does not know (a TUN
// ping to an unregistered address), idle peers expire, the idlest is evicted at the cap, and a
// peer set up again after it was removed keeps its replay state (old frames stay refused).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Identity } from '../../src/crypto/index.js'
import { Tunnel } from '../../src/tunnel/tunnel.js'
import { DEFAULT_LIMITS, type TunnelLimits } from '../../src/tunnel/limits.js'
import { MemoryNetwork } from '../../src/tunnel/testing/memory-bind.js'
import { FAST, HeldDirectory, ManualScheduler, firstWord, packet, settle, waitFor, type Received } from './helpers.js'

const IDLE_MS = 60_000

/** Nodes on one memory network and one manual clock; the housekeeping tick runs only when called. */
function world(limits: Partial<TunnelLimits> = {}) {
  const net = new MemoryNetwork()
  const directory = new HeldDirectory()
  const clock = new ManualScheduler()
  const tunnels: Tunnel[] = []
  const node = (id: number, host: string) => {
    const identity = Identity.generate()
    const bind = net.bind(host, 4000)
    directory.memory.setKey(id, identity.publicKey).setEndpoint(id, bind.local)
    const tunnel = new Tunnel({ bind, identity, nodeId: id, directory, beacon: null, timing: { ...FAST, peerIdleMs: IDLE_MS }, limits, scheduler: clock })
    const received: Received[] = []
    tunnel.onPacket((p, from) => received.push({ packet: Buffer.from(p), from, payload: p.subarray(34).toString() }))
    tunnels.push(tunnel)
    return { id, tunnel, received }
  }
  const close = async () => {
    for (const t of tunnels) await t.close()
  }
  return { net, directory, clock, node, close }
}

test('10,000 sends to unregistered node IDs leave no peer behind; the same IDs again cost no lookup', async () => {
  const w = world()
  const a = w.node(1, '10.0.0.1')
  try {
    const ids = Array.from({ length: 10_000 }, (_, i) => 500_000 + i)
    for (const id of ids) {
      a.tunnel.send(id, packet(1, id, 'ping'))
      assert.ok(a.tunnel.peers().length <= DEFAULT_LIMITS.maxKeyLookups, `peers while lookups run: ${a.tunnel.peers().length}`)
      if (id % 50 === 0) await settle()
    }
    await settle()
    assert.equal(a.tunnel.peers().length, 0)
    const lookups = w.directory.lookups
    assert.ok(lookups <= 10_000)
    // The newest of them are still remembered as unregistered (that memory is bounded too).
    for (const id of ids.slice(-1_000)) a.tunnel.send(id, packet(1, id, 'ping again'))
    await settle()
    assert.equal(a.tunnel.peers().length, 0)
    assert.equal(w.directory.lookups, lookups, 'remembered as unregistered: no new lookups')
    assert.ok(a.tunnel.stats().drops['unregistered-peer'] >= 1_000)
    assert.ok(a.tunnel.stateSizes().cachedKeys <= DEFAULT_LIMITS.maxCachedKeys + DEFAULT_LIMITS.maxUnknownKeys)
  } finally {
    await w.close()
  }
})

test('a registered peer set up and then idle for peerIdleMs is removed; traffic keeps it; it comes back on the next send', async () => {
  const w = world()
  const a = w.node(1, '10.0.0.1')
  const b = w.node(2, '10.0.0.2')
  const c = w.node(3, '10.0.0.3')
  try {
    a.tunnel.send(2, packet(1, 2, 'hello b'))
    a.tunnel.send(3, packet(1, 3, 'hello c'))
    await waitFor(() => b.received.length === 1 && c.received.length === 1, 'both set up')
    a.tunnel.tick()
    w.clock.t += IDLE_MS / 2
    a.tunnel.send(3, packet(1, 3, 'still here')) // c stays busy
    await waitFor(() => c.received.length === 2, 'c traffic')
    a.tunnel.tick()
    w.clock.t += IDLE_MS / 2 - 1
    a.tunnel.tick()
    assert.deepEqual(a.tunnel.peers().map((p) => p.nodeId).sort(), [2, 3], 'not idle long enough yet')
    w.clock.t += 1
    a.tunnel.tick()
    assert.deepEqual(a.tunnel.peers().map((p) => p.nodeId), [3], 'b expired, c (active later) stays')
    assert.equal(a.tunnel.stats().peersExpired, 1)
    assert.equal(a.tunnel.stateSizes().forgottenPeers, 1, 'its key and replay state are remembered')
    a.tunnel.send(2, packet(1, 2, 'hello again'))
    await waitFor(() => b.received.length === 2, 'b reached again')
    b.tunnel.send(1, packet(2, 1, 'and back'))
    await waitFor(() => a.received.some((r) => r.payload === 'and back'), 'b reaches a again')
  } finally {
    await w.close()
  }
})

test('a peer removed while idle keeps its replay state: its old PILS replayed after it came back are refused', async () => {
  const w = world()
  const captured: Buffer[] = []
  w.net.setFilter((from, to, d) => {
    if (from.host === '10.0.0.1' && to.host === '10.0.0.2') captured.push(Buffer.from(d))
    return true
  })
  const a = w.node(1, '10.0.0.1')
  const b = w.node(2, '10.0.0.2')
  try {
    a.tunnel.send(2, packet(1, 2, 'once'))
    await waitFor(() => b.received.length === 1, 'delivered')
    b.tunnel.tick()
    w.clock.t += IDLE_MS
    b.tunnel.tick()
    assert.equal(b.tunnel.peer(1), null, 'b removed a')
    // An attacker replays a's PILA (its current key) and then the old PILS, from elsewhere.
    const evil = w.net.bind('10.6.6.6', 4000)
    evil.send(Buffer.from(captured.find((d) => firstWord(d) === 'PILA')!), '10.0.0.2', 4000)
    await waitFor(() => b.tunnel.peer(1)?.authenticated === true, 'b took the PILA (same key as before)')
    for (const d of captured.filter((x) => firstWord(x) === 'PILS')) evil.send(Buffer.from(d), '10.0.0.2', 4000)
    await settle()
    await settle()
    assert.deepEqual(b.received.map((r) => r.payload), ['once'], 'nothing delivered twice')
    assert.ok(b.tunnel.stats().drops.replay >= 1)
    await evil.close()
  } finally {
    await w.close()
  }
})

test('at maxPeers the idlest peer makes room; the table never passes the bound', async () => {
  const w = world({ maxPeers: 4 })
  const a = w.node(1, '10.0.0.1')
  try {
    for (let id = 10; id < 30; id++) {
      w.directory.memory.setKey(id, Identity.generate().publicKey) // registered, never answering
      w.clock.t += 10
      a.tunnel.send(id, packet(1, id, 'x'))
      assert.ok(a.tunnel.peers().length <= 4)
    }
    await settle()
    assert.deepEqual(a.tunnel.peers().map((p) => p.nodeId).sort((x, y) => x - y), [26, 27, 28, 29])
    assert.equal(a.tunnel.stats().peersEvicted, 16)
    assert.equal(a.tunnel.stats().drops['peer-expired'], 16, 'each evicted peer had one packet queued')
  } finally {
    await w.close()
  }
})

test('past maxForgottenPeers the oldest remembered peer is dropped and our key pair rotates (its old frames stop opening)', async () => {
  const w = world({ maxForgottenPeers: 1 })
  const a = w.node(1, '10.0.0.1')
  const b = w.node(2, '10.0.0.2')
  const c = w.node(3, '10.0.0.3')
  try {
    a.tunnel.send(2, packet(1, 2, 'to b'))
    a.tunnel.send(3, packet(1, 3, 'to c'))
    await waitFor(() => b.received.length === 1 && c.received.length === 1, 'both set up')
    const key = Buffer.from(a.tunnel.x25519PublicKey)
    a.tunnel.forget(2)
    a.tunnel.tick()
    assert.equal(a.tunnel.stats().keyRotations, 0, 'one remembered peer fits')
    a.tunnel.forget(3)
    a.tunnel.tick()
    assert.equal(a.tunnel.stats().keyRotations, 1)
    assert.ok(!key.equals(Buffer.from(a.tunnel.x25519PublicKey)))
    assert.equal(a.tunnel.stateSizes().forgottenPeers, 1)
    a.tunnel.send(2, packet(1, 2, 'after the rotation'))
    await waitFor(() => b.received.length === 2, 'b reached under the new key')
  } finally {
    await w.close()
  }
})
