/**
 * The store conformance suite (conformance.ts) against PostgreSQL: one
 * throwaway server (test/util/postgres.ts) for the file, a fresh database per
 * test, and several stores on one database for the races. Skips with the
 * reason when PostgreSQL is not installed.
 */
import { after, test } from 'node:test'
import { PostgresRegistryStore } from '../../src/registry/pg-store.js'
import { startRegistry } from '../../src/registry/start.js'
import { startTestPostgres } from '../util/postgres.js'
import { registryStoreConformance } from './conformance.js'
import { registryServerConformance } from './conformance-server.js'

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

  registryServerConformance('postgres', async () => {
    const store = await PostgresRegistryStore.open(await freshDatabase(), { poolSize: 4 })
    try {
      const registry = await startRegistry({ host: '127.0.0.1', port: 0, store })
      return { port: registry.address.port, close: () => registry.close() }
    } catch (err) {
      await store.close()
      throw err
    }
  })
}
