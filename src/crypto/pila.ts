/**
 * The signature inside a PILA frame (docs/wire.md §5.7). The signed message is 40
 * bytes: ASCII "auth" (no colon, whatever a Go comment says) ‖ sender node ID
 * (u32 BE) ‖ sender X25519 public key. Frame layout itself is protocol/'s job.
 */
import type { KeyObject } from 'node:crypto'
import { CryptoError } from '../errors.js'
import { CryptoErrorCode } from './error-codes.js'
import { writeU32 } from '../bytes.js'
import { ED25519_PUBLIC_KEY_SIZE, ED25519_SIGNATURE_SIZE, verifyEd25519, type Identity } from './identity.js'
import { X25519_KEY_SIZE } from './key-agreement.js'

export const PILA_SIGNED_MESSAGE_SIZE = 40
const AUTH_LABEL = [0x61, 0x75, 0x74, 0x68] // "auth"

function isNodeId(n: number): boolean {
  return Number.isInteger(n) && n >= 0 && n <= 0xffff_ffff
}

/** The 40 signed bytes. Throws `CryptoError` for a bad node ID or key length. */
export function pilaSignedMessage(nodeId: number, x25519PublicKey: Uint8Array): Uint8Array {
  if (!isNodeId(nodeId)) throw new CryptoError(CryptoErrorCode.BAD_INPUT, `node ID must be a u32, got ${nodeId}`)
  if (x25519PublicKey.length !== X25519_KEY_SIZE) {
    throw new CryptoError(CryptoErrorCode.BAD_KEY, `X25519 public key must be 32 bytes, got ${x25519PublicKey.length}`)
  }
  const message = new Uint8Array(PILA_SIGNED_MESSAGE_SIZE)
  message.set(AUTH_LABEL, 0)
  writeU32(message, 4, nodeId)
  message.set(x25519PublicKey, 8)
  return message
}

/** The 64-byte Ed25519 signature a PILA frame carries. */
export function signPila(identity: Identity, nodeId: number, x25519PublicKey: Uint8Array): Uint8Array {
  return identity.sign(pilaSignedMessage(nodeId, x25519PublicKey))
}

/**
 * Checks a PILA signature. Never throws: wrong lengths, a bad node ID or an
 * invalid key all answer false. Pass a KeyObject to skip re-importing a
 * cached registry key.
 */
export function verifyPila(
  ed25519PublicKey: Uint8Array | KeyObject,
  nodeId: number,
  x25519PublicKey: Uint8Array,
  signature: Uint8Array,
): boolean {
  if (!isNodeId(nodeId) || x25519PublicKey.length !== X25519_KEY_SIZE) return false
  if (signature.length !== ED25519_SIGNATURE_SIZE) return false
  if (ed25519PublicKey instanceof Uint8Array && ed25519PublicKey.length !== ED25519_PUBLIC_KEY_SIZE) return false
  return verifyEd25519(ed25519PublicKey, pilaSignedMessage(nodeId, x25519PublicKey), signature)
}
