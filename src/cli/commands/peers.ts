/** `pilot-tun peers`: one line per peer the tunnel knows, with its path and counters. */
import type { CommandModule } from 'yargs'
import type { PeerStatus } from '../../daemon/api.js'
import { withDaemon, withDaemonOptions, type DaemonClientArgs } from '../daemon-options.js'
import { formatBytes, formatMs, formatTable, printResult } from '../output.js'

export const peersCommand: CommandModule<object, DaemonClientArgs> = {
  command: 'peers',
  describe: 'list peers: address, hostname, path (direct|punched|relay), endpoint, rtt, kdf, bytes',
  builder: (y) => withDaemonOptions(y),
  handler: async (args) => {
    const peers = await withDaemon(args, (c) => c.call('peers', {}))
    printResult(args, peers, formatPeers)
  },
}

export function formatPeers(peers: PeerStatus[]): string {
  if (peers.length === 0) return 'no peers yet (they appear after the first ping, connection or trust exchange)'
  const rows = peers.map((p) => [
    p.address,
    p.hostname ?? '-',
    p.path,
    p.endpoint ?? '-',
    p.rtt_ms === null ? '-' : formatMs(p.rtt_ms),
    p.kdf ?? '-',
    formatBytes(p.bytes_in),
    formatBytes(p.bytes_out),
  ])
  return formatTable(['ADDRESS', 'HOSTNAME', 'PATH', 'ENDPOINT', 'RTT', 'KDF', 'IN', 'OUT'], rows)
}
