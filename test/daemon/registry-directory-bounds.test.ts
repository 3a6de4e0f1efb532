// RegistryDirectory's caches are bounded and shrink: 10,000 asks about unregistered node IDs
// leave at most MAX_DIRECTORY_ENTRIES answers, "no" answers go when they expire, answers an
// hour after, and concurrent asks for one node share one registry request.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { MAX_DIRECTORY_ENTRIES, RegistryDirectory } from '../../src/daemon/registry-session.js'
import { PilotError } from '../../src/errors.js'
import type { RegistryClient } from '../../src/registry/client.js'

const KEY = Buffer.alloc(32, 7).toString('base64')
const REGISTERED = new Set([2, 3])

/** Knows nodes 2 and 3; every other node ID is "not found". Counts requests. */
function fakeClient() {
  const calls = { lookups: 0, resolves: 0 }
  const client = {
    async lookup(nodeId: number) {
      calls.lookups++
      if (!REGISTERED.has(nodeId)) throw new PilotError('PT_REGISTRY_ERROR', 'not found')
      return { nodeId, address: `0:0000.0000.000${nodeId}`, publicKey: KEY, isPublic: false, networks: [0], poloScore: 0 }
    },
    async resolve(_requester: number, nodeId: number) {
      calls.resolves++
      if (!REGISTERED.has(nodeId)) throw new PilotError('PT_REGISTRY_ERROR', 'not found')
      return { nodeId, realAddr: `198.18.1.${nodeId}:4000` }
    },
  }
  return { calls, client: client as unknown as RegistryClient }
}

test('10,000 lookups and resolves of unregistered node IDs: both caches stay within MAX_DIRECTORY_ENTRIES, and empty once expired', async () => {
  let now = 0
  const { client } = fakeClient()
  const dir = new RegistryDirectory({ client, selfId: () => 1, ttlMs: 100, negativeTtlMs: 10, clock: () => now })
  for (let i = 0; i < 10_000; i++) {
    await dir.lookupKey(1_000 + i)
    await dir.resolveEndpoint(1_000 + i)
  }
  const sizes = dir.cacheSizes()
  assert.ok(sizes.lookups <= MAX_DIRECTORY_ENTRIES, `lookup cache: ${sizes.lookups}`)
  assert.ok(sizes.endpoints <= MAX_DIRECTORY_ENTRIES, `endpoint cache: ${sizes.endpoints}`)
  assert.equal(sizes.inFlight, 0)
  // Registered peers' answers live on; the "no" answers go once expired (swept at the next store).
  assert.equal((await dir.lookupKey(2))?.length, 32)
  assert.deepEqual(await dir.resolveEndpoint(2), { host: '198.18.1.2', port: 4000 })
  now += 1_000
  await dir.lookupKey(3)
  await dir.resolveEndpoint(3)
  assert.deepEqual(dir.cacheSizes(), { lookups: 2, endpoints: 2, inFlight: 0 })
})

test('an answer outlives its TTL (for outages, peek) by staleKeepMs, then it is gone', async () => {
  let now = 0
  const { client } = fakeClient()
  const dir = new RegistryDirectory({ client, selfId: () => 1, ttlMs: 100, negativeTtlMs: 10, staleKeepMs: 5_000, clock: () => now })
  await dir.lookup(2)
  now = 4_000
  await dir.lookup(9) // any store sweeps
  assert.notEqual(dir.peek(2), null, 'kept past its TTL')
  now = 5_200
  await dir.lookup(9)
  assert.equal(dir.peek(2), null, 'gone after staleKeepMs')
})

test('concurrent asks for one node share one registry request; invalidate() starts a fresh one', async () => {
  const { client, calls } = fakeClient()
  const dir = new RegistryDirectory({ client, selfId: () => 1 })
  const answers = await Promise.all(Array.from({ length: 100 }, () => dir.lookupKey(2)))
  assert.equal(calls.lookups, 1)
  assert.ok(answers.every((k) => k?.length === 32))
  await Promise.all(Array.from({ length: 100 }, () => dir.resolveEndpoint(3)))
  assert.equal(calls.resolves, 1)
  const first = dir.resolveEndpoint(2)
  dir.invalidate(2)
  const second = dir.resolveEndpoint(2)
  await Promise.all([first, second])
  assert.equal(calls.resolves, 3, 'asked again after the invalidation')
})
