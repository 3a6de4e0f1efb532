/**
 * `pilot-tun network create|join|leave|invite|members|policy|list|role|remove`
 * (issue 13): private groups of nodes with their own /64 on pilot0, a join
 * rule (open, token, invite), roles (owner, admin, member) and a port policy.
 * Every command goes through the daemon (it signs with the node's identity);
 * registry refusals come back with their PT_NETWORK_* code and a hint.
 */
import type { Argv, CommandModule } from 'yargs'
import { PilotError } from '../../errors.js'
import { JOIN_RULES, NETWORK_ROLES, type JoinRule, type NetworkRole } from '../../registry/network-types.js'
import { withDaemon, withDaemonOptions, type DaemonClientArgs } from '../daemon-options.js'
import { formatFields, formatTable, printResult } from '../output.js'

const NODE = 'hostname | N:NNNN.HHHH.LLLL | node id'
const NET = 'network name or ID'
/** Registry round trips and a view refresh: more than the default 10 s is allowed. */
const NETWORK_TIMEOUT_MS = 30_000

interface NetArgs extends DaemonClientArgs {
  net: string
}
interface CreateArgs extends DaemonClientArgs {
  name: string
  'join-rule': JoinRule
  token?: string
  'max-members'?: number
  'allowed-ports'?: string
  'members-resolve'?: boolean
}
interface JoinArgs extends NetArgs {
  token?: string
  invite?: string
}
interface InviteArgs extends NetArgs {
  node: string
  ttl: string
}
interface PolicyArgs extends NetArgs {
  'max-members'?: number
  'allowed-ports'?: string
  'members-resolve'?: boolean
}
interface RoleArgs extends NetArgs {
  node: string
  role: NetworkRole
}
interface RemoveArgs extends NetArgs {
  node: string
}

interface Policy {
  max_members: number
  allowed_ports: number[]
  members_resolve: boolean
}

function usage(message: string, hint: string): PilotError {
  return new PilotError('PT_CLI_USAGE', message, { hint })
}

/** `80,443` → [80, 443]; `` or `all` → [] (every port). PT_CLI_USAGE on anything else. */
export function parsePortList(text: string): number[] {
  const t = String(text).trim()
  if (t === '' || t === 'all') return []
  const hint = 'ports are integers in 1..65535, comma-separated (e.g. --allowed-ports 80,443); "all" or "" = every port'
  const out = new Set<number>()
  for (const part of t.split(',')) {
    const p = part.trim()
    if (!/^\d{1,5}$/.test(p) || Number(p) < 1 || Number(p) > 65535) throw usage(`--allowed-ports: "${p}" is not a port`, hint)
    out.add(Number(p))
  }
  if (out.size > 1024) throw usage('--allowed-ports: more than 1024 ports', hint)
  return [...out].sort((a, b) => a - b)
}

/** `90`, `90s`, `15m`, `24h`, `7d` → seconds. PT_CLI_USAGE otherwise. */
export function parseDuration(text: string): number {
  const m = /^(\d+)\s*([smhd]?)$/.exec(String(text).trim())
  const hint = 'e.g. --ttl 3600, 90m, 24h or 7d (at most 30d)'
  if (m === null) throw usage(`--ttl "${text}" is not a duration`, hint)
  const s = Number(m[1]) * ({ '': 1, s: 1, m: 60, h: 3600, d: 86400 } as Record<string, number>)[m[2]!]!
  if (s < 1 || s > 30 * 86400) throw usage(`--ttl ${text} is out of range`, hint)
  return s
}

function checkMaxMembers(n: number | undefined): number | undefined {
  if (n === undefined) return undefined
  if (!Number.isInteger(n) || n < 1 || n > 1_000_000) throw usage(`--max-members ${n} is out of range`, 'use an integer in 1..1000000')
  return n
}

function policyParams(args: { 'max-members'?: number; 'allowed-ports'?: string; 'members-resolve'?: boolean }): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  const max = checkMaxMembers(args['max-members'])
  if (max !== undefined) out.max_members = max
  if (args['allowed-ports'] !== undefined) out.allowed_ports = parsePortList(args['allowed-ports'])
  if (args['members-resolve'] !== undefined) out.members_resolve = args['members-resolve']
  return out
}

function withPolicyOptions<T>(y: Argv<T>): Argv<T> {
  return y
    .option('max-members', { type: 'number', describe: 'most members the network admits (1..1000000)' })
    .option('allowed-ports', { type: 'string', describe: 'ports members may reach each other on, e.g. 80,443 ("all" = every port)' })
    .option('members-resolve', { type: 'boolean', describe: 'members may resolve each other without pairwise trust (--no-members-resolve: not)' }) as Argv<T>
}

