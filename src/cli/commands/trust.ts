/** `pilot-tun trust request|approve|reject|revoke|list`: bilateral trust between nodes. */
import type { Argv, CommandModule } from 'yargs'
import type { TrustList } from '../../daemon/api.js'
import { withDaemon, withDaemonOptions, type DaemonClientArgs } from '../daemon-options.js'
import { formatTable, printResult } from '../output.js'

interface TargetArgs extends DaemonClientArgs {
  target: string
  reason?: string
}

function withTarget<T>(y: Argv<T>, what: string): Argv<TargetArgs> {
  return withDaemonOptions(y).positional('target', { type: 'string', demandOption: true, describe: what }) as unknown as Argv<TargetArgs>
}

const NODE = 'hostname | N:NNNN.HHHH.LLLL | node id | mapped IPv6'

export const trustCommand: CommandModule = {
  command: 'trust <action>',
  describe: 'manage trust: request, approve, reject, revoke, list',
  builder: (y) =>
    y
      .command<TargetArgs>({
        command: 'request <target>',
        describe: 'ask TARGET to trust this node (it approves with `pilot-tun trust approve`)',
        builder: (b) => withTarget(b, NODE).option('reason', { type: 'string', default: '', describe: 'justification shown to the other side' }) as Argv<TargetArgs>,
        handler: async (args) => {
          const r = await withDaemon(args, (c) => c.call('trust.request', { target: args.target, reason: args.reason ?? '' }))
          printResult(args, r, (v) =>
            v.status === 'trusted' ? `node ${v.node_id} and this node already trust each other` : `trust request sent to node ${v.node_id}`,
          )
        },
      })
      .command<TargetArgs>({
        command: 'approve <target>',
        describe: 'approve a pending trust request from TARGET',
        builder: (b) => withTarget(b, NODE),
        handler: async (args) => {
          const r = await withDaemon(args, (c) => c.call('trust.approve', { target: args.target }))
          printResult(args, r, (v) => `approved: node ${v.node_id} is trusted`)
        },
      })
      .command<TargetArgs>({
        command: 'reject <target>',
        describe: 'reject a pending trust request from TARGET',
        builder: (b) => withTarget(b, NODE).option('reason', { type: 'string', default: '', describe: 'reason sent back' }) as Argv<TargetArgs>,
        handler: async (args) => {
          const r = await withDaemon(args, (c) => c.call('trust.reject', { target: args.target, reason: args.reason ?? '' }))
          printResult(args, r, (v) => `rejected the trust request of node ${v.node_id}`)
        },
      })
      .command<TargetArgs>({
        command: 'revoke <target>',
        describe: 'stop trusting TARGET',
        builder: (b) => withTarget(b, NODE),
        handler: async (args) => {
          const r = await withDaemon(args, (c) => c.call('trust.revoke', { target: args.target }))
          printResult(args, r, (v) => `revoked: node ${v.node_id} is no longer trusted`)
        },
      })
      .command<DaemonClientArgs>({
        command: 'list',
        describe: 'trusted nodes, requests waiting for approval, requests sent',
        builder: (b) => withDaemonOptions(b),
        handler: async (args) => {
          const r = await withDaemon(args, (c) => c.call('trust.list', {}))
          printResult(args, r, formatTrustList)
        },
      })
      .demandCommand(1, 'Name an action: request, approve, reject, revoke or list.'),
  handler: () => {},
}

export function formatTrustList(t: TrustList): string {
  const out: string[] = []
  out.push(
    t.trusted.length === 0
      ? 'trusted: none'
      : `trusted:\n${indent(formatTable(['ADDRESS', 'NODE', 'MUTUAL', 'SINCE'], t.trusted.map((p) => [p.address, String(p.node_id), p.mutual ? 'yes' : 'no', p.approved_at])))}`,
  )
  out.push(
    t.pending.length === 0
      ? 'pending: none'
      : `pending (approve with \`pilot-tun trust approve NODE\`):\n${indent(
          formatTable(['ADDRESS', 'NODE', 'RECEIVED', 'REASON'], t.pending.map((p) => [p.address, String(p.node_id), p.received_at, p.justification || '-'])),
        )}`,
  )
  out.push(
    t.outgoing.length === 0
      ? 'outgoing: none'
      : `outgoing (waiting for the other side):\n${indent(formatTable(['ADDRESS', 'NODE', 'SENT'], t.outgoing.map((p) => [p.address, String(p.node_id), p.sent_at])))}`,
  )
  return out.join('\n')
}

function indent(text: string): string {
  return text
    .split('\n')
    .map((l) => `  ${l}`)
    .join('\n')
}
