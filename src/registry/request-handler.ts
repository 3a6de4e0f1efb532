/**
 * The registry's request → response logic (docs/wire.md §10.5), without sockets:
 * the server feeds it decoded JSON objects and the client's address, and
 * writes back what it returns. Requests are asynchronous (the store is, issue
 * 14); the server awaits each before reading the next from its connection,
 * which is what gives every connection its strict order. Several changes that
 * belong together run in one store transaction; a request whose store fails
 * is answered "registry store unavailable".
 *
 * Differences from the Go reference, all wire-compatible (§17 item 11):
 *   - errors say why (`"signature invalid"`, `"not found"` ...) instead of
 *     `"request failed"`; Go clients only look for the `error` key;
 *   - a new key registering with a known `owner` gets a fresh node ID (Go
 *     hands the owner's ID over without any proof);
 *   - a trust pair needs both nodes' consent (trust-rules.ts);
 *   - `punch` returns endpoints only to a node allowed to resolve the other;
 *   - a relayed accept is queued only when it answers a request (Go daemons
 *     trust any relayed accept unconditionally, §11.2);
 *   - `update/set_polo_score` and `beacon_register` stay unsigned but are
 *     rate limited per source IP (per front end: these limits live in this
 *     process's memory, as does the per-IP limit on new registrations);
 *   - IDs must be integers in range (Go maps junk to node 0);
 *   - an unsigned `register` with a known key does not move the node's address
 *     until the node signs a request on that connection (address-claims.ts);
 *   - networks work (networks.ts, issue 13): signed writes with replay
 *     protection, member-only reads, and an audit chain per network; trust
 *     changes made by report_trust/revoke_trust go into chain 0.
 */
import { verifyChallenge, decodeStdBase64, ED25519_PUBLIC_KEY_SIZE } from '../crypto/identity.js'
import { formatAddress } from '../protocol/address.js'
import type { JsonObject } from '../protocol/registry-framing.js'
import { nullLogger, type Logger } from '../logger.js'
import { claimRegistration, confirmSigner, type ConnectionState } from './address-claims.js'
import { RegistryChallenge } from './challenges.js'
import { formatHostPort, isHostPort, portOf } from './endpoints.js'
import type { RegistryLimits } from './limits.js'
import { KeyedRateLimiter } from './rate-limiter.js'
import { PublicKeyCache } from './key-cache.js'
import {
  MAX_NODE_ID,
  RequestRejected,
  badField,
  hostnameProblem,
  readBoolean,
  readInteger,
  readNodeId,
  readOptionalString,
  readSignature,
  readString,
  readTags,
  type RejectReason,
} from './request-fields.js'
import { RegistryError, RegistryErrorCode } from './errors.js'
import { auditChainLock, type NodeRecord, type RegistryStore } from './store-api.js'
import { establishIfMutual, mayResolve } from './trust-rules.js'
import { NetworkRequests } from './networks.js'

/** Where a request came from: the TCP peer of its connection, and what that connection has proven so far. */
export interface RequestOrigin {
  ip: string
  port: number
  /** One per connection, kept by the server across its requests (address-claims.ts). */
  connection: ConnectionState
}

export interface HandledRequest {
  response: JsonObject
  /** Null when the request succeeded. */
  rejected: RejectReason | null
}

const POLO_SCORE_LIMIT = 0x7fffffff
/** Trust changes append to chain 0: with several front ends they queue on it (store-api.ts). */
const TRUST_CHAIN = { serializeOn: [auditChainLock(0)] }
/** What a request hears when the database failed under it (the server carries on). */
export const STORE_UNAVAILABLE = 'registry store unavailable'

type Handler = (req: JsonObject, origin: RequestOrigin) => Promise<JsonObject>

export class RegistryRequestHandler {
  private readonly store: RegistryStore
  private readonly now: () => number
  private readonly limits: RegistryLimits
  private readonly logger: Logger
  private readonly registrations: KeyedRateLimiter
  private readonly scoreChanges: KeyedRateLimiter
  private readonly beaconRegistrations: KeyedRateLimiter
  private readonly handlers: ReadonlyMap<string, Handler>
  /** Known nodes' keys, imported once (see key-cache.ts). */
  private readonly keyCache = new PublicKeyCache()
  private readonly networks: NetworkRequests<RequestOrigin>