function withNet<T>(y: Argv<T>): Argv<T & NetArgs> {
  return withDaemonOptions(y).positional('net', { type: 'string', demandOption: true, describe: NET }) as unknown as Argv<T & NetArgs>
}

export const networkCommand: CommandModule = {
  command: 'network <action>',
  describe: 'networks: create, join, leave, invite, members, policy, list, role, remove',
  builder: (y) =>
    y
      .command<CreateArgs>({
        command: 'create <name>',
        describe: 'create a network (you become its owner and a member)',
        builder: (b) =>
          withPolicyOptions(
            withDaemonOptions(b)
              .positional('name', { type: 'string', demandOption: true, describe: 'a DNS label: 1-63 of a-z 0-9 -' })
              .option('join-rule', { choices: JOIN_RULES, default: 'open' as JoinRule, describe: 'who may join: anyone, holders of the token, invited nodes' })
              .option('token', { type: 'string', describe: 'the join token (with --join-rule token)' }),
          ) as unknown as Argv<CreateArgs>,
        handler: async (args) => {
          const rule = args['join-rule']
          if (rule === 'token' && (args.token === undefined || args.token === '')) throw usage('--join-rule token needs --token T', 'give the token members will join with')
          if (rule !== 'token' && args.token !== undefined) throw usage(`--token only goes with --join-rule token (not ${rule})`, 'drop --token, or use --join-rule token')
          const params = { name: String(args.name), join_rule: rule, ...(args.token === undefined ? {} : { token: String(args.token) }), ...policyParams(args) }
          const r = (await withDaemon(args, (c) => c.call('network.create', params, NETWORK_TIMEOUT_MS))) as { network_id: number; name: string; join_rule: string }
          printResult(args, r, (v) => `created network ${v.name} (id ${v.network_id}, join rule ${v.join_rule}); this node is its owner`)
        },
      })
      .command<JoinArgs>({
        command: 'join <net>',
        describe: 'join a network (with --token or --invite as its join rule needs)',
        builder: (b) =>
          withNet(b)
            .option('token', { type: 'string', describe: 'the network\'s join token' })
            .option('invite', { type: 'string', describe: 'an invite (pilot-invite1.…) from `pilot-tun network invite`' }) as unknown as Argv<JoinArgs>,
        handler: async (args) => {
          const params = { network: String(args.net), ...(args.token === undefined ? {} : { token: String(args.token) }), ...(args.invite === undefined ? {} : { invite: String(args.invite) }) }
          const r = (await withDaemon(args, (c) => c.call('network.join', params, NETWORK_TIMEOUT_MS))) as { network_id: number; address: string }
          printResult(args, r, (v) => `joined network ${v.network_id}: this node is ${v.address} there`)
        },
      })
      .command<NetArgs>({
        command: 'leave <net>',
        describe: 'leave a network (its address and route go, its flows end)',
        builder: (b) => withNet(b),
        handler: async (args) => {
          const r = (await withDaemon(args, (c) => c.call('network.leave', { network: String(args.net) }, NETWORK_TIMEOUT_MS))) as { network_id: number }
          printResult(args, r, (v) => `left network ${v.network_id}`)
        },
      })
      .command<InviteArgs>({
        command: 'invite <net> <node>',
        describe: 'invite NODE into a network (owners and admins); prints the invite text',
        builder: (b) =>
          withNet(b)
            .positional('node', { type: 'string', demandOption: true, describe: NODE })
            .option('ttl', { type: 'string', default: '24h', describe: 'how long the invite is valid (e.g. 3600, 90m, 24h, 7d)' }) as unknown as Argv<InviteArgs>,
        handler: async (args) => {
          const ttl = parseDuration(args.ttl)
          const r = (await withDaemon(args, (c) => c.call('network.invite', { network: String(args.net), node: String(args.node), ttl_s: ttl }, NETWORK_TIMEOUT_MS))) as {
            network_id: number
            invite: string
            invitee_id: number
            expires: number
          }
          printResult(args, r, (v) =>
            [
              `invite for node ${v.invitee_id} to network ${v.network_id}, valid until ${new Date(v.expires * 1000).toISOString()}:`,
              v.invite,
              `the invitee runs: pilot-tun network join ${v.network_id} --invite ${v.invite}`,
            ].join('\n'),
          )
        },
      })
      .command<NetArgs>({
        command: 'members <net>',
        describe: 'a network\'s members, roles, addresses and policy (members only)',
        builder: (b) => withNet(b),
        handler: async (args) => {
          const r = await withDaemon(args, (c) => c.call('network.members', { network: String(args.net) }, NETWORK_TIMEOUT_MS))
          printResult(args, r as MembersResult, formatMembers)
        },
      })
      .command<PolicyArgs>({
        command: 'policy <net>',
        describe: 'show a network\'s policy, or change it (owners and admins)',
        builder: (b) => withPolicyOptions(withNet(b)) as Argv<PolicyArgs>,
        handler: async (args) => {
          const r = (await withDaemon(args, (c) => c.call('network.policy', { network: String(args.net), ...policyParams(args) }, NETWORK_TIMEOUT_MS))) as {
            network_id: number
            changed: boolean
            policy: Policy
          }
          printResult(args, r, (v) => `${v.changed ? 'policy of network' : 'network'} ${v.network_id}${v.changed ? ' is now' : ''}:\n${formatPolicy(v.policy)}`)
        },
      })
      .command<DaemonClientArgs>({
        command: 'list',
        describe: 'every network the registry knows (network 0 is the backbone)',
        builder: (b) => withDaemonOptions(b),
        handler: async (args) => {
          const r = (await withDaemon(args, (c) => c.call('network.list', {}, NETWORK_TIMEOUT_MS))) as ListResult
          printResult(args, r, formatList)
        },
      })
      .command<RoleArgs>({
        command: 'role <net> <node> <role>',
        describe: 'set a member\'s role (owners only)',
        builder: (b) =>
          withNet(b)
            .positional('node', { type: 'string', demandOption: true, describe: NODE })
            .positional('role', { choices: NETWORK_ROLES, demandOption: true, describe: 'owner, admin or member' }) as unknown as Argv<RoleArgs>,
        handler: async (args) => {
          const r = (await withDaemon(args, (c) => c.call('network.role', { network: String(args.net), node: String(args.node), role: args.role }, NETWORK_TIMEOUT_MS))) as {
            network_id: number
            node_id: number
            role: string
          }
          printResult(args, r, (v) => `node ${v.node_id} is now ${v.role} of network ${v.network_id}`)
        },
      })
      .command<RemoveArgs>({
        command: 'remove <net> <node>',
        describe: 'remove a member (owners and admins)',
        builder: (b) => withNet(b).positional('node', { type: 'string', demandOption: true, describe: NODE }) as unknown as Argv<RemoveArgs>,
        handler: async (args) => {
          const r = (await withDaemon(args, (c) => c.call('network.remove', { network: String(args.net), node: String(args.node) }, NETWORK_TIMEOUT_MS))) as {
            network_id: number
            node_id: number
          }
          printResult(args, r, (v) => `removed node ${v.node_id} from network ${v.network_id}`)
        },
      })
      .demandCommand(1, 'Name an action: create, join, leave, invite, members, policy, list, role or remove.'),
  handler: () => {},
}

