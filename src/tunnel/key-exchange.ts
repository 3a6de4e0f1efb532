/**
 * Key exchange (docs/wire.md §5.7, hardened per §17): our X25519 key pair and
 * the PILA that carries it, checking a peer's PILA against the registry's
 * Ed25519 key, and deriving a peer's session when its X25519 key is new or
 * changed (or ours is, after a rotation).
 *
 *  - every PILA is checked against the registry's key (not only the first);
 *    a PILA whose sender's key is not cached yet is parked (the latest one per
 *    node) while the key is fetched, then checked once more;
 *  - replay state and the send sequence restart only with new key material;
 *    one send counter per peer key, and a sequence re-created under the same
 *    key pair starts above every counter retired under it (§17 item 5).
 *
 * Owns the key pair, the PILA bytes, the registry key cache and the parked
 * PILAs; writes only the key fields of a `Peer`. Sends nothing itself: a
 * verified PILA goes to `KeyExchangePort.acceptPila`, where the tunnel adopts
 * it (`adoptPeerKey`), moves the path and answers.
 */
import {
  NonceSequence,
  X25519KeyPair,
  agreeSessionKeys,
  signPila,
  verifyPila,
  TunnelCipher,
  type Identity,
  type KdfVariant,
} from '../crypto/index.js'
import { readU32 } from '../bytes.js'
import { PILA_SIZE, writePila } from '../protocol/tunnel-frames.js'
import type { RandomSource } from '../random.js'
import type { Logger } from '../logger.js'
import type { PeerDirectory } from './peer-directory.js'
import type { Peer } from './peer.js'
import { RegistryKeyCache } from './registry-keys.js'
import { PILA_CAPABILITY_HKDF, type KdfChooser } from './kdf.js'
import type { TunnelScheduler, TunnelTiming } from './timing.js'
import type { DropCounters } from './stats.js'

/** A PILA waiting for its sender's registry key; `frame` is a copy. */
interface ParkedPila {
  frame: Buffer
  host: string
  port: number
  relayed: boolean
}

/** What the key exchange needs from the tunnel. */
export interface KeyExchangePort {
  /** A PILA verified against the registry key, now or after the key lookup: adopt it (§5.7 steps 5–8). */
  acceptPila(sender: number, frame: Buffer, host: string, port: number, relayed: boolean, now: number): void
}

export interface KeyExchangeOptions {
  nodeId: number
  identity: Identity
  kdf: KdfChooser
  random: RandomSource
  directory: PeerDirectory
  clock: Pick<TunnelScheduler, 'now'>
  logger: Logger
  timing: Pick<TunnelTiming, 'keyRefetchMs' | 'negativeKeyCacheMs'>
  drops: DropCounters
  port: KeyExchangePort
}

export class KeyExchange {
  private readonly keys: RegistryKeyCache
  private readonly parked = new Map<number, ParkedPila>()
  private x25519: X25519KeyPair
  /** Our key frame (136 bytes, +1 capability byte unless legacy mode); never modified, copied per send. */
  private pila: Buffer
  private closed = false
  /**
   * Highest send counter retired under our current key pair. New sequences start above it, so
   * a session re-created with the same keys (after forget(), or a peer key flipping back) never
   * repeats a nonce even if the random prefixes collide (§17 item 5).
   */
  private counterFloor = 0
  private readonly onKeyFetchedBound = (nodeId: number): void => this.onKeyFetched(nodeId)

  constructor(private readonly opts: KeyExchangeOptions) {
    this.keys = new RegistryKeyCache(opts.directory, () => opts.clock.now(), opts.logger)
    this.x25519 = X25519KeyPair.generate()
    this.pila = this.buildPila()
  }

  /** Our current X25519 public key. */
  get publicKey(): Uint8Array {
    return this.x25519.publicKey
  }

  /** A fresh copy of our PILA, to hand over to the bind. */
  copyPila(): Buffer {
    return Buffer.from(this.pila)
  }

  /** Starts the registry lookup of a node's key unless it is cached or on its way. */
  prefetchKey(nodeId: number): void {
    if (this.keys.get(nodeId) === undefined) this.keys.fetch(nodeId, null)
  }

  /**
   * A received PILA (docs/wire.md §5.7): its sender checked, then its Ed25519 key against the
   * registry's, then its signature; `port.acceptPila` when it verifies. A PILA whose sender's
   * key is not cached (or cached as none long enough, or different long enough: the registry
   * may have a newer one) is parked while the key is fetched, then checked once more.
   */
  receivePila(frame: Buffer, host: string, port: number, relayed: boolean, relaySender: number): void {
    this.check(frame, host, port, relayed, relaySender, false)
  }

  /** The verified PILA carries an X25519 key other than the one we hold for the peer (or the first). */
  peerKeyChanged(peer: Peer, frame: Buffer): boolean {
    return peer.peerX25519 === null || !bytesEqual(peer.peerX25519, frame, 8)
  }

  /**
   * A new or changed peer key from a verified PILA: new ciphers, a fresh send sequence and
   * replay state, the KDF chosen again, and "our key not sent yet" (the peer, new or
   * restarted, has no session with us). False = a key of low order, refused and counted.
   */
  adoptPeerKey(peer: Peer, frame: Buffer): boolean {
    const hadKey = peer.peerX25519 !== null
    const x = frame.subarray(8, 40)
    if (!this.installCiphers(peer, x)) return false
    peer.peerX25519 = Uint8Array.from(x)
    // New peer key: new key material, so a fresh sequence and fresh replay state are safe.
    this.retireSequence(peer)
    peer.sendSeq = new NonceSequence(this.opts.random, this.counterFloor)
    peer.replay.reset()
    peer.prevLegacy = null
    peer.prevHkdf = null
    peer.gotPils = false
    peer.keySentMs = 0
    peer.peerAdvertisesHkdf = frame.length > PILA_SIZE
    this.opts.kdf.choose(peer)
    if (hadKey) this.opts.logger.info('tunnel peer key changed', { node: peer.nodeId })
    return true
  }