  constructor(options: { store: RegistryStore; now: () => number; limits: RegistryLimits; logger?: Logger; adminToken?: string }) {
    this.store = options.store
    this.now = options.now
    this.limits = options.limits
    this.logger = options.logger ?? nullLogger
    const minute = 60_000
    this.registrations = new KeyedRateLimiter({ capacity: this.limits.registrationsPerMinute, periodMs: minute })
    this.scoreChanges = new KeyedRateLimiter({ capacity: this.limits.scoreChangesPerMinute, periodMs: minute })
    this.beaconRegistrations = new KeyedRateLimiter({ capacity: this.limits.beaconRegistrationsPerMinute, periodMs: minute })
    this.networks = new NetworkRequests<RequestOrigin>({
      store: this.store,
      now: this.now,
      ...(options.adminToken !== undefined ? { adminToken: options.adminToken } : {}),
      authenticate: (req, origin, idKey, challenge) => this.authenticate(req, origin, idKey, challenge),
    })
    this.handlers = new Map<string, Handler>([
      ['register', (r, o) => this.register(r, o)],
      ['heartbeat', (r, o) => this.heartbeat(r, o)],
      ['lookup', (r) => this.lookup(r)],
      ['resolve', (r, o) => this.resolve(r, o)],
      ['set_visibility', (r, o) => this.setVisibility(r, o)],
      ['set_hostname', (r, o) => this.setHostname(r, o)],
      ['resolve_hostname', (r) => this.resolveHostname(r)],
      ['set_tags', (r, o) => this.setTags(r, o)],
      ['set_task_exec', (r, o) => this.setTaskExec(r, o)],
      ['deregister', (r, o) => this.deregister(r, o)],
      ['report_trust', (r, o) => this.reportTrust(r, o)],
      ['revoke_trust', (r, o) => this.revokeTrust(r, o)],
      ['request_handshake', (r, o) => this.requestHandshake(r, o)],
      ['poll_handshakes', (r, o) => this.pollHandshakes(r, o)],
      ['respond_handshake', (r, o) => this.respondHandshake(r, o)],
      ['punch', (r, o) => this.punch(r, o)],
      ['get_polo_score', (r) => this.getPoloScore(r)],
      ['update_polo_score', (r, o) => this.updatePoloScore(r, o)],
      ['set_polo_score', (r, o) => this.setPoloScore(r, o)],
      ['beacon_register', (r, o) => this.beaconRegister(r, o)],
      ['beacon_list', () => this.beaconList()],
      ...this.networks.handlers(),
      ['rotate_key', (r, o) => this.rotateKey(r, o)],
      ['subscribe_replication', () => {
        throw new RequestRejected('unsupported', 'replication not configured')
      }],
    ])
  }

  /** Answers one request. Never rejects. */
  async handle(req: JsonObject, origin: RequestOrigin): Promise<HandledRequest> {
    const type = req.type
    try {
      if (typeof type !== 'string') throw badField('type')
      const handler = this.handlers.get(type)
      if (handler === undefined) throw new RequestRejected('unknown-type', 'unknown request type')
      return { response: await handler(req, origin), rejected: null }
    } catch (err) {
      if (err instanceof RequestRejected) return { response: errorResponse(err.message, err.code), rejected: err.reason }
      const what = String(type).slice(0, 40)
      if (err instanceof RegistryError && err.code === RegistryErrorCode.STORE) {
        this.logger.error('registry store failed', { type: what, error: err.message })
        return { response: errorResponse(STORE_UNAVAILABLE), rejected: 'internal' }
      }
      this.logger.error('registry request failed', { type: what, error: (err as Error).message })
      return { response: errorResponse('internal error'), rejected: 'internal' }
    }
  }

  /** Takes stale nodes offline and forgets expired beacons and requests. */
  async reap(): Promise<{ nodes: number[]; beacons: number; requests: number }> {
    const now = this.now()
    const nodes = await this.store.reapStale(now - this.limits.staleAfterMs)
    const beacons = await this.store.pruneBeacons(now - this.limits.beaconTtlMs)
    const requests = await this.store.pruneAnsweredlessRequests(now - this.limits.unansweredRequestTtlMs)
    await this.networks.prune(now)
    return { nodes, beacons, requests }
  }

  // --- nodes -----------------------------------------------------------------

