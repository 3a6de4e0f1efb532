/**
 * PostgreSQL store faults (issue 14), against a real throwaway server
 * (test/util/postgres.ts): PostgreSQL restarted and crashed (SIGKILL) under a
 * stream of writes, and node IDs allocated from three stores at once.
 *
 * What must hold: every write the store acknowledged is there afterwards; a
 * write during the outage fails with PT_REGISTRY_STORE and leaves nothing
 * behind (each is one transaction: a node, its tags and its audit entry
 * together or not at all); the same store object works again once
 * PostgreSQL is back, without being reopened.
 */
import { after, test } from 'node:test'
import assert from 'node:assert/strict'
import { Identity } from '../../src/crypto/identity.js'
import { verifyAuditChain } from '../../src/registry/audit-chain.js'
import { RegistryError, RegistryErrorCode } from '../../src/registry/errors.js'
import { PostgresRegistryStore } from '../../src/registry/pg-store.js'
import { startTestPostgres, type TestPostgres } from '../util/postgres.js'

const pg = await startTestPostgres()
const skip = 'skip' in pg ? pg.skip : undefined
if (!('skip' in pg)) after(() => pg.stop())
const server = (): TestPostgres => pg as TestPostgres

const T0 = 1_795_776_000_000

function keyOf(tag: string): string {
  return Buffer.from(`fault-${tag}`.padEnd(32, '.')).toString('base64')
}

function isStoreError(err: unknown): boolean {
  return err instanceof RegistryError && err.code === RegistryErrorCode.STORE
}

/** One acknowledged write: a node, its tags and a signed audit entry, in one transaction. */
async function writeOne(store: PostgresRegistryStore, id: Identity, tag: string): Promise<number> {
  return store.transaction(async (tx) => {
    const node = await tx.createNode({ publicKey: keyOf(tag), owner: null, realAddr: '10.9.9.9:1', now: T0 })
    await tx.setTags(node.id, [tag])
    const signed = `report_trust:${node.id}:1`
    await tx.networks.appendAudit({
      networkId: 0,
      time: T0,
      actor: node.id,
      actorKey: Buffer.from(id.publicKey).toString('base64'),
      action: 'trust',
      subject: 1,
      detail: '',
      signed,
      signature: id.signChallenge(signed),
    })
    return node.id
  })
}

/** Writes with `lanes` concurrent writers until stopped; records what was acknowledged and what failed. */
function writer(store: PostgresRegistryStore, lanes: number) {
  const id = Identity.generate()
  const acked = new Map<string, number>()
  const failures: unknown[] = []
  let next = 0
  let stopped = false
  const lane = async (): Promise<void> => {
    while (!stopped) {
      const tag = `w${next++}`
      try {
        acked.set(tag, await writeOne(store, id, tag))
      } catch (err) {
        failures.push(err)
        await new Promise((r) => setTimeout(r, 20))
      }
    }
  }
  const running = Promise.all(Array.from({ length: lanes }, lane))
  return {
    acked,
    failures,
    stop: async () => {
      stopped = true
      await running
    },
  }
}

async function until(what: string, check: () => Promise<boolean> | boolean, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms
  for (;;) {
    if (await check()) return
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 50))
  }
}

async function answers(store: PostgresRegistryStore): Promise<boolean> {
  try {
    await store.countOnline()
    return true
  } catch {
    return false
  }
}

