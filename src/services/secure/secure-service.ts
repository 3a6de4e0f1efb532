/**
 * `SecureService`: the port-443 secure channel as the CLI uses it, over a
 * node's streams (`pilot-tun secure send|listen`, control methods
 * `secure.send` and `secure.listen`, daemon/control/secure-methods.ts).
 *
 *   send    dial target:port, swap keys, write one message (one frame), wait
 *           for `replies` frames (or the peer's FIN, or the timeout), end.
 *   listen  accept secure channels on a port for as long as the caller waits
 *           (count / timeout / abort), report every message, and with `echo`
 *           write each one back on its channel (the reference's secure
 *           example answers every message too). At most `MAX_LISTEN_CHANNELS`
 *           channels at once; a channel that breaks a rule of secure-core.ts
 *           (reflected, replayed, tampered...) is reset and counted.
 *
 * Nodes get in as on any port: trusted ones only (the daemon's default).
 */
import type { Logger } from '../../logger.js'
import { nullLogger } from '../../logger.js'
import { PilotError } from '../../errors.js'
import { formatAddress } from '../../protocol/address.js'
import type { ServiceStream, StreamAcceptor, StreamOpener } from '../service-stream.js'
import { loopbackPair } from './loopback.js'
import { SecureError, SecureErrorCode } from './errors.js'
import { SECURE_PORT, type SecureKdf } from './secure-core.js'
import { secureClient, secureServer, type SecureStream } from './secure-stream.js'

/** Channels one `listen` serves at once; more are reset. */
export const MAX_LISTEN_CHANNELS = 64
/** Bytes of a message passed to the CLI per event (one control frame holds 256 KiB of JSON). */
export const SECURE_PREVIEW_BYTES = 32 * 1024
/** Bytes of replies `send` returns in all. */
export const SECURE_REPLY_BUDGET = 128 * 1024
/** How long `send` lets an ended channel close before resetting it. */
const CLOSE_GRACE_MS = 2_000

export interface SecureSendOptions {
  port: number
  /** How we derive our key: 'legacy' (the reference's) or 'hkdf' (the draft's). */
  kdf: SecureKdf
  /** Reply frames to wait for (0 = send and close). */
  replies: number
  timeoutMs: number
}

export interface SecureSendResult {
  target: string
  port: number
  kdf: SecureKdf
  sent_bytes: number
  /** Reply frames as UTF-8 text, in order (cut at `SECURE_REPLY_BUDGET` bytes in all: `replies_truncated`). */
  replies: string[]
  reply_bytes: number
  replies_truncated?: boolean
  /** The peer ended the channel before `replies` frames came. */
  peer_closed: boolean
}

export interface SecureListenOptions {
  port: number
  echo: boolean
  /** The client's derivation: 'auto' (learn it from its first frame), or one to insist on. */
  kdf: SecureKdf | 'auto'
  /** Stop after this many messages (0 = no limit). */
  count: number
  /** Stop after this long (0 = no limit). */
  timeoutMs: number
}

export interface SecureMessageEvent {
  from: string
  /** Which channel of this listen (1, 2, …). */
  channel: number
  kdf: SecureKdf
  data: string
  bytes: number
  data_truncated?: boolean
}

export interface SecureListenResult {
  port: number
  channels: number
  messages: number
  /** Channels reset for breaking a rule (bad key swap, reflected, replayed or tampered frames) or over the limit. */
  refused: number
  timeout: boolean
}

export interface SecureControl {
  send(target: string, data: Buffer, options: SecureSendOptions): Promise<SecureSendResult>
  listen(options: SecureListenOptions, onMessage: (e: SecureMessageEvent) => void, signal: AbortSignal): Promise<SecureListenResult>
}

export interface SecureServiceOptions {
  /** This node: a channel to it goes straight to our own listener (loopback.ts). */
  selfNode: number
  names: { resolveTarget(target: string): Promise<{ node: number }> }
  streams: StreamOpener & StreamAcceptor
  logger?: Logger
}

