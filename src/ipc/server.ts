/**
 * `IpcServer`: the Go reference's driver IPC (docs/wire.md §14) on a Unix
 * socket, so that the reference's `pilotctl` and driver programs work against
 * a pilot-tun daemon. Off unless asked for (`pilot-tun up --ipc-socket PATH`).
 *
 * The socket file: mode 0600 from birth (umask 0177 around bind, chmod
 * after); a socket nobody answers on is stale and removed, a live one is
 * refused (PT_IPC_IN_USE), anything else at the path is refused
 * (PT_IPC_PATH); `close()` removes it if it is still ours (same inode).
 *
 * Each client is an `IpcClient` (client.ts). The server keeps the table of
 * stream connections of every client (conn IDs are unique across clients,
 * as in the reference, so `pilotctl disconnect <id>` works from any client),
 * and hands each received datagram to every client as RecvFrom.
 */
import { createServer, type Server, type Socket } from 'node:net'
import { chmod, lstat, mkdir, stat, unlink } from 'node:fs/promises'
import { dirname } from 'node:path'
import { PilotError } from '../errors.js'
import { nullLogger, type Logger } from '../logger.js'
import { probeSocket } from '../daemon/control/server.js'
import type { IpcHost } from './host.js'
import { IpcClient, type IpcClientOwner, type IpcLimits } from './client.js'

/** Where the reference's drivers look by default. */
export const DEFAULT_IPC_SOCKET = '/tmp/pilot.sock'

export interface IpcServerOptions {
  path: string
  host: IpcHost
  logger?: Logger
  /** Clients at once; more are closed at once. Default 256. */
  maxClients?: number
  limits?: Partial<IpcLimits>
}

export interface IpcServerStats {
  clients: number
  accepted: number
  refused: number
  connections: number
  badFrames: number
  unknownCommands: number
  datagramsDelivered: number
  datagramsDropped: number
}

export const DEFAULT_IPC_LIMITS: IpcLimits = {
  maxConnsPerClient: 1024,
  maxPortsPerClient: 256,
  maxPendingRequests: 64,
  /** Socket bytes queued for a slow client before its streams pause / its datagrams drop. */
  writeHighWater: 1024 * 1024,
  closeGraceMs: 10_000,
}

export class IpcServer implements IpcClientOwner {
  readonly path: string
  readonly host: IpcHost
  readonly logger: Logger
  readonly limits: IpcLimits
  /** Every IPC stream connection, by conn ID (all clients). */
  readonly conns = new Map<number, { client: IpcClient; stream: object }>()
  readonly counters = { accepted: 0, refused: 0, badFrames: 0, unknownCommands: 0, datagramsDelivered: 0, datagramsDropped: 0 }
  private readonly maxClients: number
  private readonly server: Server
  private readonly clients = new Set<IpcClient>()
  private readonly connIds = new WeakMap<object, number>()
  private nextConnId = 1
  private removeDatagramListener: (() => void) | null = null
  private inode: number | null = null
  private listening = false
  private closing: Promise<void> | null = null

  constructor(options: IpcServerOptions) {
    this.path = options.path
    this.host = options.host
    this.logger = (options.logger ?? nullLogger).child({ component: 'ipc' })
    this.maxClients = options.maxClients ?? 256
    this.limits = { ...DEFAULT_IPC_LIMITS, ...options.limits }
    this.server = createServer({ allowHalfOpen: false })
    this.server.on('connection', (socket) => this.onConnection(socket))
    this.server.on('error', (err) => this.logger.error('IPC socket error', { error: err.message }))
  }

  stats(): IpcServerStats {
    return { clients: this.clients.size, connections: this.conns.size, ...this.counters }
  }

  /** Per client: bound ports, conns, bytes queued on its socket. */
  clientSummaries(): Array<IpcClient['summary']> {
    return [...this.clients].map((c) => c.summary)
  }

  /** Creates the socket; rejects with PT_IPC_IN_USE or PT_IPC_PATH. */
  async listen(): Promise<void> {
    if (this.listening || this.closing) throw new Error('IpcServer.listen called twice')
    const dir = dirname(this.path)
    await mkdir(dir, { recursive: true, mode: 0o755 }).catch((err: unknown) => {
      throw pathError(`cannot create ${dir}: ${errText(err)}`, err)
    })
    await this.clearStaleSocket()
    await this.bind()
    try {
      await chmod(this.path, 0o600)
      this.inode = (await stat(this.path)).ino
    } catch (err) {
      this.server.close()
      throw pathError(`cannot chmod ${this.path}: ${errText(err)}`, err)
    }
    this.listening = true
    this.removeDatagramListener = this.host.addDatagramListener((d) => {
      for (const c of this.clients) {
        if (c.deliverDatagram(d)) this.counters.datagramsDelivered++
        else this.counters.datagramsDropped++
      }
    })
    this.logger.info('driver IPC listening', { path: this.path })
  }

