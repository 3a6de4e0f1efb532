/**
 * The daemon's registry client (docs/wire.md §10): one long-lived connection,
 * requests queued and sent one at a time, each with a timeout. Two queues:
 * questions about other nodes (lookup, resolve, resolve_hostname), which
 * strangers' traffic can make numerous, wait behind the node's own standing
 * (heartbeat, register, handshakes, everything else), so a heartbeat waits for
 * at most the one request in flight and a lookup flood cannot get the node
 * reaped. Within a queue, order is kept. A lost
 * connection is re-dialled with backoff (0.5 s doubling to 10 s, 5 tries,
 * 5 s per dial) and the request that was interrupted is retried once.
 *
 * Several registry front ends (issue 14: stateless front ends on one
 * PostgreSQL) are given as `fallbacks`: each try dials them in turn, starting
 * with the one that last worked, so a front end that dies costs one redial,
 * not the backoff. Any front end answers any request, so nothing else changes.
 *
 * Requests are built exactly as Go daemons build them: same keys (sorted, as
 * Go's maps emit them), IDs as JSON numbers, signatures over the §10.3
 * challenges in standard base64.
 */
import type { Identity } from '../crypto/identity.js'
import { nullLogger, type Logger } from '../logger.js'
import { REGISTRY_MAX_MESSAGE, type JsonObject } from '../protocol/registry-framing.js'
import { formatHostPort } from '../protocol/host-port.js'
import { RegistryChallenge } from './challenges.js'
import { ConnectionLost, RegistryClientConnection } from './client-connection.js'
import { NETWORK_ERROR_HINTS, RegistryError, RegistryErrorCode, isNetworkErrorCode } from './errors.js'
import { withSortedKeys } from './json-order.js'
import type { RegistryTlsPin } from './tls-pin.js'
import * as net from './network-client.js'
import type { AuditEntry, JoinRule, NetworkInfo, NetworkNode, NetworkPolicy, NetworkRole, NetworkSummary, SignedInvite } from './network-types.js'

export interface ReconnectPolicy {
  /** Dial attempts per (re)connection before requests fail as unreachable. */
  maxAttempts: number
  initialDelayMs: number
  maxDelayMs: number
  dialTimeoutMs: number
}

export const DEFAULT_RECONNECT_POLICY: Readonly<ReconnectPolicy> = Object.freeze({
  maxAttempts: 5,
  initialDelayMs: 500,
  maxDelayMs: 10_000,
  dialTimeoutMs: 5_000,
})

export interface RegistryClientOptions {
  host: string
  port: number
  /** More front ends of the same registry, tried in turn after `host:port` when a dial fails. */
  fallbacks?: ReadonlyArray<{ host: string; port: number }>
  identity: Identity
  logger?: Logger
  /** Per request, from the moment it is queued. Default 15 s. */
  timeoutMs?: number
  reconnect?: Partial<ReconnectPolicy>
  /** TLS with this pin for every front end (`--registry-tls --registry-fingerprint`, tls-pin.ts); absent/null = plaintext TCP. */
  tls?: RegistryTlsPin | null
  /** Wall clock in ms for the timestamps of signed network writes; tests pass the registry's fake one. */
  now?: () => number
}

export interface RegisterResult {
  nodeId: number
  address: string
  publicKey: string
  hostname?: string
  hostnameError?: string
}

/** A node's reputation as the registry reports it. */
export interface PoloScore {
  nodeId: number
  poloScore: number
}

export interface LookupResult {
  nodeId: number
  address: string
  publicKey: string
  isPublic: boolean
  networks: number[]
  poloScore: number
  hostname?: string
  tags?: string[]
  taskExec?: boolean
  /** Only for public nodes. */
  realAddr?: string
}

export interface HandshakeInbox {
  requests: Array<{ fromNodeId: number; justification: string; timestamp: number }>
  responses: Array<{ fromNodeId: number; accept: boolean; timestamp: number }>
}

/** Request types that ask about other nodes: they go to the back lane (see the file comment). */
const DIRECTORY_QUERIES: ReadonlySet<string> = new Set(['lookup', 'resolve', 'resolve_hostname'])

