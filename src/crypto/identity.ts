/**
 * A node's long-term Ed25519 identity (docs/wire.md §12) and the text of its file.
 * Reading and writing the file is I/O and lives at the edge
 * (`src/daemon/identity-file.ts`); this module only turns text into keys and back.
 *
 * The private key lives in a `KeyObject`; raw seed bytes exist only briefly
 * while a file is written or read, and are zeroed afterwards. Signatures are
 * pure Ed25519 (RFC 8032, no pre-hash), so they are deterministic and equal to
 * Go's byte for byte.
 *
 * File format (Go reference): pretty JSON, 2-space indent,
 *   {"private_key": base64(seed ‖ public, 64 bytes), "public_key": base64(public)}
 * saved with mode 0600 in a directory created 0700.
 */
import {
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  sign,
  verify,
  type KeyObject,
} from 'node:crypto'
import { CryptoError } from '../errors.js'
import { CryptoErrorCode } from './error-codes.js'

export const ED25519_SEED_SIZE = 32
export const ED25519_PUBLIC_KEY_SIZE = 32
export const ED25519_SIGNATURE_SIZE = 64

// DER wrappers around raw keys (docs/wire.md §12), so node:crypto can import them.
const PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex')
const SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex')

/** An identity file larger than this is not ours; refuse before parsing. */
export const MAX_IDENTITY_FILE_SIZE = 64 * 1024

export class Identity {
  /** Raw 32-byte Ed25519 public key, as registered and as carried in PILA. */
  readonly publicKey: Uint8Array
  private readonly privateKey: KeyObject

  private constructor(privateKey: KeyObject, publicKey: Uint8Array) {
    this.privateKey = privateKey
    this.publicKey = publicKey
  }

  /** A fresh identity from the system CSPRNG. */
  static generate(): Identity {
    const { privateKey, publicKey } = generateKeyPairSync('ed25519')
    return new Identity(privateKey, rawPublicKey(publicKey))
  }

  /** The identity for a 32-byte seed (RFC 8032 "private key"). */
  static fromSeed(seed: Uint8Array): Identity {
    if (seed.length !== ED25519_SEED_SIZE) {
      throw new CryptoError(CryptoErrorCode.BAD_KEY, `Ed25519 seed must be 32 bytes, got ${seed.length}`)
    }
    const der = Buffer.concat([PKCS8_PREFIX, seed])
    try {
      const privateKey = createPrivateKey({ key: der, format: 'der', type: 'pkcs8' })
      return new Identity(privateKey, rawPublicKey(createPublicKey(privateKey)))
    } finally {
      der.fill(0)
    }
  }

  /** Ed25519 signature (64 bytes) over `message`. */
  sign(message: Uint8Array): Uint8Array {
    return sign(null, message, this.privateKey)
  }

  /** Registry request signature (docs/wire.md §10.3): standard base64 of the signature over the UTF-8 challenge. */
  signChallenge(challenge: string): string {
    return Buffer.from(this.sign(Buffer.from(challenge, 'utf8'))).toString('base64')
  }

  /**
   * The raw 32-byte seed. Needed only to write the identity file; the caller
   * should zero the returned buffer when done.
   */
  exportSeed(): Buffer {
    const der = this.privateKey.export({ format: 'der', type: 'pkcs8' })
    const seed = Buffer.from(der.subarray(der.length - ED25519_SEED_SIZE))
    der.fill(0)
    return seed
  }
}

function rawPublicKey(publicKey: KeyObject): Uint8Array {
  const der = publicKey.export({ format: 'der', type: 'spki' })
  return new Uint8Array(der.subarray(der.length - ED25519_PUBLIC_KEY_SIZE))
}

/** A `KeyObject` for a raw 32-byte Ed25519 public key. Throws `CryptoError` on a bad length. */
export function ed25519PublicKeyObject(publicKey: Uint8Array): KeyObject {
  if (publicKey.length !== ED25519_PUBLIC_KEY_SIZE) {
    throw new CryptoError(CryptoErrorCode.BAD_KEY, `Ed25519 public key must be 32 bytes, got ${publicKey.length}`)
  }
  return createPublicKey({ key: Buffer.concat([SPKI_PREFIX, publicKey]), format: 'der', type: 'spki' })
}

