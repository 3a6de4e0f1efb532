// In-memory stream pairs with a remote address, standing in for Pilot streams in the service tests.
import { Duplex } from 'node:stream'
import type { PilotAddress } from '../../src/protocol/address.js'
import type { ServiceStream } from '../../src/services/service-stream.js'

export class MemEnd extends Duplex {
  peer!: MemEnd
  /** When true, writes are never completed: the unsent bytes pile up (a stalled reader). */
  stalled = false
  readonly remoteAddress: PilotAddress
  constructor(remoteNode: number) {
    super({ allowHalfOpen: true })
    this.remoteAddress = { network: 0, node: remoteNode }
  }
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    if (this.stalled) return
    const peer = this.peer
    setImmediate(() => {
      if (!peer.destroyed) peer.push(chunk)
      cb()
    })
  }
  override _final(cb: (err?: Error | null) => void): void {
    const peer = this.peer
    setImmediate(() => {
      if (!peer.destroyed) peer.push(null)
      cb()
    })
  }
  override _read(): void {}
  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    const peer = this.peer
    if (!peer.destroyed) setImmediate(() => peer.destroy(new Error('reset by peer')))
    cb(err)
  }
}

/** `client` is the dialling side (node `clientNode`), `server` the accepted one (its remote is `clientNode`). */
export function streamPair(clientNode = 1, serverNode = 2): { client: MemEnd & ServiceStream; server: MemEnd & ServiceStream } {
  const client = new MemEnd(serverNode)
  const server = new MemEnd(clientNode)
  client.peer = server
  server.peer = client
  // A reset reaches the other end as an error; the tests look at `destroyed` instead.
  client.on('error', () => {})
  server.on('error', () => {})
  return { client, server }
}

/** Collects everything `s` delivers into one Buffer (resolves on end or close). */
export function collect(s: Duplex): { bytes: () => Buffer; done: Promise<Buffer> } {
  const chunks: Buffer[] = []
  s.on('data', (c: Buffer) => chunks.push(c))
  s.on('error', () => {})
  const done = new Promise<Buffer>((resolve) => {
    s.once('end', () => resolve(Buffer.concat(chunks)))
    s.once('close', () => resolve(Buffer.concat(chunks)))
  })
  return { bytes: () => Buffer.concat(chunks), done }
}

export async function until(cond: () => boolean | Promise<boolean>, what: string, timeoutMs = 5_000): Promise<void> {
  const end = Date.now() + timeoutMs
  while (Date.now() < end) {
    if (await cond()) return
    await new Promise((r) => setTimeout(r, 10))
  }
  throw new Error(`timed out waiting for ${what}`)
}
