/**
 * pilot-tun end to end, overlay versus the direct path, side by side in one
 * run on one topology (so the ratios hold on a noisy machine). Needs root.
 *
 *   rendezvous 198.18.0.2   a 198.18.1.2   b 198.18.2.2   c, d, e 198.18.3-5.2   (all public)
 *        │                     │              │              │
 *   ┌────┴─────────────────────┴──────────────┴──────────────┴────┐
 *   │ hub "internet" 198.18.0.0/15 (no loss)                      │
 *   └─────────────────────────────────────────────────────────────┘
 *   each node: pilot-tun up (pilot0, fd50:494c:4f54::<node>), --auto-accept;
 *   a trusts b, c, d, e. Traffic servers (src/testbed/blast.ts) on b..e.
 *
 *   direct  = a -> 198.18.2.2 (IPv4 through the hub, kernel TCP end to end)
 *   overlay = a -> [b's mapped IPv6] (a's kernel -> pilot0 -> daemon a -> PILS/UDP
 *             through the hub -> daemon b -> pilot0 -> b's kernel)
 *
 * Figures: single-flow goodput (256 MB, byte-exact), RTT (ping -6 over the
 * overlay vs ping on the direct path, 200 at 10 ms), connection set-up
 * (connect() -> first byte back, to a trusted peer whose tunnel does not
 * exist yet: every daemon restarted with its state; then with the tunnel
 * up), 1,000 concurrent echo flows of 64 KB (aggregate goodput, daemon RSS
 * per flow; connects paced PILOT_BENCH_CONNECT_WINDOW = 32 at a time, all 1,000
 * open together at the end). Prints a table and writes bench/results.json.
 *
 *   npm run bench                                  (or: npx tsc -p . && node dist/bench/netns.bench.js)
 *   PILOT_BENCH_PROFILE=1 node dist/bench/netns.bench.js
 *       only the overlay goodput, with daemons a and b under
 *       `node --cpu-prof --cpu-prof-dir bench/profiles`; prints their top
 *       self-time functions (bench/cpuprofile-top.ts).
 *
 * Side by side (issue 12): wireguard-go and Nebula tunnels between the same
 * namespaces a and b (src/testbed/peers/), measured in the same run with the
 * same tools: single-flow goodput (alternating with the other paths each
 * round), 8 parallel flows, RTT, 1,000 flows. A second table has one row per
 * path (direct, wireguard-go, nebula, pilot-tun) and the ratios against the
 * better peer; then issue 12's targets, met or missed.
 *
 * Knobs (env): PILOT_BENCH_MB (256), PILOT_BENCH_ROUNDS (2 goodput rounds per
 * path), PILOT_BENCH_FLOWS (1000), PILOT_BENCH_UP_ARGS (extra `up` flags,
 * e.g. "--mtu 65000"), PILOT_BENCH_PEERS (all; 0 = none, or
 * "wireguard-go,nebula"), PILOT_BENCH_PARALLEL (8 flows; 0 = skip),
 * PILOT_BENCH_SKIP (comma list: `flows` = the 1,000 flows, `setup` = the set-up figures;
 * PILOT_BENCH_SETUP=0 = `setup`),
 * PILOT_BENCH_LOSS=0 (skip the 1 % loss flows),
 * PILOT_BENCH_SETUP_ONLY=1 (only the two set-up rows, measured as in a full run;
 * prints them, writes no results.json), PILOT_BENCH_SETUP_RESTARTS (2),
 * PILOT_BENCH_NODE_ARGS (extra Node flags for the daemons, e.g. the set-up trace:
 * "--import <repo>/dist/bench/setup-trace-hooks.js", traces in $PILOT_TRACE_DIR).
 */
import { execFileSync } from 'node:child_process'
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { cpus, loadavg, release, totalmem } from 'node:os'
import { join } from 'node:path'
import { Topology, testbedUnavailable, type TopologySpec } from '../src/testbed/topology.js'
import { Overlay, rssBytes, sampleRss } from '../src/testbed/overlay.js'
import { TunNotReady, repoRoot, type DaemonInfo } from '../src/testbed/pilot-bed.js'
import { percentile, type BlastResult, type EchoResult, type ParallelResult } from '../src/testbed/blast.js'
import { parsePeersKnob, startPeer, type PeerTunnel } from '../src/testbed/peers/index.js'
import { formatTop, topSelfTime } from './cpuprofile-top.js'
import { issue12Verdicts, ratiosVsBetterPeer, betterPeers, sideBySideRows, table, verdictLines, type PathFigures, type PathKey, type PingStats } from './peer-compare.js'

