/**
 * Naive twins for the TUN packet code: DataView builders and a word-by-word
 * checksum with the carry folded at every step, written independently of
 * src/tun/packets so the tests compare two implementations.
 */
import { SeededRandom } from '../../src/random.js'

/** Ones'-complement sum with end-around carry at every word; returns the checksum (~sum). */
export function naiveChecksum(parts: Uint8Array[]): number {
  const all: number[] = []
  for (const p of parts) for (const b of p) all.push(b)
  if (all.length % 2 === 1) all.push(0)
  let sum = 0
  for (let i = 0; i < all.length; i += 2) {
    sum += all[i]! * 256 + all[i + 1]!
    if (sum > 0xffff) sum = (sum & 0xffff) + 1
  }
  return 0xffff - sum
}

export function pseudoHeader(src: Uint8Array, dst: Uint8Array, upperLength: number, nextHeader: number): Uint8Array {
  const p = new Uint8Array(40)
  const v = new DataView(p.buffer)
  p.set(src, 0)
  p.set(dst, 16)
  v.setUint32(32, upperLength)
  v.setUint32(36, nextHeader)
  return p
}

export interface NaivePacket {
  src: Uint8Array
  dst: Uint8Array
  /** Extension headers as [type, bytes] in order; bytes[0] (next header) is filled in. */
  ext?: Array<[number, Uint8Array]>
  protocol: number
  /** Upper-layer bytes; the checksum field is computed unless `keepChecksum`. */
  l4: Uint8Array
  hopLimit?: number
  trafficClass?: number
  flowLabel?: number
  keepChecksum?: boolean
}

const CHECKSUM_AT: Record<number, number> = { 6: 16, 17: 6, 58: 2 }

/** Builds a whole IPv6 packet with a DataView, computing the upper-layer checksum naively. */
export function naivePacket(p: NaivePacket): Uint8Array {
  const ext = p.ext ?? []
  const extLen = ext.reduce((n, [, b]) => n + b.length, 0)
  const out = new Uint8Array(40 + extLen + p.l4.length)
  const v = new DataView(out.buffer)
  v.setUint32(0, (6 << 28) | ((p.trafficClass ?? 0) << 20) | (p.flowLabel ?? 0))
  v.setUint16(4, extLen + p.l4.length)
  v.setUint8(6, ext.length > 0 ? ext[0]![0] : p.protocol)
  v.setUint8(7, p.hopLimit ?? 64)
  out.set(p.src, 8)
  out.set(p.dst, 24)
  let at = 40
  for (let i = 0; i < ext.length; i++) {
    const b = Uint8Array.from(ext[i]![1])
    b[0] = i + 1 < ext.length ? ext[i + 1]![0] : p.protocol
    out.set(b, at)
    at += b.length
  }
  const l4 = Uint8Array.from(p.l4)
  const ck = CHECKSUM_AT[p.protocol]
  if (ck !== undefined && !p.keepChecksum && l4.length >= ck + 2) {
    l4[ck] = 0
    l4[ck + 1] = 0
    let c = naiveChecksum([pseudoHeader(p.src, p.dst, l4.length, p.protocol), l4])
    if (c === 0 && p.protocol === 17) c = 0xffff
    new DataView(l4.buffer).setUint16(ck, c)
  }
  out.set(l4, at)
  return out
}

/** True if the upper-layer checksum of a whole packet (no extension headers) is right, checked naively. */
export function naiveVerify(pkt: Uint8Array, l4Offset = 40): boolean {
  const protocol = l4Offset === 40 ? pkt[6]! : -1
  const l4 = pkt.subarray(l4Offset)
  const proto = protocol === -1 ? findProtocol(pkt) : protocol
  return naiveChecksum([pseudoHeader(pkt.subarray(8, 24), pkt.subarray(24, 40), l4.length, proto), l4]) === 0
}

function findProtocol(pkt: Uint8Array): number {
  let nh = pkt[6]!
  let at = 40
  while (nh === 0 || nh === 43 || nh === 60) {
    const next = pkt[at]!
    at += (pkt[at + 1]! + 1) * 8
    nh = next
  }
  return nh
}

export function tcpHeader(o: { sport: number; dport: number; seq: number; ack: number; flags: number; window?: number; data?: Uint8Array; options?: Uint8Array }): Uint8Array {
  const opt = o.options ?? new Uint8Array(0)
  const data = o.data ?? new Uint8Array(0)
  const b = new Uint8Array(20 + opt.length + data.length)
  const v = new DataView(b.buffer)
  v.setUint16(0, o.sport)
  v.setUint16(2, o.dport)
  v.setUint32(4, o.seq >>> 0)
  v.setUint32(8, o.ack >>> 0)
  v.setUint8(12, ((20 + opt.length) / 4) << 4)
  v.setUint8(13, o.flags)
  v.setUint16(14, o.window ?? 65535)
  b.set(opt, 20)
  b.set(data, 20 + opt.length)
  return b
}

export function udpHeader(sport: number, dport: number, data: Uint8Array): Uint8Array {
  const b = new Uint8Array(8 + data.length)
  const v = new DataView(b.buffer)
  v.setUint16(0, sport)
  v.setUint16(2, dport)
  v.setUint16(4, b.length)
  b.set(data, 8)
  return b
}

export function hex(s: string): Uint8Array {
  return Uint8Array.from(Buffer.from(s.replace(/\s+/g, ''), 'hex'))
}

export function loopback(): Uint8Array {
  const a = new Uint8Array(16)
  a[15] = 1
  return a
}

export function randomAddress(rng: SeededRandom): Uint8Array {
  const a = new Uint8Array(16)
  rng.fill(a)
  return a
}
