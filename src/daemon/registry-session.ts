/**
 * The daemon's standing with the registry (docs/wire.md §10.8), and the
 * `PeerDirectory` the tunnel asks for keys and endpoints.
 *
 * `registerNode`: register → set_visibility (when public) → set_hostname. The
 * daemon registers first (the node ID is what the tunnel is built with), then
 * hands the `Registration` to a `RegistrySession`, which keeps it alive:
 * every `heartbeatMs` a heartbeat followed by `poll_handshakes`. After
 * `maxFailures` heartbeats fail in a row it registers again and re-applies
 * visibility and hostname, then tells the daemon (which re-reports trust).
 * If the endpoint we should announce changes (the beacon reported our public
 * endpoint), the next heartbeat re-registers with it. Nothing here blocks the
 * data path: an unreachable registry only means failed heartbeats.
 *
 * `RegistryDirectory`: `lookup` → Ed25519 key, `resolve` → endpoint, each
 * cached for a short TTL (failures are not cached long, so a peer that
 * becomes resolvable after trust is found quickly). Both caches are bounded
 * (`MAX_DIRECTORY_ENTRIES`, oldest dropped) and shrink: a "no" goes when it
 * expires, an answer `DIRECTORY_STALE_KEEP_MS` after (kept that long to serve
 * through a registry outage). Concurrent asks for one node share one request.
 */
import type { HandshakeInbox, LookupResult, RegistryClient } from '../registry/client.js'
import { decodeStdBase64 } from '../crypto/identity.js'
import { RegistryErrorCode } from '../registry/errors.js'
import type { PeerDirectory } from '../tunnel/peer-directory.js'
import type { UdpEndpoint } from '../tunnel/bind.js'
import { nullLogger, type Logger } from '../logger.js'
import { tryParseHostPort } from '../protocol/host-port.js'

/** What a node asks for when it registers. */
export interface RegistrationRequest {
  /** "host:port" the node listens on (the registry keeps our TCP source IP and this port). */
  listenAddr: string
  /** The hostname wanted, or null for none. */
  hostname: string | null
  isPublic: boolean
  /** Registry `owner` string, if configured. */
  owner?: string | undefined
}

/** The registry requests a node's standing needs (a `RegistryClient`, or a test's fake). */
export type SessionClient = Pick<RegistryClient, 'register' | 'setVisibility' | 'setHostname' | 'heartbeat' | 'pollHandshakes' | 'deregister'>

/** What one registration settled. */
export interface Registration {
  nodeId: number
  address: string
  /** The `listen_addr` it was made with. */
  listenAddr: string
  /** The hostname the registry accepted (null: it cleared it); undefined when none was asked for or it was refused. */
  hostname: string | null | undefined
}

/** register, then set_visibility (when public) and set_hostname. Throws the registry's typed error; a refused hostname is only logged. */
export async function registerNode(client: SessionClient, request: RegistrationRequest, logger: Logger = nullLogger): Promise<Registration> {
  const { listenAddr, owner } = request
  const result = await client.register(owner === undefined ? { listenAddr } : { listenAddr, owner })
  if (request.isPublic) await client.setVisibility(result.nodeId, true)
  let hostname: string | null | undefined
  if (request.hostname !== null && request.hostname !== '') {
    try {
      const r = await client.setHostname(result.nodeId, request.hostname)
      hostname = r.hostname === '' ? null : r.hostname
    } catch (err) {
      // Go's behaviour: a taken or invalid hostname does not stop the node.
      logger.warn('hostname not applied', { hostname: request.hostname, error: (err as Error).message })
    }
  }
  return { nodeId: result.nodeId, address: result.address, listenAddr, hostname }
}

