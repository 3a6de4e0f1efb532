/**
 * A tiny DNS responder codec (RFC 1035) for the `.pilot` zone: `agent.pilot`
 * AAAA -> the agent's mapped IPv6 address.
 *
 * The registry lookup is asynchronous and lives in the daemon, so the codec
 * is split in two pure halves:
 *
 *     const q = parseDnsQuery(bytes)                  // throws DecodeError on junk
 *     const now = dnsResponseWithoutLookup(q)         // REFUSED, NOTIMP, NXDOMAIN... or null
 *     reply(now ?? buildDnsResponse(q, await lookup(q.hostname!)))
 *
 * Answers: AAAA for `<hostname>.pilot` (TTL 60 s); NODATA (NOERROR, no
 * answer) for other types of an existing name; NXDOMAIN when the lookup finds
 * nothing or the name cannot be a Pilot hostname; REFUSED outside `.pilot`
 * or for a class other than IN/ANY; NOTIMP for opcodes other than QUERY.
 * Negative answers carry a synthetic SOA for `pilot.` (RFC 2308) so resolvers
 * cache them for 60 s. We are authoritative (AA) and do not recurse (RA = 0).
 *
 * The parser refuses: responses (QR = 1), anything but exactly one question,
 * compression pointers in the question (a query never needs one, and refusing
 * them rules out pointer loops), labels over 63 bytes, names over 255 bytes,
 * and a question that runs past the message. Answer, authority and additional
 * sections (e.g. an EDNS OPT record) are ignored, and we answer without EDNS.
 */
import { DecodeError } from '../errors.js'
import { readU16, writeU16, writeU32 } from '../bytes.js'

export const DNS_HEADER_SIZE = 12
export const DNS_TYPE_A = 1
export const DNS_TYPE_SOA = 6
export const DNS_TYPE_AAAA = 28
export const DNS_TYPE_ANY = 255
export const DNS_CLASS_IN = 1
export const DNS_CLASS_ANY = 255

export const DNS_RCODE_NOERROR = 0
export const DNS_RCODE_FORMERR = 1
export const DNS_RCODE_SERVFAIL = 2
export const DNS_RCODE_NXDOMAIN = 3
export const DNS_RCODE_NOTIMP = 4
export const DNS_RCODE_REFUSED = 5

export const DNS_TTL_SECONDS = 60
export const PILOT_ZONE = 'pilot'
/** Largest message we answer in (plain UDP DNS, no EDNS). */
export const DNS_MAX_UDP_SIZE = 512

const MAX_NAME_LENGTH = 255 // RFC 1035 §2.3.4, wire form with the root byte
const MAX_LABEL_LENGTH = 63
const HOSTNAME = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/

export interface DnsQuery {
  id: number
  opcode: number
  /** Recursion desired, copied into the answer. */
  recursionDesired: boolean
  /** Checking disabled (RFC 4035), copied into the answer. */
  checkingDisabled: boolean
  qtype: number
  qclass: number
  /** The name in lower case without the final dot (`agent.pilot`; `` for the root). */
  name: string
  /** True if the name is `pilot` or ends in `.pilot`. */
  inZone: boolean
  /**
   * The Pilot hostname to look up (`agent` for `agent.pilot`), or null when
   * there is nothing to look up (outside the zone, the apex, deeper names,
   * or a label that is no valid hostname).
   */
  hostname: string | null
  /**
   * The network name of `host.netname.pilot` (issue 13: `netname` for
   * `agent.netname.pilot`, whose `hostname` is `agent`); null for `host.pilot`.
   */
  network: string | null
  /** The question section as sent (QNAME in its original case, QTYPE, QCLASS): a copy, echoed back. */
  question: Uint8Array
}

