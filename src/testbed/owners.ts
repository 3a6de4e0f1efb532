/**
 * Who owns which test bed, and the removal of test beds whose owner died.
 *
 * Every test bed has an id (6 hex digits) that appears in all its names
 * (`ptb-<id>-…`) and an owner record /run/pilot-tun-testbed/<id>.json written
 * *before* the first namespace exists. The record holds the owner's PID and
 * that process's start time (field 22 of /proc/PID/stat), so a recycled PID
 * does not keep a dead run's namespaces alive. A record marked `detached`
 * (`cli.js up --detach`) belongs to a person and is only removed by `down`.
 *
 * A namespace or link with the prefix whose id has no live record is stale:
 * the processes inside it are killed (by PID, from `ip netns pids`), then it
 * is deleted. Nothing without the `ptb-` prefix is ever touched.
 */
import { mkdirSync, openSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync, closeSync } from 'node:fs'
import { join } from 'node:path'
import { run } from './run.js'
import type { NatKind, TopologyLayout } from './plan.js'

export const NAME_PREFIX = 'ptb-'
export const OWNER_DIR = '/run/pilot-tun-testbed'

export interface OwnerRecord {
  id: string
  pid: number
  /** Start time of `pid` in clock ticks since boot (/proc/PID/stat field 22). */
  pidStart: number
  /** Kept until `down`, whatever happens to `pid`. */
  detached: boolean
  createdAt: string
  /** The resolved layout, so `Topology.attach(id)` can drive a test bed another process built. */
  layout: TopologyLayout | null
  /** Current knobs, so a process that attaches sees what another one set. */
  state?: { loss: number; duplication: number; nat: Record<string, NatKind> }
}

export interface CleanupReport {
  namespaces: string[]
  links: string[]
  owners: string[]
}

/** Start time of a live process, or null when it does not exist. */
export function processStart(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    // fields[0] is field 3 (state); starttime is field 22.
    const start = Number(fields[19])
    return Number.isFinite(start) ? start : null
  } catch {
    return null
  }
}

/** True when the record's owner still runs (same PID, same start time) or the record is detached. */
export function ownerAlive(rec: OwnerRecord): boolean {
  if (rec.detached) return true
  return processStart(rec.pid) === rec.pidStart
}

function ownerPath(id: string): string {
  return join(OWNER_DIR, `${id}.json`)
}

/** Atomically claims `id`; false if another run holds it. */
export function claimOwner(rec: OwnerRecord): boolean {
  mkdirSync(OWNER_DIR, { recursive: true, mode: 0o755 })
  let fd: number
  try {
    fd = openSync(ownerPath(rec.id), 'wx', 0o644)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false
    throw err
  }
  try {
    writeFileSync(fd, JSON.stringify(rec, null, 2) + '\n')
  } finally {
    closeSync(fd)
  }
  return true
}

export function writeOwner(rec: OwnerRecord): void {
  mkdirSync(OWNER_DIR, { recursive: true, mode: 0o755 })
  const tmp = `${ownerPath(rec.id)}.${process.pid}.tmp`
  writeFileSync(tmp, JSON.stringify(rec, null, 2) + '\n', { mode: 0o644 })
  renameSync(tmp, ownerPath(rec.id))
}

export function readOwner(id: string): OwnerRecord | null {
  try {
    return JSON.parse(readFileSync(ownerPath(id), 'utf8')) as OwnerRecord
  } catch {
    return null
  }
}

export function removeOwner(id: string): void {
  rmSync(ownerPath(id), { force: true })
}

export function listOwners(): OwnerRecord[] {
  let names: string[]
  try {
    names = readdirSync(OWNER_DIR)
  } catch {
    return []
  }
  const out: OwnerRecord[] = []
  for (const n of names) {
    if (!/^[0-9a-f]{6}\.json$/.test(n)) continue
    const rec = readOwner(n.slice(0, 6))
    if (rec !== null) out.push(rec)
  }
  return out
}

