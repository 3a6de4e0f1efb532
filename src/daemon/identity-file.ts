/**
 * The identity file on disk (docs/wire.md §12): atomic 0600 writes, and reads that
 * refuse a key group or others can access. The keys and the file's text are
 * crypto/'s business (`crypto/identity.ts`); this edge module owns the file.
 */
import { randomBytes } from 'node:crypto'
import { mkdir, open, rename, unlink } from 'node:fs/promises'
import { dirname } from 'node:path'
import { CryptoError } from '../errors.js'
import { CryptoErrorCode } from '../crypto/error-codes.js'
import { Identity, MAX_IDENTITY_FILE_SIZE, formatIdentityFile, malformedIdentityFile, parseIdentityFile } from '../crypto/identity.js'

/**
 * Writes the identity file atomically: a 0600 temp file beside it, fsync,
 * rename. The parent directory is created with mode 0700 if missing.
 */
export async function saveIdentityFile(path: string, identity: Identity): Promise<void> {
  const dir = dirname(path)
  await mkdir(dir, { recursive: true, mode: 0o700 })
  const tempPath = `${path}.tmp-${process.pid}-${randomBytes(6).toString('hex')}`
  const text = formatIdentityFile(identity)
  const handle = await open(tempPath, 'wx', 0o600)
  try {
    await handle.chmod(0o600) // the umask could only have removed bits; be exact anyway
    await handle.writeFile(text, 'utf8')
    await handle.sync()
  } catch (err) {
    await handle.close()
    await unlink(tempPath).catch(() => {})
    throw err
  }
  await handle.close()
  try {
    await rename(tempPath, path)
  } catch (err) {
    await unlink(tempPath).catch(() => {})
    throw err
  }
  // Make the rename itself durable; not every filesystem lets a directory be fsynced.
  const dirHandle = await open(dir, 'r').catch(() => null)
  if (dirHandle !== null) {
    await dirHandle.sync().catch(() => {})
    await dirHandle.close()
  }
}

/**
 * Reads and checks an identity file. Refuses a file that group or others can
 * access (`PT_CRYPTO_KEY_FILE_MODE`), a missing file (`PT_CRYPTO_KEY_FILE_MISSING`),
 * anything unreadable (`PT_CRYPTO_KEY_FILE_UNREADABLE`), and everything
 * `parseIdentityFile` refuses.
 */
export async function loadIdentityFile(path: string): Promise<Identity> {
  let handle
  try {
    handle = await open(path, 'r')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new CryptoError(CryptoErrorCode.KEY_FILE_MISSING, `identity file ${path} does not exist`, { cause: err })
    }
    throw new CryptoError(CryptoErrorCode.KEY_FILE_UNREADABLE, `cannot open identity file ${path}`, { cause: err })
  }
  try {
    // fstat on the open descriptor: the mode checked is the mode of the bytes read.
    const info = await handle.stat()
    if (!info.isFile()) throw malformedIdentityFile(path, 'not a regular file')
    if ((info.mode & 0o077) !== 0) {
      const mode = (info.mode & 0o777).toString(8).padStart(4, '0')
      throw new CryptoError(CryptoErrorCode.KEY_FILE_MODE, `identity file ${path} has mode ${mode}: group or others can access the private key`, {
        hint: `chmod 600 ${path}`,
      })
    }
    if (info.size > MAX_IDENTITY_FILE_SIZE) throw malformedIdentityFile(path, `too large (${info.size} bytes)`)
    const bytes = await handle.readFile()
    try {
      return parseIdentityFile(bytes.toString('utf8'), path)
    } finally {
      bytes.fill(0)
    }
  } finally {
    await handle.close()
  }
}

/** Loads the identity at `path`, or generates and saves one if the file does not exist. */
export async function loadOrCreateIdentity(path: string): Promise<{ identity: Identity; created: boolean }> {
  try {
    return { identity: await loadIdentityFile(path), created: false }
  } catch (err) {
    if (!(err instanceof CryptoError) || err.code !== CryptoErrorCode.KEY_FILE_MISSING) throw err
  }
  const identity = Identity.generate()
  await saveIdentityFile(path, identity)
  return { identity, created: true }
}
