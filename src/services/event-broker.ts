/**
 * The event stream broker, port 1002 (docs/wire.md §13.4, Go's binary form).
 * A connection's first event is its subscription (`*` = every topic); each
 * later event is a publication, forwarded byte for byte to every *other*
 * subscriber of exactly that topic and, for topics other than `*`, to every
 * `*` subscriber. The publisher gets no copy and no acknowledgement.
 *
 * This node's own CLI subscribes and publishes through the same broker
 * (`subscribeLocal`, `publish`): local subscribers get the same fan-out.
 *
 * Bounded: connections in all and per node (more are reset); a subscriber
 * whose unsent bytes exceed `maxQueuedBytes` when an event is due is cut off
 * (stream reset, counted) — one slow reader never makes the broker's memory
 * grow. A subscriber with an empty queue always gets the event, whatever its
 * size (≤ 16 MiB), so the bound is `maxQueuedBytes` + one event per subscriber.
 */
import type { Logger } from '../logger.js'
import { nullLogger } from '../logger.js'
import { EVENT_WILDCARD, EventDecoder, encodeEvent, type EventFrame } from '../protocol/event-frames.js'
import { ignoreError, type ServiceStream } from './service-stream.js'
import { HeldBytesBudget, type HeldBytesShare } from './held-bytes.js'

export interface EventBrokerLimits {
  maxConnections: number
  maxConnectionsPerNode: number
  /** A subscriber with more than this many bytes not yet sent is cut off. */
  maxQueuedBytes: number
  /** A connection that has not subscribed within this long is closed. */
  subscribeTimeoutMs: number
  /** Bytes of partial events all connections together may hold; the connection that passes it is dropped. */
  maxHeldBytes: number
}

export const DEFAULT_EVENT_BROKER_LIMITS: Readonly<EventBrokerLimits> = Object.freeze({
  maxConnections: 64,
  maxConnectionsPerNode: 16,
  maxQueuedBytes: 4 * 1024 * 1024,
  subscribeTimeoutMs: 30_000,
  maxHeldBytes: 64 * 1024 * 1024,
})

export interface EventBrokerStats {
  connections: number
  subscribers: number
  refused: number
  published: number
  delivered: number
  cutOff: number
  dropped: number
}

/** One subscriber: a remote stream or a local callback. */
interface Subscriber {
  readonly topic: string
  /** Returns false when the subscriber had to be cut off. */
  deliver(event: Uint8Array, topic: string, payload: Uint8Array): boolean
}

export type LocalEventHandler = (topic: string, payload: Uint8Array) => void

export class EventBroker {
  private readonly limits: EventBrokerLimits
  private readonly logger: Logger
  private readonly topics = new Map<string, Set<Subscriber>>()
  private readonly perNode = new Map<number, number>()
  private readonly open = new Set<ServiceStream>()
  private readonly st = { refused: 0, published: 0, delivered: 0, cutOff: 0, dropped: 0 }
  private subscriberCount = 0
  /** Bytes of partial events held by all connections' decoders. */
  readonly heldBytes: HeldBytesBudget

  constructor(options: { limits?: Partial<EventBrokerLimits>; logger?: Logger } = {}) {
    this.limits = { ...DEFAULT_EVENT_BROKER_LIMITS, ...options.limits }
    this.heldBytes = new HeldBytesBudget(this.limits.maxHeldBytes)
    this.logger = options.logger ?? nullLogger
  }

  stats(): EventBrokerStats {
    return { connections: this.open.size, subscribers: this.subscriberCount, ...this.st }
  }

  /** One accepted stream (the daemon's port-1002 listener calls this). */
  accept(stream: ServiceStream): void {
    const node = stream.remoteAddress.node
    const n = this.perNode.get(node) ?? 0
    stream.on('error', ignoreError)
    if (this.open.size >= this.limits.maxConnections || n >= this.limits.maxConnectionsPerNode) {
      this.st.refused++
      stream.destroy()
      return
    }
    this.perNode.set(node, n + 1)
    this.open.add(stream)
    const conn = new BrokerConnection(this, stream, this.limits)
    stream.once('close', () => {
      conn.close()
      this.open.delete(stream)
      const left = (this.perNode.get(node) ?? 1) - 1
      if (left <= 0) this.perNode.delete(node)
      else this.perNode.set(node, left)
    })
  }

