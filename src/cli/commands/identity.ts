/** `pilot-tun identity create|show`: the node's Ed25519 identity file. */
import type { Argv, CommandModule } from 'yargs'
import { access } from 'node:fs/promises'
import { Identity } from '../../crypto/identity.js'
import { loadIdentityFile, saveIdentityFile } from '../../daemon/identity-file.js'
import { PilotError } from '../../errors.js'
import { formatFields, printResult } from '../output.js'

export const DEFAULT_IDENTITY_PATH = '/var/lib/pilot-tun/identity.json'

interface IdentityArgs {
  path: string
  json: boolean
  force?: boolean
}

function withPath<T>(y: Argv<T>) {
  return y
    .option('path', { type: 'string', default: DEFAULT_IDENTITY_PATH, describe: 'identity file (Go reference format, mode 0600)' })
    .option('json', { type: 'boolean', default: false, describe: 'print JSON' })
}

function describeIdentity(path: string, id: Identity, created: boolean) {
  return { path, public_key: Buffer.from(id.publicKey).toString('base64'), created }
}

export const identityCommand: CommandModule = {
  command: 'identity <action>',
  describe: 'create or show the node identity (Ed25519 key file)',
  builder: (y) =>
    y
      .command<IdentityArgs>({
        command: 'create',
        describe: 'generate a new identity file (refuses to overwrite without --force)',
        builder: (b) => withPath(b).option('force', { type: 'boolean', default: false, describe: 'replace an existing file' }) as Argv<IdentityArgs>,
        handler: async (args) => {
          if (!args.force && (await exists(args.path))) {
            throw new PilotError('PT_IDENTITY_EXISTS', `${args.path} already exists`, {
              hint: 'a new identity means a new node address; pass --force only if that is what you want',
            })
          }
          const id = Identity.generate()
          await saveIdentityFile(args.path, id)
          printResult(args, describeIdentity(args.path, id, true), (v) =>
            formatFields([['created', v.path], ['public key', v.public_key]]),
          )
        },
      })
      .command<IdentityArgs>({
        command: 'show',
        describe: 'print the public key of an identity file',
        builder: (b) => withPath(b) as Argv<IdentityArgs>,
        handler: async (args) => {
          const id = await loadIdentityFile(args.path)
          printResult(args, describeIdentity(args.path, id, false), (v) =>
            formatFields([['identity', v.path], ['public key', v.public_key]]),
          )
        },
      })
      .demandCommand(1, 'Name an action: create or show.'),
  handler: () => {},
}

async function exists(path: string): Promise<boolean> {
  try {
    await access(path)
    return true
  } catch {
    return false
  }
}
