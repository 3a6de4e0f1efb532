/**
 * `NetworkView`: what this daemon knows about the networks it is a member of
 * (issue 13). The data path (admission, TUN, pilot0 addresses and routes) and
 * the `.pilot` names read it; nothing in it talks to the registry directly:
 * a `NetworkSource` does (the daemon wires it to its RegistryClient: lookup
 * of itself for the IDs, network_info for each network).
 *
 * - `refresh()` asks now and resolves after every `onChange` listener ran
 *   (awaited, in registration order); concurrent calls share one round.
 * - `refreshSoon(n)` is for a miss on the data path (an unknown member): at
 *   most one refresh per second per network, never piling up.
 * - A registry outage keeps the last known view: a failed round changes
 *   nothing (counted in `refreshErrors`). Only a successful answer that no
 *   longer lists a network removes it.
 * - `start()` refreshes every `refreshMs`; `close()` leaves no timer.
 *
 * Network 0 (the backbone) is never in the view: every node is on it and
 * `isMember` / `portAllowed` answer true for it.
 */
import type { Logger } from '../logger.js'
import { BACKBONE_NETWORK, type NetworkInfo, type NetworkPolicy, type NetworkRole } from '../registry/network-types.js'

export interface NetworkState {
  id: number
  name: string
  role: NetworkRole
  policy: NetworkPolicy
  members: ReadonlySet<number>
  /** Members' hostnames (lower case) → node, from network_info (`host.netname.pilot`). */
  hostnames: ReadonlyMap<string, number>
}

export interface NetworkChange {
  joined: number[]
  left: number[]
  changed: number[]
}

/** Where the view's facts come from (the daemon's RegistryClient; tests give a fake). */
export interface NetworkSource {
  /** `lookup(self).networks` without 0. */
  myNetworks(): Promise<number[]>
  info(networkId: number): Promise<NetworkInfo>
}

export interface NetworkViewOptions {
  source: NetworkSource
  logger: Logger
  /** Periodic refresh (`up --network-refresh <s>`, default 10 s). */
  refreshMs: number
  /** Milliseconds, monotonic (default performance.now); tests move it by hand. */
  now?: () => number
  /** The node this daemon is (its role is read from the member list). */
  selfId?: number
}

/** `refreshSoon` refreshes one network at most this often. */
export const REFRESH_SOON_INTERVAL_MS = 1000

export class NetworkView {
  private readonly source: NetworkSource
  private readonly logger: Logger
  private readonly refreshMs: number
  private readonly now: () => number
  private readonly selfId: number | null
  private readonly states = new Map<number, NetworkState>()
  private readonly listeners: Array<(c: NetworkChange) => void | Promise<void>> = []
  private readonly lastSoon = new Map<number, number>()
  private readonly counters = { refreshes: 0, refreshErrors: 0, listenerErrors: 0 }
  private running: Promise<void> | null = null
  /** A refresh asked for while one runs: one more round after it. */
  private again: Promise<void> | null = null
  private timer: NodeJS.Timeout | null = null
  private closed = false

  constructor(o: NetworkViewOptions) {
    this.source = o.source
    this.logger = o.logger
    this.refreshMs = o.refreshMs
    this.now = o.now ?? (() => performance.now())
    this.selfId = o.selfId ?? null
  }

  /** Networks we are a member of (never 0), by ID. */
  joined(): readonly NetworkState[] {
    return [...this.states.values()].sort((a, b) => a.id - b.id)
  }

  get(networkId: number): NetworkState | undefined {
    return this.states.get(networkId)
  }

  byName(name: string): NetworkState | undefined {
    const n = name.toLowerCase()
    for (const s of this.states.values()) if (s.name === n) return s
    return undefined
  }

  /** We and `node` are members of `networkId`; always true on network 0. */
  isMember(networkId: number, node: number): boolean {
    if (networkId === BACKBONE_NETWORK) return true
    return this.states.get(networkId)?.members.has(node) === true
  }

  /** `port` may be reached inside `networkId` (network 0, or a policy without a port list: every port). */
  portAllowed(networkId: number, port: number): boolean {
    if (networkId === BACKBONE_NETWORK) return true
    const s = this.states.get(networkId)
    if (s === undefined) return false
    return s.policy.allowedPorts.length === 0 || s.policy.allowedPorts.includes(port)
  }

  /**
   * Asks the source now. `networkId` given: only that network's info (and the
   * list of our networks when we did not know it). Resolves after the
   * listeners of any change ran. Never rejects: failures are logged and counted.
   */
  refresh(networkId?: number): Promise<void> {
    if (this.closed) return Promise.resolve()
    if (this.running === null) {
      this.running = this.round(networkId).finally(() => {
        this.running = null
      })
      return this.running
    }
    // One round is on its way: what it read may be older than the caller's change, so one more after it.
    this.again ??= this.running.then(() => {
      this.again = null
      return this.refresh()
    })
    return this.again
  }

  /** A miss on the data path: refresh `networkId` unless that happened less than a second ago. */
  refreshSoon(networkId: number): void {
    if (this.closed || networkId === BACKBONE_NETWORK) return
    const now = this.now()
    const last = this.lastSoon.get(networkId)
    if (last !== undefined && now - last < REFRESH_SOON_INTERVAL_MS) return
    if (this.lastSoon.size >= 4096) this.lastSoon.clear()
    this.lastSoon.set(networkId, now)
    void this.refresh(networkId)
  }

