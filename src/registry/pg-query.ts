/**
 * What the PostgreSQL store's parts share (issue 14): the statement type, the
 * function that runs one, and how a PostgreSQL error becomes a RegistryError.
 */
import type { QueryResult, QueryResultRow } from 'pg'
import { RegistryError, RegistryErrorCode } from './errors.js'

/** A statement: `name` makes pg prepare it once per connection. */
export interface PgQuery {
  name: string
  text: string
}

export function pgQuery(name: string, text: string): PgQuery {
  return { name, text }
}

/** Runs one statement (on the pool or on a transaction's client); errors come out as RegistryError STORE. */
export type PgRun = <R extends QueryResultRow = QueryResultRow>(q: PgQuery, values: readonly unknown[]) => Promise<QueryResult<R>>

/** The SQLSTATE of a PostgreSQL error, looked for on the error and its cause. */
export function pgErrorCode(err: unknown): string | undefined {
  for (let e = err, depth = 0; e !== null && typeof e === 'object' && depth < 3; e = (e as { cause?: unknown }).cause, depth++) {
    const code = (e as { code?: unknown }).code
    if (typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code)) return code
  }
  return undefined
}

/**
 * A transaction that lost a race and may simply run again: serialization
 * failure, deadlock, or a unique key another front end took between our read
 * and our write (the retry reads it and decides again).
 */
export function isRetryable(err: unknown): boolean {
  const code = pgErrorCode(err)
  return code === '40001' || code === '40P01' || code === '23505'
}

/** No connection, or the server went away (class 08, 57P0x, socket errors). */
export function isConnectionError(err: unknown): boolean {
  const code = pgErrorCode(err)
  if (code !== undefined) return code.startsWith('08') || code.startsWith('57P')
  const msg = err instanceof Error ? err.message : ''
  const sysCode = (err as { code?: unknown } | null)?.code
  return (
    (typeof sysCode === 'string' && /^E[A-Z]+$/.test(sysCode)) ||
    /Connection terminated|connect|timeout|ended the pool|socket/i.test(msg)
  )
}

/** A PostgreSQL (or connection) error as RegistryError STORE; the original stays in `cause`. */
export function storeError(err: unknown, location: string, doing = 'query failed'): RegistryError {
  if (err instanceof RegistryError) return err
  const message = err instanceof Error ? err.message : String(err)
  const hint = isConnectionError(err)
    ? `is PostgreSQL running and reachable at ${location}? The registry reconnects by itself when it is back`
    : 'see the PostgreSQL server log for details'
  return new RegistryError(RegistryErrorCode.STORE, `registry store ${doing}: ${message}`, { hint, cause: err })
}

/** The URL with its password replaced by `***` (for logs and `status`). */
export function redactPgUrl(url: string): string {
  return url.replace(/^([a-z]+:\/\/[^:@/?#]*:)[^@/?#]*@/i, '$1***@').replace(/([?&]password=)[^&#]*/i, '$1***')
}
