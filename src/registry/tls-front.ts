/**
 * TLS on the registry's one TCP port (issue 15). The first byte of a
 * connection says which it is: a TLS ClientHello starts with 0x16 (handshake
 * record), a plaintext registry frame with the high byte of a length of at
 * most 1 MiB, i.e. 0x00. So one port serves both, and a Go daemon with
 * `-registry-tls` dials the same port as one without. With `only`, a
 * connection that does not start a TLS handshake is closed before any of its
 * bytes are read as a request: a captured plaintext request replayed there
 * never reaches the request handler.
 *
 * A connection must show its first byte within `sniffTimeoutMs` and finish the
 * handshake within `handshakeTimeoutMs`, or it is closed.
 */
import { createSecureContext, TLSSocket, type SecureContext } from 'node:tls'
import type { Socket } from 'node:net'
import { nullLogger, type Logger } from '../logger.js'
import { normalizeRemoteIp, sourceKeyOf } from './endpoints.js'
import { RegistryError, RegistryErrorCode } from './errors.js'

/** First byte of a TLS handshake record (RFC 8446 §5.1, ContentType handshake). */
const TLS_HANDSHAKE_RECORD = 0x16

export interface RegistryTlsListenOptions {
  certPem: string
  keyPem: string
  /** Refuse connections that do not start with a TLS handshake. */
  only: boolean
  sniffTimeoutMs?: number
  handshakeTimeoutMs?: number
  /** Connections of one source (IPv4 address or IPv6 /64) still being sorted or in their handshake; more are closed at once. */
  maxPendingPerSource?: number
}

export interface TlsFrontStats {
  /** Connections that completed a TLS handshake. */
  tlsConnections: number
  /** Plaintext connections served (TLS on, not `only`). */
  plaintextConnections: number
  /** Plaintext connections closed because the listener is TLS only. */
  plaintextRefused: number
  /** TLS handshakes that failed or timed out, and connections silent past the sniff timeout. */
  handshakeFailures: number
  /** Connections closed at once because their source had `maxPendingPerSource` unsorted or mid-handshake. */
  pendingRefused: number
}

export class TlsFront {
  private readonly context: SecureContext
  private readonly only: boolean
  private readonly sniffTimeoutMs: number
  private readonly handshakeTimeoutMs: number
  private readonly logger: Logger
  /** Raw sockets not yet handed on or still in their handshake. */
  private readonly pending = new Set<Socket>()
  private readonly releasers = new Map<Socket, () => void>()
  private readonly maxPendingPerSource: number
  /** Unsorted or mid-handshake connections per source: the server's per-source cap counts a connection only once it is handed on. */
  private readonly pendingBySource = new Map<string, number>()
  private readonly counters: TlsFrontStats = { tlsConnections: 0, plaintextConnections: 0, plaintextRefused: 0, handshakeFailures: 0, pendingRefused: 0 }

  constructor(options: RegistryTlsListenOptions, logger: Logger = nullLogger) {
    try {
      this.context = createSecureContext({ cert: options.certPem, key: options.keyPem, minVersion: 'TLSv1.2' })
    } catch (err) {
      throw new RegistryError(RegistryErrorCode.TLS, `the registry's TLS certificate or key is unusable: ${(err as Error).message}`, { cause: err })
    }
    this.only = options.only
    this.sniffTimeoutMs = options.sniffTimeoutMs ?? 10_000
    this.handshakeTimeoutMs = options.handshakeTimeoutMs ?? 10_000
    this.maxPendingPerSource = options.maxPendingPerSource ?? 64
    this.logger = logger
  }

  stats(): TlsFrontStats {
    return { ...this.counters }
  }

  /** Sorts a new connection: `accept` gets a TLS socket (before its handshake) or the plaintext socket. */
  route(socket: Socket, accept: (socket: Socket) => void): void {
    socket.on('error', () => {})
    const source = sourceKeyOf(normalizeRemoteIp(socket.remoteAddress ?? '0.0.0.0'))
    const held = this.pendingBySource.get(source) ?? 0
    if (held >= this.maxPendingPerSource) {
      this.counters.pendingRefused++
      socket.destroy()
      return
    }
    this.pendingBySource.set(source, held + 1)
    this.pending.add(socket)
    let counted = true
    const release = (): void => {
      if (!counted) return
      counted = false
      const n = (this.pendingBySource.get(source) ?? 1) - 1
      if (n <= 0) this.pendingBySource.delete(source)
      else this.pendingBySource.set(source, n)
    }
    this.releasers.set(socket, release)
    socket.once('close', () => this.settle(socket))
    const timer = setTimeout(() => {
      this.counters.handshakeFailures++
      socket.destroy()
    }, this.sniffTimeoutMs)
    const onEnd = (): void => {
      clearTimeout(timer)
      socket.destroy()
    }
    const onReadable = (): void => {
      const first = socket.read(1) as Buffer | null
      if (first === null) return // 'end' or more 'readable' follows
      socket.off('readable', onReadable)
      socket.off('end', onEnd)
      clearTimeout(timer)
      socket.unshift(first)
      if (first[0] === TLS_HANDSHAKE_RECORD) this.startTls(socket, accept)
      else if (this.only) {
        this.counters.plaintextRefused++
        this.logger.debug('plaintext connection refused (TLS only)', { peer: socket.remoteAddress })
        socket.destroy()
      } else {
        this.settle(socket)
        this.counters.plaintextConnections++
        accept(socket)
      }
    }
    socket.on('readable', onReadable)
    socket.once('end', onEnd)
  }

  /** Closes every connection still being sorted or in its handshake. */
  closeAll(): void {
    for (const socket of [...this.pending]) {
      this.settle(socket)
      socket.destroy()
    }
  }

  /** The raw socket is no longer pending: handed on, or closed. */
  private settle(socket: Socket): void {
    this.pending.delete(socket)
    this.releasers.get(socket)?.()
    this.releasers.delete(socket)
  }

  private startTls(raw: Socket, accept: (socket: Socket) => void): void {
    // TLSSocket takes over the raw socket, including the byte put back above.
    const secure = new TLSSocket(raw, { isServer: true, secureContext: this.context })
    const timer = setTimeout(() => {
      this.counters.handshakeFailures++
      raw.destroy()
    }, this.handshakeTimeoutMs)
    const onError = (err: Error): void => {
      clearTimeout(timer)
      this.counters.handshakeFailures++
      this.logger.debug('TLS handshake failed', { peer: raw.remoteAddress, error: err.message })
      raw.destroy()
    }
    secure.once('error', onError)
    secure.once('secure', () => {
      clearTimeout(timer)
      secure.off('error', onError)
      this.settle(raw)
      this.counters.tlsConnections++
    })
    secure.once('close', () => {
      clearTimeout(timer)
      raw.destroy()
    })
    accept(secure)
  }
}