interface PendingRequest {
  message: JsonObject
  resolve(response: JsonObject): void
  reject(err: Error): void
  timer: NodeJS.Timeout
  settled: boolean
  retried: boolean
}

export class RegistryClient {
  /** Every front end, `host:port` first. */
  private readonly endpoints: ReadonlyArray<{ host: string; port: number }>
  /** The front end dialled first: the one that last worked. */
  private current = 0
  private readonly identity: Identity
  /** Kept for every (re)connection: the pin never lapses to plaintext. */
  readonly tls: RegistryTlsPin | null
  private readonly logger: Logger
  private readonly timeoutMs: number
  private readonly policy: ReconnectPolicy
  /** The node's own requests (heartbeat, register, ...): always sent first. */
  private readonly ownQueue: PendingRequest[] = []
  /** Questions about other nodes. */
  private readonly queue: PendingRequest[] = []
  private connection: RegistryClientConnection | null = null
  private inFlight: PendingRequest | null = null
  private pumping = false
  private closed = false
  /** Why the last dial failed, while a dial sequence is running. */
  private dialError: string | null = null
  private wakeSleeper: (() => void) | null = null
  private sleepTimer: NodeJS.Timeout | null = null
  /** What network-client.ts needs of this client. */
  private readonly networkRequester: net.NetworkRequester

  constructor(options: RegistryClientOptions) {
    this.endpoints = [{ host: options.host, port: options.port }, ...(options.fallbacks ?? [])]
    this.identity = options.identity
    this.tls = options.tls ?? null
    this.logger = (options.logger ?? nullLogger).child({ component: 'registry-client' })
    this.timeoutMs = options.timeoutMs ?? 15_000
    this.policy = { ...DEFAULT_RECONNECT_POLICY, ...options.reconnect }
    const now = options.now ?? Date.now
    this.networkRequester = { identity: this.identity, now, request: (m) => this.request(m) }
  }

  /** `host:port` of the registry front end in use (or next to be dialled), as used in messages and hints. */
  get address(): string {
    const e = this.endpoints[this.current]!
    return formatHostPort(e.host, e.port)
  }

  /** Every front end as `host:port`, the one in use first. */
  get addresses(): string[] {
    const n = this.endpoints.length
    return Array.from({ length: n }, (_, i) => this.endpoints[(this.current + i) % n]!).map((e) => formatHostPort(e.host, e.port))
  }

  // --- operations --------------------------------------------------------------

  async register(options: { listenAddr: string; owner?: string; hostname?: string }): Promise<RegisterResult> {
    const message: JsonObject = {
      type: 'register',
      listen_addr: options.listenAddr,
      public_key: Buffer.from(this.identity.publicKey).toString('base64'),
    }
    if (options.owner !== undefined && options.owner !== '') message.owner = options.owner
    if (options.hostname !== undefined && options.hostname !== '') message.hostname = options.hostname
    const r = await this.request(message)
    const result: RegisterResult = { nodeId: num(r, 'node_id'), address: str(r, 'address'), publicKey: str(r, 'public_key') }
    if (typeof r.hostname === 'string') result.hostname = r.hostname
    if (typeof r.hostname_error === 'string') result.hostnameError = r.hostname_error
    return result
  }

  /** Returns the registry's clock (Unix seconds). */
  async heartbeat(nodeId: number): Promise<{ time: number }> {
    const r = await this.signed({ type: 'heartbeat', node_id: nodeId }, RegistryChallenge.heartbeat(nodeId))
    return { time: num(r, 'time') }
  }

  async lookup(nodeId: number): Promise<LookupResult> {
    const r = await this.request({ type: 'lookup', node_id: nodeId })
    const result: LookupResult = {
      nodeId: num(r, 'node_id'),
      address: str(r, 'address'),
      publicKey: str(r, 'public_key'),
      isPublic: r.public === true,
      networks: Array.isArray(r.networks) ? r.networks.filter((n): n is number => typeof n === 'number') : [],
      poloScore: typeof r.polo_score === 'number' ? r.polo_score : 0,
    }
    if (typeof r.hostname === 'string') result.hostname = r.hostname
    if (Array.isArray(r.tags)) result.tags = r.tags.filter((t): t is string => typeof t === 'string')
    if (r.task_exec === true) result.taskExec = true
    if (typeof r.real_addr === 'string') result.realAddr = r.real_addr
    return result
  }

