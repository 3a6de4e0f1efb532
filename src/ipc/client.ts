/**
 * `IpcClient`: one driver connected to the IPC socket (docs/wire.md §14).
 *
 *   framing      `IpcFrameDecoder`; an oversized length (framing lost) gets an
 *                Error frame and the connection ends; an empty or short
 *                message, an unknown command or handshake sub-command gets an
 *                Error frame ("unknown command" for an unknown command byte)
 *                and the connection goes on.
 *   streams      Bind → listen (Accept per inbound stream), Dial → DialOK or
 *                Error, Send → the stream, the stream → Recv, Close → FIN and
 *                CloseOK; a remote FIN (or reset) → CloseOK too. Sending stays
 *                possible after a remote FIN until Close (half-close).
 *   datagrams    SendTo → the daemon; every datagram the daemon receives
 *                → RecvFrom to every client (dropped for a client whose socket
 *                is backed up past `writeHighWater`).
 *   back-pressure  a Recv that leaves more than `writeHighWater` bytes queued on
 *                the socket pauses the client's streams until 'drain'; a Send
 *                a stream cannot take pauses reading the socket until the
 *                stream drains. Nothing is buffered without bound.
 *   requests     Dial and the registry/trust/info commands run concurrently,
 *                at most `maxPendingRequests` at once.
 *   disconnect   every stream of the client ends (FIN; RST after
 *                `closeGraceMs`), every port it bound is unbound.
 */
import type { Socket } from 'node:net'
import { DecodeError } from '../errors.js'
import { formatAddress } from '../protocol/address.js'
import {
  IPC_MAX_STREAM_DATA,
  IpcCommand,
  IpcFrameDecoder,
  decodeIpcMessage,
  encodeIpcMessage,
  ipcCommandName,
  type IpcMessage,
} from '../protocol/ipc-frames.js'
import type { Logger } from '../logger.js'
import type { IpcDatagram, IpcHost, IpcJson, IpcStream } from './host.js'

export interface IpcLimits {
  maxConnsPerClient: number
  maxPortsPerClient: number
  maxPendingRequests: number
  writeHighWater: number
  closeGraceMs: number
}

/** What a client needs from its server (server.ts), which owns the conn table of all clients. */
export interface IpcClientOwner {
  readonly host: IpcHost
  readonly logger: Logger
  readonly limits: IpcLimits
  readonly conns: ReadonlyMap<number, { client: IpcClient; stream: object }>
  readonly counters: { badFrames: number; unknownCommands: number }
  /** A fresh conn ID for `stream`. */
  register(client: IpcClient, stream: object): number
  unregister(id: number): void
  connIdOf(stream: object): number | undefined
}

interface ConnEntry {
  stream: IpcStream
  /** A CloseOK went out for this conn's end already (remote FIN or reset). */
  endReported: boolean
  /** The client closed it (Close): its data is discarded. */
  closedByClient: boolean
}

/** The reference's error code in Error frames. */
const ERROR_CODE = 1

export class IpcClient {
  private readonly server: IpcClientOwner
  private readonly host: IpcHost
  private readonly socket: Socket
  private readonly limits: IpcLimits
  private readonly decoder = new IpcFrameDecoder()
  private readonly conns = new Map<number, ConnEntry>()
  private readonly ports = new Set<number>()
  private pending = 0
  /** Streams paused because the socket is backed up. */
  private recvPaused = false
  /** Streams whose 'drain' the socket's reading waits for. */
  private sendBlocked = 0
  private gone = false

  constructor(server: IpcClientOwner, socket: Socket) {
    this.server = server
    this.host = server.host
    this.socket = socket
    this.limits = server.limits
    socket.on('data', (chunk: Buffer) => this.onData(chunk))
    socket.on('drain', () => this.onDrain())
    socket.on('error', (err) => server.logger.debug('IPC client error', { error: err.message }))
  }

  /** Bound ports, open conns and bytes queued on the socket (tests, logs). */
  get summary(): { ports: number[]; conns: number[]; queuedBytes: number } {
    return { ports: [...this.ports], conns: [...this.conns.keys()], queuedBytes: this.socket.writableLength }
  }

  /** RecvFrom, unless the client is backed up; false = dropped. */
  deliverDatagram(d: IpcDatagram): boolean {
    if (this.gone || this.socket.writableLength > this.limits.writeHighWater) return false
    this.send({ cmd: IpcCommand.RecvFrom, src: d.from, srcPort: d.fromPort, dstPort: d.toPort, data: d.data })
    return true
  }

  destroy(): void {
    this.socket.destroy()
  }

  /** After the socket closed: streams end, ports unbind. Idempotent. */
  cleanup(): void {
    if (this.gone) return
    this.gone = true
    for (const port of this.ports) this.host.unlisten(port)
    this.ports.clear()
    for (const [id, e] of this.conns) {
      this.server.unregister(id)
      finishStream(e.stream, this.limits.closeGraceMs)
    }
    this.conns.clear()
  }

  // ───────────────────────── input ─────────────────────────

