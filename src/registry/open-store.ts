/**
 * Opens the registry store a `--store` spec names (store-spec.ts). The
 * PostgreSQL backend is imported only for a postgres:// spec, so the SQLite
 * default never loads pg.
 */
import { mkdirSync } from 'node:fs'
import { dirname } from 'node:path'
import type { Logger } from '../logger.js'
import { RegistryError, RegistryErrorCode } from './errors.js'
import type { RegistryStore } from './store-api.js'
import { parseStoreSpec } from './store-spec.js'
import * as sqlite from './store.js'

export interface OpenStoreOptions {
  /** PostgreSQL: connections in the pool (default 10). */
  poolSize?: number
  logger?: Logger
}

export async function openRegistryStore(spec: string, options: OpenStoreOptions = {}): Promise<RegistryStore> {
  const parsed = parseStoreSpec(spec)
  if (parsed.kind === 'postgres') {
    const { PostgresRegistryStore } = await import('./pg-store.js')
    return PostgresRegistryStore.open(parsed.url, {
      ...(options.poolSize !== undefined ? { poolSize: options.poolSize } : {}),
      ...(options.logger !== undefined ? { logger: options.logger } : {}),
    })
  }
  // The SQLite class implements RegistryStore once the asynchronous store (branch store-async)
  // is merged; until then this build can only open PostgreSQL through here.
  const Sqlite = (sqlite as unknown as { SqliteRegistryStore?: new (o: { path: string }) => RegistryStore }).SqliteRegistryStore
  if (Sqlite === undefined) {
    throw new RegistryError(RegistryErrorCode.STORE, 'this build has no asynchronous SQLite store', { hint: 'use --store postgres://…' })
  }
  if (parsed.path !== ':memory:') mkdirSync(dirname(parsed.path), { recursive: true, mode: 0o700 })
  return new Sqlite({ path: parsed.path })
}
