/**
 * Imported Ed25519 public keys, by their base64 text. Checking a signature
 * against raw key bytes makes node:crypto import the key first
 * (`createPublicKey`), and the registry's load benchmark profiled that import
 * at a third of a heartbeat's cost: every request of a known node re-imported
 * the same key. Bounded (oldest out first); a miss costs one import, as before.
 */
import type { KeyObject } from 'node:crypto'
import { decodeStdBase64, ed25519PublicKeyObject, ED25519_PUBLIC_KEY_SIZE } from '../crypto/identity.js'

export const DEFAULT_KEY_CACHE_SIZE = 131_072

export class PublicKeyCache {
  private readonly keys = new Map<string, KeyObject>()

  constructor(private readonly maxSize = DEFAULT_KEY_CACHE_SIZE) {}

  /** The key object for standard-base64 `text`, or null when it is no 32-byte key. */
  get(text: string): KeyObject | null {
    const hit = this.keys.get(text)
    if (hit !== undefined) return hit
    const raw = decodeStdBase64(text)
    if (raw === null || raw.length !== ED25519_PUBLIC_KEY_SIZE) return null
    let key: KeyObject
    try {
      key = ed25519PublicKeyObject(raw)
    } catch {
      return null
    }
    if (this.keys.size >= this.maxSize) this.keys.delete(this.keys.keys().next().value as string)
    this.keys.set(text, key)
    return key
  }

  get size(): number {
    return this.keys.size
  }
}