const MB = Number(process.env.PILOT_BENCH_MB ?? 256)
const ROUNDS = Number(process.env.PILOT_BENCH_ROUNDS ?? 2)
const FLOWS = Number(process.env.PILOT_BENCH_FLOWS ?? 1000)
const FLOW_BYTES = 64 * 1024
/** Connects in progress at once for the 1,000 flows (all stay open together): b refuses a 65th pending incoming stream. */
const CONNECT_WINDOW = Number(process.env.PILOT_BENCH_CONNECT_WINDOW ?? 32)
const PINGS = 200
const PROFILE = process.env.PILOT_BENCH_PROFILE === '1'
const UP_ARGS = (process.env.PILOT_BENCH_UP_ARGS ?? '').split(/\s+/).filter((s) => s !== '')
/** Extra Node flags for every daemon (e.g. `--import .../setup-trace-hooks.js`). */
const NODE_ARGS = (process.env.PILOT_BENCH_NODE_ARGS ?? '').split(/\s+/).filter((s) => s !== '')
const PROFILE_DIR = join(repoRoot, 'bench', 'profiles')
const SETUP_PEERS = ['c', 'd', 'e', 'b']
const SETUP_RESTARTS = Number(process.env.PILOT_BENCH_SETUP_RESTARTS ?? 2)
const SETUP_ONLY = process.env.PILOT_BENCH_SETUP_ONLY === '1'
const SETUP_WARM = 20
const PEERS = parsePeersKnob(process.env.PILOT_BENCH_PEERS)
const PARALLEL = Number(process.env.PILOT_BENCH_PARALLEL ?? 8)
/** 1 (default): one more flow per path with 1 % random loss on the hub; 0 skips it. */
const LOSS = process.env.PILOT_BENCH_LOSS !== '0'
/** Figures left out (comma list of `flows`, `setup`): shorter runs while working on another figure. */
const SKIP = new Set((process.env.PILOT_BENCH_SKIP ?? '').split(',').map((s) => s.trim()).filter((s) => s !== ''))
/** PILOT_BENCH_SETUP=0 skips the set-up figures (the daemon restarts at the end), as PILOT_BENCH_SKIP=setup does. */
const SETUP = process.env.PILOT_BENCH_SETUP !== '0' && !SKIP.has('setup')

const SPEC: TopologySpec = {
  nodes: ['a', 'b', 'c', 'd', 'e'].map((name) => ({ name, kind: 'public' as const })),
}

const TARGETS = { goodput_mb_s: 50, rtt_overhead_ms: 0.3, setup_new_ms: 20 }

function log(s: string): void {
  process.stderr.write(`[bench] ${s}\n`)
}

function median(xs: readonly number[]): number {
  const s = xs.slice().sort((a, b) => a - b)
  if (s.length === 0) return NaN
  const m = s.length >> 1
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2
}

function r3(x: number | null): number | null {
  return x === null || !Number.isFinite(x) ? null : Math.round(x * 1000) / 1000
}

async function ping(ov: Overlay, from: string, target: string, v6: boolean): Promise<PingStats> {
  const args = ['ping', ...(v6 ? ['-6'] : []), '-n', '-c', String(PINGS), '-i', '0.01', '-W', '1', target]
  await ov.topo.exec(from, ['ping', ...(v6 ? ['-6'] : []), '-n', '-c', '3', '-i', '0.1', '-W', '2', target], { allowFailure: true }) // warm-up
  const r = await ov.topo.exec(from, args, { allowFailure: true, timeoutMs: 60_000 })
  const times = [...r.stdout.matchAll(/time=([\d.]+) ms/g)].map((m) => Number(m[1])).sort((a, b) => a - b)
  return { sent: PINGS, received: times.length, median_ms: percentile(times, 0.5), p99_ms: percentile(times, 0.99), min_ms: times[0] ?? NaN }
}

/** `flows` parallel blasts whose bytes add up to the single-flow figure's, all byte-exact. */
async function parallelGoodput(ov: Overlay, host: string, seed: number): Promise<ParallelResult> {
  const perFlow = Math.floor((MB * 1024 * 1024) / PARALLEL)
  const r = await ov.traffic<ParallelResult>('a', ['parallel', '--host', host, '--port', '7001', '--flows', String(PARALLEL), '--bytes', String(perFlow), '--seed', String(seed), '--timeout', '300000'], 330_000)
  if (!r.ok) throw new Error(`${PARALLEL} parallel flows to ${host} not byte-exact: ${r.errors.join('; ')}`)
  return r
}

/** IPv4 datagrams reassembled so far in `node`'s namespace (ReasmOKs of /proc/net/snmp): fragments on the wire. */
async function reassembled(ov: Overlay, node: string): Promise<number> {
  const r = await ov.topo.exec(node, ['cat', '/proc/net/snmp'])
  const ip = r.stdout.split('\n').filter((l) => l.startsWith('Ip:'))
  const names = ip[0]?.split(/\s+/) ?? []
  const values = ip[1]?.split(/\s+/) ?? []
  const i = names.indexOf('ReasmOKs')
  return i < 0 ? NaN : Number(values[i])
}

