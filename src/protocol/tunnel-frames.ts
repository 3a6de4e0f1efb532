/**
 * Tunnel frames on the daemon's UDP socket (docs/wire.md §5): demultiplexing and the
 * layouts of PILT, PILS, PILK, PILA and PILP. Only bytes: sealing, opening and
 * signature checks belong to crypto/, and the inner packet is decoded with
 * header.ts.
 *
 *   PILT  "PILT" || packet                                         >= 38 bytes
 *   PILS  "PILS" || sender u32 || nonce 12 || ciphertext || tag 16  >= 36 bytes
 *   PILK  "PILK" || sender u32 || X25519 public 32                    40 bytes
 *   PILA  "PILA" || sender u32 || X25519 32 || Ed25519 32 || sig 64  136 bytes
 *   PILP  "PILP" [|| sender u32]                                    4 or 8 bytes
 *
 * Decoders return views into the datagram, never copies, so they are cheap on
 * the receive path; keep the datagram alive (and unmodified) while you use them.
 * PILK and PILA tolerate trailing bytes: later Go daemons append capability data
 * to PILA, and the Go receiver checks minimum lengths only.
 */
import { DecodeError } from '../errors.js'
import { readU32, writeU32 } from '../bytes.js'
import { HEADER_SIZE } from './header.js'

export const MAGIC_SIZE = 4
/** Magics as big-endian u32s: compare with `readU32(buf, 0)`. */
export const Magic = {
  PILT: 0x50494c54,
  PILS: 0x50494c53,
  PILK: 0x50494c4b,
  PILA: 0x50494c41,
  PILP: 0x50494c50,
} as const
export type Magic = (typeof Magic)[keyof typeof Magic]

/** Beacon message types are all below this value; every magic starts with 0x50. */
export const BEACON_TYPE_LIMIT = 0x10

/** What a received UDP datagram is (§5.1). The `Drop*` kinds say why it is ignored. */
export const DatagramKind = {
  DROP_EMPTY: 0,
  DROP_SHORT: 1,
  DROP_UNKNOWN_MAGIC: 2,
  BEACON: 3,
  PILT: 4,
  PILS: 5,
  PILK: 6,
  PILA: 7,
  PILP: 8,
} as const
export type DatagramKind = (typeof DatagramKind)[keyof typeof DatagramKind]

const KIND_NAMES = ['drop-empty', 'drop-short', 'drop-unknown-magic', 'beacon', 'PILT', 'PILS', 'PILK', 'PILA', 'PILP'] as const
export function datagramKindName(kind: DatagramKind): (typeof KIND_NAMES)[number] {
  return KIND_NAMES[kind]
}

/** §5.1, in order: empty, beacon (first byte < 0x10), shorter than a magic, then the magic. */
export function classifyDatagram(buf: Uint8Array): DatagramKind {
  if (buf.length === 0) return DatagramKind.DROP_EMPTY
  if (buf[0]! < BEACON_TYPE_LIMIT) return DatagramKind.BEACON
  if (buf.length < MAGIC_SIZE) return DatagramKind.DROP_SHORT
  switch (readU32(buf, 0)) {
    case Magic.PILT:
      return DatagramKind.PILT
    case Magic.PILS:
      return DatagramKind.PILS
    case Magic.PILK:
      return DatagramKind.PILK
    case Magic.PILA:
      return DatagramKind.PILA
    case Magic.PILP:
      return DatagramKind.PILP
    default:
      return DatagramKind.DROP_UNKNOWN_MAGIC
  }
}

export function writeMagic(out: Uint8Array, offset: number, magic: Magic): number {
  room(out, offset, MAGIC_SIZE, 'a magic')
  writeU32(out, offset, magic)
  return MAGIC_SIZE
}

// ---------------------------------------------------------------- PILT (§5.2)

/** Offset of the packet inside a PILT frame. */
export const PILT_PACKET_OFFSET = MAGIC_SIZE
export const PILT_MIN_SIZE = MAGIC_SIZE + HEADER_SIZE

/**
 * Checks magic and minimum length and returns the offset of the inner packet;
 * decode it with `decodePacket(buf, offset, header)`.
 */
export function decodePilt(buf: Uint8Array): number {
  expectMagic(buf, Magic.PILT, PILT_MIN_SIZE, 'PILT')
  return PILT_PACKET_OFFSET
}

/** Allocates `"PILT" || packet`. The send path instead writes the magic into headroom with `writeMagic`. */
export function encodePilt(packet: Uint8Array): Buffer {
  if (packet.length < HEADER_SIZE) throw new DecodeError('short-buffer', `a packet has at least ${HEADER_SIZE} bytes, got ${packet.length}`)
  const out = Buffer.allocUnsafe(MAGIC_SIZE + packet.length)
  writeU32(out, 0, Magic.PILT)
  out.set(packet, MAGIC_SIZE)
  return out
}

