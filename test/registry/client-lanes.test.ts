/**
 * RegistryClient's two queues: questions about other nodes (lookup, resolve) wait behind the
 * node's own requests, so a heartbeat issued during a lookup flood goes out right after the
 * request in flight, not after the flood (a flood of lookups must not get the node reaped).
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { scriptedRegistry, testClient, leakedHandles } from './helpers.js'

/** A registry that answers each request after `delayMs`; `seen` lists request types in arrival order. */
async function slowRegistry(delayMs: number) {
  const registry = await scriptedRegistry(
    (req) =>
      req.type === 'heartbeat'
        ? { type: 'heartbeat_ok', time: 1 }
        : req.type === 'lookup'
          ? { type: 'lookup_ok', node_id: req.node_id as number, address: 'a', public_key: 'k' }
          : { type: `${String(req.type)}_ok` },
    { delayMs },
  )
  return { ...registry, get seen(): string[] { return registry.requests.map((r) => String(r.type)) } }
}

test('a heartbeat issued behind 40 queued lookups is the next request sent, and is answered before them', async () => {
  const registry = await slowRegistry(3)
  const client = testClient(registry.port)
  try {
    await client.lookup(1) // connected
    const order: string[] = []
    const lookups = Array.from({ length: 40 }, (_, i) => client.lookup(100 + i).then(() => order.push(`lookup ${100 + i}`)))
    const heartbeat = client.heartbeat(7).then(() => order.push('heartbeat'))
    await Promise.all([...lookups, heartbeat])
    // The first lookup was already in flight when the heartbeat came; the heartbeat is next.
    assert.deepEqual(registry.seen.slice(0, 4), ['lookup', 'lookup', 'heartbeat', 'lookup'])
    assert.equal(order.indexOf('heartbeat'), 1, `answered as number ${order.indexOf('heartbeat') + 1}`)
    assert.deepEqual(order.filter((o) => o !== 'heartbeat'), Array.from({ length: 40 }, (_, i) => `lookup ${100 + i}`), 'lookups keep their order')
  } finally {
    client.close()
    await registry.close()
  }
  assert.deepEqual(await leakedHandles(), [])
})

test('the node\'s own requests keep their order among themselves; close() fails both queues', async () => {
  const registry = await slowRegistry(2)
  const client = testClient(registry.port)
  try {
    await client.heartbeat(7)
    const results = await Promise.all([client.lookup(1), client.heartbeat(7), client.resolve(7, 2).catch(() => 'no'), client.setTags(7, ['x']).catch(() => 'no')])
    assert.equal(results.length, 4)
    assert.deepEqual(registry.seen, ['heartbeat', 'lookup', 'heartbeat', 'set_tags', 'resolve'])
    const pending = [client.lookup(3), client.heartbeat(7)]
    client.close()
    const settled = await Promise.allSettled(pending)
    assert.deepEqual(settled.map((r) => r.status), ['rejected', 'rejected'])
  } finally {
    client.close()
    await registry.close()
  }
})