export interface RegistrySessionOptions {
  client: SessionClient
  logger?: Logger
  heartbeatMs: number
  /** Consecutive heartbeat failures before registering again (Go: 3). */
  maxFailures?: number
  /** The registration made at start-up (`registerNode`); the session keeps it alive. */
  registered: Registration
  /** The `listen_addr` to register now ("host:port"); re-read before each heartbeat. */
  listenAddr: () => string
  /** The hostname wanted, re-applied on each re-registration. */
  hostname: string | null
  isPublic: boolean
  /** Registry `owner` string, if configured. */
  owner?: string | undefined
  /** Relayed handshake requests and answers, after each successful heartbeat. */
  onInbox: (inbox: HandshakeInbox) => Promise<void>
  /**
   * True while an answer relayed through the registry is awaited (an outgoing
   * trust request): poll_handshakes then runs every `handshakePollMs` between
   * heartbeats, so a peer's approval does not wait up to a whole heartbeat.
   */
  handshakesAwaited?: () => boolean
  /** Default 2000 ms; only used when shorter than `heartbeatMs`. */
  handshakePollMs?: number
  /** Called after a re-registration (not the first one): re-report trust pairs. */
  onReregistered: () => Promise<void>
  /** Monotonic clock. */
  clock?: () => number
}

export class RegistrySession {
  private readonly client: SessionClient
  private readonly logger: Logger
  private readonly heartbeatMs: number
  private readonly maxFailures: number
  private readonly listenAddr: () => string
  private readonly isPublic: boolean
  private readonly owner: string | undefined
  private readonly onInbox: (inbox: HandshakeInbox) => Promise<void>
  private readonly onReregistered: () => Promise<void>
  private readonly handshakesAwaited: () => boolean
  private readonly handshakePollMs: number
  private pollTimer: NodeJS.Timeout | null = null
  private polling: Promise<void> | null = null
  private readonly clock: () => number
  private hostnameWanted: string | null
  private hostnameApplied: string | null
  private registeredListenAddr: string
  private nodeIdValue: number
  private addressValue: string
  private failures = 0
  private lastHeartbeat: number
  private timer: NodeJS.Timeout | null = null
  private running: Promise<void> | null = null
  private stopped = false
  registrations = 1
  heartbeatsOk = 0
  heartbeatsFailed = 0

  private readonly tickBound = (): void => {
    this.timer = null
    this.running = this.heartbeatOnce().finally(() => {
      this.running = null
      this.arm()
    })
  }

  private readonly pollTickBound = (): void => {
    this.pollTimer = null
    if (this.stopped) return
    if (this.running === null && this.failures === 0 && this.handshakesAwaited()) {
      this.polling = this.pollInbox().finally(() => {
        this.polling = null
        this.armPoll()
      })
    } else {
      this.armPoll()
    }
  }

  constructor(options: RegistrySessionOptions) {
    this.client = options.client
    this.logger = options.logger ?? nullLogger
    this.heartbeatMs = options.heartbeatMs
    this.maxFailures = options.maxFailures ?? 3
    this.listenAddr = options.listenAddr
    this.hostnameWanted = options.hostname
    this.isPublic = options.isPublic
    this.owner = options.owner
    this.onInbox = options.onInbox
    this.onReregistered = options.onReregistered
    this.handshakesAwaited = options.handshakesAwaited ?? (() => false)
    this.handshakePollMs = options.handshakePollMs ?? 2_000
    this.clock = options.clock ?? (() => performance.now())
    const first = options.registered
    this.nodeIdValue = first.nodeId
    this.addressValue = first.address
    this.registeredListenAddr = first.listenAddr
    this.hostnameApplied = first.hostname ?? null
    this.lastHeartbeat = this.clock()
  }

  get nodeId(): number {
    return this.nodeIdValue
  }

  get address(): string {
    return this.addressValue
  }

  /** The hostname the registry accepted for us, null if none. */
  get hostname(): string | null {
    return this.hostnameApplied
  }

  /** True while the last heartbeat (or registration) succeeded. */
  get connected(): boolean {
    return this.failures === 0
  }

  /** Milliseconds since the last good heartbeat or registration. */
  lastHeartbeatAgoMs(): number {
    return this.clock() - this.lastHeartbeat
  }

  /** Registers again with the current listen address, visibility and hostname. Throws the registry's typed error. */
  async register(): Promise<Registration> {
    const r = await registerNode(
      this.client,
      { listenAddr: this.listenAddr(), hostname: this.hostnameWanted, isPublic: this.isPublic, owner: this.owner },
      this.logger,
    )
    if (r.nodeId !== this.nodeIdValue) {
      // Same key, different ID: the registry lost its state. Our tunnel keeps the old ID; say so loudly.
      this.logger.error('registry assigned a different node ID on re-registration; restart the daemon', {
        before: this.nodeIdValue,
        after: r.nodeId,
      })
    }
    this.nodeIdValue = r.nodeId
    this.addressValue = r.address
    this.registeredListenAddr = r.listenAddr
    if (r.hostname !== undefined) this.hostnameApplied = r.hostname
    this.registrations++
    this.failures = 0
    this.lastHeartbeat = this.clock()
    return r
  }

