// Shared fixtures for the tunnel tests: a MemoryNetwork with a real BeaconServer,
// an in-memory registry directory, and nodes with real identities and fast timings.
import { Identity } from '../../src/crypto/index.js'
import { PacketHeader, Protocol, encodePacket } from '../../src/protocol/header.js'
import { BeaconServer } from '../../src/beacon/server.js'
import { MemoryNetwork, type MemoryBind } from '../../src/tunnel/testing/memory-bind.js'
import { MemoryPeerDirectory } from '../../src/tunnel/testing/memory-directory.js'
import { Tunnel, type KdfMode, type TunnelOptions } from '../../src/tunnel/tunnel.js'
import type { PathChangeEvent } from '../../src/tunnel/peer.js'
import type { TunnelScheduler, TunnelTiming } from '../../src/tunnel/timing.js'
import type { DatagramHandler, PacketBind, UdpEndpoint } from '../../src/tunnel/bind.js'
import type { PeerDirectory } from '../../src/tunnel/peer-directory.js'
import { encodePila } from '../../src/protocol/tunnel-frames.js'
import { randomBytes } from 'node:crypto'

export const FAST: Partial<TunnelTiming> = {
  tickMs: 10,
  directStaleMs: 2_000,
  silenceRekeyMs: 500,
  recoveryIntervalMs: 200,
  relayAfterMs: 300,
  probeIntervalMs: 100,
  probeMaxMs: 400,
  keyRetryMs: 100,
  beaconKeepaliveMs: 1_000,
  keyRefetchMs: 200,
  negativeKeyCacheMs: 200,
}

export const BEACON: UdpEndpoint = { host: '10.0.0.254', port: 9001 }

export interface Received {
  packet: Buffer
  from: number
  payload: string
}

export interface Node {
  id: number
  identity: Identity
  bind: PacketBind
  tunnel: Tunnel
  received: Received[]
  paths: PathChangeEvent[]
}

export class World {
  readonly net = new MemoryNetwork()
  readonly directory = new MemoryPeerDirectory()
  readonly nodes: Node[] = []
  beacon: BeaconServer | null = null

  static async create(opts: { beacon?: boolean } = {}): Promise<World> {
    const w = new World()
    if (opts.beacon !== false) {
      w.beacon = new BeaconServer({ bind: w.net.bind(BEACON.host, BEACON.port) })
      w.beacon.start()
    }
    return w
  }

  node(
    id: number,
    host: string,
    opts: { kdf?: KdfMode; timing?: Partial<TunnelTiming>; register?: boolean; publicEndpoint?: boolean; bind?: PacketBind } & Partial<TunnelOptions> = {},
  ): Node {
    const identity = opts.identity ?? Identity.generate()
    const bind = opts.bind ?? this.net.bind(host, 4000)
    if (opts.register !== false) this.directory.setKey(id, identity.publicKey)
    if (opts.publicEndpoint !== false) this.directory.setEndpoint(id, bind.local)
    const tunnel = new Tunnel({
      bind,
      identity,
      nodeId: id,
      directory: opts.directory ?? this.directory,
      beacon: this.beacon === null ? null : BEACON,
      kdf: opts.kdf ?? 'auto',
      timing: { ...FAST, ...opts.timing },
      ...(opts.maxRecoveryPerSecond === undefined ? {} : { maxRecoveryPerSecond: opts.maxRecoveryPerSecond }),
    })
    const node: Node = { id, identity, bind, tunnel, received: [], paths: [] }
    tunnel.onPacket((packet, from) => {
      node.received.push({ packet: Buffer.from(packet), from, payload: packet.subarray(34).toString() })
    })
    tunnel.onPathChange((e) => node.paths.push(e))
    tunnel.start()
    this.nodes.push(node)
    return node
  }

  /** Closes every tunnel and the beacon, then fails if a timer or socket is still alive (docs/style.md §1). */
  async close(): Promise<void> {
    for (const n of this.nodes) await n.tunnel.close()
    await this.beacon?.close()
    const left = await leakedHandles()
    if (left.length > 0) throw new Error(`leaked handles after the test: ${left.join(', ')}`)
  }
}

/** A datagram-protocol Pilot packet from node `src` to node `dst`. */
export function packet(src: number, dst: number, payload: string, fields: Partial<PacketHeader> = {}): Buffer {
  const h = PacketHeader.from({ protocol: Protocol.DATAGRAM, srcNode: src, dstNode: dst, srcPort: 1000, dstPort: 1000, ...fields })
  return encodePacket(h, Buffer.from(payload))
}