async function reassembledAB(ov: Overlay): Promise<number> {
  return (await reassembled(ov, 'a')) + (await reassembled(ov, 'b'))
}

async function goodput(ov: Overlay, host: string, seed: number): Promise<BlastResult> {
  const bytes = MB * 1024 * 1024
  const r = await ov.traffic<BlastResult>('a', ['blast', '--host', host, '--port', '7001', '--bytes', String(bytes), '--seed', String(seed), '--timeout', '300000'], 320_000)
  if (!r.ok) throw new Error(`goodput to ${host} not byte-exact: ${JSON.stringify(r)}`)
  return r
}

interface FlowsResult {
  echo: EchoResult
  rss_before: Record<string, number>
  rss_all_open: Record<string, number>
  rss_peak: Record<string, number>
  rss_after: Record<string, number>
}

/** `pids`: the processes whose RSS is read (name -> PID: the daemons, or a peer's programs at a and b). */
async function flows(ov: Overlay, host: string, pids: Record<string, number>): Promise<FlowsResult> {
  const daemons = Object.keys(pids)
  const rss = (): Record<string, number> => Object.fromEntries(daemons.map((n) => [n, rssBytes(pids[n]!) ?? NaN]))
  const before = rss()
  const samplers = daemons.map((n) => [n, sampleRss(pids[n]!)] as const)
  let allOpen: Record<string, number> = {}
  const echo = await ov.traffic<EchoResult>(
    'a',
    ['echo', '--host', host, '--port', '7002', '--count', String(FLOWS), '--size', String(FLOW_BYTES), '--timeout', '120000', '--hold', '1500', '--connect-window', String(CONNECT_WINDOW)],
    150_000,
    (line) => {
      if ((line as { all_open?: boolean }).all_open === true) allOpen = rss()
    },
  )
  const peak = Object.fromEntries(samplers.map(([n, s]) => [n, s.stop()]))
  await new Promise((r) => setTimeout(r, 1000))
  return { echo, rss_before: before, rss_all_open: allOpen, rss_peak: peak, rss_after: rss() }
}

async function setupTimes(ov: Overlay): Promise<{ new_ms: number[]; existing_ms: number[]; errors: string[] }> {
  const newMs: number[] = []
  const errors: string[] = []
  for (let round = 0; round < SETUP_RESTARTS; round++) {
    // Every daemon restarts with its identity and trust: no peer has a tunnel to any other.
    await Promise.all(['a', ...SETUP_PEERS].map((n) => ov.down(n)))
    await Promise.all(['a', ...SETUP_PEERS].map((n) => ov.up(n, { keepState: true, extraArgs: UP_ARGS, nodeArgs: NODE_ARGS })))
    await new Promise((r) => setTimeout(r, 1500)) // registry heartbeats settle
    for (const peer of SETUP_PEERS) {
      const r = await ov.traffic<{ samples_ms: number[]; errors: string[] }>('a', ['first-byte', '--host', ov.info.get(peer)!.ipv6, '--port', '7002', '--count', '1', '--timeout', '10000'], 20_000)
      newMs.push(...r.samples_ms)
      errors.push(...r.errors.map((e) => `new ${peer}: ${e}`))
    }
  }
  const warm = await ov.traffic<{ samples_ms: number[]; errors: string[] }>('a', ['first-byte', '--host', ov.info.get('b')!.ipv6, '--port', '7002', '--count', String(SETUP_WARM), '--timeout', '10000'], 60_000)
  errors.push(...warm.errors.map((e) => `existing b: ${e}`))
  return { new_ms: newMs, existing_ms: warm.samples_ms, errors }
}

function gitCommit(): { commit: string | null; dirty: boolean } {
  try {
    const commit = execFileSync('git', ['rev-parse', 'HEAD'], { cwd: repoRoot, encoding: 'utf8' }).trim()
    const dirty = execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], { cwd: repoRoot, encoding: 'utf8' }).trim() !== ''
    return { commit, dirty }
  } catch {
    return { commit: null, dirty: false }
  }
}

function mbs(x: number | null | undefined): string {
  return x === null || x === undefined || !Number.isFinite(x) ? '-' : `${x.toFixed(1)} MB/s`
}
function ms(x: number | null | undefined): string {
  return x === null || x === undefined || !Number.isFinite(x) ? '-' : `${x.toFixed(3)} ms`
}
function mib(x: number | null | undefined): string {
  return x === null || x === undefined || !Number.isFinite(x) ? '-' : `${(x / 1048576).toFixed(1)} MiB`
}
function kib(x: number | null | undefined): string {
  return x === null || x === undefined || !Number.isFinite(x) ? '-' : `${(x / 1024).toFixed(1)} KiB`
}

