/**
 * Randomness is injected, never read from a global: the sans-IO cores take a
 * `RandomSource` so tests can seed it (quinn-proto's `rng_seed`), and the
 * daemon gives them `CryptoRandom`.
 */
import { randomFillSync } from 'node:crypto'

export interface RandomSource {
  /** Fills `out` with random bytes. */
  fill(out: Uint8Array): void
  /** A uniformly random unsigned 32-bit integer. */
  u32(): number
}

/** CSPRNG-backed source. Draws 4 KiB at a time so per-call cost stays small. */
export class CryptoRandom implements RandomSource {
  private readonly pool = new Uint8Array(4096)
  private pos = this.pool.length

  fill(out: Uint8Array): void {
    if (out.length > this.pool.length / 4) {
      randomFillSync(out)
      return
    }
    if (this.pos + out.length > this.pool.length) {
      randomFillSync(this.pool)
      this.pos = 0
    }
    out.set(this.pool.subarray(this.pos, this.pos + out.length))
    this.pool.fill(0, this.pos, this.pos + out.length) // used bytes are not kept around
    this.pos += out.length
  }

  u32(): number {
    if (this.pos + 4 > this.pool.length) {
      randomFillSync(this.pool)
      this.pos = 0
    }
    const p = this.pool
    const i = this.pos
    const v = ((p[i]! << 24) | (p[i + 1]! << 16) | (p[i + 2]! << 8) | p[i + 3]!) >>> 0
    p.fill(0, i, i + 4)
    this.pos += 4
    return v
  }
}

/** Deterministic PRNG (SplitMix32-style) for tests and simulations. Not for keys. */
export class SeededRandom implements RandomSource {
  private state: number

  constructor(seed: number) {
    this.state = seed >>> 0
  }

  u32(): number {
    this.state = (this.state + 0x9e3779b9) >>> 0
    let z = this.state
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0
    return (z ^ (z >>> 16)) >>> 0
  }

  /** Uniform float in [0, 1). */
  float(): number {
    return this.u32() / 0x1_0000_0000
  }

  /** Uniform integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.float() * n)
  }

  fill(out: Uint8Array): void {
    let i = 0
    for (; i + 4 <= out.length; i += 4) {
      const v = this.u32()
      out[i] = v >>> 24
      out[i + 1] = (v >>> 16) & 0xff
      out[i + 2] = (v >>> 8) & 0xff
      out[i + 3] = v & 0xff
    }
    if (i < out.length) {
      const v = this.u32()
      for (let k = 0; i < out.length; i++, k++) out[i] = (v >>> (24 - 8 * k)) & 0xff
    }
  }
}
