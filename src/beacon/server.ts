/**
 * The beacon (docs/wire.md §9): tells daemons the UDP endpoint it sees them at,
 * introduces two nodes for hole punching, and relays tunnel frames between
 * nodes that cannot reach each other directly. One UDP socket, no timers.
 *
 * Inputs, per datagram (`handleDatagram`, called by the bind):
 *   Discover(id)            → DiscoverReply(observed endpoint); id ≠ 0 is recorded.
 *   PunchRequest(req, tgt)  → records req; PunchCommand(tgt's endpoint) to req and
 *                             PunchCommand(req's endpoint) to tgt; unknown tgt is dropped.
 *   (recording)             → a node ID belongs to the endpoint that first announced it
 *                             until its entry expires; that endpoint's Discovers extend
 *                             it, a claim from any other endpoint is refused and counted
 *                             (`node-id-held`; a Discover is still answered). Nothing in
 *                             these messages is signed (§9.2), so first come is all a
 *                             beacon can go by; the reference lets anyone move any node.
 *   Relay(snd, dst, frame)  → RelayDeliver(snd, frame) to dst's endpoint, only when the
 *                             datagram comes from the endpoint snd last announced
 *                             (hardening of §17 item 12: the reference relays for anyone).
 *   anything else           → dropped and counted; nothing throws out of the handler.
 *
 * Clustered (`cluster` set, docs/wire.md §9.7), from known peer beacons only:
 *   Sync(beacon, ids)       → those IDs are reached through that peer (cluster-state.ts).
 *   Relay to a learned ID   → the Relay forwarded unchanged to the peer that holds it.
 *   Relay from a peer       → RelayDeliver to a local destination (never forwarded on).
 *   PunchRequest for a learned target → PeerPunch(requester's endpoint) to its peer;
 *   PeerPunch               → PunchCommand(requester) to the local target, PeerPunchReply back;
 *   PeerPunchReply          → PunchCommand(target) to the local requester.
 * `syncPeers()` (called every 10 s by cluster.ts) sends our local IDs to every peer.
 *
 * Order per datagram: size, per-source rate limit, parse, state lookups, send.
 * Expired nodes and idle rate buckets are swept at most once a second from the
 * same path, so the server owns no timer and a test can run several.
 */
import { readU32 } from '../bytes.js'
import { DecodeError } from '../errors.js'
import { nullLogger, type Logger } from '../logger.js'
import { formatHostPort } from '../protocol/host-port.js'
import {
  BeaconType,
  RELAY_DELIVER_HEADER_SIZE,
  RELAY_HEADER_SIZE,
  decodeBeaconMessage,
  writeRelayDeliverHeader,
} from '../protocol/beacon-messages.js'
import type { DatagramHandler, PacketBind, UdpEndpoint } from '../tunnel/bind.js'
import {
  ClusterType,
  SYNC_IDS_PER_DATAGRAM,
  decodePeerPunch,
  decodeSyncPart,
  encodePeerPunch,
  encodeSyncRound,
} from '../protocol/beacon-cluster-messages.js'
import type { ClusterState, PeerBeacon } from './cluster-state.js'
import { BeaconError, BeaconErrorCode } from './errors.js'
import { resolveBeaconLimits, type BeaconLimits } from './limits.js'
import { NodeTable, encodeEndpointMessages, type NodeEntry } from './node-table.js'
import { SourceRateLimiter } from './rate-limiter.js'
import { BeaconCounters, type BeaconDropReason, type BeaconStats } from './stats.js'

export interface BeaconServerOptions {
  /** The UDP socket; the server owns it from here on and closes it in `close()`. */
  bind: PacketBind
  logger?: Logger
  /** Monotonic milliseconds. Default `performance.now()`. */
  now?: () => number
  limits?: Partial<BeaconLimits>
  /** Peer beacons and what they hold (docs/wire.md §9.7); without it the beacon stands alone. */
  cluster?: ClusterState
  /** Node IDs per Sync datagram (default 343: one 1,391-byte datagram). */
  syncIdsPerDatagram?: number
}

