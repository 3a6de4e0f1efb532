// Strangers' PILAs cost a registry lookup before any signature can be checked (the sender's
// key is needed first). Such lookups are limited per source IP (token bucket) and in number in
// flight, the "no key" answers are remembered, and our own set-ups always keep room.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { randomInt } from 'node:crypto'
import { Identity } from '../../src/crypto/index.js'
import { Tunnel } from '../../src/tunnel/tunnel.js'
import { DEFAULT_LIMITS } from '../../src/tunnel/limits.js'
import { MemoryNetwork } from '../../src/tunnel/testing/memory-bind.js'
import { FAST, HeldDirectory, ManualScheduler, junkPila, packet, settle } from './helpers.js'

const BURST = DEFAULT_LIMITS.lookupBurstPerSource
const PER_SECOND = DEFAULT_LIMITS.lookupsPerSecondPerSource

/** Node 2 on a memory network, with a clock that moves only when the test says so. */
function victim(directory: HeldDirectory) {
  const clock = new ManualScheduler()
  const bind = new MemoryNetwork().bind('10.0.0.2', 4000)
  const tunnel = new Tunnel({ bind, identity: Identity.generate(), nodeId: 2, directory, beacon: null, timing: FAST, scheduler: clock })
  return { tunnel, clock }
}

const strangerId = (): number => randomInt(1_000_000, 0xffffffff)

test('PILAs with made-up sender IDs from one source: at most the per-source burst of lookups, then the refill rate', async () => {
  const dir = new HeldDirectory()
  const { tunnel, clock } = victim(dir)
  try {
    for (let i = 0; i < 1_000; i++) {
      tunnel.receive(junkPila(strangerId()), '10.6.6.6', 5_000 + (i % 50))
      if (i % 100 === 99) await settle() // answers arrive meanwhile: only the source limit holds
    }
    await settle()
    assert.equal(dir.lookups, BURST, `lookups for one source: ${dir.lookups}`)
    assert.equal(tunnel.stats().drops['lookup-limited'], 1_000 - BURST)
    assert.equal(tunnel.stats().drops['pila-unknown-key'], BURST)
    clock.t += 1_000 // the bucket refills
    for (let i = 0; i < 100; i++) tunnel.receive(junkPila(strangerId()), '10.6.6.6', 5_000)
    await settle()
    assert.equal(dir.lookups, BURST + PER_SECOND)
    tunnel.receive(junkPila(strangerId()), '10.7.7.7', 5_000) // another source has its own bucket
    await settle()
    assert.equal(dir.lookups, BURST + PER_SECOND + 1)
    assert.deepEqual(tunnel.peers(), [], 'no peer for any of them')
  } finally {
    await tunnel.close()
  }
})

test('a flood from many sources while the registry is slow: lookups in flight stay under the cap, our own set-up keeps room', async () => {
  const dir = new HeldDirectory()
  const { tunnel } = victim(dir)
  try {
    dir.hold = true
    for (let s = 0; s < 500; s++) {
      for (let i = 0; i < 4; i++) tunnel.receive(junkPila(strangerId()), `10.8.${s >> 8}.${s & 255}`, 4_000)
    }
    assert.ok(dir.maxInFlight <= DEFAULT_LIMITS.maxRemoteKeyLookups, `in flight: ${dir.maxInFlight}`)
    assert.ok(tunnel.stats().drops['lookup-busy'] >= 2_000 - DEFAULT_LIMITS.maxRemoteKeyLookups)
    // We send to a registered node meanwhile: its key lookup still starts.
    dir.memory.setKey(3, Identity.generate().publicKey)
    tunnel.send(3, packet(2, 3, 'ours'))
    assert.ok(dir.lookedUp.includes(3), 'the lookup for our own peer was not crowded out')
    assert.deepEqual(tunnel.peers().map((p) => p.nodeId), [3])
    dir.release()
    await settle()
    assert.deepEqual(tunnel.peers().map((p) => p.nodeId), [3], 'still no peer for any stranger')
    assert.equal(tunnel.stateSizes().keyLookups, 0)
  } finally {
    await tunnel.close()
  }
})

test('a sender the registry does not know is asked about once per negativeKeyCacheMs, however many PILAs it sends', async () => {
  const dir = new HeldDirectory()
  const { tunnel, clock } = victim(dir)
  try {
    const id = strangerId()
    for (let i = 0; i < 50; i++) {
      tunnel.receive(junkPila(id), `10.9.0.${i}`, 4_000)
      await settle()
    }
    assert.equal(dir.lookups, 1)
    clock.t += FAST.negativeKeyCacheMs!
    tunnel.receive(junkPila(id), '10.9.1.1', 4_000)
    await settle()
    assert.equal(dir.lookups, 2)
  } finally {
    await tunnel.close()
  }
})
