/**
 * `pilot-tun send-message`, `send-file`, `inbox`, `received`: the data
 * exchange service (port 1001) as the Go reference's pilotctl has it.
 * Messages land in the receiver's inbox, files in its received directory;
 * the receiver answers `ACK <TYPE> <n> bytes` (or `ERR …`, a PT_SERVICE_REFUSED).
 */
import { resolve as resolvePath } from 'node:path'
import type { Argv, CommandModule } from 'yargs'
import type { InboxListResult, ReceivedListResult, SendFileResult, SendMessageResult } from '../../services/api.js'
import { PilotError } from '../../errors.js'
import { withDaemon, withDaemonOptions, type DaemonClientArgs } from '../daemon-options.js'
import { formatBytes, formatTable, printResult } from '../output.js'

const NODE = 'hostname | N:NNNN.HHHH.LLLL | node id | mapped IPv6'

interface SendMessageArgs extends DaemonClientArgs {
  target: string
  data: string
  type: 'text' | 'json' | 'binary'
}

interface SendFileArgs extends DaemonClientArgs {
  target: string
  path: string
}

interface ClearArgs extends DaemonClientArgs {
  clear: boolean
}

/** How long the CLI waits for the receiver's ACK (a 16 MiB file over a slow path takes a while). */
const SEND_TIMEOUT_MS = 120_000
const FILE_TIMEOUT_MS = 600_000

export const sendMessageCommand: CommandModule<object, SendMessageArgs> = {
  command: 'send-message <target>',
  describe: 'send a message to a node\'s inbox (data exchange, port 1001)',
  builder: (y) =>
    withDaemonOptions(y)
      .positional('target', { type: 'string', demandOption: true, describe: NODE })
      .option('data', { type: 'string', demandOption: true, describe: 'the message (at most 128 KiB; larger: send-file)' })
      .option('type', { choices: ['text', 'json', 'binary'] as const, default: 'text' as const, describe: 'message type' }) as Argv<SendMessageArgs>,
  handler: async (args) => {
    if (args.type === 'json') checkJson(args.data)
    const r = (await withDaemon(args, (c) => c.call('message.send', { target: args.target, type: args.type, data: String(args.data) }, SEND_TIMEOUT_MS))) as SendMessageResult
    printResult(args, r, (v) => `sent ${v.bytes} bytes (${v.type}) to ${v.target}: ${v.ack}`)
  },
}

export const sendFileCommand: CommandModule<object, SendFileArgs> = {
  command: 'send-file <target> <path>',
  describe: 'send a file to a node (data exchange, port 1001; it lands in the receiver\'s received files)',
  builder: (y) =>
    withDaemonOptions(y)
      .positional('target', { type: 'string', demandOption: true, describe: NODE })
      .positional('path', { type: 'string', demandOption: true, describe: 'the file (at most 16 MiB; the daemon reads it)' }) as Argv<SendFileArgs>,
  handler: async (args) => {
    const path = resolvePath(String(args.path))
    const r = (await withDaemon(args, (c) => c.call('file.send', { target: args.target, path }, FILE_TIMEOUT_MS))) as SendFileResult
    printResult(args, r, (v) => `sent ${v.filename} (${formatBytes(v.bytes)}) to ${v.destination}: ${v.ack}`)
  },
}

export const inboxCommand: CommandModule<object, ClearArgs> = {
  command: 'inbox',
  describe: 'messages received (send-message from other nodes); --clear empties the inbox',
  builder: (y) => withDaemonOptions(y).option('clear', { type: 'boolean', default: false, describe: 'delete every message' }) as Argv<ClearArgs>,
  handler: async (args) => {
    if (args.clear) {
      const r = (await withDaemon(args, (c) => c.call('inbox.clear', {}))) as { cleared: number }
      printResult(args, r, (v) => `cleared ${v.cleared} message(s)`)
      return
    }
    const r = (await withDaemon(args, (c) => c.call('inbox.list', {}))) as InboxListResult
    printResult(args, r, formatInbox)
  },
}

export const receivedCommand: CommandModule<object, ClearArgs> = {
  command: 'received',
  describe: 'files received (send-file from other nodes); --clear deletes them',
  builder: (y) => withDaemonOptions(y).option('clear', { type: 'boolean', default: false, describe: 'delete every received file' }) as Argv<ClearArgs>,
  handler: async (args) => {
    if (args.clear) {
      const r = (await withDaemon(args, (c) => c.call('received.clear', {}))) as { cleared: number }
      printResult(args, r, (v) => `cleared ${v.cleared} file(s)`)
      return
    }
    const r = (await withDaemon(args, (c) => c.call('received.list', {}))) as ReceivedListResult
    printResult(args, r, formatReceived)
  },
}

export function formatInbox(v: InboxListResult): string {
  if (v.total === 0) return `inbox empty (${v.dir})\n  messages appear here when a node sends: pilot-tun send-message <this node> --data TEXT`
  const lines = [`inbox (${v.total} message${v.total === 1 ? '' : 's'}, ${v.dir}):`, '']
  if (v.truncated) lines.push(`  (only the newest ${v.messages.length} shown)`, '')
  for (const m of v.messages) {
    lines.push(`  [${m.received_at}] from ${m.from} type=${m.type}`)
    lines.push(`    ${m.data.replace(/\n/g, '\n    ')}${m.data_truncated === true ? ' …' : ''}`)
  }
  lines.push('', 'clear with: pilot-tun inbox --clear')
  return lines.join('\n')
}

export function formatReceived(v: ReceivedListResult): string {
  if (v.total === 0) return `no received files (${v.dir})\n  files appear here when a node sends: pilot-tun send-file <this node> <file>`
  const table = formatTable(['NAME', 'SIZE', 'RECEIVED'], v.files.map((f) => [f.name, formatBytes(f.bytes), f.modified]))
  return `received files (${v.dir}):\n\n${table}\n\ntotal: ${v.total}${v.truncated ? ` (only the newest ${v.files.length} shown)` : ''}`
}

function checkJson(text: string): void {
  try {
    JSON.parse(text)
  } catch (err) {
    throw new PilotError('PT_CLI_USAGE', `--type json needs valid JSON: ${(err as Error).message}`, { hint: 'quote it for the shell, e.g. --data \'{"a":1}\'' })
  }
}