  private onData(chunk: Buffer): void {
    if (this.gone) return
    let messages: Buffer[]
    try {
      messages = this.decoder.push(chunk)
    } catch (err) {
      this.server.counters.badFrames++
      this.error(err instanceof Error ? err.message : String(err))
      this.cleanup()
      this.socket.end()
      this.socket.once('finish', () => this.socket.destroy())
      return
    }
    for (const raw of messages) {
      let m: IpcMessage
      try {
        m = decodeIpcMessage(raw)
      } catch (err) {
        const unknown = err instanceof DecodeError && err.reason === 'bad-type'
        if (unknown) this.server.counters.unknownCommands++
        else this.server.counters.badFrames++
        this.error(unknown ? 'unknown command' : (err as Error).message)
        continue
      }
      this.handle(m)
    }
  }

  private handle(m: IpcMessage): void {
    switch (m.cmd) {
      case IpcCommand.Bind:
        return this.bind(m.port)
      case IpcCommand.Dial:
        return this.request(async () => this.dial(m.addr, m.port))
      case IpcCommand.Send:
        return this.sendData(m.connId, m.data)
      case IpcCommand.Close:
        return this.close(m.connId)
      case IpcCommand.SendTo:
        try {
          this.host.sendDatagram(m.addr, m.port, m.data)
        } catch (err) {
          this.error(`sendto: ${(err as Error).message}`)
        }
        return
      case IpcCommand.Info:
        return this.json(IpcCommand.InfoOK, () => this.host.info((s) => this.server.connIdOf(s)))
      case IpcCommand.Handshake:
        return this.json(IpcCommand.HandshakeOK, () => this.host.handshake(m.handshake))
      case IpcCommand.ResolveHostname:
        return this.json(IpcCommand.ResolveHostnameOK, () => this.host.resolveHostname(m.text))
      case IpcCommand.SetHostname:
        return this.json(IpcCommand.SetHostnameOK, () => this.host.setHostname(m.text))
      case IpcCommand.SetVisibility:
        return this.json(IpcCommand.SetVisibilityOK, () => this.host.setVisibility(m.enabled))
      case IpcCommand.SetTaskExec:
        return this.json(IpcCommand.SetTaskExecOK, () => this.host.setTaskExec(m.enabled))
      case IpcCommand.Deregister:
        return this.json(IpcCommand.DeregisterOK, () => this.host.deregister())
      case IpcCommand.SetTags:
        return this.json(IpcCommand.SetTagsOK, () => this.host.setTags(parseTags(m.text)))
      case IpcCommand.SetWebhook:
        if (m.text === '') return this.json(IpcCommand.SetWebhookOK, async () => ({ webhook: '' }))
        return this.error('set webhook: pilot-tun has no webhooks (only clearing one is accepted)')
      default:
        // Answers (BindOK, Recv, …) are the daemon's to send.
        this.server.counters.unknownCommands++
        return this.error(`unexpected command ${ipcCommandName(m.cmd)} from a driver`)
    }
  }

  // ───────────────────────── streams ─────────────────────────

  private bind(port: number): void {
    if (this.ports.has(port)) {
      this.send({ cmd: IpcCommand.BindOK, port })
      return
    }
    if (this.ports.size >= this.limits.maxPortsPerClient) {
      this.error(`bind: more than ${this.limits.maxPortsPerClient} ports bound by one client`)
      return
    }
    try {
      this.host.listen(port, (stream) => this.adopt(stream, port))
    } catch (err) {
      this.error(`bind: port ${port}: ${(err as Error).message}`)
      return
    }
    this.ports.add(port)
    this.send({ cmd: IpcCommand.BindOK, port })
  }

  /** An inbound stream on a bound port: Accept, then its data as Recv. */
  private adopt(stream: IpcStream, port: number): void {
    if (this.gone || this.conns.size >= this.limits.maxConnsPerClient) {
      stream.destroy()
      return
    }
    const id = this.track(stream)
    this.send({ cmd: IpcCommand.Accept, localPort: port, connId: id, remote: stream.remoteAddress, remotePort: stream.remotePort })
  }

  private async dial(addr: { network: number; node: number }, port: number): Promise<void> {
    if (this.conns.size >= this.limits.maxConnsPerClient) {
      this.error(`dial: more than ${this.limits.maxConnsPerClient} connections on one client`)
      return
    }
    let stream: IpcStream
    try {
      stream = await this.host.openStream(addr, port)
    } catch (err) {
      this.error(`dial ${formatAddress(addr)}:${port}: ${(err as Error).message}`)
      return
    }
    if (this.gone) {
      stream.destroy()
      return
    }
    const id = this.track(stream)
    this.send({ cmd: IpcCommand.DialOK, connId: id })
  }

