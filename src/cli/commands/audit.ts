/**
 * `pilot-tun audit [--network N] [--local] [--admin-token T]` lists an audit
 * chain: a network's (members may read it), the registry's trust chain 0
 * (with the registry's admin token), or this daemon's own trust-decision log
 * (--local). `pilot-tun audit verify` checks the chain (every link, hash and
 * signature) in the daemon, not trusting the registry, and exits 1 naming
 * the first broken entry.
 */
import type { Argv, CommandModule } from 'yargs'
import { withDaemon, withDaemonOptions, type DaemonClientArgs } from '../daemon-options.js'
import { CliExit, formatTable, printResult } from '../output.js'

interface AuditArgs extends DaemonClientArgs {
  network?: string
  local?: boolean
  'admin-token'?: string
}

interface RegistryEntry {
  seq: number
  time: number
  actor: number
  action: string
  subject: number
  detail: string
}

interface LocalEntry {
  seq: number
  time: number
  action: string
  peer: number
  detail: string
}

interface ListResult {
  local: boolean
  network_id: number | null
  entries: Array<RegistryEntry | LocalEntry>
}

type VerifyResult =
  | { ok: true; network_id: number | null; local: boolean; entries: number; head: string }
  | { ok: false; network_id: number | null; local: boolean; entries: number; first_broken: number; reason: string }

/** The audit listing can be long; the registry pages it. */
const AUDIT_TIMEOUT_MS = 60_000

function withAuditOptions<T>(y: Argv<T>): Argv<T & AuditArgs> {
  return withDaemonOptions(y)
    .option('network', { type: 'string', describe: 'the network (name or ID); 0 or none = the registry\'s trust chain (needs --admin-token)' })
    .option('local', { type: 'boolean', describe: 'this daemon\'s own trust-decision log instead' })
    .option('admin-token', { type: 'string', describe: 'the registry\'s admin token (trust chain 0)' })
    .conflicts('local', ['network', 'admin-token']) as unknown as Argv<T & AuditArgs>
}

function params(args: AuditArgs): Record<string, unknown> {
  return {
    ...(args.network === undefined ? {} : { network: String(args.network) }),
    ...(args['admin-token'] === undefined ? {} : { admin_token: String(args['admin-token']) }),
    ...(args.local === true ? { local: true } : {}),
  }
}

function chainName(r: { local: boolean; network_id: number | null }): string {
  if (r.local) return 'the local trust log'
  return r.network_id === 0 ? 'the trust chain (0)' : `the audit chain of network ${r.network_id}`
}

export const auditCommand: CommandModule<object, AuditArgs> = {
  command: 'audit',
  describe: 'the tamper-evident audit trail: list it, or `audit verify` it',
  builder: (y) =>
    withAuditOptions(y).command<AuditArgs>({
      command: 'verify',
      describe: 'check every link, hash and signature of the chain; exit 1 naming the first broken entry',
      builder: (b) => withAuditOptions(b),
      handler: async (args) => {
        const r = (await withDaemon(args, (c) => c.call('audit.verify', params(args), AUDIT_TIMEOUT_MS))) as VerifyResult
        printResult(args, r, (v) =>
          v.ok
            ? `${chainName(v)}: ${v.entries} entr${v.entries === 1 ? 'y' : 'ies'}, intact (head ${v.head.slice(0, 16)}…)`
            : `${chainName(v)} is BROKEN at entry ${v.first_broken}: ${v.reason}`,
        )
        if (!r.ok) throw new CliExit(1)
      },
    }),
  handler: async (args) => {
    const r = (await withDaemon(args, (c) => c.call('audit.list', params(args), AUDIT_TIMEOUT_MS))) as ListResult
    printResult(args, r, formatAudit)
  },
}

export function formatAudit(r: ListResult): string {
  if (r.entries.length === 0) return `${chainName(r)}: no entries`
  const time = (ms: number): string => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z')
  if (r.local) {
    const rows = (r.entries as LocalEntry[]).map((e) => [String(e.seq), time(e.time), e.action, e.peer === 0 ? '-' : String(e.peer), e.detail || '-'])
    return `${chainName(r)}:\n${formatTable(['SEQ', 'TIME', 'ACTION', 'PEER', 'DETAIL'], rows)}`
  }
  const rows = (r.entries as RegistryEntry[]).map((e) => [String(e.seq), time(e.time), String(e.actor), e.action, e.subject === 0 ? '-' : String(e.subject), e.detail || '-'])
  return `${chainName(r)}:\n${formatTable(['SEQ', 'TIME', 'ACTOR', 'ACTION', 'SUBJECT', 'DETAIL'], rows)}`
}