/**
 * Checks an Ed25519 signature against a raw 32-byte public key (or a key
 * object). Never throws: a malformed key or signature is simply `false`.
 */
export function verifyEd25519(publicKey: Uint8Array | KeyObject, message: Uint8Array, signature: Uint8Array): boolean {
  if (signature.length !== ED25519_SIGNATURE_SIZE) return false
  try {
    const key = publicKey instanceof Uint8Array ? ed25519PublicKeyObject(publicKey) : publicKey
    return verify(null, message, key, signature)
  } catch {
    return false
  }
}

/** Checks a registry-style signature: base64 over the UTF-8 challenge. Never throws. */
export function verifyChallenge(publicKey: Uint8Array | KeyObject, challenge: string, signatureBase64: string): boolean {
  const signature = decodeStdBase64(signatureBase64)
  if (signature === null) return false
  return verifyEd25519(publicKey, Buffer.from(challenge, 'utf8'), signature)
}

const STD_BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/

/** Strict standard base64 with padding (what Go's StdEncoding emits); null if not. */
export function decodeStdBase64(text: string): Buffer | null {
  if (!STD_BASE64.test(text)) return null
  return Buffer.from(text, 'base64')
}

// ---------------------------------------------------------------------------
// Identity file text

/** The file's text: pretty JSON with 2-space indent, like the Go reference. */
export function formatIdentityFile(identity: Identity): string {
  const seed = identity.exportSeed()
  const both = Buffer.concat([seed, identity.publicKey])
  try {
    const fields = { private_key: both.toString('base64'), public_key: Buffer.from(identity.publicKey).toString('base64') }
    return JSON.stringify(fields, null, 2) // Go's json.MarshalIndent: no trailing newline
  } finally {
    seed.fill(0)
    both.fill(0)
  }
}

/** The typed error for an identity file that is not in the reference format. */
export function malformedIdentityFile(path: string, problem: string): CryptoError {
  return new CryptoError(CryptoErrorCode.KEY_FILE_MALFORMED, `identity file ${path}: ${problem}`, {
    hint: `fix or remove ${path} (a new identity means a new node ID unless the registry owner string reclaims it)`,
  })
}

/**
 * Parses identity-file text. Throws `CryptoError` `PT_CRYPTO_KEY_FILE_MALFORMED`
 * naming the problem, or `PT_CRYPTO_KEY_MISMATCH` when the stored public key
 * is not the one the seed derives.
 */
export function parseIdentityFile(text: string, path = '<identity>'): Identity {
  let doc: unknown
  try {
    doc = JSON.parse(text)
  } catch {
    throw malformedIdentityFile(path, 'not valid JSON')
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw malformedIdentityFile(path, 'not a JSON object')
  const fields = doc as Record<string, unknown>
  const privateText = fields['private_key']
  const publicText = fields['public_key']
  if (typeof privateText !== 'string') throw malformedIdentityFile(path, '"private_key" is missing or not a string')
  if (typeof publicText !== 'string') throw malformedIdentityFile(path, '"public_key" is missing or not a string')
  const both = decodeStdBase64(privateText)
  if (both === null) throw malformedIdentityFile(path, '"private_key" is not standard base64')
  const storedPublic = decodeStdBase64(publicText)
  try {
    if (both.length !== ED25519_SEED_SIZE + ED25519_PUBLIC_KEY_SIZE) {
      throw malformedIdentityFile(path, `"private_key" must be 64 bytes (seed and public key), got ${both.length}`)
    }
    if (storedPublic === null) throw malformedIdentityFile(path, '"public_key" is not standard base64')
    if (storedPublic.length !== ED25519_PUBLIC_KEY_SIZE) {
      throw malformedIdentityFile(path, `"public_key" must be 32 bytes, got ${storedPublic.length}`)
    }
    const identity = Identity.fromSeed(both.subarray(0, ED25519_SEED_SIZE))
    const derived = Buffer.from(identity.publicKey)
    if (!derived.equals(both.subarray(ED25519_SEED_SIZE)) || !derived.equals(storedPublic)) {
      throw new CryptoError(CryptoErrorCode.KEY_MISMATCH, `identity file ${path}: public key does not match the private key`, {
        hint: `the file is damaged or was edited by hand; restore ${path} from a backup`,
      })
    }
    return identity
  } finally {
    both.fill(0)
  }
}
