/**
 * The task submission service, port 1003 (docs/wire.md §13.5), both roles:
 *
 *  server   one frame per stream (trusted nodes only: the daemon's default
 *           for `listenStreams`), acted on; only a SUBMIT is answered; then
 *           the stream is closed.
 *             SUBMIT        → polo check (submitter's score ≥ ours, both asked
 *                             of the registry) → stored in received/ as NEW,
 *                             answer 200; else 400 with the reason.
 *             STATUS_UPDATE → our submitted task, from its worker only.
 *             SEND_RESULTS  → our submitted task, from its worker only: the
 *                             result is saved, the task COMPLETED, and the
 *                             scores updated (−1 us, +reward the worker).
 *  client   submit (SUBMIT, waits for the answer), and as worker accept,
 *           decline, execute (STATUS_UPDATE to the submitter's port 1003 on a
 *           new stream each) and send-results (SEND_RESULTS on its own
 *           stream: [G]'s CLI also writes a STATUS_UPDATE behind it on the
 *           same stream, which the [G] server never reads; the submitter sets
 *           COMPLETED from the results alone, so we send nothing more).
 *  timers   every 10 s (timers.ts): NEW for 1 min → CANCELLED; head of the
 *           queue for 1 h → EXPIRED and −1 for us. The submitter is told.
 *
 * Bounds: a frame ≤ 16 MiB, at most `maxInbound` streams read at once, each
 * must deliver its frame within `readTimeoutMs`; the store bounds the rest.
 */
import type { Duplex } from 'node:stream'
import { readFile, stat } from 'node:fs/promises'
import { basename } from 'node:path'
import { formatAddress, parseAddress } from '../../protocol/address.js'
import {
  TaskFrameDecoder,
  TaskFrameType,
  decodeTaskBody,
  encodeSendResults,
  encodeStatusUpdate,
  encodeSubmit,
  encodeSubmitResponse,
  formatTaskId,
  isTaskId,
  TASK_FIELD_LIMITS,
  type SendResults,
  type StatusUpdate,
  type SubmitRequest,
  type TaskMessage,
  type TaskStatus,
} from '../../protocol/task-frames.js'
import { nullLogger, type Logger } from '../../logger.js'
import { FINAL_STATUSES, TaskStore, notFound, parseTime, rfc3339, type TaskRecord, type TaskSide } from './task-store.js'
import { TaskTimers, queueOrder, NEW_TASK_CHECK_MS, type TimedTask, type TimerLimits } from './timers.js'
import { taskReward } from './reward.js'
import { TaskError, TaskErrorCode } from './task-errors.js'
import type { TaskCommand, TaskControl, TaskResults, TaskSummary } from './task-api.js'

export const TASK_PORT = 1003

/** A Pilot stream as this service uses it (the daemon's `PilotStream`). */
export interface TaskStream extends Duplex {
  readonly remoteAddress: { network: number; node: number }
}

export interface TaskServiceDeps {
  selfId: number
  store: TaskStore
  openStream(node: number, port: number): Promise<TaskStream>
  listenStreams(port: number, onStream: (stream: TaskStream) => void): void
  unlistenStreams(port: number): void
  registry: {
    getPoloScore(node: number): Promise<{ poloScore: number }>
    updatePoloScore(node: number, delta: number): Promise<{ poloScore: number }>
    setTaskExec?(node: number, enabled: boolean): Promise<{ taskExec: boolean }>
  }
  /** hostname | address | overlay IPv6 → node (the daemon's TargetResolver). */
  resolveTarget(target: string): Promise<{ node: number }>
  randomBytes(n: number): Uint8Array
  /** Wall clock, ms (stored timestamps are RFC 3339). */
  now?: () => number
  logger?: Logger
  readTimeoutMs?: number
  answerTimeoutMs?: number
  maxInbound?: number
  /** Timer period; 0 = no timer (tests call `tick`). */
  tickMs?: number
  /** The timers' limits (default 1 min for NEW, 1 h at the queue head). */
  timers?: Partial<TimerLimits>
  /** Largest file `send-results --file` reads. */
  maxResultFileBytes?: number
}

export interface TaskServiceStats {
  framesIn: number
  refused: number
  badFrames: number
  submitsAccepted: number
  submitsRefused: number
}

