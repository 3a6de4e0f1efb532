/**
 * `npm run bench:registry`: a load benchmark of the registry (issue 14).
 *
 * For each N in PILOT_REGBENCH_NODES (default 10000; "10000,100000" runs both),
 * a fresh registry is started in a child process (test/util/registry-front-end.ts: the real
 * `startRegistry`, a SQLite file in a temp dir, 127.0.0.1) and N simulated
 * nodes (registry-nodes.ts: Ed25519 keys derived from seeds) talk to it
 * through the real wire protocol over a pool of TCP connections
 * (registry-load.ts: many nodes' signed requests per connection — the
 * registry authenticates each request by its signature, not by connection).
 * Phases, each printed with requests/s, p50/p99/max latency, errors and the
 * registry's CPU (from /proc/<pid>/stat):
 *
 *   1. register all N nodes (at most CONNS × DEPTH outstanding);
 *   2. heartbeats at the real rate, one per node per 30 s (N/30 per second,
 *      evenly spread), for WINDOW_S: did the registry keep up (answered vs
 *      offered, latency per 10 s slice not growing)? Latency counts from
 *      when a request was due, so falling behind shows; the offer stops once
 *      5 s worth of requests wait (reported as FELL BEHIND);
 *   3. saturation: heartbeats as fast as CONNS connections get answers, SAT_S;
 *   set-up: every 10th node public, TRUST pairs by mutual report_trust
 *      (after 2 and 3, so heartbeats start soon after registration: the
 *      registry takes nodes silent for 3 min offline);
 *   4. resolves (half to public nodes, half within trust pairs) at N/30 per
 *      second mixed with the N/30 heartbeats, for WINDOW_S.
 * Paced rows give req/s as answers / (window + drain).
 * Then the store's size on disk per node (database + WAL).
 *
 * Each N runs against every registry in PILOT_REGBENCH_STORES (default
 * "sqlite:1"; e.g. "sqlite:1,postgres:1,postgres:3"): SQLite with one front
 * end, or a throwaway PostgreSQL of the bench's own with K front ends, each a
 * process; the load's connections are spread over the front ends round-robin.
 *
 * Knobs (env): PILOT_REGBENCH_NODES (10000; comma list), PILOT_REGBENCH_WINDOW_S
 * (60), PILOT_REGBENCH_CONNS (64), PILOT_REGBENCH_DEPTH (1: lock step per
 * connection as a daemon does; >1 pipelines), PILOT_REGBENCH_SAT_S (10),
 * PILOT_REGBENCH_TRUST (trust pairs, default min(2000, N/10)),
 * PILOT_REGBENCH_DIR (where the temp dir goes; default the OS temp dir),
 * PILOT_REGBENCH_CHILD_ARGS (Node flags for the registry process, e.g.
 * "--cpu-prof --cpu-prof-dir=/tmp/prof"; `node dist/bench/cpuprofile-top.js` reads it).
 * Ctrl-C stops the child and removes the temp dir (registry-process.ts).
 */
