// The registry key cache (registry-keys.ts): lookups bounded by cause, a bounded "no key" table
// that a flood of unknown IDs cannot use to push out real keys.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Identity } from '../../src/crypto/index.js'
import { nullLogger } from '../../src/logger.js'
import { RegistryKeyCache } from '../../src/tunnel/registry-keys.js'
import { HeldDirectory, settle } from './helpers.js'

function cache(dir: HeldDirectory, limits: { maxPending?: number; maxRemotePending?: number; maxKeys?: number; maxUnknown?: number } = {}) {
  const fetched: number[] = []
  const keys = new RegistryKeyCache({
    directory: dir,
    now: () => 1_000,
    logger: nullLogger,
    onFetched: (id) => fetched.push(id),
    maxPending: limits.maxPending ?? 4,
    maxRemotePending: limits.maxRemotePending ?? 2,
    maxKeys: limits.maxKeys ?? 8,
    maxUnknown: limits.maxUnknown ?? 8,
  })
  return { keys, fetched }
}

test('lookups in flight: remote ones up to their own cap, local ones up to the total; one per node', async () => {
  const dir = new HeldDirectory()
  dir.hold = true
  const { keys, fetched } = cache(dir)
  assert.equal(keys.fetch(1, 'remote'), true)
  assert.equal(keys.fetch(1, 'remote'), true, 'already running: nothing new')
  assert.equal(keys.fetch(2, 'remote'), true)
  assert.equal(keys.hasRoom('remote'), false)
  assert.equal(keys.fetch(3, 'remote'), false)
  assert.equal(keys.fetch(3, 'local'), true)
  assert.equal(keys.fetch(4, 'local'), true)
  assert.equal(keys.fetch(5, 'local'), false)
  assert.equal(dir.lookups, 4)
  assert.equal(keys.pendingCount, 4)
  dir.release()
  await settle()
  assert.deepEqual(fetched.sort(), [1, 2, 3, 4], 'onFetched after every lookup, whoever started it')
  assert.equal(keys.pendingCount, 0)
  assert.equal(keys.hasRoom('remote'), true)
})

test('a flood of unknown node IDs fills only the bounded "no key" table; a real key stays cached', async () => {
  const dir = new HeldDirectory()
  dir.memory.setKey(9, Identity.generate().publicKey)
  const { keys } = cache(dir, { maxPending: 100, maxRemotePending: 100, maxUnknown: 8 })
  keys.fetch(9, 'local')
  await settle()
  assert.notEqual(keys.get(9)?.key, null)
  for (let i = 0; i < 1_000; i++) {
    keys.fetch(10_000 + i, 'remote')
    if (i % 50 === 49) await settle()
  }
  await settle()
  assert.ok(keys.size <= 1 + 8, `entries: ${keys.size}`)
  assert.notEqual(keys.get(9)?.key ?? null, null, 'the real key survived the flood')
  assert.equal(keys.get(10_999)?.key, null, 'the newest unknown ID is remembered as such')
  assert.equal(keys.get(10_000), undefined, 'the oldest unknown IDs are forgotten')
})

test('delete() and clear() forget entries; a late answer for a forgotten entry is not stored', async () => {
  const dir = new HeldDirectory()
  dir.memory.setKey(1, Identity.generate().publicKey)
  dir.hold = true
  const { keys } = cache(dir)
  keys.fetch(1, 'local')
  keys.delete(1)
  dir.release()
  await settle()
  assert.equal(keys.get(1), undefined)
  assert.equal(keys.pendingCount, 0)
})
