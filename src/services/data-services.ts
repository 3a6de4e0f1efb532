/**
 * `DataServices`: the node's data exchange (1001) and event stream (1002)
 * services and the control-socket methods on them (`ServicesControl`). The
 * daemon builds it with narrow views of itself (names, streams, its own node
 * ID) and closes it on shutdown; each service may be off, and then its port
 * is not listened on (a SYN there gets an RST, or goes to the TUN).
 *
 * A target that is this node itself is served in-process: a message to
 * ourselves lands in our inbox, and publish/subscribe on ourselves go through
 * our own broker (the Go reference cannot dial itself; we can).
 */
import { readFile, stat } from 'node:fs/promises'
import { basename } from 'node:path'
import type { Logger } from '../logger.js'
import { nullLogger } from '../logger.js'
import { formatAddress } from '../protocol/address.js'
import { DX_MAX_PAYLOAD, DxType, encodeDxFile, encodeDxFrame, type DxFrame } from '../protocol/dataexchange-frames.js'
import { EVENT_MAX_TOPIC } from '../protocol/event-frames.js'
import type { InboxListResult, MessageKind, PublishResult, ReceivedListResult, SendFileResult, SendMessageResult, ServicesControl, StreamedEvent, SubscribeOptions, SubscribeResult } from './api.js'
import { DataExchangeService, sendDataFrame, type DataExchangeLimits } from './dataexchange.js'
import { ServiceError, ServiceErrorCode } from './errors.js'
import { EventBroker, type EventBrokerLimits } from './event-broker.js'
import { publishRemote, subscribeRemote } from './event-client.js'
import { InboxStore, type InboxQuota } from './inbox-store.js'
import { DATA_EXCHANGE_PORT, EVENT_STREAM_PORT, type StreamAcceptor, type StreamOpener } from './service-stream.js'

export interface DataServicesOptions {
  stateDir: string
  selfNode: number
  names: { resolveTarget(target: string): Promise<{ node: number; hostname: string | null }> }
  streams: StreamOpener & StreamAcceptor & { checkOpen(): void }
  /** Port 1001 on (default true). */
  dataExchange?: boolean
  /** Port 1002 on (default true). */
  eventStream?: boolean
  inboxQuota?: Partial<InboxQuota>
  dataExchangeLimits?: Partial<DataExchangeLimits>
  eventLimits?: Partial<EventBrokerLimits>
  logger?: Logger
}

/** Largest JSON answer `inbox`/`received` build (the control socket takes 256 KiB). */
const LIST_BUDGET = 192 * 1024
/** Bytes of an event's payload passed to a subscribed CLI (one control frame holds 256 KiB of JSON). */
const EVENT_PREVIEW_BYTES = 32 * 1024
/** Longest message text shown per inbox entry. */
const PREVIEW_CHARS = 16 * 1024

const KIND_TYPE: Record<MessageKind, number> = { text: DxType.TEXT, json: DxType.JSON, binary: DxType.BINARY }

export class DataServices implements ServicesControl {
  readonly store: InboxStore
  readonly dataExchange: DataExchangeService | null
  readonly broker: EventBroker | null
  private readonly o: DataServicesOptions
  private readonly selfText: string
  private readonly closing = new AbortController()

  private constructor(o: DataServicesOptions, store: InboxStore) {
    this.o = o
    this.store = store
    this.selfText = formatAddress({ network: 0, node: o.selfNode })
    const logger = (o.logger ?? nullLogger).child({ component: 'services' })
    this.dataExchange = o.dataExchange === false ? null : new DataExchangeService(store, { limits: o.dataExchangeLimits, logger })
    this.broker = o.eventStream === false ? null : new EventBroker({ limits: o.eventLimits, logger })
    const dx = this.dataExchange
    if (dx !== null) {
      o.streams.listenStreams(DATA_EXCHANGE_PORT, (s) => dx.accept(s))
      logger.info('data exchange service listening', { port: DATA_EXCHANGE_PORT, inbox: store.inboxDir })
    }
    const broker = this.broker
    if (broker !== null) {
      o.streams.listenStreams(EVENT_STREAM_PORT, (s) => broker.accept(s))
      logger.info('event stream broker listening', { port: EVENT_STREAM_PORT })
    }
  }

  /** Opens the inbox (state dir) and starts listening on the ports that are on. */
  static async start(options: DataServicesOptions): Promise<DataServices> {
    return new DataServices(options, await InboxStore.open(options.stateDir, options.inboxQuota))
  }