  async setHostname(name: string): Promise<string> {
    const r = await this.client.setHostname(this.nodeIdValue, name)
    this.hostnameWanted = r.hostname === '' ? null : r.hostname
    this.hostnameApplied = this.hostnameWanted
    return r.hostname
  }

  /** Starts the heartbeat timer. */
  start(): void {
    this.arm()
    this.armPoll()
  }

  /** One heartbeat round now (tests, and after the daemon's endpoint changed). */
  async heartbeatOnce(): Promise<void> {
    if (this.stopped) return
    try {
      if (this.failures >= this.maxFailures) {
        await this.register()
        this.logger.info('re-registered with the registry', { node: this.nodeIdValue })
        await this.onReregistered().catch((err: unknown) => this.logger.warn('re-applying trust failed', { error: String(err) }))
      } else {
        await this.client.heartbeat(this.nodeIdValue)
        this.failures = 0
        this.lastHeartbeat = this.clock()
        this.heartbeatsOk++
        if (this.listenAddr() !== this.registeredListenAddr) await this.register()
      }
    } catch (err) {
      if (this.stopped) return
      this.failures++
      this.heartbeatsFailed++
      this.logger.warn('registry heartbeat failed', { failures: this.failures, error: (err as Error).message })
      return
    }
    await this.pollInbox()
  }

  /** poll_handshakes, and the inbox to onInbox. */
  private async pollInbox(): Promise<void> {
    try {
      const inbox = await this.client.pollHandshakes(this.nodeIdValue)
      if (inbox.requests.length > 0 || inbox.responses.length > 0) await this.onInbox(inbox)
    } catch (err) {
      if (!this.stopped) this.logger.warn('poll_handshakes failed', { error: (err as Error).message })
    }
  }

  /** Stops heartbeats, waits for a running one, then deregisters (best effort, bounded). */
  async stop(deregisterTimeoutMs: number): Promise<void> {
    this.stopped = true
    if (this.timer !== null) clearTimeout(this.timer)
    this.timer = null
    if (this.pollTimer !== null) clearTimeout(this.pollTimer)
    this.pollTimer = null
    if (this.running !== null) await this.running.catch(() => {})
    if (this.polling !== null) await this.polling.catch(() => {})
    let timer: NodeJS.Timeout | null = null
    await Promise.race([
      this.client.deregister(this.nodeIdValue).catch((err: unknown) => {
        this.logger.debug('deregister failed', { error: String(err) })
      }),
      new Promise<void>((r) => {
        timer = setTimeout(r, deregisterTimeoutMs)
      }),
    ])
    if (timer !== null) clearTimeout(timer)
  }

  private arm(): void {
    if (this.stopped || this.timer !== null) return
    this.timer = setTimeout(this.tickBound, this.heartbeatMs)
  }

  /** The between-heartbeats poll timer (only when it is shorter than a heartbeat). */
  private armPoll(): void {
    if (this.stopped || this.pollTimer !== null || this.handshakePollMs >= this.heartbeatMs) return
    this.pollTimer = setTimeout(this.pollTickBound, this.handshakePollMs)
  }
}

interface CacheEntry<T> {
  value: T
  expires: number
}

/** Entries each of the directory's caches (lookups, endpoints) holds at most; the oldest goes first. */
export const MAX_DIRECTORY_ENTRIES = 4_096
/**
 * How long an answer stays after it expired, served only while the registry cannot be asked
 * (and by `peek`/`isRegistered`). One hour; a "no" is dropped when it expires.
 */
export const DIRECTORY_STALE_KEEP_MS = 3_600_000

/** One of the directory's caches: node ID → answer (null = "no"), bounded and swept. */
class AnswerCache<T> {
  private readonly entries = new Map<number, CacheEntry<T | null>>()
  private nextSweepMs = 0

  constructor(
    private readonly maxEntries: number,
    private readonly staleKeepMs: number,
    private readonly sweepEveryMs: number,
  ) {}

  get size(): number {
    return this.entries.size
  }

