/** Small shared helpers for the crypto tests. */
import type { RandomSource } from '../../src/random.js'

export function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString('hex')
}

export function fromHex(text: string): Uint8Array {
  return new Uint8Array(Buffer.from(text, 'hex'))
}

export function concat(...parts: Uint8Array[]): Uint8Array {
  return new Uint8Array(Buffer.concat(parts))
}

/** A RandomSource that hands out fixed bytes (to pin a nonce prefix to a vector). */
export class FixedRandom implements RandomSource {
  private pos = 0
  constructor(private readonly bytes: Uint8Array) {}

  fill(out: Uint8Array): void {
    for (let i = 0; i < out.length; i++) out[i] = this.bytes[this.pos++ % this.bytes.length]!
  }

  u32(): number {
    const b = new Uint8Array(4)
    this.fill(b)
    return Buffer.from(b).readUInt32BE(0)
  }
}