  /**
   * Stops listening and ends the local subscriptions; the services' streams
   * close with the daemon's others (FIN, then RST after the grace).
   */
  close(): void {
    if (this.closing.signal.aborted) return
    this.closing.abort()
    if (this.dataExchange !== null) this.o.streams.unlistenStreams(DATA_EXCHANGE_PORT)
    if (this.broker !== null) this.o.streams.unlistenStreams(EVENT_STREAM_PORT)
  }

  // ───────────────────────── data exchange ─────────────────────────

  async sendMessage(target: string, type: MessageKind, data: string): Promise<SendMessageResult> {
    const payload = Buffer.from(data, 'utf8')
    const node = await this.resolve(target)
    const ack = await this.sendFrame(node, { type: KIND_TYPE[type], data: payload }, () => encodeDxFrame(KIND_TYPE[type], payload))
    return { target: formatAddress({ network: 0, node }), type, bytes: payload.length, ack }
  }

  async sendFile(target: string, path: string): Promise<SendFileResult> {
    const name = basename(path)
    const data = await readLocalFile(path, DX_MAX_PAYLOAD - 2 - Buffer.byteLength(name, 'utf8'))
    const node = await this.resolve(target)
    const ack = await this.sendFrame(node, { type: DxType.FILE, name, data }, () => encodeDxFile(name, data))
    return { destination: formatAddress({ network: 0, node }), filename: name, bytes: data.length, ack }
  }

  async inboxList(): Promise<InboxListResult> {
    const messages: InboxListResult['messages'] = []
    let size = 0
    const total = await this.store.visitMessages((m) => {
      const entry: InboxListResult['messages'][number] = { bytes: m.bytes, data: m.data, from: m.from, received_at: m.received_at, type: m.type }
      if (typeof entry.data !== 'string') entry.data = ''
      if (entry.data.length > PREVIEW_CHARS) {
        entry.data = entry.data.slice(0, PREVIEW_CHARS)
        entry.data_truncated = true
      }
      size += Buffer.byteLength(JSON.stringify(entry), 'utf8') + 1
      if (size > LIST_BUDGET) return false
      messages.push(entry)
      return true
    })
    messages.reverse()
    return { dir: this.store.inboxDir, messages, total, truncated: messages.length < total }
  }

  async inboxClear(): Promise<{ cleared: number }> {
    return { cleared: await this.store.clearMessages() }
  }

  async receivedList(): Promise<ReceivedListResult> {
    const all = await this.store.listFiles()
    const files: ReceivedListResult['files'] = []
    let size = 0
    for (let i = all.length - 1; i >= 0; i--) {
      size += Buffer.byteLength(JSON.stringify(all[i]), 'utf8') + 1
      if (size > LIST_BUDGET) break
      files.push(all[i]!)
    }
    files.reverse()
    return { dir: this.store.receivedDir, files, total: all.length, truncated: files.length < all.length }
  }

  async receivedClear(): Promise<{ cleared: number }> {
    return { cleared: await this.store.clearFiles() }
  }

  // ───────────────────────── event stream ─────────────────────────

  async publish(target: string, topic: string, data: string): Promise<PublishResult> {
    checkTopic(topic)
    const payload = Buffer.from(data, 'utf8')
    const node = await this.resolve(target)
    const result: PublishResult = { target: formatAddress({ network: 0, node }), topic, bytes: payload.length }
    if (node === this.o.selfNode) {
      result.delivered = this.localBroker().publish(topic, payload)
      return result
    }
    await publishRemote(this.o.streams, node, topic, payload)
    return result
  }

