/**
 * Fuzz harness for decoders: random inputs and mutations of valid inputs.
 *
 * A decoder passes when, for every input, it either returns a value or throws
 * a `DecodeError` (any other exception fails the run, with the input in hex so
 * the case can be replayed). `onDecoded` can add checks on accepted inputs,
 * such as "re-encodes to the same bytes".
 */
import assert from 'node:assert/strict'
import { DecodeError, PilotError } from '../../src/errors.js'
import { SeededRandom } from '../../src/random.js'

export interface FuzzOptions<T> {
  /** Total inputs to try (random + mutated). */
  iterations: number
  seed: number
  /** Valid inputs to mutate. */
  corpus: Uint8Array[]
  /** Longest random input. */
  maxRandomLength?: number
  decode(input: Uint8Array): T
  onDecoded?(value: T, input: Uint8Array): void
  /** Which exceptions count as a clean refusal. Default: `DecodeError`. */
  isRefusal?(err: unknown): boolean
}

export interface FuzzReport {
  accepted: number
  rejected: number
  reasons: Map<string, number>
}

export function fuzzDecoder<T>(opts: FuzzOptions<T>): FuzzReport {
  const rng = new SeededRandom(opts.seed)
  const maxLen = opts.maxRandomLength ?? 256
  const report: FuzzReport = { accepted: 0, rejected: 0, reasons: new Map() }
  for (let i = 0; i < opts.iterations; i++) {
    const input =
      opts.corpus.length === 0 || i % 4 === 0
        ? randomBytes(rng, rng.int(maxLen + 1))
        : mutate(rng, opts.corpus[rng.int(opts.corpus.length)]!)
    let value: T
    try {
      value = opts.decode(input)
    } catch (err) {
      const refused = opts.isRefusal ? opts.isRefusal(err) : err instanceof DecodeError
      if (!refused) {
        assert.fail(`decoder threw ${String(err)} (not a typed refusal) on input ${Buffer.from(input).toString('hex')}`)
      }
      const reason = err instanceof DecodeError ? err.reason : err instanceof PilotError ? err.code : 'other'
      report.rejected++
      report.reasons.set(reason, (report.reasons.get(reason) ?? 0) + 1)
      continue
    }
    report.accepted++
    opts.onDecoded?.(value, input)
  }
  return report
}

export function randomBytes(rng: SeededRandom, n: number): Uint8Array {
  const b = new Uint8Array(n)
  rng.fill(b)
  return b
}

/** One to four mutations: bit flips, byte overwrites, truncation, extension, splices, length-field tweaks. */
export function mutate(rng: SeededRandom, seed: Uint8Array): Uint8Array {
  let b: Uint8Array = Uint8Array.from(seed)
  const rounds = 1 + rng.int(4)
  for (let r = 0; r < rounds; r++) {
    switch (rng.int(7)) {
      case 0: // flip one bit
        if (b.length > 0) b[rng.int(b.length)]! ^= 1 << rng.int(8)
        break
      case 1: // overwrite a byte with an interesting value
        if (b.length > 0) b[rng.int(b.length)] = [0, 1, 0x7f, 0x80, 0xff, 0x10, 0x50][rng.int(7)]!
        break
      case 2: // truncate
        b = b.subarray(0, rng.int(b.length + 1))
        break
      case 3: { // extend with random bytes
        const extra = randomBytes(rng, 1 + rng.int(64))
        const n = new Uint8Array(b.length + extra.length)
        n.set(b)
        n.set(extra, b.length)
        b = n
        break
      }
      case 4: { // overwrite a run with random bytes
        if (b.length > 0) {
          const at = rng.int(b.length)
          const len = Math.min(b.length - at, 1 + rng.int(8))
          b.set(randomBytes(rng, len), at)
        }
        break
      }
      case 5: { // splice out a middle run
        if (b.length > 2) {
          const at = rng.int(b.length - 1)
          const len = 1 + rng.int(Math.min(16, b.length - at))
          const n = new Uint8Array(b.length - len)
          n.set(b.subarray(0, at))
          n.set(b.subarray(at + len), at)
          b = n
        }
        break
      }
      default: { // set a 16- or 32-bit field to an extreme value
        if (b.length >= 4) {
          const at = rng.int(b.length - 3)
          const v = [0, 0xffffffff, 0x7fffffff, 0x80000000, 1, 0x0000ffff][rng.int(6)]!
          b[at] = v >>> 24
          b[at + 1] = (v >>> 16) & 0xff
          b[at + 2] = (v >>> 8) & 0xff
          b[at + 3] = v & 0xff
        }
      }
    }
  }
  return b
}
