/**
 * `--store` of `pilot-tun registry` and `pilot-tun rendezvous` (issue 14):
 * sqlite:PATH, a bare path, or postgres://… . Checked before any port is taken.
 */
import { describeStoreSpec, parseStoreSpec, type StoreSpec } from '../registry/store-spec.js'

export const STORE_DESCRIBE =
  'where the registry keeps its state: sqlite:PATH or a bare path (SQLite file, created if missing), or postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE (several registry front ends can share one database)'

export interface StoreFlag {
  spec: StoreSpec
  /** For logs: the file, or the URL without its password. */
  label: string
}

export function parseStoreFlag(text: string): StoreFlag {
  const spec = parseStoreSpec(text)
  return { spec, label: describeStoreSpec(spec) }
}