  private async register(req: JsonObject, origin: RequestOrigin): Promise<JsonObject> {
    const publicKey = readPublicKey(req, 'public_key')
    const listenAddr = readOptionalString(req, 'listen_addr', 300) ?? ''
    const owner = nonEmpty(readOptionalString(req, 'owner', 255))
    const hostname = nonEmpty(readOptionalString(req, 'hostname', 255))
    const now = this.now()
    const listenPort = portOf(listenAddr)
    const realAddr = formatHostPort(origin.ip, listenPort ?? origin.port)

    // Hardening: `owner` never selects the ID. A known key keeps its ID; a new key always gets a
    // fresh one, even when another node registered with the same owner string (Go hands that ID over).
    // Hardening: a known key gets its ID back (as in Go) but moves its address only with proof.
    // The key is looked up inside the transaction: with several front ends, two registrations of
    // one new key serialise there instead of both creating a node.
    const node = await this.store.transaction(async (tx) => {
      const known = await tx.findKey(publicKey)
      if (known?.retired) throw new RequestRejected('conflict', 'public key was rotated out')
      if (known === null) {
        // Only unknown keys cost a token: a known node re-registering after a network hiccup is never locked out.
        if (!this.registrations.tryTake(origin.ip, now)) throw new RequestRejected('rate-limited', 'rate limited')
        return tx.createNode({ publicKey, owner: owner ?? null, realAddr, now })
      }
      const current = await tx.getNode(known.nodeId)
      if (current === null) throw new Error(`key index names missing node ${known.nodeId}`)
      return claimRegistration(tx, current, { realAddr, owner: owner ?? null, now }, origin.connection)
    })

    // The node's signed requests follow at once (heartbeats every 30 s): import its key now, so the
    // first round of heartbeats after a mass registration costs no more than the later ones.
    this.keyCache.get(publicKey)
    const response: JsonObject = {
      type: 'register_ok',
      node_id: node.id,
      network_id: 0,
      address: nodeAddress(node.id),
      public_key: publicKey,
    }
    if (hostname !== undefined) {
      const problem = hostnameProblem(hostname)
      if (problem !== null) response.hostname_error = problem
      else if (await this.store.setHostname(node.id, hostname)) response.hostname = hostname
      // else: held by another online node; not applied, as in Go.
    }
    return response
  }

  private async heartbeat(req: JsonObject, origin: RequestOrigin): Promise<JsonObject> {
    const node = await this.authenticate(req, origin, 'node_id', RegistryChallenge.heartbeat)
    const now = this.now()
    this.store.touchNode(node.id, now)
    return { type: 'heartbeat_ok', time: Math.floor(now / 1000) }
  }

  private async lookup(req: JsonObject): Promise<JsonObject> {
    const node = await this.onlineNode(readNodeId(req, 'node_id'))
    const response: JsonObject = {
      type: 'lookup_ok',
      node_id: node.id,
      address: nodeAddress(node.id),
      networks: [0, ...(await this.store.networks.networksOf(node.id))],
      public_key: node.publicKey,
      public: node.isPublic,
      polo_score: node.poloScore,
    }
    if (node.hostname !== null) response.hostname = node.hostname
    if (node.tags.length > 0) response.tags = node.tags
    if (node.taskExec) response.task_exec = true
    if (node.isPublic && node.realAddr !== null) response.real_addr = node.realAddr
    return response
  }

  private async resolve(req: JsonObject, origin: RequestOrigin): Promise<JsonObject> {
    const targetId = readNodeId(req, 'node_id')
    const requester = await this.authenticate(req, origin, 'requester_id', (id) => RegistryChallenge.resolve(id, targetId))
    const target = await this.onlineNode(targetId)
    if (!(await mayResolve(this.store, requester.id, target.id, target.isPublic))) {
      throw new RequestRejected('not-authorised', 'not authorised')
    }
    return { type: 'resolve_ok', node_id: target.id, real_addr: target.realAddr ?? '' }
  }

  private async setVisibility(req: JsonObject, origin: RequestOrigin): Promise<JsonObject> {
    const isPublic = readBoolean(req, 'public')
    const node = await this.authenticate(req, origin, 'node_id', RegistryChallenge.setVisibility)
    await this.store.setVisibility(node.id, isPublic)
    return { type: 'set_visibility_ok', node_id: node.id, visibility: isPublic ? 'public' : 'private' }
  }