export class SecureService implements SecureControl {
  private readonly logger: Logger
  /** Ports a `listen` holds now, and how it accepts a stream (a channel from this node itself too). */
  private readonly listening = new Map<number, (inner: ServiceStream) => void>()

  constructor(private readonly o: SecureServiceOptions) {
    this.logger = (o.logger ?? nullLogger).child({ component: 'secure' })
  }

  async send(target: string, data: Buffer, options: SecureSendOptions): Promise<SecureSendResult> {
    const node = (await this.o.names.resolveTarget(target)).node
    const deadline = Date.now() + options.timeoutMs
    const inner = node === this.o.selfNode ? this.dialSelf(options.port) : await this.o.streams.openStream(node, options.port)
    const channel = await secureClient(inner, { send: options.kdf, receive: options.kdf, handshakeTimeoutMs: Math.max(1, Math.min(options.timeoutMs, 10_000)) })
    const result: SecureSendResult = {
      target: formatAddress({ network: 0, node }),
      port: options.port,
      kdf: options.kdf,
      sent_bytes: data.length,
      replies: [],
      reply_bytes: 0,
      peer_closed: false,
    }
    try {
      channel.write(data)
      if (options.replies > 0) await this.collectReplies(channel, options.replies, deadline - Date.now(), result)
    } finally {
      await endChannel(channel)
    }
    return result
  }

  private collectReplies(channel: SecureStream, wanted: number, timeoutMs: number, result: SecureSendResult): Promise<void> {
    return new Promise((resolve, reject) => {
      let frames = 0
      const finish = (err: Error | null): void => {
        clearTimeout(timer)
        channel.off('data', onData)
        channel.off('end', onFin)
        channel.off('error', onEnd)
        if (err !== null) reject(err)
        else resolve()
      }
      const onData = (chunk: Buffer): void => {
        frames++
        result.reply_bytes += chunk.length
        const room = SECURE_REPLY_BUDGET - result.replies.reduce((n, r) => n + Buffer.byteLength(r), 0)
        if (room >= chunk.length) result.replies.push(chunk.toString('utf8'))
        else {
          if (room > 0) result.replies.push(chunk.subarray(0, room).toString('utf8'))
          result.replies_truncated = true
        }
        if (frames >= wanted) finish(null)
      }
      // The peer's FIN, or its reset (a server that refused our frame): an answer so far is the answer.
      const onEnd = (err?: Error): void => {
        result.peer_closed = true
        if (err instanceof SecureError || frames > 0) return finish(err instanceof SecureError ? err : null)
        const other = result.kdf === 'legacy' ? 'hkdf' : 'legacy'
        finish(new SecureError(SecureErrorCode.NO_ANSWER, `${result.target} port ${result.port} ${err === undefined ? 'ended' : 'reset'} the secure channel without answering`, {
          hint: `a server that derives its key the other way drops the channel at our first frame: try --kdf ${other}${other === 'legacy' ? ' (the Go reference\'s)' : ''}`,
          ...(err === undefined ? {} : { cause: err }),
        }))
      }
      const onFin = (): void => onEnd()
      const timer = setTimeout(() => {
        if (frames > 0) finish(null)
        else finish(new SecureError(SecureErrorCode.NO_ANSWER, `no answer from ${result.target} port ${result.port} within ${timeoutMs} ms`, { hint: 'the server may not answer this message; --replies 0 only sends' }))
      }, Math.max(1, timeoutMs))
      channel.on('data', onData)
      channel.once('end', onFin)
      channel.once('error', onEnd)
    })
  }

  /** A channel from this node to itself: one end to our listener on `port`, the other to the caller. */
  private dialSelf(port: number): ServiceStream {
    const accept = this.listening.get(port)
    if (accept === undefined) {
      throw new SecureError(SecureErrorCode.NO_ANSWER, `nothing listens on port ${port} of this node`, { hint: 'start `pilot-tun secure listen` first (a channel to this node itself goes to it)' })
    }
    const self = { network: 0, node: this.o.selfNode }
    const { dialer, acceptor } = loopbackPair(self)
    accept(acceptor)
    return dialer
  }

