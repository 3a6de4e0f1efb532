/**
 * Opens the registry store a `--store` spec names (store-spec.ts). The
 * PostgreSQL backend is imported only for a postgres:// spec, so the SQLite
 * default never loads pg.
 */
import { mkdirSync } from 'node:fs'
import { dirname } from 'node:path'
import type { Logger } from '../logger.js'
import type { RegistryStore } from './store-api.js'
import { parseStoreSpec } from './store-spec.js'
import { SqliteRegistryStore } from './store.js'

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
  if (parsed.path !== ':memory:') mkdirSync(dirname(parsed.path), { recursive: true, mode: 0o700 })
  return new SqliteRegistryStore({ path: parsed.path })
}
