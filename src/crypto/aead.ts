/**
 * AES-256-GCM for PILS frames and the port-443 channel (docs/wire.md §5.3, §5.5, §13.6).
 *
 * Hot path. `seal`/`open` write into a caller buffer at an offset and return
 * a byte count; `open` answers -1 rather than throwing, because a frame that
 * fails authentication is a counter, not an error.
 *
 * Two backends, same bytes: the data-path addon (native/datapath.c) keeps one
 * OpenSSL context per key and direction, so a frame costs only its IV set-up
 * and the cipher itself (about 4x less than below); without the addon,
 * node:crypto, where each message costs one `createCipheriv` and the Buffers
 * it returns (node has no update-into API).
 *
 * AAD rule (the two wire variants, no negotiation):
 *   legacy: no AAD
 *   hkdf:   AAD = the sender's 4-byte ID, big-endian (PILS: sender node ID;
 *           port 443: role prefix 1 = server, 2 = client)
 * `sealFrame`/`openFrame` apply it so callers cannot pick the wrong one.
 */
import { createCipheriv, createDecipheriv, createSecretKey, type KeyObject } from 'node:crypto'
import { CryptoError } from '../errors.js'
import { CryptoErrorCode } from './error-codes.js'
import { readU32, writeU32 } from '../bytes.js'
import type { RandomSource } from '../random.js'
import { SESSION_KEY_SIZE, agreeSessionKey, type KdfVariant, type KeyPurpose, type X25519KeyPair } from './key-agreement.js'
import { loadDatapathAddon, type DatapathAddon, type NativeAeadHandle } from '../native-datapath.js'

export const NONCE_SIZE = 12
export const NONCE_PREFIX_SIZE = 4
export const TAG_SIZE = 16

const ALGORITHM = 'aes-256-gcm'
const GCM_OPTIONS = { authTagLength: TAG_SIZE } as const

/**
 * Writes the AAD that `variant` requires for a sender ID into `scratch`
 * (4 bytes) and returns it, or returns null when the variant uses none.
 */
export function aadFor(variant: KdfVariant, senderId: number, scratch: Uint8Array): Uint8Array | null {
  if (variant === 'legacy') return null
  writeU32(scratch, 0, senderId)
  return scratch.length === 4 ? scratch : scratch.subarray(0, 4)
}

/** Which implementation a `TunnelCipher` uses: the addon when it loads ('auto'), or node:crypto. */
export type AeadBackend = 'auto' | 'node'

export class TunnelCipher {
  readonly variant: KdfVariant
  /** 'native' when the data-path addon does the work. */
  readonly backend: 'native' | 'node'
  /** node:crypto's copy of the key; null when the addon holds it (one copy of the secret, not two). */
  private readonly key: KeyObject | null
  private readonly addon: DatapathAddon | null
  private readonly native: NativeAeadHandle | null
  private readonly aadScratch = new Uint8Array(4)

  /**
   * Copies `key` (into the addon's contexts, or else a secret KeyObject):
   * the caller may (and should) zero its own copy afterwards.
   */
  constructor(key: Uint8Array, variant: KdfVariant, backend: AeadBackend = 'auto') {
    if (key.length !== SESSION_KEY_SIZE) {
      throw new CryptoError(CryptoErrorCode.BAD_KEY, `AES-256 key must be 32 bytes, got ${key.length}`)
    }
    this.variant = variant
    this.addon = backend === 'auto' ? loadDatapathAddon() : null
    this.native = this.addon === null ? null : this.addon.aeadNew(key)
    this.key = this.native === null ? createSecretKey(key) : null
    this.backend = this.native === null ? 'node' : 'native'
  }

  /**
   * Agrees with a peer's X25519 key and builds the cipher; the shared secret
   * and the raw key are zeroed before returning (docs/wire.md §15.4).
   */
  static agree(own: X25519KeyPair, peerPublicKey: Uint8Array, variant: KdfVariant, purpose: KeyPurpose = 'tunnel'): TunnelCipher {
    const key = agreeSessionKey(own, peerPublicKey, variant, purpose)
    try {
      return new TunnelCipher(key, variant)
    } finally {
      key.fill(0)
    }
  }

  /**
   * Encrypts `plaintext` and writes ciphertext ‖ tag at `out[outOffset]`.
   * Returns the bytes written (plaintext length + 16). `out` may overlap
   * `plaintext` exactly (in-place sealing). Throws only on programming errors
   * (wrong nonce length, `out` too small).
   */
  seal(nonce: Uint8Array, plaintext: Uint8Array, aad: Uint8Array | null, out: Uint8Array, outOffset: number): number {
    if (nonce.length !== NONCE_SIZE) throw new RangeError(`nonce must be ${NONCE_SIZE} bytes, got ${nonce.length}`)
    const total = plaintext.length + TAG_SIZE
    if (outOffset < 0 || outOffset + total > out.length) {
      throw new RangeError(`seal needs ${total} bytes at offset ${outOffset}, buffer has ${out.length}`)
    }
    if (this.native !== null) return this.addon!.aeadSeal(this.native, nonce, aad, plaintext, out, outOffset)
    const cipher = createCipheriv(ALGORITHM, this.key!, nonce, GCM_OPTIONS)
    if (aad !== null) cipher.setAAD(aad)
    const ciphertext = cipher.update(plaintext)
    cipher.final() // GCM: no trailing block, only the tag computation
    out.set(ciphertext, outOffset)
    out.set(cipher.getAuthTag(), outOffset + ciphertext.length)
    return total
  }