  /** The endpoint of `nodeId`, if the registry lets `requesterId` see it. */
  async resolve(requesterId: number, nodeId: number): Promise<{ nodeId: number; realAddr: string }> {
    const r = await this.signed(
      { type: 'resolve', node_id: nodeId, requester_id: requesterId },
      RegistryChallenge.resolve(requesterId, nodeId),
    )
    return { nodeId: num(r, 'node_id'), realAddr: str(r, 'real_addr') }
  }

  async setVisibility(nodeId: number, isPublic: boolean): Promise<{ visibility: 'public' | 'private' }> {
    const r = await this.signed({ type: 'set_visibility', node_id: nodeId, public: isPublic }, RegistryChallenge.setVisibility(nodeId))
    return { visibility: str(r, 'visibility') === 'public' ? 'public' : 'private' }
  }

  /** An empty hostname clears it. */
  async setHostname(nodeId: number, hostname: string): Promise<{ hostname: string }> {
    const r = await this.signed({ type: 'set_hostname', node_id: nodeId, hostname }, RegistryChallenge.setHostname(nodeId))
    return { hostname: str(r, 'hostname') }
  }

  async resolveHostname(hostname: string): Promise<{ nodeId: number; address: string; isPublic: boolean; hostname: string }> {
    const r = await this.request({ type: 'resolve_hostname', hostname })
    return { nodeId: num(r, 'node_id'), address: str(r, 'address'), isPublic: r.public === true, hostname: str(r, 'hostname') }
  }

  async setTags(nodeId: number, tags: string[]): Promise<{ tags: string[] }> {
    const r = await this.signed({ type: 'set_tags', node_id: nodeId, tags }, RegistryChallenge.setTags(nodeId))
    return { tags: Array.isArray(r.tags) ? r.tags.filter((t): t is string => typeof t === 'string') : [] }
  }

  async setTaskExec(nodeId: number, enabled: boolean): Promise<{ taskExec: boolean }> {
    const r = await this.signed({ type: 'set_task_exec', node_id: nodeId, enabled }, RegistryChallenge.setTaskExec(nodeId))
    return { taskExec: r.task_exec === true }
  }

  /** A node's reputation (`get_polo_score`, unsigned). */
  async getPoloScore(nodeId: number): Promise<PoloScore> {
    return poloScore(await this.request({ type: 'get_polo_score', node_id: nodeId }))
  }

  /** Adds `delta` to a node's reputation (`update_polo_score`, unsigned, as [G] daemons send it). */
  async updatePoloScore(nodeId: number, delta: number): Promise<PoloScore> {
    return poloScore(await this.request({ type: 'update_polo_score', node_id: nodeId, delta }))
  }

  /** Sets a node's reputation (`set_polo_score`, unsigned). */
  async setPoloScore(nodeId: number, score: number): Promise<PoloScore> {
    return poloScore(await this.request({ type: 'set_polo_score', node_id: nodeId, polo_score: score }))
  }

  async deregister(nodeId: number): Promise<void> {
    await this.signed({ type: 'deregister', node_id: nodeId }, RegistryChallenge.deregister(nodeId))
  }

  async reportTrust(nodeId: number, peerId: number): Promise<void> {
    await this.signed({ type: 'report_trust', node_id: nodeId, peer_id: peerId }, RegistryChallenge.reportTrust(nodeId, peerId))
  }

  async revokeTrust(nodeId: number, peerId: number): Promise<void> {
    await this.signed({ type: 'revoke_trust', node_id: nodeId, peer_id: peerId }, RegistryChallenge.revokeTrust(nodeId, peerId))
  }

