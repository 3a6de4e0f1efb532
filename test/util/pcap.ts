/**
 * A small classic-pcap reader for tests: records, link layers (Ethernet,
 * raw IP, BSD loopback "null", Linux SLL and SLL2), IPv4/IPv6, UDP and TCP,
 * plus per-direction TCP reassembly by sequence number.
 *
 * Good enough for our captures, not a general tool: IP fragments and IPv6
 * extension headers other than hop-by-hop/routing/destination options are
 * skipped, and TCP reassembly assumes no sequence-number wrap within a flow
 * relative to its first byte, which holds for short captures.
 */

export interface PcapFile {
  linkType: number
  /** True if timestamps are in nanoseconds (magic a1b23c4d). */
  nanos: boolean
  records: PcapRecord[]
}

export interface PcapRecord {
  /** Microseconds since the epoch (nanosecond captures are truncated). */
  timeMicros: number
  /** Captured bytes (a view into the file). */
  data: Uint8Array
  originalLength: number
}

const LINKTYPE_NULL = 0
const LINKTYPE_ETHERNET = 1
const LINKTYPE_RAW = 101
const LINKTYPE_RAW_ALT = 12 // DLT_RAW on some BSDs
const LINKTYPE_LINUX_SLL = 113
const LINKTYPE_LINUX_SLL2 = 276

export function readPcap(file: Uint8Array): PcapFile {
  if (file.length < 24) throw new Error('pcap: file shorter than its global header')
  const view = new DataView(file.buffer, file.byteOffset, file.byteLength)
  const magicBE = view.getUint32(0, false)
  let little: boolean
  let nanos: boolean
  if (magicBE === 0xa1b2c3d4 || magicBE === 0xa1b23c4d) {
    little = false
    nanos = magicBE === 0xa1b23c4d
  } else if (magicBE === 0xd4c3b2a1 || magicBE === 0x4d3cb2a1) {
    little = true
    nanos = magicBE === 0x4d3cb2a1
  } else {
    throw new Error(`pcap: unknown magic ${magicBE.toString(16)} (pcapng is not supported)`)
  }
  const linkType = view.getUint32(20, little) & 0xffff
  const records: PcapRecord[] = []
  let off = 24
  while (off + 16 <= file.length) {
    const sec = view.getUint32(off, little)
    const frac = view.getUint32(off + 4, little)
    const incl = view.getUint32(off + 8, little)
    const orig = view.getUint32(off + 12, little)
    off += 16
    if (off + incl > file.length) throw new Error(`pcap: record at ${off - 16} runs past the end of the file`)
    records.push({ timeMicros: sec * 1e6 + (nanos ? Math.floor(frac / 1000) : frac), data: file.subarray(off, off + incl), originalLength: orig })
    off += incl
  }
  return { linkType, nanos, records }
}

export interface UdpDatagram {
  kind: 'udp'
  timeMicros: number
  src: string
  dst: string
  srcPort: number
  dstPort: number
  payload: Uint8Array
}

export interface TcpSegment {
  kind: 'tcp'
  timeMicros: number
  src: string
  dst: string
  srcPort: number
  dstPort: number
  seq: number
  flags: number
  payload: Uint8Array
}

export const TCP_SYN = 0x02

/** Decodes one record down to UDP or TCP; null for anything else (ARP, ICMP, fragments…). */
export function decodeRecord(rec: PcapRecord, linkType: number): UdpDatagram | TcpSegment | null {
  const ip = linkPayload(rec.data, linkType)
  if (ip === null || ip.length < 1) return null
  const version = ip[0]! >>> 4
  if (version === 4) return decodeIpv4(ip, rec.timeMicros)
  if (version === 6) return decodeIpv6(ip, rec.timeMicros)
  return null
}

function u16(b: Uint8Array, o: number): number {
  return (b[o]! << 8) | b[o + 1]!
}

