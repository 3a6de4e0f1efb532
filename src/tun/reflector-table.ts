/**
 * The reflector's flow table: struct-of-arrays indexed by slot (slot = NAT
 * port − portMin), so a daemon-side packet finds its flow from its
 * destination port alone, and app-side packets find it through a hash of
 * (P, peer port, local port) chained through `hashNext`. A dense list of
 * live slots makes `expire` O(live flows). Unused slots belong to a
 * `NatPortPool` (free or in quarantine).
 *
 * The per-slot arrays are public: the reflector's packet path reads and
 * updates a flow's flags, ports and deadline in place. Only this class adds
 * and removes flows, so the hash, the live list and the pool stay in step.
 * No allocation after construction.
 */
import type { RandomSource } from '../random.js'
import { classifyOverlayIpv6, overlayNetworkAt, overlayNodeAt, type OverlayPrefix } from '../protocol/ipv6-mapping.js'
import { copy16, equal16 } from './packets/ipv6.js'
import { NatPortPool } from './reflector-ports.js'
import { F_LIVE } from './reflector-state.js'

export const FlowKind = { Outbound: 1, Inbound: 2 } as const
export type FlowKind = (typeof FlowKind)[keyof typeof FlowKind]

/** No live flow (from `slotOf`, `find`). */
export const NO_FLOW = -1
/** `add` failed: `maxFlows` are live. */
export const ALLOC_TABLE_FULL = -2
/** `add` failed: every NAT port is live or in quarantine. */
export const ALLOC_EXHAUSTED = -3

export interface FlowTableConfig {
  /** NAT port range, inclusive (checked by the caller). */
  portMin: number
  portMax: number
  /** Live flows at most. */
  maxFlows: number
  /** A removed flow's port waits this long before reuse. */
  quarantineMs: number
  /** Shuffles the initial port order; default ascending. */
  random?: RandomSource
}

export class FlowTable {
  readonly portMin: number
  readonly portMax: number
  readonly maxFlows: number

  // Per slot. `flags` is 0 for a slot without a flow (F_LIVE otherwise).
  readonly flags: Uint8Array
  readonly kind: Uint8Array
  /** P, 16 bytes per slot: always a node address of the prefix. */
  readonly peerAddr: Uint8Array
  readonly peerPort: Uint16Array
  readonly localPort: Uint16Array
  /** Inbound: the daemon socket's port d (0 = not yet known). */
  readonly daemonPort: Uint16Array
  readonly deadline: Float64Array

  private readonly hashNext: Int32Array
  private readonly buckets: Int32Array
  private readonly bucketMask: number
  private readonly live: Int32Array
  private readonly livePos: Int32Array
  private liveCount = 0
  private readonly ports: NatPortPool
  private created = 0
  private expired = 0
  private released = 0

  constructor(config: FlowTableConfig) {
    this.portMin = config.portMin
    this.portMax = config.portMax
    this.maxFlows = config.maxFlows
    const n = this.portMax - this.portMin + 1
    this.flags = new Uint8Array(n)
    this.kind = new Uint8Array(n)
    this.peerAddr = new Uint8Array(n * 16)
    this.peerPort = new Uint16Array(n)
    this.localPort = new Uint16Array(n)
    this.daemonPort = new Uint16Array(n)
    this.deadline = new Float64Array(n)
    this.hashNext = new Int32Array(n).fill(NO_FLOW)
    let buckets = 16
    while (buckets < 2 * Math.min(this.maxFlows, n)) buckets *= 2
    this.buckets = new Int32Array(buckets).fill(NO_FLOW)
    this.bucketMask = buckets - 1
    this.live = new Int32Array(n)
    this.livePos = new Int32Array(n).fill(NO_FLOW)
    this.ports = new NatPortPool(n, config.quarantineMs, config.random)
  }

  get size(): number { return this.liveCount }

  get quarantinedPorts(): number { return this.ports.quarantined }

  get flowsCreated(): number { return this.created }

  get flowsExpired(): number { return this.expired }

  get flowsReleased(): number { return this.released }

  /** The live slot of a NAT port, or NO_FLOW. */
  slotOf(natPort: number): number {
    if (!(natPort >= this.portMin && natPort <= this.portMax)) return NO_FLOW
    const slot = natPort - this.portMin
    return (this.flags[slot]! & F_LIVE) !== 0 ? slot : NO_FLOW
  }

  natPortOf(slot: number): number {
    return this.portMin + slot
  }

  /** The live slot keyed by (P at addr[off..off+16), peer port, local port), or NO_FLOW. */
  find(addr: Uint8Array, off: number, peerPort: number, localPort: number): number {
    let slot = this.buckets[this.hash(addr, off, peerPort, localPort)]!
    while (slot !== NO_FLOW) {
      if (this.peerPort[slot] === peerPort && this.localPort[slot] === localPort && equal16(this.peerAddr, slot * 16, addr, off)) return slot
      slot = this.hashNext[slot]!
    }
    return NO_FLOW
  }