async function main(): Promise<void> {
  const why = await testbedUnavailable()
  if (why !== null) {
    log(`cannot run: ${why}`)
    process.exit(1)
  }
  const t0 = Date.now()
  log(`building the topology (${SPEC.nodes.length} public nodes + rendezvous)`)
  const topo = await Topology.create(SPEC)
  const ov = new Overlay(topo)
  const notes: string[] = []
  const peers: PeerTunnel[] = []
  const peerSkips: Array<{ kind: string; reason: string }> = []
  const closePeers = async (): Promise<void> => {
    for (const t of peers) await t.close().catch((err: unknown) => log(`closing ${t.kind}: ${err instanceof Error ? err.message : String(err)}`))
  }
  let overlayReady = true
  try {
    await ov.startRendezvous()
    const nodeArgs = (n: string): string[] =>
      PROFILE && (n === 'a' || n === 'b') ? ['--cpu-prof', '--cpu-prof-dir', PROFILE_DIR, '--cpu-prof-name', `daemon-${n}-${Date.now()}.cpuprofile`] : n === 'a' || n === 'b' ? NODE_ARGS : []
    if (PROFILE) mkdirSync(PROFILE_DIR, { recursive: true })
    const names = PROFILE ? ['a', 'b'] : ['a', 'b', ...SETUP_PEERS.filter((p) => p !== 'b')]
    try {
      await Promise.all(names.map((n) => ov.up(n, { extraArgs: UP_ARGS, nodeArgs: nodeArgs(n) })))
      for (const n of names.slice(1)) await ov.trust('a', n)
    } catch (err) {
      if (!(err instanceof TunNotReady)) throw err
      overlayReady = false
      notes.push(`overlay not measured: ${err.message}`)
      log(notes[notes.length - 1]!)
      await Promise.all([...ov.daemons.keys()].map((n) => ov.down(n)))
    }
    const info = (n: string): DaemonInfo => ov.info.get(n)!
    await Promise.all(names.slice(1).map((n) => ov.serveTraffic(n)))
    const bDirect = topo.address('b')

    if (PROFILE) {
      if (!overlayReady) throw new Error('profiling needs the overlay (TUN) to run')
      log(`profile run: ${MB} MB over the overlay with daemons a, b under --cpu-prof`)
      const g = await goodput(ov, info('b').ipv6, 99)
      log(`overlay goodput under the profiler: ${g.mb_per_s.toFixed(1)} MB/s`)
      await Promise.all(['a', 'b'].map((n) => ov.down(n)))
      const files = readdirSync(PROFILE_DIR).filter((f) => f.endsWith('.cpuprofile')).sort()
      for (const n of ['a', 'b']) {
        const f = files.filter((x) => x.startsWith(`daemon-${n}-`)).pop()
        if (f === undefined) {
          log(`no profile for daemon ${n}`)
          continue
        }
        const top = topSelfTime(JSON.parse(readFileSync(join(PROFILE_DIR, f), 'utf8')), 20)
        process.stdout.write(`\n${formatTop(`daemon ${n} (${f})`, top)}\n`)
      }
      return
    }

    if (SETUP_ONLY) {
      if (!overlayReady) throw new Error('the set-up rows need the overlay (TUN)')
      await setupOnly(ov, bDirect)
      return
    }

    // --- the peers (issue 12): wireguard-go and Nebula between the same a and b ---
    for (const kind of PEERS) {
      log(`starting ${kind} between a and b`)
      const s = await startPeer(kind, topo, { client: 'a', server: 'b' })
      if (s.ok) {
        peers.push(s.tunnel)
        log(`  ${s.tunnel.version}: ${s.tunnel.clientAddress} -> ${s.tunnel.serverAddress}, TUN MTU ${s.tunnel.mtu}`)
      } else {
        peerSkips.push({ kind: s.kind, reason: s.reason })
        notes.push(`${s.kind} row skipped: ${s.reason}`)
        log(notes[notes.length - 1]!)
      }
    }
    if (PEERS.length === 0) notes.push('wireguard-go and nebula not measured (PILOT_BENCH_PEERS=0)')

    /** One way from a to b's servers; `pids` are the programs carrying it at a and b (none for the kernel's direct path). */
    interface BenchPath {
      key: PathKey
      host: string
      v6: boolean
      what: string
      pids: (() => Record<string, number>) | null
      seed: number
    }
    const paths: BenchPath[] = [{ key: 'direct', host: bDirect, v6: false, what: `kernel TCP over IPv4 to ${bDirect}`, pids: null, seed: 1000 }]
    for (const t of peers) {
      const pids = (): Record<string, number> => {
        const p = t.pids()
        return { a: p.client, b: p.server }
      }
      paths.push({ key: t.kind, host: t.serverAddress, v6: false, what: `${t.version}, TUN MTU ${t.mtu}, to ${t.serverAddress}`, pids, seed: t.kind === 'wireguard-go' ? 3000 : 4000 })
    }
    if (overlayReady) {
      const up = UP_ARGS.length > 0 ? ` (up ${UP_ARGS.join(' ')})` : ' (default settings)'
      paths.push({ key: 'pilot-tun', host: info('b').ipv6, v6: true, what: `pilot0 to ${info('b').ipv6}${up}`, pids: () => ({ a: ov.daemonPid('a'), b: ov.daemonPid('b') }), seed: 2000 })
    }

    // --- single-flow goodput, the paths alternating in every round ---
    const runs = new Map<PathKey, BlastResult[]>(paths.map((p) => [p.key, []]))
    const reasm = new Map<PathKey, number>(paths.map((p) => [p.key, 0]))
    for (let i = 0; i < ROUNDS; i++) {
      for (const p of paths) {
        log(`goodput round ${i + 1}/${ROUNDS}: ${MB} MB ${p.key}`)
        const before = await reassembledAB(ov)
        const r = await goodput(ov, p.host, p.seed + i)
        reasm.set(p.key, reasm.get(p.key)! + (await reassembledAB(ov)) - before)
        runs.get(p.key)!.push(r)
        log(`  ${p.key} ${r.mb_per_s.toFixed(1)} MB/s`)
      }
    }
    const direct = runs.get('direct')!
    const overlay = runs.get('pilot-tun') ?? []
    const gDirect = median(direct.map((r) => r.mb_per_s))
    const gOverlay = overlayReady ? median(overlay.map((r) => r.mb_per_s)) : null

    // --- one flow per path with 1 % random loss at the hub (every forwarded packet, both ways) ---
    const lossy = new Map<PathKey, number>()
    if (LOSS) {
      try {
        await ov.topo.setLoss(1)
        for (const p of paths) {
          log(`1 % hub loss: ${MB} MB ${p.key}`)
          const r = await goodput(ov, p.host, p.seed + 700)
          lossy.set(p.key, r.mb_per_s)
          log(`  ${p.key} ${r.mb_per_s.toFixed(1)} MB/s at 1 % loss`)
        }
      } finally {
        await ov.topo.setLoss(0)
      }
    }

    // --- parallel flows: the same bytes in PARALLEL flows at once ---
    const parallel = new Map<PathKey, ParallelResult>()
    if (PARALLEL > 0) {
      for (const p of paths) {
        log(`${PARALLEL} parallel flows, ${MB} MB together: ${p.key}`)
        const r = await parallelGoodput(ov, p.host, p.seed + 500)
        parallel.set(p.key, r)
        log(`  ${p.key} ${r.mb_per_s.toFixed(1)} MB/s, slowest/fastest ${r.min_over_max.toFixed(2)}`)
      }
    }

    // --- RTT ---
    log(`RTT: ${PINGS} pings at 10 ms on each path`)
    const rtts = new Map<PathKey, PingStats>()
    for (const p of paths) rtts.set(p.key, await ping(ov, 'a', p.host, p.v6))
    const pDirect = rtts.get('direct')!
    const pOverlay = rtts.get('pilot-tun') ?? null
    // The ping above is not the same trip on every path: through pilot0 daemon b answers the ICMPv6 echo
    // as a Pilot control ping (b's TUN and kernel are not crossed); the peers' echoes cross both TUNs and
    // b's kernel. This one is the same trip everywhere: a TCP connection to b's echo server, one byte there and back.
    const tcpEcho = new Map<PathKey, number>()
    for (const p of paths) {
      const r = await ov.traffic<{ samples_ms: number[]; errors: string[] }>('a', ['first-byte', '--host', p.host, '--port', '7002', '--count', String(SETUP_WARM), '--timeout', '10000'], 60_000)
      tcpEcho.set(p.key, median(r.samples_ms))
      if (r.errors.length > 0) notes.push(`connect+echo errors on ${p.key}: ${r.errors.join('; ')}`)
    }

    // --- 1,000 concurrent flows ---
    const flowRuns = new Map<PathKey, FlowsResult>()
    for (const p of SKIP.has('flows') ? [] : paths) {
      log(`${FLOWS} concurrent flows x 64 KB echo: ${p.key}`)
      const f = await flows(ov, p.host, p.pids?.() ?? {})
      flowRuns.set(p.key, f)
      log(`  ${p.key} ${f.echo.completed}/${FLOWS} in ${f.echo.ms.toFixed(0)} ms`)
    }
    const fDirect = flowRuns.get('direct') ?? null
    const fOverlay = flowRuns.get('pilot-tun') ?? null

    // The peers are measured: stop them before the daemons restart for the set-up figures.
    await closePeers()

    // --- connection set-up (restarts every daemon: last) ---
    let setup: Awaited<ReturnType<typeof setupTimes>> | null = null
    let setupDirect: number[] = []
    if (SETUP) {
      const r = await ov.traffic<{ samples_ms: number[] }>('a', ['first-byte', '--host', bDirect, '--port', '7002', '--count', String(SETUP_WARM)], 60_000)
      setupDirect = r.samples_ms
    }
    if (overlayReady && SETUP) {
      log(`connection set-up: ${SETUP_RESTARTS} restarts of every daemon x ${SETUP_PEERS.length} new peers, then ${SETUP_WARM} with the tunnel up`)
      setup = await setupTimes(ov)
      if (setup.errors.length > 0) notes.push(`set-up errors: ${setup.errors.join('; ')}`)
    }

    // --- report ---
    const perFlow = (f: FlowsResult | null, n: string): number | null =>
      f === null || f.rss_all_open[n] === undefined ? null : (f.rss_all_open[n]! - f.rss_before[n]!) / FLOWS
    const rttOverhead = pOverlay === null ? null : pOverlay.median_ms - pDirect.median_ms
    const setupNew = setup === null || setup.new_ms.length === 0 ? null : median(setup.new_ms)
    const setupExisting = setup === null ? null : median(setup.existing_ms)
    const figs: Partial<Record<PathKey, PathFigures>> = {}
    for (const p of paths) {
      const rs = runs.get(p.key)!
      const f = flowRuns.get(p.key)
      figs[p.key] = {
        what: p.what,
        goodput_mb_s: r3(median(rs.map((r) => r.mb_per_s))),
        goodput_runs_mb_s: rs.map((r) => r.mb_per_s),
        reassembled: reasm.get(p.key)!,
        parallel: parallel.get(p.key) ?? null,
        loss_1pct_mb_s: lossy.has(p.key) ? r3(lossy.get(p.key)!) : null,
        rtt: rtts.get(p.key) ?? null,
        tcp_echo_ms: r3(tcpEcho.get(p.key) ?? null),
        flows_mb_s: f?.echo.mb_per_s ?? null,
        flows_completed: f?.echo.completed ?? null,
        rss_idle: p.pids === null || f === undefined ? null : { client: f.rss_before.a!, server: f.rss_before.b! },
      }
    }
    const verdicts = issue12Verdicts({
      paths: figs,
      setup_new_median_ms: setupNew,
      rss_per_flow_bytes: { a: perFlow(fOverlay, 'a'), b: perFlow(fOverlay, 'b') },
      rss_idle: fOverlay === null ? null : { a: fOverlay.rss_before.a!, b: fOverlay.rss_before.b! },
      rss_after: fOverlay === null ? null : { a: fOverlay.rss_after.a!, b: fOverlay.rss_after.b! },
      flows: FLOWS,
    })
    const c = gitCommit()
    const cpu = cpus()
    const results = {
      date: new Date().toISOString(),
      command: 'npm run bench',
      machine: { cpu: cpu[0]?.model ?? 'unknown', cores: cpu.length, total_memory_bytes: totalmem(), kernel: release(), load_average_at_end: loadavg().map((x) => r3(x)) },
      node: process.version,
      commit: c.commit,
      dirty_worktree: c.dirty,
      parameters: { goodput_mb: MB, goodput_rounds: ROUNDS, parallel_flows: PARALLEL, peers: PEERS, pings: PINGS, ping_interval_ms: 10, flows: FLOWS, flow_bytes: FLOW_BYTES, flows_connect_window: CONNECT_WINDOW, up_args: UP_ARGS, setup_restarts: SETUP_RESTARTS, setup_peers_per_restart: SETUP_PEERS.length },
      goodput: {
        overlay_mb_s: r3(gOverlay),
        direct_mb_s: r3(gDirect),
        overlay_runs: overlay.map((r) => ({ mb_s: r.mb_per_s, ms: r.ms, first_byte_ms: r.first_byte_ms, byte_exact: r.ok })),
        direct_runs: direct.map((r) => ({ mb_s: r.mb_per_s, ms: r.ms, first_byte_ms: r.first_byte_ms, byte_exact: r.ok })),
      },
      rtt: { overlay: pOverlay, direct: pDirect },
      setup: {
        new_peer_median_ms: r3(setupNew),
        new_peer_samples_ms: setup?.new_ms ?? [],
        existing_tunnel_median_ms: r3(setupExisting),
        existing_tunnel_samples_ms: setup?.existing_ms ?? [],
        direct_median_ms: r3(median(setupDirect)),
      },
      flows: {
        overlay: fOverlay === null ? null : { ...fOverlay.echo, rss_before: fOverlay.rss_before, rss_all_open: fOverlay.rss_all_open, rss_peak: fOverlay.rss_peak, rss_after: fOverlay.rss_after, rss_per_flow_bytes: { a: r3(perFlow(fOverlay, 'a')), b: r3(perFlow(fOverlay, 'b')) } },
        direct: fDirect?.echo ?? null,
      },
      ratios: {
        goodput_overlay_over_direct: gOverlay === null ? null : r3(gOverlay / gDirect),
        rtt_median_overlay_over_direct: pOverlay === null ? null : r3(pOverlay.median_ms / pDirect.median_ms),
        rtt_p99_overlay_over_direct: pOverlay === null ? null : r3(pOverlay.p99_ms / pDirect.p99_ms),
        flows_goodput_overlay_over_direct: fOverlay === null || fDirect === null ? null : r3(fOverlay.echo.mb_per_s / fDirect.echo.mb_per_s),
        setup_new_over_existing: setupNew === null || setupExisting === null ? null : r3(setupNew / setupExisting),
      },
      rtt_overhead_ms: { median: r3(rttOverhead), p99: pOverlay === null ? null : r3(pOverlay.p99_ms - pDirect.p99_ms) },
      targets: {
        goodput_mb_s: { target: `>= ${TARGETS.goodput_mb_s}`, met: gOverlay === null ? null : gOverlay >= TARGETS.goodput_mb_s },
        rtt_overhead_ms: { target: `<= ${TARGETS.rtt_overhead_ms}`, met: rttOverhead === null ? null : rttOverhead <= TARGETS.rtt_overhead_ms },
        setup_new_ms: { target: `<= ${TARGETS.setup_new_ms}`, met: setupNew === null ? null : setupNew <= TARGETS.setup_new_ms },
      },
      side_by_side: {
        paths: figs,
        better_peer: betterPeers(figs),
        ratios_vs_better_peer: ratiosVsBetterPeer(figs),
        peers: {
          requested: PEERS,
          measured: peers.map((t) => ({ kind: t.kind, version: t.version, mtu: t.mtu, client_address: t.clientAddress, server_address: t.serverAddress, interfaces: t.interfaces })),
          skipped: peerSkips,
        },
        goodput_runs: Object.fromEntries([...runs].map(([k, rs]) => [k, rs.map((r) => ({ mb_s: r.mb_per_s, ms: r.ms, first_byte_ms: r.first_byte_ms, byte_exact: r.ok }))])),
      },
      issue12_targets: verdicts,
      notes,
      duration_s: Math.round((Date.now() - t0) / 1000),
    }
    const fo = fOverlay
    const rows = [
      ['figure', 'overlay (pilot0)', 'direct (IPv4)', 'ratio / overhead', 'target'],
      [`single-flow goodput, ${MB} MB (median of ${ROUNDS})`, mbs(gOverlay), mbs(gDirect), results.ratios.goodput_overlay_over_direct === null ? '-' : `x${results.ratios.goodput_overlay_over_direct}`, `>= ${TARGETS.goodput_mb_s} MB/s ${met(results.targets.goodput_mb_s.met)}`],
      [`RTT median (${PINGS} pings, 10 ms)`, ms(pOverlay?.median_ms), ms(pDirect.median_ms), rttOverhead === null ? '-' : `+${rttOverhead.toFixed(3)} ms`, `<= +${TARGETS.rtt_overhead_ms} ms ${met(results.targets.rtt_overhead_ms.met)}`],
      ['RTT p99', ms(pOverlay?.p99_ms), ms(pDirect.p99_ms), pOverlay === null ? '-' : `+${(pOverlay.p99_ms - pDirect.p99_ms).toFixed(3)} ms`, ''],
      ['ping replies', pOverlay === null ? '-' : `${pOverlay.received}/${PINGS}`, `${pDirect.received}/${PINGS}`, '', ''],
      [`set-up, new peer (median of ${setup?.new_ms.length ?? 0})`, ms(setupNew), '', '', `<= ${TARGETS.setup_new_ms} ms ${met(results.targets.setup_new_ms.met)}`],
      [`set-up, tunnel up (median of ${setup?.existing_ms.length ?? 0})`, ms(setupExisting), ms(median(setupDirect)), '', ''],
      [`${FLOWS} flows x 64 KB echo (${CONNECT_WINDOW} connects in flight): goodput`, mbs(fo?.echo.mb_per_s), mbs(fDirect?.echo.mb_per_s), results.ratios.flows_goodput_overlay_over_direct === null ? '-' : `x${results.ratios.flows_goodput_overlay_over_direct}`, ''],
      [`${FLOWS} flows: completed, wall time`, fo === null ? '-' : `${fo.echo.completed}/${FLOWS}, ${(fo.echo.ms / 1000).toFixed(2)} s`, fDirect === null ? '-' : `${fDirect.echo.completed}/${FLOWS}, ${(fDirect.echo.ms / 1000).toFixed(2)} s`, '', ''],
      [`${FLOWS} flows: per-flow latency p50/p99`, fo === null ? '-' : `${fo.echo.latency_ms.p50.toFixed(0)}/${fo.echo.latency_ms.p99.toFixed(0)} ms`, fDirect === null ? '-' : `${fDirect.echo.latency_ms.p50.toFixed(0)}/${fDirect.echo.latency_ms.p99.toFixed(0)} ms`, '', ''],
      ['daemon RSS idle a / b', fo === null ? '-' : `${mib(fo.rss_before.a)} / ${mib(fo.rss_before.b)}`, '', '', ''],
      [`daemon RSS, ${FLOWS} flows open a / b`, fo === null ? '-' : `${mib(fo.rss_all_open.a)} / ${mib(fo.rss_all_open.b)}`, '', '', ''],
      ['daemon RSS per flow a / b', fo === null ? '-' : `${kib(perFlow(fo, 'a'))} / ${kib(perFlow(fo, 'b'))}`, '', '', ''],
      ['daemon RSS after the flows a / b', fo === null ? '-' : `${mib(fo.rss_after.a)} / ${mib(fo.rss_after.b)}`, '', '', ''],
    ]
    process.stdout.write(`\npilot-tun netns benchmark: ${results.machine.cores} x ${results.machine.cpu}, ${(totalmem() / 2 ** 30).toFixed(1)} GiB, Linux ${release()}, Node ${process.version}, commit ${c.commit?.slice(0, 10) ?? '?'}${c.dirty ? ' (dirty)' : ''}\n\n`)
    process.stdout.write(table(rows) + '\n')
    const bp = betterPeers(figs)
    const better = bp.goodput === null ? 'no peer measured' : `better peer: ${bp.goodput} for goodput, ${bp.parallel ?? '-'} for ${PARALLEL} flows, ${bp.rtt ?? '-'} for RTT`
    process.stdout.write(`\nside by side, a -> b on the same namespaces in this run (${better}):\n\n`)
    process.stdout.write(table(sideBySideRows(figs, MB, ROUNDS, PARALLEL, FLOWS)) + '\n')
    for (const p of paths) process.stdout.write(`  ${p.key}: ${p.what}\n`)
    process.stdout.write(`\nissue 12 targets:\n${verdictLines(verdicts)}\n`)
    for (const n of notes) process.stdout.write(`note: ${n}\n`)
    const out = join(repoRoot, 'bench', 'results.json')
    writeFileSync(out, JSON.stringify(results, null, 2) + '\n')
    process.stdout.write(`\nwrote ${out} (${results.duration_s} s)\n`)
  } catch (err) {
    log(`failed: ${err instanceof Error ? err.message : String(err)}`)
    log(ov.logs())
    for (const t of peers) log(t.logs())
    process.exitCode = 1
  } finally {
    await closePeers()
    await ov.close()
    await topo.destroy()
  }
}

