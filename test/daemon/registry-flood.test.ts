// A flood of PILAs with made-up sender IDs, through the daemon's real registry path: tunnel →
// RegistryDirectory → RegistryClient → a slow registry. The lookups it causes stay under the
// caps, and a heartbeat issued during the flood is the next request the registry sees (it must
// not queue behind the lookups, or the node would be reaped).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { randomInt } from 'node:crypto'
import { Identity } from '../../src/crypto/index.js'
import type { JsonObject } from '../../src/protocol/registry-framing.js'
import { RegistryDirectory } from '../../src/daemon/registry-session.js'
import { Tunnel } from '../../src/tunnel/tunnel.js'
import { DEFAULT_LIMITS } from '../../src/tunnel/limits.js'
import { MemoryNetwork } from '../../src/tunnel/testing/memory-bind.js'
import { FAST, ManualScheduler, junkPila, waitFor } from '../tunnel/helpers.js'
import { scriptedRegistry, testClient } from '../registry/helpers.js'

/** A registry that answers every request after `delayMs`: heartbeats ok, lookups "not found". `seen` is the request order. */
async function slowRegistry(delayMs: number) {
  const registry = await scriptedRegistry(
    (req) => (req.type === 'heartbeat' ? { type: 'heartbeat_ok', time: 1 } : { type: 'error', error: 'node not found' }),
    { delayMs },
  )
  const describe = (req: JsonObject): string => (req.type === 'lookup' ? `lookup ${String(req.node_id)}` : String(req.type))
  return { ...registry, get seen(): string[] { return registry.requests.map(describe) } }
}

test('PILA flood from 200 sources: registry lookups under the caps, and a heartbeat during it is sent next', async () => {
  const registry = await slowRegistry(2)
  const client = testClient(registry.port)
  const directory = new RegistryDirectory({ client, selfId: () => 2 })
  const clock = new ManualScheduler() // frozen: no bucket refills during the test
  const tunnel = new Tunnel({
    bind: new MemoryNetwork().bind('10.0.0.2', 4000),
    identity: Identity.generate(),
    nodeId: 2,
    directory,
    beacon: null,
    timing: FAST,
    scheduler: clock,
  })
  try {
    await client.heartbeat(2) // connected
    const bySource = new Map<number, string>()
    for (let s = 0; s < 200; s++) {
      for (let i = 0; i < 10; i++) {
        const sender = randomInt(1_000_000, 0xffffffff)
        bySource.set(sender, `10.8.0.${s}`)
        tunnel.receive(junkPila(sender), `10.8.0.${s}`, 4_000)
      }
    }
    const before = registry.seen.length
    const heartbeat = client.heartbeat(2)
    await heartbeat
    const after = registry.seen.slice(before)
    assert.ok(after.indexOf('heartbeat') <= 1, `heartbeat was request ${after.indexOf('heartbeat') + 1} after it was issued: ${after.slice(0, 5).join(', ')}`)
    await waitFor(() => tunnel.stateSizes().keyLookups === 0, 'the lookups drained', 10_000)
    const lookups = registry.seen.filter((r) => r.startsWith('lookup '))
    assert.ok(lookups.length <= DEFAULT_LIMITS.maxRemoteKeyLookups, `registry lookups: ${lookups.length}`)
    const perSource = new Map<string, number>()
    for (const l of lookups) {
      const src = bySource.get(Number(l.slice(7)))!
      perSource.set(src, (perSource.get(src) ?? 0) + 1)
    }
    assert.ok(Math.max(...perSource.values()) <= DEFAULT_LIMITS.lookupBurstPerSource)
    assert.deepEqual(tunnel.peers(), [])
  } finally {
    await tunnel.close()
    client.close()
    await registry.close()
  }
})
