/**
 * One TCP connection to a registry, used in lock step: `exchange` writes one
 * request and resolves with the next message. The owner (RegistryClient)
 * guarantees a single exchange at a time.
 */
import { connect, type Socket } from 'node:net'
import { encodeRegistryMessage, RegistryFrameDecoder, type JsonObject } from '../protocol/registry-framing.js'
import { dialPinned, type RegistryTlsPin } from './tls-pin.js'

/** The connection failed or closed; the request may or may not have reached the registry. */
export class ConnectionLost extends Error {}

export class RegistryClientConnection {
  private readonly socket: Socket
  private readonly decoder: RegistryFrameDecoder
  private waiter: { resolve(m: JsonObject): void; reject(e: Error): void } | null = null
  private lostWith: Error | null = null

  private constructor(socket: Socket, maxMessageSize: number) {
    this.socket = socket
    this.decoder = new RegistryFrameDecoder(maxMessageSize)
    socket.setNoDelay(true)
    socket.on('data', (chunk: Buffer) => this.onData(chunk))
    socket.on('error', (err) => this.lose(new ConnectionLost(err.message)))
    socket.on('close', () => this.lose(new ConnectionLost('connection closed by the registry')))
  }

  /** Dials `host:port`, giving up after `timeoutMs`; with `tls`, over TLS with that pin (tls-pin.ts). */
  static open(host: string, port: number, timeoutMs: number, maxMessageSize: number, tls: RegistryTlsPin | null = null): Promise<RegistryClientConnection> {
    if (tls !== null) {
      return dialPinned(host, port, tls, timeoutMs, (m) => new ConnectionLost(m)).then((socket) => new RegistryClientConnection(socket, maxMessageSize))
    }
    return new Promise((resolve, reject) => {
      const socket = connect({ host, port })
      const timer = setTimeout(() => {
        socket.destroy()
        reject(new ConnectionLost(`no connection within ${timeoutMs} ms`))
      }, timeoutMs)
      socket.once('connect', () => {
        clearTimeout(timer)
        socket.removeAllListeners('error')
        resolve(new RegistryClientConnection(socket, maxMessageSize))
      })
      socket.once('error', (err) => {
        clearTimeout(timer)
        socket.destroy()
        reject(new ConnectionLost(err.message))
      })
    })
  }

  get isOpen(): boolean {
    return this.lostWith === null
  }

  /** Sends one framed request and resolves with the registry's answer. */
  exchange(message: JsonObject): Promise<JsonObject> {
    if (this.lostWith !== null) return Promise.reject(this.lostWith)
    if (this.waiter !== null) return Promise.reject(new Error('registry connection already has a request in flight'))
    const frame = encodeRegistryMessage(message)
    return new Promise((resolve, reject) => {
      this.waiter = { resolve, reject }
      this.socket.write(frame)
    })
  }

  destroy(reason = 'closed by the client'): void {
    this.lose(new ConnectionLost(reason))
    this.socket.destroy()
  }

  private onData(chunk: Buffer): void {
    let message: JsonObject | null
    try {
      this.decoder.push(chunk)
      message = this.decoder.next()
    } catch (err) {
      this.destroy(`undecodable answer from the registry: ${(err as Error).message}`)
      return
    }
    if (message === null) return
    const waiter = this.waiter
    // An answer nobody asked for, or two answers to one request: lock step is broken.
    if (waiter === null || this.decoder.bufferedBytes > 0) {
      this.destroy('the registry sent an unexpected message')
      return
    }
    this.waiter = null
    waiter.resolve(message)
  }

  private lose(err: Error): void {
    if (this.lostWith === null) this.lostWith = err
    const waiter = this.waiter
    this.waiter = null
    waiter?.reject(this.lostWith)
  }
}
