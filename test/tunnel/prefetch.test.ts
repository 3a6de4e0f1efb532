// Trusted peers' keys and endpoints fetched before the first packet (Tunnel.prefetchPeers): a
// first connection then needs no registry round trip on either side. Our key frame goes to the
// last resolved endpoint at once, the peer's is verified on arrival; a "no key" answer to a
// prefetch (a peer re-registering right after a restart of both) is not remembered, and asked again.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Identity } from '../../src/crypto/index.js'
import { Tunnel } from '../../src/tunnel/tunnel.js'
import type { UdpEndpoint } from '../../src/tunnel/bind.js'
import type { PeerDirectory } from '../../src/tunnel/peer-directory.js'
import { MemoryNetwork } from '../../src/tunnel/testing/memory-bind.js'
import { MemoryPeerDirectory } from '../../src/tunnel/testing/memory-directory.js'
import { PeerPrefetch, PREFETCH_RETRY_MS } from '../../src/tunnel/prefetch.js'
import { FAST, ManualScheduler, firstWord, packet, settle } from './helpers.js'

/**
 * A directory that answers from a MemoryPeerDirectory, remembers resolved endpoints (like the
 * daemon's RegistryDirectory), and can hold everything it is asked from now on (`frozen`).
 */
class RecordingDirectory implements PeerDirectory {
  readonly memory = new MemoryPeerDirectory()
  frozen = false
  lookups: number[] = []
  resolves: number[] = []
  invalidated: number[] = []
  private readonly last = new Map<number, UdpEndpoint>()
  lookupKey(nodeId: number): Promise<Uint8Array | null> {
    this.lookups.push(nodeId)
    return this.frozen ? new Promise(() => {}) : this.memory.lookupKey(nodeId)
  }
  async resolveEndpoint(nodeId: number): Promise<UdpEndpoint | null> {
    this.resolves.push(nodeId)
    if (this.frozen) return new Promise(() => {})
    const ep = await this.memory.resolveEndpoint(nodeId)
    if (ep !== null) this.last.set(nodeId, ep)
    return ep
  }
  lastKnownEndpoint(nodeId: number): UdpEndpoint | null {
    return this.last.get(nodeId) ?? null
  }
  invalidate(nodeId: number): void {
    this.invalidated.push(nodeId)
  }
}

async function rounds(n: number): Promise<void> {
  for (let i = 0; i < n; i++) await settle()
}

function pair() {
  const net = new MemoryNetwork()
  const ida = Identity.generate()
  const idb = Identity.generate()
  const bindA = net.bind('10.0.0.1', 4000)
  const bindB = net.bind('10.0.0.2', 4000)
  const dirA = new RecordingDirectory()
  const dirB = new RecordingDirectory()
  for (const d of [dirA, dirB]) d.memory.setKey(1, ida.publicKey).setKey(2, idb.publicKey).setEndpoint(1, bindA.local).setEndpoint(2, bindB.local)
  const clockA = new ManualScheduler()
  const clockB = new ManualScheduler()
  const a = new Tunnel({ bind: bindA, identity: ida, nodeId: 1, directory: dirA, beacon: null, timing: FAST, scheduler: clockA })
  const b = new Tunnel({ bind: bindB, identity: idb, nodeId: 2, directory: dirB, beacon: null, timing: FAST, scheduler: clockB })
  const atB: string[] = []
  b.onPacket((p) => atB.push(p.subarray(34).toString()))
  const wire: string[] = []
  net.setFilter((from, _to, data) => {
    wire.push(`${from.host} ${firstWord(data)}`)
    return true
  })
  return { a, b, dirA, dirB, clockA, clockB, atB, wire, ida }
}

