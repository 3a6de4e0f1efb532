/**
 * Reading fields of a decoded registry request. Anything missing, of the wrong
 * JSON type or out of range becomes a `RequestRejected('bad-field', ...)`; the
 * handler turns that into an error response, never into a throw past it.
 */
import type { JsonObject } from '../protocol/registry-framing.js'

/** Why a request was refused; `stats()` counts these. Stable strings. */
export type RejectReason =
  | 'too-large'
  | 'bad-json'
  | 'bad-field'
  | 'unknown-type'
  | 'bad-signature'
  | 'not-found'
  | 'not-authorised'
  | 'rate-limited'
  | 'conflict'
  | 'inbox-full'
  | 'unsupported'
  | 'internal'

/**
 * Thrown inside the handler; `text` goes to the client as the `error` string,
 * and `code` (network operations) as the extra `code` key.
 */
export class RequestRejected extends Error {
  readonly reason: RejectReason
  readonly code: string | undefined

  constructor(reason: RejectReason, text: string, code?: string) {
    super(text)
    this.reason = reason
    this.code = code
  }
}

export const MAX_NODE_ID = 0xffffffff
/** Free-text fields longer than this are refused (a port-444 handshake message is at most 4096 bytes in all). */
export const MAX_TEXT_LENGTH = 4096
/** A base64 Ed25519 signature is 88 characters; anything much longer is junk. */
const MAX_SIGNATURE_LENGTH = 128

export function badField(key: string): RequestRejected {
  return new RequestRejected('bad-field', `invalid ${key}`)
}

/** A node ID: an integer in 1..2^32-1 (Go would map junk to 0; we refuse it). */
export function readNodeId(req: JsonObject, key: string): number {
  return readInteger(req, key, 1, MAX_NODE_ID)
}

export function readInteger(req: JsonObject, key: string, min: number, max: number): number {
  const v = req[key]
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) throw badField(key)
  return v
}

export function readBoolean(req: JsonObject, key: string): boolean {
  const v = req[key]
  if (typeof v !== 'boolean') throw badField(key)
  return v
}

export function readString(req: JsonObject, key: string, maxLength = MAX_TEXT_LENGTH): string {
  const v = req[key]
  if (typeof v !== 'string' || v.length > maxLength) throw badField(key)
  return v
}

/** Absent or null → undefined; present → must be a string. */
export function readOptionalString(req: JsonObject, key: string, maxLength = MAX_TEXT_LENGTH): string | undefined {
  const v = req[key]
  if (v === undefined || v === null) return undefined
  return readString(req, key, maxLength)
}

export function readSignature(req: JsonObject): string {
  const v = req.signature
  if (typeof v !== 'string' || v.length === 0 || v.length > MAX_SIGNATURE_LENGTH) {
    throw new RequestRejected('bad-signature', 'signature missing')
  }
  return v
}

// Hostnames and tags (docs/wire.md §10.5.6-7).
const HOSTNAME = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/
const RESERVED_HOSTNAMES = new Set(['localhost', 'backbone', 'broadcast'])
const TAG = /^[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?$/
export const MAX_TAGS = 10

/** Null if `hostname` may be registered, else why not. */
export function hostnameProblem(hostname: string): string | null {
  if (!HOSTNAME.test(hostname)) return 'hostname must be 1-63 lowercase letters, digits or inner hyphens'
  if (RESERVED_HOSTNAMES.has(hostname)) return `hostname "${hostname}" is reserved`
  return null
}

/** The tags to store (leading '#' stripped, duplicates dropped), or a rejection. */
export function readTags(req: JsonObject): string[] {
  const v = req.tags
  if (!Array.isArray(v) || v.length > MAX_TAGS) throw badField('tags')
  const tags: string[] = []
  for (const item of v) {
    if (typeof item !== 'string') throw badField('tags')
    const tag = item.startsWith('#') ? item.slice(1) : item
    if (!TAG.test(tag)) throw badField('tags')
    if (!tags.includes(tag)) tags.push(tag)
  }
  return tags
}