export class TaskService implements TaskControl {
  private readonly now: () => number
  private readonly logger: Logger
  private readonly timers: TaskTimers
  private readonly tickTimer: NodeJS.Timeout | null
  private inbound = 0
  private closed = false
  private chain: Promise<unknown> = Promise.resolve()
  private readonly st: TaskServiceStats = { framesIn: 0, refused: 0, badFrames: 0, submitsAccepted: 0, submitsRefused: 0 }

  constructor(private readonly d: TaskServiceDeps) {
    this.now = d.now ?? Date.now
    this.logger = (d.logger ?? nullLogger).child({ component: 'tasks' })
    this.timers = new TaskTimers(d.timers)
    d.listenStreams(TASK_PORT, (s) => this.accept(s))
    const tickMs = d.tickMs ?? NEW_TASK_CHECK_MS
    this.tickTimer = tickMs > 0 ? setInterval(() => void this.tick().catch((e: unknown) => this.logger.warn('task timers failed', { error: String(e) })), tickMs) : null
    this.tickTimer?.unref()
  }

  get selfAddress(): string {
    return formatAddress({ network: 0, node: this.d.selfId })
  }

  stats(): TaskServiceStats {
    return { ...this.st }
  }

  close(): void {
    if (this.closed) return
    this.closed = true
    if (this.tickTimer !== null) clearInterval(this.tickTimer)
    this.d.unlistenStreams(TASK_PORT)
  }

  // ───────────────────────── control ─────────────────────────

  async task<C extends TaskCommand>(c: C): Promise<TaskResults[C['op']]> {
    type R = TaskResults[C['op']]
    switch (c.op) {
      case 'submit':
        return (await this.submit(c.target, c.description)) as R
      case 'list':
        return { tasks: this.list(c.type) } as R
      case 'accept':
        return (await this.respond(c.id, 'ACCEPTED', 'Task accepted')) as R
      case 'decline':
        return (await this.respond(c.id, 'DECLINED', c.justification === '' ? 'Task declined' : c.justification)) as R
      case 'execute':
        return (await this.execute()) as R
      case 'send_results':
        return (await this.sendResults(c.id, c.results, c.file)) as R
      case 'queue':
        return { queue: this.queue() } as R
      case 'set_exec': {
        const set = this.d.registry.setTaskExec
        if (set === undefined) throw new TaskError(TaskErrorCode.DISABLED, 'this registry client cannot set task_exec')
        const r = await set.call(this.d.registry, this.d.selfId, c.enabled)
        return { node_id: this.d.selfId, task_exec: r.taskExec } as R
      }
      default:
        throw new TaskError(TaskErrorCode.BAD_STATE, 'unknown task command')
    }
  }

  list(type: TaskSide | null): TaskSummary[] {
    const sides: TaskSide[] = type === null ? ['received', 'submitted'] : [type]
    return sides.flatMap((side) =>
      this.d.store.list(side).map((t) => {
        const s: TaskSummary = {
          task_id: t.task_id,
          category: side,
          description: t.task_description,
          status: t.status,
          status_justification: t.status_justification,
          from: t.from,
          to: t.to,
          created_at: t.created_at,
        }
        if (t.accepted_at !== undefined) s.accepted_at = t.accepted_at
        if (t.result_file !== undefined) s.result_path = this.d.store.resultPath(t.result_file)
        return s
      }),
    )
  }

  queue(): TaskResults['queue']['queue'] {
    return queueOrder(this.timed()).map(({ rec }) => ({
      task_id: rec.task_id,
      description: rec.task_description,
      from: rec.from,
      created_at: rec.created_at,
      accepted_at: rec.accepted_at ?? rec.created_at,
    }))
  }