test('prefetched on both sides: the first packet needs no registry answer at all, and no time passes', async () => {
  const { a, b, dirA, dirB, clockA, clockB, atB, wire } = pair()
  try {
    assert.equal(a.prefetchPeers([2, 1, 2]), 1, 'own ID and duplicates skipped')
    assert.equal(b.prefetchPeers([1]), 1)
    await rounds(5)
    assert.deepEqual(dirA.lookups, [2])
    assert.deepEqual(dirA.resolves, [2])
    // From now on the registry answers nothing: a first connection must not need it.
    dirA.frozen = true
    dirB.frozen = true
    const t0 = [clockA.t, clockB.t]
    a.send(2, packet(1, 2, 'syn'))
    assert.equal(wire.at(-1), '10.0.0.1 PILA', 'our key frame left at once, to the last resolved endpoint')
    await rounds(10)
    assert.deepEqual(atB, ['syn'], 'delivered: b verified our key frame with the prefetched key')
    assert.deepEqual(dirB.lookups, [1], 'b asked the registry only when prefetching')
    assert.deepEqual([clockA.t, clockB.t], t0, 'no retry timer was needed')
    assert.equal(a.peer(2)?.path, 'direct')
  } finally {
    await a.close()
    await b.close()
  }
})

test('without a prefetch the same first packet waits for the registry (the case prefetching removes)', async () => {
  const { a, b, dirA, dirB, atB } = pair()
  try {
    dirA.frozen = true
    dirB.frozen = true
    a.send(2, packet(1, 2, 'syn'))
    await rounds(10)
    assert.deepEqual(atB, [])
    assert.deepEqual(dirA.resolves, [2], 'a waits for a resolve')
  } finally {
    await a.close()
    await b.close()
  }
})

test('a last-known endpoint that is stale: the resolve answer replaces it during set-up', async () => {
  const { a, b, dirA, atB } = pair()
  try {
    a.prefetchPeers([2])
    await rounds(5)
    // b moved: the resolve now answers its new endpoint; the old one gets a key frame that is lost.
    ;(dirA as unknown as { last: Map<number, UdpEndpoint> }).last.set(2, { host: '10.0.0.9', port: 4000 })
    a.send(2, packet(1, 2, 'syn'))
    await rounds(10)
    assert.deepEqual(atB, ['syn'])
    assert.deepEqual(a.peer(2)?.endpoint, { host: '10.0.0.2', port: 4000 })
  } finally {
    await a.close()
    await b.close()
  }
})

test('a prefetch the registry has no key for yet is not remembered: asked again at a retry, and a PILA right after still verifies', async () => {
  const { a, b, dirB, clockB, atB, ida } = pair()
  try {
    dirB.memory.setKey(1, null) // a has not registered again yet
    assert.equal(b.prefetchPeers([1]), 1)
    await rounds(5)
    assert.deepEqual(dirB.invalidated, [1], 'the directory forgets the "no key" too')
    assert.equal(b.stateSizes().cachedKeys, 0, 'no "no key" entry kept')
    clockB.t += PREFETCH_RETRY_MS[0]!
    b.tick()
    await rounds(3)
    assert.deepEqual(dirB.lookups, [1, 1], 'asked again at the first retry')
    dirB.memory.setKey(1, ida.publicKey) // a registered meanwhile
    a.send(2, packet(1, 2, 'syn'))
    await rounds(10)
    assert.deepEqual(atB, ['syn'], 'its PILA was looked up afresh, not refused as "no key"')
    assert.equal(b.stats().drops['pila-unknown-key'], 0)
  } finally {
    await a.close()
    await b.close()
  }
})

test('PeerPrefetch: bounded per call, retries only nodes still without a key, then stops', () => {
  const fetched: number[] = []
  const known = new Set<number>()
  const p = new PeerPrefetch({ knowsKey: (n) => known.has(n), hasPeer: (n) => n === 7, fetch: (n) => fetched.push(n) }, 3)
  assert.equal(p.prefetch([1, 2, 7, 3, 4, 5], 0), 3)
  assert.deepEqual(fetched, [1, 2, 3], 'at most 3; a node with a peer is skipped')
  known.add(1)
  known.add(2)
  fetched.length = 0
  p.tick(PREFETCH_RETRY_MS[0]! - 1)
  assert.deepEqual(fetched, [])
  p.tick(PREFETCH_RETRY_MS[0]!)
  assert.deepEqual(fetched, [3], 'only the node still unknown')
  p.tick(PREFETCH_RETRY_MS[1]!)
  assert.deepEqual(fetched, [3, 3])
  assert.equal(p.pending, 0)
  p.tick(100_000)
  assert.deepEqual(fetched, [3, 3], 'no retries left')
})
