/** The SQLite store: restarts lose nothing, schema versioning, key index. */
import { after, test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import Database from 'better-sqlite3'
import { Identity } from '../../src/crypto/identity.js'
import { SqliteRegistryStore } from '../../src/registry/store.js'
import { SCHEMA_VERSION } from '../../src/registry/schema.js'
import { RegistryError, RegistryErrorCode } from '../../src/registry/errors.js'
import { FakeClock, startTestRegistry, testClient, leakedHandles } from './helpers.js'

function tempDir(): { dir: string; cleanup(): void } {
  const dir = mkdtempSync(path.join(tmpdir(), 'pilot-registry-'))
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) }
}

test('registry restart on the same file keeps nodes, key index, hostnames, trust, inboxes and next_node', async () => {
  const { dir, cleanup } = tempDir()
  const storePath = path.join(dir, 'registry.db')
  const clock = new FakeClock()
  const ida = Identity.generate()
  const idb = Identity.generate()
  const idc = Identity.generate()
  try {
    let registry = await startTestRegistry({ storePath, clock })
    let a = testClient(registry.port, ida)
    let b = testClient(registry.port, idb)
    const c = testClient(registry.port, idc)
    try {
      await a.register({ listenAddr: '127.0.0.1:4001', hostname: 'alpha', owner: 'ops' })
      await b.register({ listenAddr: '127.0.0.1:4002' })
      await c.register({ listenAddr: '127.0.0.1:4003' })
      await a.setVisibility(1, true)
      await a.setTags(1, ['gpu'])
      await a.requestHandshake(1, 2, 'please')
      await b.respondHandshake(2, 1, true) // trust pair 1-2, response queued for node 1
      await c.requestHandshake(3, 2, 'me too') // pending in node 2's inbox
      await c.deregister(3)
    } finally {
      a.close()
      b.close()
      c.close()
      await registry.close()
    }

    registry = await startTestRegistry({ storePath, clock })
    a = testClient(registry.port, ida)
    b = testClient(registry.port, idb)
    const d = testClient(registry.port)
    try {
      const lookup = await b.lookup(1)
      assert.equal(lookup.hostname, 'alpha')
      assert.equal(lookup.isPublic, true)
      assert.deepEqual(lookup.tags, ['gpu'])
      assert.equal(lookup.realAddr, '127.0.0.1:4001')
      assert.equal((await b.resolveHostname('alpha')).nodeId, 1)
      assert.equal((await b.resolve(2, 1)).realAddr, '127.0.0.1:4001')
      assert.equal((await a.resolve(1, 2)).realAddr, '127.0.0.1:4002', 'trust pair survived')
      assert.deepEqual((await a.pollHandshakes(1)).responses.map((r) => r.fromNodeId), [2])
      assert.deepEqual((await b.pollHandshakes(2)).requests.map((r) => r.fromNodeId), [3])
      const c2 = testClient(registry.port, idc)
      assert.equal((await c2.register({ listenAddr: ':1' }).finally(() => c2.close())).nodeId, 3, 'key index')
      assert.equal((await d.register({ listenAddr: ':1' })).nodeId, 4, 'next_node continues')
      assert.equal((await registry.store.getNode(1))?.owner, 'ops')
    } finally {
      a.close()
      b.close()
      d.close()
      await registry.close()
    }
  } finally {
    cleanup()
  }
})

test('schema: created at the current version, WAL mode, reopened without migration, newer versions refused', async () => {
  const { dir, cleanup } = tempDir()
  const file = path.join(dir, 'r.db')
  try {
    const store = new SqliteRegistryStore({ path: file })
    await store.close()
    const db = new Database(file)
    assert.equal(db.pragma('user_version', { simple: true }), SCHEMA_VERSION)
    assert.equal(db.pragma('journal_mode', { simple: true }), 'wal')
    db.pragma(`user_version = ${SCHEMA_VERSION + 1}`)
    db.close()
    assert.throws(
      () => new SqliteRegistryStore({ path: file }),
      (e: unknown) => e instanceof RegistryError && e.code === RegistryErrorCode.STORE && /schema version/.test(e.message),
    )
    assert.throws(
      () => new SqliteRegistryStore({ path: path.join(dir, 'missing-dir', 'r.db') }),
      (e: unknown) => e instanceof RegistryError && e.code === RegistryErrorCode.STORE && e.hint !== undefined,
    )
  } finally {
    cleanup()
  }
})

test('store durability: synchronous=FULL on an opened store, so a power loss cannot hand one ID to two keys', async () => {
  const { dir, cleanup } = tempDir()
  try {
    const store = new SqliteRegistryStore({ path: path.join(dir, 'r.db') })
    try {
      assert.deepEqual(store.durability(), { journalMode: 'wal', synchronous: 2 })
      // A heartbeat's last_seen skips the fsync, and the connection is FULL again afterwards.
      const node = await store.createNode({ publicKey: 'k1', owner: null, realAddr: '127.0.0.1:4000', now: 1 })
      store.touchNode(node.id, 2)
      assert.equal((await store.getNode(node.id))!.lastSeen, 2)
      await store.flushTouches()
      assert.deepEqual(store.durability(), { journalMode: 'wal', synchronous: 2 })
    } finally {
      await store.close()
    }
  } finally {
    cleanup()
  }
})

