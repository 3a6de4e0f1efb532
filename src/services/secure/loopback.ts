/**
 * Two connected in-memory stream ends, for a secure channel from this node to
 * itself (`pilot-tun secure send <own name>` while `secure listen` runs): the
 * daemon cannot dial its own node, so the service hands the listener one end.
 * Back-pressure: a write completes once the other end's reader wants more.
 */
import { Duplex } from 'node:stream'
import type { PilotAddress } from '../../protocol/address.js'
import type { ServiceStream } from '../service-stream.js'

class LoopEnd extends Duplex {
  peer!: LoopEnd
  /** The write waiting for our peer's reader. */
  private blocked: (() => void) | null = null

  constructor(readonly remoteAddress: PilotAddress) {
    super({ allowHalfOpen: true })
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    if (this.peer.destroyed) return cb(new Error('the other end is closed'))
    if (this.peer.push(chunk)) cb()
    else this.blocked = () => cb()
  }

  override _final(cb: (err?: Error | null) => void): void {
    if (!this.peer.destroyed) this.peer.push(null)
    cb()
  }

  override _read(): void {
    const release = this.peer.blocked
    this.peer.blocked = null
    release?.()
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    const release = this.blocked
    this.blocked = null
    release?.()
    if (!this.peer.destroyed) this.peer.destroy()
    cb(err)
  }
}

/** `dialer` is the connecting side, `acceptor` the listening one; both see `self` as the remote. */
export function loopbackPair(self: PilotAddress): { dialer: ServiceStream; acceptor: ServiceStream } {
  const dialer = new LoopEnd(self)
  const acceptor = new LoopEnd(self)
  dialer.peer = acceptor
  acceptor.peer = dialer
  return { dialer, acceptor }
}
