/**
 * The task store: one JSON file per task, in the layout the Go reference
 * keeps under `~/.pilot/tasks/` (so its tooling, pointed at our folder, reads
 * ours):
 *
 *   <dir>/received/<task_id>.json    tasks other nodes gave us (we are the worker)
 *   <dir>/submitted/<task_id>.json   tasks we gave others
 *   <dir>/results/<task_id>_result.txt        a text result we received
 *   <dir>/results/<task_id>_<filename>        a file result we received
 *
 * A task file (2-space indented JSON, fields in this order, optional ones
 * only when set):
 *   task_id, task_description, created_at (RFC 3339, seconds, UTC), status,
 *   status_justification, from, to, accepted_at?, time_idle_ms?,
 *   and pilot-tun's own: execute_started_at?, time_staged_ms?, time_cpu_ms?,
 *   result_file? (the results file name, on the submitter's side).
 *
 * Bounds: at most `maxTasks` tasks per side (the oldest finished one is
 * dropped to make room; when every task is live the new one is refused), a
 * result of at most `maxResultBytes`, and `maxResultsTotalBytes` for the
 * results folder. A peer's file name is reduced to a safe base name, so a
 * result can never land outside `results/`. Files are written to a temp
 * file and renamed, mode 0600; folders are 0700.
 */
import { mkdir, readdir, readFile, rename, stat, unlink, writeFile } from 'node:fs/promises'
import { basename, join } from 'node:path'
import { isTaskId, type TaskStatus } from '../../protocol/task-frames.js'
import { TaskError, TaskErrorCode } from './task-errors.js'

export type TaskSide = 'received' | 'submitted'

export interface TaskRecord {
  task_id: string
  task_description: string
  created_at: string
  status: TaskStatus
  status_justification: string
  from: string
  to: string
  accepted_at?: string
  time_idle_ms?: number
  execute_started_at?: string
  time_staged_ms?: number
  time_cpu_ms?: number
  result_file?: string
}

export interface TaskStoreLimits {
  maxTasks: number
  maxResultBytes: number
  maxResultsTotalBytes: number
}

export const DEFAULT_TASK_STORE_LIMITS: TaskStoreLimits = {
  maxTasks: 1000,
  maxResultBytes: 16 * 1024 * 1024,
  maxResultsTotalBytes: 512 * 1024 * 1024,
}

/** States after which nothing changes any more. */
export const FINAL_STATUSES: ReadonlySet<TaskStatus> = new Set(['DECLINED', 'COMPLETED', 'SUCCEEDED', 'CANCELLED', 'EXPIRED'])

/** RFC 3339 in UTC with whole seconds, as [G] writes it. */
export function rfc3339(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z')
}

export function parseTime(text: string | undefined): number | null {
  if (text === undefined) return null
  const ms = Date.parse(text)
  return Number.isFinite(ms) ? ms : null
}

/** A peer-chosen file name reduced to a harmless base name (never empty, never a dot file, ≤ 200 bytes). */
export function safeFileName(name: string): string {
  const base = basename(name.replace(/\\/g, '/'))
  let clean = base.replace(/[^A-Za-z0-9._-]/g, '_').replace(/^\.+/, '')
  if (clean.length > 200) clean = clean.slice(clean.length - 200)
  return clean === '' ? 'result.bin' : clean
}

const FIELD_ORDER: (keyof TaskRecord)[] = [
  'task_id', 'task_description', 'created_at', 'status', 'status_justification', 'from', 'to',
  'accepted_at', 'time_idle_ms', 'execute_started_at', 'time_staged_ms', 'time_cpu_ms', 'result_file',
]

function serialise(t: TaskRecord): string {
  const out: Record<string, unknown> = {}
  for (const k of FIELD_ORDER) if (t[k] !== undefined) out[k] = t[k]
  return JSON.stringify(out, null, 2)
}

function parseRecord(text: string): TaskRecord | null {
  let v: unknown
  try {
    v = JSON.parse(text)
  } catch {
    return null
  }
  if (typeof v !== 'object' || v === null) return null
  const o = v as Record<string, unknown>
  for (const k of ['task_id', 'task_description', 'created_at', 'status', 'from', 'to'] as const) if (typeof o[k] !== 'string') return null
  if (!isTaskId(o.task_id as string)) return null
  const t: TaskRecord = {
    task_id: o.task_id as string,
    task_description: o.task_description as string,
    created_at: o.created_at as string,
    status: o.status as TaskStatus,
    status_justification: typeof o.status_justification === 'string' ? o.status_justification : '',
    from: o.from as string,
    to: o.to as string,
  }
  for (const k of ['accepted_at', 'execute_started_at', 'result_file'] as const) if (typeof o[k] === 'string') t[k] = o[k] as string
  for (const k of ['time_idle_ms', 'time_staged_ms', 'time_cpu_ms'] as const) if (typeof o[k] === 'number') t[k] = o[k] as number
  return t
}

export class TaskStore {
  private readonly tasks: Record<TaskSide, Map<string, TaskRecord>> = { received: new Map(), submitted: new Map() }
  private resultsBytes = 0
  readonly limits: TaskStoreLimits

  private constructor(readonly dir: string, limits: Partial<TaskStoreLimits>) {
    this.limits = { ...DEFAULT_TASK_STORE_LIMITS, ...limits }
  }

