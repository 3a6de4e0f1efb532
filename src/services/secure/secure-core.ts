/**
 * The port-443 secure channel as a pure core (docs/wire.md §13.6): bytes in,
 * bytes out, no socket, no clock. `secure-stream.ts` puts it on a stream.
 *
 *   key swap   each side sends its raw 32-byte X25519 public key (client
 *              first); both derive the two keys of §13.6 item 2 at once:
 *              legacy SHA-256("pilot-secure-v1:" ‖ shared) ([G]) and
 *              HKDF-SHA256 (info "pilot-secure-v1") ([D]).
 *   frames     len u32 ‖ nonce (role prefix u32 ‖ counter u64) ‖ ciphertext ‖ tag;
 *              legacy: no AAD; hkdf: AAD = the sender's role prefix.
 *
 * There is no negotiation on the wire. The sender uses the variant it is
 * told (`send`); the receiver either expects one or, with 'auto', tries both
 * on the first frame and keeps the one that authenticates (two AES-GCM
 * attempts once per channel). A side in 'auto' that has not sent yet then
 * answers in the peer's variant, so a server serves [G] and [D] clients alike.
 *
 * Hardening over [G] that stays compatible with it (§17 item 13):
 *   - a frame with our own role prefix is refused (PT_SECURE_REFLECTED): the
 *     key is the same both ways, so [G] decrypts its own frames sent back;
 *   - counters must increase strictly (PT_SECURE_REPLAY): a replayed,
 *     duplicated or reordered frame ends the channel ([G] checks no order);
 *   - a low-order peer key (all-zero shared secret) fails the key swap;
 *   - a frame too short to hold a tag, or over 16 MiB, ends the channel
 *     before any buffering (PT_SECURE_BAD_FRAME); a frame that fails
 *     authentication ends it too (PT_SECURE_AUTH) — nothing is retried;
 *   - our send counter starts at 1 (as [G]; [D] starts at 0, which our
 *     receiver accepts as the first counter) and never wraps.
 * What stays weak, as in the reference: the key swap is not authenticated
 * (an active attacker on the path can sit in the middle), so the channel
 * adds confidentiality against passive observers on top of the tunnel's own
 * encryption, nothing more; and a peer that writes from two threads may
 * put its frames on the wire out of counter order, which we refuse.
 */
import { readU32, writeU32 } from '../../bytes.js'
import { agreeSessionKeys, NONCE_SIZE, TAG_SIZE, TunnelCipher, X25519KeyPair, X25519_KEY_SIZE, readNonceCounter, writeNonceCounter, MAX_NONCE_COUNTER } from '../../crypto/index.js'
import type { KdfVariant } from '../../crypto/index.js'
import { SecureError, SecureErrorCode } from './errors.js'

export const SECURE_PORT = 443
/** The raw key each side sends first. */
export const SECURE_HELLO_SIZE = X25519_KEY_SIZE
/** Bytes of the length field. */
export const SECURE_LENGTH_SIZE = 4
/** Smallest `len` a frame can have and still authenticate: nonce and tag, no plaintext. */
export const SECURE_MIN_FRAME = NONCE_SIZE + TAG_SIZE
/** Largest `len` accepted (docs/wire.md §13.6 item 3). */
export const SECURE_MAX_FRAME = 16 * 1024 * 1024
/** Most plaintext one frame carries when we send (a larger write becomes several frames). */
export const SECURE_MAX_PLAINTEXT = 64 * 1024

export type SecureRole = 'server' | 'client'
export type SecureKdf = KdfVariant
export const SECURE_KDFS: readonly SecureKdf[] = ['legacy', 'hkdf']

/** The role prefixes of §13.6 item 4. */
export const ROLE_PREFIX: Record<SecureRole, number> = { server: 1, client: 2 }

const otherRole = (role: SecureRole): SecureRole => (role === 'server' ? 'client' : 'server')

export interface SecureSessionOptions {
  /** The variant we send in (default 'legacy', the reference's). */
  send?: SecureKdf
  /** The variant we expect, or 'auto' (default): learn it from the first frame and answer in it if we have not sent yet. */
  receive?: SecureKdf | 'auto'
}

/**
 * One side's key swap: `hello` is what to send; `complete(peerHello)` gives
 * the session. The ephemeral private key lives only inside the key pair.
 */
export class SecureHandshake {
  readonly role: SecureRole
  private readonly keys: X25519KeyPair

