/**
 * The `pilot-tun` command line. Commands are registered from their own
 * modules; this file only builds the yargs parser and maps errors to exit codes.
 */
import yargs from 'yargs'
import { PilotError } from '../errors.js'
import { CliExit } from './output.js'
import { addressCommand } from './commands/address.js'
import { beaconCommand } from './commands/beacon.js'
import { downCommand } from './commands/down.js'
import { hostnameCommand } from './commands/hostname.js'
import { identityCommand } from './commands/identity.js'
import { peersCommand } from './commands/peers.js'
import { pingCommand } from './commands/ping.js'
import { registryCommand } from './commands/registry.js'
import { rendezvousCommand } from './commands/rendezvous.js'
import { resolveCommand } from './commands/resolve.js'
import { statusCommand } from './commands/status.js'
import { trustCommand } from './commands/trust.js'
import { upCommand } from './commands/up.js'

export async function main(argv: string[]): Promise<number> {
  let exitCode = 0
  const parser = yargs(argv)
    .scriptName('pilot-tun')
    .usage('$0 <command> [options]\n\nPilot Protocol overlay network with a Linux TUN front door.')
    .command(upCommand)
    .command(downCommand)
    .command(statusCommand)
    .command(peersCommand)
    .command(pingCommand)
    .command(resolveCommand)
    .command(trustCommand)
    .command(hostnameCommand)
    .command(registryCommand)
    .command(beaconCommand)
    .command(rendezvousCommand)
    .command(addressCommand)
    .command(identityCommand)
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
