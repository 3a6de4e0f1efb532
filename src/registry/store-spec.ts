/**
 * `--store` (issue 14): which backend and where. Pure, so the CLI can check
 * the flag before it opens anything. `sqlite:PATH`, a bare path or `:memory:`
 * is SQLite (the default, embedded); `postgres://…` or `postgresql://…` is
 * PostgreSQL, shared by several registry front ends.
 */
import { ConfigError } from '../errors.js'
import { redactPgUrl } from './pg-query.js'

export type StoreSpec = { kind: 'sqlite'; path: string } | { kind: 'postgres'; url: string }

export const STORE_SPEC_HINT =
  'use sqlite:PATH (or a bare file path) for the embedded store, or postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE for PostgreSQL'

export function parseStoreSpec(text: string, flag = '--store'): StoreSpec {
  const spec = text.trim()
  if (spec === '') throw new ConfigError(`${flag} is empty`, STORE_SPEC_HINT)
  if (/^postgres(ql)?:\/\//i.test(spec)) return { kind: 'postgres', url: spec }
  if (/^sqlite:/i.test(spec)) {
    const path = spec.slice('sqlite:'.length)
    if (path === '') throw new ConfigError(`${flag} sqlite: names no file`, STORE_SPEC_HINT)
    return { kind: 'sqlite', path }
  }
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(spec)
  if (scheme !== null) throw new ConfigError(`${flag}: unknown store ${scheme[1]}://`, STORE_SPEC_HINT)
  return { kind: 'sqlite', path: spec }
}

/** What to print for a store: the file, or the URL without its password. */
export function describeStoreSpec(spec: StoreSpec): string {
  return spec.kind === 'sqlite' ? spec.path : redactPgUrl(spec.url)
}