  constructor(role: SecureRole, keys: X25519KeyPair = X25519KeyPair.generate()) {
    this.role = role
    this.keys = keys
  }

  /** Our 32-byte public key, sent raw. */
  get hello(): Uint8Array {
    return this.keys.publicKey
  }

  /** Derives both keys from the peer's 32 bytes; PT_SECURE_HANDSHAKE for a wrong size or a low-order key. */
  complete(peerHello: Uint8Array, options: SecureSessionOptions = {}): SecureSession {
    if (peerHello.length !== SECURE_HELLO_SIZE) {
      throw new SecureError(SecureErrorCode.HANDSHAKE, `the peer's key is ${peerHello.length} bytes, not ${SECURE_HELLO_SIZE}`)
    }
    let keys: Record<KdfVariant, Buffer>
    try {
      keys = agreeSessionKeys(this.keys, peerHello, 'secure')
    } catch (err) {
      throw new SecureError(SecureErrorCode.HANDSHAKE, `key agreement failed: ${(err as Error).message}`, { cause: err })
    }
    try {
      return new SecureSession(this.role, keys, options)
    } finally {
      keys.legacy.fill(0)
      keys.hkdf.fill(0)
    }
  }
}

/** The frame state of one side of an established channel. */
export class SecureSession {
  readonly role: SecureRole
  private readonly ciphers: Record<KdfVariant, TunnelCipher>
  private sendKdf: SecureKdf
  private receiveKdf: SecureKdf | null
  private readonly follow: boolean
  private sent = 0
  /** Highest counter accepted; -1 before the first frame. */
  private lastReceived = -1
  private readonly ownPrefix: number
  private readonly peerPrefix: number
  private readonly nonce = new Uint8Array(NONCE_SIZE)

  /** `keys` are copied (the caller zeroes its own). */
  constructor(role: SecureRole, keys: Record<KdfVariant, Uint8Array>, options: SecureSessionOptions = {}) {
    this.role = role
    this.ciphers = { legacy: new TunnelCipher(keys.legacy, 'legacy'), hkdf: new TunnelCipher(keys.hkdf, 'hkdf') }
    this.sendKdf = options.send ?? 'legacy'
    const receive = options.receive ?? 'auto'
    this.receiveKdf = receive === 'auto' ? null : receive
    this.follow = receive === 'auto'
    this.ownPrefix = ROLE_PREFIX[role]
    this.peerPrefix = ROLE_PREFIX[otherRole(role)]
  }

  /** The variant we send in now. */
  get kdf(): SecureKdf {
    return this.sendKdf
  }

  /** The variant the peer's frames use; null before its first frame (in 'auto'). */
  get peerKdf(): SecureKdf | null {
    return this.receiveKdf
  }

  /** Counter of the last frame sent (0 before the first). */
  get sentFrames(): number {
    return this.sent
  }

  /** One whole frame (length field included) for `plaintext` (at most 16 MiB − 28 bytes). */
  seal(plaintext: Uint8Array): Buffer {
    if (plaintext.length > SECURE_MAX_FRAME - SECURE_MIN_FRAME) throw new RangeError(`secure frame plaintext of ${plaintext.length} bytes is over the limit`)
    if (this.sent >= MAX_NONCE_COUNTER) throw new SecureError(SecureErrorCode.BAD_NONCE, 'send counter exhausted for this channel', { hint: 'open a new channel' })
    const counter = ++this.sent
    const len = SECURE_MIN_FRAME + plaintext.length
    const out = Buffer.allocUnsafe(SECURE_LENGTH_SIZE + len)
    writeU32(out, 0, len)
    writeU32(out, SECURE_LENGTH_SIZE, this.ownPrefix)
    writeNonceCounter(out, SECURE_LENGTH_SIZE + 4, counter)
    const nonce = out.subarray(SECURE_LENGTH_SIZE, SECURE_LENGTH_SIZE + NONCE_SIZE)
    this.ciphers[this.sendKdf].sealFrame(this.ownPrefix, nonce, plaintext, out, SECURE_LENGTH_SIZE + NONCE_SIZE)
    return out
  }

