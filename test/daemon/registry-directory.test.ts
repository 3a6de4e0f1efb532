// RegistryDirectory while the registry comes and goes: answers it gave stay
// usable through transport failures; real refusals ("not found") still count.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { RegistryDirectory } from '../../src/daemon/registry-session.js'
import { PilotError } from '../../src/errors.js'
import type { RegistryClient } from '../../src/registry/client.js'

const KEY = Buffer.alloc(32, 7).toString('base64')

function fakeClient() {
  const state = { down: false, refuse: false, lookups: 0, resolves: 0 }
  const fail = () => {
    if (state.down) throw new PilotError('PT_REGISTRY_UNREACHABLE', 'registry unreachable')
    if (state.refuse) throw new PilotError('PT_REGISTRY_ERROR', 'not found')
  }
  const client = {
    async lookup(nodeId: number) {
      state.lookups++
      fail()
      return { nodeId, address: `0:0000.0000.000${nodeId}`, publicKey: KEY, hostname: 'bob', isPublic: false, networks: [0] }
    },
    async resolve(_requester: number, _nodeId: number) {
      state.resolves++
      fail()
      return { nodeId: 2, realAddr: '198.18.1.2:4000' }
    },
  }
  return { state, client: client as unknown as RegistryClient }
}

test('a registry outage keeps the last key, hostname and endpoint; a refusal does not', async () => {
  let now = 0
  const { state, client } = fakeClient()
  const dir = new RegistryDirectory({ client, selfId: () => 1, ttlMs: 100, negativeTtlMs: 10, clock: () => now })
  assert.equal((await dir.lookup(2))?.hostname, 'bob')
  assert.deepEqual(await dir.resolveEndpoint(2), { host: '198.18.1.2', port: 4000 })

  state.down = true
  now = 1000 // every cache entry expired
  assert.equal((await dir.lookupKey(2))?.length, 32, 'key survives the outage')
  assert.deepEqual(await dir.resolveEndpoint(2), { host: '198.18.1.2', port: 4000 })
  assert.equal(dir.peek(2)?.hostname, 'bob')
  assert.equal(await dir.lookup(3), null, 'a node never seen stays unknown')

  state.down = false
  state.refuse = true
  now = 2000
  assert.equal(await dir.lookup(2), null, 'the registry saying no is an answer')
  assert.equal(await dir.resolveEndpoint(2), null)
})

test('isRegistered and the tunnel’s key lookup for the same first dial share one registry request', async () => {
  const { state, client } = fakeClient()
  const dir = new RegistryDirectory({ client, selfId: () => 1, ttlMs: 10_000, negativeTtlMs: 10, clock: () => 0 })
  const [registered, key] = await Promise.all([dir.isRegistered(2), dir.lookupKey(2)])
  assert.equal(registered, true)
  assert.equal(key?.length, 32)
  assert.equal(state.lookups, 1, 'one lookup asked')
  state.refuse = true
  assert.equal(await dir.isRegistered(3), false, 'a refusal is still "not registered"')
  assert.equal(await dir.lookup(3), null)
  state.refuse = false
  state.down = true
  assert.equal(await dir.isRegistered(4), null, 'the registry could not be asked')
})
