/**
 * `Tunnel`: the daemon's one UDP socket carrying encrypted Pilot packets to
 * peers over direct, hole-punched or beacon-relayed paths (docs/wire.md §5, §9).
 *
 * An edge in the sense of docs/design.md: it owns the bind's receive handler and one
 * housekeeping timer; everything else is injected (bind, identity, directory,
 * clock/scheduler, randomness, logger), so several tunnels run in one process
 * and tests use short timings over a `MemoryNetwork`.
 *
 * This file is the composition: it owns the socket, the peer table, the counters
 * and the packet path (receive, PILS open, delivery; sealing is frame-sender.ts). Each concern with
 * state of its own is a piece that reaches back only through a narrow port (none
 * imports this file):
 *  - kdf.ts            which key derivation a peer gets, learned from frames that open;
 *  - key-exchange.ts   our key pair and PILA, PILAs checked against the registry, sessions;
 *  - paths.ts          direct / punched / relay, roaming, probes, endpoint resolves;
 *  - beacon-client.ts  Discover, PunchRequest and PunchCommand, relay framing;
 *  - recovery.ts       restarts: answers to PILS we cannot open, our PILA again on silence;
 *  - send-queue.ts     packets waiting for keys;
 *  - frame-sender.ts   PILS sealing, and frames out on a peer's path;
 *  - peer-table.ts     the peers, bounded, and what outlives a removed one (keys, replay state).
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
 *    PILA can be replayed; one with a new key from elsewhere gets copies of our
 *    frames until a PILS from there authenticates, paths.ts), and a PILA with
 *    one of the peer's previous keys is refused (key-exchange.ts);
 *  - bounded state (limits.ts): the peer table (idle peers expire, the idlest
 *    is evicted at the cap), no peer for a node the registry has no key for,
 *    registry lookups caused by strangers, PunchCommand answers.
 */
import { readNonceCounter } from '../crypto/index.js'
import { readU32 } from '../bytes.js'
import { HEADER_SIZE, PacketHeader, decodePacket } from '../protocol/header.js'
import { DatagramKind, PILK_SIZE, PILS_MIN_SIZE, classifyDatagram } from '../protocol/tunnel-frames.js'
import { CryptoRandom } from '../random.js'
import { nullLogger, type Logger } from '../logger.js'
import { PilotError } from '../errors.js'
import type { PacketBind, UdpEndpoint } from './bind.js'
import type { Peer, PeerInfo } from './peer.js'
import { PeerTable, lastTrafficMs } from './peer-table.js'
import { DEFAULT_LIMITS, type TunnelLimits } from './limits.js'
import type { PacketHandler, TunnelOptions } from './tunnel-options.js'
import { DEFAULT_TIMING, systemScheduler, type TunnelScheduler, type TunnelTiming } from './timing.js'
import { newDropCounters, newTunnelCounters, type DropCounters, type DropReason, type TunnelCounters, type TunnelStats } from './stats.js'
import { DATA_OFFSET, KdfChooser } from './kdf.js'
import { KeyExchange, type KeyExchangePort } from './key-exchange.js'
import { PathManager, type PathChangeHandler, type PathPort } from './paths.js'
import { BeaconClient, type BeaconClientPort } from './beacon-client.js'
import { SessionRecovery, type RecoveryPort } from './recovery.js'
import { SendQueue } from './send-queue.js'
import { FrameSender } from './frame-sender.js'
import { EarlyFrames } from './early-frames.js'
import { PeerPrefetch } from './prefetch.js'

export { PILA_CAPABILITY_HKDF, type KdfMode } from './kdf.js'
export { RECOVERY_AUTH_FAILURES } from './recovery.js'
export type { PathChangeHandler } from './paths.js'
export type { DropReason }
export type { PacketHandler, TunnelOptions } from './tunnel-options.js'
export type { TunnelLimits } from './limits.js'

/** Accepted RTT samples (ms); anything else is ignored. */
const MAX_RTT_SAMPLE_MS = 120_000

export class Tunnel {
  readonly nodeId: number
  private readonly bind: PacketBind
  private readonly logger: Logger
  private readonly timing: TunnelTiming
  private readonly limits: TunnelLimits
  private readonly scheduler: TunnelScheduler
  private readonly kdf: KdfChooser
  private readonly keys: KeyExchange
  private readonly paths: PathManager
  private readonly beacon: BeaconClient
  private readonly recovery: SessionRecovery
  private readonly queue: SendQueue
  private readonly sender: FrameSender
  private readonly peerTable: PeerTable
  /** PILS from nodes whose PILA waits for its registry key (early-frames.ts). */
  private readonly early = new EarlyFrames()
  private packetHandler: PacketHandler | null = null
  private readonly drops: DropCounters = newDropCounters()
  private readonly counters: TunnelCounters = newTunnelCounters()
  private readonly rxHeader = new PacketHeader()
  private rotatePending = false
  private readonly prefetcher: PeerPrefetch
  private timer: unknown = null
  private started = false
  private closed = false