/** PILOT_BENCH_SETUP_ONLY=1: the set-up rows alone, the same measurement as the full run's. */
async function setupOnly(ov: Overlay, bDirect: string): Promise<void> {
  const direct = await ov.traffic<{ samples_ms: number[] }>('a', ['first-byte', '--host', bDirect, '--port', '7002', '--count', String(SETUP_WARM)], 60_000)
  log(`connection set-up: ${SETUP_RESTARTS} restarts of every daemon x ${SETUP_PEERS.length} new peers, then ${SETUP_WARM} with the tunnel up`)
  const s = await setupTimes(ov)
  const fmt = (xs: number[]): string => xs.map((x) => x.toFixed(1)).join(', ')
  process.stdout.write(`\nset-up only (commit ${gitCommit().commit?.slice(0, 10) ?? '?'}, load ${loadavg().map((x) => x.toFixed(2)).join(' ')})\n`)
  process.stdout.write(`set-up, new peer (median of ${s.new_ms.length}): ${ms(median(s.new_ms))}  samples: ${fmt(s.new_ms)}\n`)
  process.stdout.write(`set-up, tunnel up (median of ${s.existing_ms.length}): ${ms(median(s.existing_ms))}  direct ${ms(median(direct.samples_ms))}  samples: ${fmt(s.existing_ms)}\n`)
  for (const e of s.errors) process.stdout.write(`error: ${e}\n`)
}

function met(x: boolean | null): string {
  return x === null ? '' : x ? '(met)' : '(missed)'
}

await main()