  async submit(target: string, description: string): Promise<TaskResults['submit']> {
    this.checkOpen()
    if (description.length === 0) throw new TaskError(TaskErrorCode.TOO_LARGE, 'the task description is empty', { hint: 'pass --task "what to do"' })
    if (description.length > TASK_FIELD_LIMITS.description) {
      throw new TaskError(TaskErrorCode.TOO_LARGE, `the task description is longer than ${TASK_FIELD_LIMITS.description} characters`)
    }
    const node = /^[0-9]+$/.test(target.trim()) ? Number(target.trim()) : (await this.d.resolveTarget(target)).node
    const to = formatAddress({ network: 0, node })
    const req: SubmitRequest = { task_id: formatTaskId(this.d.randomBytes(16)), task_description: description, from_addr: this.selfAddress, to_addr: to }
    this.d.store.checkRoom('submitted')
    const created = this.now()
    const stream = await this.d.openStream(node, TASK_PORT)
    let answer: TaskMessage
    try {
      stream.write(encodeSubmit(req))
      answer = await readOneFrame(stream, this.d.answerTimeoutMs ?? 15_000)
    } catch (err) {
      throw new TaskError(TaskErrorCode.NO_ANSWER, `no answer from ${to} on port ${TASK_PORT}: ${(err as Error).message}`, {
        hint: 'the node may run without the task service; check `pilot-tun ping` to it',
        cause: err,
      })
    } finally {
      stream.end()
      setTimeout(() => stream.destroy(), 2000).unref()
    }
    if (!('answer' in answer) || answer.answer.task_id !== req.task_id) {
      throw new TaskError(TaskErrorCode.NO_ANSWER, `${to} answered the submit with something that is not its answer`)
    }
    const { status, message } = answer.answer
    const result: TaskResults['submit'] = { task_id: req.task_id, target: to, node_id: node, status, message, accepted: status === 200, task: description }
    if (status !== 200) {
      throw new TaskError(TaskErrorCode.REFUSED, `${to} refused the task: ${message || `status ${status}`}`, {
        hint: message.startsWith('Polo score') ? 'a worker takes tasks only from nodes whose polo score is at least its own' : undefined,
      })
    }
    await this.serial(() =>
      this.d.store.add('submitted', {
        task_id: req.task_id,
        task_description: description,
        created_at: rfc3339(created),
        status: 'NEW',
        status_justification: 'A new task was created',
        from: this.selfAddress,
        to,
      }),
    )
    return result
  }

  /** accept / decline: a received NEW task. */
  private async respond(id: string, status: 'ACCEPTED' | 'DECLINED', justification: string): Promise<TaskResults['accept']> {
    const rec = await this.serial(async () => {
      const t = this.received(id)
      if (t.status !== 'NEW') throw badState(t, status === 'ACCEPTED' ? 'accept' : 'decline')
      const now = this.now()
      return this.d.store.update('received', t.task_id, {
        status,
        status_justification: justification,
        accepted_at: rfc3339(now),
        time_idle_ms: Math.max(0, now - (parseTime(t.created_at) ?? now)),
      })
    })
    const notified = await this.notify(rec, status, justification)
    const out: TaskResults['accept'] = { task_id: rec.task_id, status, message: status === 'ACCEPTED' ? 'Task accepted' : 'Task declined', notified }
    if (status === 'DECLINED') out.justification = justification
    return out
  }

  async execute(): Promise<TaskResults['execute']> {
    const rec = await this.serial(async () => {
      const head = queueOrder(this.timed())[0]
      if (head === undefined) throw new TaskError(TaskErrorCode.QUEUE_EMPTY, 'no accepted tasks to execute', { hint: 'accept one first: `pilot-tun task accept --id ID`' })
      const now = this.now()
      return this.d.store.update('received', head.task_id, {
        status: 'EXECUTING',
        status_justification: 'Task execution started',
        execute_started_at: rfc3339(now),
        time_staged_ms: Math.max(0, now - (head.acceptedMs ?? now)),
      })
    })
    const notified = await this.notify(rec, 'EXECUTING', 'Task execution started')
    return { task_id: rec.task_id, task_description: rec.task_description, from: rec.from, status: 'EXECUTING', notified }
  }

