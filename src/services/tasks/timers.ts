/**
 * The task timers of docs/wire.md §13.5 as a pure function of the tasks and
 * `now` (wall-clock milliseconds, as the stored timestamps are):
 *
 *  - a received task still NEW one minute after it arrived is CANCELLED
 *    ([G] looks every 10 s);
 *  - an ACCEPTED task that has been at the head of the queue (the oldest
 *    accepted one) for over an hour is EXPIRED, and its worker loses a point
 *    ([G] looks every 30 s).
 *
 * `TaskTimers` only remembers since when the current head has been the head;
 * the caller applies the actions it returns.
 */
export const NEW_TASK_TIMEOUT_MS = 60_000
export const NEW_TASK_CHECK_MS = 10_000
export const QUEUE_HEAD_TIMEOUT_MS = 60 * 60_000
export const QUEUE_HEAD_CHECK_MS = 30_000

export interface TimedTask {
  task_id: string
  status: string
  /** When it arrived (ms). */
  createdMs: number
  /** When it was accepted (ms), for ACCEPTED tasks. */
  acceptedMs: number | null
}

export type TimerAction = { kind: 'cancel'; task_id: string } | { kind: 'expire'; task_id: string }

export interface TimerLimits {
  newTimeoutMs: number
  headTimeoutMs: number
}

/** The timers and how often they are looked at (the daemon's `timing.tasks`). */
export interface TaskTiming extends TimerLimits {
  tickMs: number
}

/** The accepted tasks in queue order: oldest acceptance first, task id breaking ties. */
export function queueOrder<T extends TimedTask>(tasks: Iterable<T>): T[] {
  return [...tasks]
    .filter((t) => t.status === 'ACCEPTED')
    .sort((a, b) => (a.acceptedMs ?? a.createdMs) - (b.acceptedMs ?? b.createdMs) || (a.task_id < b.task_id ? -1 : 1))
}

export class TaskTimers {
  private head: { task_id: string; since: number } | null = null
  private readonly limits: TimerLimits

  constructor(limits: Partial<TimerLimits> = {}) {
    this.limits = { newTimeoutMs: NEW_TASK_TIMEOUT_MS, headTimeoutMs: QUEUE_HEAD_TIMEOUT_MS, ...limits }
  }

  /** What is due at `now` for the worker's received tasks. */
  tick(received: Iterable<TimedTask>, now: number): TimerAction[] {
    const all = [...received]
    const out: TimerAction[] = []
    for (const t of all) {
      if (t.status === 'NEW' && now - t.createdMs >= this.limits.newTimeoutMs) out.push({ kind: 'cancel', task_id: t.task_id })
    }
    const first = queueOrder(all)[0]
    if (first === undefined) {
      this.head = null
    } else {
      if (this.head?.task_id !== first.task_id) {
        // It is the head from now on (a restart starts the hour again: the moment is not stored).
        this.head = { task_id: first.task_id, since: now }
      }
      if (now - this.head.since > this.limits.headTimeoutMs) {
        out.push({ kind: 'expire', task_id: first.task_id })
        this.head = null
      }
    }
    return out
  }
}
