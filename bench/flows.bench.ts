/**
 * One flow versus N parallel flows through pilot0, with the counters that say
 * why they differ (root). A small bed of a and b (src/testbed/), daemons with
 * `--metrics-listen`, the same `blast.js blast` / `blast.js parallel` as
 * `npm run bench`; around every run the deltas of:
 *
 *   - the kernel's UDP counters in a and b (`/proc/net/snmp` Udp: InErrors,
 *     RcvbufErrors, SndbufErrors): datagrams the tunnel sockets lost;
 *   - the daemons' metrics: frames in/out, tunnel drops by reason, stream
 *     retransmissions.
 *
 *   npx tsc -p . && node dist/bench/flows.bench.js
 *
 * Knobs (env): PILOT_FLOWS_MB (64), PILOT_FLOWS_N (8), PILOT_FLOWS_ROUNDS (2),
 * PILOT_FLOWS_UP_ARGS (extra `up` flags), PILOT_FLOWS_PROFILE (`1`: only the
 * N flows, once, with daemons a and b under `--cpu-prof`; prints their top
 * self-time functions). Prints figures; never a timed test.
 */
import { Topology, testbedUnavailable } from '../src/testbed/topology.js'
import { Overlay } from '../src/testbed/overlay.js'
import type { BlastResult, ParallelResult } from '../src/testbed/blast.js'
import { mkdirSync, readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { repoRoot } from '../src/testbed/pilot-bed.js'
import { formatTop, topSelfTime } from './cpuprofile-top.js'

const MB = Number(process.env.PILOT_FLOWS_MB ?? 64)
const N = Number(process.env.PILOT_FLOWS_N ?? 8)
const ROUNDS = Number(process.env.PILOT_FLOWS_ROUNDS ?? 2)
const UP_ARGS = (process.env.PILOT_FLOWS_UP_ARGS ?? '').split(/\s+/).filter((s) => s !== '')
const METRICS = '127.0.0.1:9464'
const PROFILE = process.env.PILOT_FLOWS_PROFILE === '1'
const PROFILE_DIR = join(repoRoot, 'bench', 'profiles')

type Counters = Record<string, number>

function log(s: string): void {
  process.stderr.write(`[flows] ${s}\n`)
}

async function udpCounters(ov: Overlay, node: string): Promise<Counters> {
  const r = await ov.topo.exec(node, ['cat', '/proc/net/snmp'])
  const lines = r.stdout.split('\n').filter((l) => l.startsWith('Udp:'))
  const names = lines[0]?.split(/\s+/) ?? []
  const values = lines[1]?.split(/\s+/) ?? []
  const out: Counters = {}
  for (const k of ['InDatagrams', 'OutDatagrams', 'InErrors', 'RcvbufErrors', 'SndbufErrors']) out[`udp.${k}`] = Number(values[names.indexOf(k)])
  return out
}

async function metrics(ov: Overlay, node: string): Promise<Counters> {
  const r = await ov.topo.exec(node, ['curl', '-s', `http://${METRICS}/metrics`], { allowFailure: true })
  const out: Counters = {}
  for (const line of r.stdout.split('\n')) {
    const m = /^(pilot_tun_(?:frames_in|frames_out|drops|retransmits)_total)(\{[^}]*\})? ([\d.e+]+)$/.exec(line)
    if (m === null) continue
    const v = Number(m[3])
    if (m[1] === 'pilot_tun_drops_total' && v === 0) continue
    const key = `${m[1]!.replace('pilot_tun_', '').replace('_total', '')}${m[2] ?? ''}`
    out[key] = (out[key] ?? 0) + v
  }
  return out
}

async function snapshot(ov: Overlay): Promise<Counters> {
  const out: Counters = {}
  for (const n of ['a', 'b']) {
    for (const [k, v] of Object.entries({ ...(await udpCounters(ov, n)), ...(await metrics(ov, n)) })) out[`${n}.${k}`] = v
  }
  return out
}

function delta(before: Counters, after: Counters): string {
  const parts: string[] = []
  for (const k of Object.keys(after).sort()) {
    const d = after[k]! - (before[k] ?? 0)
    if (d !== 0) parts.push(`${k}=${d}`)
  }
  return parts.join(' ')
}

async function main(): Promise<void> {
  const why = await testbedUnavailable()
  if (why !== null) throw new Error(`cannot run: ${why}`)
  const topo = await Topology.create({ nodes: ['a', 'b'].map((name) => ({ name, kind: 'public' as const })) })
  const ov = new Overlay(topo)
  try {
    await ov.startRendezvous()
    const stamp = Date.now()
    const nodeArgs = (n: string): string[] => (PROFILE ? ['--cpu-prof', '--cpu-prof-dir', PROFILE_DIR, '--cpu-prof-name', `flows-${n}-${stamp}.cpuprofile`] : [])
    if (PROFILE) mkdirSync(PROFILE_DIR, { recursive: true })
    await Promise.all(['a', 'b'].map((n) => ov.up(n, { extraArgs: ['--metrics-listen', METRICS, ...UP_ARGS], nodeArgs: nodeArgs(n) })))
    await ov.trust('a', 'b')
    await ov.serveTraffic('b')
    const host = ov.info.get('b')!.ipv6
    const bytes = MB * 1024 * 1024
    if (PROFILE) {
      const p = await ov.traffic<ParallelResult>('a', ['parallel', '--host', host, '--port', '7001', '--flows', String(N), '--bytes', String(Math.floor(bytes / N)), '--seed', '5', '--timeout', '300000'], 330_000)
      log(`profiled: ${N} flows ${p.mb_per_s.toFixed(1)} MB/s aggregate`)
      await Promise.all(['a', 'b'].map((n) => ov.down(n)))
      for (const n of ['a', 'b']) {
        const f = readdirSync(PROFILE_DIR).find((x) => x === `flows-${n}-${stamp}.cpuprofile`)
        if (f !== undefined) process.stdout.write(`\n${formatTop(`daemon ${n} (${f})`, topSelfTime(JSON.parse(readFileSync(join(PROFILE_DIR, f), 'utf8')), 25))}\n`)
      }
      return
    }
    for (let round = 0; round < ROUNDS; round++) {
      let before = await snapshot(ov)
      const s = await ov.traffic<BlastResult>('a', ['blast', '--host', host, '--port', '7001', '--bytes', String(bytes), '--seed', String(10 + round), '--timeout', '300000'], 320_000)
      if (!s.ok) throw new Error('single flow not byte-exact')
      log(`round ${round + 1}: 1 flow ${s.mb_per_s.toFixed(1)} MB/s`)
      log(`  counters: ${delta(before, await snapshot(ov))}`)
      before = await snapshot(ov)
      const p = await ov.traffic<ParallelResult>('a', ['parallel', '--host', host, '--port', '7001', '--flows', String(N), '--bytes', String(Math.floor(bytes / N)), '--seed', String(20 + round), '--timeout', '300000'], 330_000)
      if (!p.ok) throw new Error(`${N} flows not byte-exact: ${p.errors.join('; ')}`)
      log(`round ${round + 1}: ${N} flows ${p.mb_per_s.toFixed(1)} MB/s aggregate, slowest/fastest ${p.min_over_max.toFixed(2)} (${p.per_flow_mb_s.map((x) => x.toFixed(1)).join(' ')})`)
      log(`  counters: ${delta(before, await snapshot(ov))}`)
    }
  } finally {
    await ov.close()
    await topo.destroy()
  }
}

await main()
