/**
 * Registries under test for `npm run bench:registry`, each a set of front-end
 * processes (test/util/registry-front-end.ts) the load is spread over: SQLite
 * with one front end, or PostgreSQL with one or several.
 *
 * Also: CPU seconds of a process from /proc/<pid>/stat, and a cleanup list
 * that runs on normal exit, on errors and on Ctrl-C / SIGTERM.
 */
import { readFileSync, rmSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { startFrontEnd, type FrontEnd } from '../test/util/front-ends.js'
import { startTestPostgres } from '../test/util/postgres.js'
import type { RegistryAddress } from './registry-load.js'

export interface RegistryUnderTest {
  /** For the report, e.g. "SQLite, 1 front end". */
  label: string
  addresses: RegistryAddress[]
  /** Every process serving the registry now (front ends, and PostgreSQL's). */
  pids(): number[]
  /** CPU seconds the registry used so far, every process counted (exited PostgreSQL backends too). */
  cpuSeconds(): number
  /** Bytes the store takes now, by file (SQLite) or database (PostgreSQL). */
  storeBytes(): Promise<Record<string, number>>
  /** The server's counters (RegistryServer.stats()) and RSS, per front end. */
  stats(): Promise<Array<{ stats: Record<string, unknown>; rss: number }>>
  close(): Promise<void>
}

const cleanups = new Set<() => void>()

/** Synchronous last-resort cleanups (kill children, remove temp dirs), run once on exit or signal. */
export function onCleanup(fn: () => void): () => void {
  cleanups.add(fn)
  return () => cleanups.delete(fn)
}

function runCleanups(): void {
  for (const fn of [...cleanups].reverse()) {
    try {
      fn()
    } catch {
      // best effort
    }
  }
  cleanups.clear()
}

process.on('exit', runCleanups)
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    console.error(`\n${signal}: stopping the registry and removing temp files`)
    runCleanups()
    process.exit(signal === 'SIGINT' ? 130 : 143)
  })
}

/** The SQLite registry (src/registry/start.ts) in one front-end process, store in `dir`. */
export async function startSqliteRegistry(dir: string): Promise<RegistryUnderTest> {
  const storePath = join(dir, 'registry.db')
  const front = await startTracked(`sqlite:${storePath}`)
  return {
    label: 'SQLite, 1 front end',
    addresses: [{ host: front.host, port: front.port }],
    pids: () => [front.pid],
    cpuSeconds: () => cpuSeconds(front.pid),
    storeBytes: async () => {
      const sizes: Record<string, number> = {}
      for (const suffix of ['', '-wal', '-shm']) {
        try {
          sizes[`registry.db${suffix}`] = statSync(storePath + suffix).size
        } catch {
          sizes[`registry.db${suffix}`] = 0
        }
      }
      return sizes
    },
    stats: async () => [await front.stats()],
    close: () => front.stop(),
  }
}

/**
 * `frontEnds` registry processes on one throwaway PostgreSQL server of the
 * bench's own (test/util/postgres.ts); PostgreSQL's own processes count in
 * the registry's CPU.
 */
export async function startPostgresRegistry(frontEnds: number): Promise<RegistryUnderTest> {
  const pg = await startTestPostgres()
  if ('skip' in pg) throw new Error(`PostgreSQL: ${pg.skip}`)
  const forgetPg = onCleanup(() => pg.kill())
  const fronts: FrontEnd[] = []
  try {
    const url = await pg.createDatabase('regbench')
    for (let i = 0; i < frontEnds; i++) fronts.push(await startTracked(url))
  } catch (err) {
    for (const f of fronts) await f.stop()
    await pg.stop()
    forgetPg()
    throw err
  }
  return {
    label: `PostgreSQL, ${frontEnds} front end${frontEnds === 1 ? '' : 's'}`,
    addresses: fronts.map((f) => ({ host: f.host, port: f.port })),
    pids: () => [...fronts.map((f) => f.pid), ...pg.processes()],
    cpuSeconds: () => {
      // The postmaster's own CPU and its waited-for children's (backends that exited), plus the live backends.
      const [postmaster, ...backends] = pg.processes()
      let sum = fronts.reduce((s, f) => s + cpuSeconds(f.pid), 0)
      if (postmaster !== undefined) sum += cpuSeconds(postmaster, true)
      for (const pid of backends) sum += cpuSeconds(pid)
      return sum
    },
    storeBytes: async () => ({ database: await pg.databaseSize('regbench') }),
    stats: () => Promise.all(fronts.map((f) => f.stats())),
    close: async () => {
      await Promise.all(fronts.map((f) => f.stop()))
      await pg.stop()
      forgetPg()
    },
  }
}

/** A front end that is killed on exit or Ctrl-C if still running. */
async function startTracked(spec: string): Promise<FrontEnd> {
  // PILOT_REGBENCH_CHILD_ARGS: Node flags for the registry, e.g. "--cpu-prof --cpu-prof-dir=/tmp/p".
  const execArgv = (process.env.PILOT_REGBENCH_CHILD_ARGS ?? '').split(' ').filter((a) => a !== '')
  const front = await startFrontEnd(spec, { execArgv })
  const forget = onCleanup(() => {
    if (front.child.exitCode === null && front.child.signalCode === null) front.child.kill('SIGKILL')
  })
  return { ...front, stop: () => front.stop().finally(forget) }
}

const CLOCK_TICKS_PER_S = 100 // getconf CLK_TCK on Linux/x86-64 and arm64

/**
 * User + system CPU seconds of `pid` so far (fields 14 and 15 of /proc/<pid>/stat),
 * with `children` also those of its exited, waited-for children (16 and 17). 0 once it is gone.
 */
export function cpuSeconds(pid: number, children = false): number {
  let text: string
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8')
  } catch {
    return 0
  }
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ')
  const own = Number(fields[11]) + Number(fields[12])
  return (children ? own + Number(fields[13]) + Number(fields[14]) : own) / CLOCK_TICKS_PER_S
}

/** A temp dir removed on cleanup (and by the returned function). */
export function removeLater(dir: string): () => void {
  const remove = (): void => rmSync(dir, { recursive: true, force: true })
  const forget = onCleanup(remove)
  return () => {
    forget()
    remove()
  }
}