  /** Replaces our key pair (and PILA). Each peer with a key then needs `rekeyPeer`. */
  rotate(): void {
    this.x25519 = X25519KeyPair.generate()
    this.pila = this.buildPila()
    this.counterFloor = 0 // new key pair: new AES keys with every peer
  }

  /**
   * After `rotate()`: the peer's ciphers under our new key (the old ones kept for frames still
   * in flight), a new sequence, and its key no longer current until it answers our new PILA.
   * False = nothing changed (the peer has no key, or it is refused).
   */
  rekeyPeer(peer: Peer): boolean {
    if (peer.peerX25519 === null) return false
    peer.prevLegacy = peer.legacy
    peer.prevHkdf = peer.hkdf
    if (!this.installCiphers(peer, peer.peerX25519)) return false
    peer.sendSeq = new NonceSequence(this.opts.random, 0)
    peer.peerKeyCurrent = false
    peer.keySentMs = 0
    return true
  }

  /** The peer's sequence ends (forgotten, or its key changed): later ones start above it. */
  retireSequence(peer: Peer): void {
    if (peer.sendSeq !== null && peer.sendSeq.lastCounter > this.counterFloor) this.counterFloor = peer.sendSeq.lastCounter
  }

  /** Trust revoked: drop the node's parked PILA and cached registry key. */
  forget(nodeId: number): void {
    this.parked.delete(nodeId)
    this.keys.delete(nodeId)
  }

  /** The tunnel closed: nothing parked comes back. */
  close(): void {
    this.closed = true
    this.parked.clear()
    this.keys.clear()
  }

  private check(frame: Buffer, host: string, port: number, relayed: boolean, relaySender: number, afterFetch: boolean): void {
    if (frame.length < PILA_SIZE) {
      this.opts.drops.short++
      return
    }
    const sender = readU32(frame, 4)
    if (sender === this.opts.nodeId || sender === 0) {
      this.opts.drops.self++
      return
    }
    if (relayed && sender !== relaySender) {
      this.opts.drops['relay-sender-mismatch']++
      return
    }
    const now = this.opts.clock.now()
    const entry = this.keys.get(sender)
    if (entry === undefined || entry.fetching) {
      this.parkAndFetch(sender, frame, host, port, relayed)
      return
    }
    if (entry.key === null) {
      if (!afterFetch && now - entry.fetchedMs >= this.opts.timing.negativeKeyCacheMs) this.parkAndFetch(sender, frame, host, port, relayed)
      else this.opts.drops['pila-unknown-key']++
      return
    }
    if (!bytesEqual(entry.key, frame, 40)) {
      // The registry may have a newer key (rotate_key): re-fetch once, then refuse.
      if (!afterFetch && now - entry.fetchedMs >= this.opts.timing.keyRefetchMs) this.parkAndFetch(sender, frame, host, port, relayed)
      else this.opts.drops['pila-key-mismatch']++
      return
    }
    if (!verifyPila(entry.keyObject!, sender, frame.subarray(8, 40), frame.subarray(72, PILA_SIZE))) {
      this.opts.drops['pila-bad-signature']++
      return
    }
    this.opts.port.acceptPila(sender, frame, host, port, relayed, now)
  }

  private parkAndFetch(sender: number, frame: Buffer, host: string, port: number, relayed: boolean): void {
    // One parked PILA per node (the latest); copied because `frame` may be decrypted over later.
    if (!this.keys.fetch(sender, this.onKeyFetchedBound)) {
      this.opts.drops['lookup-busy']++
      return
    }
    this.parked.set(sender, { frame: Buffer.from(frame), host, port, relayed })
  }

  private onKeyFetched(nodeId: number): void {
    const p = this.parked.get(nodeId)
    if (p === undefined || this.closed) return
    this.parked.delete(nodeId)
    try {
      this.check(p.frame, p.host, p.port, p.relayed, nodeId, true)
    } catch (err) {
      this.opts.drops['internal-error']++
      this.opts.logger.error('tunnel key frame handling failed', { error: String(err) })
    }
  }

  private installCiphers(peer: Peer, peerX25519: Uint8Array): boolean {
    let keys: Record<KdfVariant, Buffer>
    try {
      keys = agreeSessionKeys(this.x25519, peerX25519)
    } catch {
      this.opts.drops['pila-bad-key']++
      return false
    }
    try {
      peer.legacy = new TunnelCipher(keys.legacy, 'legacy')
      peer.hkdf = new TunnelCipher(keys.hkdf, 'hkdf')
    } finally {
      keys.legacy.fill(0)
      keys.hkdf.fill(0)
    }
    return true
  }

  private buildPila(): Buffer {
    const withCapability = this.opts.kdf.advertisesHkdf
    const out = Buffer.alloc(PILA_SIZE + (withCapability ? 1 : 0))
    writePila(out, 0, {
      senderId: this.opts.nodeId,
      x25519Public: this.x25519.publicKey,
      ed25519Public: this.opts.identity.publicKey,
      signature: signPila(this.opts.identity, this.opts.nodeId, this.x25519.publicKey),
    })
    if (withCapability) out[PILA_SIZE] = PILA_CAPABILITY_HKDF
    return out
  }
}

/** Compares `a` with `b[offset .. offset + a.length)`. */
function bytesEqual(a: Uint8Array, b: Uint8Array, offset: number): boolean {
  if (b.length < offset + a.length) return false
  for (let i = 0; i < a.length; i++) if (a[i] !== b[offset + i]) return false
  return true
}
