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
 *    key pair starts above every counter retired under it (§17 item 5);
 *  - a peer's previous X25519 keys are retired: a PILA carrying one (a capture
 *    replayed after the peer restarted) is refused, since taking it back would
 *    reset the replay windows and let the old PILS open again;
 *  - registry lookups caused by strangers' PILAs are limited per source IP
 *    (token bucket) and in number in flight (registry-keys.ts).
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
import { RegistryKeyCache, type LookupCause } from './registry-keys.js'
import { PILA_CAPABILITY_HKDF, type KdfChooser } from './kdf.js'
import type { TunnelScheduler, TunnelTiming } from './timing.js'
import type { TunnelLimits } from './limits.js'
import type { DropCounters } from './stats.js'
import { KeyedTokenBuckets } from './token-bucket.js'

/** The one lookup-limit source for every relayed PILA (they all come from the beacon). */
const RELAYED_SOURCE = 'relay'

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
  /** The registry has no key for the node (or could not be asked): no session can be made with it now. */
  keyUnknown(nodeId: number): void
  /** The node's parked PILA was checked (accepted or refused): frames held meanwhile can go on. */
  pilaSettled?(nodeId: number): void
}

/** Whether a peer may be set up for a node we want to send to (`KeyExchange.admitPeer`). */
export type PeerAdmission = 'ok' | 'unregistered' | 'busy'

export type KeyExchangeLimits = Pick<
  TunnelLimits,
  | 'retiredKeysPerPeer'
  | 'maxKeyLookups'
  | 'maxRemoteKeyLookups'
  | 'lookupBurstPerSource'
  | 'lookupsPerSecondPerSource'
  | 'maxLookupSources'
  | 'maxCachedKeys'
  | 'maxUnknownKeys'
>

export interface KeyExchangeOptions {
  nodeId: number
  identity: Identity
  kdf: KdfChooser
  random: RandomSource
  directory: PeerDirectory
  clock: Pick<TunnelScheduler, 'now'>
  logger: Logger
  timing: Pick<TunnelTiming, 'keyRefetchMs' | 'negativeKeyCacheMs'>
  limits: KeyExchangeLimits
  drops: DropCounters
  port: KeyExchangePort
}

export class KeyExchange {
  private readonly keys: RegistryKeyCache
  private readonly parked = new Map<number, ParkedPila>()
  /** PILA-caused lookups per source IP. */
  private readonly lookupSources: KeyedTokenBuckets
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
    const { limits } = opts
    this.keys = new RegistryKeyCache({
      directory: opts.directory,
      now: () => opts.clock.now(),
      logger: opts.logger,
      onFetched: this.onKeyFetchedBound,
      maxPending: limits.maxKeyLookups,
      maxRemotePending: limits.maxRemoteKeyLookups,
      maxKeys: limits.maxCachedKeys,
      maxUnknown: limits.maxUnknownKeys,
    })
    this.lookupSources = new KeyedTokenBuckets(limits.lookupBurstPerSource, limits.lookupsPerSecondPerSource, limits.maxLookupSources)
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

  /** Registry lookups in flight, and entries in the key cache (for tests and diagnostics). */
  get lookupStats(): { pending: number; cached: number } {
    return { pending: this.keys.pendingCount, cached: this.keys.size }
  }

  /**
   * Starts the registry lookup of a node's key unless it is cached or on its way. Cause
   * 'remote': a frame a stranger sent (counted against `maxRemoteKeyLookups`).
   */
  prefetchKey(nodeId: number, cause: LookupCause = 'local'): void {
    if (this.keys.get(nodeId) === undefined) this.keys.fetch(nodeId, cause)
  }

  /** The registry's key (or its "no key") for `nodeId` is cached or being fetched. */
  knowsKey(nodeId: number): boolean {
    return this.keys.get(nodeId) !== undefined
  }

  /**
   * May a peer be set up for `nodeId`, which we want to send to? 'unregistered' while the
   * registry's "no key" is remembered (negativeKeyCacheMs), 'busy' when the key is not cached
   * and no lookup can start; otherwise 'ok', with the lookup started if one is needed. A peer
   * whose lookup then finds no key is dropped again (`KeyExchangePort.keyUnknown`).
   */
  admitPeer(nodeId: number): PeerAdmission {
    const entry = this.keys.get(nodeId)
    if (entry !== undefined && (entry.key !== null || entry.fetching)) return 'ok'
    if (entry !== undefined && this.opts.clock.now() - entry.fetchedMs < this.opts.timing.negativeKeyCacheMs) return 'unregistered'
    return this.keys.fetch(nodeId, 'local') ? 'ok' : 'busy'
  }

