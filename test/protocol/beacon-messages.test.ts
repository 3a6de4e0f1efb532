import { test } from 'node:test'
import assert from 'node:assert/strict'
import {
  BeaconType,
  decodeBeaconMessage,
  encodeBeaconMessage,
  writeRelayHeader,
  writeRelayDeliverHeader,
  hostBytes,
  RELAY_HEADER_SIZE,
  RELAY_DELIVER_HEADER_SIZE,
  type BeaconMessage,
  type Endpoint,
} from '../../src/protocol/beacon-messages.js'
import { formatIpv6, isIpv4Mapped } from '../../src/protocol/ipv6-mapping.js'
import { DecodeError } from '../../src/errors.js'
import { SeededRandom } from '../../src/random.js'
import { fuzzDecoder, randomBytes } from '../util/fuzz.js'

const isReason = (reason: string) => (e: unknown) => e instanceof DecodeError && e.reason === reason
const h2b = (hex: string) => Buffer.from(hex.replace(/ /g, ''), 'hex')

// docs/wire.md §9.1 examples.
const EXAMPLES: Array<[string, BeaconMessage]> = [
  ['01 00000001', { type: BeaconType.DISCOVER, nodeId: 1 }],
  ['02 04 cb007105 0fa0', { type: BeaconType.DISCOVER_REPLY, endpoint: { host: '203.0.113.5', port: 4000 } }],
  ['03 00000001 00000002', { type: BeaconType.PUNCH_REQUEST, requesterId: 1, targetId: 2 }],
  ['04 04 c6336407 0fa0', { type: BeaconType.PUNCH_COMMAND, endpoint: { host: '198.51.100.7', port: 4000 } }],
  ['07 00000009 0002 00000001 00000002', { type: BeaconType.SYNC, beaconId: 9, nodeIds: [1, 2] }],
  // §22 verification log: what the Go beacon actually sent on loopback.
  ['02 04 7f000001 5e25', { type: BeaconType.DISCOVER_REPLY, endpoint: { host: '127.0.0.1', port: 0x5e25 } }],
]

for (const [hex, msg] of EXAMPLES) {
  test(`§9.1 ${hex}`, () => {
    assert.deepEqual(decodeBeaconMessage(h2b(hex)), msg)
    assert.equal(encodeBeaconMessage(msg).toString('hex'), hex.replace(/ /g, ''))
  })
}

test('Relay and RelayDeliver carry the inner frame as a view', () => {
  const frame = h2b('50494c50')
  const relay = h2b('05 00000001 00000002 50494c50')
  const m = decodeBeaconMessage(relay)
  assert.deepEqual(m, { type: BeaconType.RELAY, senderId: 1, destId: 2, frame })
  assert.equal((m as { frame: Uint8Array }).frame.byteOffset, relay.byteOffset + RELAY_HEADER_SIZE)
  assert.ok(encodeBeaconMessage(m).equals(relay))
  const deliver = h2b('06 00000001 50494c50')
  const d = decodeBeaconMessage(deliver)
  assert.deepEqual(d, { type: BeaconType.RELAY_DELIVER, senderId: 1, frame })
  assert.equal((d as { frame: Uint8Array }).frame.byteOffset, deliver.byteOffset + RELAY_DELIVER_HEADER_SIZE)
  // Header writers for headroom on the send path.
  const out = Buffer.alloc(RELAY_HEADER_SIZE + 4)
  assert.equal(writeRelayHeader(out, 0, 1, 2), RELAY_HEADER_SIZE)
  out.set(frame, RELAY_HEADER_SIZE)
  assert.ok(out.equals(relay))
  const out2 = Buffer.alloc(RELAY_DELIVER_HEADER_SIZE + 4)
  assert.equal(writeRelayDeliverHeader(out2, 0, 1), RELAY_DELIVER_HEADER_SIZE)
  out2.set(frame, RELAY_DELIVER_HEADER_SIZE)
  assert.ok(out2.equals(deliver))
  // No frame: refused both ways.
  assert.throws(() => decodeBeaconMessage(h2b('05 00000001 00000002')), isReason('short-buffer'))
  assert.throws(() => decodeBeaconMessage(h2b('06 00000001')), isReason('short-buffer'))
  assert.throws(() => encodeBeaconMessage({ type: BeaconType.RELAY_DELIVER, senderId: 1, frame: new Uint8Array(0) }), isReason('short-buffer'))
})

test('IPv6 endpoints use 16 bytes; IPv4-mapped text travels as 4 bytes', () => {
  const v6 = encodeBeaconMessage({ type: BeaconType.PUNCH_COMMAND, endpoint: { host: '2001:db8::7', port: 4000 } })
  assert.equal(v6.toString('hex'), '04' + '10' + '20010db8000000000000000000000007' + '0fa0')
  assert.deepEqual(decodeBeaconMessage(v6), { type: BeaconType.PUNCH_COMMAND, endpoint: { host: '2001:db8::7', port: 4000 } })
  const mapped = encodeBeaconMessage({ type: BeaconType.DISCOVER_REPLY, endpoint: { host: '::ffff:203.0.113.5', port: 4000 } })
  assert.equal(mapped.toString('hex'), '0204cb0071050fa0')
  // A 16-byte IPv4-mapped address (Go never sends one) decodes to dotted text.
  const m16 = h2b('02 10 00000000000000000000ffffcb007105 0fa0')
  assert.deepEqual(decodeBeaconMessage(m16), { type: BeaconType.DISCOVER_REPLY, endpoint: { host: '203.0.113.5', port: 4000 } })
})