for (const fault of ['restart', 'crash'] as const) {
  test(`PostgreSQL ${fault} mid-run: acknowledged writes survive, outage writes fail whole with PT_REGISTRY_STORE, the store reconnects`, { skip }, async (t) => {
    const url = await server().createDatabase(`faults_${fault}`)
    const store = await PostgresRegistryStore.open(url, { poolSize: 4, connectTimeoutMs: 2_000 })
    const w = writer(store, 4)
    try {
      await until('writes before the fault', () => w.acked.size >= 40)
      if (fault === 'restart') await server().halt()
      else await server().kill()
      const ackedBefore = new Map(w.acked)
      // While PostgreSQL is down: calls fail with the store error, quickly, nothing hangs.
      await assert.rejects(store.createNode({ publicKey: keyOf('outage'), owner: null, realAddr: '1.1.1.1:1', now: T0 }), isStoreError)
      await assert.rejects(store.getNode(1), isStoreError)
      await assert.rejects(writeOne(store, Identity.generate(), 'outage-tx'), isStoreError)
      const failedDuringOutage = w.failures.length
      await new Promise((r) => setTimeout(r, 300))
      await server().start()
      // The same store object answers again: the pool replaced its dead connections.
      await until('the store answering after the fault', () => answers(store))
      const ackedAtRestart = w.acked.size
      await until('writes after the fault', () => w.acked.size >= ackedAtRestart + 40)
      await w.stop()

      assert.ok(w.failures.length > 0 && failedDuringOutage > 0, 'writes during the outage failed')
      for (const err of w.failures) assert.ok(isStoreError(err), `a failure that is not PT_REGISTRY_STORE: ${String(err)}`)
      // Every acknowledged write is there, whole.
      for (const [tag, nodeId] of w.acked) {
        const node = await store.getNode(nodeId)
        assert.deepEqual([node?.publicKey, node?.tags], [keyOf(tag), [tag]], `acknowledged write ${tag}`)
        assert.deepEqual(await store.findKey(keyOf(tag)), { nodeId, retired: false })
      }
      for (const tag of ackedBefore.keys()) assert.ok(w.acked.has(tag))
      // Nothing half-applied: every node that exists has its tags and its audit entry (an
      // unacknowledged write may have committed whole; never in part). Outage writes left nothing.
      const nodes = await store.listNodes()
      const audit = await store.networks.listAudit(0, 0, 1_000_000)
      const audited = new Set(audit.map((e) => e.actor))
      for (const n of nodes) {
        assert.equal(n.tags.length, 1, `node ${n.id} has its tags`)
        assert.ok(audited.has(n.id), `node ${n.id} has its audit entry`)
      }
      assert.equal(audit.length, nodes.length)
      assert.equal(await store.findKey(keyOf('outage')), null)
      assert.equal(await store.findKey(keyOf('outage-tx')), null)
      assert.equal(new Set(nodes.map((n) => n.id)).size, nodes.length)
      assert.equal(verifyAuditChain(audit).ok, true, 'the audit chain is still one valid chain')
      t.diagnostic(`${w.acked.size} writes acknowledged (${ackedBefore.size} before the ${fault}), ${w.failures.length} failed, ${nodes.length} nodes stored`)
    } finally {
      await w.stop()
      await server().start().catch(() => undefined)
      await store.close()
    }
  })
}

test('three stores registering at once on one database never hand out an ID twice', { skip }, async (t) => {
  const url = await server().createDatabase('faults_ids')
  const stores = await Promise.all([0, 1, 2].map(() => PostgresRegistryStore.open(url, { poolSize: 5 })))
  try {
    const perStore = 200
    // The registration pattern (request-handler.ts): look the key up, then create the node in a
    // SERIALIZABLE transaction; every third one reads the key inside the transaction too.
    const register = async (s: PostgresRegistryStore, tag: string, i: number): Promise<number> => {
      if ((await s.findKey(keyOf(tag))) !== null) throw new Error('key exists')
      return s.transaction(async (tx) => {
        if (i % 3 === 0 && (await tx.findKey(keyOf(tag))) !== null) throw new Error('key exists')
        return (await tx.createNode({ publicKey: keyOf(tag), owner: null, realAddr: '10.0.0.1:1', now: T0 })).id
      })
    }
    const results = await Promise.all(stores.map((s, k) => Promise.all(Array.from({ length: perStore }, (_, i) => register(s, `${k}-${i}`, i)))))
    const ids = results.flat()
    assert.equal(ids.length, 3 * perStore)
    assert.equal(new Set(ids).size, ids.length, 'no ID twice')
    const nodes = await stores[0]!.listNodes()
    assert.deepEqual(nodes.map((n) => n.id).sort((a, b) => a - b), [...ids].sort((a, b) => a - b))
    t.diagnostic(`transaction retries: ${stores.map((s) => s.stats().retries).join(', ')}`)
  } finally {
    await Promise.all(stores.map((s) => s.close()))
  }
})

test('heartbeats gathered while PostgreSQL is down are kept and written once it is back', { skip }, async () => {
  const url = await server().createDatabase('faults_touches')
  const store = await PostgresRegistryStore.open(url, { poolSize: 2, connectTimeoutMs: 2_000 })
  try {
    const a = await store.createNode({ publicKey: keyOf('touch-a'), owner: null, realAddr: '10.0.0.1:1', now: T0 })
    await server().halt()
    store.touchNode(a.id, T0 + 30_000)
    await assert.rejects(store.flushTouches(), isStoreError)
    await server().start()
    await until('the store answering', () => answers(store))
    await store.flushTouches()
    const other = await PostgresRegistryStore.open(url, { poolSize: 1 })
    try {
      assert.equal((await other.getNode(a.id))!.lastSeen, T0 + 30_000, 'the kept heartbeat reached the database')
    } finally {
      await other.close()
    }
  } finally {
    await server().start().catch(() => undefined)
    await store.close()
  }
})
