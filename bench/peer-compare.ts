/**
 * The side-by-side part of `npm run bench` (issue 12): one row per path
 * between the same two namespaces (direct, wireguard-go, Nebula, pilot-tun),
 * ratios against the better of the two peers, and the issue's targets met or
 * missed. Pure: takes the measured figures, returns rows and verdicts.
 */
import type { ParallelResult } from '../src/testbed/blast.js'

export type PathKey = 'direct' | 'wireguard-go' | 'nebula' | 'pilot-tun'
export const PATH_ORDER: readonly PathKey[] = ['direct', 'wireguard-go', 'nebula', 'pilot-tun']
export const PEER_KEYS: readonly PathKey[] = ['wireguard-go', 'nebula']

export interface PingStats {
  sent: number
  received: number
  median_ms: number
  p99_ms: number
  min_ms: number
}

/** What one path measured (null: not measured on this path). */
export interface PathFigures {
  /** What the path is, e.g. "IPv4 198.18.2.2" or "wireguard-go v0.0.20220316, TUN MTU 1420". */
  what: string
  goodput_mb_s: number | null
  goodput_runs_mb_s: number[]
  /** IPv4 datagrams reassembled in both namespaces during this path's single-flow runs (ReasmOKs of /proc/net/snmp). */
  reassembled: number | null
  parallel: ParallelResult | null
  /** One flow of the same size with 1 % random loss on the hub (both directions), byte-exact; null when not measured. */
  loss_1pct_mb_s?: number | null
  rtt: PingStats | null
  /** connect() -> 1 byte -> first byte echoed (a TCP handshake and a data round trip end to end), median of the samples. */
  tcp_echo_ms: number | null
  flows_mb_s: number | null
  flows_completed: number | null
  /** RSS of the path's program at the client and the server end, idle, before the 1,000 flows (bytes). */
  rss_idle: { client: number; server: number } | null
}

export interface Issue12Inputs {
  paths: Partial<Record<PathKey, PathFigures>>
  setup_new_median_ms: number | null
  rss_per_flow_bytes: { a: number | null; b: number | null }
  rss_idle: { a: number; b: number } | null
  rss_after: { a: number; b: number } | null
  /** How many concurrent flows the RSS figures are of (1,000 unless PILOT_BENCH_FLOWS says otherwise). */
  flows?: number
}

export interface Verdict {
  target: string
  measured: string
  met: boolean | null
}

export const ISSUE12 = {
  goodput_over_better_peer: 1.5,
  parallel_fairness_min_over_max: 0.8,
  setup_new_ms: 10,
  rss_per_flow_bytes: 40 * 1024,
  rss_after_over_idle: 1.2,
  loss_1pct_over_lossless: 0.4,
} as const

function finite(x: number | null | undefined): x is number {
  return x !== null && x !== undefined && Number.isFinite(x)
}

/** The better peer for goodput (highest) and for RTT (lowest median), or null when no peer was measured. */
export function betterPeers(paths: Partial<Record<PathKey, PathFigures>>): { goodput: PathKey | null; parallel: PathKey | null; rtt: PathKey | null } {
  const peers = PEER_KEYS.filter((k) => paths[k] !== undefined)
  const best = (score: (f: PathFigures) => number | null | undefined, higher: boolean): PathKey | null => {
    let out: PathKey | null = null
    let v = 0
    for (const k of peers) {
      const s = score(paths[k]!)
      if (!finite(s)) continue
      if (out === null || (higher ? s > v : s < v)) {
        out = k
        v = s
      }
    }
    return out
  }
  return {
    goodput: best((f) => f.goodput_mb_s, true),
    parallel: best((f) => f.parallel?.mb_per_s, true),
    rtt: best((f) => f.rtt?.median_ms, false),
  }
}

function ratio(x: number | null | undefined, y: number | null | undefined): number | null {
  return finite(x) && finite(y) && y !== 0 ? Math.round((x / y) * 1000) / 1000 : null
}

