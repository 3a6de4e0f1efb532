/** Big-endian integer helpers shared by every layer (no DataView on hot paths). */

export function readU32(buf: Uint8Array, o: number): number {
  return ((buf[o]! << 24) | (buf[o + 1]! << 16) | (buf[o + 2]! << 8) | buf[o + 3]!) >>> 0
}

export function writeU32(out: Uint8Array, o: number, v: number): void {
  out[o] = (v >>> 24) & 0xff
  out[o + 1] = (v >>> 16) & 0xff
  out[o + 2] = (v >>> 8) & 0xff
  out[o + 3] = v & 0xff
}

export function readU16(buf: Uint8Array, o: number): number {
  return (buf[o]! << 8) | buf[o + 1]!
}

export function writeU16(out: Uint8Array, o: number, v: number): void {
  out[o] = (v >>> 8) & 0xff
  out[o + 1] = v & 0xff
}