  get(nodeId: number): CacheEntry<T | null> | undefined {
    return this.entries.get(nodeId)
  }

  /** Stores an answer as the newest entry; drops the oldest past the bound, and what has aged out. */
  set(nodeId: number, value: T | null, expires: number, now: number): void {
    this.entries.delete(nodeId)
    this.entries.set(nodeId, { value, expires })
    if (this.entries.size > this.maxEntries) this.entries.delete(this.entries.keys().next().value as number)
    if (now >= this.nextSweepMs) {
      this.nextSweepMs = now + this.sweepEveryMs
      for (const [id, e] of this.entries) {
        if (e.expires + (e.value === null ? 0 : this.staleKeepMs) <= now) this.entries.delete(id)
      }
    }
  }

  delete(nodeId: number): void {
    this.entries.delete(nodeId)
  }
}

export interface RegistryDirectoryOptions {
  client: RegistryClient
  /** Our node ID (the requester of `resolve`). */
  selfId: () => number
  /** How long answers are kept. Default 10 s. */
  ttlMs?: number
  /** How long failures are kept. Default 1 s. */
  negativeTtlMs?: number
  /** Entries per cache. Default MAX_DIRECTORY_ENTRIES. */
  maxEntries?: number
  /** How long an answer outlives its TTL. Default DIRECTORY_STALE_KEEP_MS. */
  staleKeepMs?: number
  logger?: Logger
  clock?: () => number
}

/** `PeerDirectory` over the registry client, with a short cache. */
export class RegistryDirectory implements PeerDirectory {
  private readonly client: RegistryClient
  private readonly selfId: () => number
  private readonly ttlMs: number
  private readonly negativeTtlMs: number
  private readonly logger: Logger
  private readonly clock: () => number
  private readonly lookups: AnswerCache<LookupResult>
  private readonly endpoints: AnswerCache<UdpEndpoint>
  /** Requests running, so concurrent asks for one node share one. */
  private readonly lookupsInFlight = new Map<number, Promise<LookupResult | null>>()
  private readonly resolvesInFlight = new Map<number, Promise<UdpEndpoint | null>>()

  constructor(options: RegistryDirectoryOptions) {
    this.client = options.client
    this.selfId = options.selfId
    this.ttlMs = options.ttlMs ?? 10_000
    this.negativeTtlMs = options.negativeTtlMs ?? 1_000
    this.logger = options.logger ?? nullLogger
    this.clock = options.clock ?? (() => performance.now())
    const maxEntries = options.maxEntries ?? MAX_DIRECTORY_ENTRIES
    const staleKeepMs = options.staleKeepMs ?? DIRECTORY_STALE_KEEP_MS
    this.lookups = new AnswerCache(maxEntries, staleKeepMs, this.ttlMs)
    this.endpoints = new AnswerCache(maxEntries, staleKeepMs, this.ttlMs)
  }

  /** Entries in the lookup and endpoint caches, and requests running (tests, diagnostics). */
  cacheSizes(): { lookups: number; endpoints: number; inFlight: number } {
    return { lookups: this.lookups.size, endpoints: this.endpoints.size, inFlight: this.lookupsInFlight.size + this.resolvesInFlight.size }
  }

  /** The registry's `lookup` answer for `nodeId`, or null if it has none (cached). */
  lookup(nodeId: number): Promise<LookupResult | null> {
    const hit = this.lookups.get(nodeId)
    if (hit !== undefined && hit.expires > this.clock()) return Promise.resolve(hit.value)
    return shared(this.lookupsInFlight, nodeId, () => this.fetchLookup(nodeId))
  }

  /** `request`: the registry's answer already asked for (isRegistered), else asked here. */
  private async fetchLookup(nodeId: number, request?: Promise<LookupResult>): Promise<LookupResult | null> {
    const hit = this.lookups.get(nodeId)
    let value: LookupResult | null = null
    try {
      value = await (request ?? this.client.lookup(nodeId))
    } catch (err) {
      this.logger.debug('lookup failed', { node: nodeId, error: (err as Error).message })
      // The registry being away is not an answer: keep serving what it said last
      // (keys and hostnames of known peers), so existing peers can still re-key.
      if (hit !== undefined && hit.value !== null && isTransportFailure(err)) {
        hit.expires = this.clock() + this.negativeTtlMs
        return hit.value
      }
    }
    const now = this.clock()
    this.lookups.set(nodeId, value, now + (value === null ? this.negativeTtlMs : this.ttlMs), now)
    return value
  }

