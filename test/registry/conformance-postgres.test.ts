/**
 * The store conformance suite (conformance.ts) against PostgreSQL: one
 * throwaway server (test/util/postgres.ts) for the file, a fresh database per
 * test, and several stores on one database for the races. Skips with the
 * reason when PostgreSQL is not installed.
 */
import { after, test } from 'node:test'
import { PostgresRegistryStore } from '../../src/registry/pg-store.js'
import { startTestPostgres } from '../util/postgres.js'
import { registryStoreConformance } from './conformance.js'

const pg = await startTestPostgres()

if ('skip' in pg) {
  test('PostgreSQL store conformance', (t) => t.skip(pg.skip))
} else {
  after(() => pg.stop())
  let databases = 0
  const freshDatabase = (): Promise<string> => pg.createDatabase(`conf_${++databases}`)
  registryStoreConformance('postgres', async () => PostgresRegistryStore.open(await freshDatabase(), { poolSize: 4 }), {
    openShared: async (n) => {
      const url = await freshDatabase()
      // Opened at once, as front ends started together would: the migration lock sorts them out.
      return Promise.all(Array.from({ length: n }, () => PostgresRegistryStore.open(url, { poolSize: 4 })))
    },
  })
}