  /**
   * Authenticates and decrypts ciphertext ‖ tag into `out[outOffset]`.
   * Returns the plaintext length, or -1 if the input is malformed (no room
   * for a tag, wrong nonce length, does not fit `out`) or fails
   * authentication. Nothing is written to `out` unless authentication
   * succeeded, so decrypting in place is safe.
   */
  open(nonce: Uint8Array, ciphertextWithTag: Uint8Array, aad: Uint8Array | null, out: Uint8Array, outOffset: number): number {
    const length = ciphertextWithTag.length - TAG_SIZE
    if (length < 0 || nonce.length !== NONCE_SIZE || outOffset < 0 || outOffset + length > out.length) return -1
    if (this.native !== null) return this.addon!.aeadOpen(this.native, nonce, aad, ciphertextWithTag, out, outOffset)
    const decipher = createDecipheriv(ALGORITHM, this.key!, nonce, GCM_OPTIONS)
    if (aad !== null) decipher.setAAD(aad)
    decipher.setAuthTag(ciphertextWithTag.subarray(length))
    const plaintext = decipher.update(ciphertextWithTag.subarray(0, length))
    try {
      decipher.final() // throws on a bad tag; node offers no other signal
    } catch {
      return -1
    }
    out.set(plaintext, outOffset)
    return length
  }

  /** `seal` with the AAD this cipher's variant requires for `senderId`. */
  sealFrame(senderId: number, nonce: Uint8Array, plaintext: Uint8Array, out: Uint8Array, outOffset: number): number {
    return this.seal(nonce, plaintext, aadFor(this.variant, senderId, this.aadScratch), out, outOffset)
  }

  /** `open` with the AAD this cipher's variant requires for `senderId`. */
  openFrame(senderId: number, nonce: Uint8Array, ciphertextWithTag: Uint8Array, out: Uint8Array, outOffset: number): number {
    return this.open(nonce, ciphertextWithTag, aadFor(this.variant, senderId, this.aadScratch), out, outOffset)
  }
}

const TWO_POW_32 = 0x1_0000_0000

/** Largest counter a `NonceSequence` hands out: counters stay exact JS numbers. */
export const MAX_NONCE_COUNTER = Number.MAX_SAFE_INTEGER // 2^53 - 1

/** From this counter on `needsRekey` is true: far below the hard limit, far above any real session. */
export const REKEY_NONCE_COUNTER = 2 ** 48

/**
 * The send side of one session's nonces: a random 4-byte prefix and a u64
 * counter, big-endian (docs/wire.md §5.5). The first counter is 1, as in Go.
 * Never hands out the same counter twice; throws `CryptoError`
 * `PT_CRYPTO_NONCE_EXHAUSTED` rather than exceed `MAX_NONCE_COUNTER`.
 */
export class NonceSequence {
  readonly prefix: Uint8Array
  private last: number

  /**
   * @param lastUsed counter already used under this key, to continue a
   *   sequence across re-derivations (docs/wire.md §17 item 5); 0 for a new key.
   */
  constructor(random: RandomSource, lastUsed = 0) {
    if (!Number.isSafeInteger(lastUsed) || lastUsed < 0) throw new RangeError(`bad counter ${lastUsed}`)
    this.prefix = new Uint8Array(NONCE_PREFIX_SIZE)
    random.fill(this.prefix)
    this.last = lastUsed
  }

  /** The prefix as a u32, e.g. to recognise our own frames. */
  get prefixValue(): number {
    return readU32(this.prefix, 0)
  }

  /** The counter of the most recent nonce, 0 before the first. */
  get lastCounter(): number {
    return this.last
  }

  /** True once the session should be re-keyed (counter ≥ 2^48). */
  get needsRekey(): boolean {
    return this.last >= REKEY_NONCE_COUNTER
  }

  /** Writes the next 12-byte nonce at `out[offset]` and returns its counter. */
  next(out: Uint8Array, offset = 0): number {
    if (this.last >= MAX_NONCE_COUNTER) {
      throw new CryptoError(CryptoErrorCode.NONCE_EXHAUSTED, 'nonce counter exhausted for this session key', {
        hint: 're-key the session (new key exchange) before sending more',
      })
    }
    const counter = ++this.last
    out.set(this.prefix, offset)
    writeNonceCounter(out, offset + NONCE_PREFIX_SIZE, counter)
    return counter
  }
}

/** Writes a counter (safe integer) as u64 big-endian. */
export function writeNonceCounter(out: Uint8Array, offset: number, counter: number): void {
  writeU32(out, offset, Math.floor(counter / TWO_POW_32))
  writeU32(out, offset + 4, counter >>> 0)
}

/**
 * Reads the u64 counter of a 12-byte nonce at `nonce[offset]`. Returns -1 for
 * counters above 2^53 − 1, which a JS number cannot hold exactly: a receiver
 * drops them (no real sender gets there).
 */
export function readNonceCounter(nonce: Uint8Array, offset = 0): number {
  const high = readU32(nonce, offset + NONCE_PREFIX_SIZE)
  if (high >= 0x20_0000) return -1 // ≥ 2^53
  return high * TWO_POW_32 + readU32(nonce, offset + NONCE_PREFIX_SIZE + 4)
}

/** Reads the 4-byte prefix of a nonce as a u32 (the key for `ReplayWindows`). */
export function readNoncePrefix(nonce: Uint8Array, offset = 0): number {
  return readU32(nonce, offset)
}