  async sendResults(id: string, text: string | null, file: string | null): Promise<TaskResults['send_results']> {
    this.checkOpen()
    if ((text === null) === (file === null)) throw new TaskError(TaskErrorCode.BAD_STATE, 'give exactly one of --results TEXT and --file PATH')
    const t = this.received(id)
    if (t.status !== 'EXECUTING' && t.status !== 'ACCEPTED') throw badState(t, 'send results for')
    const now = this.now()
    const started = parseTime(t.execute_started_at)
    const msg: SendResults = {
      task_id: t.task_id,
      result_type: text === null ? 'file' : 'text',
      completed_at: new Date(now).toISOString(),
      time_idle_ms: t.time_idle_ms ?? 0,
      time_staged_ms: t.time_staged_ms ?? 0,
      time_cpu_ms: started === null ? 0 : Math.max(0, now - started),
    }
    if (text !== null) msg.result_text = text
    else {
      msg.file_data = await this.readResultFile(file!)
      msg.filename = basename(file!)
    }
    const node = nodeOf(t.from)
    await this.deliver(node, encodeSendResults(msg))
    await this.serial(() => this.d.store.update('received', t.task_id, { status: 'SUCCEEDED', status_justification: 'Results sent successfully', time_cpu_ms: msg.time_cpu_ms }))
    const out: TaskResults['send_results'] = {
      task_id: t.task_id,
      status: 'SUCCEEDED',
      sent_to: t.from,
      sent_type: msg.result_type,
      reward_estimate: taskReward({ idleMs: msg.time_idle_ms!, stagedMs: msg.time_staged_ms!, cpuMs: msg.time_cpu_ms! }),
    }
    if (msg.filename !== undefined) {
      out.filename = msg.filename
      out.file_size = msg.file_data!.length
    }
    return out
  }

  // ───────────────────────── timers ─────────────────────────

  /** Applies what the timers say is due at `now` (the interval calls this; tests too). */
  async tick(now = this.now()): Promise<void> {
    if (this.closed) return
    for (const action of this.timers.tick(this.timed().map((x) => x), now)) {
      const rec = await this.serial(async () => {
        const t = this.d.store.get('received', action.task_id)
        if (t === undefined) return null
        if (action.kind === 'cancel' && t.status !== 'NEW') return null
        if (action.kind === 'expire' && t.status !== 'ACCEPTED') return null
        // As [G]: a cancelled task records when it was given up on, like an answer.
        return action.kind === 'cancel'
          ? this.d.store.update('received', t.task_id, {
              status: 'CANCELLED',
              status_justification: 'Task cancelled: no response within 1 minute',
              accepted_at: rfc3339(now),
              time_idle_ms: Math.max(0, now - (parseTime(t.created_at) ?? now)),
            })
          : this.d.store.update('received', t.task_id, { status: 'EXPIRED', status_justification: 'Task expired: waited at the head of the queue for over 1 hour' })
      })
      if (rec === null) continue
      this.logger.info('task timed out', { task_id: rec.task_id, status: rec.status })
      if (rec.status === 'EXPIRED') {
        await this.d.registry.updatePoloScore(this.d.selfId, -1).catch((e: unknown) => this.logger.warn('polo score update failed', { error: String(e) }))
      }
      void this.notify(rec, rec.status, rec.status_justification)
    }
  }

  // ───────────────────────── server ─────────────────────────

  private accept(stream: TaskStream): void {
    if (this.closed || this.inbound >= (this.d.maxInbound ?? 32)) {
      this.st.refused++
      stream.destroy()
      return
    }
    this.inbound++
    const remote = stream.remoteAddress.node
    stream.on('error', () => {})
    // Acted on: a clean close (FIN), which tells a pilot-tun sender the frame was taken. A frame
    // that could not be read or acted on (bad bytes, a result that cannot be saved): reset.
    readOneFrame(stream, this.d.readTimeoutMs ?? 30_000)
      .then(async (msg) => {
        this.st.framesIn++
        const answer = await this.handle(remote, msg)
        if (answer !== null) stream.write(answer)
        stream.end()
        setTimeout(() => stream.destroy(), 5000).unref()
      })
      .catch((err: unknown) => {
        this.st.badFrames++
        this.logger.debug('task frame refused', { node: remote, error: String(err) })
        stream.destroy()
      })
      .finally(() => {
        this.inbound--
      })
  }

  /** Acts on one frame from `remote`; returns the answer to write (SUBMIT only). */
  async handle(remote: number, msg: TaskMessage): Promise<Buffer | null> {
    if (msg.type === TaskFrameType.SUBMIT) {
      if (!('submit' in msg)) return null
      const r = await this.onSubmit(remote, msg.submit)
      if (r.status === 200) this.st.submitsAccepted++
      else this.st.submitsRefused++
      return encodeSubmitResponse({ task_id: msg.submit.task_id, ...r })
    }
    if (msg.type === TaskFrameType.STATUS_UPDATE) await this.onStatus(remote, msg.update)
    else await this.onResults(remote, msg.results)
    return null
  }

