/** `pilot-tun status`: the running daemon's own address, name, registry/beacon state and endpoint. */
import type { CommandModule } from 'yargs'
import type { DaemonStatus } from '../../daemon/api.js'
import { withDaemon, withDaemonOptions, type DaemonClientArgs } from '../daemon-options.js'
import { formatFields, formatSeconds, printResult } from '../output.js'

export const statusCommand: CommandModule<object, DaemonClientArgs> = {
  command: 'status',
  describe: 'show the running daemon: address, hostname, registry and beacon, public endpoint',
  builder: (y) => withDaemonOptions(y),
  handler: async (args) => {
    const status = await withDaemon(args, (c) => c.call('status', {}))
    printResult(args, status, formatStatus)
  },
}

export function formatStatus(s: DaemonStatus): string {
  const reg = s.registry
  const regState = reg.connected
    ? `connected${reg.last_heartbeat_s_ago === null ? '' : `, heartbeat ${formatSeconds(reg.last_heartbeat_s_ago)} ago`}`
    : 'NOT CONNECTED'
  const fields: Array<[string, string | number]> = [
    ['address', s.address],
    ['ipv6', s.ipv6],
    ['hostname', s.hostname ?? '-'],
    ['visibility', s.public ? 'public' : 'private'],
    ['listen', s.listen],
    ['public endpoint', s.public_endpoint ?? 'unknown'],
    // With several front ends, say which one is in use.
    ['registry', reg.address.includes(',') ? `${reg.address} (${regState} to ${reg.front_end})` : `${reg.address} (${regState})`],
    ...(reg.tls_pin ? [['registry tls', `pinned ${reg.tls_pin}`] as [string, string]] : []),
    ['beacon', s.beacon.address === null ? 'none' : s.beacon.of === undefined ? s.beacon.address : `${s.beacon.address} (by node ID, of ${s.beacon.of.join(', ')})`],
    ['tun', s.tun ? `${s.tun.interface} ${s.tun.address} (${s.tun.prefix}, mtu ${s.tun.mtu})` : 'none (--no-tun)'],
    ...(s.tun ? [['dns', s.tun.dns] as [string, string]] : []),
    ...(s.datapath ? [['datapath', `AES-GCM ${s.datapath.aead}, UDP out ${s.datapath.send}, in ${s.datapath.receive}`] as [string, string]] : []),
    ...(s.networks ?? []).map(
      (n) =>
        [`network ${n.name}`, `${n.address} ${n.ipv6} (id ${n.id}, ${n.role}, ${n.members} member${n.members === 1 ? '' : 's'}, ports ${n.allowed_ports.length === 0 ? 'all' : n.allowed_ports.join(',')})`] as [string, string],
    ),
    ['kdf', s.kdf],
    ['auto-accept', s.auto_accept ? 'yes' : 'no'],
    ...(s.trust_unsaved ? [['trust table', `NOT SAVED (${s.trust_unsaved}); retrying`] as [string, string]] : []),
    ['peers', s.peers],
    ['connections', s.connections],
    ['uptime', formatSeconds(s.uptime_s)],
    ['version', s.version],
  ]
  return formatFields(fields)
}