  private async setHostname(req: JsonObject, origin: RequestOrigin): Promise<JsonObject> {
    const hostname = readString(req, 'hostname', 255)
    const node = await this.authenticate(req, origin, 'node_id', RegistryChallenge.setHostname)
    if (hostname !== '') {
      const problem = hostnameProblem(hostname)
      if (problem !== null) throw new RequestRejected('bad-field', problem)
    }
    if (!(await this.store.setHostname(node.id, hostname === '' ? null : hostname))) {
      throw new RequestRejected('conflict', 'hostname taken')
    }
    return { type: 'set_hostname_ok', node_id: node.id, hostname }
  }

  private async resolveHostname(req: JsonObject): Promise<JsonObject> {
    const hostname = readString(req, 'hostname', 255)
    const node = hostname === '' ? null : await this.store.findOnlineByHostname(hostname)
    if (node === null) throw new RequestRejected('not-found', 'not found')
    return { type: 'resolve_hostname_ok', node_id: node.id, address: nodeAddress(node.id), public: node.isPublic, hostname }
  }

  private async setTags(req: JsonObject, origin: RequestOrigin): Promise<JsonObject> {
    const tags = readTags(req)
    const node = await this.authenticate(req, origin, 'node_id', RegistryChallenge.setTags)
    await this.store.setTags(node.id, tags)
    return { type: 'set_tags_ok', node_id: node.id, tags }
  }

  private async setTaskExec(req: JsonObject, origin: RequestOrigin): Promise<JsonObject> {
    const enabled = readBoolean(req, 'enabled')
    const node = await this.authenticate(req, origin, 'node_id', RegistryChallenge.setTaskExec)
    await this.store.setTaskExec(node.id, enabled)
    return { type: 'set_task_exec_ok', node_id: node.id, task_exec: enabled }
  }

  private async deregister(req: JsonObject, origin: RequestOrigin): Promise<JsonObject> {
    const id = readNodeId(req, 'node_id')
    const node = await this.store.getNode(id)
    // Unknown IDs succeed quietly, as in Go; a known node must prove it is itself.
    if (node !== null) {
      this.verify(node, RegistryChallenge.deregister(id), readSignature(req))
      await confirmSigner(this.store, node, origin.connection)
      await this.store.markOffline(id)
    }
    return { type: 'deregister_ok' }
  }

  // --- trust and the handshake relay -----------------------------------------

  private async reportTrust(req: JsonObject, origin: RequestOrigin): Promise<JsonObject> {
    const peerId = readNodeId(req, 'peer_id')
    const node = await this.authenticate(req, origin, 'node_id', (id) => RegistryChallenge.reportTrust(id, peerId))
    const peer = await this.knownPeer(node, peerId)
    const now = this.now()
    await this.store.transaction(async (tx) => {
      const added = await tx.addTrustReport(node.id, peer.id, now)
      const hadPair = await tx.hasTrustPair(node.id, peer.id)
      const pair = await establishIfMutual(tx, node.id, peer.id, now)
      // Chain 0 records the changes only: a repeated report that changes nothing adds no entry.
      if (added || (pair && !hadPair)) await this.networks.recordTrust(tx, node, 'trust', peer.id, pair ? 'pair' : 'report', req.signature as string)
    }, TRUST_CHAIN)
    return { type: 'report_trust_ok' }
  }

  private async revokeTrust(req: JsonObject, origin: RequestOrigin): Promise<JsonObject> {
    const peerId = readNodeId(req, 'peer_id')
    const node = await this.authenticate(req, origin, 'node_id', (id) => RegistryChallenge.revokeTrust(id, peerId))
    const peer = await this.knownPeer(node, peerId)
    await this.store.transaction(async (tx) => {
      if (!(await tx.removeTrust(node.id, peer.id))) throw new RequestRejected('not-found', 'no trust to revoke')
      await this.networks.recordTrust(tx, node, 'revoke', peer.id, '', req.signature as string)
    }, TRUST_CHAIN)
    return { type: 'revoke_trust_ok' }
  }

  private async requestHandshake(req: JsonObject, origin: RequestOrigin): Promise<JsonObject> {
    const toId = readNodeId(req, 'to_node_id')
    const justification = readOptionalString(req, 'justification') ?? ''
    const from = await this.authenticate(req, origin, 'from_node_id', (id) => RegistryChallenge.requestHandshake(id, toId))
    const to = await this.onlineNode(toId)
    if (to.id === from.id) throw badField('to_node_id')
    const now = this.now()
    await this.store.transaction(async (tx) => {
      if ((await tx.countUnpolledRequests(to.id, from.id)) >= this.limits.handshakeInboxSize) {
        throw new RequestRejected('inbox-full', 'handshake inbox full')
      }
      await tx.putHandshakeRequest(from.id, to.id, justification, Math.floor(now / 1000), now)
      // If `to` already trusts `from`, this request completes the pair (Go daemons call that "mutual").
      await establishIfMutual(tx, from.id, to.id, now)
    })
    return { type: 'request_handshake_ok', status: 'delivered' }
  }