  // Handlers bound once per object (undici habit), never per packet.
  private readonly onDatagramBound = (data: Buffer, host: string, port: number): void => this.receive(data, host, port)
  private readonly onTickBound = (): void => this.tick()
  /** The pieces' one way back into the tunnel. */
  private readonly port: KeyExchangePort & PathPort & RecoveryPort & BeaconClientPort = {
    acceptPila: (sender, frame, host, port, relayed, now) => this.acceptPila(sender, frame, host, port, relayed, now),
    keyUnknown: (nodeId) => this.dropKeylessPeer(nodeId),
    pilaSettled: (nodeId) => this.releaseEarly(nodeId),
    sendKeyFrame: (peer, now) => this.sendKeyFrame(peer, now),
    sendKeyFrameTo: (host, port) => this.sender.keyFrameTo(host, port),
    sendKeyFrameRelayed: (to) => this.sender.keyFrameRelayed(to),
    keySent: (peer, now) => this.markKeySent(peer, now),
    isCurrent: (peer) => !this.closed && this.peerTable.get(peer.nodeId) === peer,
    resolveIfIdle: (peer) => {
      if (!peer.resolving) this.paths.startResolve(peer)
    },
    prefetchKey: (nodeId) => this.keys.prefetchKey(nodeId, 'remote'),
    onRelayed: (frame, host, port, sender) => this.onFrame(classifyDatagram(frame), frame, host, port, true, sender),
    onPunchCommand: (host, port, now) => this.paths.notePunchCommand(host, port, now, this.peerTable.values()),
  }

  constructor(opts: TunnelOptions) {
    if (!Number.isInteger(opts.nodeId) || opts.nodeId <= 0 || opts.nodeId > 0xffffffff) {
      throw new PilotError('PT_CONFIG_INVALID', `tunnel node ID ${opts.nodeId} is not a registered u32 node ID`)
    }
    this.nodeId = opts.nodeId
    this.bind = opts.bind
    this.logger = opts.logger ?? nullLogger
    this.timing = { ...DEFAULT_TIMING, ...opts.timing }
    if (opts.directStaleMs !== undefined) this.timing.directStaleMs = opts.directStaleMs
    this.limits = { ...DEFAULT_LIMITS, ...opts.limits }
    this.scheduler = opts.scheduler ?? systemScheduler
    this.peerTable = new PeerTable(this.limits)
    const { nodeId, logger, timing, limits, scheduler, drops, counters, port } = this
    this.kdf = new KdfChooser(opts.kdf ?? 'auto', logger)
    this.queue = new SendQueue(opts.maxQueuedPerPeer ?? 64, opts.maxQueuedPeers ?? 256)
    this.keys = new KeyExchange({
      nodeId,
      identity: opts.identity,
      kdf: this.kdf,
      random: opts.random ?? new CryptoRandom(),
      directory: opts.directory,
      clock: scheduler,
      logger,
      timing,
      limits,
      drops,
      port,
    })
    this.beacon = new BeaconClient({
      nodeId,
      beacon: opts.beacon,
      bind: this.bind,
      clock: scheduler,
      keepaliveMs: timing.beaconKeepaliveMs,
      punchLimits: { ...limits, punchTargetIntervalMs: timing.punchTargetIntervalMs },
      drops,
      counters,
      port,
    })
    this.sender = new FrameSender({ nodeId, bind: this.bind, beacon: this.beacon, keys: this.keys, clock: scheduler, counters, drops })
    const hasRelay = this.beacon.endpoint !== null
    this.paths = new PathManager({ directory: opts.directory, hasRelay, timing, clock: scheduler, logger, drops, port })
    this.recovery = new SessionRecovery({
      nodeId,
      hasRelay,
      timing,
      maxPerSecond: opts.maxRecoveryPerSecond ?? 20,
      clock: scheduler,
      logger,
      counters,
      port,
    })
    this.prefetcher = new PeerPrefetch(
      {
        knowsKey: (n) => this.keys.knowsKey(n),
        hasPeer: (n) => n === this.nodeId || this.peerTable.get(n) !== undefined,
        fetch: (n) => {
          this.keys.prefetchKey(n, 'prefetch')
          this.paths.prefetch(n)
        },
      },
      Math.floor(this.limits.maxKeyLookups / 2),
    )
    this.bind.onDatagram(this.onDatagramBound)
  }

