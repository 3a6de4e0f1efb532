/**
 * What the control socket can ask of the task service (`pilot-tun task ...`).
 * Results are snake_case JSON, printed as-is with --json. Task statuses are
 * [G]'s strings (docs/wire.md §13.5).
 */
import type { TaskStatus } from '../../protocol/task-frames.js'

export type TaskCategory = 'received' | 'submitted'

export interface TaskSummary {
  task_id: string
  category: TaskCategory
  description: string
  status: TaskStatus
  status_justification: string
  from: string
  to: string
  created_at: string
  accepted_at?: string
  /** Submitted tasks with a result: where it was saved. */
  result_path?: string
}

export type TaskCommand =
  | { op: 'submit'; target: string; description: string }
  | { op: 'list'; type: TaskCategory | null }
  | { op: 'accept'; id: string }
  | { op: 'decline'; id: string; justification: string }
  | { op: 'execute' }
  | { op: 'send_results'; id: string; results: string | null; file: string | null }
  | { op: 'queue' }
  /** The registry's `task_exec` flag ([G] `enable-tasks` / `disable-tasks`): advertised only, port 1003 serves either way. */
  | { op: 'set_exec'; enabled: boolean }

export interface TaskSubmitResult {
  task_id: string
  target: string
  node_id: number
  status: number
  message: string
  accepted: boolean
  task: string
}

export interface TaskChangeResult {
  task_id: string
  status: TaskStatus
  message: string
  /** Whether the submitter got the status update on its port 1003. */
  notified: boolean
  justification?: string
}

export interface TaskExecuteResult {
  task_id: string
  task_description: string
  from: string
  status: 'EXECUTING'
  notified: boolean
}

export interface TaskSendResultsResult {
  task_id: string
  status: 'SUCCEEDED'
  sent_to: string
  sent_type: 'text' | 'file'
  filename?: string
  file_size?: number
  reward_estimate: number
}

export interface TaskQueueEntry {
  task_id: string
  description: string
  from: string
  created_at: string
  accepted_at: string
}

export interface TaskResults {
  submit: TaskSubmitResult
  list: { tasks: TaskSummary[] }
  accept: TaskChangeResult
  decline: TaskChangeResult
  execute: TaskExecuteResult
  send_results: TaskSendResultsResult
  queue: { queue: TaskQueueEntry[] }
  set_exec: { node_id: number; task_exec: boolean }
}

export interface TaskControl {
  /** Runs one `pilot-tun task ...` command; PT_TASK_* errors on failure. */
  task<C extends TaskCommand>(command: C): Promise<TaskResults[C['op']]>
}
