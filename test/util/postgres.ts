/**
 * A throwaway PostgreSQL server for tests (issue 14): `initdb` into a fresh
 * temp dir, started with `pg_ctl` on a Unix socket in that dir only (no TCP
 * port, so tests never collide and nothing listens on the network), fsync on.
 * initdb refuses root, so as root it runs as `postgres` through `runuser`.
 * Absent PostgreSQL makes the tests skip with the reason; `stop()` stops the
 * server and deletes the dir, so nothing is left running or on disk.
 *
 * Never touches a system cluster: everything lives under the temp dir.
 */
import { execFile } from 'node:child_process'
import { accessSync, chownSync, constants, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'
import pgLib from 'pg'

const run = promisify(execFile)

export interface TestPostgres {
  /** `postgresql://postgres@/postgres?host=<dir>`: the socket in the temp dir. */
  readonly url: string
  readonly dir: string
  /** A URL for another database on the same server (created by `createDatabase`). */
  urlFor(database: string): string
  createDatabase(name: string): Promise<string>
  /** Bytes the database takes (pg_database_size). */
  databaseSize(name: string): Promise<number>
  /** The postmaster and its children now (for CPU accounting), empty when not running. */
  processes(): number[]
  /** Stops the server (fast shutdown); the data stays for `start()`. */
  halt(): Promise<void>
  /** Starts a halted or killed server again. */
  start(): Promise<void>
  /** halt() then start(). */
  restart(): Promise<void>
  /** SIGKILL the postmaster and its backends: a crash (start() recovers). */
  kill(): Promise<void>
  /** Stops the server and deletes the temp dir; idempotent. */
  stop(): Promise<void>
}

interface PgBin {
  initdb: string
  pgCtl: string
}

/** The newest /usr/lib/postgresql/N/bin with initdb and pg_ctl, else the ones on PATH. */
export function findPostgres(): PgBin | { skip: string } {
  const dirs: string[] = []
  try {
    const versions = readdirSync('/usr/lib/postgresql')
      .filter((v) => /^[0-9]+$/.test(v))
      .sort((a, b) => Number(b) - Number(a))
    for (const v of versions) dirs.push(`/usr/lib/postgresql/${v}/bin`)
  } catch {
    // not the Debian layout
  }
  dirs.push(...(process.env.PATH ?? '').split(':').filter((d) => d !== ''))
  for (const dir of dirs) {
    const bin = { initdb: path.join(dir, 'initdb'), pgCtl: path.join(dir, 'pg_ctl') }
    if (executable(bin.initdb) && executable(bin.pgCtl)) return bin
  }
  return { skip: 'PostgreSQL is not installed (no initdb/pg_ctl in /usr/lib/postgresql/*/bin or on PATH; Debian: apt-get install postgresql)' }
}

function executable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK)
    return true
  } catch {
    return false
  }
}

/** uid/gid of `postgres` when we are root (initdb refuses root), else null (run as ourselves). */
async function runAsUser(): Promise<{ uid: number; gid: number } | null | { skip: string }> {
  if (process.getuid?.() !== 0) return null
  try {
    const uid = Number((await run('id', ['-u', 'postgres'])).stdout.trim())
    const gid = Number((await run('id', ['-g', 'postgres'])).stdout.trim())
    return { uid, gid }
  } catch {
    return { skip: 'running as root and there is no `postgres` user to run initdb as' }
  }
}

