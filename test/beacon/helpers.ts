/** Beacon test rigs: a server on a MemoryNetwork with a hand-driven clock, and clients that collect what they receive. */
import { BeaconServer, type BeaconLimits } from '../../src/beacon/index.js'
import { BeaconType, encodeBeaconMessage } from '../../src/protocol/beacon-messages.js'
import type { PacketBind } from '../../src/tunnel/bind.js'
import { MemoryNetwork } from '../../src/tunnel/testing/memory-bind.js'

export const BEACON_HOST = '192.0.2.1'
export const BEACON_PORT = 9001

export class ManualClock {
  ms = 1_000_000
  readonly now = (): number => this.ms
  advance(ms: number): void {
    this.ms += ms
  }
}

/** A daemon-side socket that records every datagram it receives. */
export class Client {
  readonly inbox: Buffer[] = []
  private waiter: (() => void) | null = null

  constructor(readonly bind: PacketBind, private readonly beacon: { host: string; port: number }) {
    bind.onDatagram((data) => {
      this.inbox.push(data)
      this.waiter?.()
    })
  }

  get host(): string { return this.bind.local.host }
  get port(): number { return this.bind.local.port }

  send(bytes: Uint8Array): void {
    this.bind.send(bytes, this.beacon.host, this.beacon.port)
  }
  discover(nodeId: number): void {
    this.send(encodeBeaconMessage({ type: BeaconType.DISCOVER, nodeId }))
  }
  punch(requesterId: number, targetId: number): void {
    this.send(encodeBeaconMessage({ type: BeaconType.PUNCH_REQUEST, requesterId, targetId }))
  }
  relay(senderId: number, destId: number, frame: Uint8Array): void {
    this.send(encodeBeaconMessage({ type: BeaconType.RELAY, senderId, destId, frame }))
  }

  /** Removes and returns everything received so far, as hex. */
  take(): string[] {
    return this.inbox.splice(0).map((b) => b.toString('hex'))
  }

  /** Waits (real time) until at least `n` datagrams are queued. */
  async waitFor(n: number, timeoutMs = 2000): Promise<void> {
    const deadline = Date.now() + timeoutMs
    while (this.inbox.length < n) {
      const left = deadline - Date.now()
      if (left <= 0) throw new Error(`timed out waiting for ${n} datagrams, have ${this.inbox.length}`)
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left)
        this.waiter = () => { clearTimeout(t); resolve() }
      })
      this.waiter = null
    }
  }
}

/** Lets in-memory datagrams (delivered with setImmediate) make a few hops. */
export async function settle(rounds = 6): Promise<void> {
  for (let i = 0; i < rounds; i++) await new Promise((r) => setImmediate(r))
}

export interface MemoryRig {
  net: MemoryNetwork
  server: BeaconServer
  clock: ManualClock
  client(host: string, port?: number): Client
  close(): Promise<void>
}

export function memoryRig(limits: Partial<BeaconLimits> = {}): MemoryRig {
  const net = new MemoryNetwork()
  const clock = new ManualClock()
  const server = new BeaconServer({ bind: net.bind(BEACON_HOST, BEACON_PORT), now: clock.now, limits })
  server.start()
  const clients: Client[] = []
  return {
    net,
    server,
    clock,
    client(host, port = 4000) {
      const c = new Client(net.bind(host, port), { host: BEACON_HOST, port: BEACON_PORT })
      clients.push(c)
      return c
    },
    async close() {
      for (const c of clients) await c.bind.close()
      await server.close()
    },
  }
}

export function hex(...parts: Array<string | Uint8Array>): string {
  return parts.map((p) => (typeof p === 'string' ? p.replace(/\s+/g, '') : Buffer.from(p).toString('hex'))).join('')
}