const SWEEP_INTERVAL_MS = 1000

/** Why `record` stored nothing; each is also the drop reason counted. */
type RecordRefusal = 'node-id-held' | 'table-full' | 'bad-source-address'
/** RelayDeliver is written over the tail of the Relay header: `05 sss ddd frame` → `.... 06 sss frame`. */
const RELAY_DELIVER_OFFSET = RELAY_HEADER_SIZE - RELAY_DELIVER_HEADER_SIZE

function monotonicNow(): number {
  return performance.now()
}

export class BeaconServer {
  readonly limits: Readonly<BeaconLimits>
  private readonly bind: PacketBind
  private readonly logger: Logger
  private readonly now: () => number
  private readonly nodes: NodeTable
  private readonly limiter: SourceRateLimiter
  private readonly counters = new BeaconCounters()
  /** Bound once: the bind calls it per datagram. */
  private readonly onDatagram: DatagramHandler
  private lastSweep: number
  private readonly cluster: ClusterState | null
  private readonly syncIdsPerDatagram: number
  private syncRound = 0
  private state: 'new' | 'running' | 'closed' = 'new'

  constructor(opts: BeaconServerOptions) {
    this.limits = Object.freeze(resolveBeaconLimits(opts.limits))
    this.bind = opts.bind
    this.logger = (opts.logger ?? nullLogger).child({ component: 'beacon' })
    this.now = opts.now ?? monotonicNow
    this.nodes = new NodeTable(this.limits.maxNodes, this.limits.nodeTtlMs, this.limits.evictableAfterMs)
    this.limiter = new SourceRateLimiter(this.limits)
    this.onDatagram = this.handleDatagram.bind(this)
    this.cluster = opts.cluster ?? null
    this.syncIdsPerDatagram = opts.syncIdsPerDatagram ?? SYNC_IDS_PER_DATAGRAM
    this.lastSweep = this.now()
  }

  /** The endpoint the socket is bound to. */
  get local(): UdpEndpoint {
    return this.bind.local
  }

  /** Starts answering datagrams from the bind. */
  start(): void {
    if (this.state !== 'new') throw new BeaconError(BeaconErrorCode.BAD_STATE, `cannot start a beacon that is ${this.state}`)
    this.state = 'running'
    this.bind.onDatagram(this.onDatagram)
  }

  /** Stops answering and closes the bind. Idempotent. */
  async close(): Promise<void> {
    if (this.state === 'closed') return
    this.state = 'closed'
    await this.bind.close()
  }

  stats(): BeaconStats {
    this.nodes.sweep(this.now())
    const c = this.counters
    return {
      datagrams: c.datagrams,
      received: { ...c.received },
      sent: { ...c.sent },
      dropped: { ...c.dropped },
      nodes: this.nodes.size,
      nodesEvicted: this.nodes.evicted,
      nodesExpired: this.nodes.expired,
      sources: this.limiter.size,
      sourcesEvicted: this.limiter.evicted,
      relayedPackets: c.relayedPackets,
      relayedBytes: c.relayedBytes,
      cluster: this.cluster === null
        ? null
        : { beaconId: this.cluster.beaconId, peers: this.cluster.peerCount, learnedNodes: this.cluster.learnedCount(this.now()), forwardedRelays: c.forwardedRelays },
    }
  }

