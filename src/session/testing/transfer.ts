/**
 * A bulk-transfer application for simulations: writes a deterministic byte
 * stream on one connection, reads and hashes it on the other, then half-closes.
 * The stream is a window onto a shared random pattern, so no per-run data has
 * to be generated; the SHA-256 of what was written and what was read must match.
 */
import { createHash, type Hash } from 'node:crypto'
import { SeededRandom } from '../../random.js'
import { StreamEvent, type StreamConnection } from '../stream.js'
import type { Millis } from '../types.js'

const PATTERN_SIZE = (1 << 20) + 4099 // not a multiple of any segment size

function buildPattern(): Uint8Array {
  const p = new Uint8Array(PATTERN_SIZE)
  new SeededRandom(0xc0ffee).fill(p)
  return p
}

/** Read-only by convention: a deterministic pseudo-random pattern built once at load. */
const PATTERN = buildPattern()

export function pattern(): Uint8Array {
  return PATTERN
}

/** One direction of a transfer: the writer side and the reader side. */
export class OneWay {
  readonly total: number
  written = 0
  readBytes = 0
  finished = false // writer called finish()
  ended = false // reader saw -1
  private readonly start: number
  private readonly sendHash: Hash = createHash('sha256')
  private readonly recvHash: Hash = createHash('sha256')
  private readonly chunk: number
  private readonly into: Uint8Array
  private readonly finishWhenDone: boolean

  constructor(
    readonly writer: StreamConnection,
    readonly reader: StreamConnection,
    total: number,
    offset: number,
    options: { chunk?: number; readChunk?: number; finish?: boolean } = {},
  ) {
    this.total = total
    this.start = offset % PATTERN_SIZE
    this.chunk = options.chunk ?? 65536
    this.into = new Uint8Array(options.readChunk ?? 65536)
    this.finishWhenDone = options.finish ?? true
  }

  /** Writes what fits and reads what is there. Call after every simulation step. */
  pump(now: Millis, readLimit = Number.POSITIVE_INFINITY): void {
    const p = pattern()
    while (this.written < this.total) {
      const pos = (this.start + this.written) % PATTERN_SIZE
      const n = Math.min(this.chunk, this.total - this.written, PATTERN_SIZE - pos)
      const view = p.subarray(pos, pos + n)
      const took = this.writer.write(now, view)
      if (took === 0) break
      this.sendHash.update(view.subarray(0, took))
      this.written += took
    }
    if (this.written === this.total && !this.finished && this.finishWhenDone) {
      this.finished = true
      this.writer.finish(now)
    }
    let budget = readLimit
    while (!this.ended && budget > 0) {
      const into = budget < this.into.length ? this.into.subarray(0, budget) : this.into
      const n = this.reader.read(into)
      if (n === -1) {
        this.ended = true
        break
      }
      if (n === 0) break
      this.recvHash.update(into.subarray(0, n))
      this.readBytes += n
      budget -= n
    }
  }

  get done(): boolean {
    return this.ended
  }

  /** [sha256 of bytes written, sha256 of bytes read]; call once, at the end. */
  digests(): [string, string] {
    return [this.sendHash.digest('hex'), this.recvHash.digest('hex')]
  }
}

/** Drains a connection's events, returning them (tests look at them). */
export function drainEvents(c: StreamConnection, into: number[] = []): number[] {
  for (;;) {
    const e = c.pollEvent()
    if (e === StreamEvent.None) return into
    into.push(e)
  }
}