interface MembersResult {
  network_id: number
  name: string
  join_rule: string
  created: number
  policy: Policy
  members: Array<{ node_id: number; role: string; address: string; hostname: string | null }>
}

interface ListResult {
  networks: Array<{ id: number; name: string; members: number; join_rule: string; member: boolean; role: string | null }>
}

export function formatPolicy(p: Policy): string {
  return formatFields([
    ['max members', p.max_members],
    ['allowed ports', p.allowed_ports.length === 0 ? 'all' : p.allowed_ports.join(',')],
    ['members resolve', p.members_resolve ? 'yes' : 'no'],
  ])
}

export function formatMembers(r: MembersResult): string {
  const head = `network ${r.name} (id ${r.network_id}, join rule ${r.join_rule}, ${r.members.length} member${r.members.length === 1 ? '' : 's'})`
  const table = formatTable(
    ['NODE', 'ROLE', 'ADDRESS', 'HOSTNAME'],
    r.members.map((m) => [String(m.node_id), m.role, m.address, m.hostname ?? '-']),
  )
  return `${head}\n${table}\n${formatPolicy(r.policy)}`
}

export function formatList(r: ListResult): string {
  if (r.networks.length === 0) return 'no networks'
  return formatTable(
    ['ID', 'NAME', 'MEMBERS', 'RULE', 'YOU'],
    r.networks.map((n) => [String(n.id), n.name, String(n.members), n.join_rule, n.id === 0 ? 'member' : n.member ? (n.role ?? 'member') : '-']),
  )
}
