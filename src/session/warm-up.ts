/**
 * One stream's whole life between two throwaway endpoints, in memory and in
 * virtual time: SYN, SYN-ACK, data both ways, ACKs, FIN both ways, and a ping.
 *
 * Why: a freshly started daemon's first stream otherwise pays for every first
 * call on its critical path (V8 compiles lazily and starts cold inline caches):
 * traced at ~1 ms of CPU per step of a new peer's set-up (bench/README.md).
 * Running the same code once at start moves that cost off the first connection.
 * Pure: no clock, socket or timer; touches nothing but the two endpoints it makes.
 */
import { HEADER_SIZE, PacketHeader, decodePacket } from '../protocol/header.js'
import type { RandomSource } from '../random.js'
import { SessionEndpoint, type IncomingStream } from './endpoint.js'
import type { StreamConnection } from './stream.js'

const PORT = 7
const MESSAGE = new Uint8Array(1400).fill(0x5a)

/** Runs the exchange `rounds` times; returns the bytes that went each way (for tests). */
export function warmUpSessions(random: RandomSource, rounds = 2): number {
  let moved = 0
  for (let r = 0; r < rounds; r++) moved += oneExchange(random)
  return moved
}

function oneExchange(random: RandomSource): number {
  const a = new SessionEndpoint({ local: { network: 0, node: 1 }, random })
  const b = new SessionEndpoint({ local: { network: 0, node: 2 }, random })
  b.listen(PORT)
  const buf = new Uint8Array(65_536)
  const hdr = new PacketHeader()
  const readBuf = new Uint8Array(4096)
  let now = 1000
  let served: StreamConnection | null = null
  let echoed = 0
  let received = 0

  const pump = (): void => {
    // Until neither side has anything to send: every packet is delivered at once.
    for (let guard = 0; guard < 1000; guard++) {
      let sent = false
      for (const [from, to] of [
        [a, b],
        [b, a],
      ] as const) {
        for (;;) {
          const n = from.pollTransmit(now, buf, 0)
          if (n === 0) break
          sent = true
          const h = decodePacket(buf, 0, hdr)
          const got = to.handlePacket(now, h, buf.subarray(HEADER_SIZE, HEADER_SIZE + h.payloadLength))
          if (got !== null && (got as IncomingStream).kind === 'incoming') served = to.accept(now, got as IncomingStream)
        }
        while (from.pollEvent() !== null) {
          /* drained: incoming streams are taken above */
        }
      }
      if (served !== null) {
        for (let n = served.read(readBuf); n > 0; n = served.read(readBuf)) echoed += served.write(now, readBuf.subarray(0, n))
      }
      for (let n = client.read(readBuf); n > 0; n = client.read(readBuf)) received += n
      if (!sent) return
      now += 1
    }
  }

  const client = a.connect(now, b.local, PORT)
  pump()
  client.write(now, MESSAGE)
  pump()
  a.sendPing(now, b.local)
  pump()
  client.finish(now)
  ;(served as StreamConnection | null)?.finish(now)
  pump()
  now += 60_000 // past TIME_WAIT and every timer
  a.handleTimeout(now)
  b.handleTimeout(now)
  pump()
  a.close(now)
  b.close(now)
  return echoed + received
}