import { execFileSync } from 'node:child_process'
import { mkdtempSync } from 'node:fs'
import { availableParallelism, cpus, loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { LoadPool, PhaseRecord, runBatch, runClosedLoop, runPaced } from './registry-load.js'
import { heartbeatFrame, identityFromSeedMicros, makeNodes, prng, registerFrame, reportTrustFrame, resolveFrame, setVisibilityFrame, type SimNode } from './registry-nodes.js'
import { removeLater, startPostgresRegistry, startSqliteRegistry, type RegistryUnderTest } from './registry-process.js'

const HEARTBEAT_INTERVAL_S = 30
/** A paced phase stops offering once this many seconds' worth of requests wait unanswered. */
const MAX_BACKLOG_S = 5

function envNumber(name: string, fallback: number): number {
  const v = process.env[name]
  if (v === undefined || v === '') return fallback
  const n = Number(v)
  if (!Number.isFinite(n) || n <= 0) throw new Error(`${name} must be a positive number, got ${JSON.stringify(v)}`)
  return n
}

const config = {
  nodes: (process.env.PILOT_REGBENCH_NODES ?? '10000').split(',').map((s) => {
    const n = Number(s.trim())
    if (!Number.isInteger(n) || n < 20) throw new Error(`PILOT_REGBENCH_NODES: ${JSON.stringify(s)} is not an integer ≥ 20`)
    return n
  }),
  windowS: envNumber('PILOT_REGBENCH_WINDOW_S', 60),
  conns: Math.floor(envNumber('PILOT_REGBENCH_CONNS', 64)),
  depth: Math.floor(envNumber('PILOT_REGBENCH_DEPTH', 1)),
  saturationS: envNumber('PILOT_REGBENCH_SAT_S', 10),
  trust: process.env.PILOT_REGBENCH_TRUST,
  dir: process.env.PILOT_REGBENCH_DIR ?? tmpdir(),
  stores: (process.env.PILOT_REGBENCH_STORES ?? 'sqlite:1').split(',').map((s) => {
    const m = /^(sqlite|postgres):([1-9]\d*)$/.exec(s.trim())
    if (m === null || (m[1] === 'sqlite' && m[2] !== '1')) throw new Error(`PILOT_REGBENCH_STORES: ${JSON.stringify(s)} is not sqlite:1 or postgres:K`)
    return { kind: m[1] as 'sqlite' | 'postgres', frontEnds: Number(m[2]) }
  }),
}

const f1 = (n: number): string => (Number.isFinite(n) ? n.toFixed(1) : '-')
const f2 = (n: number): string => (Number.isFinite(n) ? n.toFixed(2) : '-')
const int = (n: number): string => Math.round(n).toLocaleString('en-US')

function commit(): string {
  try {
    const rev = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim()
    const dirty = execFileSync('git', ['status', '--porcelain'], { encoding: 'utf8' }).trim() !== ''
    return dirty ? `${rev} (dirty worktree)` : rev
  } catch {
    return 'unknown'
  }
}

function machine(): string {
  const la = loadavg().map((x) => x.toFixed(2)).join(' ')
  return `nproc ${availableParallelism()}, ${cpus()[0]?.model ?? '?'}, Node ${process.version}, load average ${la}`
}

/** Measures one phase: wall time, the registry's CPU, this process's CPU. */
class Meter {
  private readonly t0 = performance.now()
  private readonly cpu0: number
  private readonly own0 = process.cpuUsage()
  constructor(private readonly registry: RegistryUnderTest) {
    this.cpu0 = this.registryCpu()
  }
  private registryCpu(): number {
    return this.registry.cpuSeconds()
  }
  read(): { wallS: number; registryCpuS: number; clientCpuS: number } {
    const own = process.cpuUsage(this.own0)
    return { wallS: (performance.now() - this.t0) / 1000, registryCpuS: this.registryCpu() - this.cpu0, clientCpuS: (own.user + own.system) / 1e6 }
  }
}

const HEADER = 'phase                          requests  errors    req/s   p50 ms   p99 ms   max ms  reg CPU%  reg µs/req  load CPU%'

function row(name: string, record: PhaseRecord, m: { wallS: number; registryCpuS: number; clientCpuS: number }, wallS = m.wallS): void {
  const s = record.summary()
  const line = [
    name.padEnd(28),
    int(s.count).padStart(10),
    int(record.errorCount).padStart(7),
    int(s.count / wallS).padStart(8),
    f2(s.p50).padStart(8),
    f2(s.p99).padStart(8),
    f1(s.max).padStart(8),
    f1((100 * m.registryCpuS) / m.wallS).padStart(9),
    f1((1e6 * m.registryCpuS) / Math.max(1, s.count)).padStart(11),
    f1((100 * m.clientCpuS) / m.wallS).padStart(10),
  ].join(' ')
  console.log(line)
  for (const [error, count] of record.errors) console.log(`    error ×${count}: ${error}`)
}

function slices(record: PhaseRecord): void {
  const parts = record.slices(10).map((s) => `${s.from}s: ${int(s.count)} p50 ${f2(s.p50)} p99 ${f2(s.p99)}`)
  console.log(`    by 10 s of completion: ${parts.join(' | ')}`)
}

async function storeLine(registry: RegistryUnderTest, n: number, when: string): Promise<void> {
  const sizes = await registry.storeBytes()
  if (sizes.database !== undefined) {
    console.log(`  store ${when}: PostgreSQL database ${int(sizes.database / 1024)} KiB = ${int(sizes.database / n)} bytes per node (pg_database_size)`)
    return
  }
  const db = sizes['registry.db'] ?? 0
  const wal = sizes['registry.db-wal'] ?? 0
  console.log(`  store ${when}: database ${int(db / 1024)} KiB + WAL ${int(wal / 1024)} KiB = ${int((db + wal) / n)} bytes per node (database alone ${int(db / n)})`)
}

type StoreChoice = (typeof config.stores)[number]

async function runOne(n: number, store: StoreChoice): Promise<void> {
  const trustPairs = config.trust !== undefined ? Math.floor(Number(config.trust)) : Math.min(2000, Math.floor(n / 10))
  const label = store.kind === 'sqlite' ? 'SQLite registry, 1 front end' : `PostgreSQL registry, ${store.frontEnds} front end${store.frontEnds === 1 ? '' : 's'}`
  console.log(`\n=== ${int(n)} nodes: ${label}; ${config.conns} connections × depth ${config.depth}; window ${config.windowS} s ===`)
  const dir = mkdtempSync(join(config.dir, 'pilot-regbench-'))
  const removeDir = removeLater(dir)
  let registry: RegistryUnderTest | null = null
  let pool: LoadPool | null = null
  try {
    registry = store.kind === 'sqlite' ? await startSqliteRegistry(dir) : await startPostgresRegistry(store.frontEnds)
    console.log(`  registry pids ${registry.pids().join(',')} on ${registry.addresses.map((a) => `${a.host}:${a.port}`).join(',')}, store ${dir}`)

    let t = performance.now()
    const nodes = makeNodes(n)
    const keygenS = (performance.now() - t) / 1000
    console.log(`  identities: ${int(n)} Ed25519 keys from seeds in ${f2(keygenS)} s (${f1((1e6 * keygenS) / n)} µs each, JWK import; Identity.fromSeed: ${f1(identityFromSeedMicros(500))} µs each over 500)`)

    pool = await LoadPool.open(registry.addresses, config.conns, config.depth)
    const concurrency = config.conns * config.depth
    console.log(HEADER)

    // 1. register
    let meter = new Meter(registry)
    const register = new PhaseRecord(performance.now())
    await runBatch(pool, {
      total: n,
      concurrency,
      frame: (k) => registerFrame(nodes[k]!, k),
      record: register,
      onAnswer: (k, answer) => {
        if (answer !== null && typeof answer.node_id === 'number') nodes[k]!.id = answer.node_id
      },
    })
    row('1 register', register, meter.read())
    const registered = nodes.filter((x) => x.id !== 0)
    if (registered.length < n) throw new Error(`only ${registered.length} of ${n} nodes registered; stopping`)

    t = performance.now()
    for (const node of nodes) node.heartbeat = heartbeatFrame(node)
    const signS = (performance.now() - t) / 1000
    console.log(`  (load side: ${int(n)} heartbeat signatures in ${f2(signS)} s, ${f1((1e6 * signS) / n)} µs each; signed once, replayed every 30 s)`)
    await storeLine(registry, n, 'after register')

    // 2. heartbeats at one per node per 30 s
    const rate = n / HEARTBEAT_INTERVAL_S
    meter = new Meter(registry)
    const beats = new PhaseRecord(performance.now())
    const paced = await runPaced(pool, {
      start: beats.start,
      rate,
      windowS: config.windowS,
      drainS: 30,
      maxBacklogS: MAX_BACKLOG_S,
      request: (k) => ({ frame: nodes[k % n]!.heartbeat!, record: beats }),
    })
    const m2 = meter.read()
    row(`2 heartbeat ${int(rate)}/s offered`, beats, m2, paced.wallS)
    slices(beats)
    const keptUp = paced.stoppedAtS === null && paced.answeredInWindow >= 0.99 * paced.offered && paced.leftOver === 0
    if (paced.stoppedAtS !== null) console.log(`    offer stopped at ${f1(paced.stoppedAtS)} s: more than ${MAX_BACKLOG_S} s of heartbeats were waiting`)
    console.log(`    offered ${int(paced.offered)} in ${f1(paced.stoppedAtS ?? config.windowS)} s (${f1(rate)}/s); answered ${int(paced.answeredInWindow)} by then, ${int(paced.answered)} in all, ${int(paced.leftOver)} never: ${keptUp ? 'KEPT UP' : 'FELL BEHIND'}`)

    // 3. saturation
    meter = new Meter(registry)
    const saturation = new PhaseRecord(performance.now())
    const sat = await runClosedLoop(pool, { depth: config.depth, durationS: config.saturationS, frame: (k) => nodes[k % n]!.heartbeat!, record: saturation })
    row(`3 heartbeat saturation`, saturation, meter.read(), sat.wallS)
    const ceiling = saturation.summary().count / sat.wallS
    console.log(`    ceiling ${int(ceiling)} heartbeats/s = ${int(ceiling * HEARTBEAT_INTERVAL_S)} nodes at one per 30 s (load generator on the same 2 CPUs)`)

    // set-up: every 10th node public, trust pairs (10j+1, 10j+2) by mutual report_trust.
    const publicNodes = nodes.filter((_, i) => i % 10 === 0)
    const pairs: Array<[SimNode, SimNode]> = []
    for (let j = 0; j < trustPairs && 10 * j + 2 < n; j++) pairs.push([nodes[10 * j + 1]!, nodes[10 * j + 2]!])
    const setupFrames = [
      ...publicNodes.map((x) => setVisibilityFrame(x, true)),
      ...pairs.flatMap(([a, b]) => [reportTrustFrame(a, b), reportTrustFrame(b, a)]),
    ]
    meter = new Meter(registry)
    const setup = new PhaseRecord(performance.now())
    await runBatch(pool, { total: setupFrames.length, concurrency, frame: (k) => setupFrames[k]!, record: setup })
    row(`  set-up (${int(publicNodes.length)} public, ${int(pairs.length)} pairs)`, setup, meter.read())

    // 4. resolves mixed with heartbeats
    const random = prng(n)
    const resolveCount = Math.min(n, 20_000)
    t = performance.now()
    const resolveFrames: Buffer[] = []
    for (let i = 0; i < resolveCount; i++) {
      if (i % 2 === 0 || pairs.length === 0) {
        const requester = nodes[Math.floor(random() * n)]!
        let target = publicNodes[Math.floor(random() * publicNodes.length)]!
        if (target === requester) target = publicNodes[(publicNodes.indexOf(target) + 1) % publicNodes.length]!
        resolveFrames.push(resolveFrame(requester, target))
      } else {
        const [a, b] = pairs[Math.floor(random() * pairs.length)]!
        resolveFrames.push(random() < 0.5 ? resolveFrame(a, b) : resolveFrame(b, a))
      }
    }
    console.log(`  (load side: ${int(resolveCount)} distinct resolve requests signed in ${f2((performance.now() - t) / 1000)} s, replayed in turn)`)
    meter = new Meter(registry)
    const mixStart = performance.now()
    const mixBeats = new PhaseRecord(mixStart)
    const resolves = new PhaseRecord(mixStart)
    const mixed = await runPaced(pool, {
      start: mixStart,
      rate: 2 * rate,
      windowS: config.windowS,
      drainS: 30,
      maxBacklogS: MAX_BACKLOG_S,
      request: (k) =>
        k % 2 === 0
          ? { frame: nodes[(k / 2) % n]!.heartbeat!, record: mixBeats }
          : { frame: resolveFrames[((k - 1) / 2) % resolveCount]!, record: resolves },
    })
    const m4 = meter.read()
    row(`4 mix: heartbeat ${int(rate)}/s`, mixBeats, m4, mixed.wallS)
    row(`  + resolve ${int(rate)}/s`, resolves, m4, mixed.wallS)
    slices(resolves)
    const mixKept = mixed.stoppedAtS === null && mixed.answeredInWindow >= 0.99 * mixed.offered && mixed.leftOver === 0
    if (mixed.stoppedAtS !== null) console.log(`    offer stopped at ${f1(mixed.stoppedAtS)} s: more than ${MAX_BACKLOG_S} s of requests were waiting`)
    console.log(`    offered ${int(mixed.offered)} in ${f1(mixed.stoppedAtS ?? config.windowS)} s; answered ${int(mixed.answeredInWindow)} by then, ${int(mixed.leftOver)} never: ${mixKept ? 'KEPT UP' : 'FELL BEHIND'}`)
    console.log(`    (reg CPU% and µs/req of the mix rows are for heartbeats and resolves together: ${f1((1e6 * m4.registryCpuS) / Math.max(1, mixed.answered))} µs per request)`)

    await storeLine(registry, n, 'at the end')
    for (const front of await registry.stats()) {
      const s = front.stats
      console.log(`  front end: RSS ${int(front.rss / 1048576)} MiB, ${int(Number(s.requests))} requests, connections open ${String(s.connections)}, refused per IP ${String(s.connectionsRefusedPerIp)}, rejected ${JSON.stringify(s.rejected)}, reaped ${String(s.nodesReaped)}`)
    }
  } finally {
    pool?.close()
    await registry?.close()
    removeDir()
  }
}

async function main(): Promise<void> {
  console.log(`registry load benchmark (issue 14): ${config.stores.map((s) => `${s.kind} × ${s.frontEnds} front end${s.frontEnds === 1 ? '' : 's'}`).join(', ')}`)
  console.log(`commit ${commit()}; ${machine()}`)
  for (const n of config.nodes) for (const store of config.stores) await runOne(n, store)
  console.log(`\nend: load average ${loadavg().map((x) => x.toFixed(2)).join(' ')}`)
}

main().then(
  () => process.exit(0),
  (err: Error) => {
    console.error(`registry bench failed: ${err.stack ?? err.message}`)
    process.exit(1)
  },
)
