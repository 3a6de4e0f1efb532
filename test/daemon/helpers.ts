// Shared fixtures for the daemon tests: byte patterns, stream helpers, waiting.
import type { Duplex } from 'node:stream'

/** Deterministic bytes (xorshift) so both ends can be hashed. */
export function pattern(size: number, seed: number): Buffer {
  const out = Buffer.allocUnsafe(size)
  let x = (seed * 2654435761) >>> 0 || 1
  for (let i = 0; i < size; i += 4) {
    x ^= x << 13
    x >>>= 0
    x ^= x >>> 17
    x ^= x << 5
    x >>>= 0
    out[i] = x & 0xff
    if (i + 1 < size) out[i + 1] = (x >>> 8) & 0xff
    if (i + 2 < size) out[i + 2] = (x >>> 16) & 0xff
    if (i + 3 < size) out[i + 3] = x >>> 24
  }
  return out
}

/** Reads until 'end'; rejects on 'error'. */
export function readStream(s: Duplex): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    s.on('data', (c: Buffer) => chunks.push(c))
    s.once('end', () => resolve(Buffer.concat(chunks)))
    s.once('error', reject)
  })
}

/** Writes `data` in 64 KiB pieces honouring back-pressure, then ends the stream. */
export async function writeAll(s: Duplex, data: Buffer): Promise<void> {
  const piece = 64 * 1024
  for (let off = 0; off < data.length; off += piece) {
    if (!s.write(data.subarray(off, off + piece))) {
      await new Promise<void>((resolve, reject) => {
        const onDrain = (): void => {
          s.off('error', onError)
          resolve()
        }
        const onError = (err: Error): void => {
          s.off('drain', onDrain)
          reject(err)
        }
        s.once('drain', onDrain)
        s.once('error', onError)
      })
    }
  }
  await new Promise<void>((resolve, reject) => {
    s.end(() => resolve())
    s.once('error', reject)
  })
}

export async function waitFor(cond: () => boolean | Promise<boolean>, what: string, timeoutMs = 5_000): Promise<void> {
  const start = Date.now()
  while (!(await cond())) {
    if (Date.now() - start > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await sleep(10)
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms))
}

/** The error code a promise rejects with (its text without one), or 'no error'; a stream it yields is destroyed. */
export async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    const value = await p
    ;(value as { destroy?: () => void } | undefined)?.destroy?.()
  } catch (err) {
    return (err as { code?: string }).code ?? String(err)
  }
  return 'no error'
}
