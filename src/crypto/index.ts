/** Public API of crypto/ (sans-IO; the identity file's I/O is daemon/identity-file.ts): identities, key agreement, AEAD, nonces, replay windows, PILA signatures. */
export { CryptoErrorCode } from './error-codes.js'
export {
  Identity,
  ED25519_PUBLIC_KEY_SIZE,
  ED25519_SEED_SIZE,
  ED25519_SIGNATURE_SIZE,
  decodeStdBase64,
  ed25519PublicKeyObject,
  formatIdentityFile,
  malformedIdentityFile,
  MAX_IDENTITY_FILE_SIZE,
  parseIdentityFile,
  verifyChallenge,
  verifyEd25519,
} from './identity.js'
export {
  X25519KeyPair,
  KDF_VARIANTS,
  SESSION_KEY_SIZE,
  X25519_KEY_SIZE,
  agreeSessionKey,
  agreeSessionKeys,
  deriveSessionKey,
  type KdfVariant,
  type KeyPurpose,
} from './key-agreement.js'
export {
  TunnelCipher,
  NonceSequence,
  MAX_NONCE_COUNTER,
  NONCE_PREFIX_SIZE,
  NONCE_SIZE,
  REKEY_NONCE_COUNTER,
  TAG_SIZE,
  aadFor,
  readNonceCounter,
  readNoncePrefix,
  writeNonceCounter,
} from './aead.js'
export { ReplayWindow, ReplayWindows, REPLAY_WINDOW_SIZE } from './replay-window.js'
export { PILA_SIGNED_MESSAGE_SIZE, pilaSignedMessage, signPila, verifyPila } from './pila.js'