  /** Subscribes this node's own reader; returns the unsubscribe function. */
  subscribeLocal(topic: string, onEvent: LocalEventHandler): () => void {
    const sub: Subscriber = {
      topic,
      deliver: (_event, t, payload) => {
        onEvent(t, payload)
        return true
      },
    }
    this.add(sub)
    return () => this.remove(sub)
  }

  /** Publishes from this node (or, with `from`, from that subscriber, which gets no copy). */
  publish(topic: string, payload: Uint8Array, from: Subscriber | null = null, raw?: Uint8Array): number {
    this.st.published++
    const event = raw ?? encodeEvent(topic, payload)
    let delivered = this.fanOut(this.topics.get(topic), event, topic, payload, from)
    if (topic !== EVENT_WILDCARD) delivered += this.fanOut(this.topics.get(EVENT_WILDCARD), event, topic, payload, from)
    return delivered
  }

  /** Resets every connection (daemon shutdown). */
  close(): void {
    for (const s of this.open) s.destroy()
  }

  /** @internal */
  add(sub: Subscriber): void {
    let set = this.topics.get(sub.topic)
    if (set === undefined) this.topics.set(sub.topic, (set = new Set()))
    set.add(sub)
    this.subscriberCount++
  }

  /** @internal */
  remove(sub: Subscriber): void {
    const set = this.topics.get(sub.topic)
    if (set === undefined || !set.delete(sub)) return
    this.subscriberCount--
    if (set.size === 0) this.topics.delete(sub.topic)
  }

  /** @internal */
  countCutOff(): void {
    this.st.cutOff++
  }

  /** @internal */
  countDropped(): void {
    this.st.dropped++
  }

  /** Bytes of partial events held now (tests). */
  get held(): number {
    return this.heldBytes.held
  }

  private fanOut(set: Set<Subscriber> | undefined, event: Uint8Array, topic: string, payload: Uint8Array, from: Subscriber | null): number {
    if (set === undefined) return 0
    let n = 0
    // A copy: a cut-off subscriber leaves the set while we walk it.
    for (const sub of [...set]) {
      if (sub === from) continue
      try {
        if (sub.deliver(event, topic, payload)) n++
      } catch (err) {
        this.logger.warn('event subscriber failed', { topic, error: String(err) })
      }
    }
    this.st.delivered += n
    return n
  }
}

/** One remote connection: subscription first, then publications. */
class BrokerConnection implements Subscriber {
  topic = ''
  private subscribed = false
  private readonly decoder = new EventDecoder()
  private timer: NodeJS.Timeout | null
  /** Bytes this connection's decoder holds, as counted in the broker's total. */
  private readonly held: HeldBytesShare

  constructor(
    private readonly broker: EventBroker,
    private readonly stream: ServiceStream,
    private readonly limits: EventBrokerLimits,
  ) {
    this.held = broker.heldBytes.share()
    stream.on('data', (chunk: Buffer) => this.onData(chunk))
    stream.on('end', () => stream.end())
    this.timer = setTimeout(() => stream.destroy(), limits.subscribeTimeoutMs)
    this.timer.unref?.()
  }

  deliver(event: Uint8Array): boolean {
    const s = this.stream
    if (s.destroyed || !s.writable) return false
    if (s.writableLength > this.limits.maxQueuedBytes) {
      this.broker.countCutOff()
      this.broker.remove(this)
      s.destroy()
      return false
    }
    s.write(event)
    return true
  }

  close(): void {
    this.held.release()
    if (this.timer !== null) clearTimeout(this.timer)
    this.timer = null
    if (this.subscribed) this.broker.remove(this)
    this.subscribed = false
  }

  private onData(chunk: Buffer): void {
    let events: EventFrame[]
    try {
      events = this.decoder.push(chunk)
    } catch {
      this.broker.countDropped()
      this.stream.destroy()
      return
    }
    if (!this.held.set(this.decoder.bufferedBytes)) {
      this.broker.countDropped()
      this.stream.destroy()
      return
    }
    for (const e of events) {
      if (this.stream.destroyed) return
      if (!this.subscribed) {
        this.subscribed = true
        this.topic = e.topic
        if (this.timer !== null) clearTimeout(this.timer)
        this.timer = null
        this.broker.add(this)
        continue
      }
      this.broker.publish(e.topic, e.payload, this, e.raw)
    }
  }
}