  // ------------------------------------------------------------------ upward API

  onPacket(handler: PacketHandler | null): void {
    this.packetHandler = handler
  }

  onPathChange(handler: PathChangeHandler | null): void {
    this.paths.onChange(handler)
  }

  /** Our public endpoint as the beacon last reported it (DiscoverReply), if any. */
  get publicEndpoint(): UdpEndpoint | null {
    return this.beacon.publicEndpoint
  }

  get local(): UdpEndpoint {
    return this.bind.local
  }

  /** Our current X25519 public key (for tests and diagnostics). */
  get x25519PublicKey(): Uint8Array {
    return this.keys.publicKey
  }

  /** Starts the housekeeping tick and announces us to the beacon. */
  start(): void {
    if (this.started || this.closed) return
    this.started = true
    this.timer = this.scheduler.setInterval(this.onTickBound, this.timing.tickMs)
    this.beacon.discover(this.scheduler.now())
    this.keys.warmUp()
  }

  /**
   * Nodes we expect to talk to (the daemon's trusted peers, at start and when trust is made):
   * their registry keys are fetched and their endpoints resolved now, in the background, so a
   * first packet either way needs no registry round trip (prefetch.ts). At most
   * `maxKeyLookups / 2` nodes per call, so set-ups and strangers' lookups keep room. Returns how
   * many were asked for.
   */
  prefetchPeers(nodeIds: Iterable<number>): number {
    if (this.closed) return 0
    return this.prefetcher.prefetch(nodeIds, this.scheduler.now())
  }

