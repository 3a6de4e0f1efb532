/**
 * Errors of the task service (`pilot-tun task ...`), with stable `PT_TASK_*`
 * codes; they cross the control socket as `{code, message, hint}`.
 */
import { PilotError } from '../../errors.js'

export const TaskErrorCode = {
  /** No task with that id (on that side). */
  NOT_FOUND: 'PT_TASK_NOT_FOUND',
  /** The task is not in a state that allows this (accept a finished task, results before execute...). */
  BAD_STATE: 'PT_TASK_BAD_STATE',
  /** Text that is not a task id. */
  BAD_ID: 'PT_TASK_BAD_ID',
  /** `task execute` with no accepted task waiting. */
  QUEUE_EMPTY: 'PT_TASK_QUEUE_EMPTY',
  /** The worker refused the task (its answer's message says why, e.g. the polo score). */
  REFUSED: 'PT_TASK_REFUSED',
  /** The peer did not answer on port 1003 in time, or answered with something that is no answer. */
  NO_ANSWER: 'PT_TASK_NO_ANSWER',
  /** Too many open tasks, or the results folder is full. */
  STORE_FULL: 'PT_TASK_STORE_FULL',
  /** A result or description over its limit. */
  TOO_LARGE: 'PT_TASK_TOO_LARGE',
  /** A results file that cannot be read. */
  FILE: 'PT_TASK_FILE',
  /** The daemon runs with --no-tasks. */
  DISABLED: 'PT_TASK_DISABLED',
} as const

export type TaskErrorCode = (typeof TaskErrorCode)[keyof typeof TaskErrorCode]

export class TaskError extends PilotError {
  constructor(code: TaskErrorCode, message: string, options: { hint?: string; cause?: unknown } = {}) {
    super(code, message, options)
  }
}
