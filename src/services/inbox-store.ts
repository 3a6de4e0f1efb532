/**
 * `InboxStore`: where the data exchange service (port 1001) keeps what it
 * receives, in the Go reference's layout so its `pilotctl inbox` / `received`
 * could read ours (observed on a reference daemon, ~/.pilot/…):
 *
 *     <stateDir>/inbox/<TYPE>-YYYYMMDD-HHMMSS.mmm.json    one message:
 *         {"bytes":11,"data":"hello world","from":"0:0000.0000.0001",
 *          "received_at":"2026-12-06T06:26:43Z","type":"TEXT"}
 *     <stateDir>/received/<stem>-YYYYMMDD-HHMMSS.mmm<ext> one file, its bytes as sent
 *
 * (`data` is the payload as UTF-8 text, as Go writes it; payloads that are not
 * valid UTF-8 also get `data_base64`, an addition Go ignores.) Times are UTC.
 *
 * Bounded: the two directories together hold at most `maxBytes` and
 * `maxCount` files (usage is counted at open and kept up to date); a save that
 * would exceed either is refused with PT_INBOX_FULL, nothing is written. A
 * FILE name from the network is reduced to a safe base name (no directories,
 * no NUL or control characters, no `.`/`..`, at most 128 bytes) and the file
 * is created with O_EXCL; a name already taken gets `-2`, `-3`, … — a file
 * never lands outside `received/` and never replaces another.
 */
import { mkdir, open, readdir, readFile, stat, unlink } from 'node:fs/promises'
import { join } from 'node:path'
import { ServiceError, ServiceErrorCode } from './errors.js'

export interface InboxQuota {
  /** Bytes on disk, messages and files together. Default 256 MiB. */
  maxBytes: number
  /** Messages and files together. Default 10,000. */
  maxCount: number
}

export const DEFAULT_INBOX_QUOTA: Readonly<InboxQuota> = Object.freeze({ maxBytes: 256 * 1024 * 1024, maxCount: 10_000 })

/** Longest stored file name stem, in UTF-8 bytes. */
const MAX_NAME_BYTES = 128
const MAX_EXT_BYTES = 16

export interface InboxMessage {
  bytes: number
  data: string
  from: string
  received_at: string
  type: string
  data_base64?: string
}

export interface ReceivedFile {
  name: string
  bytes: number
  modified: string
  path: string
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true })

export class InboxStore {
  readonly inboxDir: string
  readonly receivedDir: string
  private readonly quota: InboxQuota
  private usedBytes = 0
  private usedCount = 0

  private constructor(stateDir: string, quota: InboxQuota) {
    this.inboxDir = join(stateDir, 'inbox')
    this.receivedDir = join(stateDir, 'received')
    this.quota = quota
  }

  /** Creates the directories (0700) and counts what they hold. */
  static async open(stateDir: string, quota: Partial<InboxQuota> = {}): Promise<InboxStore> {
    const store = new InboxStore(stateDir, { ...DEFAULT_INBOX_QUOTA, ...quota })
    for (const dir of [store.inboxDir, store.receivedDir]) {
      await mkdir(dir, { recursive: true, mode: 0o700 })
      for (const name of await readdir(dir)) {
        const s = await stat(join(dir, name)).catch(() => null)
        if (s === null || !s.isFile()) continue
        store.usedBytes += s.size
        store.usedCount++
      }
    }
    return store
  }

  usage(): { bytes: number; count: number } & InboxQuota {
    return { bytes: this.usedBytes, count: this.usedCount, ...this.quota }
  }

  /** Stores one message (TEXT, JSON, BINARY or another type); returns the file's path. */
  async saveMessage(typeName: string, from: string, payload: Uint8Array, now = new Date()): Promise<string> {
    const message: InboxMessage = { bytes: payload.length, data: Buffer.from(payload).toString('utf8'), from, received_at: isoSeconds(now), type: typeName }
    if (!isUtf8(payload)) message.data_base64 = Buffer.from(payload).toString('base64')
    const body = Buffer.from(JSON.stringify(message), 'utf8')
    return this.write(this.inboxDir, `${safeStem(typeName)}-${stamp(now)}`, '.json', body)
  }

  /** Stores one received file under a safe version of `name`; returns the stored name. */
  async saveFile(name: string, data: Uint8Array, now = new Date()): Promise<string> {
    const { stem, ext } = splitName(sanitizeFileName(name))
    const path = await this.write(this.receivedDir, `${stem}-${stamp(now)}`, ext, data)
    return path.slice(this.receivedDir.length + 1)
  }

  /** Messages in the order received (oldest first). Reads them all: for tests and small inboxes. */
  async listMessages(): Promise<InboxMessage[]> {
    const out: InboxMessage[] = []
    await this.visitMessages((m) => {
      out.push(m)
      return true
    })
    return out.reverse()
  }

  /**
   * Reads messages newest first, one file at a time, until `visit` returns
   * false; returns how many message files there are. Memory: one message.
   */
  async visitMessages(visit: (m: InboxMessage) => boolean): Promise<number> {
    const names = (await this.names(this.inboxDir)).filter((n) => n.endsWith('.json'))
    for (let i = names.length - 1; i >= 0; i--) {
      let m: InboxMessage
      try {
        m = JSON.parse(await readFile(join(this.inboxDir, names[i]!), 'utf8')) as InboxMessage
      } catch {
        continue // removed meanwhile, or not ours
      }
      if (!visit(m)) break
    }
    return names.length
  }