  /** Stops the timer, drops every peer and closes the bind. */
  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    if (this.timer !== null) this.scheduler.clearInterval(this.timer)
    this.timer = null
    this.peerTable.clear()
    this.keys.close()
    this.queue.clear()
    this.early.clear()
    await this.bind.close()
  }

  /**
   * Sends one complete encoded Pilot packet (header with CRC + payload) to
   * `peerNodeId`: sealed as PILS at once if keys exist, otherwise copied into
   * the peer's queue (flushed when the key exchange completes) and path set-up
   * starts. A node the registry has no key for gets no peer (`unregistered-peer`), and
   * neither does one whose key is not cached while the lookups are all busy (`lookup-busy`).
   * Drops are counted in `stats()`.
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
    if (peer === undefined) {
      const admission = this.keys.admitPeer(peerNodeId)
      if (admission !== 'ok') {
        this.drops[admission === 'busy' ? 'lookup-busy' : 'unregistered-peer']++
        return
      }
      peer = this.createPeer(peerNodeId)
    }
    if (peer.ready) {
      this.sealAndSend(peer, packet)
      return
    }
    peer.lastActiveMs = this.scheduler.now()
    const dropped = this.queue.push(peerNodeId, packet)
    if (dropped !== null) {
      this.drops[dropped]++
      if (dropped === 'queue-overflow') peer.dropQueueOverflow++
    }
    if (peer.setupStartedMs === 0) this.startSetup(peer)
  }

  peers(): PeerInfo[] {
    const out: PeerInfo[] = []
    for (const p of this.peerTable.values()) out.push(p.info(this.queue.size(p.nodeId)))
    return out
  }

  peer(nodeId: number): PeerInfo | null {
    return this.peerTable.get(nodeId)?.info(this.queue.size(nodeId)) ?? null
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
    if (peer !== undefined) this.paths.refresh(peer, this.scheduler.now())
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

  /**
   * Trust revoked: forget the peer's session, endpoint, queue and cached registry key (its
   * replay state stays remembered, peer-table.ts).
   */
  forget(peerNodeId: number): void {
    const peer = this.peerTable.get(peerNodeId)
    if (peer !== undefined) this.removePeer(peer, 'peer-expired')
    this.keys.forget(peerNodeId)
    this.prefetcher.forget(peerNodeId)
    this.drops['no-session'] += this.early.take(peerNodeId).length
  }

  /** Registry lookups in flight, key cache entries, peers, remembered removed peers, nodes with early PILS held (tests, diagnostics). */
  stateSizes(): { keyLookups: number; cachedKeys: number; peers: number; forgottenPeers: number; earlyFrameNodes: number } {
    const { pending, cached } = this.keys.lookupStats
    return { keyLookups: pending, cachedKeys: cached, peers: this.peerTable.size, forgottenPeers: this.peerTable.forgottenCount, earlyFrameNodes: this.early.nodes }
  }

  /**
   * Replaces our X25519 key pair and re-announces it to every peer with keys
   * (done automatically when a nonce sequence nears its limit, §15.3). Packets
   * to a peer queue until its key frame answers our new one.
   */
  rotateKeys(): void {
    if (this.closed) return
    this.rotatePending = false
    this.keys.rotate()
    this.counters.keyRotations++
    const now = this.scheduler.now()
    for (const peer of this.peerTable.values()) {
      if (this.keys.rekeyPeer(peer)) this.sendKeyFrame(peer, now)
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
          this.beacon.handle(data, host, port)
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
        this.keys.receivePila(frame, host, port, relayed, relaySender)
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
      if (this.keys.isParked(sender)) {
        // Its PILA waits for the registry's key: this frame follows it (the first SYN, say).
        // Held and opened once the PILA is accepted, instead of a retransmit timeout later.
        const dropped = this.early.hold(sender, frame, host, port, relayed)
        this.drops['no-session'] += dropped < 0 ? 1 : dropped
        return
      }
      // It holds keys for us that we do not (we restarted, or forgot it): tell it ours.
      this.drops['no-session']++
      this.recovery.noSession(sender, frame.length, host, port, relayed)
      return
    }
    const prefix = readU32(frame, 8)
    const counter = readNonceCounter(frame, 8)
    if (!peer.replay.check(prefix, counter)) {
      this.drops.replay++
      peer.dropReplay++
      return
    }
    const n = this.kdf.open(peer, sender, frame)
    if (n < 0) {
      this.drops['auth-failed']++
      peer.dropAuthFailed++
      this.recovery.authFailed(peer, frame.length, host, port, relayed)
      return
    }
    this.recovery.authenticated(peer)
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
    if (relayed) this.paths.noteRelayed(peer, now)
    else this.paths.noteDirectPils(peer, host, port, now)
    const handler = this.packetHandler
    if (handler !== null) handler(plain.subarray(0, HEADER_SIZE + h.payloadLength), sender, h)
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

  /** A PILA verified against the registry key (§5.7 steps 5–8, hardened). */
  private acceptPila(sender: number, frame: Buffer, host: string, port: number, relayed: boolean, now: number): void {
    const existing = this.peerTable.get(sender)
    const peer = existing ?? this.createPeer(sender)
    const changed = this.keys.peerKeyChanged(peer, frame)
    if (changed && this.keys.isRetiredKey(peer, frame)) {
      // A key the peer had before (a capture replayed after its restart): taking it back would
      // reset the replay windows and let its old PILS open again.
      this.drops['pila-retired-key']++
      if (existing === undefined) this.removePeer(peer, 'peer-expired')
      return
    }
    const wasCurrent = peer.peerKeyCurrent
    if (changed && !this.keys.adoptPeerKey(peer, frame)) {
      if (existing === undefined) this.removePeer(peer, 'peer-expired')
      return
    }
    peer.peerKeyCurrent = true
    peer.lastReceiveMs = now
    peer.silentSinceMs = 0
    peer.silenceRekeyBackoffMs = 0
    this.counters.keyFramesAccepted++
    if (peer.setupStartedMs === 0) peer.setupStartedMs = now
    if (peer.keyProbeMs !== 0 && peer.rttMs < 0) peer.recordRtt(now - peer.keyProbeMs, true)
    let upgraded = false
    if (relayed) this.paths.noteRelayed(peer, now)
    else upgraded = this.paths.noteDirectPila(peer, host, port, changed, now)
    // Reply when the peer is new, its key changed, our key changed since its last frame, or a relayed
    // path just became direct. A repeated PILA with an unchanged key is answered too, but at most
    // once per keyRetryMs: senders repeat key frames only while they lack ours (Go: one per packet
    // while it has no session; us: retries, or after forget()), so one answer un-sticks them, and
    // the rate limit ends the Go-style three-frame exchange and makes replayed PILAs cheap.
    if (changed || !wasCurrent || upgraded || now - peer.keySentMs >= this.timing.keyRetryMs) {
      this.sendKeyFrame(peer, now)
    }
    if (peer.ready) this.flush(peer)
  }

  // ------------------------------------------------------------------ send path

  /** A new peer; at `maxPeers` the one idle longest makes room. */
  private createPeer(nodeId: number): Peer {
    if (this.peerTable.full) {
      const victim = this.peerTable.idlest()
      if (victim !== undefined) {
        this.removePeer(victim, 'peer-expired')
        this.counters.peersEvicted++
      }
    }
    const peer = this.peerTable.add(nodeId, this.scheduler.now())
    this.kdf.choose(peer)
    return peer
  }

  /**
   * Removes a peer; the packets still queued for it are dropped under `queuedDrop`. Its key and
   * replay state are remembered (peer-table.ts).
   */
  private removePeer(peer: Peer, queuedDrop: DropReason): void {
    this.keys.retireSequence(peer)
    const queued = this.queue.size(peer.nodeId)
    if (queued > 0) {
      this.drops[queuedDrop] += queued
      this.queue.delete(peer.nodeId)
    }
    // A remembered peer pushed out loses its replay protection: rotate, so its old frames no longer open.
    if (this.peerTable.remove(peer)) this.rotatePending = true
  }

  /** The node's parked PILA was checked: the PILS held meanwhile are opened now (or dropped, no session). */
  private releaseEarly(nodeId: number): void {
    const held = this.early.take(nodeId)
    if (held.length === 0) return
    const peer = this.peerTable.get(nodeId)
    if (peer === undefined || peer.sendSeq === null) {
      this.drops['no-session'] += held.length
      return
    }
    for (const f of held) this.onPils(f.frame, f.host, f.port, f.relayed, nodeId)
  }

  /** The registry has no key for the node: a peer we were setting up for it goes, with its queue. */
  private dropKeylessPeer(nodeId: number): void {
    const peer = this.peerTable.get(nodeId)
    if (peer !== undefined && peer.peerX25519 === null && peer.restoredKey === null) this.removePeer(peer, 'unregistered-peer')
  }

  /** First need of a peer: PunchRequest at once, key prefetch, PILA to its last known endpoint, resolve → PILA direct. */
  private startSetup(peer: Peer): void {
    const now = this.scheduler.now()
    peer.setupStartedMs = now
    if (this.beacon.requestPunch(peer.nodeId)) peer.punchRequestedMs = now
    this.keys.prefetchKey(peer.nodeId)
    this.paths.useLastKnown(peer)
    if (peer.endpoint !== null || peer.path === 'relay') this.sendKeyFrame(peer, now)
    this.paths.startResolve(peer)
  }

  /** Seals the packets queued for a peer that has just become ready. */
  private flush(peer: Peer): void {
    const q = this.queue.take(peer.nodeId)
    if (q === undefined) return
    for (const packet of q) this.sealAndSend(peer, packet)
  }

  private sealAndSend(peer: Peer, packet: Uint8Array): void {
    if (this.sender.seal(peer, packet)) this.rotatePending = true
  }

  /** Our PILA on the peer's path; once it went out, the peer counts as having our key. */
  private sendKeyFrame(peer: Peer, now: number): void {
    if (this.sender.keyFrame(peer)) this.markKeySent(peer, now)
  }

  private markKeySent(peer: Peer, now: number): void {
    peer.keySentMs = Math.max(1, now)
    if (!peer.peerKeyCurrent && peer.keyProbeMs === 0) peer.keyProbeMs = peer.keySentMs
    if (peer.ready) this.flush(peer)
  }

  // ------------------------------------------------------------------ housekeeping

  /** One tick: beacon keepalive, key retries, then each piece's share per peer. */
  tick(): void {
    if (this.closed) return
    try {
      const now = this.scheduler.now()
      this.beacon.discoverIfDue(now)
      if (this.rotatePending) this.rotateKeys()
      this.prefetcher.tick(now)
      const keyRetryMs = this.timing.keyRetryMs
      const idleMs = this.timing.peerIdleMs
      for (const peer of this.peerTable.values()) {
        const traffic = peer.packetsIn + peer.packetsOut
        if (traffic !== peer.activityMark) {
          peer.activityMark = traffic
          peer.lastActiveMs = now
        }
        if (now - lastTrafficMs(peer) >= idleMs) {
          this.removePeer(peer, 'peer-expired') // deleting the entry being visited is safe for a Map
          this.counters.peersExpired++
          continue
        }
        if (!peer.ready && this.queue.has(peer.nodeId) && now - peer.keySentMs >= keyRetryMs) {
          if (!peer.resolveStarted) this.paths.startResolve(peer)
          if (peer.endpoint !== null || peer.path === 'relay') this.sendKeyFrame(peer, now)
        }
        this.paths.tick(peer, now)
        this.recovery.tick(peer, now)
      }
    } catch (err) {
      this.drops['internal-error']++
      this.logger.error('tunnel tick failed', { error: String(err), stack: (err as Error)?.stack })
    }
  }
}