  /**
   * Sends a Sync round (our live node IDs) to every peer beacon; the cluster driver calls it
   * every 10 s. Returns the datagrams sent.
   */
  syncPeers(): number {
    const cluster = this.cluster
    if (cluster === null || this.state !== 'running') return 0
    const now = this.now()
    cluster.sweep(now)
    const peers = cluster.listPeers()
    if (peers.length === 0) return 0
    this.syncRound = (this.syncRound + 1) >>> 0
    const datagrams = encodeSyncRound(cluster.beaconId, this.nodes.liveIds(now), this.syncRound, this.syncIdsPerDatagram)
    for (const p of peers) for (const d of datagrams) this.bind.send(d, p.host, p.port)
    this.counters.sent.sync += datagrams.length * peers.length
    return datagrams.length * peers.length
  }

  /**
   * One received datagram from `host:port`. Takes ownership of `data` (a Relay
   * is rewritten into a RelayDeliver in place). Never throws.
   */
  handleDatagram(data: Uint8Array, host: string, port: number): void {
    if (this.state === 'closed') return
    this.counters.datagrams++
    if (data.length === 0) {
      this.drop('empty')
      return
    }
    const now = this.now()
    if (now - this.lastSweep >= SWEEP_INTERVAL_MS) {
      this.lastSweep = now
      this.nodes.sweep(now)
      this.limiter.sweep(now)
    }
    try {
      if (data[0] === BeaconType.RELAY) this.handleRelay(data, host, port, now)
      else this.handleControl(data, host, port, now)
    } catch (err) {
      if (err instanceof DecodeError) {
        this.drop('malformed')
      } else {
        this.drop('internal-error')
        this.logger.error('beacon handler failed', { error: err instanceof Error ? err.message : String(err), from: host, port })
      }
    }
  }

  private handleControl(data: Uint8Array, host: string, port: number, now: number): void {
    const r = this.counters.received
    if (!this.limiter.allowControl(host, now) && this.cluster?.peerAt(host, port) === undefined) {
      this.drop('rate-limited-control')
      return
    }
    switch (data[0]) {
      case BeaconType.DISCOVER: {
        r.discover++
        const msg = decodeBeaconMessage(data)
        if (msg.type === BeaconType.DISCOVER) this.handleDiscover(msg.nodeId, host, port, now)
        return
      }
      case BeaconType.PUNCH_REQUEST: {
        r.punchRequest++
        const msg = decodeBeaconMessage(data)
        if (msg.type === BeaconType.PUNCH_REQUEST) this.handlePunchRequest(msg.requesterId, msg.targetId, host, port, now)
        return
      }
      case BeaconType.DISCOVER_REPLY:
        r.discoverReply++
        this.drop('not-for-beacon')
        return
      case BeaconType.PUNCH_COMMAND:
        r.punchCommand++
        this.drop('not-for-beacon')
        return
      case BeaconType.RELAY_DELIVER:
        r.relayDeliver++
        this.drop('not-for-beacon')
        return
      case BeaconType.SYNC:
        r.sync++
        this.handleSync(data, host, port, now)
        return
      case ClusterType.PEER_PUNCH:
      case ClusterType.PEER_PUNCH_REPLY:
        r.peerPunch++
        this.handlePeerPunch(data, host, port, now)
        return
      default:
        r.other++
        this.drop(data[0]! >= 0x10 ? 'tunnel-frame' : 'unknown-type')
    }
  }

  private handleDiscover(nodeId: number, host: string, port: number, now: number): void {
    // Node 0 is pre-registration discovery from a temporary socket (§9.3 step 2): answered,
    // nothing remembered. A refused claim is answered the same way: the sender learns only
    // its own endpoint, and a real node that rebinds learns its new one.
    const entry = nodeId === 0 ? null : this.record(nodeId, host, port, now)
    if (entry === 'bad-source-address') return
    let reply: Uint8Array
    if (entry !== null && typeof entry !== 'string') {
      reply = entry.discoverReply
    } else {
      const messages = encodeEndpointMessages(host, port)
      if (messages === null) {
        this.drop('bad-source-address')
        return
      }
      reply = messages.discoverReply
    }
    this.bind.send(reply, host, port)
    this.counters.sent.discoverReply++
  }