  /** Received files in the order received (oldest first). */
  async listFiles(): Promise<ReceivedFile[]> {
    const out: ReceivedFile[] = []
    for (const name of await this.names(this.receivedDir)) {
      const path = join(this.receivedDir, name)
      const s = await stat(path).catch(() => null)
      if (s === null || !s.isFile()) continue
      out.push({ name, bytes: s.size, modified: isoSeconds(s.mtime), path })
    }
    return out
  }

  clearMessages(): Promise<number> {
    return this.clear(this.inboxDir)
  }

  clearFiles(): Promise<number> {
    return this.clear(this.receivedDir)
  }

  private async write(dir: string, base: string, ext: string, body: Uint8Array): Promise<string> {
    const q = this.quota
    if (this.usedCount + 1 > q.maxCount) throw inboxFull(`inbox full (${this.usedCount} of ${q.maxCount} entries)`)
    if (this.usedBytes + body.length > q.maxBytes) throw inboxFull(`inbox full (${this.usedBytes} + ${body.length} bytes exceeds ${q.maxBytes})`)
    // Reserved before the first await: concurrent saves cannot overshoot together.
    this.usedCount++
    this.usedBytes += body.length
    let written = false
    try {
      for (let n = 1; n <= 1000; n++) {
        const path = join(dir, n === 1 ? `${base}${ext}` : `${base}-${n}${ext}`)
        let fh
        try {
          fh = await open(path, 'wx', 0o600)
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code === 'EEXIST') continue
          throw err
        }
        try {
          await fh.writeFile(body)
          written = true
        } finally {
          await fh.close()
          if (!written) await unlink(path).catch(() => {})
        }
        return path
      }
      throw new Error('no free name')
    } catch (err) {
      if (err instanceof ServiceError) throw err
      throw new ServiceError(ServiceErrorCode.INBOX_IO, `cannot store in ${dir}: ${(err as Error).message}`, { cause: err })
    } finally {
      if (!written) {
        this.usedCount--
        this.usedBytes -= body.length
      }
    }
  }

  /** File names sorted by their time stamp, then name. */
  private async names(dir: string): Promise<string[]> {
    let names: string[]
    try {
      names = await readdir(dir)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return []
      throw new ServiceError(ServiceErrorCode.INBOX_IO, `cannot read ${dir}: ${(err as Error).message}`, { cause: err })
    }
    const key = (n: string): string => /\d{8}-\d{6}\.\d{3}/.exec(n)?.[0] ?? ''
    return names.sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : a < b ? -1 : a > b ? 1 : 0))
  }

  private async clear(dir: string): Promise<number> {
    let cleared = 0
    for (const name of await this.names(dir)) {
      const path = join(dir, name)
      const s = await stat(path).catch(() => null)
      if (s === null || !s.isFile()) continue
      try {
        await unlink(path)
      } catch {
        continue
      }
      cleared++
      this.usedCount = Math.max(0, this.usedCount - 1)
      this.usedBytes = Math.max(0, this.usedBytes - s.size)
    }
    return cleared
  }
}

function inboxFull(message: string): ServiceError {
  return new ServiceError(ServiceErrorCode.INBOX_FULL, message, { hint: 'clear it: pilot-tun inbox --clear / pilot-tun received --clear' })
}

/**
 * A received file name made safe: the last path component (both `/` and `\`
 * separate), without NUL, control characters and leading dots, at most 128
 * UTF-8 bytes; `file` when nothing is left.
 */
export function sanitizeFileName(name: string): string {
  const parts = name.split(/[/\\]/)
  let base = parts[parts.length - 1] ?? ''
  // eslint-disable-next-line no-control-regex
  base = base.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g, '').replace(/^[.\s]+/, '').trim()
  if (base === '') return 'file'
  return truncateUtf8(base, MAX_NAME_BYTES)
}

function splitName(name: string): { stem: string; ext: string } {
  const dot = name.lastIndexOf('.')
  if (dot <= 0) return { stem: name, ext: '' }
  const ext = name.slice(dot)
  if (Buffer.byteLength(ext, 'utf8') > MAX_EXT_BYTES) return { stem: name, ext: '' }
  return { stem: name.slice(0, dot), ext }
}

/** A message type word as a file name part (`UNKNOWN(7)` stays readable; anything odd becomes `_`). */
function safeStem(typeName: string): string {
  return typeName.replace(/[^A-Za-z0-9()_-]/g, '_').slice(0, 32)
}

function truncateUtf8(s: string, maxBytes: number): string {
  if (Buffer.byteLength(s, 'utf8') <= maxBytes) return s
  let out = ''
  let size = 0
  for (const ch of s) {
    const n = Buffer.byteLength(ch, 'utf8')
    if (size + n > maxBytes) break
    out += ch
    size += n
  }
  return out
}

function isUtf8(b: Uint8Array): boolean {
  try {
    strictUtf8.decode(b)
    return true
  } catch {
    return false
  }
}

const pad = (n: number, w = 2): string => String(n).padStart(w, '0')

/** `YYYYMMDD-HHMMSS.mmm` (UTC). */
function stamp(d: Date): string {
  return `${d.getUTCFullYear()}${pad(d.getUTCMonth() + 1)}${pad(d.getUTCDate())}-${pad(d.getUTCHours())}${pad(d.getUTCMinutes())}${pad(d.getUTCSeconds())}.${pad(d.getUTCMilliseconds(), 3)}`
}

/** RFC 3339 to the second, UTC (`2026-12-06T06:26:43Z`, as Go writes it). */
function isoSeconds(d: Date): string {
  return `${d.toISOString().slice(0, 19)}Z`
}