  /** Stops accepting, closes every client (their streams end, their ports unbind), removes the socket file. */
  close(): Promise<void> {
    this.closing ??= this.doClose()
    return this.closing
  }

  /** A fresh conn ID for `stream`, registered to `client`. */
  register(client: IpcClient, stream: object): number {
    let id = this.nextConnId
    while (this.conns.has(id) || id === 0) id = (id + 1) >>> 0
    this.nextConnId = (id + 1) >>> 0
    this.conns.set(id, { client, stream })
    this.connIds.set(stream, id)
    return id
  }

  unregister(id: number): void {
    const e = this.conns.get(id)
    if (e === undefined) return
    this.conns.delete(id)
    this.connIds.delete(e.stream)
  }

  /** The IPC conn ID of a daemon stream, if an IPC client owns it (InfoOK's conn_list). */
  connIdOf(stream: object): number | undefined {
    return this.connIds.get(stream)
  }

  private async doClose(): Promise<void> {
    if (!this.listening) return
    this.removeDatagramListener?.()
    this.removeDatagramListener = null
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()))
    for (const c of [...this.clients]) c.destroy()
    await closed
    await this.removeSocketFile()
  }

  private onConnection(socket: Socket): void {
    if (this.closing || this.clients.size >= this.maxClients) {
      this.counters.refused++
      socket.destroy()
      return
    }
    this.counters.accepted++
    const client = new IpcClient(this, socket)
    this.clients.add(client)
    socket.once('close', () => {
      this.clients.delete(client)
      client.cleanup()
    })
  }

  private async removeSocketFile(): Promise<void> {
    try {
      const s = await stat(this.path)
      if (this.inode !== null && s.ino !== this.inode) return
      await unlink(this.path)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') this.logger.warn('could not remove the IPC socket', { path: this.path, error: errText(err) })
    }
  }

  private async clearStaleSocket(): Promise<void> {
    let st
    try {
      st = await lstat(this.path)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return
      throw pathError(`cannot inspect ${this.path}: ${errText(err)}`, err)
    }
    if (!st.isSocket()) throw pathError(`${this.path} exists and is not a socket`, undefined, 'remove it, or choose another path with --ipc-socket')
    const probe = await probeSocket(this.path)
    if (probe === 'alive') throw inUseError(this.path)
    if (probe !== 'refused') throw pathError(`cannot check ${this.path}: ${probe}`)
    try {
      await unlink(this.path)
      this.logger.info('removed a stale IPC socket', { path: this.path })
    } catch (err) {
      throw pathError(`cannot remove the stale socket ${this.path}: ${errText(err)}`, err)
    }
  }

  private bind(): Promise<void> {
    return new Promise((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException): void => {
        this.server.off('listening', onListening)
        reject(err.code === 'EADDRINUSE' ? inUseError(this.path) : pathError(`cannot listen on ${this.path}: ${err.message}`, err))
      }
      const onListening = (): void => {
        this.server.off('error', onError)
        resolve()
      }
      this.server.once('error', onError)
      this.server.once('listening', onListening)
      const previous = process.umask(0o177)
      try {
        this.server.listen({ path: this.path, backlog: 64 })
      } finally {
        process.umask(previous)
      }
    })
  }
}

function inUseError(path: string): PilotError {
  return new PilotError('PT_IPC_IN_USE', `another daemon is answering on the IPC socket ${path}`, {
    hint: 'stop it first, or give this one another --ipc-socket',
  })
}

function pathError(message: string, cause?: unknown, hint?: string): PilotError {
  const code = (cause as NodeJS.ErrnoException | undefined)?.code
  return new PilotError('PT_IPC_PATH', message, {
    hint: hint ?? (code === 'EACCES' || code === 'EPERM' ? 'run as root or choose a writable path with --ipc-socket' : 'choose another path with --ipc-socket'),
    ...(cause === undefined ? {} : { cause }),
  })
}

function errText(err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}