  private async pollHandshakes(req: JsonObject, origin: RequestOrigin): Promise<JsonObject> {
    const node = await this.authenticate(req, origin, 'node_id', RegistryChallenge.pollHandshakes)
    const requests = await this.store.takeHandshakeRequests(node.id)
    const responses = await this.store.takeHandshakeResponses(node.id)
    return {
      type: 'poll_handshakes_ok',
      requests: requests.map((r) => ({ from_node_id: r.fromNodeId, justification: r.justification, timestamp: r.timestamp })),
      responses: responses.map((r) => ({ from_node_id: r.fromNodeId, accept: r.accept, timestamp: r.timestamp })),
    }
  }

  private async respondHandshake(req: JsonObject, origin: RequestOrigin): Promise<JsonObject> {
    const peerId = readNodeId(req, 'peer_id')
    const accept = readBoolean(req, 'accept')
    const node = await this.authenticate(req, origin, 'node_id', (id) => RegistryChallenge.respondHandshake(id, peerId))
    const peer = await this.knownPeer(node, peerId)
    const now = this.now()
    const timestamp = Math.floor(now / 1000)
    await this.store.transaction(async (tx) => {
      const answersRequest = await tx.hasHandshakeRequest(peer.id, node.id)
      if (accept) {
        await tx.addTrustReport(node.id, peer.id, now)
        const trusted = await establishIfMutual(tx, node.id, peer.id, now)
        // An unsolicited accept is not relayed: Go requesters would trust it blindly.
        if (answersRequest || trusted) await tx.putHandshakeResponse(node.id, peer.id, true, timestamp)
      } else if (answersRequest) {
        await tx.putHandshakeResponse(node.id, peer.id, false, timestamp)
      }
      if (answersRequest) await tx.deleteHandshakeRequest(peer.id, node.id)
    })
    return { type: 'respond_handshake_ok', accept, peer_id: peer.id }
  }

  private async punch(req: JsonObject, origin: RequestOrigin): Promise<JsonObject> {
    const aId = readNodeId(req, 'node_a')
    const bId = readNodeId(req, 'node_b')
    const requester = await this.authenticate(req, origin, 'requester_id', () => RegistryChallenge.punch(aId, bId))
    if (requester.id !== aId && requester.id !== bId) throw new RequestRejected('not-authorised', 'not authorised')
    const a = await this.onlineNode(aId)
    const b = await this.onlineNode(bId)
    // Hardening: Go returns both endpoints to anyone; we only to a node that may resolve the other.
    const other = requester.id === a.id ? b : a
    if (!(await mayResolve(this.store, requester.id, other.id, other.isPublic))) {
      throw new RequestRejected('not-authorised', 'not authorised')
    }
    return { type: 'punch_ok', node_a: a.id, node_a_addr: a.realAddr ?? '', node_b: b.id, node_b_addr: b.realAddr ?? '' }
  }

  // --- reputation --------------------------------------------------------------

  private async getPoloScore(req: JsonObject): Promise<JsonObject> {
    return scoreResponse('get_polo_score_ok', await this.onlineNode(readNodeId(req, 'node_id')))
  }

  private async updatePoloScore(req: JsonObject, origin: RequestOrigin): Promise<JsonObject> {
    const delta = readInteger(req, 'delta', -POLO_SCORE_LIMIT, POLO_SCORE_LIMIT)
    const node = await this.onlineNode(readNodeId(req, 'node_id'))
    this.takeScoreToken(origin)
    const score = Math.max(-POLO_SCORE_LIMIT, Math.min(POLO_SCORE_LIMIT, node.poloScore + delta))
    await this.store.setPoloScore(node.id, score)
    return scoreResponse('update_polo_score_ok', { ...node, poloScore: score })
  }

  private async setPoloScore(req: JsonObject, origin: RequestOrigin): Promise<JsonObject> {
    const score = readInteger(req, 'polo_score', -POLO_SCORE_LIMIT, POLO_SCORE_LIMIT)
    const node = await this.onlineNode(readNodeId(req, 'node_id'))
    this.takeScoreToken(origin)
    await this.store.setPoloScore(node.id, score)
    return scoreResponse('set_polo_score_ok', { ...node, poloScore: score })
  }