function u32(b: Uint8Array, o: number): number {
  return ((b[o]! << 24) | (b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!) >>> 0
}

/** The IP packet inside a link-layer frame, or null if it carries something else. */
function linkPayload(d: Uint8Array, linkType: number): Uint8Array | null {
  switch (linkType) {
    case LINKTYPE_ETHERNET: {
      let o = 12
      let etherType = u16(d, o)
      while (etherType === 0x8100 || etherType === 0x88a8) {
        o += 4
        etherType = u16(d, o)
      }
      return etherType === 0x0800 || etherType === 0x86dd ? d.subarray(o + 2) : null
    }
    case LINKTYPE_NULL: {
      // The address family is in the capturing host's byte order; accept either.
      const le = d[0]! | (d[1]! << 8)
      const be = u16(d, 2)
      const family = le !== 0 ? le : be
      return family === 2 || family === 24 || family === 28 || family === 30 ? d.subarray(4) : null
    }
    case LINKTYPE_RAW:
    case LINKTYPE_RAW_ALT:
      return d
    case LINKTYPE_LINUX_SLL: {
      const proto = u16(d, 14)
      return proto === 0x0800 || proto === 0x86dd ? d.subarray(16) : null
    }
    case LINKTYPE_LINUX_SLL2: {
      const proto = u16(d, 0)
      return proto === 0x0800 || proto === 0x86dd ? d.subarray(20) : null
    }
    default:
      throw new Error(`pcap: link type ${linkType} not supported`)
  }
}

function decodeIpv4(ip: Uint8Array, timeMicros: number): UdpDatagram | TcpSegment | null {
  if (ip.length < 20) return null
  const ihl = (ip[0]! & 0x0f) * 4
  const total = Math.min(u16(ip, 2), ip.length)
  const fragment = u16(ip, 6) & 0x3fff // MF flag or non-zero offset
  if (fragment !== 0) return null
  const src = `${ip[12]}.${ip[13]}.${ip[14]}.${ip[15]}`
  const dst = `${ip[16]}.${ip[17]}.${ip[18]}.${ip[19]}`
  return decodeTransport(ip[9]!, ip.subarray(ihl, total), src, dst, timeMicros)
}

function decodeIpv6(ip: Uint8Array, timeMicros: number): UdpDatagram | TcpSegment | null {
  if (ip.length < 40) return null
  const end = Math.min(40 + u16(ip, 4), ip.length)
  let next = ip[6]!
  let o = 40
  while (next === 0 || next === 43 || next === 60) {
    next = ip[o]!
    o += (ip[o + 1]! + 1) * 8
  }
  const src = ipv6Text(ip.subarray(8, 24))
  const dst = ipv6Text(ip.subarray(24, 40))
  return decodeTransport(next, ip.subarray(o, end), src, dst, timeMicros)
}

function ipv6Text(b: Uint8Array): string {
  const groups: string[] = []
  for (let i = 0; i < 16; i += 2) groups.push(u16(b, i).toString(16))
  return groups.join(':') // uncompressed is fine for flow keys
}

function decodeTransport(proto: number, l4: Uint8Array, src: string, dst: string, timeMicros: number): UdpDatagram | TcpSegment | null {
  if (proto === 17) {
    if (l4.length < 8) return null
    const len = Math.min(u16(l4, 4), l4.length)
    return { kind: 'udp', timeMicros, src, dst, srcPort: u16(l4, 0), dstPort: u16(l4, 2), payload: l4.subarray(8, len) }
  }
  if (proto === 6) {
    if (l4.length < 20) return null
    const dataOffset = (l4[12]! >>> 4) * 4
    return {
      kind: 'tcp',
      timeMicros,
      src,
      dst,
      srcPort: u16(l4, 0),
      dstPort: u16(l4, 2),
      seq: u32(l4, 4),
      flags: l4[13]!,
      payload: l4.subarray(dataOffset),
    }
  }
  return null
}

export interface TcpStream {
  /** `src:port>dst:port`, e.g. `127.0.0.1:58124>127.0.0.1:9100`. */
  key: string
  src: string
  dst: string
  bytes: Uint8Array
  /** Capture time of the segment that carried each stream byte range: sorted by `offset`. */
  segments: { offset: number; length: number; timeMicros: number }[]
}

export function flowKey(s: { src: string; srcPort: number; dst: string; dstPort: number }): string {
  return `${s.src}:${s.srcPort}>${s.dst}:${s.dstPort}`
}

/**
 * One byte stream per direction. Sequence numbers are taken relative to the SYN
 * (or, without one, the lowest sequence number seen); retransmitted and
 * overlapping bytes are kept once; a gap ends the stream there.
 */
export function reassembleTcp(segments: readonly TcpSegment[]): Map<string, TcpStream> {
  const byFlow = new Map<string, TcpSegment[]>()
  for (const s of segments) {
    const key = flowKey(s)
    let list = byFlow.get(key)
    if (list === undefined) byFlow.set(key, (list = []))
    list.push(s)
  }
  const streams = new Map<string, TcpStream>()
  for (const [key, list] of byFlow) {
    const syn = list.find((s) => (s.flags & TCP_SYN) !== 0)
    const base = syn !== undefined ? (syn.seq + 1) >>> 0 : Math.min(...list.filter((s) => s.payload.length > 0).map((s) => s.seq))
    const data = list
      .filter((s) => s.payload.length > 0)
      .map((s) => ({ rel: (s.seq - base) >>> 0, s }))
      .sort((a, b) => a.rel - b.rel || a.s.timeMicros - b.s.timeMicros)
    const parts: Uint8Array[] = []
    const marks: TcpStream['segments'] = []
    let next = 0
    for (const { rel, s } of data) {
      if (rel > next) break // gap: nothing after it can be trusted
      const end = rel + s.payload.length
      if (end <= next) continue // retransmission of bytes we have
      const fresh = s.payload.subarray(next - rel)
      marks.push({ offset: next, length: fresh.length, timeMicros: s.timeMicros })
      parts.push(fresh)
      next = end
    }
    const first = list[0]!
    streams.set(key, { key, src: `${first.src}:${first.srcPort}`, dst: `${first.dst}:${first.dstPort}`, bytes: Buffer.concat(parts), segments: marks })
  }
  return streams
}

/** Capture time of the segment that carried stream byte `offset`. */
export function timeAtOffset(stream: TcpStream, offset: number): number {
  for (const m of stream.segments) if (offset < m.offset + m.length) return m.timeMicros
  throw new Error(`offset ${offset} is past the end of ${stream.key}`)
}