export async function waitFor(cond: () => boolean, what: string, timeoutMs = 3_000): Promise<void> {
  const start = Date.now()
  while (!cond()) {
    if (Date.now() - start > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await sleep(5)
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms))
}

export function payloads(n: Node, from?: number): string[] {
  return n.received.filter((r) => from === undefined || r.from === from).map((r) => r.payload)
}

/** Sends `text` from a to b until b has received it (the first copies may be queued or lost). */
export async function exchange(a: Node, b: Node, text: string, timeoutMs = 3_000): Promise<void> {
  a.tunnel.send(b.id, packet(a.id, b.id, text))
  await waitFor(() => payloads(b, a.id).includes(text), `${text} at node ${b.id}`, timeoutMs)
}

/**
 * A bind whose underlying socket can be swapped, like a NAT that gives the
 * node a new public port: the tunnel keeps its state, peers see a new source.
 */
export class RebindableBind implements PacketBind {
  private handler: DatagramHandler | null = null
  constructor(private inner: MemoryBind) {
    inner.onDatagram((d, h, p) => this.handler?.(d, h, p))
  }
  get local(): UdpEndpoint {
    return this.inner.local
  }
  get stats() {
    return this.inner.stats
  }
  send(parts: Uint8Array | readonly Uint8Array[], host: string, port: number): void {
    this.inner.send(parts, host, port)
  }
  onDatagram(handler: DatagramHandler): void {
    this.handler = handler
  }
  async rebind(next: MemoryBind): Promise<void> {
    const old = this.inner
    this.inner = next
    next.onDatagram((d, h, p) => this.handler?.(d, h, p))
    await old.close()
  }
  close(): Promise<void> {
    return this.inner.close()
  }
}

/** Records every datagram on the network with its magic/type (for "never sends PILT/PILK" checks). */
export function firstWord(data: Uint8Array): string {
  if (data.length === 0) return ''
  if (data[0]! < 0x10) return `beacon:${data[0]}`
  return Buffer.from(data.subarray(0, 4)).toString('latin1')
}

/** Timers and UDP sockets still alive; closed ones may take a tick to disappear. */
export async function leakedHandles(): Promise<string[]> {
  const watched = (r: string): boolean => r === 'Timeout' || r === 'UDPWrap'
  for (let i = 0; i < 40; i++) {
    if (process.getActiveResourcesInfo().filter(watched).length === 0) return []
    await new Promise((r) => setImmediate(r))
    if (i > 10) await new Promise((r) => setTimeout(r, 5).unref())
  }
  return process.getActiveResourcesInfo().filter(watched)
}

/** A clock that moves only when told to, and a timer that never fires (tests call `tick()`). */
export class ManualScheduler implements TunnelScheduler {
  t = 1_000
  now(): number {
    return this.t
  }
  setInterval(): unknown {
    return null
  }
  clearInterval(): void {}
}

/**
 * A `PeerDirectory` over a `MemoryPeerDirectory` whose key lookups can be held (answered only on
 * `release()`), counting calls and the most lookups in flight at once.
 */
export class HeldDirectory implements PeerDirectory {
  readonly memory = new MemoryPeerDirectory()
  hold = false
  lookups = 0
  resolves = 0
  inFlight = 0
  maxInFlight = 0
  readonly lookedUp: number[] = []
  private readonly waiting: Array<() => void> = []

  lookupKey(nodeId: number): Promise<Uint8Array | null> {
    this.lookups++
    this.lookedUp.push(nodeId)
    this.inFlight++
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight)
    const answer = (): Promise<Uint8Array | null> => {
      this.inFlight--
      return this.memory.lookupKey(nodeId)
    }
    if (!this.hold) return answer()
    return new Promise((resolve) => this.waiting.push(() => resolve(answer())))
  }

  resolveEndpoint(nodeId: number): Promise<UdpEndpoint | null> {
    this.resolves++
    return this.memory.resolveEndpoint(nodeId)
  }

  /** Answers every held lookup. */
  release(): void {
    this.hold = false
    for (const w of this.waiting.splice(0)) w()
  }
}

/** A PILA from `sender` with random keys and signature: it costs a key lookup, never a session. */
export function junkPila(sender: number): Buffer {
  return encodePila({ senderId: sender, x25519Public: randomBytes(32), ed25519Public: randomBytes(32), signature: randomBytes(64) })
}

/** Lets promise callbacks and queued immediates run. */
export function settle(): Promise<void> {
  return new Promise((r) => setImmediate(r))
}
