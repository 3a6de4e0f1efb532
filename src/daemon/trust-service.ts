/**
 * The trust handshake (docs/wire.md §11): direct messages on port 444 and the
 * registry-relayed inboxes, over the persisted `TrustStore`.
 *
 * Wire: one JSON object per fresh stream, keys in Go's struct order
 * `type, node_id, public_key, justification, signature, reason, timestamp`,
 * signature = base64 Ed25519 over `handshake:<sender>:<receiver>` for all four
 * types (request, accept, reject, revoke).
 *
 * Hardening over the Go snapshot (§17 item 9), wire-compatible:
 *  - the sender must be the tunnel-authenticated source of the stream;
 *  - a signature is required and checked against the **registry's** key for
 *    `node_id` (a non-empty `public_key` must equal it);
 *  - timestamps older than 5 min or more than 30 s ahead are refused, and a
 *    replay cache (SHA-256 of the bytes, 10 min) refuses repeats;
 *  - `handshake_accept`, direct or relayed, creates trust **only** when we
 *    have an outstanding request to that node.
 * Refusals are counted by reason in `stats()`; nothing throws at the sender.
 *
 * Operator actions follow §11.1: request = mark outgoing, direct message and
 * registry `request_handshake` (the registry then knows our consent, so the
 * pair forms whichever way the answer comes); approve = trust, `report_trust`,
 * `respond_handshake(accept)`, direct accept; reject and revoke likewise.
 * Direct sends run in the background and never fail an action by themselves.
 */
import { createHash } from 'node:crypto'
import type { Identity } from '../crypto/identity.js'
import { verifyChallenge } from '../crypto/identity.js'
import type { HandshakeInbox, RegistryClient } from '../registry/client.js'
import { nullLogger, type Logger } from '../logger.js'
import type { TrustStore } from './trust-store.js'
import type { RegistryDirectory } from './registry-session.js'
import { DaemonError, DaemonErrorCode } from './errors.js'

export const TRUST_PORT = 444
/** Go takes exactly the first segment; keep messages within one 4096-byte segment. */
export const MAX_HANDSHAKE_MESSAGE = 4096
const MAX_TEXT = 1024

export type HandshakeType = 'handshake_request' | 'handshake_accept' | 'handshake_reject' | 'handshake_revoke'
const TYPES: ReadonlySet<string> = new Set(['handshake_request', 'handshake_accept', 'handshake_reject', 'handshake_revoke'])

export interface HandshakeMessage {
  type: HandshakeType
  node_id: number
  public_key: string
  justification: string
  signature: string
  reason: string
  timestamp: number
}

export function handshakeChallenge(from: number, to: number): string {
  return `handshake:${from}:${to}`
}

/** Builds and signs one direct message, keys in Go's order. */
export function encodeHandshakeMessage(
  identity: Identity,
  from: number,
  to: number,
  type: HandshakeType,
  text: { justification?: string; reason?: string; timestampS?: number } = {},
): Buffer {
  const message: HandshakeMessage = {
    type,
    node_id: from,
    public_key: Buffer.from(identity.publicKey).toString('base64'),
    justification: clip(text.justification ?? ''),
    signature: identity.signChallenge(handshakeChallenge(from, to)),
    reason: clip(text.reason ?? ''),
    timestamp: text.timestampS ?? Math.floor(Date.now() / 1000),
  }
  return Buffer.from(JSON.stringify(message), 'utf8')
}

function clip(s: string): string {
  return s.length > MAX_TEXT ? s.slice(0, MAX_TEXT) : s
}

export type HandshakeRefusal =
  | 'bad-json'
  | 'bad-type'
  | 'sender-mismatch'
  | 'too-old'
  | 'in-future'
  | 'replay'
  | 'no-signature'
  | 'unknown-key'
  | 'key-mismatch'
  | 'bad-signature'
  | 'unsolicited-accept'

export interface TrustServiceStats {
  directReceived: number
  directAccepted: number
  directSent: number
  directSendFailed: number
  relayedRequests: number
  relayedResponses: number
  /** Requests dropped because the pending table was full (`MAX_PENDING_TRUST_REQUESTS`). */
  pendingRefused: number
  refused: Record<HandshakeRefusal, number>
}

export interface TrustServiceOptions {
  store: TrustStore
  identity: Identity
  client: RegistryClient
  directory: RegistryDirectory
  selfId: () => number
  /** Sends one message on a fresh stream to `node`:444; resolves when it was handed over, rejects on failure. */
  sendDirect: (node: number, message: Buffer) => Promise<void>
  /** Trust for `node` was granted (called once reported to the registry) or taken away (drop sessions, caches). */
  onTrustChanged: (node: number, trusted: boolean) => void
  autoAccept: boolean
  /** Every trust decision this node makes (the local trust log, trust-log.ts); never throws back. */
  onDecision?: (action: 'approve' | 'reject' | 'revoke' | 'auto-accept' | 'mutual' | 'refused' | 'request', node: number, detail: string) => void
  logger?: Logger
  /** Wall clock in ms (timestamps are Unix seconds). */
  wallClock?: () => number
  maxAgeS?: number
  maxFutureS?: number
  replayTtlMs?: number
}