test('bad endpoints are refused', () => {
  assert.throws(() => decodeBeaconMessage(h2b('02 05 cb00710500 0fa0')), isReason('bad-address')) // ip_len 5
  assert.throws(() => decodeBeaconMessage(h2b('02 00 0fa0')), isReason('bad-address'))
  assert.throws(() => decodeBeaconMessage(h2b('02 04 cb0071')), isReason('short-buffer'))
  assert.throws(() => decodeBeaconMessage(h2b('04 10 20010db8')), isReason('short-buffer'))
  assert.throws(() => decodeBeaconMessage(h2b('02')), isReason('short-buffer'))
  for (const host of ['203.0.113', '203.0.113.256', '203.0.113.05', 'example.com', 'fe80::1%eth0', '', '::1/128']) {
    assert.throws(() => hostBytes(host), isReason('bad-address'), host)
  }
  const ep = (port: number): Endpoint => ({ host: '127.0.0.1', port })
  assert.throws(() => encodeBeaconMessage({ type: BeaconType.PUNCH_COMMAND, endpoint: ep(65536) }), isReason('bad-port'))
  assert.throws(() => encodeBeaconMessage({ type: BeaconType.PUNCH_COMMAND, endpoint: ep(-1) }), isReason('bad-port'))
})

test('other message checks: unknown types, short bodies, extra bytes ignored', () => {
  assert.throws(() => decodeBeaconMessage(new Uint8Array(0)), isReason('short-buffer'))
  for (const t of ['00', '08', '0f']) assert.throws(() => decodeBeaconMessage(h2b(t + '00000001')), isReason('bad-type'))
  assert.throws(() => decodeBeaconMessage(h2b('01 000000')), isReason('short-buffer'))
  assert.throws(() => decodeBeaconMessage(h2b('03 00000001 000000')), isReason('short-buffer'))
  assert.throws(() => decodeBeaconMessage(h2b('07 00000009 0003 00000001 00000002')), isReason('short-buffer'))
  assert.deepEqual(decodeBeaconMessage(h2b('01 00000005 ffff')), { type: BeaconType.DISCOVER, nodeId: 5 })
  assert.throws(() => encodeBeaconMessage({ type: BeaconType.DISCOVER, nodeId: 2 ** 32 }), isReason('bad-value'))
  assert.throws(() => encodeBeaconMessage({ type: BeaconType.SYNC, beaconId: 1, nodeIds: new Array(65536).fill(1) }), isReason('too-large'))
})

function randomHost(rnd: SeededRandom): string {
  if (rnd.int(2) === 0) return Array.from(randomBytes(rnd, 4)).join('.')
  const b = randomBytes(rnd, 16)
  if (rnd.int(4) === 0) b.fill(0, 0, 8 + rnd.int(8)) // exercise '::' compression
  if (b.subarray(0, 10).every((x) => x === 0) && b[10] === 0xff && b[11] === 0xff) b[0] = 0x20 // not IPv4-mapped
  return formatIpv6(b)
}

function randomMessage(rnd: SeededRandom): BeaconMessage {
  switch (1 + rnd.int(7)) {
    case 1:
      return { type: BeaconType.DISCOVER, nodeId: rnd.u32() }
    case 2:
      return { type: BeaconType.DISCOVER_REPLY, endpoint: { host: randomHost(rnd), port: rnd.int(65536) } }
    case 3:
      return { type: BeaconType.PUNCH_REQUEST, requesterId: rnd.u32(), targetId: rnd.u32() }
    case 4:
      return { type: BeaconType.PUNCH_COMMAND, endpoint: { host: randomHost(rnd), port: rnd.int(65536) } }
    case 5:
      return { type: BeaconType.RELAY, senderId: rnd.u32(), destId: rnd.u32(), frame: randomBytes(rnd, 1 + rnd.int(100)) }
    case 6:
      return { type: BeaconType.RELAY_DELIVER, senderId: rnd.u32(), frame: randomBytes(rnd, 1 + rnd.int(100)) }
    default:
      return { type: BeaconType.SYNC, beaconId: rnd.u32(), nodeIds: Array.from({ length: rnd.int(20) }, () => rnd.u32()) }
  }
}

test('random round trips encode -> decode -> encode (3,000 seeded messages)', () => {
  const rnd = new SeededRandom(9)
  for (let i = 0; i < 3000; i++) {
    const msg = randomMessage(rnd)
    const bytes = encodeBeaconMessage(msg)
    const back = decodeBeaconMessage(bytes)
    assert.deepEqual(back, 'frame' in msg ? { ...msg, frame: Buffer.from(msg.frame) } : msg)
    assert.ok(encodeBeaconMessage(back).equals(bytes))
  }
})

test('fuzz: the beacon decoder gives a value or a DecodeError (100k inputs)', () => {
  const rnd = new SeededRandom(10)
  const corpus = [...EXAMPLES.map(([hex]) => h2b(hex)), ...Array.from({ length: 30 }, () => encodeBeaconMessage(randomMessage(rnd)))]
  const report = fuzzDecoder({
    iterations: 100_000,
    seed: 12,
    corpus,
    maxRandomLength: 64,
    decode: decodeBeaconMessage,
    onDecoded: (m, input) => {
      // Whatever decodes re-encodes to a prefix of the input (trailing bytes are ignored),
      // except 16-byte IPv4-mapped endpoints, which re-encode as 4 bytes.
      const again = encodeBeaconMessage(m)
      const mapped16 = 'endpoint' in m && input[1] === 16 && isIpv4Mapped(input, 2)
      if (!mapped16) assert.ok(again.equals(input.subarray(0, again.length)))
    },
  })
  assert.ok(report.accepted > 1000 && report.rejected > 1000)
})
