/**
 * How frames leave the tunnel: a packet sealed as PILS for a ready peer (docs/wire.md §5.6),
 * and any frame, PILS or our PILA, on the peer's path: through the beacon relay, or to its
 * direct endpoint, with a copy to its pending endpoint while one is open (a PILA with a new key
 * came from there, paths.ts).
 *
 * Holds no state of its own; writes only the send side of a `Peer` (nonce, counters, the
 * silence marks recovery.ts and paths.ts read) and adds to the tunnel's counters.
 */
import { TAG_SIZE } from '../crypto/index.js'
import { writeU32 } from '../bytes.js'
import { Magic } from '../protocol/tunnel-frames.js'
import type { PacketBind } from './bind.js'
import type { BeaconClient } from './beacon-client.js'
import type { KeyExchange } from './key-exchange.js'
import type { Peer } from './peer.js'
import { DATA_OFFSET, sealingCipher } from './kdf.js'
import type { TunnelScheduler } from './timing.js'
import type { DropCounters, TunnelCounters } from './stats.js'

export interface FrameSenderOptions {
  nodeId: number
  bind: Pick<PacketBind, 'send' | 'reserve'>
  beacon: Pick<BeaconClient, 'sendRelayed'>
  keys: Pick<KeyExchange, 'copyPila'>
  clock: Pick<TunnelScheduler, 'now'>
  counters: TunnelCounters
  drops: DropCounters
}

export class FrameSender {
  private readonly nodeId: number
  private readonly bind: Pick<PacketBind, 'send' | 'reserve'>
  private readonly counters: TunnelCounters

  constructor(private readonly opts: FrameSenderOptions) {
    this.nodeId = opts.nodeId
    this.bind = opts.bind
    this.counters = opts.counters
  }

  /**
   * Seals one packet for a ready peer (`sendSeq` set) and sends it on the peer's path. Returns
   * true when the peer's nonce sequence nears its end: our key pair must rotate (§15.3).
   */
  seal(peer: Peer, packet: Uint8Array): boolean {
    const len = packet.length
    const size = DATA_OFFSET + len + TAG_SIZE
    const seq = peer.sendSeq!
    seq.next(peer.nonce, 0) // first: it throws when the nonces run out, and a reserved slot must be filled
    // The common case, one direct endpoint: build the frame in the bind's batch (no copy).
    const ep = peer.path === 'relay' || peer.pendingEndpoint !== null ? null : peer.endpoint
    const room = ep === null || this.bind.reserve === undefined ? null : this.bind.reserve(size, ep.host, ep.port)
    const out = room ?? Buffer.allocUnsafe(size)
    writeU32(out, 0, Magic.PILS)
    writeU32(out, 4, this.nodeId)
    out.set(peer.nonce, 8)
    sealingCipher(peer).sealFrame(this.nodeId, peer.nonce, packet, out, DATA_OFFSET)
    peer.packetsOut++
    peer.bytesOut += len
    this.counters.packetsOut++
    if (peer.silentSinceMs === 0) {
      const now = this.opts.clock.now()
      peer.silentSinceMs = now
      if (peer.unansweredSinceMs === 0 && (peer.path === 'direct' || peer.path === 'punched')) peer.unansweredSinceMs = now
    } else if (peer.unansweredSinceMs === 0 && (peer.path === 'direct' || peer.path === 'punched')) {
      peer.unansweredSinceMs = this.opts.clock.now()
    }
    if (room === null) this.send(peer, out as Buffer)
    return seq.needsRekey
  }

  /** Sends a complete frame on the peer's current path; `frame` is handed over to the bind. False = no path (counted). */
  send(peer: Peer, frame: Buffer): boolean {
    if (peer.path === 'relay') {
      this.opts.beacon.sendRelayed(frame, peer.nodeId)
      return true
    }
    const ep = peer.endpoint
    if (ep !== null) {
      this.bind.send(frame, ep.host, ep.port)
      // The frame is not modified after this; both sends may read it.
      const pending = peer.pendingEndpoint
      if (pending !== null) this.bind.send(frame, pending.host, pending.port)
      return true
    }
    this.opts.drops['no-path']++
    return false
  }

  /** Our PILA (a copy) on the peer's path. True if it went out (counted as a key frame sent). */
  keyFrame(peer: Peer): boolean {
    if (!this.send(peer, this.opts.keys.copyPila())) return false
    this.counters.keyFramesSent++
    return true
  }

  /** Our PILA (a copy) straight to host:port. */
  keyFrameTo(host: string, port: number): void {
    this.bind.send(this.opts.keys.copyPila(), host, port)
    this.counters.keyFramesSent++
  }

  /** Our PILA (a copy) through the beacon relay to node `to`. */
  keyFrameRelayed(to: number): void {
    this.opts.beacon.sendRelayed(this.opts.keys.copyPila(), to)
    this.counters.keyFramesSent++
  }
}