  async subscribe(target: string, topic: string, options: SubscribeOptions, onEvent: (e: StreamedEvent) => void, signal: AbortSignal): Promise<SubscribeResult> {
    checkTopic(topic)
    const node = await this.resolve(target)
    const result: SubscribeResult = { target: formatAddress({ network: 0, node }), topic, events: 0, timeout: false }
    const stop = new AbortController()
    const onOuterAbort = (): void => stop.abort()
    if (signal.aborted || this.closing.signal.aborted) stop.abort()
    signal.addEventListener('abort', onOuterAbort, { once: true })
    this.closing.signal.addEventListener('abort', onOuterAbort, { once: true })
    const timer = options.timeoutMs > 0 ? setTimeout(() => ((result.timeout = true), stop.abort()), options.timeoutMs) : null
    const handler = (t: string, payload: Uint8Array): void => {
      if (stop.signal.aborted) return
      result.events++
      const data = Buffer.from(payload.subarray(0, EVENT_PREVIEW_BYTES)).toString('utf8')
      onEvent(payload.length > EVENT_PREVIEW_BYTES ? { topic: t, data, bytes: payload.length, data_truncated: true } : { topic: t, data, bytes: payload.length })
      if (options.count > 0 && result.events >= options.count) stop.abort()
    }
    try {
      if (node === this.o.selfNode) {
        const unsubscribe = this.localBroker().subscribeLocal(topic, handler)
        try {
          await new Promise<void>((resolve) => (stop.signal.aborted ? resolve() : stop.signal.addEventListener('abort', () => resolve(), { once: true })))
        } finally {
          unsubscribe()
        }
      } else {
        const sub = await subscribeRemote(this.o.streams, node, topic, handler, stop.signal)
        await sub.done
      }
    } finally {
      if (timer !== null) clearTimeout(timer)
      signal.removeEventListener('abort', onOuterAbort)
      this.closing.signal.removeEventListener('abort', onOuterAbort)
    }
    // The control connection aborts with a typed reason when its reader fell behind.
    if (signal.aborted && signal.reason instanceof ServiceError) throw signal.reason
    if (this.closing.signal.aborted) throw new ServiceError(ServiceErrorCode.SUBSCRIPTION_ENDED, 'the daemon is shutting down')
    return result
  }

  // ───────────────────────── internals ─────────────────────────

  private async resolve(target: string): Promise<number> {
    this.o.streams.checkOpen()
    return (await this.o.names.resolveTarget(target)).node
  }

  private async sendFrame(node: number, frame: DxFrame, encode: () => Buffer): Promise<string> {
    let answer: string
    if (node === this.o.selfNode) {
      if (this.dataExchange === null) throw disabled('data exchange', '--no-dataexchange')
      answer = await this.dataExchange.deliver(this.selfText, frame)
    } else {
      answer = await sendDataFrame(this.o.streams, node, encode())
    }
    if (!answer.startsWith('ACK ')) {
      throw new ServiceError(ServiceErrorCode.REFUSED, `${formatAddress({ network: 0, node })} answered: ${answer}`, {
        hint: answer.includes('full') ? 'the receiver must clear its inbox first' : 'the receiver could not store it; see its log',
      })
    }
    return answer
  }

  private localBroker(): EventBroker {
    if (this.broker === null) throw disabled('event stream', '--no-eventstream')
    return this.broker
  }
}

function disabled(what: string, flag: string): ServiceError {
  return new ServiceError(ServiceErrorCode.DISABLED, `the ${what} service is switched off on this node (${flag})`, {
    hint: `restart the daemon without ${flag} (or set its config key to true)`,
  })
}

function checkTopic(topic: string): void {
  if (topic === '' || Buffer.byteLength(topic, 'utf8') > EVENT_MAX_TOPIC) {
    throw new ServiceError(ServiceErrorCode.TOO_LARGE, `a topic is 1..${EVENT_MAX_TOPIC} bytes of UTF-8`, { hint: 'use a shorter topic' })
  }
}

async function readLocalFile(path: string, max: number): Promise<Buffer> {
  let size: number
  try {
    const s = await stat(path)
    if (!s.isFile()) throw new ServiceError(ServiceErrorCode.FILE, `${path} is not a regular file`)
    size = s.size
  } catch (err) {
    if (err instanceof ServiceError) throw err
    const code = (err as NodeJS.ErrnoException).code
    throw new ServiceError(ServiceErrorCode.FILE, code === 'ENOENT' ? `file not found: ${path}` : `cannot read ${path}: ${(err as Error).message}`, {
      hint: code === 'EACCES' ? 'the daemon reads the file: it must be readable by the daemon\'s user' : 'check the path',
      cause: err,
    })
  }
  if (size > max) throw new ServiceError(ServiceErrorCode.TOO_LARGE, `${path} is ${size} bytes; a file frame holds at most ${max}`, { hint: 'split it, or use a stream (pilot-tun with the TUN: any TCP tool)' })
  try {
    const data = await readFile(path)
    if (data.length > max) throw new ServiceError(ServiceErrorCode.TOO_LARGE, `${path} grew beyond ${max} bytes`)
    return data
  } catch (err) {
    if (err instanceof ServiceError) throw err
    throw new ServiceError(ServiceErrorCode.FILE, `cannot read ${path}: ${(err as Error).message}`, { cause: err })
  }
}
