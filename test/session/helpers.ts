import { SimPair, type SimPairOptions } from '../../src/session/testing/pair.js'
import { OneWay } from '../../src/session/testing/transfer.js'
import { StreamState, type StreamConnection } from '../../src/session/stream.js'

export interface TransferResult {
  sim: SimPair
  client: StreamConnection
  server: StreamConnection
  ab: OneWay
  ba: OneWay
  completed: boolean
  digests: { ab: [string, string]; ba: [string, string] }
}

/** Connect A→B on port 80, move `bytesAB` and `bytesBA`, half-close both, run until both CLOSED. */
export function runTransfer(options: SimPairOptions & { bytesAB: number; bytesBA: number; limit?: number }): TransferResult {
  const sim = new SimPair(options)
  sim.b.listen(80)
  const client = sim.a.connect(sim.now, sim.addressB, 80)
  let ab: OneWay | null = null
  let ba: OneWay | null = null
  let server: StreamConnection | null = null
  const app = (): void => {
    if (server === null && sim.accepted[1].length > 0) {
      server = sim.accepted[1][0]!
      ab = new OneWay(client, server, options.bytesAB, options.seed * 7919)
      ba = new OneWay(server, client, options.bytesBA, options.seed * 104729 + 17)
    }
    if (ab !== null) ab.pump(sim.now)
    if (ba !== null) ba.pump(sim.now)
  }
  const done = (): boolean =>
    ab !== null && ba !== null && ab.done && ba.done && client.state === StreamState.Closed && server!.state === StreamState.Closed
  const completed = sim.run(done, options.limit ?? 600_000, app)
  if (server === null || ab === null || ba === null) throw new Error(`handshake never completed (client ${client.state})`)
  const abw = ab as OneWay
  const baw = ba as OneWay
  return { sim, client, server, ab: abw, ba: baw, completed, digests: { ab: abw.digests(), ba: baw.digests() } }
}

import { PacketHeader, decodePacket, encodePacket, HEADER_SIZE } from '../../src/protocol/header.js'
import type { SessionEndpoint } from '../../src/session/endpoint.js'

export interface Captured {
  h: PacketHeader
  payload: Uint8Array
  bytes: Uint8Array
}

/** Everything the endpoint wants to send now, decoded. */
export function drain(ep: SessionEndpoint, now: number): Captured[] {
  const out: Captured[] = []
  const buf = new Uint8Array(70_000)
  for (;;) {
    const n = ep.pollTransmit(now, buf, 0)
    if (n === 0) return out
    const bytes = buf.slice(0, n)
    const h = decodePacket(bytes, 0, new PacketHeader())
    out.push({ h, payload: bytes.subarray(HEADER_SIZE), bytes })
  }
}

/** Encodes a packet from fields (through the real codec) and hands it to the endpoint. */
export function feed(ep: SessionEndpoint, now: number, fields: Partial<PacketHeader>, payload: Uint8Array = new Uint8Array(0)) {
  const bytes = encodePacket(PacketHeader.from({ version: 1, ...fields }), payload)
  const h = decodePacket(bytes, 0, new PacketHeader())
  return ep.handlePacket(now, h, bytes.subarray(HEADER_SIZE))
}

export function hex(b: Uint8Array): string {
  return Buffer.from(b).toString('hex')
}

/** A packet log for SimPair.trace. */
export interface TraceEntry {
  from: 0 | 1
  at: number
  flags: number
  seq: number
  ack: number
  window: number
  len: number
  sack: boolean
  protocol: number
}
