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