/** Parses one query. Throws `DecodeError` (short-buffer, bad-length, bad-value, bad-type) for anything not to be answered. */
export function parseDnsQuery(bytes: Uint8Array): DnsQuery {
  if (!(bytes instanceof Uint8Array)) throw new DecodeError('bad-value', 'DNS query must be bytes')
  if (bytes.length < DNS_HEADER_SIZE) throw new DecodeError('short-buffer', `DNS message of ${bytes.length} bytes is shorter than its 12-byte header`)
  const id = readU16(bytes, 0)
  const flags = readU16(bytes, 2)
  if (flags & 0x8000) throw new DecodeError('bad-type', 'DNS message is a response, not a query')
  const qdcount = readU16(bytes, 4)
  if (qdcount !== 1) throw new DecodeError('bad-value', `DNS query has ${qdcount} questions; exactly 1 is supported`)
  const labels: string[] = []
  let at = DNS_HEADER_SIZE
  let nameLength = 1 // the root byte
  for (;;) {
    if (at >= bytes.length) throw new DecodeError('short-buffer', 'DNS question name runs past the message')
    const len = bytes[at]!
    if (len === 0) {
      at++
      break
    }
    if ((len & 0xc0) === 0xc0) throw new DecodeError('bad-value', 'compression pointer in a DNS question')
    if (len > MAX_LABEL_LENGTH) throw new DecodeError('bad-value', `DNS label type 0x${len.toString(16)} is not supported`)
    nameLength += len + 1
    if (nameLength > MAX_NAME_LENGTH) throw new DecodeError('bad-length', 'DNS name longer than 255 bytes')
    if (at + 1 + len > bytes.length) throw new DecodeError('short-buffer', 'DNS label runs past the message')
    let label = ''
    for (let i = at + 1; i < at + 1 + len; i++) {
      let c = bytes[i]!
      if (c >= 0x41 && c <= 0x5a) c += 0x20 // ASCII lower case only (RFC 4343)
      label += String.fromCharCode(c)
    }
    labels.push(label)
    at += 1 + len
  }
  if (at + 4 > bytes.length) throw new DecodeError('short-buffer', 'DNS question type and class run past the message')
  const qtype = readU16(bytes, at)
  const qclass = readU16(bytes, at + 2)
  at += 4
  const n = labels.length
  const inZone = n >= 1 && labels[n - 1] === PILOT_ZONE
  let hostname: string | null = null
  let network: string | null = null
  if (inZone && n === 2 && HOSTNAME.test(labels[0]!)) hostname = labels[0]!
  if (inZone && n === 3 && HOSTNAME.test(labels[0]!) && HOSTNAME.test(labels[1]!)) {
    hostname = labels[0]!
    network = labels[1]!
  }
  return {
    id,
    opcode: (flags >>> 11) & 0x0f,
    recursionDesired: (flags & 0x0100) !== 0,
    checkingDisabled: (flags & 0x0010) !== 0,
    qtype,
    qclass,
    name: labels.join('.'),
    inZone,
    hostname,
    network,
    question: bytes.slice(DNS_HEADER_SIZE, at),
  }
}

/**
 * The answer that needs no lookup, or null when the daemon must look up
 * `query.hostname` and call `buildDnsResponse`.
 */
export function dnsResponseWithoutLookup(query: DnsQuery): Uint8Array | null {
  if (query.opcode !== 0) return encode(query, DNS_RCODE_NOTIMP, null, false)
  if (!query.inZone || (query.qclass !== DNS_CLASS_IN && query.qclass !== DNS_CLASS_ANY)) return encode(query, DNS_RCODE_REFUSED, null, false)
  if (query.name === PILOT_ZONE) {
    // The zone apex exists: its SOA if asked, else NODATA.
    return encode(query, DNS_RCODE_NOERROR, null, query.qtype !== DNS_TYPE_SOA && query.qtype !== DNS_TYPE_ANY, query.qtype === DNS_TYPE_SOA || query.qtype === DNS_TYPE_ANY)
  }
  if (query.hostname === null) return encode(query, DNS_RCODE_NXDOMAIN, null, true)
  return null
}

/**
 * The response to `query` given the lookup result: the 16-byte address of
 * `query.hostname`, or null if it has none (NXDOMAIN). An existing name
 * answers AAAA (and ANY) queries with the address and other types with NODATA.
 * Queries that need no lookup get the same answer as `dnsResponseWithoutLookup`.
 */
export function buildDnsResponse(query: DnsQuery, address: Uint8Array | null): Uint8Array {
  const early = dnsResponseWithoutLookup(query)
  if (early !== null) return early
  if (address === null) return encode(query, DNS_RCODE_NXDOMAIN, null, true)
  if (address.length !== 16) throw new DecodeError('bad-address', 'AAAA answer must be 16 bytes')
  if (query.qtype === DNS_TYPE_AAAA || query.qtype === DNS_TYPE_ANY) return encode(query, DNS_RCODE_NOERROR, address, false)
  return encode(query, DNS_RCODE_NOERROR, null, true)
}