// ---------------------------------------------------------------- PILS (§5.3)

export const PILS_SENDER_OFFSET = 4
export const PILS_NONCE_OFFSET = 8
export const PILS_NONCE_SIZE = 12
/** Magic + sender + nonce; the ciphertext starts here. */
export const PILS_HEADER_SIZE = 20
export const PILS_TAG_SIZE = 16
/** Header + tag around an empty ciphertext (Go: 32 bytes after the magic). */
export const PILS_MIN_SIZE = PILS_HEADER_SIZE + PILS_TAG_SIZE
/** PILS overhead on top of a packet: header + tag. */
export const PILS_OVERHEAD = PILS_MIN_SIZE

/** Writes `"PILS" || senderId || nonce` at `offset`; returns the bytes written (20). */
export function writePilsHeader(out: Uint8Array, offset: number, senderId: number, nonce: Uint8Array): number {
  checkU32(senderId, 'sender node ID')
  if (nonce.length !== PILS_NONCE_SIZE) throw new DecodeError('bad-length', `PILS nonce must be ${PILS_NONCE_SIZE} bytes, got ${nonce.length}`)
  room(out, offset, PILS_HEADER_SIZE, 'a PILS header')
  writeU32(out, offset, Magic.PILS)
  writeU32(out, offset + PILS_SENDER_OFFSET, senderId)
  out.set(nonce, offset + PILS_NONCE_OFFSET)
  return PILS_HEADER_SIZE
}

export interface PilsFrame {
  senderId: number
  /** 12-byte view: prefix(4) || counter u64 BE. */
  nonce: Uint8Array
  /** View of ciphertext || tag (at least 16 bytes), ready for AEAD open. */
  sealed: Uint8Array
}

export function decodePils(buf: Uint8Array): PilsFrame {
  expectMagic(buf, Magic.PILS, PILS_MIN_SIZE, 'PILS')
  return {
    senderId: readU32(buf, PILS_SENDER_OFFSET),
    nonce: buf.subarray(PILS_NONCE_OFFSET, PILS_HEADER_SIZE),
    sealed: buf.subarray(PILS_HEADER_SIZE),
  }
}

/** Allocates a complete PILS frame from its parts. For tests and the control plane. */
export function encodePils(senderId: number, nonce: Uint8Array, sealed: Uint8Array): Buffer {
  if (sealed.length < PILS_TAG_SIZE) throw new DecodeError('short-buffer', `sealed data holds at least the ${PILS_TAG_SIZE}-byte tag, got ${sealed.length}`)
  const out = Buffer.allocUnsafe(PILS_HEADER_SIZE + sealed.length)
  writePilsHeader(out, 0, senderId, nonce)
  out.set(sealed, PILS_HEADER_SIZE)
  return out
}

// ---------------------------------------------------------------- PILK (§5.7)

// Key sizes as laid out in the frames; crypto/ owns the keys themselves.
const X25519_KEY_SIZE = 32
const ED25519_KEY_SIZE = 32
const ED25519_SIGNATURE_SIZE = 64

export const PILK_SIZE = 40
export const PILK_X25519_OFFSET = 8

export interface PilkFrame {
  senderId: number
  /** 32-byte view. */
  x25519Public: Uint8Array
}

export function writePilk(out: Uint8Array, offset: number, f: PilkFrame): number {
  checkU32(f.senderId, 'sender node ID')
  checkSize(f.x25519Public, X25519_KEY_SIZE, 'X25519 public key')
  room(out, offset, PILK_SIZE, 'a PILK frame')
  writeU32(out, offset, Magic.PILK)
  writeU32(out, offset + 4, f.senderId)
  out.set(f.x25519Public, offset + PILK_X25519_OFFSET)
  return PILK_SIZE
}

export function encodePilk(f: PilkFrame): Buffer {
  const out = Buffer.allocUnsafe(PILK_SIZE)
  writePilk(out, 0, f)
  return out
}

export function decodePilk(buf: Uint8Array): PilkFrame {
  expectMagic(buf, Magic.PILK, PILK_SIZE, 'PILK')
  return { senderId: readU32(buf, 4), x25519Public: buf.subarray(PILK_X25519_OFFSET, PILK_SIZE) }
}

// ---------------------------------------------------------------- PILA (§5.7)

export const PILA_SIZE = 136
export const PILA_X25519_OFFSET = 8
export const PILA_ED25519_OFFSET = 40
export const PILA_SIGNATURE_OFFSET = 72

