/**
 * RTT alone on the namespace bed (the RTT rows of netns.bench.ts, without the
 * goodput, set-up and 1,000-flow stages): nodes a and b (public, one hub),
 * pilot-tun up in each, a trusts b, then `ping -c PINGS -i 0.01` direct and
 * `ping -6` to b's mapped address, after 3 warm-up pings. Needs root. Prints
 * figures; never a test.
 *
 *   npx tsc -p . && node dist/bench/rtt.bench.js
 *
 * Knobs (env): PILOT_RTT_PINGS (200), PILOT_RTT_ROUNDS (1: direct + overlay
 * pairs, alternating), PILOT_BENCH_UP_ARGS (extra `up` flags),
 * PILOT_RTT_NODE_ARGS (node flags for both daemons, e.g. "--cpu-prof"),
 * PILOT_RTT_GOODPUT_MB (0: after the pings, that many MB a → b over the
 * overlay, one flow, byte-exact, to see that latency changes cost no goodput; with each
 * daemon's CPU time per MB, a per-byte cost that holds up on a loaded machine),
 * PILOT_RTT_TRACE=1 (both daemons under bench/trace-hooks.js: prints where a
 * ping's time goes, the median of each leg over all overlay pings).
 */
import { existsSync, readFileSync, rmSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { Topology, testbedUnavailable } from '../src/testbed/topology.js'
import { Overlay } from '../src/testbed/overlay.js'
import { percentile, type BlastResult } from '../src/testbed/blast.js'

const PINGS = Number(process.env.PILOT_RTT_PINGS ?? 200)
const ROUNDS = Number(process.env.PILOT_RTT_ROUNDS ?? 1)
const UP_ARGS = (process.env.PILOT_BENCH_UP_ARGS ?? '').split(/\s+/).filter((s) => s !== '')
const TRACE = process.env.PILOT_RTT_TRACE === '1'
const GOODPUT_MB = Number(process.env.PILOT_RTT_GOODPUT_MB ?? 0)
const NODE_ARGS = [
  ...(process.env.PILOT_RTT_NODE_ARGS ?? '').split(/\s+/).filter((s) => s !== ''),
  ...(TRACE ? ['--import', fileURLToPath(new URL('./trace-hooks.js', import.meta.url))] : []),
]

type Trace = [string, number][]

/** User + system CPU time of a process so far (ms), from /proc/<pid>/stat (clock ticks of 10 ms). */
function cpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return (Number(f[11]) + Number(f[12])) * 10 // fields 14 and 15 (utime, stime), counted after the comm
}

/** The first event `what` at or after `t` (ms), by binary search from the start. */
function after(tr: Trace, what: string, t: number): number | null {
  let lo = 0
  let hi = tr.length
  while (lo < hi) {
    const m = (lo + hi) >> 1
    if (tr[m]![1] < t) lo = m + 1
    else hi = m
  }
  for (let i = lo; i < tr.length && tr[i]![1] - t < 50; i++) if (tr[i]![0] === what) return tr[i]![1]
  return null
}

/** Per ping (sent at S, answered at E, from `ping -D`): the legs through a's and b's daemons. */
function legs(pings: { sent: number; done: number }[], a: Trace, b: Trace): string {
  const names = ['kernel+reader → a JS (tun-batch)', 'a: tun-batch → udp-send', 'wire a → b JS (udp-recv)', 'b: udp-recv → udp-send (pong)', 'wire b → a JS (udp-recv)', 'a: udp-recv → tun-write', 'tun-write → ping sees reply']
  const cols: number[][] = names.map(() => [])
  for (const p of pings) {
    const t1 = after(a, 'tun-batch', p.sent)
    const t2 = t1 === null ? null : after(a, 'udp-send', t1)
    const t3 = t2 === null ? null : after(b, 'udp-recv', t2)
    const t4 = t3 === null ? null : after(b, 'udp-send', t3)
    const t5 = t4 === null ? null : after(a, 'udp-recv', t4)
    const t6 = t5 === null ? null : after(a, 'tun-write', t5)
    if (t6 === null || t6 > p.done) continue
    const ts = [p.sent, t1!, t2!, t3!, t4!, t5!, t6, p.done]
    for (let i = 0; i < names.length; i++) cols[i]!.push(ts[i + 1]! - ts[i]!)
  }
  // Three whole timelines, both daemons' events merged, relative to the echo request.
  const shown: string[] = []
  for (const k of [Math.floor(pings.length / 2), Math.floor((pings.length * 3) / 4), pings.length - 2]) {
    const p = pings[k]
    if (p === undefined) continue
    const evs = [...a.filter((e) => e[1] >= p.sent && e[1] <= p.done).map((e) => ['a ' + e[0], e[1]] as const), ...b.filter((e) => e[1] >= p.sent && e[1] <= p.done).map((e) => ['b ' + e[0], e[1]] as const)]
    evs.sort((x, y) => x[1] - y[1])
    shown.push(`  ping ${k} (RTT ${((p.done - p.sent) * 1000).toFixed(0)} µs): ` + evs.map((e) => `${e[0]} +${((e[1] - p.sent) * 1000).toFixed(0)}`).join(', '))
  }
  const med = (xs: number[]): number => xs.slice().sort((x, y) => x - y)[xs.length >> 1] ?? NaN
  return shown.join('\n') + '\n' + names.map((n, i) => `  ${n.padEnd(36)} median ${(med(cols[i]!) * 1000).toFixed(0).padStart(5)} µs  (${cols[i]!.length} pings)`).join('\n')
}

