/**
 * The registry's TLS certificate and key (docs/wire.md §10.1, issue 15):
 * given files (`--tls-cert`/`--tls-key`), or a self-signed ECDSA P-256
 * certificate made once and kept in a directory (the store's, or
 * `--tls-dir`), so its pin survives restarts, or, with no directory (an
 * in-memory store), one made for this run only, as the Go reference always does.
 *
 * The pin is the lower-case hex SHA-256 of the DER of the first certificate
 * in the file: what daemons pass as `--registry-fingerprint`.
 */
import { X509Certificate, createPrivateKey, type KeyObject } from 'node:crypto'
import { constants as fsConstants } from 'node:fs'
import { chmod, mkdir, open, rename, rm, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { certificatePin, createSelfSignedCertificate } from '../crypto/x509.js'
import { ConfigError } from '../errors.js'
import { RegistryError, RegistryErrorCode } from './errors.js'

export const TLS_CERT_FILE = 'registry-tls-cert.pem'
export const TLS_KEY_FILE = 'registry-tls-key.pem'
/** A certificate or key file larger than this is not one. */
const MAX_PEM_FILE = 1024 * 1024

export interface RegistryTlsMaterial {
  certPem: string
  keyPem: string
  /** Lower-case hex SHA-256 of the first certificate's DER. */
  pin: string
  /** Where it came from: the given files, a directory (made now or earlier), or this run only. */
  source: 'files' | 'created' | 'loaded' | 'ephemeral'
  /** The certificate file, unless ephemeral. */
  certPath: string | null
}

export interface RegistryTlsSource {
  certPath?: string | undefined
  keyPath?: string | undefined
  /** Keeps a generated certificate; null = make one for this run only. */
  dir?: string | null | undefined
}

/** Loads or makes the registry's certificate and key; PT_CONFIG_INVALID / PT_REGISTRY_TLS on failure. */
export async function loadRegistryTls(source: RegistryTlsSource): Promise<RegistryTlsMaterial> {
  const { certPath, keyPath } = source
  if ((certPath === undefined) !== (keyPath === undefined)) {
    throw new ConfigError('--tls-cert and --tls-key go together', 'give both (PEM files), or neither for a self-signed certificate kept with the store')
  }
  if (certPath !== undefined && keyPath !== undefined) return { ...(await readPair(certPath, keyPath)), source: 'files', certPath }
  const dir = source.dir ?? null
  if (dir === null) {
    const made = createSelfSignedCertificate()
    return { certPem: made.certPem, keyPem: made.keyPem, pin: certificatePin(made.der), source: 'ephemeral', certPath: null }
  }
  const cert = join(dir, TLS_CERT_FILE)
  const key = join(dir, TLS_KEY_FILE)
  const [haveCert, haveKey] = await Promise.all([exists(cert), exists(key)])
  if (haveCert && haveKey) return { ...(await readPair(cert, key)), source: 'loaded', certPath: cert }
  if (haveCert !== haveKey) {
    throw new RegistryError(RegistryErrorCode.TLS, `${haveCert ? cert : key} exists but ${haveCert ? key : cert} does not`, {
      hint: 'restore the missing file, or remove the other one to make a new certificate (daemons then need the new pin)',
    })
  }
  const made = createSelfSignedCertificate()
  try {
    await mkdir(dir, { recursive: true, mode: 0o700 })
    // The key first: a certificate file never exists without its key.
    await writeNew(key, made.keyPem)
    await writeNew(cert, made.certPem)
  } catch (err) {
    throw new RegistryError(RegistryErrorCode.TLS, `cannot keep the registry certificate in ${dir}: ${(err as Error).message}`, {
      hint: 'the directory must be writable by the registry (or give --tls-dir, or --tls-cert/--tls-key)',
      cause: err,
    })
  }
  return { certPem: made.certPem, keyPem: made.keyPem, pin: certificatePin(made.der), source: 'created', certPath: cert }
}

/** The pin of the first certificate in PEM text; PT_REGISTRY_TLS when there is none. */
export function pinOfPem(certPem: string, where = 'the certificate'): string {
  return certificatePin(parseCertificate(certPem, where).raw)
}

async function readPair(certPath: string, keyPath: string): Promise<{ certPem: string; keyPem: string; pin: string }> {
  const [certPem, keyPem] = await Promise.all([readPem(certPath), readPem(keyPath)])
  const x509 = parseCertificate(certPem, certPath)
  let key: KeyObject
  try {
    key = createPrivateKey(keyPem)
  } catch (err) {
    throw new RegistryError(RegistryErrorCode.TLS, `${keyPath} holds no usable private key: ${(err as Error).message}`, { hint: 'give a PEM private key (PKCS#8, SEC1 or PKCS#1)' })
  }
  if (!x509.checkPrivateKey(key)) {
    throw new RegistryError(RegistryErrorCode.TLS, `${keyPath} is not the key of the certificate in ${certPath}`, { hint: 'give the key that belongs to the certificate' })
  }
  return { certPem, keyPem, pin: certificatePin(x509.raw) }
}

function parseCertificate(pem: string, where: string): X509Certificate {
  try {
    return new X509Certificate(pem) // the first certificate of a chain
  } catch (err) {
    throw new RegistryError(RegistryErrorCode.TLS, `${where} holds no usable certificate: ${(err as Error).message}`, { hint: 'give a PEM certificate (-----BEGIN CERTIFICATE-----)' })
  }
}

async function readPem(path: string): Promise<string> {
  let data: Buffer
  try {
    const handle = await open(path, fsConstants.O_RDONLY)
    try {
      const size = (await handle.stat()).size
      if (size > MAX_PEM_FILE) throw new Error(`${size} bytes is too large for a PEM file`)
      data = await handle.readFile()
    } finally {
      await handle.close()
    }
  } catch (err) {
    throw new RegistryError(RegistryErrorCode.TLS, `cannot read ${path}: ${(err as Error).message}`, {
      hint: (err as NodeJS.ErrnoException).code === 'EACCES' ? "fix the file's permissions for the registry's user" : 'check the path',
      cause: err,
    })
  }
  return data.toString('utf8')
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path)
    return true
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false
    throw new RegistryError(RegistryErrorCode.TLS, `cannot read ${path}: ${(err as Error).message}`, { cause: err })
  }
}

/** Writes a new file with mode 0600 (via a temporary name, so no half-written file is ever read). */
async function writeNew(path: string, text: string): Promise<void> {
  const tmp = `${path}.${process.pid}.tmp`
  const handle = await open(tmp, 'wx', 0o600)
  try {
    await handle.writeFile(text)
    await handle.sync()
  } finally {
    await handle.close()
  }
  try {
    await chmod(tmp, 0o600)
    await rename(tmp, path)
  } catch (err) {
    await rm(tmp, { force: true })
    throw err
  }
}