  /** Opens (creating) the folders and loads the task files; unreadable files are skipped. */
  static async open(dir: string, limits: Partial<TaskStoreLimits> = {}): Promise<TaskStore> {
    const store = new TaskStore(dir, limits)
    for (const sub of ['received', 'submitted', 'results']) await mkdir(join(dir, sub), { recursive: true, mode: 0o700 })
    for (const side of ['received', 'submitted'] as const) {
      for (const name of (await readdir(join(dir, side))).sort()) {
        if (!name.endsWith('.json')) continue
        if (store.tasks[side].size >= store.limits.maxTasks) break
        const t = parseRecord(await readFile(join(dir, side, name), 'utf8').catch(() => ''))
        if (t !== null && `${t.task_id}.json` === name) store.tasks[side].set(t.task_id, t)
      }
    }
    for (const name of await readdir(join(dir, 'results'))) {
      store.resultsBytes += (await stat(join(dir, 'results', name)).catch(() => ({ size: 0 }))).size
    }
    return store
  }

  get(side: TaskSide, id: string): TaskRecord | undefined {
    const t = this.tasks[side].get(id)
    return t === undefined ? undefined : { ...t }
  }

  list(side: TaskSide): TaskRecord[] {
    return [...this.tasks[side].values()].map((t) => ({ ...t })).sort((a, b) => a.created_at.localeCompare(b.created_at) || a.task_id.localeCompare(b.task_id))
  }

  /** Throws PT_TASK_STORE_FULL when `add` on `side` would (every task there is live). */
  checkRoom(side: TaskSide): void {
    if (this.tasks[side].size < this.limits.maxTasks) return
    if (this.list(side).some((x) => FINAL_STATUSES.has(x.status))) return
    throw storeFull(this.limits.maxTasks, side)
  }

  /** Adds a new task; makes room by dropping the oldest finished one, or refuses with PT_TASK_STORE_FULL. */
  async add(side: TaskSide, t: TaskRecord): Promise<void> {
    const map = this.tasks[side]
    if (map.has(t.task_id)) throw new TaskError(TaskErrorCode.BAD_STATE, `task ${t.task_id} exists already`)
    if (map.size >= this.limits.maxTasks) {
      const victim = this.list(side).find((x) => FINAL_STATUSES.has(x.status))
      if (victim === undefined) {
        throw storeFull(this.limits.maxTasks, side)
      }
      await this.remove(side, victim.task_id)
    }
    map.set(t.task_id, { ...t })
    await this.write(side, t)
  }

  /** Changes a stored task; returns the new record. */
  async update(side: TaskSide, id: string, change: Partial<TaskRecord>): Promise<TaskRecord> {
    const old = this.tasks[side].get(id)
    if (old === undefined) throw notFound(id, side)
    const next: TaskRecord = { ...old, ...change, task_id: old.task_id }
    this.tasks[side].set(id, next)
    await this.write(side, next)
    return { ...next }
  }

  /** Writes a result we received (text or file bytes) under `results/`; returns the file name used. */
  async saveResult(id: string, result: { text: string } | { filename: string; data: Buffer }): Promise<string> {
    const name = 'text' in result ? `${id}_result.txt` : `${id}_${safeFileName(result.filename)}`
    const data = 'text' in result ? Buffer.from(result.text, 'utf8') : result.data
    if (data.length > this.limits.maxResultBytes) throw new TaskError(TaskErrorCode.TOO_LARGE, `result of ${data.length} bytes exceeds ${this.limits.maxResultBytes}`)
    if (this.resultsBytes + data.length > this.limits.maxResultsTotalBytes) {
      throw new TaskError(TaskErrorCode.STORE_FULL, `the results folder holds ${this.resultsBytes} bytes already`, { hint: `remove old files in ${join(this.dir, 'results')}` })
    }
    const path = join(this.dir, 'results', name)
    await atomicWrite(path, data)
    this.resultsBytes += data.length
    return name
  }

  resultPath(name: string): string {
    return join(this.dir, 'results', safeFileName(name))
  }

  private async remove(side: TaskSide, id: string): Promise<void> {
    this.tasks[side].delete(id)
    await unlink(join(this.dir, side, `${id}.json`)).catch(() => {})
  }

  private async write(side: TaskSide, t: TaskRecord): Promise<void> {
    if (!isTaskId(t.task_id)) throw new TaskError(TaskErrorCode.BAD_ID, `bad task id ${JSON.stringify(t.task_id)}`)
    await atomicWrite(join(this.dir, side, `${t.task_id}.json`), Buffer.from(serialise(t), 'utf8'))
  }
}

let tmpCounter = 0

async function atomicWrite(path: string, data: Buffer): Promise<void> {
  const tmp = `${path}.${process.pid}.${++tmpCounter}.tmp`
  await writeFile(tmp, data, { mode: 0o600 })
  await rename(tmp, path)
}

export function notFound(id: string, side?: TaskSide): TaskError {
  return new TaskError(TaskErrorCode.NOT_FOUND, `task not found: ${id}`, { hint: `see \`pilot-tun task list${side === undefined ? '' : ` --type ${side}`}\`` })
}

function storeFull(max: number, side: TaskSide): TaskError {
  return new TaskError(TaskErrorCode.STORE_FULL, `${max} ${side} tasks are open already`, { hint: 'finish or decline some with `pilot-tun task ...`' })
}
