/** `pilot-tun hostname set NAME`: the name other agents resolve this node by. */
import type { Argv, CommandModule } from 'yargs'
import { withDaemon, withDaemonOptions, type DaemonClientArgs } from '../daemon-options.js'
import { printResult } from '../output.js'

interface HostnameArgs extends DaemonClientArgs {
  name: string
}

export const hostnameCommand: CommandModule = {
  command: 'hostname <action>',
  describe: 'set this node\'s hostname in the registry',
  builder: (y) =>
    y
      .command<HostnameArgs>({
        command: 'set <name>',
        describe: 'register NAME as this node\'s hostname (replaces the old one)',
        builder: (b) =>
          withDaemonOptions(b).positional('name', { type: 'string', demandOption: true, describe: 'new hostname' }) as Argv<HostnameArgs>,
        handler: async (args) => {
          const r = await withDaemon(args, (c) => c.call('hostname.set', { name: args.name }))
          printResult(args, r, (v) => `hostname set to ${v.hostname}`)
        },
      })
      .demandCommand(1, 'Name an action: set.'),
  handler: () => {},
}