  private async onSubmit(remote: number, s: SubmitRequest): Promise<{ status: number; message: string }> {
    if (nodeOf(s.from_addr) !== remote) return { status: 400, message: 'from_addr is not the sending node' }
    if (nodeOf(s.to_addr) !== this.d.selfId) return { status: 400, message: 'to_addr is not this node' }
    let submitter: number
    let receiver: number
    try {
      ;[submitter, receiver] = await Promise.all([
        this.d.registry.getPoloScore(remote).then((r) => r.poloScore),
        this.d.registry.getPoloScore(this.d.selfId).then((r) => r.poloScore),
      ])
    } catch (err) {
      this.logger.warn('polo score check failed', { node: remote, error: String(err) })
      return { status: 400, message: 'Failed to verify polo score' }
    }
    if (submitter < receiver) return { status: 400, message: `Polo score too low: submitter=${submitter}, receiver=${receiver}` }
    try {
      await this.serial(() =>
        this.d.store.add('received', {
          task_id: s.task_id,
          task_description: s.task_description,
          created_at: rfc3339(this.now()),
          status: 'NEW',
          status_justification: 'A new task was created',
          from: formatAddress({ network: 0, node: remote }),
          to: this.selfAddress,
        }),
      )
    } catch (err) {
      return { status: 400, message: err instanceof TaskError ? err.message : 'Failed to store the task' }
    }
    this.logger.info('task received', { task_id: s.task_id, from: remote })
    return { status: 200, message: 'Task received with status NEW' }
  }

  private async onStatus(remote: number, u: StatusUpdate): Promise<void> {
    // Completion comes with the results; NEW is where a task starts. Neither is taken from a peer.
    if (u.status === 'NEW' || u.status === 'COMPLETED' || u.status === 'SUCCEEDED') return
    await this.serial(async () => {
      const t = this.d.store.get('submitted', u.task_id)
      if (t === undefined || nodeOf(t.to) !== remote || FINAL_STATUSES.has(t.status)) return
      await this.d.store.update('submitted', t.task_id, { status: u.status, status_justification: u.justification })
      this.logger.info('task status updated', { task_id: t.task_id, status: u.status })
    })
  }

  private async onResults(remote: number, r: SendResults): Promise<void> {
    const done = await this.serial(async () => {
      const t = this.d.store.get('submitted', r.task_id)
      if (t === undefined || nodeOf(t.to) !== remote || FINAL_STATUSES.has(t.status)) return false
      const name = await this.d.store.saveResult(
        t.task_id,
        r.result_type === 'text' ? { text: r.result_text ?? '' } : { filename: r.filename ?? 'result.bin', data: r.file_data ?? Buffer.alloc(0) },
      )
      await this.d.store.update('submitted', t.task_id, { status: 'COMPLETED', status_justification: 'Task completed with results', result_file: name })
      return true
    })
    if (!done) return
    const reward = taskReward({ idleMs: r.time_idle_ms ?? 0, stagedMs: r.time_staged_ms ?? 0, cpuMs: r.time_cpu_ms ?? 0 })
    this.logger.info('task results received', { task_id: r.task_id, reward })
    try {
      await this.d.registry.updatePoloScore(this.d.selfId, -1)
      await this.d.registry.updatePoloScore(remote, reward)
    } catch (err) {
      this.logger.warn('polo score update failed', { task_id: r.task_id, error: String(err) })
    }
  }

  // ───────────────────────── helpers ─────────────────────────

  private received(id: string): TaskRecord {
    const key = id.trim().toLowerCase()
    if (!isTaskId(key)) throw new TaskError(TaskErrorCode.BAD_ID, `"${id}" is not a task id`, { hint: 'ids look like 0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0; see `pilot-tun task list`' })
    const t = this.d.store.get('received', key)
    if (t === undefined) throw notFound(key, 'received')
    return t
  }