  private handlePunchRequest(requesterId: number, targetId: number, host: string, port: number, now: number): void {
    if (requesterId === 0) {
      this.drop('punch-bad-requester')
      return
    }
    const requester = this.record(requesterId, host, port, now)
    if (typeof requester === 'string') return
    if (targetId === requesterId) {
      this.drop('punch-self')
      return
    }
    const target = this.nodes.lookup(targetId, now)
    if (target === undefined) {
      const peer = this.cluster?.ownerOf(targetId, now)
      if (peer === undefined) {
        this.drop('punch-unknown-target')
        return
      }
      // The target sits on a peer beacon: it punches towards the requester and tells us
      // where the target is (PeerPunchReply), and we tell the requester.
      const msg = encodePeerPunch({ type: ClusterType.PEER_PUNCH, requesterId, targetId, endpoint: { host: requester.host, port: requester.port } })
      this.bind.send(msg, peer.host, peer.port)
      this.counters.sent.peerPunch++
      if (this.logger.debugEnabled) {
        this.logger.debug('punch target on a peer beacon: PeerPunch sent', { requester: requesterId, target: targetId, peer: formatHostPort(peer.host, peer.port) })
      }
      return
    }
    this.bind.send(target.punchCommand, requester.host, requester.port)
    this.bind.send(requester.punchCommand, target.host, target.port)
    this.counters.sent.punchCommand += 2
  }

  /** The hot path: two map lookups, a 5-byte header written in place, one send. */
  private handleRelay(data: Uint8Array, host: string, port: number, now: number): void {
    this.counters.received.relay++
    if (!this.limiter.allowRelay(host, data.length, now) && this.cluster?.peerAt(host, port) === undefined) {
      this.drop('rate-limited-relay')
      return
    }
    if (data.length <= RELAY_HEADER_SIZE) {
      this.drop('malformed')
      return
    }
    const senderId = readU32(data, 1)
    const sender = senderId === 0 ? undefined : this.nodes.lookup(senderId, now)
    if (sender === undefined || sender.port !== port || sender.host !== host) {
      // Not from the sender's own endpoint: maybe a peer beacon forwarding for one of its nodes.
      if (this.cluster !== null && this.cluster.peerAt(host, port) !== undefined) {
        this.deliverRelay(data, senderId, now, true)
        return
      }
    }
    if (sender === undefined) {
      this.drop('relay-unknown-sender')
      return
    }
    if (sender.port !== port || sender.host !== host) {
      this.drop('spoofed-relay')
      if (this.logger.debugEnabled) {
        this.logger.debug('relay refused: sender ID announced from another endpoint', {
          sender: senderId, from: formatHostPort(host, port), recorded: formatHostPort(sender.host, sender.port),
        })
      }
      return
    }
    this.deliverRelay(data, senderId, now, false)
  }

  /** Relay from a checked source: to a local destination, or (from a local node only) on to the peer beacon that holds it. */
  private deliverRelay(data: Uint8Array, senderId: number, now: number, fromPeer: boolean): void {
    const destId = readU32(data, 5)
    const dest = this.nodes.lookup(destId, now)
    if (dest === undefined) {
      const peer = fromPeer ? undefined : this.cluster?.ownerOf(destId, now)
      if (peer === undefined) {
        this.drop('relay-unknown-dest')
        return
      }
      // The reference's rule: the original Relay, unchanged, to the beacon the destination was learned from.
      this.bind.send(data, peer.host, peer.port)
      this.counters.forwardedRelays++
      return
    }
    // The handler owns `data`: overwrite the Relay header's tail with the
    // RelayDeliver header and send the view, so the frame is never copied.
    writeRelayDeliverHeader(data, RELAY_DELIVER_OFFSET, senderId)
    const out = data.subarray(RELAY_DELIVER_OFFSET)
    this.bind.send(out, dest.host, dest.port)
    const c = this.counters
    c.sent.relayDeliver++
    c.relayedPackets++
    c.relayedBytes += out.length - RELAY_DELIVER_HEADER_SIZE
  }