/** The id inside a prefixed name (`ptb-1a2b3c-hub` -> `1a2b3c`), or null for names that are not ours. */
export function idOfName(name: string): string | null {
  const m = /^ptb-([0-9a-f]{6})-/.exec(name)
  return m === null ? null : m[1]!
}

/** Every namespace with our prefix (`ip netns list`). */
export async function listPrefixedNamespaces(): Promise<string[]> {
  const r = await run(['ip', 'netns', 'list'])
  return r.stdout
    .split('\n')
    .map((l) => l.trim().split(/\s+/)[0] ?? '')
    .filter((n) => n.startsWith(NAME_PREFIX))
}

/** Links with our prefix in the root namespace (there should be none: veths are created inside namespaces). */
export async function listPrefixedRootLinks(): Promise<string[]> {
  const r = await run(['ip', '-o', 'link', 'show'])
  const out: string[] = []
  for (const line of r.stdout.split('\n')) {
    const m = /^\d+:\s+([^:@\s]+)/.exec(line)
    if (m !== null && m[1]!.startsWith(NAME_PREFIX)) out.push(m[1]!)
  }
  return out
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))

/**
 * Kills the processes inside a namespace of ours (SIGTERM, then SIGKILL after
 * `graceMs`) and deletes it. Already gone counts as success.
 */
export async function removeNamespace(ns: string, graceMs = 300): Promise<void> {
  if (!ns.startsWith(NAME_PREFIX)) throw new Error(`refusing to remove ${ns}: not a test-bed namespace`)
  const pidsOf = async (): Promise<number[]> => {
    const r = await run(['ip', 'netns', 'pids', ns], { allowFailure: true })
    return r.code !== 0 ? [] : r.stdout.split(/\s+/).filter((s) => /^\d+$/.test(s)).map(Number).filter((p) => p !== process.pid)
  }
  let pids = await pidsOf()
  if (pids.length > 0) {
    for (const p of pids) signal(p, 'SIGTERM')
    const deadline = Date.now() + graceMs
    while (Date.now() < deadline && pids.some((p) => processStart(p) !== null)) await sleep(20)
    pids = await pidsOf()
    for (const p of pids) signal(p, 'SIGKILL')
  }
  const r = await run(['ip', 'netns', 'delete', ns], { allowFailure: true })
  if (r.code !== 0 && !/No such file|not found|does not exist/i.test(r.stderr)) {
    throw new Error(`\`ip netns delete ${ns}\` failed: ${r.stderr.trim()}`)
  }
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig)
  } catch {
    // already gone
  }
}

/**
 * Removes every prefixed namespace and root link whose id has no live owner,
 * and the dead owners' records. Safe to run concurrently with other runs: a
 * live run's names are never touched, and "already gone" is success.
 */
export async function cleanupStale(): Promise<CleanupReport> {
  const report: CleanupReport = { namespaces: [], links: [], owners: [] }
  // List names before reading the records: a run writes its record before its
  // first namespace, so every name seen here has its record on disk already.
  const allNamespaces = await listPrefixedNamespaces()
  const allLinks = await listPrefixedRootLinks()
  const live = new Set<string>()
  const dead: string[] = []
  for (const rec of listOwners()) {
    if (ownerAlive(rec)) live.add(rec.id)
    else dead.push(rec.id)
  }
  const isStale = (name: string): boolean => {
    const id = idOfName(name)
    // A prefixed name we cannot parse is not from this tool's current naming; leave it alone.
    return id !== null && !live.has(id)
  }
  const namespaces = allNamespaces.filter(isStale)
  await Promise.all(namespaces.map((ns) => removeNamespace(ns)))
  report.namespaces.push(...namespaces)
  for (const link of allLinks.filter(isStale)) {
    const r = await run(['ip', 'link', 'delete', link], { allowFailure: true })
    if (r.code === 0) report.links.push(link)
  }
  for (const id of dead) {
    removeOwner(id)
    report.owners.push(id)
  }
  return report
}
