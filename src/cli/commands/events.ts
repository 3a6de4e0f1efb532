/**
 * `pilot-tun publish` and `subscribe`: the event stream (port 1002). The
 * target is the broker: another node, or this node itself (its own broker).
 * `subscribe` prints events as they come (`--json`: one JSON object per line)
 * until --count events, --timeout, Ctrl-C or the broker's end.
 */
import type { Argv, CommandModule } from 'yargs'
import type { PublishResult, StreamedEvent, SubscribeResult } from '../../services/api.js'
import { PilotError } from '../../errors.js'
import { withDaemon, withDaemonOptions, type DaemonClientArgs } from '../daemon-options.js'
import { CliExit, printResult } from '../output.js'

const NODE = 'the broker: hostname | N:NNNN.HHHH.LLLL | node id | mapped IPv6 (this node too)'

interface PublishArgs extends DaemonClientArgs {
  target: string
  topic: string
  data: string
}

interface SubscribeArgs extends DaemonClientArgs {
  target: string
  topic: string
  count: number
  timeout?: string
}

export const publishCommand: CommandModule<object, PublishArgs> = {
  command: 'publish <target> <topic>',
  describe: 'publish an event on a node\'s event stream broker (port 1002)',
  builder: (y) =>
    withDaemonOptions(y)
      .positional('target', { type: 'string', demandOption: true, describe: NODE })
      .positional('topic', { type: 'string', demandOption: true, describe: 'the topic (1..1024 bytes)' })
      .option('data', { type: 'string', demandOption: true, describe: 'the event payload (at most 128 KiB)' }) as Argv<PublishArgs>,
  handler: async (args) => {
    const r = (await withDaemon(args, (c) => c.call('events.publish', { target: args.target, topic: String(args.topic), data: String(args.data) }, 60_000))) as PublishResult
    printResult(args, r, (v) => `published ${v.bytes} bytes on "${v.topic}" at ${v.target}${v.delivered === undefined ? '' : ` (${v.delivered} subscriber${v.delivered === 1 ? '' : 's'})`}`)
  },
}

export const subscribeCommand: CommandModule<object, SubscribeArgs> = {
  command: 'subscribe <target> <topic>',
  describe: 'print the events published on a topic at a node\'s broker (`*` = every topic)',
  builder: (y) =>
    withDaemonOptions(y)
      .positional('target', { type: 'string', demandOption: true, describe: NODE })
      .positional('topic', { type: 'string', demandOption: true, describe: 'the topic, or * for all' })
      .option('count', { alias: 'c', type: 'number', default: 0, describe: 'stop after N events (0: no limit)' })
      .option('timeout', { type: 'string', describe: 'stop after this long: 30s, 500ms, 5m, 1h or seconds (default: no limit)' }) as Argv<SubscribeArgs>,
  handler: async (args) => {
    const count = args.count
    if (!Number.isInteger(count) || count < 0) throw new PilotError('PT_CLI_USAGE', `--count ${count} must be a whole number ≥ 0`)
    const timeoutMs = args.timeout === undefined ? 0 : parseDuration(args.timeout)
    const onEvent = (raw: unknown): void => {
      const e = raw as StreamedEvent
      process.stdout.write(args.json ? `${JSON.stringify(e)}\n` : `[${e.topic}] ${e.data}${e.data_truncated === true ? ' …' : ''}\n`)
    }
    if (!args.json) process.stderr.write(`subscribed to "${args.topic}" on ${args.target}; waiting for events (Ctrl-C to stop)\n`)
    // The answer comes when the subscription ends: allow its whole timeout, or (almost) forever.
    const callTimeout = timeoutMs > 0 ? timeoutMs + 60_000 : 2_147_483_647
    // `pilot-tun subscribe … | head -3`: a closed stdout ends the subscription quietly.
    let brokenPipe = false
    const r = (await withDaemon(args, async (c) => {
      const onStdoutError = (err: NodeJS.ErrnoException): void => {
        brokenPipe = true
        if (err.code !== 'EPIPE') process.stderr.write(`pilot-tun: stdout: ${err.message}\n`)
        c.close()
      }
      process.stdout.on('error', onStdoutError)
      try {
        return await c.stream('events.subscribe', { target: args.target, topic: String(args.topic), count, timeout_ms: timeoutMs }, onEvent, callTimeout)
      } catch (err) {
        if (brokenPipe) throw new CliExit(0)
        throw err
      } finally {
        process.stdout.off('error', onStdoutError)
      }
    })) as SubscribeResult
    if (!args.json) process.stderr.write(`${r.events} event${r.events === 1 ? '' : 's'}${r.timeout ? ' (timeout)' : ''}\n`)
  },
}

/** `30s`, `500ms`, `5m`, `1h`, or a number of seconds → milliseconds (1 ms .. 24 days). */
export function parseDuration(text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$/.exec(text)
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }
  const ms = m === null ? NaN : Number(m[1]) * unit[(m[2] ?? 's') as keyof typeof unit]
  if (!(ms >= 1 && ms <= 2_000_000_000)) {
    throw new PilotError('PT_CLI_USAGE', `--timeout ${JSON.stringify(text)} is not a duration`, { hint: 'e.g. 30s, 500ms, 5m, 1h, or a number of seconds' })
  }
  return Math.round(ms)
}