export async function startTestPostgres(): Promise<TestPostgres | { skip: string }> {
  const bin = findPostgres()
  if ('skip' in bin) return bin
  const user = await runAsUser()
  if (user !== null && 'skip' in user) return user
  const dir = mkdtempSync(path.join(tmpdir(), 'pilot-pg-'))
  const data = path.join(dir, 'data')
  const log = path.join(dir, 'server.log')
  if (user !== null) chownSync(dir, user.uid, user.gid)
  const exec = async (file: string, args: string[]): Promise<void> => {
    const [cmd, argv] = user !== null ? ['runuser', ['-u', 'postgres', '--', file, ...args]] : [file, args]
    await run(cmd, argv, { env: { ...process.env, LC_ALL: 'C', LANG: 'C' }, timeout: 60_000 })
  }
  const options = `-c listen_addresses='' -c unix_socket_directories='${dir}' -c fsync=on -c max_connections=200 -c shared_buffers=32MB`
  const pgStart = (): Promise<void> => exec(bin.pgCtl, ['-D', data, '-l', log, '-w', '-t', '60', '-o', options, 'start'])
  const pgHalt = (): Promise<void> => exec(bin.pgCtl, ['-D', data, '-w', '-t', '60', '-m', 'fast', 'stop'])
  let running = false
  let removed = false
  const url = (database: string): string => `postgresql://postgres@localhost/${database}?host=${encodeURIComponent(dir)}`
  try {
    await exec(bin.initdb, ['-D', data, '-A', 'trust', '-U', 'postgres', '-E', 'UTF8', '--no-sync'])
    await pgStart()
    running = true
  } catch (err) {
    if (running) await pgHalt().catch(() => undefined)
    const tail = readTail(log)
    rmSync(dir, { recursive: true, force: true })
    throw new Error(`cannot start a test PostgreSQL: ${(err as Error).message}${tail}`)
  }
  const pg: TestPostgres = {
    url: url('postgres'),
    dir,
    urlFor: url,
    createDatabase: async (name) => {
      if (!/^[a-z_][a-z0-9_]*$/.test(name)) throw new Error(`bad database name ${name}`)
      const client = new pgLib.Client({ connectionString: url('postgres') })
      await client.connect()
      try {
        await client.query(`CREATE DATABASE ${name}`)
      } finally {
        await client.end()
      }
      return url(name)
    },
    databaseSize: async (name) => {
      const client = new pgLib.Client({ connectionString: url('postgres') })
      await client.connect()
      try {
        const r = await client.query('SELECT pg_database_size($1) AS size', [name])
        return Number((r.rows[0] as { size: string }).size)
      } finally {
        await client.end()
      }
    },
    processes: () => {
      const pid = postmasterPid(data)
      return pid === null ? [] : [pid, ...childrenOf(pid)]
    },
    halt: async () => {
      if (!running) return
      await pgHalt()
      running = false
    },
    start: async () => {
      if (running) return
      await pgStart()
      running = true
    },
    restart: async () => {
      await pg.halt()
      await pg.start()
    },
    kill: async () => {
      const pid = postmasterPid(data)
      if (pid === null) return
      const victims = [pid, ...childrenOf(pid)]
      for (const p of victims) {
        try {
          process.kill(p, 'SIGKILL')
        } catch {
          // already gone
        }
      }
      for (let i = 0; i < 100 && victims.some(alive); i++) await new Promise((r) => setTimeout(r, 50))
      running = false
    },
    stop: async () => {
      if (removed) return
      removed = true
      if (running) await pgHalt().catch(() => pg.kill())
      running = false
      rmSync(dir, { recursive: true, force: true })
    },
  }
  return pg
}

function readTail(log: string): string {
  try {
    return `\n${readFileSync(log, 'utf8').split('\n').slice(-10).join('\n')}`
  } catch {
    return ''
  }
}

function postmasterPid(data: string): number | null {
  try {
    const pid = Number(readFileSync(path.join(data, 'postmaster.pid'), 'utf8').split('\n')[0])
    return Number.isInteger(pid) && pid > 0 ? pid : null
  } catch {
    return null
  }
}

function childrenOf(pid: number): number[] {
  const out: number[] = []
  for (const entry of readdirSync('/proc')) {
    if (!/^[0-9]+$/.test(entry)) continue
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8')
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1])
      if (ppid === pid) out.push(Number(entry))
    } catch {
      // gone meanwhile
    }
  }
  return out
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}