/** Each path's figures over the better peer's (goodput, 8-flow aggregate, RTT median). */
export function ratiosVsBetterPeer(paths: Partial<Record<PathKey, PathFigures>>): Partial<Record<PathKey, { goodput: number | null; parallel: number | null; rtt_median: number | null }>> {
  const b = betterPeers(paths)
  const out: Partial<Record<PathKey, { goodput: number | null; parallel: number | null; rtt_median: number | null }>> = {}
  for (const k of PATH_ORDER) {
    const f = paths[k]
    if (f === undefined) continue
    out[k] = {
      goodput: b.goodput === null ? null : ratio(f.goodput_mb_s, paths[b.goodput]!.goodput_mb_s),
      parallel: b.parallel === null ? null : ratio(f.parallel?.mb_per_s, paths[b.parallel]!.parallel?.mb_per_s),
      rtt_median: b.rtt === null ? null : ratio(f.rtt?.median_ms, paths[b.rtt]!.rtt?.median_ms),
    }
  }
  return out
}

const mbs = (x: number | null | undefined): string => (finite(x) ? `${x.toFixed(1)} MB/s` : '-')
const msf = (x: number | null | undefined): string => (finite(x) ? `${x.toFixed(3)} ms` : '-')
const times = (x: number | null | undefined): string => (finite(x) ? `x${x.toFixed(2)}` : '-')
const mib = (x: number | null | undefined): string => (finite(x) ? `${(x / 1048576).toFixed(1)}` : '-')

/** The printed rows: a header, then one row per measured path. */
export function sideBySideRows(paths: Partial<Record<PathKey, PathFigures>>, mb: number, rounds: number, parallelFlows: number, flows: number): string[][] {
  const r = ratiosVsBetterPeer(paths)
  const rows: string[][] = [[
    'path', `1 flow, ${mb} MB (median of ${rounds})`, 'vs better peer', 'reassembled', '1 flow, 1 % loss', parallelFlows > 0 ? `${parallelFlows} flows aggregate` : 'parallel flows (off)', 'vs better peer', 'slowest/fastest',
    'RTT median', 'RTT p99', 'vs better peer', 'connect+echo', `${flows} x 64 KB echo`, 'RSS idle MiB (a / b)',
  ]]
  for (const k of PATH_ORDER) {
    const f = paths[k]
    if (f === undefined) continue
    const p = f.parallel
    rows.push([
      k,
      mbs(f.goodput_mb_s),
      times(r[k]?.goodput),
      finite(f.reassembled) ? String(f.reassembled) : '-',
      mbs(f.loss_1pct_mb_s),
      p === null ? '-' : `${mbs(p.mb_per_s)}${p.ok ? '' : ' (NOT byte-exact)'}`,
      times(r[k]?.parallel),
      p === null ? '-' : p.min_over_max.toFixed(2),
      msf(f.rtt?.median_ms),
      msf(f.rtt?.p99_ms),
      times(r[k]?.rtt_median),
      msf(f.tcp_echo_ms),
      f.flows_mb_s === null ? '-' : `${mbs(f.flows_mb_s)} (${f.flows_completed}/${flows})`,
      f.rss_idle === null ? '-' : `${mib(f.rss_idle.client)} / ${mib(f.rss_idle.server)}`,
    ])
  }
  return rows
}