  /**
   * `nodeId` announced from `host:port`: refreshes its entry, or creates one if the ID is
   * free. Otherwise the claim is refused, counted, and the reason returned: the ID is held
   * by a live entry at another endpoint, the table is full of live nodes, or the source
   * address cannot be encoded.
   */
  private record(nodeId: number, host: string, port: number, now: number): NodeEntry | RecordRefusal {
    const existing = this.nodes.lookup(nodeId, now)
    if (existing !== undefined) {
      if (existing.port === port && existing.host === host) {
        this.nodes.refresh(nodeId, existing, now)
        return existing
      }
      this.drop('node-id-held')
      if (this.logger.debugEnabled) {
        this.logger.debug('claim refused: node ID held by another endpoint', {
          node: nodeId, from: formatHostPort(host, port), holder: formatHostPort(existing.host, existing.port),
        })
      }
      return 'node-id-held'
    }
    const messages = encodeEndpointMessages(host, port)
    if (messages === null) {
      this.drop('bad-source-address')
      return 'bad-source-address'
    }
    const entry = this.nodes.set(nodeId, host, port, messages, now)
    if (entry === null) {
      this.drop('table-full')
      return 'table-full'
    }
    if (this.logger.debugEnabled) this.logger.debug('node announced', { node: nodeId, endpoint: formatHostPort(host, port) })
    return entry
  }

  private handleSync(data: Uint8Array, host: string, port: number, now: number): void {
    if (this.cluster === null) {
      this.drop('sync-unsupported')
      return
    }
    const peer = this.cluster.peerAt(host, port)
    if (peer === undefined) {
      this.drop('not-a-peer')
      return
    }
    const outcome = this.cluster.onSync(peer, decodeSyncPart(data), now)
    if (outcome === 'self') this.drop('sync-from-self')
    else if (outcome === 'truncated') this.drop('sync-truncated')
  }

  private handlePeerPunch(data: Uint8Array, host: string, port: number, now: number): void {
    const peer: PeerBeacon | undefined = this.cluster?.peerAt(host, port)
    if (peer === undefined) {
      this.drop(this.cluster === null ? 'unknown-type' : 'not-a-peer')
      return
    }
    const msg = decodePeerPunch(data)
    const endpointMessages = encodeEndpointMessages(msg.endpoint.host, msg.endpoint.port)
    if (endpointMessages === null) {
      this.drop('bad-source-address')
      return
    }
    if (msg.type === ClusterType.PEER_PUNCH) {
      const target = this.nodes.lookup(msg.targetId, now)
      if (target === undefined) {
        this.drop('punch-unknown-target')
        return
      }
      this.bind.send(endpointMessages.punchCommand, target.host, target.port)
      this.counters.sent.punchCommand++
      const reply = encodePeerPunch({ type: ClusterType.PEER_PUNCH_REPLY, requesterId: msg.requesterId, targetId: msg.targetId, endpoint: { host: target.host, port: target.port } })
      this.bind.send(reply, host, port)
      this.counters.sent.peerPunch++
      if (this.logger.debugEnabled) this.logger.debug('PeerPunch: target told, PeerPunchReply sent', { requester: msg.requesterId, target: msg.targetId })
      return
    }
    const requester = this.nodes.lookup(msg.requesterId, now)
    if (requester === undefined) {
      this.drop('punch-bad-requester')
      return
    }
    this.bind.send(endpointMessages.punchCommand, requester.host, requester.port)
    this.counters.sent.punchCommand++
    if (this.logger.debugEnabled) this.logger.debug('PeerPunchReply: requester told', { requester: msg.requesterId, target: msg.targetId })
  }

  private drop(reason: BeaconDropReason): void {
    this.counters.dropped[reason]++
  }
}

