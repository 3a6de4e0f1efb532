/**
 * The `code` of every `CryptoError` crypto/ throws. Stable API: `--json`
 * prints them and callers compare against these constants, not literals.
 */
export const CryptoErrorCode = {
  /** A key of the wrong length or form was supplied by our own code or config. */
  BAD_KEY: 'PT_CRYPTO_BAD_KEY',
  /** A peer's X25519 key has the wrong length. */
  BAD_PEER_KEY: 'PT_CRYPTO_BAD_PEER_KEY',
  /** A peer's X25519 key is of low order (all-zero shared secret). */
  WEAK_PEER_KEY: 'PT_CRYPTO_WEAK_PEER_KEY',
  /** An argument outside its range (e.g. a node ID that is not a u32). */
  BAD_INPUT: 'PT_CRYPTO_BAD_INPUT',
  /** The send counter reached its limit: re-key. */
  NONCE_EXHAUSTED: 'PT_CRYPTO_NONCE_EXHAUSTED',
  /** The identity file can be read by group or others. */
  KEY_FILE_MODE: 'PT_CRYPTO_KEY_FILE_MODE',
  /** The identity file is not valid JSON of the expected shape. */
  KEY_FILE_MALFORMED: 'PT_CRYPTO_KEY_FILE_MALFORMED',
  /** There is no identity file at the path. */
  KEY_FILE_MISSING: 'PT_CRYPTO_KEY_FILE_MISSING',
  /** The identity file exists but cannot be opened. */
  KEY_FILE_UNREADABLE: 'PT_CRYPTO_KEY_FILE_UNREADABLE',
  /** The identity file's public key is not the one its seed derives. */
  KEY_MISMATCH: 'PT_CRYPTO_KEY_MISMATCH',
} as const

export type CryptoErrorCode = (typeof CryptoErrorCode)[keyof typeof CryptoErrorCode]
