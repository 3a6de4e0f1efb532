/** `pilot-tun resolve TARGET`: a hostname, Pilot address or mapped IPv6 to address + IPv6, via the daemon. */
import type { Argv, CommandModule } from 'yargs'
import { withDaemon, withDaemonOptions, type DaemonClientArgs } from '../daemon-options.js'
import { formatFields, printResult } from '../output.js'

interface ResolveArgs extends DaemonClientArgs {
  target: string
}

export const resolveCommand: CommandModule<object, ResolveArgs> = {
  command: 'resolve <target>',
  describe: 'look up a hostname, Pilot address or mapped IPv6: Pilot address and mapped IPv6',
  builder: (y) =>
    withDaemonOptions(y).positional('target', {
      type: 'string',
      demandOption: true,
      describe: 'hostname | N:NNNN.HHHH.LLLL | mapped IPv6',
    }) as Argv<ResolveArgs>,
  handler: async (args) => {
    const r = await withDaemon(args, (c) => c.call('resolve', { target: args.target }))
    printResult(args, r, (v) =>
      formatFields([
        ['address', v.address],
        ['ipv6', v.ipv6],
        ['hostname', v.hostname ?? '-'],
        ['node', v.node_id],
      ]),
    )
  },
}
