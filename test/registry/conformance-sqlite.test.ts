/**
 * The store conformance suite (conformance.ts) against the embedded SQLite
 * store, through openRegistryStore as `pilot-tun registry --store` opens it.
 * The races between several stores are PostgreSQL's: one front end owns a
 * SQLite file.
 */
import { openRegistryStore } from '../../src/registry/open-store.js'
import { registryStoreConformance } from './conformance.js'
import { registryServerConformance } from './conformance-server.js'
import { FakeClock, startTestRegistry } from './helpers.js'

registryStoreConformance('sqlite', () => openRegistryStore(':memory:'), {
  sharedSkip: 'one registry front end per SQLite file; several front ends share PostgreSQL',
})

// The server-level pass (startTestRegistry: SQLite in memory).
registryServerConformance('sqlite', async () => {
  const registry = await startTestRegistry({ clock: new FakeClock(Date.now()) })
  return { port: registry.port, close: () => registry.close() }
})
