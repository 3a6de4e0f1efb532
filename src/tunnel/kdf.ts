/**
 * KDF choice per peer (docs/wire.md §5.4, §20 item 5): which of the two key
 * derivations (`legacy`, `hkdf`) we seal with, and how that is learned.
 *
 * Both variants' keys are derived for every peer. `kdf: 'legacy' | 'hkdf'`
 * forces one. In `auto` we trial-decrypt an incoming PILS with the variant we
 * expect and then the other, and remember the one that worked; until something
 * is learned we send **legacy** (the deployed Go snapshot only speaks legacy)
 * unless the peer's PILA carried trailing capability bytes — newer daemons
 * append them and speak HKDF, and the snapshot ignores trailing bytes — in
 * which case we start with HKDF. In `auto` and `hkdf` mode our own PILA carries
 * one capability byte, 0x01 ("hkdf"), so two pilot-tun nodes settle on HKDF
 * from their first frame. Caveat: later Go code describes the trailing data as
 * a varint whose meaning we have not seen; we only read "trailing bytes present".
 *
 * The chooser keeps no per-peer data of its own: what it learns lives in the
 * peer's `kdf`/`kdfConfirmed` fields, read on every sealed frame.
 */
import type { TunnelCipher } from '../crypto/index.js'
import { PILS_HEADER_SIZE } from '../protocol/tunnel-frames.js'
import type { Logger } from '../logger.js'
import type { Peer } from './peer.js'

export type KdfMode = 'auto' | 'hkdf' | 'legacy'

/** Capability byte we append to our PILA in `auto`/`hkdf` mode (bit 0 = "speaks HKDF"). */
export const PILA_CAPABILITY_HKDF = 0x01

/** A PILS's plaintext is opened in place at its ciphertext's offset, right after the header. */
export const DATA_OFFSET = PILS_HEADER_SIZE

/** The per-peer fields the chooser reads and writes (a `Peer` has them all). */
export type KdfPeerState = Pick<Peer, 'kdf' | 'kdfConfirmed' | 'peerAdvertisesHkdf' | 'legacy' | 'hkdf' | 'prevLegacy' | 'prevHkdf'>

export class KdfChooser {
  constructor(
    readonly mode: KdfMode,
    private readonly logger: Logger,
  ) {}

  /** Our PILA carries the HKDF capability byte unless we only speak legacy. */
  get advertisesHkdf(): boolean {
    return this.mode !== 'legacy'
  }

  /** The variant to start with for a new peer, or for a peer whose key changed. */
  choose(peer: KdfPeerState): void {
    if (this.mode === 'auto') {
      peer.kdf = peer.peerAdvertisesHkdf ? 'hkdf' : 'legacy'
      peer.kdfConfirmed = false
    } else {
      peer.kdf = this.mode
      peer.kdfConfirmed = true
    }
  }

  /**
   * AEAD open of a PILS in place at DATA_OFFSET: the expected variant, then (auto, unconfirmed)
   * the other, learning it when it works, then the keys from before our last rotation.
   * Returns the plaintext length, or -1. The peer's ciphers must exist.
   */
  open(peer: KdfPeerState, sender: number, frame: Buffer): number {
    const nonce = frame.subarray(8, DATA_OFFSET)
    const sealed = frame.subarray(DATA_OFFSET)
    const expectHkdf = peer.kdf === 'hkdf'
    let n = (expectHkdf ? peer.hkdf! : peer.legacy!).openFrame(sender, nonce, sealed, frame, DATA_OFFSET)
    if (n >= 0) {
      peer.kdfConfirmed = true
      if (peer.prevLegacy !== null) {
        // The peer uses our rotated key now: stop trying the old one.
        peer.prevLegacy = null
        peer.prevHkdf = null
      }
      return n
    }
    if (this.mode === 'auto' && !peer.kdfConfirmed) {
      n = (expectHkdf ? peer.legacy! : peer.hkdf!).openFrame(sender, nonce, sealed, frame, DATA_OFFSET)
      if (n >= 0) {
        peer.kdf = expectHkdf ? 'legacy' : 'hkdf'
        peer.kdfConfirmed = true
        this.logger.debug('tunnel peer speaks another KDF', { node: sender, kdf: peer.kdf })
        return n
      }
    }
    const prev = expectHkdf ? peer.prevHkdf : peer.prevLegacy
    if (prev !== null) return prev.openFrame(sender, nonce, sealed, frame, DATA_OFFSET)
    return -1
  }
}

/** The cipher we seal with for this peer (its ciphers must exist). */
export function sealingCipher(peer: KdfPeerState): TunnelCipher {
  return peer.kdf === 'hkdf' ? peer.hkdf! : peer.legacy!
}
