/**
 * PostgreSQL-only behaviour of the registry store (issue 14): schema
 * versions, a database from newer code refused, the password kept out of
 * `location`, a closed store answering PT_REGISTRY_STORE, a hot audit chain
 * queued on its lock.
 */
import { after, test } from 'node:test'
import assert from 'node:assert/strict'
import pg from 'pg'
import { PostgresRegistryStore } from '../../src/registry/pg-store.js'
import { PG_SCHEMA_VERSION } from '../../src/registry/pg-schema.js'
import { startTestPostgres, type TestPostgres } from '../util/postgres.js'
import { Identity } from '../../src/crypto/identity.js'
import { verifyAuditChain } from '../../src/registry/audit-chain.js'
import { RegistryError, RegistryErrorCode } from '../../src/registry/errors.js'
import { auditChainLock } from '../../src/registry/store-api.js'
import { trustEntry } from './conformance.js'

const server = await startTestPostgres()
const skip = 'skip' in server ? server.skip : undefined
if (!('skip' in server)) after(() => server.stop())
const db = (): TestPostgres => server as TestPostgres

async function sql(url: string, text: string): Promise<pg.QueryResult> {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  try {
    return await client.query(text)
  } finally {
    await client.end()
  }
}

test('the schema is versioned in schema_version, one row per migration, and reopening migrates nothing', { skip }, async () => {
  const url = await db().createDatabase('pg_versions')
  const a = await PostgresRegistryStore.open(url)
  await a.close()
  const b = await PostgresRegistryStore.open(url)
  try {
    assert.equal(await b.schemaVersion(), PG_SCHEMA_VERSION)
    const rows = (await sql(url, 'SELECT version FROM schema_version ORDER BY version')).rows.map((r: { version: number }) => r.version)
    assert.deepEqual(rows, [1, 2, 3])
  } finally {
    await b.close()
  }
})

test('a database written by newer code is refused with PT_REGISTRY_STORE', { skip }, async () => {
  const url = await db().createDatabase('pg_newer')
  await (await PostgresRegistryStore.open(url)).close()
  await sql(url, `INSERT INTO schema_version (version, applied) VALUES (${PG_SCHEMA_VERSION + 1}, 0)`)
  await assert.rejects(PostgresRegistryStore.open(url), (err: Error & { code?: string; hint?: string }) => {
    assert.equal(err.code, 'PT_REGISTRY_STORE')
    assert.match(err.message, new RegExp(`schema version ${PG_SCHEMA_VERSION + 1}`))
    assert.match(err.hint ?? '', /newer pilot-tun/)
    return true
  })
})

test('location hides the password; a closed store answers PT_REGISTRY_STORE; close is idempotent', { skip }, async () => {
  const url = await db().createDatabase('pg_location')
  const withPassword = url.replace('postgresql://postgres@', 'postgresql://postgres:not-checked@')
  const store = await PostgresRegistryStore.open(withPassword)
  assert.equal(store.kind, 'postgres')
  assert.match(store.location, /postgres:\*\*\*@/)
  assert.doesNotMatch(store.location, /not-checked/)
  store.touchNode(1, 5) // a node that does not exist: the flush at close writes nothing and does not throw
  await store.close()
  await store.close()
  await assert.rejects(store.countOnline(), { code: 'PT_REGISTRY_STORE' })
})

test('transactions that serialize on a hot audit chain queue on its lock instead of failing each other (one attempt each)', { skip }, async () => {
  const url = await db().createDatabase('pg_hot_chain')
  // One attempt: a transaction that loses a serializable race fails at once, so only queueing saves it.
  const stores = await Promise.all([0, 1, 2].map(() => PostgresRegistryStore.open(url, { maxAttempts: 1, poolSize: 8 })))
  const alice = Identity.generate()
  const append = (s: PostgresRegistryStore, i: number, serializeOn?: string[]): Promise<unknown> =>
    s.transaction(async (tx) => {
      await tx.countOnline()
      return tx.networks.appendAudit(trustEntry(alice, 1, i + 2))
    }, serializeOn === undefined ? {} : { serializeOn })
  try {
    // Without the lock, concurrent appenders read the same head: at one attempt each, some fail.
    const bare = await Promise.allSettled(Array.from({ length: 24 }, (_, i) => append(stores[i % 3]!, i)))
    const failed = bare.filter((r) => r.status === 'rejected')
    assert.ok(failed.length > 0, 'with no lock, one attempt is not enough for every appender')
    for (const r of failed) assert.equal(((r as PromiseRejectedResult).reason as RegistryError).code, RegistryErrorCode.STORE)
    // With it, every one of 45 goes through, and the chain stays one valid chain.
    await Promise.all(Array.from({ length: 45 }, (_, i) => append(stores[i % 3]!, 100 + i, [auditChainLock(0)])))
    const chain = await stores[0]!.networks.listAudit(0, 0, 1_000)
    assert.equal(chain.length, 24 - failed.length + 45)
    assert.equal(verifyAuditChain(chain).ok, true)
  } finally {
    await Promise.all(stores.map((s) => s.close()))
  }
})