/** A SERVFAIL for a query whose lookup failed (registry unreachable): resolvers retry and do not cache. */
export function buildDnsServerFailure(query: DnsQuery): Uint8Array {
  return encode(query, DNS_RCODE_SERVFAIL, null, false)
}

// SOA for `pilot.`: MNAME `pilot.`, RNAME `hostmaster.pilot.`, serial 1,
// refresh 3600, retry 600, expire 86400, minimum (negative TTL) 60.
const ZONE_NAME = Uint8Array.of(5, 0x70, 0x69, 0x6c, 0x6f, 0x74, 0)
const SOA_RDATA = (() => {
  const rname = Uint8Array.of(10, ...Array.from('hostmaster', (c) => c.charCodeAt(0)), ...ZONE_NAME)
  const out = new Uint8Array(ZONE_NAME.length + rname.length + 20)
  out.set(ZONE_NAME, 0)
  out.set(rname, ZONE_NAME.length)
  const t = ZONE_NAME.length + rname.length
  writeU32(out, t, 1)
  writeU32(out, t + 4, 3600)
  writeU32(out, t + 8, 600)
  writeU32(out, t + 12, 86400)
  writeU32(out, t + 16, DNS_TTL_SECONDS)
  return out
})()
const SOA_RECORD_SIZE = ZONE_NAME.length + 10 + SOA_RDATA.length
const AAAA_RECORD_SIZE = 2 + 10 + 16

/**
 * Header + the echoed question + an optional AAAA answer (owner = a pointer to
 * the question name) + an optional SOA, either in the authority section
 * (`soaInAuthority`, for negative answers) or as the answer (`soaAnswer`).
 */
function encode(query: DnsQuery, rcode: number, address: Uint8Array | null, soaInAuthority: boolean, soaAnswer = false): Uint8Array {
  const size = DNS_HEADER_SIZE + query.question.length + (address ? AAAA_RECORD_SIZE : 0) + (soaInAuthority || soaAnswer ? SOA_RECORD_SIZE : 0)
  const out = new Uint8Array(size)
  writeU16(out, 0, query.id)
  // QR=1, opcode copied, AA=1 only for names we own, TC=0, RD copied, RA=0, AD=0, CD copied.
  const authoritative = query.inZone && rcode !== DNS_RCODE_REFUSED && rcode !== DNS_RCODE_NOTIMP && rcode !== DNS_RCODE_SERVFAIL
  let flags = 0x8000 | ((query.opcode & 0x0f) << 11) | (rcode & 0x0f)
  if (authoritative) flags |= 0x0400
  if (query.recursionDesired) flags |= 0x0100
  if (query.checkingDisabled) flags |= 0x0010
  writeU16(out, 2, flags)
  writeU16(out, 4, 1)
  writeU16(out, 6, address || soaAnswer ? 1 : 0)
  writeU16(out, 8, soaInAuthority ? 1 : 0)
  writeU16(out, 10, 0)
  out.set(query.question, DNS_HEADER_SIZE)
  let at = DNS_HEADER_SIZE + query.question.length
  if (address) {
    writeU16(out, at, 0xc000 | DNS_HEADER_SIZE) // the question's name
    writeU16(out, at + 2, DNS_TYPE_AAAA)
    writeU16(out, at + 4, DNS_CLASS_IN)
    writeU32(out, at + 6, DNS_TTL_SECONDS)
    writeU16(out, at + 10, 16)
    out.set(address, at + 12)
    at += AAAA_RECORD_SIZE
  }
  if (soaInAuthority || soaAnswer) {
    out.set(ZONE_NAME, at)
    at += ZONE_NAME.length
    writeU16(out, at, DNS_TYPE_SOA)
    writeU16(out, at + 2, DNS_CLASS_IN)
    writeU32(out, at + 4, DNS_TTL_SECONDS)
    writeU16(out, at + 8, SOA_RDATA.length)
    out.set(SOA_RDATA, at + 10)
  }
  return out
}