  /** Runs after every change, in registration order (awaited). Returns the unsubscribe function. */
  onChange(listener: (c: NetworkChange) => void | Promise<void>): () => void {
    this.listeners.push(listener)
    return () => {
      const i = this.listeners.indexOf(listener)
      if (i >= 0) this.listeners.splice(i, 1)
    }
  }

  /** Refreshes now and then every `refreshMs`. */
  start(): void {
    if (this.closed || this.timer !== null) return
    void this.refresh()
    this.timer = setInterval(() => void this.refresh(), this.refreshMs)
    this.timer.unref()
  }

  close(): void {
    this.closed = true
    if (this.timer !== null) clearInterval(this.timer)
    this.timer = null
  }

  stats(): { refreshes: number; refreshErrors: number; networks: number; listenerErrors: number } {
    return { ...this.counters, networks: this.states.size }
  }

  // ───────────────────────── one round ─────────────────────────

  private async round(only: number | undefined): Promise<void> {
    this.counters.refreshes++
    let ids: number[]
    const infos = new Map<number, NetworkInfo | null>()
    try {
      if (only !== undefined && this.states.has(only)) {
        ids = [...this.states.keys()]
        infos.set(only, await this.infoOrGone(only))
      } else {
        ids = (await this.source.myNetworks()).filter((n) => Number.isInteger(n) && n > BACKBONE_NETWORK && n <= 0xfffe)
        for (const id of ids) infos.set(id, await this.infoOrGone(id))
      }
    } catch (err) {
      if (this.closed) return
      this.counters.refreshErrors++
      // An outage (or one failing network_info) keeps what we knew.
      this.logger.warn('network refresh failed: keeping the last known view', { error: err instanceof Error ? err.message : String(err) })
      return
    }
    if (this.closed) return
    const change: NetworkChange = { joined: [], left: [], changed: [] }
    const wanted = new Set(ids)
    for (const id of [...this.states.keys()]) {
      if (wanted.has(id)) continue
      this.states.delete(id)
      change.left.push(id)
    }
    for (const [id, info] of infos) {
      const next = info === null ? null : this.toState(info)
      const prev = this.states.get(id)
      if (next === null) {
        // The registry answered, but we are not among the members: left (removed).
        if (prev !== undefined) {
          this.states.delete(id)
          change.left.push(id)
        }
        continue
      }
      this.states.set(id, next)
      if (prev === undefined) change.joined.push(id)
      else if (!sameState(prev, next)) change.changed.push(id)
    }
    if (change.joined.length + change.left.length + change.changed.length === 0) return
    for (const l of [...this.listeners]) {
      try {
        await l(change)
      } catch (err) {
        this.counters.listenerErrors++
        this.logger.error('network change listener failed', { error: err instanceof Error ? (err.stack ?? err.message) : String(err) })
      }
    }
  }

  /** The network's info; null when the registry says it is gone or we are not a member (a definite answer). */
  private async infoOrGone(id: number): Promise<NetworkInfo | null> {
    try {
      return await this.source.info(id)
    } catch (err) {
      const code = (err as { code?: unknown } | null)?.code
      if (code === 'PT_NETWORK_NOT_MEMBER' || code === 'PT_NETWORK_NOT_FOUND') return null
      throw err
    }
  }

  private toState(info: NetworkInfo): NetworkState | null {
    const members = new Set(info.members.map((m) => m.nodeId))
    let role: NetworkRole = 'member'
    if (this.selfId !== null) {
      const me = info.members.find((m) => m.nodeId === this.selfId)
      if (me === undefined) return null
      role = me.role
    }
    const p = info.policy
    const hostnames = new Map<string, number>()
    for (const m of info.members) if (typeof m.hostname === 'string' && m.hostname !== '') hostnames.set(m.hostname.toLowerCase(), m.nodeId)
    return {
      id: info.id,
      name: info.name.toLowerCase(),
      role,
      policy: { maxMembers: p.maxMembers, allowedPorts: [...p.allowedPorts].sort((a, b) => a - b), membersResolve: p.membersResolve },
      members,
      hostnames,
    }
  }

  /**
   * `host.netname.pilot`: the member `host` (its hostname, else what
   * `resolveHost` makes of it) of the network we are in named `netname`; null
   * when we are not in such a network or `host` is not a member of it.
   */
  async resolveInNetwork(netname: string, host: string, resolveHost?: (host: string) => Promise<number | null>): Promise<{ network: number; node_id: number } | null> {
    const net = this.byName(netname)
    if (net === undefined) return null
    let node = net.hostnames.get(host.toLowerCase())
    if (node === undefined && resolveHost !== undefined) node = (await resolveHost(host)) ?? undefined
    if (node === undefined || !this.isMember(net.id, node)) return null
    return { network: net.id, node_id: node }
  }
}

function sameState(a: NetworkState, b: NetworkState): boolean {
  if (a.name !== b.name || a.role !== b.role) return false
  if (a.policy.maxMembers !== b.policy.maxMembers || a.policy.membersResolve !== b.policy.membersResolve) return false
  if (a.policy.allowedPorts.join(',') !== b.policy.allowedPorts.join(',')) return false
  if (a.members.size !== b.members.size) return false
  for (const m of a.members) if (!b.members.has(m)) return false
  return true
}