const overlayPings: { sent: number; done: number }[] = []

async function ping(ov: Overlay, target: string, v6: boolean): Promise<string> {
  const v = v6 ? ['-6'] : []
  await ov.topo.exec('a', ['ping', ...v, '-n', '-c', '3', '-i', '0.1', '-W', '2', target], { allowFailure: true }) // warm-up
  const r = await ov.topo.exec('a', ['ping', ...v, '-D', '-n', '-c', String(PINGS), '-i', '0.01', '-W', '1', target], { allowFailure: true, timeoutMs: 120_000 })
  if (v6) {
    for (const m of r.stdout.matchAll(/^\[([\d.]+)\].*time=([\d.]+) ms/gm)) {
      const done = Number(m[1]) * 1000
      overlayPings.push({ sent: done - Number(m[2]), done })
    }
  }
  const t = [...r.stdout.matchAll(/time=([\d.]+) ms/g)].map((m) => Number(m[1])).sort((x, y) => x - y)
  const f = (x: number | undefined): string => (x === undefined || !Number.isFinite(x) ? '-' : x.toFixed(3))
  return `${t.length}/${PINGS} replies, min ${f(t[0])} median ${f(percentile(t, 0.5))} p90 ${f(percentile(t, 0.9))} p99 ${f(percentile(t, 0.99))} ms`
}

async function main(): Promise<void> {
  const why = await testbedUnavailable()
  if (why !== null) {
    process.stderr.write(`cannot run: ${why}\n`)
    process.exit(1)
  }
  const topo = await Topology.create({ nodes: [{ name: 'a', kind: 'public' }, { name: 'b', kind: 'public' }] })
  const ov = new Overlay(topo)
  const pids: number[] = []
  try {
    await ov.startRendezvous()
    await Promise.all(['a', 'b'].map((n) => ov.up(n, { extraArgs: UP_ARGS, nodeArgs: NODE_ARGS })))
    await ov.trust('a', 'b')
    pids.push(ov.daemonPid('a'), ov.daemonPid('b'))
    const b6 = ov.info.get('b')!.ipv6
    const b4 = topo.address('b')
    for (let i = 0; i < ROUNDS; i++) {
      console.log(`direct  ${b4}: ${await ping(ov, b4, false)}`)
      console.log(`overlay ${b6}: ${await ping(ov, b6, true)}`)
    }
    if (GOODPUT_MB > 0) {
      await ov.serveTraffic('b')
      for (let i = 0; i < Math.max(1, ROUNDS); i++) {
        const cpu0 = pids.map(cpuMs)
        const r = await ov.traffic<BlastResult>('a', ['blast', '--host', b6, '--port', '7001', '--bytes', String(GOODPUT_MB * 1024 * 1024), '--seed', String(7 + i), '--timeout', '300000'], 320_000)
        // CPU time of each daemon per MB moved: what a change costs per byte, much steadier on a loaded machine than MB/s.
        const perMb = pids.map((p, k) => ((cpuMs(p) - cpu0[k]!) / GOODPUT_MB).toFixed(1))
        console.log(`overlay goodput ${GOODPUT_MB} MB: ${r.ok ? `${r.mb_per_s.toFixed(1)} MB/s` : `FAILED ${JSON.stringify(r)}`}; daemon CPU ms per MB a ${perMb[0]} / b ${perMb[1]}`)
      }
    }
  } finally {
    await ov.close()
    await topo.destroy()
  }
  if (TRACE) {
    const files = pids.map((pid) => `/tmp/trace-${pid}.json`)
    if (!files.every((f) => existsSync(f))) {
      console.log(`no traces (${files.join(', ')})`)
      return
    }
    const [ta, tb] = files.map((f) => JSON.parse(readFileSync(f, 'utf8')) as Trace)
    for (const f of files) rmSync(f)
    console.log(`where an overlay ping's time goes (medians per leg; they need not add up to the RTT median):\n${legs(overlayPings, ta!, tb!)}`)
  }
}

await main()