  /** The verified PILA carries one of the peer's previous X25519 keys (a replay from before a restart). */
  isRetiredKey(peer: Peer, frame: Buffer): boolean {
    for (const k of peer.retiredKeys) if (bytesEqual(k, frame, 8)) return true
    return false
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

  /** A PILA from `nodeId` waits for its sender's registry key (its PILS may be held meanwhile, early-frames.ts). */
  isParked(nodeId: number): boolean {
    return this.parked.has(nodeId)
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
    // A peer set up again after it was removed comes back with what we remembered of it: its key
    // then is not new, and the replay windows under it stay.
    const previous = peer.peerX25519 ?? peer.restoredKey
    const sameAsRestored = !hadKey && previous !== null && bytesEqual(previous, frame, 8)
    if (previous !== null && !sameAsRestored) this.retireKey(peer, previous)
    peer.restoredKey = null
    peer.peerX25519 = Uint8Array.from(x)
    // New peer key: new key material, so a fresh sequence and fresh replay state are safe.
    this.retireSequence(peer)
    peer.sendSeq = new NonceSequence(this.opts.random, this.counterFloor)
    if (!sameAsRestored) peer.replay.reset()
    peer.prevLegacy = null
    peer.prevHkdf = null
    peer.gotPils = false
    peer.keySentMs = 0
    peer.peerAdvertisesHkdf = frame.length > PILA_SIZE
    this.opts.kdf.choose(peer)
    if (hadKey) this.opts.logger.info('tunnel peer key changed', { node: peer.nodeId })
    return true
  }

  /**
   * Runs the crypto steps of a first key exchange once with a throwaway key (X25519 agreement,
   * both KDFs, the cipher objects, a PILA signature check), so the first real peer does not pay
   * for OpenSSL's and V8's first calls (an agreement: 1.5 ms cold, 0.4 ms warm, measured here),
   * on both sides of a new connection's path. Best effort. (Sealing is left to the cipher's
   * owner: aead.ts is being reworked.)
   */
  warmUp(): void {
    try {
      const other = X25519KeyPair.generate()
      const keys = agreeSessionKeys(this.x25519, other.publicKey)
      try {
        for (const variant of ['legacy', 'hkdf'] as const) {
          // A seal and an open too: the first frame of a new peer runs them on its critical path.
          const cipher = new TunnelCipher(keys[variant], variant)
          const nonce = new Uint8Array(12)
          const frame = new Uint8Array(64 + 16)
          cipher.sealFrame(this.opts.nodeId, nonce, frame.subarray(0, 64), frame, 0)
          cipher.openFrame(this.opts.nodeId, nonce, frame, frame, 0)
        }
      } finally {
        keys.legacy.fill(0)
        keys.hkdf.fill(0)
      }
      verifyPila(this.opts.identity.publicKey, this.opts.nodeId, this.x25519.publicKey, this.pila.subarray(72, PILA_SIZE))
    } catch (err) {
      this.opts.logger.warn('tunnel crypto warm-up failed', { error: String(err) })
    }
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

  /** Remembers a key the peer no longer uses (the oldest forgotten past `retiredKeysPerPeer`). */
  private retireKey(peer: Peer, key: Uint8Array): void {
    const retired = peer.retiredKeys
    retired.push(key)
    if (retired.length > this.opts.limits.retiredKeysPerPeer) retired.shift()
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
      this.parkAndFetch(sender, frame, host, port, relayed, now)
      return
    }
    if (entry.key === null) {
      if (!afterFetch && now - entry.fetchedMs >= this.opts.timing.negativeKeyCacheMs) this.parkAndFetch(sender, frame, host, port, relayed, now)
      else this.opts.drops['pila-unknown-key']++
      return
    }
    if (!bytesEqual(entry.key, frame, 40)) {
      // The registry may have a newer key (rotate_key): re-fetch once, then refuse.
      if (!afterFetch && now - entry.fetchedMs >= this.opts.timing.keyRefetchMs) this.parkAndFetch(sender, frame, host, port, relayed, now)
      else this.opts.drops['pila-key-mismatch']++
      return
    }
    if (!verifyPila(entry.keyObject!, sender, frame.subarray(8, 40), frame.subarray(72, PILA_SIZE))) {
      this.opts.drops['pila-bad-signature']++
      return
    }
    this.opts.port.acceptPila(sender, frame, host, port, relayed, now)
  }

  /**
   * Parks the PILA (one per node, the latest; copied because `frame` may be decrypted over
   * later) while its sender's key is looked up. Anyone can send a PILA with any sender ID, so a
   * lookup it causes is limited: per source IP (token bucket) and in number in flight.
   */
  private parkAndFetch(sender: number, frame: Buffer, host: string, port: number, relayed: boolean, now: number): void {
    if (this.keys.get(sender)?.fetching !== true) {
      if (!this.keys.hasRoom('remote')) {
        this.opts.drops['lookup-busy']++
        return
      }
      if (!this.lookupSources.take(relayed ? RELAYED_SOURCE : host, now)) {
        this.opts.drops['lookup-limited']++
        return
      }
      this.keys.fetch(sender, 'remote')
    }
    this.parked.set(sender, { frame: Buffer.from(frame), host, port, relayed })
  }

  private onKeyFetched(nodeId: number): void {
    if (this.closed) return
    try {
      const p = this.parked.get(nodeId)
      if (p !== undefined) {
        this.parked.delete(nodeId)
        this.check(p.frame, p.host, p.port, p.relayed, nodeId, true)
        this.opts.port.pilaSettled?.(nodeId)
      }
      if (this.keys.get(nodeId)?.key === null) this.opts.port.keyUnknown(nodeId)
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
