/**
 * Opens a store and starts a server on it: what `pilot-tun registry` and
 * `pilot-tun rendezvous` run. `close()` stops the server, then the store.
 */
import { mkdirSync } from 'node:fs'
import { dirname } from 'node:path'
import { nullLogger, type Logger } from '../logger.js'
import type { RegistryLimits } from './limits.js'
import { RegistryServer } from './server.js'
import type { RegistryStore } from './store-api.js'
import { SqliteRegistryStore } from './store.js'
import type { RegistryTlsListenOptions } from './tls-front.js'

export interface StartRegistryOptions {
  host: string
  port: number
  /**
   * An opened store (SQLite or PostgreSQL, e.g. from openRegistryStore). The
   * running registry owns it from here: its `close()` closes the store too,
   * and so does a failure to listen.
   */
  store?: RegistryStore
  /** Without `store`: a SQLite file (its directory is created, mode 0700), or ':memory:'. */
  storePath?: string
  logger?: Logger
  limits?: Partial<RegistryLimits>
  now?: () => number
  /** The registry's admin token: reads the trust audit chain (network 0). */
  adminToken?: string
  /** TLS on the port (issue 15): certificate, key, TLS only or both (see tls.ts for loading them). */
  tls?: RegistryTlsListenOptions
}

export interface RunningRegistry {
  server: RegistryServer
  store: RegistryStore
  /** The bound address (port 0 resolved). */
  address: { host: string; port: number }
  close(): Promise<void>
}

export async function startRegistry(options: StartRegistryOptions): Promise<RunningRegistry> {
  const logger = options.logger ?? nullLogger
  const store = options.store ?? openSqlite(options.storePath)
  const server = new RegistryServer({
    store,
    logger,
    ...(options.now ? { now: options.now } : {}),
    ...(options.limits ? { limits: options.limits } : {}),
    ...(options.adminToken !== undefined ? { adminToken: options.adminToken } : {}),
    ...(options.tls !== undefined ? { tls: options.tls } : {}),
  })
  let address: { host: string; port: number }
  try {
    address = await server.listen(options.host, options.port)
  } catch (err) {
    await store.close().catch(() => {})
    throw err
  }
  let closing: Promise<void> | null = null
  return {
    server,
    store,
    address,
    close: () => {
      closing ??= server.close().finally(() => store.close())
      return closing
    },
  }
}

function openSqlite(path: string | undefined): SqliteRegistryStore {
  if (path === undefined) throw new TypeError('startRegistry needs a store or a storePath')
  if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true, mode: 0o700 })
  return new SqliteRegistryStore({ path })
}
