/**
 * Outbound TCP dials the TCP bridge holds (bridge-tcp.ts): a program's SYN
 * kept while its Pilot stream opens, then the open stream kept until the
 * kernel's connection reaches the internal listener. Keyed by (peer node,
 * peer port, local port) as numbers: a map per peer (by `addressKey`) of
 * maps by peerPort * 65536 + localPort.
 */
import type { Duplex } from 'node:stream'
import { addressKey, type PilotAddress } from '../protocol/address.js'

export interface OutboundDial {
  readonly peer: PilotAddress
  readonly peerPort: number
  readonly localPort: number
  /** A copy of the program's SYN (reflected, or answered, when the dial ends). */
  readonly syn: Buffer
  /** The Pilot stream, once open. */
  stream: Duplex | null
  /** Once the stream is open: the kernel must connect to the listener by then. */
  deadline: number
}

export class OutboundDials {
  private readonly byPeer = new Map<number, Map<number, OutboundDial>>()
  private count = 0

  get size(): number {
    return this.count
  }

  get(peer: PilotAddress, peerPort: number, localPort: number): OutboundDial | undefined {
    return this.byPeer.get(addressKey(peer))?.get(peerPort * 0x10000 + localPort)
  }

  /** Holds `dial`, in place of any dial with the same key. */
  add(dial: OutboundDial): void {
    const k = addressKey(dial.peer)
    let m = this.byPeer.get(k)
    if (m === undefined) {
      m = new Map()
      this.byPeer.set(k, m)
    }
    const pk = dial.peerPort * 0x10000 + dial.localPort
    if (!m.has(pk)) this.count++
    m.set(pk, dial)
  }

  /** True while `dial` is the one held for its key. */
  holds(dial: OutboundDial): boolean {
    return this.get(dial.peer, dial.peerPort, dial.localPort) === dial
  }

  /** Forgets `dial` if it is the one held for its key (a newer dial for the same key stays). */
  remove(dial: OutboundDial): void {
    const k = addressKey(dial.peer)
    const m = this.byPeer.get(k)
    const pk = dial.peerPort * 0x10000 + dial.localPort
    if (m === undefined || m.get(pk) !== dial) return
    m.delete(pk)
    this.count--
    if (m.size === 0) this.byPeer.delete(k)
  }

  /** Forgets and returns the dials whose stream is open and whose deadline is at or before `now`. */
  takeLate(now: number): OutboundDial[] {
    const late: OutboundDial[] = []
    if (this.count === 0) return late
    for (const d of this.values()) if (d.stream !== null && d.deadline <= now) late.push(d)
    for (const d of late) this.remove(d)
    return late
  }

  /** Every dial held, as a new array. */
  all(): OutboundDial[] {
    return [...this.values()]
  }

  private *values(): IterableIterator<OutboundDial> {
    for (const m of this.byPeer.values()) yield* m.values()
  }
}