test('heartbeats are gathered and written together: answers see them at once, the file after flushTouches, the reaper and close()', async () => {
  const { dir, cleanup } = tempDir()
  try {
    const file = path.join(dir, 'r.db')
    const store = new SqliteRegistryStore({ path: file })
    const onDisk = (id: number): number => {
      const db = new Database(file, { readonly: true })
      try {
        return (db.prepare('SELECT last_seen FROM nodes WHERE id = ?').get(id) as { last_seen: number }).last_seen
      } finally {
        db.close()
      }
    }
    try {
      const a = await store.createNode({ publicKey: 'ka', owner: null, realAddr: '127.0.0.1:4000', now: 1 })
      const b = await store.createNode({ publicKey: 'kb', owner: null, realAddr: '127.0.0.1:4001', now: 1 })
      store.touchNode(a.id, 50)
      assert.equal((await store.getNode(a.id))!.lastSeen, 50, 'the store answers with the heartbeat at once')
      assert.equal(onDisk(a.id), 1, 'not yet written')
      await store.flushTouches()
      assert.equal(onDisk(a.id), 50)
      // The reaper sees gathered heartbeats: b is stale, a (touched again, unwritten) is not.
      store.touchNode(a.id, 100)
      assert.deepEqual(await store.reapStale(60), [b.id])
      assert.equal(onDisk(a.id), 100)
      store.touchNode(a.id, 150)
    } finally {
      await store.close()
    }
    const reopened = new SqliteRegistryStore({ path: file })
    try {
      assert.equal((await reopened.getNode(1))!.lastSeen, 150, 'close() wrote the last heartbeat')
    } finally {
      await reopened.close()
    }
  } finally {
    cleanup()
  }
})

test('store: IDs are never reused, hostnames unique among online nodes, trust pairs unordered', async () => {
  const store = new SqliteRegistryStore({ path: ':memory:' })
  try {
    const n1 = await store.createNode({ publicKey: 'k1', owner: null, realAddr: '1.2.3.4:1', now: 1 })
    const n2 = await store.createNode({ publicKey: 'k2', owner: null, realAddr: '1.2.3.4:2', now: 1 })
    assert.deepEqual([n1.id, n2.id], [1, 2])
    assert.equal(await store.setHostname(1, 'x'), true)
    assert.equal(await store.setHostname(2, 'x'), false)
    await store.markOffline(1)
    assert.equal(await store.setHostname(2, 'x'), true, 'freed when node 1 went offline')
    assert.deepEqual(await store.findKey('k1'), { nodeId: 1, retired: false })
    await store.addTrustPair(2, 1, 'mutual-report', 5)
    assert.equal(await store.hasTrustPair(1, 2), true)
    assert.deepEqual(await store.listTrustPairs(), [{ nodeA: 1, nodeB: 2, origin: 'mutual-report', created: 5 }])
    assert.equal(await store.removeTrust(1, 2), true)
    assert.equal(await store.removeTrust(1, 2), false)
    assert.equal((await store.createNode({ publicKey: 'k3', owner: null, realAddr: '1.2.3.4:3', now: 1 })).id, 3)
  } finally {
    await store.close()
  }
})

after(async () => {
  assert.deepEqual(await leakedHandles(), [], 'sockets, servers or timers left open')
})

test('schema 1 → 3: a store written before networks keeps its nodes and trust and gains the network tables (and those of 3)', async () => {
  const { dir, cleanup } = tempDir()
  const file = path.join(dir, 'r.db')
  try {
    const store = new SqliteRegistryStore({ path: file })
    const a = await store.createNode({ publicKey: Buffer.alloc(32, 1).toString('base64'), owner: null, realAddr: '127.0.0.1:1', now: 1 })
    const b = await store.createNode({ publicKey: Buffer.alloc(32, 2).toString('base64'), owner: null, realAddr: '127.0.0.1:2', now: 1 })
    await store.addTrustPair(a.id, b.id, 'mutual-report', 1)
    await store.close()
    // Make it a version-1 file: what pilot-tun wrote before issue 13.
    const db = new Database(file)
    db.exec(`DROP TABLE networks; DROP TABLE network_members; DROP TABLE network_invites; DROP TABLE used_nonces; DROP TABLE audit_log;
      DROP TABLE rate_windows; DROP TABLE maintenance; DELETE FROM counters WHERE name = 'next_network';`)
    db.pragma('user_version = 1')
    db.close()
    const reopened = new SqliteRegistryStore({ path: file })
    try {
      assert.deepEqual((await reopened.listNodes()).map((n) => n.id), [1, 2])
      assert.ok(await reopened.hasTrustPair(1, 2))
      assert.deepEqual(await reopened.networks.listNetworks(), [])
      assert.equal(await reopened.networks.createNetwork({ name: 'lab', joinRule: 'open', tokenSalt: null, tokenHash: null, policy: { maxMembers: 2, allowedPorts: [], membersResolve: true }, created: 1 }), 1)
    } finally {
      await reopened.close()
    }
    const check = new Database(file, { readonly: true })
    assert.equal(check.pragma('user_version', { simple: true }), SCHEMA_VERSION)
    check.close()
  } finally {
    cleanup()
  }
})
