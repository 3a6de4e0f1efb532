/**
 * `pilot-tun task submit|list|accept|decline|execute|send-results|queue`: the
 * task submission service on port 1003 (docs/wire.md §13.5), as the Go
 * reference's `pilotctl task ...`. The daemon does the work; these commands
 * only ask it over the control socket.
 */
import { resolve as resolvePath } from 'node:path'
import type { Argv, CommandModule } from 'yargs'
import type { TaskSummary } from '../../services/tasks/task-api.js'
import { withDaemon, withDaemonOptions, type DaemonClientArgs } from '../daemon-options.js'
import { PilotError } from '../../errors.js'
import { formatFields, formatTable, printResult } from '../output.js'

/** Submit and send-results wait for the peer (dial, then its answer). */
const NETWORK_CALL_TIMEOUT_MS = 45_000

interface SubmitArgs extends DaemonClientArgs {
  target: string
  task: string
}
interface IdArgs extends DaemonClientArgs {
  id: string
  justification?: string
  results?: string
  file?: string
}
interface ListArgs extends DaemonClientArgs {
  type?: 'received' | 'submitted'
}

const NODE = 'hostname | N:NNNN.HHHH.LLLL | node id | mapped IPv6'

function withId<T>(y: Argv<T>): Argv<IdArgs> {
  return withDaemonOptions(y).option('id', { type: 'string', demandOption: true, describe: 'task id (see `pilot-tun task list`)' }) as unknown as Argv<IdArgs>
}