  private timed(): (TimedTask & { rec: TaskRecord })[] {
    return this.d.store.list('received').map((rec) => ({
      task_id: rec.task_id,
      status: rec.status,
      createdMs: parseTime(rec.created_at) ?? 0,
      acceptedMs: parseTime(rec.accepted_at),
      rec,
    }))
  }

  /** STATUS_UPDATE to the task's submitter on a new stream; false (logged) when it did not get there. */
  private async notify(t: TaskRecord, status: TaskStatus, justification: string): Promise<boolean> {
    try {
      await this.deliver(nodeOf(t.from), encodeStatusUpdate({ task_id: t.task_id, status, justification }))
      return true
    } catch (err) {
      this.logger.warn('task status update not delivered', { task_id: t.task_id, status, error: String(err) })
      return false
    }
  }

  /**
   * Writes one frame on a new stream to `node`:1003 and waits until the peer
   * closes its side (servers close once they have acted on the frame); only
   * then our FIN: [G] drops data it has not read yet when a FIN arrives
   * (docs/wire.md §6.12).
   */
  private async deliver(node: number, frame: Buffer): Promise<void> {
    this.checkOpen()
    const stream = await this.d.openStream(node, TASK_PORT)
    const timeoutMs = this.d.answerTimeoutMs ?? 15_000
    try {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new TaskError(TaskErrorCode.NO_ANSWER, `node ${node} did not take the frame within ${timeoutMs} ms`)), timeoutMs)
        const done = (err?: Error): void => {
          clearTimeout(timer)
          if (err) reject(err)
          else resolve()
        }
        stream.once('error', done)
        stream.once('end', () => done())
        stream.resume()
        stream.write(frame)
      })
    } finally {
      stream.end()
      setTimeout(() => stream.destroy(), 2000).unref()
    }
  }

  private async readResultFile(path: string): Promise<Buffer> {
    const max = this.d.maxResultFileBytes ?? 12 * 1024 * 1024
    try {
      const st = await stat(path)
      if (!st.isFile()) throw new Error('not a regular file')
      if (st.size > max) throw new TaskError(TaskErrorCode.TOO_LARGE, `${path} is ${st.size} bytes; results may be at most ${max}`)
      return await readFile(path)
    } catch (err) {
      if (err instanceof TaskError) throw err
      throw new TaskError(TaskErrorCode.FILE, `cannot read ${path}: ${(err as Error).message}`, { cause: err })
    }
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.chain.then(fn, fn)
    this.chain = run.catch(() => {})
    return run
  }

  private checkOpen(): void {
    if (this.closed) throw new TaskError(TaskErrorCode.DISABLED, 'the task service is closed')
  }
}

function nodeOf(addressText: string): number {
  try {
    return parseAddress(addressText).node
  } catch {
    return -1
  }
}

function badState(t: TaskRecord, what: string): TaskError {
  return new TaskError(TaskErrorCode.BAD_STATE, `cannot ${what} task ${t.task_id}: it is ${t.status}`, { hint: 'see `pilot-tun task list --type received`' })
}

/** Reads the first whole frame of a stream (bounded by the decoder and `timeoutMs`). */
export function readOneFrame(stream: Duplex, timeoutMs: number): Promise<TaskMessage> {
  return new Promise((resolve, reject) => {
    const decoder = new TaskFrameDecoder()
    const finish = (err: Error | null, msg?: TaskMessage): void => {
      clearTimeout(timer)
      stream.off('data', onData)
      stream.off('end', onEnd)
      stream.off('error', onError)
      if (err !== null) reject(err)
      else resolve(msg!)
    }
    const onData = (chunk: Buffer): void => {
      try {
        const frames = decoder.push(chunk)
        if (frames.length > 0) finish(null, decodeTaskBody(frames[0]!.type, frames[0]!.body))
      } catch (err) {
        finish(err as Error)
      }
    }
    const onEnd = (): void => finish(new Error(`the stream ended after ${decoder.buffered} bytes, before a whole frame`))
    const onError = (err: Error): void => finish(err)
    const timer = setTimeout(() => finish(new Error(`no whole frame within ${timeoutMs} ms`)), timeoutMs)
    stream.on('data', onData)
    stream.once('end', onEnd)
    stream.once('error', onError)
  })
}
