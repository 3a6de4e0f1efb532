import { test } from 'node:test'
import { DEFAULT_OVERLAY_PREFIX } from '../../src/protocol/ipv6-mapping.js'
import assert from 'node:assert/strict'
import {
  DNS_RCODE_NOERROR,
  DNS_RCODE_NOTIMP,
  DNS_RCODE_NXDOMAIN,
  DNS_RCODE_REFUSED,
  DNS_RCODE_SERVFAIL,
  buildDnsResponse,
  buildDnsServerFailure,
  dnsResponseWithoutLookup,
  parseDnsQuery,
} from '../../src/tun/dns.js'
import { DecodeError } from '../../src/errors.js'
import { mapPilotToIpv6 } from '../../src/protocol/ipv6-mapping.js'
import { fuzzDecoder } from '../util/fuzz.js'
import { hex } from './packet-oracle.js'

const isReason = (reason: string) => (e: unknown) => e instanceof DecodeError && e.reason === reason
const AGENT = mapPilotToIpv6({ network: 0, node: 7 }, DEFAULT_OVERLAY_PREFIX)

/** A query built by hand: header fields, then labels, then type and class. */
function query(o: { id?: number; flags?: number; qd?: number; ar?: number; labels: string[]; qtype: number; qclass?: number; extra?: Uint8Array }): Uint8Array {
  const bytes: number[] = []
  const u16 = (v: number) => bytes.push(v >>> 8, v & 0xff)
  u16(o.id ?? 0xbeef)
  u16(o.flags ?? 0x0100)
  u16(o.qd ?? 1)
  u16(0)
  u16(0)
  u16(o.ar ?? 0)
  for (const l of o.labels) bytes.push(l.length, ...Buffer.from(l, 'latin1'))
  bytes.push(0)
  u16(o.qtype)
  u16(o.qclass ?? 1)
  return Uint8Array.of(...bytes, ...(o.extra ?? []))
}