  /**
   * A new flow (flags F_LIVE) on the port free the longest, after ending
   * quarantines due by `now`. Returns its slot, or ALLOC_EXHAUSTED /
   * ALLOC_TABLE_FULL. The caller has checked that the key is not live.
   */
  add(now: number, kind: FlowKind, addr: Uint8Array, off: number, peerPort: number, localPort: number, daemonPort: number, deadline: number): number {
    this.ports.drain(now)
    if (this.ports.free === 0) return ALLOC_EXHAUSTED
    if (this.liveCount >= this.maxFlows) return ALLOC_TABLE_FULL
    const slot = this.ports.take()
    this.flags[slot] = F_LIVE
    this.kind[slot] = kind
    copy16(addr, off, this.peerAddr, slot * 16)
    this.peerPort[slot] = peerPort
    this.localPort[slot] = localPort
    this.daemonPort[slot] = daemonPort
    this.deadline[slot] = deadline
    const b = this.hash(addr, off, peerPort, localPort)
    this.hashNext[slot] = this.buckets[b]!
    this.buckets[b] = slot
    this.livePos[slot] = this.liveCount
    this.live[this.liveCount++] = slot
    this.created++
    return slot
  }

  /** Forgets a live flow now (counted as released); its port goes to quarantine. */
  release(slot: number, now: number): void {
    this.remove(slot, now)
    this.released++
  }

  /** Removes flows whose deadline is at or before `now` (counted as expired); returns how many. */
  expire(now: number): number {
    let n = 0
    for (let i = 0; i < this.liveCount; ) {
      const slot = this.live[i]!
      if (this.deadline[slot]! <= now) {
        this.remove(slot, now) // swaps the last live slot into position i
        n++
      } else {
        i++
      }
    }
    this.expired += n
    this.ports.drain(now)
    return n
  }

  /**
   * Checks every structural invariant (tests and fuzzing; O(ports)), and that
   * every stored peer is a node of `prefix`. Throws an Error naming the first
   * broken one.
   */
  checkInvariants(prefix: OverlayPrefix): void {
    const n = this.flags.length
    if (this.liveCount + this.ports.free + this.ports.quarantined !== n) {
      throw new Error(`reflector: ${this.liveCount} live + ${this.ports.free} free + ${this.ports.quarantined} quarantined != ${n} ports`)
    }
    if (this.liveCount > this.maxFlows) throw new Error('reflector: more live flows than maxFlows')
    const seen = new Uint8Array(n)
    for (let i = 0; i < this.liveCount; i++) {
      const s = this.live[i]!
      if (seen[s]) throw new Error(`reflector: slot ${s} twice in the live list`)
      seen[s] = 1
      if (this.livePos[s] !== i) throw new Error(`reflector: livePos of slot ${s} is wrong`)
      if (!(this.flags[s]! & F_LIVE)) throw new Error(`reflector: live-listed slot ${s} not live`)
      if (this.kind[s] !== FlowKind.Outbound && this.kind[s] !== FlowKind.Inbound) throw new Error(`reflector: slot ${s} has no kind`)
      if (classifyOverlayIpv6(this.peerAddr, prefix, s * 16) !== 'node') throw new Error(`reflector: slot ${s} peer is not a node`)
      if (this.find(this.peerAddr, s * 16, this.peerPort[s]!, this.localPort[s]!) !== s) throw new Error(`reflector: slot ${s} not found by its key`)
    }
    this.ports.markSlots(seen, 2, 3)
    let chained = 0
    for (let b = 0; b < this.buckets.length; b++) {
      for (let s = this.buckets[b]!; s !== NO_FLOW; s = this.hashNext[s]!) {
        if (seen[s] !== 1) throw new Error(`reflector: slot ${s} chained but not live`)
        if (++chained > this.liveCount) throw new Error('reflector: hash chains loop or hold extra slots')
      }
    }
    if (chained !== this.liveCount) throw new Error('reflector: hash chains miss live flows')
    for (let s = 0; s < n; s++) if (seen[s] !== 1 && this.flags[s] !== 0) throw new Error(`reflector: dead slot ${s} has flags`)
  }

  /** Bucket of the key: P's network and node (the prefix is the same for all), both ports. */
  private hash(addr: Uint8Array, off: number, peerPort: number, localPort: number): number {
    let h = Math.imul(overlayNodeAt(addr, off) ^ Math.imul(overlayNetworkAt(addr, off), 0x9e3779b1), 0x85ebca6b)
    h ^= Math.imul((peerPort << 16) | localPort, 0xc2b2ae35)
    h ^= h >>> 15
    h = Math.imul(h, 0x2c1b3c6d)
    h ^= h >>> 13
    return h & this.bucketMask
  }

  /** Takes a live slot out of the hash and the live list and hands its port to the pool. */
  private remove(slot: number, now: number): void {
    const b = this.hash(this.peerAddr, slot * 16, this.peerPort[slot]!, this.localPort[slot]!)
    let cur = this.buckets[b]!
    let prev = NO_FLOW
    while (cur !== NO_FLOW && cur !== slot) {
      prev = cur
      cur = this.hashNext[cur]!
    }
    if (cur === slot) {
      if (prev === NO_FLOW) this.buckets[b] = this.hashNext[slot]!
      else this.hashNext[prev] = this.hashNext[slot]!
    }
    this.hashNext[slot] = NO_FLOW
    const pos = this.livePos[slot]!
    const last = this.live[--this.liveCount]!
    this.live[pos] = last
    this.livePos[last] = pos
    this.livePos[slot] = NO_FLOW
    this.flags[slot] = 0
    this.kind[slot] = 0
    this.ports.release(slot, now)
  }
}