  /**
   * Whether `nodeId` is registered: true, false when the registry says it is
   * not, null when the registry cannot be asked. Node IDs are never reused, so
   * a node seen once stays "registered" without asking again. A `lookup` asked
   * meanwhile (the tunnel's key lookup for a first dial) shares this request.
   */
  async isRegistered(nodeId: number): Promise<boolean | null> {
    const hit = this.lookups.get(nodeId)
    if (hit !== undefined && hit.value !== null) return true
    const running = this.lookupsInFlight.get(nodeId)
    if (running !== undefined && (await running) !== null) return true
    const request = this.client.lookup(nodeId)
    if (!this.lookupsInFlight.has(nodeId)) void shared(this.lookupsInFlight, nodeId, () => this.fetchLookup(nodeId, request))
    try {
      await request
      return true
    } catch (err) {
      return isTransportFailure(err) ? null : false
    }
  }

  /** The last `lookup` answer for `nodeId`, however old; never asks the registry. */
  peek(nodeId: number): LookupResult | null {
    return this.lookups.get(nodeId)?.value ?? null
  }

  async lookupKey(nodeId: number): Promise<Uint8Array | null> {
    const r = await this.lookup(nodeId)
    if (r === null) return null
    const key = decodeStdBase64(r.publicKey)
    return key !== null && key.length === 32 ? new Uint8Array(key) : null
  }

  resolveEndpoint(nodeId: number): Promise<UdpEndpoint | null> {
    const hit = this.endpoints.get(nodeId)
    if (hit !== undefined && hit.expires > this.clock()) return Promise.resolve(hit.value)
    return shared(this.resolvesInFlight, nodeId, () => this.fetchEndpoint(nodeId))
  }

  private async fetchEndpoint(nodeId: number): Promise<UdpEndpoint | null> {
    const hit = this.endpoints.get(nodeId)
    let value: UdpEndpoint | null = null
    try {
      const r = await this.client.resolve(this.selfId(), nodeId)
      // `real_addr`: an IP literal with a port, "1.2.3.4:5" or "[::1]:5"; anything else counts as no answer.
      value = tryParseHostPort(r.realAddr, { hosts: 'ip' })
    } catch (err) {
      this.logger.debug('resolve refused or failed', { node: nodeId, error: (err as Error).message })
      if (hit !== undefined && hit.value !== null && isTransportFailure(err)) {
        hit.expires = this.clock() + this.negativeTtlMs
        return hit.value
      }
    }
    const now = this.clock()
    this.endpoints.set(nodeId, value, now + (value === null ? this.negativeTtlMs : this.ttlMs), now)
    return value
  }

  /** The endpoint a resolve last answered for `nodeId`, however old (kept `staleKeepMs`); never asks. */
  lastKnownEndpoint(nodeId: number): UdpEndpoint | null {
    return this.endpoints.get(nodeId)?.value ?? null
  }

  /** Drops cached answers for `nodeId` (trust changed: resolve may now succeed or fail). */
  invalidate(nodeId: number): void {
    this.lookups.delete(nodeId)
    this.endpoints.delete(nodeId)
    // A request already running was asked before the change: the next ask starts its own.
    this.lookupsInFlight.delete(nodeId)
    this.resolvesInFlight.delete(nodeId)
  }
}

/** The request running for `nodeId` in `inFlight`, or a new one from `start` (removed when it settles). */
function shared<T>(inFlight: Map<number, Promise<T>>, nodeId: number, start: () => Promise<T>): Promise<T> {
  const running = inFlight.get(nodeId)
  if (running !== undefined) return running
  const p = start().finally(() => {
    if (inFlight.get(nodeId) === p) inFlight.delete(nodeId)
  })
  inFlight.set(nodeId, p)
  return p
}

/** True when the registry could not be asked (as opposed to answering "no"). */
function isTransportFailure(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code
  return (
    code === RegistryErrorCode.UNREACHABLE ||
    code === RegistryErrorCode.TIMEOUT ||
    code === RegistryErrorCode.CLOSED ||
    code === RegistryErrorCode.BAD_RESPONSE
  )
}