/** Issue 12's targets, each with the figure this run measured and whether it is met (null: not measured here). */
export function issue12Verdicts(i: Issue12Inputs): Record<string, Verdict> {
  const b = betterPeers(i.paths)
  const pilot = i.paths['pilot-tun']
  const bg = b.goodput === null ? null : i.paths[b.goodput]!
  const goodputRatio = ratio(pilot?.goodput_mb_s, bg?.goodput_mb_s)
  const peerRtts = PEER_KEYS.map((k) => i.paths[k]?.rtt?.median_ms).filter(finite)
  const rtt = pilot?.rtt?.median_ms
  const par = pilot?.parallel ?? null
  const perFlow = [i.rss_per_flow_bytes.a, i.rss_per_flow_bytes.b]
  const n = (i.flows ?? 1000).toLocaleString('en-US')
  const after = i.rss_after === null || i.rss_idle === null ? null : [i.rss_after.a / i.rss_idle.a, i.rss_after.b / i.rss_idle.b]
  return {
    goodput: {
      target: `single flow >= ${ISSUE12.goodput_over_better_peer} x the better peer, no IP fragmentation`,
      measured: goodputRatio === null
        ? 'no peer measured'
        : `${mbs(pilot?.goodput_mb_s)} = x${goodputRatio} of ${b.goodput} (${mbs(bg?.goodput_mb_s)}); ${pilot?.reassembled ?? '?'} datagrams reassembled`,
      met: goodputRatio === null ? null : goodputRatio >= ISSUE12.goodput_over_better_peer && pilot?.reassembled === 0,
    },
    rtt: {
      target: 'ping RTT median below both peers',
      measured: !finite(rtt) || peerRtts.length === 0 ? 'not measured' : `${msf(rtt)} vs ${PEER_KEYS.filter((k) => finite(i.paths[k]?.rtt?.median_ms)).map((k) => `${k} ${msf(i.paths[k]!.rtt!.median_ms)}`).join(', ')}`,
      met: !finite(rtt) || peerRtts.length < PEER_KEYS.length ? null : peerRtts.every((p) => rtt < p),
    },
    parallel: {
      target: `${par?.flows ?? 8} flows: aggregate >= the single-flow figure, slowest >= ${ISSUE12.parallel_fairness_min_over_max} x fastest, byte-exact`,
      measured: par === null ? 'not measured' : `${mbs(par.mb_per_s)} vs ${mbs(pilot?.goodput_mb_s)} single; slowest/fastest ${par.min_over_max.toFixed(2)}${par.ok ? '' : '; NOT byte-exact'}`,
      met: par === null || !finite(pilot?.goodput_mb_s) ? null : par.ok && par.mb_per_s >= pilot!.goodput_mb_s! && par.min_over_max >= ISSUE12.parallel_fairness_min_over_max,
    },
    setup_new: {
      target: `first byte to a never-contacted trusted peer <= ${ISSUE12.setup_new_ms} ms (median)`,
      measured: msf(i.setup_new_median_ms),
      met: finite(i.setup_new_median_ms) ? i.setup_new_median_ms <= ISSUE12.setup_new_ms : null,
    },
    rss_per_flow: {
      target: `${n} flows: <= ${ISSUE12.rss_per_flow_bytes / 1024} KiB RSS per flow (daemons a and b)`,
      measured: perFlow.every(finite) ? `a ${(perFlow[0]! / 1024).toFixed(1)} KiB, b ${(perFlow[1]! / 1024).toFixed(1)} KiB` : 'not measured',
      met: perFlow.every(finite) ? perFlow.every((x) => x! <= ISSUE12.rss_per_flow_bytes) : null,
    },
    rss_after: {
      target: `RSS after the ${n} flows close <= ${ISSUE12.rss_after_over_idle} x idle`,
      measured: after === null ? 'not measured' : `a x${after[0]!.toFixed(2)}, b x${after[1]!.toFixed(2)} of idle`,
      met: after === null || !after.every(finite) ? null : after.every((x) => x <= ISSUE12.rss_after_over_idle),
    },
    loss_1pct: {
      target: `at 1 % hub loss >= ${ISSUE12.loss_1pct_over_lossless * 100} % of the lossless figure, byte-exact`,
      measured: !finite(pilot?.loss_1pct_mb_s) || !finite(pilot?.goodput_mb_s)
        ? 'not measured (PILOT_BENCH_LOSS=0)'
        : `${mbs(pilot!.loss_1pct_mb_s)} = ${((pilot!.loss_1pct_mb_s! / pilot!.goodput_mb_s!) * 100).toFixed(0)} % of ${mbs(pilot!.goodput_mb_s)}${PEER_KEYS.filter((k) => finite(i.paths[k]?.loss_1pct_mb_s)).map((k) => `; ${k} ${mbs(i.paths[k]!.loss_1pct_mb_s)}`).join('')}`,
      met: !finite(pilot?.loss_1pct_mb_s) || !finite(pilot?.goodput_mb_s) ? null : pilot!.loss_1pct_mb_s! >= ISSUE12.loss_1pct_over_lossless * pilot!.goodput_mb_s!,
    },
  }
}

/** Fixed-width text table; the first row is the header. */
export function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)))
  return rows.map((r, j) => {
    const line = r.map((c, i) => c.padEnd(widths[i]!)).join(' | ')
    return j === 0 ? `${line}\n${widths.map((w) => '-'.repeat(w)).join('-|-')}` : line
  }).join('\n')
}

export function verdictLines(v: Record<string, Verdict>): string {
  return Object.values(v).map((x) => `  ${x.met === null ? '[ -- ]' : x.met ? '[met ]' : '[miss]'} ${x.target}: ${x.measured}`).join('\n')
}