  async requestHandshake(fromNodeId: number, toNodeId: number, justification: string): Promise<{ status: string }> {
    const r = await this.signed(
      { type: 'request_handshake', from_node_id: fromNodeId, to_node_id: toNodeId, justification },
      RegistryChallenge.requestHandshake(fromNodeId, toNodeId),
    )
    return { status: str(r, 'status') }
  }

  /** Returns and clears this node's relayed handshake requests and answers. */
  async pollHandshakes(nodeId: number): Promise<HandshakeInbox> {
    const r = await this.signed({ type: 'poll_handshakes', node_id: nodeId }, RegistryChallenge.pollHandshakes(nodeId))
    const list = (key: string): JsonObject[] =>
      Array.isArray(r[key]) ? (r[key] as unknown[]).filter((e): e is JsonObject => typeof e === 'object' && e !== null) : []
    return {
      requests: list('requests').map((e) => ({
        fromNodeId: num(e, 'from_node_id'),
        justification: typeof e.justification === 'string' ? e.justification : '',
        timestamp: typeof e.timestamp === 'number' ? e.timestamp : 0,
      })),
      responses: list('responses').map((e) => ({
        fromNodeId: num(e, 'from_node_id'),
        accept: e.accept === true,
        timestamp: typeof e.timestamp === 'number' ? e.timestamp : 0,
      })),
    }
  }

  /** `nodeId` answers `peerId`'s relayed request. */
  async respondHandshake(nodeId: number, peerId: number, accept: boolean): Promise<void> {
    await this.signed(
      { type: 'respond_handshake', node_id: nodeId, peer_id: peerId, accept },
      RegistryChallenge.respondHandshake(nodeId, peerId),
    )
  }

  // --- networks (issue 13; network-client.ts builds the requests) -----------------

  createNetwork(nodeId: number, o: { name: string; joinRule: JoinRule; token?: string; policy?: Partial<NetworkPolicy> }): Promise<{ networkId: number; name: string }> {
    return net.createNetwork(this.networkRequester, nodeId, o)
  }

  joinNetwork(nodeId: number, networkId: number, o?: { token?: string; invite?: SignedInvite }): Promise<{ networkId: number; address: string }> {
    return net.joinNetwork(this.networkRequester, nodeId, networkId, o)
  }

  leaveNetwork(nodeId: number, networkId: number): Promise<{ networkId: number }> {
    return net.leaveNetwork(this.networkRequester, nodeId, networkId)
  }

  /** Signs an invite locally, stores it at the registry, and returns it. */
  createInvite(nodeId: number, networkId: number, inviteeId: number, ttlSeconds: number): Promise<SignedInvite> {
    return net.createInvite(this.networkRequester, nodeId, networkId, inviteeId, ttlSeconds)
  }

  removeMember(nodeId: number, networkId: number, memberId: number): Promise<void> {
    return net.removeMember(this.networkRequester, nodeId, networkId, memberId)
  }

  setMemberRole(nodeId: number, networkId: number, memberId: number, role: NetworkRole): Promise<void> {
    return net.setMemberRole(this.networkRequester, nodeId, networkId, memberId, role)
  }

  /** Fields not given keep their current value. */
  setNetworkPolicy(nodeId: number, networkId: number, policy: Partial<NetworkPolicy>): Promise<NetworkPolicy> {
    return net.setNetworkPolicy(this.networkRequester, nodeId, networkId, policy)
  }

  networkInfo(nodeId: number, networkId: number): Promise<NetworkInfo> {
    return net.networkInfo(this.networkRequester, nodeId, networkId)
  }

  listNetworks(): Promise<NetworkSummary[]> {
    return net.listNetworks(this.networkRequester)
  }

  listNodes(nodeId: number, networkId: number): Promise<NetworkNode[]> {
    return net.listNodes(this.networkRequester, nodeId, networkId)
  }

  /** A whole audit chain (paged); chain 0 (trust) needs the registry's admin token. */
  auditLog(nodeId: number, networkId: number, o?: { adminToken?: string }): Promise<AuditEntry[]> {
    return net.auditLog(this.networkRequester, nodeId, networkId, o)
  }