  /** Go leaves score changes unsigned (its daemons send them so); we at least rate limit them. */
  private takeScoreToken(origin: RequestOrigin): void {
    if (!this.scoreChanges.tryTake(origin.ip, this.now())) throw new RequestRejected('rate-limited', 'rate limited')
  }

  // --- beacons and networks ------------------------------------------------------

  private async beaconRegister(req: JsonObject, origin: RequestOrigin): Promise<JsonObject> {
    const id = readInteger(req, 'beacon_id', 1, MAX_NODE_ID)
    const addr = readString(req, 'addr', 262)
    if (!isHostPort(addr)) throw badField('addr')
    if (!this.beaconRegistrations.tryTake(origin.ip, this.now())) throw new RequestRejected('rate-limited', 'rate limited')
    await this.store.putBeacon(id, addr, this.now())
    return { type: 'beacon_register_ok', beacon_id: id }
  }

  private async beaconList(): Promise<JsonObject> {
    const beacons = await this.store.listBeacons(this.now() - this.limits.beaconTtlMs)
    return { type: 'beacon_list_ok', beacons: beacons.map((b) => ({ id: b.id, addr: b.addr })) }
  }

  private async rotateKey(req: JsonObject, origin: RequestOrigin): Promise<JsonObject> {
    const newKey = readPublicKey(req, 'new_public_key')
    const node = await this.authenticate(req, origin, 'node_id', RegistryChallenge.rotateKey)
    if ((await this.store.findKey(newKey)) !== null) throw new RequestRejected('conflict', 'public key already in use')
    await this.store.rotateKey(node.id, newKey, this.now())
    return { type: 'rotate_key_ok', node_id: node.id, address: nodeAddress(node.id), public_key: newKey }
  }

  // --- helpers -----------------------------------------------------------------

  /**
   * The online node named by `req[idKey]`, after checking its signature over
   * `challenge(id)`. The connection then speaks for that node (address-claims.ts).
   */
  private async authenticate(req: JsonObject, origin: RequestOrigin, idKey: string, challenge: (id: number) => string): Promise<NodeRecord> {
    const id = readNodeId(req, idKey)
    const signature = readSignature(req)
    const node = await this.onlineNode(id)
    this.verify(node, challenge(id), signature)
    return confirmSigner(this.store, node, origin.connection)
  }

  private verify(node: NodeRecord, challenge: string, signature: string): void {
    const key = this.keyCache.get(node.publicKey)
    if (key === null || !verifyChallenge(key, challenge, signature)) {
      throw new RequestRejected('bad-signature', 'signature invalid')
    }
  }

  /** Reaped and deregistered nodes are gone as far as clients can tell (Go deletes them). */
  private async onlineNode(id: number): Promise<NodeRecord> {
    const node = await this.store.getNode(id)
    if (node === null || !node.online) throw new RequestRejected('not-found', 'not found')
    return node
  }

  /** A peer for trust operations: any node ever registered (revoking trust in an offline node must work). */
  private async knownPeer(node: NodeRecord, peerId: number): Promise<NodeRecord> {
    if (peerId === node.id) throw badField('peer_id')
    const peer = await this.store.getNode(peerId)
    if (peer === null) throw new RequestRejected('not-found', 'not found')
    return peer
  }
}

/** `code` (network operations) rides next to `error`, which is all Go clients read. */
export function errorResponse(text: string, code?: string): JsonObject {
  return code === undefined ? { type: 'error', error: text } : { type: 'error', error: text, code }
}

function nodeAddress(id: number): string {
  return formatAddress({ network: 0, node: id })
}

function nonEmpty(text: string | undefined): string | undefined {
  return text === undefined || text === '' ? undefined : text
}

/** Standard base64 of exactly 32 bytes, returned in canonical form. */
function readPublicKey(req: JsonObject, key: string): string {
  const text = readString(req, key, 64)
  const bytes = decodeStdBase64(text)
  if (bytes === null || bytes.length !== ED25519_PUBLIC_KEY_SIZE) throw badField(key)
  return bytes.toString('base64')
}

function scoreResponse(type: string, node: NodeRecord): JsonObject {
  return { type, node_id: node.id, address: nodeAddress(node.id), polo_score: node.poloScore }
}