const u16 = (b: Uint8Array, o: number) => (b[o]! << 8) | b[o + 1]!
const u32 = (b: Uint8Array, o: number) => ((b[o]! << 24) | (b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!) >>> 0

// The exact bytes of `agent.pilot AAAA?` (id 0xbeef, RD) as a resolver sends them.
const AGENT_AAAA = hex('beef 0100 0001 0000 0000 0000 05616765 6e74 0570696c6f74 00 001c 0001')

test('agent.pilot AAAA: the query parses, and the response is right field by field', () => {
  assert.deepEqual(AGENT_AAAA, query({ labels: ['agent', 'pilot'], qtype: 28 }))
  const q = parseDnsQuery(AGENT_AAAA)
  assert.equal(q.id, 0xbeef)
  assert.equal(q.opcode, 0)
  assert.equal(q.recursionDesired, true)
  assert.equal(q.qtype, 28)
  assert.equal(q.qclass, 1)
  assert.equal(q.name, 'agent.pilot')
  assert.equal(q.inZone, true)
  assert.equal(q.hostname, 'agent')
  assert.deepEqual(q.question, AGENT_AAAA.subarray(12))
  assert.equal(dnsResponseWithoutLookup(q), null, 'needs a lookup')
  const r = buildDnsResponse(q, AGENT)
  assert.equal(u16(r, 0), 0xbeef, 'ID')
  assert.equal(u16(r, 2), 0x8500, 'QR, opcode 0, AA, RD, no RA, NOERROR')
  assert.equal(u16(r, 4), 1, 'QDCOUNT')
  assert.equal(u16(r, 6), 1, 'ANCOUNT')
  assert.equal(u16(r, 8), 0, 'NSCOUNT')
  assert.equal(u16(r, 10), 0, 'ARCOUNT')
  assert.deepEqual(r.subarray(12, 29), AGENT_AAAA.subarray(12), 'question echoed')
  assert.equal(u16(r, 29), 0xc00c, 'owner: pointer to the question name')
  assert.equal(u16(r, 31), 28, 'TYPE AAAA')
  assert.equal(u16(r, 33), 1, 'CLASS IN')
  assert.equal(u32(r, 35), 60, 'TTL')
  assert.equal(u16(r, 39), 16, 'RDLENGTH')
  assert.deepEqual(r.subarray(41), AGENT, 'the mapped address')
  assert.equal(r.length, 57)
  assert.equal(Buffer.from(r).toString('hex'),
    'beef85000001000100000000' + '056167656e740570696c6f740000' + '1c0001' + 'c00c001c00010000003c0010' + 'fd50494c4f5400000000000000000007')
})

/** Reads the SOA in the authority section of a negative answer with no answer records. */
function readAuthoritySoa(r: Uint8Array, questionEnd: number): { ttl: number; minimum: number; owner: string } {
  let at = questionEnd
  const labels: string[] = []
  while (r[at] !== 0) {
    labels.push(Buffer.from(r.subarray(at + 1, at + 1 + r[at]!)).toString('latin1'))
    at += 1 + r[at]!
  }
  at++
  assert.equal(u16(r, at), 6, 'TYPE SOA')
  assert.equal(u16(r, at + 2), 1)
  const ttl = u32(r, at + 4)
  const rdlen = u16(r, at + 8)
  assert.equal(r.length, at + 10 + rdlen, 'nothing after the SOA')
  return { ttl, minimum: u32(r, r.length - 4), owner: labels.join('.') }
}

test('NXDOMAIN when the lookup finds nothing, with the zone SOA for negative caching', () => {
  const q = parseDnsQuery(query({ id: 7, labels: ['nobody', 'pilot'], qtype: 28 }))
  const r = buildDnsResponse(q, null)
  assert.equal(u16(r, 0), 7)
  assert.equal(u16(r, 2), 0x8500 | DNS_RCODE_NXDOMAIN)
  assert.deepEqual([u16(r, 4), u16(r, 6), u16(r, 8), u16(r, 10)], [1, 0, 1, 0])
  assert.deepEqual(readAuthoritySoa(r, 12 + q.question.length), { ttl: 60, minimum: 60, owner: 'pilot' })
})

test('NODATA for other types of an existing name; AAAA answer for ANY', () => {
  for (const qtype of [1, 15, 16, 33]) {
    const q = parseDnsQuery(query({ labels: ['agent', 'pilot'], qtype }))
    const r = buildDnsResponse(q, AGENT)
    assert.equal(u16(r, 2), 0x8500 | DNS_RCODE_NOERROR, `type ${qtype}`)
    assert.deepEqual([u16(r, 6), u16(r, 8)], [0, 1])
    assert.equal(readAuthoritySoa(r, 12 + q.question.length).owner, 'pilot')
  }
  const any = buildDnsResponse(parseDnsQuery(query({ labels: ['agent', 'pilot'], qtype: 255 })), AGENT)
  assert.equal(u16(any, 6), 1)
  assert.deepEqual(any.subarray(any.length - 16), AGENT)
})

test('REFUSED outside .pilot and for non-IN classes; NOTIMP for other opcodes; no lookup needed', () => {
  const outside = parseDnsQuery(query({ labels: ['example', 'com'], qtype: 28 }))
  assert.equal(outside.inZone, false)
  assert.equal(outside.hostname, null)
  const r = dnsResponseWithoutLookup(outside)!
  assert.equal(u16(r, 2), 0x8100 | DNS_RCODE_REFUSED, 'no AA outside our zone')
  assert.deepEqual([u16(r, 6), u16(r, 8), u16(r, 10)], [0, 0, 0])
  assert.deepEqual(buildDnsResponse(outside, AGENT), r, 'an answer does not change REFUSED')
  assert.equal(u16(dnsResponseWithoutLookup(parseDnsQuery(query({ labels: ['pilotx'], qtype: 28 })))!, 2) & 0xf, DNS_RCODE_REFUSED)
  assert.equal(u16(dnsResponseWithoutLookup(parseDnsQuery(query({ labels: ['agent', 'pilot'], qtype: 28, qclass: 3 })))!, 2) & 0xf, DNS_RCODE_REFUSED)
  const notify = parseDnsQuery(query({ flags: 4 << 11, labels: ['agent', 'pilot'], qtype: 6 }))
  assert.equal(notify.opcode, 4)
  const n = dnsResponseWithoutLookup(notify)!
  assert.equal(u16(n, 2), 0x8000 | (4 << 11) | DNS_RCODE_NOTIMP)
  const root = parseDnsQuery(query({ labels: [], qtype: 2 }))
  assert.equal(root.name, '')
  assert.equal(u16(dnsResponseWithoutLookup(root)!, 2) & 0xf, DNS_RCODE_REFUSED)
})

test('names in .pilot that cannot be hostnames are NXDOMAIN without a lookup; the apex answers its SOA', () => {
  for (const labels of [['a', 'www', 'agent', 'pilot'], ['bad_name', 'net', 'pilot'], ['host', 'bad_net', 'pilot'], ['bad_name', 'pilot'], ['-x', 'pilot'], ['x-', 'pilot'], ['a.b', 'pilot']]) {
    const q = parseDnsQuery(query({ labels, qtype: 28 }))
    assert.equal(q.hostname, null, labels.join('.'))
    assert.equal(u16(dnsResponseWithoutLookup(q)!, 2), 0x8500 | DNS_RCODE_NXDOMAIN)
  }
  assert.equal(parseDnsQuery(query({ labels: ['a'.repeat(63), 'pilot'], qtype: 28 })).hostname, 'a'.repeat(63))
  const apexSoa = dnsResponseWithoutLookup(parseDnsQuery(query({ labels: ['pilot'], qtype: 6 })))!
  assert.deepEqual([u16(apexSoa, 2), u16(apexSoa, 6), u16(apexSoa, 8)], [0x8500, 1, 0])
  const apexA = dnsResponseWithoutLookup(parseDnsQuery(query({ labels: ['PILOT'], qtype: 1 })))!
  assert.deepEqual([u16(apexA, 2), u16(apexA, 6), u16(apexA, 8)], [0x8500, 0, 1])
})

test('case: the name matches case-insensitively, and the question is echoed as sent (0x20 randomisation)', () => {
  const bytes = query({ labels: ['AgEnT', 'PiLoT'], qtype: 28, flags: 0x0110 })
  const q = parseDnsQuery(bytes)
  assert.equal(q.hostname, 'agent')
  assert.equal(q.checkingDisabled, true)
  const r = buildDnsResponse(q, AGENT)
  assert.deepEqual(r.subarray(12, bytes.length), bytes.subarray(12))
  assert.equal(u16(r, 2), 0x8510)
  assert.equal(u16(buildDnsServerFailure(q), 2), 0x8110 | DNS_RCODE_SERVFAIL)
})

test('an EDNS OPT record in the additional section is ignored, and the answer has no OPT', () => {
  const opt = hex('00 0029 1000 00000000 0000')
  const q = parseDnsQuery(query({ labels: ['agent', 'pilot'], qtype: 28, ar: 1, extra: opt }))
  assert.equal(q.question.length, 17)
  const r = buildDnsResponse(q, AGENT)
  assert.equal(u16(r, 10), 0)
  assert.equal(r.length, 57)
})

test('malformed queries are typed refusals', () => {
  assert.throws(() => parseDnsQuery(new Uint8Array(11)), isReason('short-buffer'))
  assert.throws(() => parseDnsQuery(query({ flags: 0x8100, labels: ['agent', 'pilot'], qtype: 28 })), isReason('bad-type'))
  assert.throws(() => parseDnsQuery(query({ qd: 0, labels: ['agent', 'pilot'], qtype: 28 })), isReason('bad-value'))
  assert.throws(() => parseDnsQuery(query({ qd: 2, labels: ['agent', 'pilot'], qtype: 28 })), isReason('bad-value'))
  assert.throws(() => parseDnsQuery(AGENT_AAAA.subarray(0, AGENT_AAAA.length - 1)), isReason('short-buffer'))
  assert.throws(() => parseDnsQuery(AGENT_AAAA.subarray(0, 20)), isReason('short-buffer'))
  assert.throws(() => parseDnsQuery(AGENT_AAAA.subarray(0, 28)), isReason('short-buffer'))
  // A compression pointer to itself (a loop) and one to the header.
  assert.throws(() => parseDnsQuery(hex('0001 0000 0001 0000 0000 0000 c00c 001c 0001')), isReason('bad-value'))
  assert.throws(() => parseDnsQuery(hex('0001 0000 0001 0000 0000 0000 05616765 6e74 c000 001c 0001')), isReason('bad-value'))
  // Label length 64 and the reserved 0x40/0x80 label types.
  assert.throws(() => parseDnsQuery(query({ labels: ['a'.repeat(64)], qtype: 28 })), isReason('bad-value'))
  assert.throws(() => parseDnsQuery(hex('0001 0000 0001 0000 0000 0000 4100 001c 0001')), isReason('bad-value'))
  // Name over 255 bytes: five 63-byte labels.
  assert.throws(() => parseDnsQuery(query({ labels: Array(5).fill('a'.repeat(50)), qtype: 28 })), isReason('bad-length'))
  parseDnsQuery(query({ labels: Array(4).fill('a'.repeat(62)), qtype: 28 })) // 4 * 63 + 1 = 253 bytes: fine
  assert.throws(() => buildDnsResponse(parseDnsQuery(AGENT_AAAA), new Uint8Array(4)), isReason('bad-address'))
})

test('fuzz: 100,000 random and mutated queries; answers keep ID, QR, the question and the 512-byte limit', () => {
  const corpus = [
    AGENT_AAAA,
    query({ labels: ['nobody', 'pilot'], qtype: 1, ar: 1, extra: hex('00 0029 1000 00000000 0000') }),
    query({ labels: ['example', 'com'], qtype: 28 }),
    query({ labels: ['pilot'], qtype: 6 }),
    query({ labels: Array(4).fill('b'.repeat(62)), qtype: 28 }),
  ]
  let answered = 0
  const report = fuzzDecoder({
    iterations: 100_000,
    seed: 1035,
    corpus,
    maxRandomLength: 80,
    decode: (b) => {
      // Give random inputs a fair chance: clear QR and set QDCOUNT to 1 for a quarter of them.
      if (b.length >= 12 && (b[3]! & 3) === 0) {
        b[2]! &= 0x7f
        b[4] = 0
        b[5] = 1
      }
      return parseDnsQuery(b)
    },
    onDecoded: (q, input) => {
      const r = dnsResponseWithoutLookup(q) ?? buildDnsResponse(q, (input.length & 1) === 0 ? AGENT : null)
      answered++
      assert.ok(r.length <= 512)
      assert.equal(u16(r, 0), u16(input, 0))
      assert.equal(r[2]! & 0x80, 0x80)
      assert.equal(u16(r, 4), 1)
      assert.deepEqual(r.subarray(12, 12 + q.question.length), input.subarray(12, 12 + q.question.length))
    },
  })
  assert.ok(report.accepted > 5_000, `accepted ${report.accepted}`)
  assert.ok(report.rejected > 5_000)
  assert.equal(answered, report.accepted)
})

test('host.netname.pilot parses as host and network, needs a lookup; host.pilot has no network', () => {
  const q = parseDnsQuery(query({ labels: ['Agent', 'Lab-1', 'pilot'], qtype: 28 }))
  assert.equal(q.hostname, 'agent')
  assert.equal(q.network, 'lab-1')
  assert.equal(dnsResponseWithoutLookup(q), null, 'needs a lookup')
  assert.equal(parseDnsQuery(query({ labels: ['agent', 'pilot'], qtype: 28 })).network, null)
})
