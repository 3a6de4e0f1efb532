/**
 * Session-layer throughput: two stream connections wired back to back in one
 * process (encode with CRC → decode → handlePacket, no sockets), one bulk
 * transfer A → B. Prints MB/s and CPU seconds per MB for a perfect link and
 * for 1 % random loss (both directions), at several MSS values.
 *
 * Time: `now` is the real elapsed time, except that when nothing can move
 * (waiting for a timer, e.g. an RTO after a loss) the clock jumps to the next
 * deadline instead of sleeping, so MB/s is CPU-bound throughput.
 *
 *   npm run bench:session            (or: npx tsc -p . && node dist/bench/session.bench.js)
 */
import { performance } from 'node:perf_hooks'
import { SessionEndpoint } from '../src/session/endpoint.js'
import { StreamState, type StreamConnection } from '../src/session/stream.js'
import { PacketHeader, decodePacket, HEADER_SIZE } from '../src/protocol/header.js'
import { SeededRandom } from '../src/random.js'

interface Result {
  mss: number
  loss: number
  mb: number
  seconds: number
  cpuSeconds: number
  packets: number
  retransmits: number
}

function run(mss: number, loss: number, totalBytes: number): Result {
  const rng = new SeededRandom(mss ^ Math.round(loss * 1e6))
  const stream = { mss, sendBufferSize: 4 << 20, receiveBufferSize: 4 << 20 }
  const a = new SessionEndpoint({ local: { network: 0, node: 1 }, random: rng, stream })
  const b = new SessionEndpoint({ local: { network: 0, node: 2 }, random: rng, stream })
  b.listen(80)
  const hdr = new PacketHeader()
  const wire = new Uint8Array(HEADER_SIZE + 0xffff)
  const chunk = new Uint8Array(256 * 1024)
  rng.fill(chunk)
  const into = new Uint8Array(256 * 1024)
  const t0 = performance.now()
  let skew = 0 // virtual time added while idle
  const clock = (): number => performance.now() - t0 + skew
  let packets = 0
  let server: StreamConnection | null = null

  const moveAll = (from: SessionEndpoint, to: SessionEndpoint, now: number): number => {
    let moved = 0
    for (;;) {
      const n = from.pollTransmit(now, wire, 0)
      if (n === 0) return moved
      moved++
      packets++
      if (loss > 0 && rng.float() < loss) continue
      decodePacket(wire, 0, hdr)
      const r = to.handlePacket(now, hdr, wire.subarray(HEADER_SIZE, HEADER_SIZE + hdr.payloadLength))
      if (r !== null && (r as { kind?: string }).kind === 'incoming') server = to.accept(now, r as never)
    }
  }

  const client = a.connect(0, { network: 0, node: 2 }, 80)
  let written = 0
  let received = 0
  let finished = false
  const cpu0 = process.cpuUsage()
  const wall0 = performance.now()
  while (received < totalBytes || !client.isClosed) {
    let now = clock()
    let progress = 0
    if (client.state !== StreamState.SynSent) {
      while (written < totalBytes) {
        const n = client.write(now, written + chunk.length <= totalBytes ? chunk : chunk.subarray(0, totalBytes - written))
        if (n === 0) break
        written += n
        progress++
      }
      if (written === totalBytes && !finished) {
        finished = true
        client.finish(now)
      }
    }
    progress += moveAll(a, b, now)
    progress += moveAll(b, a, now)
    const s = server as StreamConnection | null
    if (s !== null) {
      for (;;) {
        const n = s.read(into)
        if (n <= 0) {
          if (n === -1 && s.state === StreamState.CloseWait) s.finish(now)
          break
        }
        received += n
        progress++
      }
    }
    const ta = a.pollTimeout()
    const tb = b.pollTimeout()
    if (ta !== null && ta <= now) a.handleTimeout(now)
    if (tb !== null && tb <= now) b.handleTimeout(now)
    if (progress === 0) {
      const next = Math.min(ta ?? Infinity, tb ?? Infinity)
      if (next === Infinity) break
      if (next > now) skew += next - now
      now = clock()
      if (ta !== null && ta <= now) a.handleTimeout(now)
      if (tb !== null && tb <= now) b.handleTimeout(now)
    }
  }
  const wall = (performance.now() - wall0) / 1000
  const cpu = process.cpuUsage(cpu0)
  if (received !== totalBytes) throw new Error(`transfer incomplete: ${received}/${totalBytes}`)
  return {
    mss,
    loss,
    mb: totalBytes / 1e6,
    seconds: wall,
    cpuSeconds: (cpu.user + cpu.system) / 1e6,
    packets,
    retransmits: client.stats().retransmits,
  }
}

function main(): void {
  const mssValues = [1402, 4096, 16384, 65000]
  const rows: string[] = []
  rows.push('| link | MSS | MB | wall s | MB/s | CPU s/MB | packets | retransmits |')
  rows.push('|------|----:|---:|-------:|-----:|---------:|--------:|------------:|')
  for (const r of rows) console.log(r)
  run(4096, 0, 64 << 20) // warm-up (JIT)
  for (const loss of [0, 0.01]) {
    for (const mss of mssValues) {
      const total = loss === 0 ? (mss < 4096 ? 256 : 1024) << 20 : 128 << 20
      const r = run(mss, loss, total)
      rows.push(
        `| ${loss === 0 ? 'perfect' : '1 % loss'} | ${mss} | ${r.mb.toFixed(0)} | ${r.seconds.toFixed(2)} | ${(r.mb / r.seconds).toFixed(0)} | ${(r.cpuSeconds / r.mb).toFixed(5)} | ${r.packets} | ${r.retransmits} |`,
      )
      console.log(rows[rows.length - 1])
    }
  }
  console.log(`\nnode ${process.version}, ${process.platform}/${process.arch}`)
}

main()
