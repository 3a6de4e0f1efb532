/**
 * `pilot-tun ping TARGET`: echo round trips through the tunnel, printed as they
 * arrive like ping(8), then a summary. Exits 1 when nothing answered.
 */
import type { Argv, CommandModule } from 'yargs'
import type { PingReply, ResolveResult } from '../../daemon/api.js'
import { PARAM_LIMITS } from '../../daemon/control/protocol.js'
import { ConfigError, PilotError } from '../../errors.js'
import { withDaemon, withDaemonOptions, type DaemonClientArgs } from '../daemon-options.js'
import { CliExit, formatMs } from '../output.js'

interface PingArgs extends DaemonClientArgs {
  target: string
  count: number
  interval: number
  timeout: number
}

/** Per-packet failures: counted as loss, the next packet is still sent. Anything else stops the run. */
const LOSS_CODES = new Set(['PT_PING_TIMEOUT', 'PT_PEER_UNREACHABLE'])

export interface PingAttempt {
  seq: number
  ok: boolean
  rtt_ms?: number
  path?: PingReply['path']
  error?: { code: string; message: string }
}

export interface PingSummary {
  target: string
  address: string
  ipv6: string
  hostname: string | null
  sent: number
  received: number
  loss_pct: number
  rtt_ms: { min: number; avg: number; max: number } | null
  replies: PingAttempt[]
  error?: { code: string; message: string; hint?: string }
}

export const pingCommand: CommandModule<object, PingArgs> = {
  command: 'ping <target>',
  describe: 'send echo requests to a node through the tunnel and print round-trip times',
  builder: (y) =>
    withDaemonOptions(y)
      .positional('target', { type: 'string', demandOption: true, describe: 'hostname | N:NNNN.HHHH.LLLL | mapped IPv6' })
      .option('count', { alias: 'c', type: 'number', default: 4, describe: 'echo requests to send (0: until Ctrl-C)' })
      .option('interval', { alias: 'i', type: 'number', default: 1, describe: 'seconds between requests' })
      .option('timeout', { alias: 'W', type: 'number', default: 3, describe: 'seconds to wait for each reply' }) as Argv<PingArgs>,
  handler: async (args) => {
    checkArgs(args)
    const human = !args.json
    const summary = await withDaemon(args, async (client) => {
      const target: ResolveResult = await client.call('resolve', { target: args.target })
      const name = target.hostname ?? target.address
      if (human) process.stdout.write(`PING ${name} (${target.address}, ${target.ipv6})\n`)
      const s: PingSummary = {
        target: args.target,
        address: target.address,
        ipv6: target.ipv6,
        hostname: target.hostname,
        sent: 0,
        received: 0,
        loss_pct: 0,
        rtt_ms: null,
        replies: [],
      }
      let stop = false
      let wake: (() => void) | null = null
      const onSigint = (): void => {
        stop = true
        wake?.()
      }
      process.on('SIGINT', onSigint)
      const timeoutMs = Math.round(args.timeout * 1000)
      const started = performance.now()
      try {
        for (let seq = 1; !stop && (args.count === 0 || seq <= args.count); seq++) {
          const t0 = performance.now()
          s.sent++
          try {
            const r = await client.call('ping', { target: target.address, timeout_ms: timeoutMs }, timeoutMs + 5000)
            s.received++
            s.replies.push({ seq, ok: true, rtt_ms: r.rtt_ms, path: r.path })
            if (human) process.stdout.write(`reply from ${name} (${r.address}): seq=${seq} time=${formatMs(r.rtt_ms)} path=${r.path}\n`)
          } catch (err) {
            if (!(err instanceof PilotError)) throw err
            if (!LOSS_CODES.has(err.code)) {
              s.error = err.toJSON()
              break
            }
            s.replies.push({ seq, ok: false, error: { code: err.code, message: err.message } })
            if (human) process.stdout.write(`no reply from ${name}: seq=${seq} ${err.code === 'PT_PING_TIMEOUT' ? `timeout (${args.timeout} s)` : err.message}\n`)
          }
          const last = args.count !== 0 && seq >= args.count
          const wait = args.interval * 1000 - (performance.now() - t0)
          if (!last && !stop && wait > 0) {
            await new Promise<void>((resolve) => {
              const t = setTimeout(resolve, wait)
              wake = () => {
                clearTimeout(t)
                resolve()
              }
            })
            wake = null
          }
        }
      } finally {
        process.off('SIGINT', onSigint)
      }
      finish(s)
      // An error before any reply or loss (no trust, unknown node) is reported alone, like ping(8)'s "unknown host".
      if (human && s.replies.length > 0) printSummary(s, name, (performance.now() - started) / 1000)
      return s
    })
    if (args.json) process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`)
    if (summary.error) {
      if (args.json) throw new CliExit(1)
      const e = summary.error
      throw new PilotError(e.code, e.message, e.hint === undefined ? {} : { hint: e.hint })
    }
    if (summary.received === 0) throw new CliExit(1)
  },
}

function checkArgs(args: PingArgs): void {
  if (!Number.isInteger(args.count) || args.count < 0) throw new ConfigError(`--count ${args.count} is not a whole number >= 0`)
  if (!(args.interval >= 0.01)) throw new ConfigError(`--interval ${args.interval} is too small`, 'use 0.01 seconds or more')
  const maxS = PARAM_LIMITS.maxPingTimeoutMs / 1000
  if (!(args.timeout >= 0.01 && args.timeout <= maxS)) throw new ConfigError(`--timeout ${args.timeout} is out of range`, `use 0.01..${maxS} seconds`)
}

function finish(s: PingSummary): void {
  const rtts = s.replies.filter((r) => r.ok).map((r) => r.rtt_ms!)
  s.loss_pct = s.sent === 0 ? 0 : Math.round(((s.sent - s.received) / s.sent) * 1000) / 10
  s.rtt_ms =
    rtts.length === 0
      ? null
      : {
          min: round3(Math.min(...rtts)),
          avg: round3(rtts.reduce((a, b) => a + b, 0) / rtts.length),
          max: round3(Math.max(...rtts)),
        }
}

function printSummary(s: PingSummary, name: string, elapsedS: number): void {
  const lines = ['', `--- ${name} ping statistics ---`, `${s.sent} sent, ${s.received} received, ${s.loss_pct}% loss, time ${elapsedS.toFixed(1)} s`]
  if (s.rtt_ms) lines.push(`rtt min/avg/max = ${s.rtt_ms.min.toFixed(1)}/${s.rtt_ms.avg.toFixed(1)}/${s.rtt_ms.max.toFixed(1)} ms`)
  process.stdout.write(`${lines.join('\n')}\n`)
}

function round3(x: number): number {
  return Math.round(x * 1000) / 1000
}
