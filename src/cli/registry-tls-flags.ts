/**
 * The TLS flags of `pilot-tun registry` and `pilot-tun rendezvous` (issue 15),
 * named as the Go reference's (`-tls`, `-tls-cert`, `-tls-key`), plus
 * `--tls-only` and `--tls-dir`:
 *
 *   --tls              TLS on the registry port, plaintext still served there
 *                      (the first byte of a connection tells them apart);
 *   --tls-only         TLS and nothing else (implies --tls);
 *   --tls-cert/--tls-key  PEM files; without them a self-signed certificate is
 *                      made once and kept next to the SQLite store (or in
 *                      --tls-dir), so the pin stays the same across restarts.
 *
 * The pin goes to the log and to stdout (one JSON line with --json), and
 * `pilot-tun registry pin` prints it without starting anything.
 */
import { dirname } from 'node:path'
import type { Argv, CommandModule } from 'yargs'
import { ConfigError } from '../errors.js'
import type { Logger } from '../logger.js'
import { loadRegistryTls, TLS_CERT_FILE, TLS_KEY_FILE, type RegistryTlsMaterial } from '../registry/tls.js'
import type { RegistryTlsListenOptions } from '../registry/tls-front.js'
import { RegistryError, RegistryErrorCode } from '../registry/errors.js'

export interface RegistryTlsArgs {
  tls?: boolean
  'tls-only'?: boolean
  'tls-cert'?: string
  'tls-key'?: string
  'tls-dir'?: string
  json?: boolean
}

export function withRegistryTlsOptions<T>(y: Argv<T>): Argv<T & RegistryTlsArgs> {
  return y
    .option('tls', { type: 'boolean', describe: 'also accept TLS on the registry port (daemons: --registry-tls --registry-fingerprint PIN)', defaultDescription: 'false' })
    .option('tls-only', { type: 'boolean', describe: 'accept TLS only: plaintext connections are closed unread (implies --tls)', defaultDescription: 'false' })
    .option('tls-cert', { type: 'string', describe: 'TLS certificate (PEM; the pin is of its first certificate); default: a self-signed one kept with the store' })
    .option('tls-key', { type: 'string', describe: 'TLS private key (PEM) of --tls-cert' })
    .option('tls-dir', { type: 'string', describe: `where the self-signed certificate is kept (${TLS_CERT_FILE}, ${TLS_KEY_FILE}, mode 0600); default: the store's directory` })
    .option('json', { type: 'boolean', describe: 'print one JSON line with the bound address and the TLS pin on stdout once listening', defaultDescription: 'false' }) as Argv<T & RegistryTlsArgs>
}

/** Where a self-signed certificate is kept for this store: --tls-dir, the store's directory, or nowhere (in-memory store). */
export function tlsDirFor(args: RegistryTlsArgs, storePath: string): string | null {
  if (args['tls-dir'] !== undefined && args['tls-dir'] !== '') return args['tls-dir']
  if (storePath === ':memory:') return null
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(storePath)) {
    throw new ConfigError(`the store ${storePath.replace(/\/\/[^@/]*@/, '//…@')} has no directory to keep the TLS certificate in`, 'give --tls-dir DIR (the same certificate for every front end), or --tls-cert/--tls-key')
  }
  return dirname(storePath)
}

/** The certificate and the listener options the flags ask for, or null for plaintext only. */
export async function registryTlsFromArgs(args: RegistryTlsArgs, storePath: string): Promise<{ listen: RegistryTlsListenOptions; material: RegistryTlsMaterial } | null> {
  const on = args.tls === true || args['tls-only'] === true
  if (!on) {
    const stray = (['tls-cert', 'tls-key', 'tls-dir'] as const).find((k) => args[k] !== undefined)
    if (stray !== undefined) throw new ConfigError(`--${stray} is given but TLS is off`, 'add --tls (TLS and plaintext) or --tls-only')
    return null
  }
  const material = await loadRegistryTls({ certPath: args['tls-cert'], keyPath: args['tls-key'], dir: tlsDirFor(args, storePath) })
  return { material, listen: { certPem: material.certPem, keyPem: material.keyPem, only: args['tls-only'] === true } }
}

/** Says the pin: a log line, and on stdout a line for people or (--json) one JSON object with `extra`. */
export function announceRegistryTls(
  tls: { listen: RegistryTlsListenOptions; material: RegistryTlsMaterial } | null,
  args: RegistryTlsArgs,
  logger: Logger,
  extra: Record<string, unknown>,
): void {
  const summary = tls === null ? null : { pin: tls.material.pin, only: tls.listen.only, certificate: tls.material.certPath, source: tls.material.source }
  if (tls !== null) {
    logger.info(`registry TLS ${tls.listen.only ? 'only' : 'and plaintext'}; pin ${tls.material.pin}`, { certificate: tls.material.certPath ?? 'this run only', source: tls.material.source })
    if (tls.material.source === 'ephemeral') logger.warn('the TLS certificate lives only as long as this process (in-memory store): daemons need the new pin after a restart', {})
  }
  if (args.json === true) process.stdout.write(`${JSON.stringify({ ...extra, tls: summary })}\n`)
  else if (summary !== null) process.stdout.write(`registry TLS pin: ${summary.pin}\n`)
}

interface PinArgs {
  store: string
  'tls-dir'?: string
  'tls-cert'?: string
  json?: boolean
}

/** `pilot-tun registry pin`: the pin of the kept (or given) certificate, without starting a registry or making one. */
export function registryPinCommand(defaultStore: string): CommandModule<object, PinArgs> {
  return {
    command: 'pin',
    describe: 'print the pin of the registry\'s TLS certificate (for daemons\' --registry-fingerprint)',
    builder: (y) =>
      y
        .option('store', { type: 'string', default: defaultStore, describe: 'the registry\'s store (its directory keeps the certificate)' })
        .option('tls-dir', { type: 'string', describe: 'the directory given to the registry as --tls-dir' })
        .option('tls-cert', { type: 'string', describe: 'a certificate file (PEM) instead' })
        .option('json', { type: 'boolean', describe: 'print {"pin": ...}' }) as Argv<PinArgs>,
    handler: async (args) => {
      const { readFile } = await import('node:fs/promises')
      const { join } = await import('node:path')
      const { pinOfPem } = await import('../registry/tls.js')
      let certPath = args['tls-cert']
      if (certPath === undefined) {
        const dir = tlsDirFor(args, args.store)
        if (dir === null) throw new ConfigError('an in-memory store keeps no certificate', 'give --tls-dir or --tls-cert')
        certPath = join(dir, TLS_CERT_FILE)
      }
      let pem: string
      try {
        pem = await readFile(certPath, 'utf8')
      } catch (err) {
        throw new RegistryError(RegistryErrorCode.TLS, `cannot read ${certPath}: ${(err as Error).message}`, {
          hint: (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'the registry makes it at its first start with --tls' : "run as the registry's user (or root)",
        })
      }
      const pin = pinOfPem(pem, certPath)
      process.stdout.write(args.json === true ? `${JSON.stringify({ pin, certificate: certPath })}\n` : `${pin}\n`)
    },
  }
}
