/**
 * Session-layer loss recovery in virtual time: one bulk transfer A → B through
 * the deterministic simulator (src/session/testing/pair.ts) with random loss in
 * both directions, on a LAN-like path (0.2 ms RTT) and a WAN-like path (20 ms
 * RTT). Prints goodput (bytes read / virtual seconds from connect to the last
 * byte) and how the sender repaired its losses: RTO events versus recovery
 * episodes and retransmissions found by SACK/RACK, and tail loss probes.
 *
 * Both links have a rate and a drop-tail queue, so "0 %" still loses packets
 * when slow start overshoots the queue; "% of link" compares with the rate.
 *
 * Figures are means over SEEDS seeds. Unlike bench/session.bench.ts this is not
 * a CPU benchmark: the clock is the simulator's, so the figures are exact and
 * repeatable (same code, same figures).
 *
 *   npx tsc -p . && node dist/bench/session-loss.bench.js
 *   PT_BENCH_SEEDS=5 node dist/bench/session-loss.bench.js
 */
import { SimPair, type LinkConfig } from '../src/session/testing/pair.js'
import { OneWay } from '../src/session/testing/transfer.js'
import { StreamState, type StreamConfig, type StreamStats } from '../src/session/stream.js'

const SEEDS = Number(process.env.PT_BENCH_SEEDS ?? 3)

interface PathSpec {
  name: string
  link: Partial<LinkConfig>
  bytes: number
  limit: number
}

const PATHS: PathSpec[] = [
  // ≈ the namespace test bed: sub-millisecond RTT, a daemon moving ~25 MB/s.
  { name: 'LAN 0.2 ms', link: { delay: 0.1, bandwidth: 25_000, queueLimit: 256 * 1024 }, bytes: 16 << 20, limit: 3_600_000 },
  // A WAN path: 20 ms RTT, 100 Mbit/s.
  { name: 'WAN 20 ms', link: { delay: 10, bandwidth: 12_500, queueLimit: 512 * 1024 }, bytes: 8 << 20, limit: 3_600_000 },
]
const LOSSES = [0, 0.01, 0.05]

interface Row {
  goodput: number // MB/s
  seconds: number
  rto: number
  episodes: number
  retransmits: number
  probes: number
  spurious: number
  packets: number
}

type Stats = StreamStats & Partial<Record<'probes' | 'spuriousRetransmits', number>>

function runOnce(path: PathSpec, loss: number, seed: number, stream: Partial<StreamConfig>): Row {
  const link = { ...path.link, loss }
  const sim = new SimPair({ seed, ab: link, ba: link, stream })
  sim.b.listen(80)
  const c = sim.a.connect(sim.now, sim.addressB, 80)
  let f: OneWay | null = null
  let doneAt = -1
  const t0 = sim.now
  const ok = sim.run(
    () => f !== null && f.done && c.isClosed,
    path.limit,
    () => {
      if (f === null && sim.accepted[1].length > 0) f = new OneWay(c, sim.accepted[1][0]!, path.bytes, seed)
      if (f === null) return
      f.pump(sim.now)
      if (doneAt < 0 && f.readBytes === path.bytes) doneAt = sim.now
      if (f.done && sim.accepted[1][0]!.state === StreamState.CloseWait) sim.accepted[1][0]!.finish(sim.now)
    },
  )
  const flow = f as OneWay | null
  if (!ok || flow === null || doneAt < 0) throw new Error(`${path.name} loss ${loss} seed ${seed}: incomplete (${flow?.readBytes ?? 0} bytes)`)
  const [w, r] = flow.digests()
  if (w !== r) throw new Error(`${path.name} loss ${loss} seed ${seed}: bytes differ`)
  const st = c.stats() as Stats
  const seconds = (doneAt - t0) / 1000
  return {
    goodput: path.bytes / 1e6 / seconds,
    seconds,
    rto: st.rtoTimeouts,
    episodes: st.fastRetransmits,
    retransmits: st.retransmits,
    probes: st.probes ?? Number.NaN,
    spurious: st.spuriousRetransmits ?? Number.NaN,
    packets: sim.packetsSent[0] + sim.packetsSent[1],
  }
}

function mean(rows: Row[], k: keyof Row): number {
  return rows.reduce((s, r) => s + r[k], 0) / rows.length
}

function fmt(x: number, digits = 0): string {
  return Number.isNaN(x) ? '–' : x.toFixed(digits)
}

function main(): void {
  const stream: Partial<StreamConfig> = {}
  if (process.env.PT_BENCH_MIN_RTO !== undefined) stream.minRto = Number(process.env.PT_BENCH_MIN_RTO)
  console.log(`seeds ${SEEDS}, MSS default, stream overrides ${JSON.stringify(stream)}; means per run`)
  console.log('| path | loss | MB | goodput MB/s | % of link | virtual s | RTOs | recovery episodes | retransmits | tail probes | spurious (est.) | packets |')
  console.log('|------|-----:|---:|-------------:|--------------:|----------:|-----:|------------------:|------------:|------------:|----------------:|--------:|')
  for (const path of PATHS) {
    const linkRate = path.link.bandwidth! / 1000 // MB/s
    for (const loss of LOSSES) {
      const rows: Row[] = []
      for (let s = 1; s <= SEEDS; s++) rows.push(runOnce(path, loss, s, stream))
      const g = mean(rows, 'goodput')
      console.log(
        `| ${path.name} | ${loss * 100} % | ${(path.bytes / 1e6).toFixed(1)} | ${g.toFixed(2)} | ${((100 * g) / linkRate).toFixed(0)} % | ${mean(rows, 'seconds').toFixed(2)} | ${fmt(mean(rows, 'rto'), 1)} | ${fmt(mean(rows, 'episodes'), 1)} | ${fmt(mean(rows, 'retransmits'))} | ${fmt(mean(rows, 'probes'), 1)} | ${fmt(mean(rows, 'spurious'), 1)} | ${fmt(mean(rows, 'packets'))} |`,
      )
    }
  }
}

main()