  async listen(options: SecureListenOptions, onMessage: (e: SecureMessageEvent) => void, signal: AbortSignal): Promise<SecureListenResult> {
    const { port } = options
    if (this.listening.has(port)) throw portInUse(port)
    const result: SecureListenResult = { port, channels: 0, messages: 0, refused: 0, timeout: false }
    const open = new Set<SecureStream>()
    /** Channels established or still swapping keys: what the limit counts. */
    let active = 0
    /** Set once the listen is over: late channels are reset, late messages not reported. */
    let ended = false
    let stop!: (timeout: boolean) => void
    const stopped = new Promise<boolean>((r) => (stop = r))
    const onAccept = (inner: ServiceStream): void => {
      if (active >= MAX_LISTEN_CHANNELS) {
        result.refused++
        inner.destroy()
        return
      }
      const id = ++result.channels
      active++
      const from = formatAddress(inner.remoteAddress)
      secureServer(inner, options.kdf === 'auto' ? {} : { send: options.kdf, receive: options.kdf }).then(
        (channel) => {
          open.add(channel)
          channel.once('close', () => {
            open.delete(channel)
            active--
          })
          if (ended || signal.aborted) return void channel.destroy()
          channel.on('data', (chunk: Buffer) => {
            if (ended) return
            result.messages++
            const preview = chunk.length > SECURE_PREVIEW_BYTES ? chunk.subarray(0, SECURE_PREVIEW_BYTES) : chunk
            onMessage({ from, channel: id, kdf: channel.peerKdf ?? channel.kdf, data: preview.toString('utf8'), bytes: chunk.length, ...(preview === chunk ? {} : { data_truncated: true }) })
            if (options.echo && !channel.write(chunk)) {
              channel.pause()
              channel.once('drain', () => channel.resume())
            }
            if (options.count > 0 && result.messages >= options.count) stop(false)
          })
          channel.on('end', () => channel.end())
          channel.on('error', (err) => {
            if (err instanceof SecureError && err.code !== SecureErrorCode.NO_ANSWER) result.refused++
            this.logger.debug('secure channel ended with an error', { from, error: err.message })
          })
        },
        (err: Error) => {
          active--
          result.refused++
          this.logger.debug('secure key swap failed', { from, error: err.message })
        },
      )
    }
    try {
      this.o.streams.listenStreams(port, onAccept)
    } catch (err) {
      if ((err as { code?: string }).code === 'PT_SESSION_PORT_IN_USE') throw portInUse(port)
      throw err
    }
    this.listening.set(port, onAccept)
    this.logger.info('secure channel listening', { port, echo: options.echo })
    const timer = options.timeoutMs > 0 ? setTimeout(() => stop(true), options.timeoutMs) : null
    const onAbort = (): void => stop(false)
    signal.addEventListener('abort', onAbort, { once: true })
    try {
      result.timeout = await stopped
    } finally {
      ended = true
      if (timer !== null) clearTimeout(timer)
      signal.removeEventListener('abort', onAbort)
      this.o.streams.unlistenStreams(port)
      this.listening.delete(port)
      await Promise.all([...open].map((c) => endChannel(c)))
    }
    // The control connection aborts with a typed reason when its reader fell behind.
    if (signal.aborted && signal.reason instanceof PilotError) throw signal.reason
    return result
  }
}

function portInUse(port: number): SecureError {
  return new SecureError(SecureErrorCode.PORT_IN_USE, `port ${port} of this node already has a listener`, {
    hint: port === SECURE_PORT ? 'another `pilot-tun secure listen` (or an IPC driver) holds it; stop it or use --port' : 'stop the other listener or choose another --port',
  })
}

/** Ends our side, lets the channel close for a moment, then resets it. */
function endChannel(channel: SecureStream): Promise<void> {
  if (channel.destroyed) return Promise.resolve()
  return new Promise((resolve) => {
    const timer = setTimeout(() => channel.destroy(), CLOSE_GRACE_MS)
    channel.once('close', () => {
      clearTimeout(timer)
      resolve()
    })
    channel.on('error', () => {})
    channel.end()
    channel.resume()
  })
}
