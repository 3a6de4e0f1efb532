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
import { PilotError } from '../errors.js'
import { nullLogger, type Logger } from '../logger.js'
import { errText, listenUnixSocket, removeUnixSocket, type UnixSocketErrors } from '../unix-socket.js'
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
    this.inode = await listenUnixSocket(this.server, this.path, IPC_SOCKET_ERRORS, this.logger)
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
    await removeUnixSocket(this.path, this.inode, 'IPC socket', this.logger)
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
}

const IPC_SOCKET_ERRORS: UnixSocketErrors = { inUse: inUseError, path: pathError, what: 'IPC socket', flag: '--ipc-socket' }

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
