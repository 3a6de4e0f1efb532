/**
 * `Tunnel`: the daemon's one UDP socket carrying encrypted Pilot packets to
 * peers over direct, hole-punched or beacon-relayed paths (docs/wire.md §5, §9).
 *
 * An edge in the sense of docs/design.md: it owns the bind's receive handler and one
 * housekeeping timer; everything else is injected (bind, identity, directory,
 * clock/scheduler, randomness, logger), so several tunnels run in one process
 * and tests use short timings over a `MemoryNetwork`.
 *
 * Receive order (wireguard-go, docs/style.md): classify (§5.1) → beacon messages
 * (only from the configured beacon) → PILS: peer by sender ID, replay check,
 * AEAD open, replay commit, packet + CRC, inner source == sender, and only
 * then path/roaming updates and delivery. A bad datagram is a counter (see
 * stats.ts); nothing throws out of `receive`.
 *
 * Hardening over the Go snapshot (docs/wire.md §17), all wire-compatible:
 *  - PILT is never sent and never accepted; PILK is refused (answered with
 *    our PILA when we already know where the sender is, as Go does).
 *  - every PILA is checked against the registry's key (not only the first);
 *  - replay state moves only after authentication, one window per nonce
 *    prefix, and is not reset by a repeated PILA with an unchanged key;
 *  - one send counter per peer key, never restarted for an unchanged key;
 *  - the decrypted packet's source node must equal the PILS sender ID, and a
 *    relayed frame's sender must equal the RelayDeliver sender;
 *  - a working direct endpoint moves only on an authenticated PILS (a signed
 *    PILA can be replayed, so it moves it only when it brings a new key).
 *
 * Restarts (§5.10 leaves them to the application in Go). A restarted daemon
 * has a new X25519 key and no sessions, and Go drops PILS it cannot open
 * without a word. Three rules recover without the layers above noticing:
 *  - a PILS from a node we have no session with is answered with our PILA
 *    (to its source, or through the relay if it came relayed), and so is a
 *    peer's PILS after RECOVERY_AUTH_FAILURES authentication failures in a
 *    row (it holds a key of ours we no longer have); rate-limited per node,
 *    per source and globally (recovery-limiter.ts). The sender sees a new
 *    key from a registered node, re-derives and answers with its own PILA;
 *  - our PILS unanswered by anything authenticated for `silenceRekeyMs` →
 *    our PILA again on the peer's path (back-off), and a new resolve (a PILA
 *    to the endpoint if it is new): this reaches a restarted Go peer too,
 *    which answers a PILA from a node it has no session with;
 *  - relayed peers re-resolve their endpoint on the probe schedule, so a
 *    restarted peer on a new port is found again (and a private peer is
 *    reached directly once trust lets us resolve it; `refreshPeer` does it
 *    at once).
 *
 * KDF choice (§5.4, §20 item 5). Both variants' keys are derived for every
 * peer. `kdf: 'legacy' | 'hkdf'` forces one. In `auto` we trial-decrypt an
 * incoming PILS with the variant we expect and then the other, and remember
 * the one that worked; until something is learned we send **legacy** (the
 * deployed Go snapshot only speaks legacy) unless the peer's PILA carried
 * trailing capability bytes — newer daemons append them and speak HKDF, and
 * the snapshot ignores trailing bytes — in which case we start with HKDF. In
 * `auto` and `hkdf` mode our own PILA carries one capability byte, 0x01
 * ("hkdf"), so two pilot-tun nodes settle on HKDF from their first frame.
 * Caveat: later Go code describes the trailing data as a varint whose
 * meaning we have not seen; we only read "trailing bytes present".
 */
import {
  NonceSequence,
  TAG_SIZE,
  X25519KeyPair,
  agreeSessionKeys,
  readNonceCounter,
  signPila,
  verifyPila,
  TunnelCipher,
  type Identity,
  type KdfVariant,
} from '../crypto/index.js'
import { readU32, writeU32 } from '../bytes.js'
import { HEADER_SIZE, PacketHeader, decodePacket } from '../protocol/header.js'
import {
  DatagramKind,
  Magic,
  PILA_SIZE,
  PILK_SIZE,
  PILS_HEADER_SIZE,
  PILS_MIN_SIZE,
  classifyDatagram,
  encodePilp,
  writePila,
} from '../protocol/tunnel-frames.js'
import { BeaconType, RELAY_DELIVER_HEADER_SIZE, RELAY_HEADER_SIZE, decodeBeaconMessage, writeRelayHeader } from '../protocol/beacon-messages.js'
import { CryptoRandom, type RandomSource } from '../random.js'
import { nullLogger, type Logger } from '../logger.js'
import { PilotError } from '../errors.js'
import type { PacketBind, UdpEndpoint } from './bind.js'
import type { PeerDirectory } from './peer-directory.js'
import { Peer, type PathChangeEvent, type PathKind, type PeerInfo } from './peer.js'
import { RegistryKeyCache } from './registry-keys.js'
import { endpointEquals, formatEndpoint, normalizeHost } from './endpoints.js'
import { DEFAULT_TIMING, systemScheduler, type TunnelScheduler, type TunnelTiming } from './timing.js'
import { newDropCounters, type DropCounters, type DropReason, type TunnelStats } from './stats.js'
import { RecoveryLimiter } from './recovery-limiter.js'

export type KdfMode = 'auto' | 'hkdf' | 'legacy'

/** Capability byte we append to our PILA in `auto`/`hkdf` mode (bit 0 = "speaks HKDF"). */
export const PILA_CAPABILITY_HKDF = 0x01

