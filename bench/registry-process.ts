/**
 * Registries under test for `npm run bench:registry`, each a set of front-end
 * processes the load is spread over. Today there is one kind: the SQLite
 * registry in one child process (registry-child.ts). PostgreSQL with 1 or 3
 * front ends (issue 14) will be another `start…` function returning the same
 * `RegistryUnderTest`: several addresses and pids; the bench needs nothing else.
 *
 * Also: CPU seconds of a process from /proc/<pid>/stat, and a cleanup list
 * that runs on normal exit, on errors and on Ctrl-C / SIGTERM.
 */
import { fork, type ChildProcess } from 'node:child_process'
import { readFileSync, rmSync, statSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { join } from 'node:path'
import type { RegistryAddress } from './registry-load.js'

export interface RegistryUnderTest {
  /** For the report, e.g. "SQLite, 1 front end". */
  label: string
  addresses: RegistryAddress[]
  /** Every process serving the registry (front ends, and later the database). */
  pids: number[]
  /** Bytes the store takes on disk now, by file. */
  storeBytes(): Record<string, number>
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

/** The SQLite registry (src/registry/start.ts) in one child process, store in `dir`. */
export async function startSqliteRegistry(dir: string): Promise<RegistryUnderTest> {
  const storePath = join(dir, 'registry.db')
  const childPath = fileURLToPath(new URL('./registry-child.js', import.meta.url))
  // PILOT_REGBENCH_CHILD_ARGS: Node flags for the registry, e.g. "--cpu-prof --cpu-prof-dir=/tmp/p".
  const execArgv = (process.env.PILOT_REGBENCH_CHILD_ARGS ?? '').split(' ').filter((a) => a !== '')
  const child = fork(childPath, [storePath], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv })
  const forget = onCleanup(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
  })
  const ready = await new Promise<{ host: string; port: number }>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('registry child did not start within 20 s')), 20_000)
    child.once('exit', (code) => {
      clearTimeout(timer)
      reject(new Error(`registry child exited with ${code} before listening`))
    })
    child.on('message', (m: { kind?: string; host?: string; port?: number }) => {
      if (m.kind === 'ready') {
        clearTimeout(timer)
        resolve({ host: m.host!, port: m.port! })
      }
    })
  }).catch((err: Error) => {
    child.kill('SIGKILL')
    forget()
    throw err
  })
  return {
    label: 'SQLite, 1 front end',
    addresses: [ready],
    pids: [child.pid!],
    storeBytes: () => {
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
    stats: async () => [await askStats(child)],
    close: async () => {
      await stopChild(child)
      forget()
    },
  }
}

function askStats(child: ChildProcess): Promise<{ stats: Record<string, unknown>; rss: number }> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('registry child did not answer stats within 10 s')), 10_000)
    const onMessage = (m: { kind?: string; stats?: Record<string, unknown>; rss?: number }): void => {
      if (m.kind !== 'stats') return
      clearTimeout(timer)
      child.off('message', onMessage)
      resolve({ stats: m.stats ?? {}, rss: m.rss ?? 0 })
    }
    child.on('message', onMessage)
    child.send({ kind: 'stats' })
  })
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  if (child.connected) child.send({ kind: 'stop' })
  else child.kill('SIGTERM')
  const timer = setTimeout(() => child.kill('SIGKILL'), 5_000)
  await exited
  clearTimeout(timer)
}

const CLOCK_TICKS_PER_S = 100 // getconf CLK_TCK on Linux/x86-64 and arm64

/** User + system CPU seconds of `pid` so far (fields 14 and 15 of /proc/<pid>/stat). */
export function cpuSeconds(pid: number): number {
  const text = readFileSync(`/proc/${pid}/stat`, 'utf8')
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ')
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_S
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
