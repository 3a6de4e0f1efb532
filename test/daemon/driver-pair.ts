// Two SessionDrivers joined by an in-process link (no tunnel): node 1 and node 2.
import { SessionEndpoint } from '../../src/session/index.js'
import { SeededRandom } from '../../src/random.js'
import { SessionDriver, type AdmitPolicy, type PacketSink } from '../../src/daemon/session-driver.js'

/** Delivers each packet to the peer driver on the next turn; `drop` loses everything (a dead path). */
export class Link implements PacketSink {
  peer: SessionDriver | null = null
  sent = 0
  drop = false
  send(_node: number, packet: Uint8Array): void {
    this.sent++
    if (this.drop) return
    const copy = Buffer.from(packet)
    const peer = this.peer!
    setImmediate(() => peer.receive(copy))
  }
}

export interface DriverPair {
  a: SessionDriver
  b: SessionDriver
  /** a's outgoing link (a → b). */
  la: Link
  lb: Link
  close(): void
}

export function driverPair(admitB: AdmitPolicy = () => true, admitA: AdmitPolicy = () => true): DriverPair {
  const la = new Link()
  const lb = new Link()
  const a = new SessionDriver({ endpoint: new SessionEndpoint({ local: { network: 0, node: 1 }, random: new SeededRandom(1) }), sink: la, admit: admitA })
  const b = new SessionDriver({ endpoint: new SessionEndpoint({ local: { network: 0, node: 2 }, random: new SeededRandom(2) }), sink: lb, admit: admitB })
  la.peer = b
  lb.peer = a
  return {
    a,
    b,
    la,
    lb,
    close: () => {
      a.close()
      b.close()
    },
  }
}
