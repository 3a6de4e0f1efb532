/**
 * `pilot-tun netcheck`: what the network between this host and a Pilot
 * rendezvous looks like — UDP reachability, the public endpoint, the NAT kind
 * (src/netcheck/), and registry and beacon latency. Runs without a daemon.
 * `--registry`, `--beacon` and `--listen` default to the config file's keys,
 * as for `up`; the probes leave from the daemon's tunnel port when it is free.
 * Exits 0 whenever the checks ran, whatever they found: the report says it.
 */
import type { Argv, CommandModule } from 'yargs'
import { parseHostPortListOption, parseHostPortOption, parseListenOption } from '../../daemon/options.js'
import { ConfigError } from '../../errors.js'
import type { NetcheckReport } from '../../netcheck/report.js'
import { runNetcheck, type NetcheckOptions } from '../../netcheck/run.js'
import { DEFAULT_CONFIG_PATH, DEFAULT_LISTEN, loadConfigFile, type ConfigValues } from '../config.js'
import { formatMs, printResult } from '../output.js'

interface NetcheckArgs {
  registry?: string
  beacon?: string
  listen?: string
  config?: string
  timeout: number
  json: boolean
}

export const netcheckCommand: CommandModule<object, NetcheckArgs> = {
  command: 'netcheck',
  describe: 'check the network: UDP to the beacon, public endpoint, NAT kind, registry and beacon latency (no daemon needed)',
  builder: (y) =>
    y
      .option('registry', { type: 'string', describe: 'registry HOST:PORT to time (default: the config file\'s)' })
      .option('beacon', { type: 'string', describe: 'beacon HOST:PORT to probe (default: the config file\'s)' })
      .option('listen', { type: 'string', describe: 'UDP [HOST]:PORT the probes leave from (a busy default port falls back to a random one)', defaultDescription: `the config's listen, else ${DEFAULT_LISTEN}` })
      .option('config', { type: 'string', describe: 'JSON config file of `up`', defaultDescription: DEFAULT_CONFIG_PATH })
      .option('timeout', { type: 'number', default: 5, describe: 'seconds the whole check may take' })
      .option('json', { type: 'boolean', default: false, describe: 'print JSON' }) as Argv<NetcheckArgs>,
  handler: async (args) => {
    const report = await runNetcheck(await resolveNetcheckOptions(args))
    printResult(args, report, formatNetcheck)
  },
}

/** Flags over the config file over defaults. The file is read only when a flag is missing. */
export async function resolveNetcheckOptions(args: Omit<NetcheckArgs, 'json'>): Promise<NetcheckOptions> {
  if (!(args.timeout >= 0.5 && args.timeout <= 60)) throw new ConfigError(`--timeout ${args.timeout} is out of range`, 'use 0.5..60 seconds')
  let file: ConfigValues = {}
  if (args.config !== undefined || args.registry === undefined || args.beacon === undefined || args.listen === undefined) {
    file = await loadConfigFile(args.config ?? DEFAULT_CONFIG_PATH, args.config !== undefined)
  }
  const registry = args.registry ?? file.registry
  const beacon = args.beacon ?? file.beacon
  if (registry === undefined && beacon === undefined) {
    throw new ConfigError('nothing to check: no registry and no beacon given', 'pass --registry HOST:PORT and --beacon HOST:PORT, or set them in the config file')
  }
  return {
    // Several front ends (a:9000,b:9000): the first is the one measured.
    registry: registry === undefined ? null : parseHostPortListOption(registry, '--registry')[0]!,
    beacon: beacon === undefined ? null : parseHostPortOption(beacon, '--beacon'),
    listen: parseListenOption(args.listen ?? file.listen ?? DEFAULT_LISTEN),
    listenExplicit: args.listen !== undefined,
    timeoutMs: Math.round(args.timeout * 1000),
  }
}

export function formatNetcheck(r: NetcheckReport): string {
  const rows: Array<[string, string]> = []
  const b = r.beacon
  if (b !== null) rows.push(['udp', b.error !== null ? `not tested (${b.error.message})` : r.udp ? `yes (beacon ${b.endpoint})` : `NO: the beacon at ${b.endpoint} never answered`])
  rows.push(['public endpoint', `${r.public_endpoint ?? 'unknown'} (local ${r.local})`])
  rows.push(['nat', r.nat.description])
  if (r.nat.mapping !== 'unknown') rows.push(['mapping', r.nat.mapping])
  if (r.nat.filtering !== 'unknown') rows.push(['filtering', r.nat.filtering])
  ;(b?.probes ?? []).forEach((p, i) => {
    const mapped = p.mapped === null ? 'no answer' : p.mapped === r.public_endpoint ? 'same public endpoint' : `public endpoint ${p.mapped}`
    const where = p.vantage === 'other-port' ? 'another port' : 'another address'
    rows.push([i === 0 ? 'probe ports' : '', `${p.endpoint} (${where}): ${mapped}; unsolicited packet ${p.unsolicited_received ? 'received' : 'dropped'}`])
  })
  if (b !== null && b.error === null) {
    rows.push(['beacon latency', b.rtt_ms === null ? 'unknown' : `${formatMs(b.rtt_ms)} (Discover round trip, median of ${b.rtt_samples_ms.length})`])
  }
  const g = r.registry
  if (g !== null) {
    rows.push([
      'registry latency',
      g.rtt_ms !== null
        ? `${formatMs(g.rtt_ms)} (one request, after a ${formatMs(g.connect_ms!)} TCP connect to ${g.address})`
        : `${g.reachable ? 'no answer' : 'UNREACHABLE'} from ${g.address}: ${g.error?.message ?? ''} [${g.error?.code ?? ''}]`,
    ])
  }
  const width = Math.max(...rows.map(([k]) => k.length)) + 2
  const lines = rows.map(([k, v]) => `${(k === '' ? '' : `${k}:`).padEnd(width)}${v}`)
  for (const n of r.notes) lines.push(`note: ${n}`)
  return lines.join('\n')
}