  /**
   * Checks and decrypts one frame body (what follows the length field:
   * nonce ‖ ciphertext ‖ tag). Throws `SecureError` (REFLECTED, BAD_NONCE,
   * REPLAY, AUTH, BAD_FRAME); nothing changes unless the frame is accepted.
   */
  open(body: Uint8Array): Buffer {
    if (body.length < SECURE_MIN_FRAME || body.length > SECURE_MAX_FRAME) {
      throw new SecureError(SecureErrorCode.BAD_FRAME, `secure frame of ${body.length} bytes (allowed ${SECURE_MIN_FRAME}..${SECURE_MAX_FRAME})`)
    }
    const prefix = readU32(body, 0)
    if (prefix === this.ownPrefix) {
      throw new SecureError(SecureErrorCode.REFLECTED, `a frame with our own role prefix (${this.role}) came back: refused as reflected`)
    }
    if (prefix !== this.peerPrefix) throw new SecureError(SecureErrorCode.BAD_NONCE, `a frame with role prefix ${prefix} (expected ${this.peerPrefix})`)
    const counter = readNonceCounter(body, 0)
    if (counter < 0 || counter <= this.lastReceived) {
      throw new SecureError(SecureErrorCode.REPLAY, `a frame with counter ${counter < 0 ? '≥ 2^53' : counter} after ${this.lastReceived}: replayed or reordered`)
    }
    this.nonce.set(body.subarray(0, NONCE_SIZE))
    const sealed = body.subarray(NONCE_SIZE)
    const out = Buffer.allocUnsafe(sealed.length - TAG_SIZE)
    const tryKdfs: SecureKdf[] = this.receiveKdf === null ? ['legacy', 'hkdf'] : [this.receiveKdf]
    for (const kdf of tryKdfs) {
      if (this.ciphers[kdf].openFrame(this.peerPrefix, this.nonce, sealed, out, 0) < 0) continue
      this.lastReceived = counter
      if (this.receiveKdf === null) {
        this.receiveKdf = kdf
        if (this.follow && this.sent === 0) this.sendKdf = kdf
      }
      return out
    }
    throw new SecureError(SecureErrorCode.AUTH, `a frame (counter ${counter}) failed authentication`, {
      hint: this.receiveKdf === null ? 'tampered with, or not this channel\'s key' : `tampered with, or the peer derives its key with the other KDF than ${this.receiveKdf} (--kdf)`,
    })
  }
}

/**
 * Splits a byte stream into frame bodies (the length field removed). Holds
 * at most one frame's bytes (≤ 16 MiB, and only once a valid length was
 * read); a bad length throws PT_SECURE_BAD_FRAME before anything is kept.
 */
export class SecureFrameDecoder {
  private chunks: Buffer[] = []
  /** Index of the first chunk still holding bytes (chunks before it are spent). */
  private head = 0
  private buffered = 0
  /** `len` of the frame being collected; -1 while the length field is incomplete. */
  private need = -1

  constructor(private readonly maxFrame = SECURE_MAX_FRAME) {}

  /** Bytes held. */
  get pending(): number {
    return this.buffered
  }

  /** Feeds bytes; returns the complete frame bodies in order. */
  push(chunk: Uint8Array): Buffer[] {
    if (chunk.length > 0) {
      this.chunks.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length))
      this.buffered += chunk.length
    }
    const out: Buffer[] = []
    for (;;) {
      if (this.need < 0) {
        if (this.buffered < SECURE_LENGTH_SIZE) break
        const len = readU32(this.take(SECURE_LENGTH_SIZE), 0)
        if (len < SECURE_MIN_FRAME || len > this.maxFrame) {
          this.chunks = []
          this.head = 0
          this.buffered = 0
          throw new SecureError(SecureErrorCode.BAD_FRAME, `secure frame length ${len} (allowed ${SECURE_MIN_FRAME}..${this.maxFrame})`)
        }
        this.need = len
      }
      if (this.buffered < this.need) break
      out.push(this.take(this.need))
      this.need = -1
    }
    if (this.head > 64 && this.head * 2 > this.chunks.length) {
      this.chunks = this.chunks.slice(this.head)
      this.head = 0
    }
    return out
  }

  private take(n: number): Buffer {
    const first = this.chunks[this.head]!
    let result: Buffer
    if (first.length >= n) {
      result = first.subarray(0, n)
      if (first.length === n) this.head++
      else this.chunks[this.head] = first.subarray(n)
    } else {
      result = Buffer.allocUnsafe(n)
      let filled = 0
      while (filled < n) {
        const c = this.chunks[this.head]!
        const k = Math.min(c.length, n - filled)
        c.copy(result, filled, 0, k)
        filled += k
        if (k === c.length) this.head++
        else this.chunks[this.head] = c.subarray(k)
      }
    }
    this.buffered -= n
    if (this.buffered === 0) {
      this.chunks = []
      this.head = 0
    }
    return result
  }
}