export class TrustService {
  private readonly store: TrustStore
  private readonly identity: Identity
  private readonly client: RegistryClient
  private readonly directory: RegistryDirectory
  private readonly selfId: () => number
  private readonly sendDirectRaw: (node: number, message: Buffer) => Promise<void>
  private readonly onTrustChanged: (node: number, trusted: boolean) => void
  readonly autoAccept: boolean
  private readonly decided: NonNullable<TrustServiceOptions['onDecision']>
  private readonly logger: Logger
  private readonly wallClock: () => number
  private readonly maxAgeS: number
  private readonly maxFutureS: number
  private readonly replayTtlMs: number
  /** SHA-256 (hex) of accepted messages → expiry (wall ms). */
  private readonly replay = new Map<string, number>()
  private readonly background = new Set<Promise<unknown>>()
  private closed = false
  private readonly st: TrustServiceStats = {
    directReceived: 0,
    directAccepted: 0,
    directSent: 0,
    directSendFailed: 0,
    relayedRequests: 0,
    relayedResponses: 0,
    pendingRefused: 0,
    refused: {
      'bad-json': 0,
      'bad-type': 0,
      'sender-mismatch': 0,
      'too-old': 0,
      'in-future': 0,
      replay: 0,
      'no-signature': 0,
      'unknown-key': 0,
      'key-mismatch': 0,
      'bad-signature': 0,
      'unsolicited-accept': 0,
    },
  }

  constructor(options: TrustServiceOptions) {
    this.store = options.store
    this.identity = options.identity
    this.client = options.client
    this.directory = options.directory
    this.selfId = options.selfId
    this.sendDirectRaw = options.sendDirect
    this.onTrustChanged = options.onTrustChanged
    this.autoAccept = options.autoAccept
    this.decided = options.onDecision ?? (() => {})
    this.logger = options.logger ?? nullLogger
    this.wallClock = options.wallClock ?? Date.now
    this.maxAgeS = options.maxAgeS ?? 300
    this.maxFutureS = options.maxFutureS ?? 30
    this.replayTtlMs = options.replayTtlMs ?? 600_000
  }

  stats(): TrustServiceStats {
    return { ...this.st, refused: { ...this.st.refused } }
  }

  isTrusted(node: number): boolean {
    return this.store.isTrusted(node)
  }

  // ───────────────────────── incoming, direct (port 444) ─────────────────────────

  /**
   * One message read from a stream that `remoteNode` (tunnel-authenticated)
   * opened to our port 444. Returns the refusal reason, or null if handled.
   */
  async handleDirect(remoteNode: number, bytes: Uint8Array): Promise<HandshakeRefusal | null> {
    this.st.directReceived++
    const m = await this.verifyDirect(remoteNode, bytes)
    if (typeof m === 'string') {
      this.st.refused[m]++
      this.logger.info('handshake message refused', { node: remoteNode, reason: m })
      this.decided('refused', remoteNode, m)
      return m
    }
    this.st.directAccepted++
    switch (m.type) {
      case 'handshake_request':
        await this.onRequest(remoteNode, m.justification, m.public_key, 'direct')
        return null
      case 'handshake_accept':
        if (!(await this.onAccept(remoteNode))) {
          this.st.refused['unsolicited-accept']++
          return 'unsolicited-accept'
        }
        return null
      case 'handshake_reject':
        this.onReject(remoteNode)
        return null
      case 'handshake_revoke':
        await this.onRevoke(remoteNode)
        return null
    }
  }