  /** Registers a stream and wires its data, end and close to the client. */
  private track(stream: IpcStream): number {
    const id = this.server.register(this, stream)
    const entry: ConnEntry = { stream, endReported: false, closedByClient: false }
    this.conns.set(id, entry)
    stream.on('data', (chunk: Buffer) => {
      if (entry.closedByClient || this.gone) return
      for (let off = 0; off < chunk.length; off += IPC_MAX_STREAM_DATA) {
        this.send({ cmd: IpcCommand.Recv, connId: id, data: chunk.subarray(off, off + IPC_MAX_STREAM_DATA) })
      }
      if (this.socket.writableLength > this.limits.writeHighWater) this.pauseStreams()
    })
    stream.on('end', () => this.reportEnd(id, entry))
    stream.on('error', () => this.reportEnd(id, entry))
    stream.on('close', () => {
      this.reportEnd(id, entry)
      if (this.conns.get(id) === entry) {
        this.conns.delete(id)
        this.server.unregister(id)
      }
    })
    if (this.recvPaused) stream.pause()
    return id
  }

  private reportEnd(id: number, entry: ConnEntry): void {
    if (entry.endReported || entry.closedByClient || this.gone) return
    entry.endReported = true
    this.send({ cmd: IpcCommand.CloseOK, connId: id })
  }

  private sendData(id: number, data: Uint8Array): void {
    const e = this.conns.get(id)
    if (e === undefined || e.closedByClient) {
      this.error(`send: connection ${id} is not open`)
      return
    }
    const s = e.stream
    if (s.destroyed || !s.writable) {
      this.error(`send: connection ${id} is closed`)
      return
    }
    if (data.length === 0) return
    // The decoder's message buffer is ours: the stream may keep it.
    if (!s.write(data)) {
      this.sendBlocked++
      this.socket.pause()
      let released = false
      const release = (): void => {
        if (released) return
        released = true
        s.off('drain', release)
        s.off('close', release)
        this.sendBlocked--
        if (this.sendBlocked === 0 && !this.gone) this.socket.resume()
      }
      s.on('drain', release)
      s.on('close', release)
    }
  }

  private close(id: number): void {
    // Any client may close any IPC connection (`pilotctl disconnect`), as in the reference.
    const owner = this.server.conns.get(id)?.client
    if (owner !== undefined && owner !== this) owner.closeOwn(id)
    else this.closeOwn(id)
    this.send({ cmd: IpcCommand.CloseOK, connId: id })
  }

  /** Ends one of this client's conns: FIN after its data, whatever still arrives is discarded. */
  closeOwn(id: number): void {
    const e = this.conns.get(id)
    if (e === undefined) return
    e.closedByClient = true
    this.conns.delete(id)
    this.server.unregister(id)
    finishStream(e.stream, this.limits.closeGraceMs)
  }

  private pauseStreams(): void {
    if (this.recvPaused) return
    this.recvPaused = true
    for (const e of this.conns.values()) e.stream.pause()
  }

  private onDrain(): void {
    if (!this.recvPaused) return
    this.recvPaused = false
    for (const e of this.conns.values()) e.stream.resume()
  }

  // ───────────────────────── answers ─────────────────────────

  /** Runs an async command; at most `maxPendingRequests` at once per client. */
  private request(run: () => Promise<void>): void {
    if (this.pending >= this.limits.maxPendingRequests) {
      this.error(`more than ${this.limits.maxPendingRequests} requests waiting on one client`)
      return
    }
    this.pending++
    run()
      .catch((err: unknown) => this.error((err as Error).message))
      .finally(() => this.pending--)
  }

  private json(answer: IpcCommand, run: () => Promise<IpcJson>): void {
    this.request(async () => {
      const body = await run()
      this.send({ cmd: answer as IpcCommand.InfoOK, text: JSON.stringify(body) })
    })
  }

  private error(message: string): void {
    this.send({ cmd: IpcCommand.Error, code: ERROR_CODE, message })
  }

  private send(m: IpcMessage): void {
    if (this.socket.destroyed || !this.socket.writable) return
    let bytes: Buffer
    try {
      bytes = encodeIpcMessage(m)
    } catch (err) {
      bytes = encodeIpcMessage({ cmd: IpcCommand.Error, code: ERROR_CODE, message: `answer too large: ${(err as Error).message}` })
    }
    this.socket.write(bytes)
  }
}

/** SetTags' payload: a JSON array of at most 3 strings. */
function parseTags(text: string): string[] {
  let v: unknown
  try {
    v = JSON.parse(text)
  } catch {
    throw new Error('set tags: the payload is not JSON')
  }
  if (v === null) return []
  if (!Array.isArray(v) || !v.every((t) => typeof t === 'string')) throw new Error('set tags: expected a JSON array of strings')
  if (v.length > 3) throw new Error('set tags: at most 3 tags')
  return v as string[]
}

/** FIN after the data already written; data still arriving is discarded; RST if not closed after `graceMs`. */
function finishStream(stream: IpcStream, graceMs: number): void {
  if (stream.destroyed) return
  stream.removeAllListeners('data')
  stream.on('error', () => {})
  stream.resume()
  stream.end()
  const timer = setTimeout(() => stream.destroy(), graceMs)
  timer.unref()
  stream.once('close', () => clearTimeout(timer))
}