export interface PilaFrame {
  senderId: number
  /** 32-byte view. */
  x25519Public: Uint8Array
  /** 32-byte view. */
  ed25519Public: Uint8Array
  /** 64-byte view. */
  signature: Uint8Array
}

export function writePila(out: Uint8Array, offset: number, f: PilaFrame): number {
  checkU32(f.senderId, 'sender node ID')
  checkSize(f.x25519Public, X25519_KEY_SIZE, 'X25519 public key')
  checkSize(f.ed25519Public, ED25519_KEY_SIZE, 'Ed25519 public key')
  checkSize(f.signature, ED25519_SIGNATURE_SIZE, 'Ed25519 signature')
  room(out, offset, PILA_SIZE, 'a PILA frame')
  writeU32(out, offset, Magic.PILA)
  writeU32(out, offset + 4, f.senderId)
  out.set(f.x25519Public, offset + PILA_X25519_OFFSET)
  out.set(f.ed25519Public, offset + PILA_ED25519_OFFSET)
  out.set(f.signature, offset + PILA_SIGNATURE_OFFSET)
  return PILA_SIZE
}

export function encodePila(f: PilaFrame): Buffer {
  const out = Buffer.allocUnsafe(PILA_SIZE)
  writePila(out, 0, f)
  return out
}

/** Reads the first 136 bytes; anything after them is ignored (§5.7). */
export function decodePila(buf: Uint8Array): PilaFrame {
  expectMagic(buf, Magic.PILA, PILA_SIZE, 'PILA')
  return {
    senderId: readU32(buf, 4),
    x25519Public: buf.subarray(PILA_X25519_OFFSET, PILA_ED25519_OFFSET),
    ed25519Public: buf.subarray(PILA_ED25519_OFFSET, PILA_SIGNATURE_OFFSET),
    signature: buf.subarray(PILA_SIGNATURE_OFFSET, PILA_SIZE),
  }
}

// ---------------------------------------------------------------- PILP (§5.8)

export const PILP_SIZE = 4
export const PILP_WITH_SENDER_SIZE = 8

export interface PilpFrame {
  /** Present only in the draft's 8-byte form; Go sends 4 bytes. */
  senderId: number | null
}

/** The 4-byte form Go sends; pass a sender ID for the draft's 8-byte form. */
export function encodePilp(senderId: number | null = null): Buffer {
  if (senderId === null) {
    const out = Buffer.allocUnsafe(PILP_SIZE)
    writeU32(out, 0, Magic.PILP)
    return out
  }
  checkU32(senderId, 'sender node ID')
  const out = Buffer.allocUnsafe(PILP_WITH_SENDER_SIZE)
  writeU32(out, 0, Magic.PILP)
  writeU32(out, 4, senderId)
  return out
}

/** Accepts exactly 4 or 8 bytes. */
export function decodePilp(buf: Uint8Array): PilpFrame {
  expectMagic(buf, Magic.PILP, PILP_SIZE, 'PILP')
  if (buf.length === PILP_SIZE) return { senderId: null }
  if (buf.length === PILP_WITH_SENDER_SIZE) return { senderId: readU32(buf, 4) }
  throw new DecodeError('bad-length', `PILP is 4 or 8 bytes, got ${buf.length}`)
}

// ---------------------------------------------------------------- helpers

function expectMagic(buf: Uint8Array, magic: Magic, minSize: number, name: string): void {
  if (buf.length < MAGIC_SIZE) throw new DecodeError('short-buffer', `${name} needs at least ${minSize} bytes, got ${buf.length}`)
  if (readU32(buf, 0) !== magic) throw new DecodeError('bad-magic', `not a ${name} frame (magic ${hexMagic(buf)})`)
  if (buf.length < minSize) throw new DecodeError('short-buffer', `${name} needs at least ${minSize} bytes, got ${buf.length}`)
}

function hexMagic(buf: Uint8Array): string {
  return readU32(buf, 0).toString(16).padStart(8, '0')
}

function room(out: Uint8Array, offset: number, size: number, what: string): void {
  if (!Number.isInteger(offset) || offset < 0 || out.length - offset < size) {
    throw new DecodeError('short-buffer', `need ${size} bytes for ${what} at offset ${offset}, have ${Math.max(0, out.length - offset)}`)
  }
}

function checkSize(b: Uint8Array, size: number, what: string): void {
  if (!(b instanceof Uint8Array) || b.length !== size) {
    throw new DecodeError('bad-length', `${what} must be ${size} bytes, got ${b instanceof Uint8Array ? b.length : typeof b}`)
  }
}

function checkU32(v: number, what: string): void {
  if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new DecodeError('bad-value', `${what} ${v} is not a u32`)
}