  /** The verified message, or why it is refused. */
  private async verifyDirect(remoteNode: number, bytes: Uint8Array): Promise<HandshakeMessage | HandshakeRefusal> {
    let parsed: unknown
    try {
      parsed = JSON.parse(Buffer.from(bytes).toString('utf8'))
    } catch {
      return 'bad-json'
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return 'bad-json'
    const o = parsed as Record<string, unknown>
    if (typeof o.type !== 'string' || !TYPES.has(o.type)) return 'bad-type'
    if (typeof o.node_id !== 'number' || o.node_id !== remoteNode) return 'sender-mismatch'
    const nowS = this.wallClock() / 1000
    const ts = typeof o.timestamp === 'number' ? o.timestamp : 0
    if (ts < nowS - this.maxAgeS) return 'too-old'
    if (ts > nowS + this.maxFutureS) return 'in-future'
    const digest = createHash('sha256').update(bytes).digest('hex')
    this.pruneReplay()
    if (this.replay.has(digest)) return 'replay'
    const signature = typeof o.signature === 'string' ? o.signature : ''
    if (signature === '') return 'no-signature'
    const registered = await this.directory.lookupKey(remoteNode)
    if (registered === null) return 'unknown-key'
    const publicKey = typeof o.public_key === 'string' ? o.public_key : ''
    if (publicKey !== '' && publicKey !== Buffer.from(registered).toString('base64')) return 'key-mismatch'
    if (!verifyChallenge(registered, handshakeChallenge(remoteNode, this.selfId()), signature)) return 'bad-signature'
    this.replay.set(digest, this.wallClock() + this.replayTtlMs)
    return {
      type: o.type as HandshakeType,
      node_id: remoteNode,
      public_key: publicKey,
      justification: typeof o.justification === 'string' ? clip(o.justification) : '',
      signature,
      reason: typeof o.reason === 'string' ? clip(o.reason) : '',
      timestamp: ts,
    }
  }

  private pruneReplay(): void {
    if (this.replay.size < 256) return
    const now = this.wallClock()
    for (const [k, exp] of this.replay) if (exp <= now) this.replay.delete(k)
  }

  // ───────────────────────── incoming, relayed (poll_handshakes) ─────────────────────────

  async handleInbox(inbox: HandshakeInbox): Promise<void> {
    for (const r of inbox.requests) {
      this.st.relayedRequests++
      await this.onRequest(r.fromNodeId, r.justification, '', 'relay').catch((err: unknown) =>
        this.logger.warn('relayed handshake request failed', { node: r.fromNodeId, error: String(err) }),
      )
    }
    for (const r of inbox.responses) {
      this.st.relayedResponses++
      if (r.accept) {
        if (!(await this.onAccept(r.fromNodeId))) this.st.refused['unsolicited-accept']++
      } else {
        this.onReject(r.fromNodeId)
      }
    }
  }

  // ───────────────────────── shared reactions ─────────────────────────

  private async onRequest(node: number, justification: string, publicKey: string, via: 'direct' | 'relay'): Promise<void> {
    const self = this.selfId()
    if (node === self) return
    if (this.store.isTrusted(node)) {
      // They lost our answer (or re-ask): answer again the way they asked.
      if (via === 'relay') await this.client.respondHandshake(self, node, true).catch(() => {})
      else this.sendInBackground(node, 'handshake_accept')
      return
    }
    if (this.store.hasOutgoing(node)) {
      // We asked them too: mutual.
      await this.grant(node, true)
      this.decided('mutual', node, 'both sides asked')
      await this.client.respondHandshake(self, node, true).catch(() => {})
      this.sendInBackground(node, 'handshake_accept')
      return
    }
    const outcome = this.store.addPending(node, justification, publicKey)
    if (outcome === 'full') {
      // Refused without an answer: a flood of requesters gets nothing back from us.
      this.st.pendingRefused++
      if (this.st.pendingRefused % 1000 === 1) this.logger.warn('trust request dropped: too many pending requests', { node, via, dropped: this.st.pendingRefused })
      return
    }
    if (outcome === 'added') this.logger.info('trust request received', { node, via, justification })
    if (this.autoAccept) await this.approve(node, 'auto-accept')
  }

  /** Returns false when the accept answers no request of ours (refused). */
  private async onAccept(node: number): Promise<boolean> {
    if (this.store.isTrusted(node)) return true
    if (!this.store.hasOutgoing(node)) return false
    await this.grant(node, true)
    this.decided('mutual', node, 'our request was accepted')
    return true
  }

  private onReject(node: number): void {
    if (this.store.removeOutgoing(node)) this.logger.info('trust request rejected by peer', { node })
  }

  private async onRevoke(node: number): Promise<void> {
    const wasTrusted = this.store.forget(node)
    if (!wasTrusted) return
    this.logger.info('trust revoked by peer', { node })
    this.decided('revoke', node, 'revoked by the peer')
    this.onTrustChanged(node, false)
    await this.client.revokeTrust(this.selfId(), node).catch(() => {}) // the pair may already be gone
  }

  /** Trust `node` locally and at the registry. */
  private async grant(node: number, mutual: boolean): Promise<void> {
    const key = (await this.directory.lookup(node))?.publicKey ?? ''
    this.store.trust(node, key, mutual)
    this.logger.info('peer trusted', { node, mutual })
    await this.client.reportTrust(this.selfId(), node).catch((err: unknown) =>
      this.logger.warn('report_trust failed', { node, error: String(err) }),
    )
    // After the report: the registry may now let us resolve the peer (the daemon re-resolves).
    this.onTrustChanged(node, true)
  }

  // ───────────────────────── operator actions ─────────────────────────

  async request(node: number, justification: string): Promise<'sent' | 'trusted'> {
    const self = this.selfId()
    this.checkTarget(node)
    if (this.store.isTrusted(node)) return 'trusted'
    if (this.store.pendingEntry(node) !== undefined) {
      await this.approve(node)
      return 'trusted'
    }
    this.store.addOutgoing(node)
    this.decided('request', node, justification)
    const direct = this.sendTracked(node, 'handshake_request', { justification })
    try {
      await this.client.requestHandshake(self, node, clip(justification))
    } catch (err) {
      if (!(await direct)) {
        throw new DaemonError(DaemonErrorCode.PEER_UNREACHABLE, `could not deliver the trust request to node ${node}: ${(err as Error).message}`, {
          hint: 'the peer is not reachable directly and the registry relay failed; check the registry connection',
          cause: err,
        })
      }
    }
    return 'sent'
  }

  async approve(node: number, how: 'approve' | 'auto-accept' = 'approve'): Promise<void> {
    this.checkTarget(node)
    if (this.store.isTrusted(node) && this.store.pendingEntry(node) === undefined) return
    if (this.store.pendingEntry(node) === undefined) {
      throw new DaemonError(DaemonErrorCode.TRUST_NO_REQUEST, `node ${node} has no pending trust request`, {
        hint: 'see `pilot-tun trust list`; to ask them instead, use `pilot-tun trust request`',
      })
    }
    await this.grant(node, true)
    this.decided(how, node, '')
    await this.client.respondHandshake(this.selfId(), node, true).catch((err: unknown) =>
      this.logger.debug('respond_handshake(accept) failed', { node, error: String(err) }),
    )
    this.sendInBackground(node, 'handshake_accept')
  }

  async reject(node: number, reason: string): Promise<void> {
    this.checkTarget(node)
    if (!this.store.removePending(node)) {
      throw new DaemonError(DaemonErrorCode.TRUST_NO_REQUEST, `node ${node} has no pending trust request`)
    }
    this.decided('reject', node, reason)
    await this.client.respondHandshake(this.selfId(), node, false).catch(() => {})
    this.sendInBackground(node, 'handshake_reject', { reason })
  }

  async revoke(node: number, reason = ''): Promise<void> {
    this.checkTarget(node)
    const wasTrusted = this.store.forget(node)
    this.decided('revoke', node, reason)
    // Tell them first (the stream needs the tunnel session we are about to drop).
    const told = this.sendTracked(node, 'handshake_revoke', { reason })
    await told
    if (wasTrusted) this.onTrustChanged(node, false)
    await this.client.revokeTrust(this.selfId(), node).catch((err: unknown) =>
      this.logger.debug('revoke_trust failed', { node, error: String(err) }),
    )
  }

  /** After a re-registration: the registry may have lost our side of each pair. */
  async reportAll(): Promise<void> {
    const self = this.selfId()
    for (const t of this.store.listTrusted()) {
      await this.client.reportTrust(self, t.node_id).catch(() => {})
    }
  }

  /** Waits (bounded) for background direct sends, then refuses new ones. */
  async close(timeoutMs: number): Promise<void> {
    this.closed = true
    if (this.background.size === 0) return
    let timer: NodeJS.Timeout | null = null
    await Promise.race([
      Promise.allSettled([...this.background]),
      new Promise<void>((r) => {
        timer = setTimeout(r, timeoutMs)
      }),
    ])
    if (timer !== null) clearTimeout(timer)
  }

  private checkTarget(node: number): void {
    if (node === this.selfId()) throw new DaemonError(DaemonErrorCode.TRUST_BAD_TARGET, 'a node cannot trust itself')
  }

  private sendInBackground(node: number, type: HandshakeType, text: { justification?: string; reason?: string } = {}): void {
    void this.sendTracked(node, type, text)
  }

  /** Resolves true when the message was delivered directly; never rejects. */
  private sendTracked(node: number, type: HandshakeType, text: { justification?: string; reason?: string } = {}): Promise<boolean> {
    if (this.closed) return Promise.resolve(false)
    const bytes = encodeHandshakeMessage(this.identity, this.selfId(), node, type, text)
    const p = this.sendDirectRaw(node, bytes).then(
      () => {
        this.st.directSent++
        return true
      },
      (err: unknown) => {
        this.st.directSendFailed++
        this.logger.debug('direct handshake message not delivered', { node, type, error: String(err) })
        return false
      },
    )
    this.background.add(p)
    void p.finally(() => this.background.delete(p))
    return p
  }
}