  /**
   * Sends any request as is and resolves with the answer. An `error` answer
   * rejects with PT_REGISTRY_ERROR, or with the PT_NETWORK_* code it carries.
   */
  request(message: JsonObject): Promise<JsonObject> {
    if (this.closed) return Promise.reject(closedError())
    return new Promise((resolve, reject) => {
      const pending: PendingRequest = {
        message: withSortedKeys(message),
        resolve,
        reject,
        timer: setTimeout(() => this.onTimeout(pending), this.timeoutMs),
        settled: false,
        retried: false,
      }
      const lane = typeof message.type === 'string' && DIRECTORY_QUERIES.has(message.type) ? this.queue : this.ownQueue
      lane.push(pending)
      void this.pump()
    })
  }

  /** Fails queued requests with PT_REGISTRY_CLOSED and drops the connection. */
  close(): void {
    if (this.closed) return
    this.closed = true
    for (const lane of [this.ownQueue, this.queue]) {
      for (const pending of lane) this.settle(pending, closedError())
      lane.length = 0
    }
    this.connection?.destroy()
    this.connection = null
    if (this.sleepTimer !== null) clearTimeout(this.sleepTimer)
    this.wakeSleeper?.()
  }

  // --- queue and connection ------------------------------------------------------

  private signed(message: JsonObject, challenge: string): Promise<JsonObject> {
    return this.request({ ...message, signature: this.identity.signChallenge(challenge) })
  }

  private async pump(): Promise<void> {
    if (this.pumping) return
    this.pumping = true
    try {
      while (!this.closed) {
        const pending = this.nextPending()
        if (pending === undefined) break
        let connection: RegistryClientConnection
        try {
          connection = await this.connect()
        } catch (err) {
          this.settle(pending, err as Error)
          continue
        }
        if (pending.settled) continue
        this.inFlight = pending
        try {
          const response = await connection.exchange(pending.message)
          this.settleWithResponse(pending, response)
        } catch (err) {
          if (pending.settled || this.closed) continue
          if (!pending.retried) {
            // The connection broke under this request: reconnect and send it once more (as Go does).
            pending.retried = true
            this.logger.debug('registry connection lost; retrying request', { type: pending.message.type, error: (err as Error).message })
            continue
          }
          this.settle(pending, this.unreachable((err as Error).message))
        } finally {
          this.inFlight = null
        }
      }
    } finally {
      this.pumping = false
    }
  }

  /** The request to send next: the node's own first; settled ones are dropped from the fronts. */
  private nextPending(): PendingRequest | undefined {
    for (const lane of [this.ownQueue, this.queue]) {
      while (lane.length > 0 && lane[0]!.settled) lane.shift()
      if (lane.length > 0) return lane[0]
    }
    return undefined
  }

  /** The open connection, dialling with backoff if there is none. */
  private async connect(): Promise<RegistryClientConnection> {
    if (this.connection?.isOpen) return this.connection
    this.connection = null
    let delay = this.policy.initialDelayMs
    for (let attempt = 1; attempt <= this.policy.maxAttempts; attempt++) {
      if (attempt > 1) {
        await this.sleep(delay)
        delay = Math.min(delay * 2, this.policy.maxDelayMs)
      }
      // One try dials every front end once, the last one that worked first.
      for (let k = 0; k < this.endpoints.length; k++) {
        if (this.closed) throw closedError()
        const index = (this.current + k) % this.endpoints.length
        const endpoint = this.endpoints[index]!
        try {
          const connection = await RegistryClientConnection.open(endpoint.host, endpoint.port, this.policy.dialTimeoutMs, REGISTRY_MAX_MESSAGE, this.tls)
          if (this.closed) {
            connection.destroy()
            throw closedError()
          }
          if (index !== this.current) this.logger.info('registry front end changed', { from: this.address, to: formatHostPort(endpoint.host, endpoint.port) })
          this.current = index
          this.dialError = null
          this.connection = connection
          this.logger.debug('connected to registry', { registry: this.address })
          return connection
        } catch (err) {
          if (!(err instanceof ConnectionLost)) throw err
          this.dialError = this.endpoints.length > 1 ? `${formatHostPort(endpoint.host, endpoint.port)}: ${err.message}` : err.message
          this.logger.debug('registry dial failed', { registry: formatHostPort(endpoint.host, endpoint.port), attempt, error: err.message })
        }
      }
    }
    const reason = this.dialError ?? 'no connection'
    this.dialError = null
    throw this.unreachable(reason)
  }

