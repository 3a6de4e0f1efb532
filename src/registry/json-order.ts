/**
 * Go marshals registry messages from maps, so their keys come out sorted
 * (docs/wire.md §0). Receivers do not care, but emitting the same order makes our
 * bytes equal to the captures, which the conformance test checks.
 */
import type { JsonObject } from '../protocol/registry-framing.js'

/** A copy of `value` with the keys of every nested object in sorted order. */
export function withSortedKeys<T>(value: T): T {
  if (Array.isArray(value)) return value.map(withSortedKeys) as T
  if (typeof value !== 'object' || value === null) return value
  const out: JsonObject = {}
  for (const key of Object.keys(value).sort()) {
    const v = (value as JsonObject)[key]
    if (v !== undefined) out[key] = withSortedKeys(v)
  }
  return out as T
}