export const taskCommand: CommandModule = {
  command: 'task <action>',
  describe: 'tasks between nodes (port 1003): submit, list, accept, decline, execute, send-results, queue, enable, disable',
  builder: (y) =>
    y
      .command<SubmitArgs>({
        command: 'submit <target>',
        describe: 'ask TARGET to do a task (it accepts tasks from nodes whose polo score is at least its own)',
        builder: (b) =>
          withDaemonOptions(b)
            .positional('target', { type: 'string', demandOption: true, describe: NODE })
            .option('task', { type: 'string', demandOption: true, describe: 'what to do (free text)' }) as unknown as Argv<SubmitArgs>,
        handler: async (args) => {
          const r = await withDaemon(args, (c) => c.call('task.submit', { target: args.target, description: args.task }, NETWORK_CALL_TIMEOUT_MS))
          printResult(args, r, (v) => `task ${v.task_id} submitted to ${v.target}: ${v.message}`)
        },
      })
      .command<ListArgs>({
        command: 'list',
        describe: 'tasks received (as worker) and submitted (to others), with their status',
        builder: (b) =>
          withDaemonOptions(b).option('type', { choices: ['received', 'submitted'] as const, describe: 'only one side' }) as unknown as Argv<ListArgs>,
        handler: async (args) => {
          const r = await withDaemon(args, (c) => c.call('task.list', { type: args.type ?? '' }))
          printResult(args, r, (v) => formatTaskList(v.tasks))
        },
      })
      .command<IdArgs>({
        command: 'accept',
        describe: 'accept a received task (it joins the queue; the submitter is told)',
        builder: (b) => withId(b),
        handler: async (args) => {
          const r = await withDaemon(args, (c) => c.call('task.accept', { id: args.id }, NETWORK_CALL_TIMEOUT_MS))
          printResult(args, r, (v) => `task ${v.task_id}: ${v.status}${v.notified ? '' : ' (the submitter could not be told)'}`)
        },
      })
      .command<IdArgs>({
        command: 'decline',
        describe: 'decline a received task (the submitter is told why)',
        builder: (b) => withId(b).option('justification', { type: 'string', default: '', describe: 'reason sent to the submitter' }) as Argv<IdArgs>,
        handler: async (args) => {
          const r = await withDaemon(args, (c) => c.call('task.decline', { id: args.id, justification: args.justification ?? '' }, NETWORK_CALL_TIMEOUT_MS))
          printResult(args, r, (v) => `task ${v.task_id}: ${v.status}${v.notified ? '' : ' (the submitter could not be told)'}`)
        },
      })
      .command<DaemonClientArgs>({
        command: 'execute',
        describe: 'start the accepted task at the head of the queue (marks it EXECUTING and prints it)',
        builder: (b) => withDaemonOptions(b),
        handler: async (args) => {
          const r = await withDaemon(args, (c) => c.call('task.execute', {}, NETWORK_CALL_TIMEOUT_MS))
          printResult(args, r, (v) =>
            formatFields([
              ['task', v.task_id],
              ['from', v.from],
              ['status', v.status],
              ['description', v.task_description],
            ]),
          )
        },
      })
      .command<IdArgs>({
        command: 'send-results',
        describe: 'send the result of an executed task to its submitter (text or a file)',
        builder: (b) =>
          withId(b)
            .option('results', { type: 'string', describe: 'the result as text' })
            .option('file', { type: 'string', describe: 'a file to send as the result' })
            .conflicts('results', 'file')
            .check((a) => {
              if ((a.results === undefined || a.results === '') && (a.file === undefined || a.file === '')) throw new PilotError('PT_CLI_USAGE', 'give --results TEXT or --file PATH', { hint: 'pilot-tun task send-results --id ID --results "..."' })
              return true
            }) as Argv<IdArgs>,
        handler: async (args) => {
          const file = args.file === undefined || args.file === '' ? '' : resolvePath(args.file)
          const r = await withDaemon(args, (c) => c.call('task.send_results', { id: args.id, results: args.results ?? '', file }, NETWORK_CALL_TIMEOUT_MS))
          printResult(args, r, (v) => `task ${v.task_id}: results sent to ${v.sent_to} (${v.sent_type}${v.filename === undefined ? '' : ` ${v.filename}, ${v.file_size} bytes`})`)
        },
      })
      .command<DaemonClientArgs>({
        command: 'queue',
        describe: 'accepted tasks waiting to be executed, oldest first',
        builder: (b) => withDaemonOptions(b),
        handler: async (args) => {
          const r = await withDaemon(args, (c) => c.call('task.queue', {}))
          printResult(args, r, (v) =>
            v.queue.length === 0 ? 'the queue is empty' : formatTable(['TASK', 'FROM', 'ACCEPTED', 'DESCRIPTION'], v.queue.map((q) => [q.task_id, q.from, q.accepted_at, short(q.description)])),
          )
        },
      })
      .command<DaemonClientArgs>({
        command: 'enable',
        describe: 'advertise at the registry that this node executes tasks (task_exec; as `pilotctl enable-tasks`)',
        builder: (b) => withDaemonOptions(b),
        handler: async (args) => {
          const r = await withDaemon(args, (c) => c.call('task.set_exec', { enabled: 1 }))
          printResult(args, r, (v) => `node ${v.node_id}: task_exec ${v.task_exec ? 'on' : 'off'}`)
        },
      })
      .command<DaemonClientArgs>({
        command: 'disable',
        describe: 'stop advertising task execution at the registry (port 1003 still takes tasks; --no-tasks closes it)',
        builder: (b) => withDaemonOptions(b),
        handler: async (args) => {
          const r = await withDaemon(args, (c) => c.call('task.set_exec', { enabled: 0 }))
          printResult(args, r, (v) => `node ${v.node_id}: task_exec ${v.task_exec ? 'on' : 'off'}`)
        },
      })
      .demandCommand(1, 'Name an action: submit, list, accept, decline, execute, send-results, queue, enable or disable.'),
  handler: () => {},
}

export function formatTaskList(tasks: TaskSummary[]): string {
  if (tasks.length === 0) return 'no tasks'
  const table = formatTable(
    ['TASK', 'SIDE', 'STATUS', 'FROM', 'TO', 'CREATED', 'DESCRIPTION'],
    tasks.map((t) => [t.task_id, t.category, t.status, t.from, t.to, t.created_at, short(t.description)]),
  )
  const results = tasks.filter((t) => t.result_path !== undefined).map((t) => `result of ${t.task_id}: ${t.result_path}`)
  return results.length === 0 ? table : `${table}\n\n${results.join('\n')}`
}

function short(text: string): string {
  const line = text.replace(/\s+/g, ' ')
  return line.length > 40 ? `${line.slice(0, 39)}…` : line
}