  private sleep(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      this.wakeSleeper = resolve
      this.sleepTimer = setTimeout(resolve, ms)
    }).then(() => {
      this.sleepTimer = null
      this.wakeSleeper = null
    })
  }

  private onTimeout(pending: PendingRequest): void {
    if (pending.settled) return
    if (pending === this.inFlight) {
      this.settle(pending, new RegistryError(RegistryErrorCode.TIMEOUT, `registry ${this.address} did not answer ${String(pending.message.type)} within ${this.timeoutMs} ms`, {
        hint: 'the registry may be overloaded or the network path lossy',
      }))
      // A late answer would be taken for the next request's: start over on a fresh connection.
      this.connection?.destroy('request timed out')
      this.connection = null
    } else if (this.dialError !== null) {
      this.settle(pending, this.unreachable(this.dialError))
    } else {
      this.settle(pending, new RegistryError(RegistryErrorCode.TIMEOUT, `${String(pending.message.type)} to registry ${this.address} timed out in the queue after ${this.timeoutMs} ms`))
    }
  }

  private settleWithResponse(pending: PendingRequest, response: JsonObject): void {
    if (typeof response.error === 'string') {
      const code = response.code
      this.settle(
        pending,
        isNetworkErrorCode(code)
          ? new RegistryError(code, response.error, { serverError: response.error, ...hintFor(code, pending.message) })
          : new RegistryError(RegistryErrorCode.ERROR, `registry refused ${String(pending.message.type)}: ${response.error}`, {
            serverError: response.error,
          }),
      )
      return
    }
    if (pending.settled) return
    pending.settled = true
    clearTimeout(pending.timer)
    pending.resolve(response)
  }

  private settle(pending: PendingRequest, err: Error): void {
    if (pending.settled) return
    pending.settled = true
    clearTimeout(pending.timer)
    pending.reject(err)
  }

  private unreachable(reason: string): RegistryError {
    if (this.endpoints.length === 1) {
      return new RegistryError(RegistryErrorCode.UNREACHABLE, `registry ${this.address} unreachable: ${reason}`, {
        hint: `check that a registry listens on ${this.address} and that this host can reach it over TCP`,
      })
    }
    const all = this.addresses.join(', ')
    return new RegistryError(RegistryErrorCode.UNREACHABLE, `no registry front end reachable (${all}): ${reason}`, {
      hint: `check that at least one of ${all} runs a registry and that this host can reach it over TCP`,
    })
  }
}

function hintFor(code: keyof typeof NETWORK_ERROR_HINTS, request: JsonObject): { hint?: string } {
  if (code === 'PT_NETWORK_NOT_ADMIN' && request.type === 'audit_log' && request.network_id === 0) {
    return { hint: "the trust chain needs the registry's admin token (`registry --admin-token`): pass it with --admin-token" }
  }
  const hint = NETWORK_ERROR_HINTS[code]
  return hint === undefined ? {} : { hint }
}

function closedError(): RegistryError {
  return new RegistryError(RegistryErrorCode.CLOSED, 'registry client closed')
}

function num(r: JsonObject, key: string): number {
  const v = r[key]
  if (typeof v !== 'number') throw badResponse(r, key)
  return v
}

function str(r: JsonObject, key: string): string {
  const v = r[key]
  if (typeof v !== 'string') throw badResponse(r, key)
  return v
}

function badResponse(r: JsonObject, key: string): RegistryError {
  return new RegistryError(RegistryErrorCode.BAD_RESPONSE, `registry answer ${String(r.type)} lacks "${key}"`)
}

function poloScore(r: JsonObject): PoloScore {
  return { nodeId: num(r, 'node_id'), poloScore: num(r, 'polo_score') }
}
