/**
 * A private Unix socket for a local server (the control socket, the driver
 * IPC socket): the folder is made if missing, a stale file left by a killed
 * process is replaced while a live one is refused, the socket is born 0600
 * (umask around bind), and on close the file goes only if it is still ours
 * (same inode). Each server supplies its own typed errors.
 */
import { createConnection, type Server } from 'node:net'
import { chmod, lstat, mkdir, stat, unlink } from 'node:fs/promises'
import { dirname } from 'node:path'
import type { Logger } from './logger.js'

export interface UnixSocketErrors {
  /** Something already answers on the path. */
  inUse(path: string): Error
  /** The path cannot be made, inspected, bound or chmod-ed. */
  path(message: string, cause?: unknown, hint?: string): Error
  /** For log lines: "control socket", "IPC socket". */
  what: string
  /** The option that chooses the path, for hints. */
  flag: string
}

/** Binds `server` on `path` (mode 0600); returns the socket file's inode for `removeUnixSocket`. */
export async function listenUnixSocket(server: Server, path: string, errors: UnixSocketErrors, logger: Logger): Promise<number> {
  const dir = dirname(path)
  try {
    await mkdir(dir, { recursive: true, mode: 0o755 })
  } catch (err) {
    throw errors.path(`cannot create ${dir}: ${errText(err)}`, err)
  }
  await clearStaleSocket(path, errors, logger)
  await bind(server, path, errors)
  try {
    await chmod(path, 0o600)
    return (await stat(path)).ino
  } catch (err) {
    server.close()
    throw errors.path(`cannot chmod ${path}: ${errText(err)}`, err)
  }
}

/** Removes the socket file unless another server's socket has replaced it since (`inode` differs). */
export async function removeUnixSocket(path: string, inode: number | null, what: string, logger: Logger): Promise<void> {
  try {
    const s = await stat(path)
    if (inode !== null && s.ino !== inode) return // someone else's socket now
    await unlink(path)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') logger.warn(`could not remove the ${what}`, { path, error: errText(err) })
  }
}

/** 'alive' when something accepts a connection, 'refused' when nobody listens, else the error text. */
export function probeSocket(path: string, timeoutMs = 1000): Promise<'alive' | 'refused' | string> {
  return new Promise((resolve) => {
    const s = createConnection({ path })
    const done = (v: string): void => {
      clearTimeout(timer)
      s.destroy()
      resolve(v)
    }
    const timer = setTimeout(() => done('alive'), timeoutMs) // accepted into the backlog but slow: someone is there
    s.once('connect', () => done('alive'))
    s.once('error', (err: NodeJS.ErrnoException) => done(err.code === 'ECONNREFUSED' || err.code === 'ENOENT' ? 'refused' : err.message))
  })
}

async function clearStaleSocket(path: string, errors: UnixSocketErrors, logger: Logger): Promise<void> {
  let st
  try {
    st = await lstat(path)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return
    throw errors.path(`cannot inspect ${path}: ${errText(err)}`, err)
  }
  if (!st.isSocket()) throw errors.path(`${path} exists and is not a socket`, undefined, `remove it, or choose another path with ${errors.flag}`)
  const probe = await probeSocket(path)
  if (probe === 'alive') throw errors.inUse(path)
  if (probe !== 'refused') throw errors.path(`cannot check ${path}: ${probe}`)
  try {
    await unlink(path)
    logger.info(`removed a stale ${errors.what}`, { path })
  } catch (err) {
    throw errors.path(`cannot remove the stale socket ${path}: ${errText(err)}`, err)
  }
}

function bind(server: Server, path: string, errors: UnixSocketErrors): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException): void => {
      server.off('listening', onListening)
      reject(err.code === 'EADDRINUSE' ? errors.inUse(path) : errors.path(`cannot listen on ${path}: ${err.message}`, err))
    }
    const onListening = (): void => {
      server.off('error', onError)
      resolve()
    }
    server.once('error', onError)
    server.once('listening', onListening)
    // bind(2) happens inside listen(), synchronously: the socket file is born 0600.
    const previous = process.umask(0o177)
    try {
      server.listen({ path, backlog: 64 })
    } finally {
      process.umask(previous)
    }
  })
}

export function errText(err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}
