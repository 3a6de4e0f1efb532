/**
 * X25519 key agreement and the session-key derivations (docs/wire.md §5.4, §13.6).
 *
 * Two KDF variants exist on the wire with no negotiation between them:
 *   legacy (Go snapshot): key = SHA-256(label ‖ ":" ‖ shared)
 *   hkdf   (draft, later Go): key = HKDF-SHA256(salt = empty, IKM = shared, info = label, L = 32)
 * with label "pilot-tunnel-v1" for UDP tunnels and "pilot-secure-v1" for the
 * port-443 secure channel. The shared secret is zeroed as soon as keys are
 * derived (docs/wire.md §15.4); the HKDF PRK lives inside OpenSSL and never
 * reaches JavaScript.
 */
import { createHash, createPrivateKey, createPublicKey, diffieHellman, generateKeyPairSync, hkdfSync, type KeyObject } from 'node:crypto'
import { CryptoError } from '../errors.js'
import { CryptoErrorCode } from './error-codes.js'

export type KdfVariant = 'legacy' | 'hkdf'
export const KDF_VARIANTS: readonly KdfVariant[] = ['legacy', 'hkdf']

/** What the derived key protects: UDP tunnel frames or a port-443 secure channel. */
export type KeyPurpose = 'tunnel' | 'secure'

export const X25519_KEY_SIZE = 32
export const SESSION_KEY_SIZE = 32

const PKCS8_PREFIX = Buffer.from('302e020100300506032b656e04220420', 'hex')
const SPKI_PREFIX = Buffer.from('302a300506032b656e032100', 'hex')

const LABELS: Record<KeyPurpose, string> = { tunnel: 'pilot-tunnel-v1', secure: 'pilot-secure-v1' }
const LEGACY_PREFIXES: Record<KeyPurpose, Buffer> = {
  tunnel: Buffer.from(`${LABELS.tunnel}:`, 'ascii'),
  secure: Buffer.from(`${LABELS.secure}:`, 'ascii'),
}
const EMPTY = new Uint8Array(0)

export class X25519KeyPair {
  /** Raw 32-byte public key, as sent in PILK/PILA and in the port-443 key swap. */
  readonly publicKey: Uint8Array
  private readonly privateKey: KeyObject

  private constructor(privateKey: KeyObject) {
    this.privateKey = privateKey
    const der = createPublicKey(privateKey).export({ format: 'der', type: 'spki' })
    this.publicKey = new Uint8Array(der.subarray(der.length - X25519_KEY_SIZE))
  }

  /** A fresh key pair from the system CSPRNG. */
  static generate(): X25519KeyPair {
    return new X25519KeyPair(generateKeyPairSync('x25519').privateKey)
  }

  /** The key pair for a raw 32-byte private scalar (tests and vectors). */
  static fromPrivateKey(raw: Uint8Array): X25519KeyPair {
    if (raw.length !== X25519_KEY_SIZE) {
      throw new CryptoError(CryptoErrorCode.BAD_KEY, `X25519 private key must be 32 bytes, got ${raw.length}`)
    }
    const der = Buffer.concat([PKCS8_PREFIX, raw])
    try {
      return new X25519KeyPair(createPrivateKey({ key: der, format: 'der', type: 'pkcs8' }))
    } finally {
      der.fill(0)
    }
  }

  /**
   * X25519(own private, peer public), 32 bytes. Throws `CryptoError`
   * `PT_CRYPTO_BAD_PEER_KEY` for a key of the wrong length and
   * `PT_CRYPTO_WEAK_PEER_KEY` for a low-order key giving an all-zero secret
   * (Go's crypto/ecdh refuses it too). The caller owns and should zero the result.
   */
  sharedSecret(peerPublicKey: Uint8Array): Buffer {
    if (peerPublicKey.length !== X25519_KEY_SIZE) {
      throw new CryptoError(CryptoErrorCode.BAD_PEER_KEY, `X25519 public key must be 32 bytes, got ${peerPublicKey.length}`)
    }
    let shared: Buffer
    try {
      const peer = createPublicKey({ key: Buffer.concat([SPKI_PREFIX, peerPublicKey]), format: 'der', type: 'spki' })
      shared = diffieHellman({ privateKey: this.privateKey, publicKey: peer })
    } catch (err) {
      // OpenSSL itself refuses some low-order points; report them like the all-zero case.
      throw new CryptoError(CryptoErrorCode.WEAK_PEER_KEY, 'X25519 key agreement failed for the peer key', { cause: err })
    }
    if (isAllZero(shared)) {
      throw new CryptoError(CryptoErrorCode.WEAK_PEER_KEY, 'peer X25519 key is of low order: shared secret is all zero')
    }
    return shared
  }
}

function isAllZero(bytes: Uint8Array): boolean {
  let acc = 0
  for (let i = 0; i < bytes.length; i++) acc |= bytes[i]!
  return acc === 0
}

/** Derives a 32-byte session key from a shared secret. Does not touch `shared`. */
export function deriveSessionKey(shared: Uint8Array, variant: KdfVariant, purpose: KeyPurpose = 'tunnel'): Buffer {
  if (variant === 'legacy') {
    return createHash('sha256').update(LEGACY_PREFIXES[purpose]).update(shared).digest()
  }
  return Buffer.from(hkdfSync('sha256', shared, EMPTY, LABELS[purpose], SESSION_KEY_SIZE))
}

/**
 * Agrees on and derives one session key; the shared secret is zeroed before
 * returning. The caller owns the key and should zero it once a cipher holds it.
 */
export function agreeSessionKey(
  own: X25519KeyPair,
  peerPublicKey: Uint8Array,
  variant: KdfVariant,
  purpose: KeyPurpose = 'tunnel',
): Buffer {
  const shared = own.sharedSecret(peerPublicKey)
  try {
    return deriveSessionKey(shared, variant, purpose)
  } finally {
    shared.fill(0)
  }
}

/**
 * Both variants' keys from one agreement, for peers whose variant is not yet
 * known (docs/wire.md §20 item 5: trial-decrypt, then remember). Shared secret zeroed.
 */
export function agreeSessionKeys(
  own: X25519KeyPair,
  peerPublicKey: Uint8Array,
  purpose: KeyPurpose = 'tunnel',
): Record<KdfVariant, Buffer> {
  const shared = own.sharedSecret(peerPublicKey)
  try {
    return { legacy: deriveSessionKey(shared, 'legacy', purpose), hkdf: deriveSessionKey(shared, 'hkdf', purpose) }
  } finally {
    shared.fill(0)
  }
}