export interface TunnelOptions {
  bind: PacketBind
  identity: Identity
  /** Our registered node ID (u32). */
  nodeId: number
  directory: PeerDirectory
  /** The beacon's UDP endpoint (an IP literal, as datagrams report it), or null for none. */
  beacon: UdpEndpoint | null
  kdf?: KdfMode
  random?: RandomSource
  logger?: Logger
  timing?: Partial<TunnelTiming>
  scheduler?: TunnelScheduler
  /** Packets queued per peer while keys are missing (oldest dropped). Go: 64. */
  maxQueuedPerPeer?: number
  /** Peers that may hold a queue at once. Go: 256. */
  maxQueuedPeers?: number
  /** @deprecated use `timing.directStaleMs` (this one wins when both are given). */
  directStaleMs?: number
  /** Recovery key frames (our PILA answering PILS we cannot open) per second, all peers together. Default 20. */
  maxRecoveryPerSecond?: number
}

/**
 * Receives each decrypted, CRC-valid packet whose source node equals the
 * sender. `packet` is a view into the received datagram (owned by the
 * handler); `header` is a scratch object valid only during the call.
 */
export type PacketHandler = (packet: Buffer, peerNodeId: number, header: PacketHeader) => void
export type PathChangeHandler = (event: PathChangeEvent) => void

const DATA_OFFSET = PILS_HEADER_SIZE // plaintext is opened in place at the ciphertext's offset
const PUNCH_COPIES = 3
/** Authentication failures in a row from one peer before we send it our key frame again. */
export const RECOVERY_AUTH_FAILURES = 3
/** Smallest PILS that can hold a packet; smaller ones are not worth an answer (reflection gain). */
const RECOVERY_MIN_PILS = PILS_HEADER_SIZE + HEADER_SIZE + TAG_SIZE
/** Accepted RTT samples (ms); anything else is ignored. */
const MAX_RTT_SAMPLE_MS = 120_000
/** Silence re-key back-off cap, as a multiple of `silenceRekeyMs`. */
const SILENCE_BACKOFF_MAX = 8
const MAX_PUNCHED_ENDPOINTS = 16

interface ParkedPila {
  frame: Buffer
  host: string
  port: number
  relayed: boolean
}

interface PunchedEndpoint {
  host: string
  port: number
  atMs: number
}

export class Tunnel {
  readonly nodeId: number
  private readonly bind: PacketBind
  private readonly identity: Identity
  private readonly directory: PeerDirectory
  private readonly beacon: UdpEndpoint | null
  private readonly kdfMode: KdfMode
  private readonly random: RandomSource
  private readonly logger: Logger
  private readonly timing: TunnelTiming
  private readonly scheduler: TunnelScheduler
  private readonly maxQueuedPerPeer: number
  private readonly maxQueuedPeers: number
  private readonly recovery: RecoveryLimiter

  private x25519: X25519KeyPair
  /** Our key frame (136 bytes, +1 capability byte unless legacy mode); never modified, copied per send. */
  private pila: Buffer
  private readonly peerTable = new Map<number, Peer>()
  private readonly keys: RegistryKeyCache
  private readonly parked = new Map<number, ParkedPila>()
  private readonly punched: PunchedEndpoint[] = []
  private packetHandler: PacketHandler | null = null
  private pathHandler: PathChangeHandler | null = null
  private readonly drops: DropCounters = newDropCounters()
  private readonly counters = {
    punchesReceived: 0,
    punchCommands: 0,
    relayDelivers: 0,
    keyFramesSent: 0,
    keyFramesAccepted: 0,
    packetsIn: 0,
    packetsOut: 0,
    keyRotations: 0,
    recoveryKeyFramesSent: 0,
    recoveryRateLimited: 0,
  }
  private readonly rxHeader = new PacketHeader()
  private queuedPeers = 0
  /**
   * Highest send counter retired under our current key pair. New sequences start above it, so
   * a session re-created with the same keys (after forget(), or a peer key flipping back) never
   * repeats a nonce even if the random prefixes collide (§17 item 5).
   */
  private counterFloor = 0
  private rotatePending = false
  private publicEp: UdpEndpoint | null = null
  private timer: unknown = null
  private started = false
  private closed = false
  private nextDiscoverMs = 0

  // Handlers bound once per object (undici habit), never per packet.
  private readonly onDatagramBound = (data: Buffer, host: string, port: number): void => this.receive(data, host, port)
  private readonly onTickBound = (): void => this.tick()
  private readonly onKeyFetchedBound = (nodeId: number): void => this.onKeyFetched(nodeId)

  constructor(opts: TunnelOptions) {
    if (!Number.isInteger(opts.nodeId) || opts.nodeId <= 0 || opts.nodeId > 0xffffffff) {
      throw new PilotError('PT_CONFIG_INVALID', `tunnel node ID ${opts.nodeId} is not a registered u32 node ID`)
    }
    this.nodeId = opts.nodeId
    this.bind = opts.bind
    this.identity = opts.identity
    this.directory = opts.directory
    this.beacon = opts.beacon === null ? null : { host: normalizeHost(opts.beacon.host), port: opts.beacon.port }
    this.kdfMode = opts.kdf ?? 'auto'
    this.random = opts.random ?? new CryptoRandom()
    this.logger = opts.logger ?? nullLogger
    this.timing = { ...DEFAULT_TIMING, ...opts.timing }
    if (opts.directStaleMs !== undefined) this.timing.directStaleMs = opts.directStaleMs
    this.scheduler = opts.scheduler ?? systemScheduler
    this.maxQueuedPerPeer = opts.maxQueuedPerPeer ?? 64
    this.maxQueuedPeers = opts.maxQueuedPeers ?? 256
    this.recovery = new RecoveryLimiter(this.timing.recoveryIntervalMs, opts.maxRecoveryPerSecond ?? 20)
    this.x25519 = X25519KeyPair.generate()
    this.pila = this.buildPila()
    this.keys = new RegistryKeyCache(this.directory, this.scheduler.now, this.logger)
    this.bind.onDatagram(this.onDatagramBound)
  }

