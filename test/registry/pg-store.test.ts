/**
 * PostgreSQL-only behaviour of the registry store (issue 14): schema
 * versions, a database from newer code refused, the password kept out of
 * `location`, a closed store answering PT_REGISTRY_STORE.
 */
import { after, test } from 'node:test'
import assert from 'node:assert/strict'
import pg from 'pg'
import { PostgresRegistryStore } from '../../src/registry/pg-store.js'
import { PG_SCHEMA_VERSION } from '../../src/registry/pg-schema.js'
import { startTestPostgres, type TestPostgres } from '../util/postgres.js'

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
