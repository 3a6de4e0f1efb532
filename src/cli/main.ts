/**
 * The `pilot-tun` command line. Commands are registered from their own
 * modules; this file only builds the yargs parser and maps errors to exit codes.
 *
 * The long-running commands (up, registry, beacon, rendezvous) pull in winston,
 * SQLite and the whole daemon; their modules are loaded only when one of them
 * is the command, so `status`, `ping` & co. start in a fraction of the time.
 * Otherwise a stub with the same name and description stands in for the help.
 */
import yargs, { type CommandModule } from 'yargs'
import { PilotError } from '../errors.js'
import { CliExit } from './output.js'
import { addressCommand } from './commands/address.js'
import { downCommand } from './commands/down.js'
import { hostnameCommand } from './commands/hostname.js'
import { identityCommand } from './commands/identity.js'
import { netcheckCommand } from './commands/netcheck.js'
import { peersCommand } from './commands/peers.js'
import { pingCommand } from './commands/ping.js'
import { resolveCommand } from './commands/resolve.js'
import { statusCommand } from './commands/status.js'
import { trustCommand } from './commands/trust.js'
import { taskCommand } from './commands/task.js'
import { inboxCommand, receivedCommand, sendFileCommand, sendMessageCommand } from './commands/messages.js'
import { publishCommand, subscribeCommand } from './commands/events.js'
import { networkCommand } from './commands/network.js'
import { auditCommand } from './commands/audit.js'
import { secureCommand } from './commands/secure.js'

/** Loaders and help lines of the commands loaded on demand. Keep `describe` in step with the modules. */
const SERVER_COMMANDS: Record<string, { load: () => Promise<CommandModule<object, any>>; describe: string }> = {
  up: {
    load: async () => (await import('./commands/up.js')).upCommand,
    describe: 'run the pilot-tun daemon in the foreground (until Ctrl-C, SIGTERM or `pilot-tun down`)',
  },
  registry: {
    load: async () => (await import('./commands/registry.js')).registryCommand,
    describe: 'run a registry server (node directory, trust pairs, handshake relay) in the foreground',
  },
  beacon: {
    load: async () => (await import('./commands/beacon.js')).beaconCommand,
    describe: 'run a beacon: endpoint discovery, hole-punch coordination and relay (UDP, foreground)',
  },
  rendezvous: {
    load: async () => (await import('./commands/rendezvous.js')).rendezvousCommand,
    describe: 'run a registry and a beacon together in the foreground (a whole rendezvous point)',
  },
}

async function serverCommand(name: string, argv: string[]): Promise<CommandModule<object, any>> {
  const entry = SERVER_COMMANDS[name]!
  // Anywhere in argv, not only first: options may come before the command, and loading too much is merely slower.
  if (argv.includes(name)) return entry.load()
  return { command: name, describe: entry.describe, handler: () => {} }
}

export async function main(argv: string[]): Promise<number> {
  let exitCode = 0
  // `pilot-tun ping x | head -2`: a reader that went away ends us quietly, as it ends cat(1).
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(exitCode)
    throw err
  })
  const [upCommand, registryCommand, beaconCommand, rendezvousCommand] = await Promise.all(
    ['up', 'registry', 'beacon', 'rendezvous'].map((n) => serverCommand(n, argv)),
  )
  const parser = yargs(argv)
    .scriptName('pilot-tun')
    .usage('$0 <command> [options]\n\nPilot Protocol overlay network with a Linux TUN front door.')
    .command(upCommand!)
    .command(downCommand)
    .command(statusCommand)
    .command(peersCommand)
    .command(pingCommand)
    .command(resolveCommand)
    .command(trustCommand)
    .command(taskCommand)
    .command(hostnameCommand)
    .command(networkCommand)
    .command(auditCommand)
    .command(sendMessageCommand)
    .command(sendFileCommand)
    .command(inboxCommand)
    .command(receivedCommand)
    .command(publishCommand)
    .command(subscribeCommand)
    .command(secureCommand)
    .command(registryCommand!)
    .command(beaconCommand!)
    .command(rendezvousCommand!)
    .command(netcheckCommand)
    .command(addressCommand)
    .command(identityCommand)
    // `pilot-tun completion` prints the bash script; the script asks `pilot-tun --get-yargs-completions …`.
    .completion('completion', 'print a bash completion script (install: pilot-tun completion >> ~/.bashrc)')
    .strict()
    .demandCommand(1, 'Name a command; `pilot-tun --help` lists them.')
    .recommendCommands()
    .help()
    .alias('h', 'help')
    .version()
    .fail((msg, err) => {
      throw err ?? new PilotError('PT_CLI_USAGE', msg, { hint: 'run `pilot-tun --help` for the command list' })
    })
  try {
    await parser.parseAsync()
  } catch (err) {
    exitCode = reportError(err, argv.includes('--json'))
  }
  return exitCode
}

function reportError(err: unknown, json: boolean): number {
  if (err instanceof CliExit) return err.exitCode
  const e =
    err instanceof PilotError ? err : new PilotError('PT_INTERNAL', err instanceof Error ? err.message : String(err))
  if (json) {
    process.stdout.write(`${JSON.stringify({ error: e.toJSON() })}\n`)
  } else {
    process.stderr.write(`pilot-tun: ${e.message} [${e.code}]\n`)
    if (e.hint) process.stderr.write(`hint: ${e.hint}\n`)
  }
  return e.code === 'PT_CLI_USAGE' ? 2 : 1
}
