/**
 * `pilot-tun secure send|listen`: the port-443 secure channel (docs/wire.md
 * §13.6), the reference's library-level encrypted stream, run by the daemon.
 *
 *   secure send <target> [message]   one message (stdin when omitted or `-`),
 *                                    prints the answer(s)
 *   secure listen [--echo]           accept channels while it runs, print each
 *                                    message; --echo writes it back (a secure echo)
 *
 * Against the reference's `secure` example: its server answers each message,
 * its client sends one and prints the answer; both use the legacy key
 * derivation, our default.
 */
import type { Argv, CommandModule } from 'yargs'
import { PilotError } from '../../errors.js'
import type { SecureListenResult, SecureMessageEvent, SecureSendResult } from '../../services/secure/secure-service.js'
import { withDaemon, withDaemonOptions, type DaemonClientArgs } from '../daemon-options.js'
import { CliExit, printResult } from '../output.js'
import { parseDuration } from './events.js'

const NODE = 'hostname | N:NNNN.HHHH.LLLL | node id | mapped IPv6'
/** Largest message from stdin (what one control request carries). */
const MAX_STDIN = 96 * 1024

interface SendArgs extends DaemonClientArgs {
  target: string
  message?: string
  port: number
  kdf: 'legacy' | 'hkdf'
  replies: number
  timeout: string
}

interface ListenArgs extends DaemonClientArgs {
  port: number
  echo: boolean
  kdf: 'auto' | 'legacy' | 'hkdf'
  count: number
  timeout?: string
}

function checkPort(port: number): void {
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new PilotError('PT_CLI_USAGE', `--port ${port} is not a port (1..65535)`)
}

async function readStdin(): Promise<Buffer> {
  const chunks: Buffer[] = []
  let n = 0
  for await (const c of process.stdin as AsyncIterable<Buffer>) {
    n += c.length
    if (n > MAX_STDIN) throw new PilotError('PT_CLI_USAGE', `the message on stdin is over ${MAX_STDIN} bytes`, { hint: 'secure send carries one message of at most 96 KiB' })
    chunks.push(c)
  }
  return Buffer.concat(chunks)
}

export const secureCommand: CommandModule = {
  command: 'secure <action>',
  describe: 'the port-443 secure channel (X25519 + AES-256-GCM on a stream): send, listen',
  builder: (y) =>
    y
      .command<SendArgs>({
        command: 'send <target> [message]',
        describe: 'open a secure channel to TARGET, send one message (stdin when omitted or -), print the answer',
        builder: (b) =>
          withDaemonOptions(b)
            .positional('target', { type: 'string', demandOption: true, describe: NODE })
            .positional('message', { type: 'string', describe: 'the message; omitted or - = read stdin (at most 96 KiB)' })
            .option('port', { type: 'number', default: 443, describe: 'the port the secure server listens on' })
            .option('kdf', { choices: ['legacy', 'hkdf'] as const, default: 'legacy' as const, describe: 'key derivation: legacy = the reference (SHA-256), hkdf = the draft' })
            .option('replies', { type: 'number', default: 1, describe: 'answers to wait for (0: send only)' })
            .option('timeout', { type: 'string', default: '10s', describe: 'how long to wait for them: 30s, 500ms, 5m' }) as unknown as Argv<SendArgs>,
        handler: async (args) => {
          checkPort(args.port)
          if (!Number.isInteger(args.replies) || args.replies < 0 || args.replies > 1000) throw new PilotError('PT_CLI_USAGE', `--replies ${args.replies} must be 0..1000`)
          const timeoutMs = parseDuration(args.timeout)
          const fromStdin = args.message === undefined || args.message === '-'
          const data = fromStdin ? { data_base64: (await readStdin()).toString('base64') } : { data: String(args.message) }
          const params = { target: args.target, ...data, port: args.port, kdf: args.kdf, replies: args.replies, timeout_ms: timeoutMs }
          const r = (await withDaemon(args, (c) => c.call('secure.send', params, timeoutMs + 30_000))) as SecureSendResult
          printResult(args, r, (v) => v.replies.join('\n'))
        },
      })
      .command<ListenArgs>({
        command: 'listen',
        describe: 'accept secure channels while this runs and print each message (--echo: send it back)',
        builder: (b) =>
          withDaemonOptions(b)
            .option('port', { type: 'number', default: 443, describe: 'the port to listen on' })
            .option('echo', { type: 'boolean', default: true, describe: 'write every message back on its channel (--no-echo: only print)' })
            .option('kdf', { choices: ['auto', 'legacy', 'hkdf'] as const, default: 'auto' as const, describe: 'the clients\' key derivation: auto = learn it from their first frame' })
            .option('count', { alias: 'c', type: 'number', default: 0, describe: 'stop after N messages (0: no limit)' })
            .option('timeout', { type: 'string', describe: 'stop after this long (default: no limit)' }) as unknown as Argv<ListenArgs>,
        handler: async (args) => {
          checkPort(args.port)
          if (!Number.isInteger(args.count) || args.count < 0) throw new PilotError('PT_CLI_USAGE', `--count ${args.count} must be a whole number ≥ 0`)
          const timeoutMs = args.timeout === undefined ? 0 : parseDuration(args.timeout)
          const onEvent = (raw: unknown): void => {
            const e = raw as SecureMessageEvent
            process.stdout.write(args.json ? `${JSON.stringify(e)}\n` : `[${e.from}] ${e.data}${e.data_truncated === true ? ' …' : ''}\n`)
          }
          if (!args.json) process.stderr.write(`secure channel listening on port ${args.port}${args.echo ? ' (echo)' : ''}; Ctrl-C to stop\n`)
          const callTimeout = timeoutMs > 0 ? timeoutMs + 60_000 : 2_147_483_647
          let brokenPipe = false
          const r = (await withDaemon(args, async (c) => {
            const onStdoutError = (): void => {
              brokenPipe = true
              c.close()
            }
            process.stdout.on('error', onStdoutError)
            try {
              return await c.stream('secure.listen', { port: args.port, echo: args.echo, kdf: args.kdf, count: args.count, timeout_ms: timeoutMs }, onEvent, callTimeout)
            } catch (err) {
              if (brokenPipe) throw new CliExit(0)
              throw err
            } finally {
              process.stdout.off('error', onStdoutError)
            }
          })) as SecureListenResult
          if (!args.json) process.stderr.write(`${r.messages} message${r.messages === 1 ? '' : 's'} on ${r.channels} channel${r.channels === 1 ? '' : 's'}${r.refused > 0 ? `, ${r.refused} refused` : ''}${r.timeout ? ' (timeout)' : ''}\n`)
          else process.stdout.write(`${JSON.stringify(r)}\n`)
        },
      })
      .demandCommand(1, 'Name an action: send or listen.'),
  handler: () => {},
}