  // ------------------------------------------------------------------ upward API

  onPacket(handler: PacketHandler | null): void {
    this.packetHandler = handler
  }

  onPathChange(handler: PathChangeHandler | null): void {
    this.pathHandler = handler
  }

  /** Our public endpoint as the beacon last reported it (DiscoverReply), if any. */
  get publicEndpoint(): UdpEndpoint | null {
    return this.publicEp
  }

  get local(): UdpEndpoint {
    return this.bind.local
  }

  /** Our current X25519 public key (for tests and diagnostics). */
  get x25519PublicKey(): Uint8Array {
    return this.x25519.publicKey
  }

  /** Starts the housekeeping tick and announces us to the beacon. */
  start(): void {
    if (this.started || this.closed) return
    this.started = true
    this.timer = this.scheduler.setInterval(this.onTickBound, this.timing.tickMs)
    this.sendDiscover(this.scheduler.now())
  }

  /** Stops the timer, drops every peer and closes the bind. */
  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    if (this.timer !== null) this.scheduler.clearInterval(this.timer)
    this.timer = null
    this.peerTable.clear()
    this.parked.clear()
    this.keys.clear()
    this.queuedPeers = 0
    await this.bind.close()
  }

  /**
   * Sends one complete encoded Pilot packet (header with CRC + payload) to
   * `peerNodeId`: sealed as PILS at once if keys exist, otherwise copied into
   * the peer's queue (flushed when the key exchange completes) and path set-up
   * starts. Drops are counted in `stats()`.
   */
  send(peerNodeId: number, packet: Uint8Array): void {
    if (this.closed) return
    if (!(packet instanceof Uint8Array) || packet.length < HEADER_SIZE || !Number.isInteger(peerNodeId) || peerNodeId <= 0 || peerNodeId > 0xffffffff) {
      this.drops['bad-outgoing']++
      return
    }
    if (peerNodeId === this.nodeId) {
      this.drops.self++
      return
    }
    let peer = this.peerTable.get(peerNodeId)
    if (peer === undefined) peer = this.createPeer(peerNodeId)
    if (peer.ready) {
      this.sealAndSend(peer, packet)
      return
    }
    this.enqueue(peer, packet)
    if (peer.setupStartedMs === 0) this.startSetup(peer)
  }

  peers(): PeerInfo[] {
    const out: PeerInfo[] = []
    for (const p of this.peerTable.values()) out.push(p.info())
    return out
  }

  peer(nodeId: number): PeerInfo | null {
    return this.peerTable.get(nodeId)?.info() ?? null
  }

  stats(): TunnelStats {
    return { drops: { ...this.drops }, ...this.counters }
  }

  /**
   * Trust (or visibility) changed for `peerNodeId`: resolve its endpoint again now, and probe
   * it at once if the peer is relayed, so a peer the registry would not reveal before can move
   * to a direct path. A resolved endpoint that confirms a punched path relabels it `direct`.
   * Unknown peers are ignored (their set-up resolves anyway).
   */
  refreshPeer(peerNodeId: number): void {
    if (this.closed) return
    const peer = this.peerTable.get(peerNodeId)
    if (peer === undefined) return
    if (peer.resolving) peer.resolveAgain = true
    if (peer.path === 'relay') {
      peer.probeIntervalMs = this.timing.probeIntervalMs
      this.probe(peer, this.scheduler.now())
    } else if (!peer.resolving) {
      this.startResolve(peer)
    }
  }

  /**
   * One round-trip sample for `peerNodeId` in ms (a ping or echo, a stream handshake), folded
   * into the peer's smoothed `rttMs`. Ignored for unknown peers and implausible values.
   */
  recordRtt(peerNodeId: number, ms: number): void {
    if (!(ms >= 0 && ms <= MAX_RTT_SAMPLE_MS)) return
    const peer = this.peerTable.get(peerNodeId)
    if (peer !== undefined) peer.recordRtt(ms, false)
  }

  /** Trust revoked: forget the peer's session, endpoint, queue and cached registry key. */
  forget(peerNodeId: number): void {
    const peer = this.peerTable.get(peerNodeId)
    if (peer !== undefined) {
      this.retireSequence(peer)
      if (peer.queue.length > 0) this.queuedPeers--
      this.peerTable.delete(peerNodeId)
    }
    this.parked.delete(peerNodeId)
    this.keys.delete(peerNodeId)
  }

  /**
   * Replaces our X25519 key pair and re-announces it to every peer with keys
   * (done automatically when a nonce sequence nears its limit, §15.3). Packets
   * to a peer queue until its key frame answers our new one.
   */
  rotateKeys(): void {
    if (this.closed) return
    this.rotatePending = false
    this.x25519 = X25519KeyPair.generate()
    this.pila = this.buildPila()
    this.counters.keyRotations++
    this.counterFloor = 0 // new key pair: new AES keys with every peer
    const now = this.scheduler.now()
    for (const peer of this.peerTable.values()) {
      if (peer.peerX25519 === null) continue
      peer.prevLegacy = peer.legacy
      peer.prevHkdf = peer.hkdf
      if (!this.installCiphers(peer, peer.peerX25519)) continue
      peer.sendSeq = new NonceSequence(this.random, 0)
      peer.peerKeyCurrent = false
      peer.keySentMs = 0
      this.sendKeyFrame(peer, now)
    }
    this.logger.info('tunnel key pair rotated', { peers: this.peerTable.size })
  }

  // ------------------------------------------------------------------ receive path

  /**
   * Handles one received datagram (the bind calls this; tests may too).
   * `data` is owned by the tunnel from here on: PILS are decrypted in place.
   */
  receive(data: Buffer, host: string, port: number): void {
    if (this.closed) return
    try {
      const kind = classifyDatagram(data)
      switch (kind) {
        case DatagramKind.DROP_EMPTY:
          this.drops.empty++
          return
        case DatagramKind.DROP_SHORT:
          this.drops.short++
          return
        case DatagramKind.DROP_UNKNOWN_MAGIC:
          this.drops['unknown-magic']++
          return
        case DatagramKind.BEACON:
          this.onBeaconMessage(data, host, port)
          return
        default:
          this.onFrame(kind, data, host, port, false, 0)
      }
    } catch (err) {
      this.drops['internal-error']++
      this.logger.error('tunnel receive failed', { error: String(err), stack: (err as Error)?.stack })
    }
  }

  private onFrame(kind: DatagramKind, frame: Buffer, host: string, port: number, relayed: boolean, relaySender: number): void {
    switch (kind) {
      case DatagramKind.PILS:
        this.onPils(frame, host, port, relayed, relaySender)
        return
      case DatagramKind.PILA:
        this.onPila(frame, host, port, relayed, relaySender, false)
        return
      case DatagramKind.PILK:
        this.onPilk(frame, relayed, relaySender)
        return
      case DatagramKind.PILT:
        this.drops['plaintext-refused']++
        return
      case DatagramKind.PILP:
        this.counters.punchesReceived++
        return
      case DatagramKind.BEACON:
        this.drops['relay-nested']++
        return
      case DatagramKind.DROP_EMPTY:
      case DatagramKind.DROP_SHORT:
        this.drops.short++
        return
      default:
        this.drops['unknown-magic']++
    }
  }

  private onPils(frame: Buffer, host: string, port: number, relayed: boolean, relaySender: number): void {
    if (frame.length < PILS_MIN_SIZE) {
      this.drops.short++
      return
    }
    const sender = readU32(frame, 4)
    if (relayed && sender !== relaySender) {
      this.drops['relay-sender-mismatch']++
      return
    }
    const peer = this.peerTable.get(sender)
    if (peer === undefined || peer.sendSeq === null) {
      // It holds keys for us that we do not (we restarted, or forgot it): tell it ours.
      this.drops['no-session']++
      this.sendRecoveryKey(sender, frame.length, host, port, relayed)
      return
    }
    const prefix = readU32(frame, 8)
    const counter = readNonceCounter(frame, 8)
    if (!peer.replay.check(prefix, counter)) {
      this.drops.replay++
      peer.dropReplay++
      return
    }
    const n = this.open(peer, sender, frame)
    if (n < 0) {
      this.drops['auth-failed']++
      peer.dropAuthFailed++
      // Again and again: the peer may seal with a key of ours from before our restart.
      if (++peer.authFailStreak >= RECOVERY_AUTH_FAILURES) this.sendRecoveryKey(sender, frame.length, host, port, relayed)
      return
    }
    peer.authFailStreak = 0
    peer.replay.commit(prefix, counter)
    const plain = frame.subarray(DATA_OFFSET, DATA_OFFSET + n)
    const h = this.rxHeader
    try {
      decodePacket(plain, 0, h)
    } catch {
      this.drops['bad-packet']++
      peer.dropBadPacket++
      return
    }
    if (h.srcNode !== sender) {
      this.drops['source-mismatch']++
      peer.dropSourceMismatch++
      return
    }
    // Authenticated and well-formed: only now may state move.
    const now = this.scheduler.now()
    peer.gotPils = true
    peer.lastReceiveMs = now
    peer.silentSinceMs = 0
    peer.packetsIn++
    peer.bytesIn += n
    this.counters.packetsIn++
    if (relayed) this.noteRelayed(peer, now)
    else this.noteDirectPils(peer, host, port, now)
    const handler = this.packetHandler
    if (handler !== null) handler(plain.subarray(0, HEADER_SIZE + h.payloadLength), sender, h)
  }

  /** AEAD open in place at DATA_OFFSET with the expected variant, then (auto, unconfirmed) the other, then pre-rotation keys. */
  private open(peer: Peer, sender: number, frame: Buffer): number {
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
    if (this.kdfMode === 'auto' && !peer.kdfConfirmed) {
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

  private onPilk(frame: Buffer, relayed: boolean, relaySender: number): void {
    if (frame.length < PILK_SIZE) {
      this.drops.short++
      return
    }
    this.drops['pilk-refused']++
    const sender = readU32(frame, 4)
    if (relayed && sender !== relaySender) return
    // Like Go: answer a refused PILK with our PILA, but only where we already send to that node.
    const peer = this.peerTable.get(sender)
    if (peer === undefined || (peer.endpoint === null && peer.path !== 'relay')) return
    const now = this.scheduler.now()
    if (now - peer.keySentMs >= this.timing.keyRetryMs) this.sendKeyFrame(peer, now)
  }

  private onPila(frame: Buffer, host: string, port: number, relayed: boolean, relaySender: number, afterFetch: boolean): void {
    if (frame.length < PILA_SIZE) {
      this.drops.short++
      return
    }
    const sender = readU32(frame, 4)
    if (sender === this.nodeId || sender === 0) {
      this.drops.self++
      return
    }
    if (relayed && sender !== relaySender) {
      this.drops['relay-sender-mismatch']++
      return
    }
    const now = this.scheduler.now()
    const entry = this.keys.get(sender)
    if (entry === undefined || entry.fetching) {
      this.parkAndFetch(sender, frame, host, port, relayed)
      return
    }
    if (entry.key === null) {
      if (!afterFetch && now - entry.fetchedMs >= this.timing.negativeKeyCacheMs) this.parkAndFetch(sender, frame, host, port, relayed)
      else this.drops['pila-unknown-key']++
      return
    }
    if (!bytesEqual(entry.key, frame, 40)) {
      // The registry may have a newer key (rotate_key): re-fetch once, then refuse.
      if (!afterFetch && now - entry.fetchedMs >= this.timing.keyRefetchMs) this.parkAndFetch(sender, frame, host, port, relayed)
      else this.drops['pila-key-mismatch']++
      return
    }
    if (!verifyPila(entry.keyObject!, sender, frame.subarray(8, 40), frame.subarray(72, PILA_SIZE))) {
      this.drops['pila-bad-signature']++
      return
    }
    this.acceptPila(sender, frame, host, port, relayed, now)
  }

  private parkAndFetch(sender: number, frame: Buffer, host: string, port: number, relayed: boolean): void {
    // One parked PILA per node (the latest); copied because `frame` may be decrypted over later.
    if (!this.keys.fetch(sender, this.onKeyFetchedBound)) {
      this.drops['lookup-busy']++
      return
    }
    this.parked.set(sender, { frame: Buffer.from(frame), host, port, relayed })
  }

  private onKeyFetched(nodeId: number): void {
    const p = this.parked.get(nodeId)
    if (p === undefined || this.closed) return
    this.parked.delete(nodeId)
    try {
      this.onPila(p.frame, p.host, p.port, p.relayed, nodeId, true)
    } catch (err) {
      this.drops['internal-error']++
      this.logger.error('tunnel key frame handling failed', { error: String(err) })
    }
  }

  /** A PILA verified against the registry key (§5.7 steps 5–8, hardened). */
  private acceptPila(sender: number, frame: Buffer, host: string, port: number, relayed: boolean, now: number): void {
    const x = frame.subarray(8, 40)
    const peer = this.peerTable.get(sender) ?? this.createPeer(sender)
    const changed = peer.peerX25519 === null || !bytesEqual(peer.peerX25519, frame, 8)
    const wasCurrent = peer.peerKeyCurrent
    if (changed) {
      const hadKey = peer.peerX25519 !== null
      if (!this.installCiphers(peer, x)) return
      peer.peerX25519 = Uint8Array.from(x)
      // New peer key: new key material, so a fresh sequence and fresh replay state are safe.
      this.retireSequence(peer)
      peer.sendSeq = new NonceSequence(this.random, this.counterFloor)
      peer.replay.reset()
      peer.prevLegacy = null
      peer.prevHkdf = null
      peer.gotPils = false
      peer.keySentMs = 0 // the peer (new or restarted) has no session with us: it needs our key
      peer.peerAdvertisesHkdf = frame.length > PILA_SIZE
      this.chooseKdf(peer)
      if (hadKey) this.logger.info('tunnel peer key changed', { node: sender })
    }
    peer.peerKeyCurrent = true
    peer.lastReceiveMs = now
    peer.silentSinceMs = 0
    peer.silenceRekeyBackoffMs = 0
    this.counters.keyFramesAccepted++
    if (peer.setupStartedMs === 0) peer.setupStartedMs = now
    if (peer.keyProbeMs !== 0 && peer.rttMs < 0) peer.recordRtt(now - peer.keyProbeMs, true)
    let upgraded = false
    if (relayed) this.noteRelayed(peer, now)
    else upgraded = this.noteDirectPila(peer, host, port, changed, now)
    // Reply when the peer is new, its key changed, our key changed since its last frame, or a relayed
    // path just became direct. A repeated PILA with an unchanged key is answered too, but at most
    // once per keyRetryMs: senders repeat key frames only while they lack ours (Go: one per packet
    // while it has no session; us: retries, or after forget()), so one answer un-sticks them, and
    // the rate limit ends the Go-style three-frame exchange and makes replayed PILAs cheap.
    if (changed || !wasCurrent || upgraded || now - peer.keySentMs >= this.timing.keyRetryMs) {
      this.sendKeyFrame(peer, now)
    }
    if (peer.ready && peer.queue.length > 0) this.flush(peer)
  }

  private retireSequence(peer: Peer): void {
    if (peer.sendSeq !== null && peer.sendSeq.lastCounter > this.counterFloor) this.counterFloor = peer.sendSeq.lastCounter
  }

  private installCiphers(peer: Peer, peerX25519: Uint8Array): boolean {
    let keys: Record<KdfVariant, Buffer>
    try {
      keys = agreeSessionKeys(this.x25519, peerX25519)
    } catch {
      this.drops['pila-bad-key']++
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

  private chooseKdf(peer: Peer): void {
    if (this.kdfMode === 'auto') {
      peer.kdf = peer.peerAdvertisesHkdf ? 'hkdf' : 'legacy'
      peer.kdfConfirmed = false
    } else {
      peer.kdf = this.kdfMode
      peer.kdfConfirmed = true
    }
  }

  private onBeaconMessage(data: Buffer, host: string, port: number): void {
    const beacon = this.beacon
    if (beacon === null || port !== beacon.port || normalizeHost(host) !== beacon.host) {
      this.drops['beacon-spoofed']++
      return
    }
    const type = data[0]!
    if (type === BeaconType.RELAY_DELIVER) {
      if (data.length < RELAY_DELIVER_HEADER_SIZE + 4) {
        this.drops['relay-malformed']++
        return
      }
      this.counters.relayDelivers++
      const sender = readU32(data, 1)
      const inner = data.subarray(RELAY_DELIVER_HEADER_SIZE)
      this.onFrame(classifyDatagram(inner), inner, host, port, true, sender)
      return
    }
    if (type !== BeaconType.PUNCH_COMMAND && type !== BeaconType.DISCOVER_REPLY) {
      this.drops['beacon-unexpected']++
      return
    }
    let msg
    try {
      msg = decodeBeaconMessage(data)
    } catch {
      this.drops['beacon-malformed']++
      return
    }
    if (msg.type === BeaconType.DISCOVER_REPLY) {
      this.publicEp = { host: msg.endpoint.host, port: msg.endpoint.port }
    } else if (msg.type === BeaconType.PUNCH_COMMAND) {
      this.onPunchCommand(normalizeHost(msg.endpoint.host), msg.endpoint.port)
    }
  }

  /** §9.4: three PILP and our PILA towards the endpoint; remember it as a punch candidate. */
  private onPunchCommand(host: string, port: number): void {
    this.counters.punchCommands++
    if (port === 0) return
    const now = this.scheduler.now()
    this.rememberPunched(host, port, now)
    for (let i = 0; i < PUNCH_COPIES; i++) this.bind.send(encodePilp(), host, port)
    this.bind.send(Buffer.from(this.pila), host, port)
    this.counters.keyFramesSent++
    // The command does not say which node the endpoint belongs to: offer it to every peer
    // with a recent PunchRequest. A wrong guess is harmless — paths move only on frames
    // that authenticate as the peer.
    for (const peer of this.peerTable.values()) {
      if (peer.punchRequestedMs === 0 || now - peer.punchRequestedMs > this.timing.punchMatchMs) continue
      if (peer.path === 'direct' || peer.path === 'punched') continue
      const c = peer.addCandidate(host, port, true, false)
      if (peer.endpoint === null && peer.path === 'none') peer.endpoint = c
    }
  }

  private rememberPunched(host: string, port: number, now: number): void {
    for (const p of this.punched) {
      if (p.port === port && p.host === host) {
        p.atMs = now
        return
      }
    }
    this.punched.push({ host, port, atMs: now })
    if (this.punched.length > MAX_PUNCHED_ENDPOINTS) this.punched.shift()
  }

  private isPunched(host: string, port: number): boolean {
    for (const p of this.punched) if (p.port === port && p.host === host) return true
    return false
  }

  // ------------------------------------------------------------------ paths

  /** An authenticated PILS arrived directly from host:port. */
  private noteDirectPils(peer: Peer, host: string, port: number, now: number): void {
    peer.lastDirectAuthMs = now
    peer.unansweredSinceMs = 0
    if ((peer.path === 'direct' || peer.path === 'punched') && endpointEquals(peer.endpoint, host, port)) return
    this.setDirect(peer, host, port, peer.path === 'relay' ? 'upgrade' : peer.path === 'none' ? 'confirmed' : 'roam', now)
  }

  /** A verified PILA arrived directly. Returns true if it upgraded a relayed peer. */
  private noteDirectPila(peer: Peer, host: string, port: number, keyChanged: boolean, now: number): boolean {
    if (peer.path === 'direct' || peer.path === 'punched') {
      if (endpointEquals(peer.endpoint, host, port)) {
        peer.lastDirectAuthMs = now
        peer.unansweredSinceMs = 0
      } else if (keyChanged) {
        this.setDirect(peer, host, port, 'key-change', now)
      } else {
        // A signed PILA can be replayed from anywhere: keep it as a candidate only.
        peer.addCandidate(host, port, this.isPunched(host, port), false)
      }
      return false
    }
    const wasRelay = peer.path === 'relay'
    this.setDirect(peer, host, port, wasRelay ? 'upgrade' : 'confirmed', now)
    return wasRelay
  }

  private setDirect(peer: Peer, host: string, port: number, reason: PathChangeEvent['reason'], now: number): void {
    const c = peer.findCandidate(host, port) ?? peer.addCandidate(host, port, this.isPunched(host, port), false)
    const kind: PathKind = c.fromPunch && !c.fromResolve ? 'punched' : 'direct'
    const from = peer.path
    peer.path = kind
    peer.endpoint = c
    peer.lastDirectAuthMs = now
    peer.unansweredSinceMs = 0
    peer.probeIntervalMs = 0
    this.emitPath(peer, from, reason)
  }

  /** An authenticated frame came through the relay. */
  private noteRelayed(peer: Peer, now: number): void {
    if (peer.path === 'relay') return
    if (peer.path === 'none' || now - peer.lastDirectAuthMs > this.timing.relayAfterMs) this.setRelay(peer, 'relay-reachable', now)
  }

  private setRelay(peer: Peer, reason: PathChangeEvent['reason'], now: number): void {
    if (this.beacon === null) return
    const from = peer.path
    peer.path = 'relay'
    peer.unansweredSinceMs = 0
    peer.probeIntervalMs = this.timing.probeIntervalMs
    peer.nextProbeMs = now + peer.probeIntervalMs
    this.emitPath(peer, from, reason)
    // The endpoint we knew may be stale (a restart on a new port): ask again.
    if (!peer.resolving) this.startResolve(peer)
  }

  private emitPath(peer: Peer, from: PathKind, reason: PathChangeEvent['reason']): void {
    const event: PathChangeEvent = {
      nodeId: peer.nodeId,
      from,
      to: peer.path,
      endpoint: peer.endpoint === null ? null : { host: peer.endpoint.host, port: peer.endpoint.port },
      reason,
    }
    this.logger.info('tunnel path', { node: peer.nodeId, from, to: peer.path, endpoint: formatEndpoint(peer.endpoint), reason })
    const h = this.pathHandler
    if (h !== null) {
      try {
        h(event)
      } catch (err) {
        this.logger.error('path-change handler threw', { error: String(err) })
      }
    }
  }

  // ------------------------------------------------------------------ send path

  private createPeer(nodeId: number): Peer {
    const peer = new Peer(nodeId)
    this.chooseKdf(peer)
    this.peerTable.set(nodeId, peer)
    return peer
  }

  /** First need of a peer: PunchRequest at once, key prefetch, resolve → PILA direct. */
  private startSetup(peer: Peer): void {
    const now = this.scheduler.now()
    peer.setupStartedMs = now
    if (this.beacon !== null) {
      const req = Buffer.allocUnsafe(9)
      req[0] = BeaconType.PUNCH_REQUEST
      writeU32(req, 1, this.nodeId)
      writeU32(req, 5, peer.nodeId)
      this.bind.send(req, this.beacon.host, this.beacon.port)
      peer.punchRequestedMs = now
    }
    if (this.keys.get(peer.nodeId) === undefined) this.keys.fetch(peer.nodeId, null)
    if (peer.endpoint !== null || peer.path === 'relay') this.sendKeyFrame(peer, now)
    this.startResolve(peer)
  }

  private startResolve(peer: Peer): void {
    peer.resolveStarted = true
    peer.resolving = true
    peer.resolveAgain = false
    const nodeId = peer.nodeId
    this.directory.resolveEndpoint(nodeId).then(
      (ep) => this.onResolved(peer, ep),
      (err: unknown) => {
        peer.resolveStarted = false
        this.logger.warn('tunnel resolve failed', { node: nodeId, error: String(err) })
        this.afterResolve(peer)
      },
    )
  }

  private afterResolve(peer: Peer): void {
    peer.resolving = false
    if (peer.resolveAgain && !this.closed && this.peerTable.get(peer.nodeId) === peer) this.startResolve(peer)
  }

  private onResolved(peer: Peer, ep: UdpEndpoint | null): void {
    if (this.closed || this.peerTable.get(peer.nodeId) !== peer) return
    try {
      if (ep === null || !(ep.port > 0 && ep.port <= 0xffff) || typeof ep.host !== 'string') {
        peer.resolveStarted = false // try again on a later retry
        return
      }
      const host = normalizeHost(ep.host)
      const known = peer.findCandidate(host, ep.port) !== null
      const c = peer.addCandidate(host, ep.port, false, true)
      const now = this.scheduler.now()
      if (peer.path === 'none' && peer.endpoint === null) peer.endpoint = c
      if (peer.path === 'none' || !known) {
        // Direct key frame: the set-up attempt, or the first probe of a new endpoint (a relayed
        // peer revealed by trust, a restart on a new port; known ones get theirs from probe()).
        // Only an authenticated answer from there moves the path (noteDirectPils/Pila).
        this.bind.send(Buffer.from(this.pila), host, ep.port)
        this.counters.keyFramesSent++
        // Counts as "our key went out" only when direct is the path we are trying; a probe of a
        // relayed peer proves nothing about the relay path.
        if (peer.path === 'none') this.markKeySent(peer, now)
      } else if (peer.path === 'punched' && peer.endpoint === c) {
        // The registry names the endpoint we punched to: it is the peer's own, a direct path.
        peer.path = 'direct'
        this.emitPath(peer, 'punched', 'upgrade')
      }
    } catch (err) {
      this.drops['internal-error']++
      this.logger.error('tunnel resolve handling failed', { error: String(err) })
    } finally {
      this.afterResolve(peer)
    }
  }

  private enqueue(peer: Peer, packet: Uint8Array): void {
    if (peer.queue.length === 0) {
      if (this.queuedPeers >= this.maxQueuedPeers) {
        this.drops['queue-limit']++
        return
      }
      this.queuedPeers++
    } else if (peer.queue.length >= this.maxQueuedPerPeer) {
      peer.queue.shift()
      this.drops['queue-overflow']++
      peer.dropQueueOverflow++
    }
    peer.queue.push(Uint8Array.from(packet)) // the caller may reuse its buffer
  }

  private flush(peer: Peer): void {
    const q = peer.queue.splice(0)
    if (q.length === 0) return
    this.queuedPeers--
    for (const packet of q) this.sealAndSend(peer, packet)
  }

  private sealAndSend(peer: Peer, packet: Uint8Array): void {
    const len = packet.length
    const out = Buffer.allocUnsafe(DATA_OFFSET + len + TAG_SIZE)
    writeU32(out, 0, Magic.PILS)
    writeU32(out, 4, this.nodeId)
    const seq = peer.sendSeq!
    seq.next(peer.nonce, 0)
    out.set(peer.nonce, 8)
    ;(peer.kdf === 'hkdf' ? peer.hkdf! : peer.legacy!).sealFrame(this.nodeId, peer.nonce, packet, out, DATA_OFFSET)
    peer.packetsOut++
    peer.bytesOut += len
    this.counters.packetsOut++
    if (peer.silentSinceMs === 0) {
      const now = this.scheduler.now()
      peer.silentSinceMs = now
      if (peer.unansweredSinceMs === 0 && (peer.path === 'direct' || peer.path === 'punched')) peer.unansweredSinceMs = now
    } else if (peer.unansweredSinceMs === 0 && (peer.path === 'direct' || peer.path === 'punched')) {
      peer.unansweredSinceMs = this.scheduler.now()
    }
    this.sendFrame(peer, out)
    if (seq.needsRekey) this.rotatePending = true
  }

  /** Sends a complete frame on the peer's current path. `frame` is handed over to the bind. */
  private sendFrame(peer: Peer, frame: Buffer): boolean {
    if (peer.path === 'relay') {
      const beacon = this.beacon!
      const hdr = Buffer.allocUnsafe(RELAY_HEADER_SIZE)
      writeRelayHeader(hdr, 0, this.nodeId, peer.nodeId)
      this.bind.send([hdr, frame], beacon.host, beacon.port)
      return true
    }
    const ep = peer.endpoint
    if (ep !== null) {
      this.bind.send(frame, ep.host, ep.port)
      return true
    }
    this.drops['no-path']++
    return false
  }

  /**
   * Our PILA back to the sender of a PILS we cannot open, to its source or through the relay
   * the PILS came by. Rate-limited (RecoveryLimiter); never for frames too small to hold a packet.
   */
  private sendRecoveryKey(sender: number, frameLength: number, host: string, port: number, relayed: boolean): void {
    if (sender === this.nodeId || sender === 0 || frameLength < RECOVERY_MIN_PILS) return
    if (relayed && this.beacon === null) return
    const now = this.scheduler.now()
    if (!this.recovery.allow(sender, relayed ? '' : host, relayed ? 0 : port, now)) {
      this.counters.recoveryRateLimited++
      return
    }
    const frame = Buffer.from(this.pila)
    if (relayed) {
      const beacon = this.beacon!
      const hdr = Buffer.allocUnsafe(RELAY_HEADER_SIZE)
      writeRelayHeader(hdr, 0, this.nodeId, sender)
      this.bind.send([hdr, frame], beacon.host, beacon.port)
    } else {
      this.bind.send(frame, host, port)
    }
    this.counters.keyFramesSent++
    this.counters.recoveryKeyFramesSent++
    this.logger.debug('tunnel recovery key frame', { node: sender, relayed })
    // Its PILA should follow: have the registry key at hand so it is verified on arrival.
    if (this.keys.get(sender) === undefined) this.keys.fetch(sender, null)
  }

  private sendKeyFrame(peer: Peer, now: number): void {
    if (this.sendFrame(peer, Buffer.from(this.pila))) {
      this.counters.keyFramesSent++
      this.markKeySent(peer, now)
    }
  }

  private markKeySent(peer: Peer, now: number): void {
    peer.keySentMs = Math.max(1, now)
    if (!peer.peerKeyCurrent && peer.keyProbeMs === 0) peer.keyProbeMs = peer.keySentMs
    if (peer.ready && peer.queue.length > 0) this.flush(peer)
  }

  private sendDiscover(now: number): void {
    this.nextDiscoverMs = now + this.timing.beaconKeepaliveMs
    if (this.beacon === null) return
    const msg = Buffer.allocUnsafe(5)
    msg[0] = BeaconType.DISCOVER
    writeU32(msg, 1, this.nodeId)
    this.bind.send(msg, this.beacon.host, this.beacon.port)
  }

  private buildPila(): Buffer {
    const withCapability = this.kdfMode !== 'legacy'
    const out = Buffer.alloc(PILA_SIZE + (withCapability ? 1 : 0))
    writePila(out, 0, {
      senderId: this.nodeId,
      x25519Public: this.x25519.publicKey,
      ed25519Public: this.identity.publicKey,
      signature: signPila(this.identity, this.nodeId, this.x25519.publicKey),
    })
    if (withCapability) out[PILA_SIZE] = PILA_CAPABILITY_HKDF
    return out
  }

  // ------------------------------------------------------------------ housekeeping

  /** One tick: beacon keepalive, key retries, relay fallback, direct probes, stale direct paths. */
  tick(): void {
    if (this.closed) return
    try {
      const now = this.scheduler.now()
      if (now >= this.nextDiscoverMs) this.sendDiscover(now)
      if (this.rotatePending) this.rotateKeys()
      const t = this.timing
      for (const peer of this.peerTable.values()) {
        if (!peer.ready && peer.queue.length > 0 && now - peer.keySentMs >= t.keyRetryMs) {
          if (!peer.resolveStarted) this.startResolve(peer)
          if (peer.endpoint !== null || peer.path === 'relay') this.sendKeyFrame(peer, now)
        }
        if (peer.path === 'none') {
          if (this.beacon !== null && peer.setupStartedMs !== 0 && now - peer.setupStartedMs >= t.relayAfterMs) {
            this.setRelay(peer, 'relay-timeout', now)
            this.sendKeyFrame(peer, now)
          }
        } else if (peer.path === 'relay') {
          if (now >= peer.nextProbeMs) this.probe(peer, now)
        } else if (peer.unansweredSinceMs !== 0 && this.beacon !== null && now - peer.unansweredSinceMs >= t.directStaleMs) {
          // Direct path went quiet while we kept sending: fall back to the relay (and probe).
          this.setRelay(peer, 'direct-stale', now)
        }
        if (peer.silentSinceMs !== 0 && peer.ready && now - peer.silentSinceMs >= t.silenceRekeyMs && now >= peer.silenceRekeyAtMs) {
          // Our PILS go unanswered: the peer may have lost our key (restart), maybe on a new port.
          if (!peer.resolving) this.startResolve(peer)
          peer.silenceRekeyBackoffMs = Math.min(Math.max(peer.silenceRekeyBackoffMs * 2, t.silenceRekeyMs), t.silenceRekeyMs * SILENCE_BACKOFF_MAX)
          peer.silenceRekeyAtMs = now + peer.silenceRekeyBackoffMs
          this.sendKeyFrame(peer, now)
        }
      }
    } catch (err) {
      this.drops['internal-error']++
      this.logger.error('tunnel tick failed', { error: String(err), stack: (err as Error)?.stack })
    }
  }

  /** Relayed peer: resolve again, our PILA to each known direct endpoint; exponential back-off. */
  private probe(peer: Peer, now: number): void {
    if (!peer.resolving) this.startResolve(peer)
    for (const c of peer.candidates) {
      this.bind.send(Buffer.from(this.pila), c.host, c.port)
      this.counters.keyFramesSent++
    }
    peer.nextProbeMs = now + peer.probeIntervalMs
    peer.probeIntervalMs = Math.min(peer.probeIntervalMs * 2, this.timing.probeMaxMs)
  }
}

/** Compares `a` with `b[offset .. offset + a.length)`. */
function bytesEqual(a: Uint8Array, b: Uint8Array, offset: number): boolean {
  if (b.length < offset + a.length) return false
  for (let i = 0; i < a.length; i++) if (a[i] !== b[offset + i]) return false
  return true
}

export type { DropReason }
