/**
 * The asynchronous SQLite store (issue 14): the transaction lock (requests
 * interleave at every await, one connection underneath), rollback, the shared
 * rate windows and maintenance slots, and database failures as RegistryError STORE.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import Database from 'better-sqlite3'
import { SqliteRegistryStore } from '../../src/registry/store.js'
import { SCHEMA_VERSION } from '../../src/registry/schema.js'
import { RegistryError, RegistryErrorCode } from '../../src/registry/errors.js'
import type { NetworkRecord, RegistryTx } from '../../src/registry/store-api.js'

const node = (publicKey: string) => ({ publicKey, owner: null, realAddr: '127.0.0.1:1', now: 1 })
const macrotask = (ms = 0): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

async function withFile(body: (file: string) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(path.join(tmpdir(), 'pt-sqlite-store-'))
  try {
    await body(path.join(dir, 'registry.db'))
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

function isStoreError(e: unknown): boolean {
  return e instanceof RegistryError && e.code === RegistryErrorCode.STORE
}

test('transaction lock: while one transaction awaits, no other call (plain or transaction) runs on the connection; they follow in order and see only its committed rows', async () => {
  const store = new SqliteRegistryStore({ path: ':memory:' })
  let releaseA = (): void => {}
  try {
    const events: string[] = []
    const gateA = new Promise<void>((resolve) => (releaseA = resolve))
    const a = store.transaction(async (tx) => {
      events.push('A begins')
      await tx.createNode(node('ka'))
      await gateA // A's transaction stays open across real waits: other requests run meanwhile
      await tx.setHostname(1, 'alpha')
      events.push('A ends')
    })
    await macrotask()
    const read = store.findKey('ka').then((v) => (events.push('read'), v))
    const write = store.createNode(node('kw')).then((v) => (events.push('write'), v))
    const b = store.transaction(async (tx) => {
      events.push('B begins')
      const seen = await tx.getNode(1)
      await macrotask(5)
      await tx.createNode(node('kb'))
      events.push('B ends')
      return seen
    })
    await macrotask(30)
    assert.deepEqual(events, ['A begins'], 'nothing ran on the connection while A was open')
    releaseA()
    await a
    const [seenByRead, written, seenByB] = await Promise.all([read, write, b])
    assert.deepEqual(events, ['A begins', 'A ends', 'read', 'write', 'B begins', 'B ends'], 'in arrival order, after A')
    assert.deepEqual(seenByRead, { nodeId: 1, retired: false })
    assert.equal(written.id, 2)
    assert.equal(seenByB?.hostname, 'alpha', 'B saw all of A, committed')
    assert.deepEqual((await store.listNodes()).map((n) => n.publicKey), ['ka', 'kw', 'kb'])
  } finally {
    releaseA()
    await store.close()
  }
})

test('transaction lock: a transaction that throws rolls back everything it did (multi-row methods included); calls waiting on it see none of it', async () => {
  const store = new SqliteRegistryStore({ path: ':memory:' })
  let releaseA = (): void => {}
  try {
    const held = await store.createNode(node('k0'))
    const gateA = new Promise<void>((resolve) => (releaseA = resolve))
    const a = store.transaction(async (tx) => {
      const n = await tx.createNode(node('ka')) // takes node ID 2 and a key_index row
      await tx.rotateKey(n.id, 'ka2', 2) // multi-row, runs inside this transaction
      await tx.addTrustPair(held.id, n.id, 'mutual-report', 2)
      await tx.networks.createNetwork({ name: 'lab', joinRule: 'open', tokenSalt: null, tokenHash: null, policy: { maxMembers: 5, allowedPorts: [], membersResolve: false }, created: 1 })
      await tx.takeRateToken('k', 1, 60_000, 0)
      await gateA
      throw new Error('changed my mind')
    })
    await macrotask()
    // Without the lock these would run inside A's open transaction and see (or join) its rows.
    const during = Promise.all([store.findKey('ka2'), store.hasTrustPair(1, 2), store.networks.findNetworkByName('lab')])
    releaseA()
    await assert.rejects(a, /changed my mind/)
    assert.deepEqual(await during, [null, false, null])
    assert.equal((await store.createNode(node('kb'))).id, 2, 'the rolled-back node ID is handed out again')
    assert.equal(await store.findKey('ka'), null)
    assert.equal(await store.takeRateToken('k', 1, 60_000, 0), true, 'the rate window was rolled back too')
    const lab: Omit<NetworkRecord, 'id'> = { name: 'lab', joinRule: 'open', tokenSalt: null, tokenHash: null, policy: { maxMembers: 5, allowedPorts: [], membersResolve: false }, created: 1 }
    assert.equal(await store.networks.createNetwork(lab), 1)
    assert.equal(await store.networks.createNetwork(lab), null, 'a taken name: null, as the interface says')
  } finally {
    releaseA()
    await store.close()
  }
})

test('transaction: a tx used after its transaction ended is refused; a plain call after it runs at once', async () => {
  const store = new SqliteRegistryStore({ path: ':memory:' })
  try {
    let leaked: RegistryTx | null = null
    assert.equal(await store.transaction(async (tx) => ((leaked = tx), 7)), 7)
    await assert.rejects(leaked!.getNode(1), /after it ended/)
    await assert.rejects(leaked!.networks.listNetworks(), /after it ended/)
    // Nothing is left holding the connection: the fast path applies again.
    let settled = false
    void store.countOnline().then(() => (settled = true))
    await Promise.resolve()
    assert.equal(settled, true, 'a plain call with no transaction open does not queue')
  } finally {
    await store.close()
  }
})

test('maintain: runs once per interval across every store on one database, names apart; concurrent claims, one winner', async () => {
  await withFile(async (file) => {
    const s1 = new SqliteRegistryStore({ path: file })
    const s2 = new SqliteRegistryStore({ path: file })
    try {
      let runs = 0
      const job = async (): Promise<number> => ++runs
      assert.equal(await s1.maintain('reap', 1_000, 10_000, job), 1, 'first use runs')
      assert.equal(await s2.maintain('reap', 1_000, 10_500, job), null, 'the other front end, within the interval')
      assert.equal(await s1.maintain('reap', 1_000, 10_999, job), null)
      assert.equal(await s2.maintain('reap', 1_000, 11_000, job), 2, 'a full interval later, whichever asks')
      assert.equal(await s1.maintain('prune', 1_000, 11_000, job), 3, 'another name has its own slot')
      const both = await Promise.all([s1.maintain('reap', 1_000, 20_000, job), s2.maintain('reap', 1_000, 20_000, job)])
      assert.equal(both.filter((r) => r !== null).length, 1, JSON.stringify(both))
      assert.equal(runs, 4)
      // A job that fails still used its slot (the next interval tries again).
      await assert.rejects(s1.maintain('flaky', 1_000, 30_000, async () => Promise.reject(new Error('boom'))), /boom/)
      assert.equal(await s2.maintain('flaky', 1_000, 30_500, job), null)
    } finally {
      await s1.close()
      await s2.close()
    }
  })
})

test('takeRateToken: capacity per fixed window, keys apart, shared by every store on one database; a clock behind counts against the newer window', async () => {
  await withFile(async (file) => {
    const s1 = new SqliteRegistryStore({ path: file })
    const s2 = new SqliteRegistryStore({ path: file })
    try {
      const t0 = 1_795_776_000_000 // a window boundary
      const take = (s: SqliteRegistryStore, key: string, at: number) => s.takeRateToken(key, 3, 60_000, at)
      assert.deepEqual([await take(s1, 'token:5', t0), await take(s2, 'token:5', t0 + 1), await take(s1, 'token:5', t0 + 59_999)], [true, true, true])
      assert.equal(await take(s2, 'token:5', t0 + 30_000), false, 'the fourth in the window, from the other front end')
      assert.equal(await take(s1, 'token:5', t0 + 30_000), false, 'a refused event is not counted, and stays refused')
      assert.equal(await take(s2, 'token:*', t0), true, 'another key')
      assert.equal(await take(s2, 'token:5', t0 + 60_000), true, 'the next window starts over')
      assert.equal(await take(s1, 'token:5', t0 + 59_000), true, 'a front end whose clock is behind: counted in the newer window')
      assert.equal(await take(s1, 'token:5', t0 + 59_500), true)
      assert.equal(await take(s2, 'token:5', t0 + 60_001), false, 'three in the newer window')
      assert.equal(await s1.takeRateToken('none', 0, 60_000, t0), false, 'capacity 0 admits nothing')
    } finally {
      await s1.close()
      await s2.close()
    }
  })
})

test('schema 3: rate_windows and maintenance exist; a version-2 file gains them and keeps its rows', async () => {
  await withFile(async (file) => {
    const store = new SqliteRegistryStore({ path: file })
    assert.equal(await store.schemaVersion(), SCHEMA_VERSION)
    assert.equal(SCHEMA_VERSION, 3)
    await store.createNode(node('k1'))
    await store.close()
    const db = new Database(file)
    db.exec('DROP TABLE rate_windows; DROP TABLE maintenance')
    db.pragma('user_version = 2')
    db.close()
    const reopened = new SqliteRegistryStore({ path: file })
    try {
      assert.equal(await reopened.schemaVersion(), 3)
      assert.equal((await reopened.getNode(1))?.publicKey, 'k1')
      assert.equal(await reopened.takeRateToken('k', 1, 1_000, 0), true)
      assert.equal(await reopened.maintain('reap', 1_000, 0, async () => 'ran'), 'ran')
    } finally {
      await reopened.close()
    }
  })
})

test('database failures reject with RegistryError STORE (another process holds the file, a closed store); reads go on, writes recover', async () => {
  await withFile(async (file) => {
    const store = new SqliteRegistryStore({ path: file, busyTimeoutMs: 0 })
    const other = new Database(file)
    try {
      await store.createNode(node('k1'))
      other.exec('BEGIN EXCLUSIVE') // e.g. an operator's sqlite3 shell, or a backup, holding the write lock
      await assert.rejects(store.createNode(node('k2')), isStoreError)
      await assert.rejects(store.setHostname(1, 'x'), isStoreError)
      await assert.rejects(store.transaction(async (tx) => tx.markOffline(1)), isStoreError, 'BEGIN IMMEDIATE fails: STORE')
      assert.equal((await store.getNode(1))?.publicKey, 'k1', 'WAL readers are not blocked')
      store.touchNode(1, 99)
      await assert.rejects(store.flushTouches(), isStoreError)
      other.exec('COMMIT')
      await store.flushTouches()
      assert.equal((await store.createNode(node('k2'))).id, 2, 'writes work again')
      assert.equal((other.prepare('SELECT last_seen FROM nodes WHERE id = 1').get() as { last_seen: number }).last_seen, 99, 'the failed flush kept its heartbeats')
    } finally {
      other.close()
      await store.close()
    }
    await assert.rejects(store.getNode(1), isStoreError, 'a closed store')
    await store.close() // idempotent
  })
})
