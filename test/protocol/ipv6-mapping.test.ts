import { test } from 'node:test'
import { isIPv6 } from 'node:net'
import assert from 'node:assert/strict'
import {
  DEFAULT_OVERLAY_PREFIX,
  parseOverlayPrefix,
  mapPilotToIpv6,
  mapIpv6ToPilot,
  classifyOverlayIpv6,
  isInOverlayPrefix,
  pilotToIpv6Text,
  ipv6TextToPilot,
  parseIpv6,
  formatIpv6,
  reflectorIpv6,
  overlayPrefixBytes,
  overlayNetworkAt,
  overlayNodeAt,
  overlayNodeKeyAt,
} from '../../src/protocol/ipv6-mapping.js'
import { addressKey, parseAddress } from '../../src/protocol/address.js'
import { DecodeError } from '../../src/errors.js'
import { SeededRandom } from '../../src/random.js'

const isReason = (reason: string) => (e: unknown) => e instanceof DecodeError && e.reason === reason
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex')

test('docs/design.md example: 0:0000.0000.002A is fd50:494c:4f54::2a', () => {
  const a = parseAddress('0:0000.0000.002A')
  assert.equal(pilotToIpv6Text(a, DEFAULT_OVERLAY_PREFIX), 'fd50:494c:4f54::2a')
  assert.equal(hex(mapPilotToIpv6(a, DEFAULT_OVERLAY_PREFIX)), 'fd50494c4f54000000000000' + '0000002a')
  assert.deepEqual(ipv6TextToPilot('fd50:494c:4f54::2a', DEFAULT_OVERLAY_PREFIX), a)
  assert.deepEqual(ipv6TextToPilot('FD50:494C:4F54:0:0:0:0:2A', DEFAULT_OVERLAY_PREFIX), a)
})

test('layout: prefix : network : 0 : 0 : node high : node low', () => {
  const a = parseAddress('1:0001.F291.0004')
  assert.equal(pilotToIpv6Text(a, DEFAULT_OVERLAY_PREFIX), 'fd50:494c:4f54:1::f291:4')
  assert.equal(hex(mapPilotToIpv6(a, DEFAULT_OVERLAY_PREFIX)), 'fd50494c4f54' + '0001' + '00000000' + 'f2910004')
  assert.equal(pilotToIpv6Text(parseAddress('65535:FFFF.FFFF.FFFF'), DEFAULT_OVERLAY_PREFIX), 'fd50:494c:4f54:ffff::ffff:ffff')
  assert.equal(pilotToIpv6Text(parseAddress('0:0000.0000.0000'), DEFAULT_OVERLAY_PREFIX), 'fd50:494c:4f54::')
})

test('default prefix text and parsing', () => {
  assert.equal(DEFAULT_OVERLAY_PREFIX.text, 'fd50:494c:4f54::/48')
  assert.equal(hex(overlayPrefixBytes(DEFAULT_OVERLAY_PREFIX)), 'fd50494c4f54')
  assert.ok(Object.isFrozen(DEFAULT_OVERLAY_PREFIX))
  assert.equal(parseOverlayPrefix('FD50:494C:4F54:0::/48').text, 'fd50:494c:4f54::/48')
})

test('non-/48 and malformed prefixes are refused with a typed error', () => {
  assert.throws(() => parseOverlayPrefix('fd50:494c:4f54::/64'), isReason('bad-value'))
  assert.throws(() => parseOverlayPrefix('fd50:494c::/32'), isReason('bad-value'))
  assert.throws(() => parseOverlayPrefix('fd50:494c:4f54::/048'), isReason('bad-value'))
  assert.throws(() => parseOverlayPrefix('fd50:494c:4f54:1::/48'), isReason('bad-value')) // bits past /48
  assert.throws(() => parseOverlayPrefix('fd50:494c:4f54::'), isReason('bad-address'))
  assert.throws(() => parseOverlayPrefix('fd50:494c:zz::/48'), isReason('bad-address'))
  assert.throws(() => parseOverlayPrefix('10.0.0.0/48'), isReason('bad-address'))
})

test('not a node: bits 64..95 non-zero (the reflector) map to null', () => {
  const r = reflectorIpv6(DEFAULT_OVERLAY_PREFIX)
  assert.equal(formatIpv6(r), 'fd50:494c:4f54::1:0:1')
  assert.equal(classifyOverlayIpv6(r, DEFAULT_OVERLAY_PREFIX), 'not-a-node')
  assert.equal(mapIpv6ToPilot(r, DEFAULT_OVERLAY_PREFIX), null)
  assert.equal(formatIpv6(reflectorIpv6(DEFAULT_OVERLAY_PREFIX, 7)), 'fd50:494c:4f54:7:0:1:0:1')
  for (const text of ['fd50:494c:4f54:0:1::2a', 'fd50:494c:4f54:0:0:8000::', 'fd50:494c:4f54::1:0:0']) {
    assert.equal(classifyOverlayIpv6(parseIpv6(text), DEFAULT_OVERLAY_PREFIX), 'not-a-node', text)
    assert.equal(ipv6TextToPilot(text, DEFAULT_OVERLAY_PREFIX), null, text)
  }
})

test('outside the prefix maps to null', () => {
  for (const text of ['::1', 'fd50:494c:4f55::2a', 'fd50:494c:4f54:0:0:0:0:2a'.replace('fd50', 'fd51'), '2001:db8::1', '::ffff:10.0.0.1']) {
    assert.equal(classifyOverlayIpv6(parseIpv6(text), DEFAULT_OVERLAY_PREFIX), 'outside-prefix', text)
    assert.equal(ipv6TextToPilot(text, DEFAULT_OVERLAY_PREFIX), null, text)
  }
  assert.equal(isInOverlayPrefix(parseIpv6('fd50:494c:4f54:ffff:1::'), DEFAULT_OVERLAY_PREFIX), true)
})

test('custom prefix', () => {
  const p = parseOverlayPrefix('2001:db8:42::/48')
  const a = parseAddress('3:0003.0000.0101')
  assert.equal(pilotToIpv6Text(a, p), '2001:db8:42:3::101')
  assert.deepEqual(ipv6TextToPilot('2001:db8:42:3::101', p), a)
  assert.equal(ipv6TextToPilot('2001:db8:42:3::101', DEFAULT_OVERLAY_PREFIX), null) // not in the default prefix
  assert.equal(ipv6TextToPilot('fd50:494c:4f54:3::101', p), null)
})

test('byte API works at an offset inside a larger buffer (an IPv6 header)', () => {
  const packet = new Uint8Array(40)
  const a = parseAddress('9:0009.1234.5678')
  mapPilotToIpv6(a, DEFAULT_OVERLAY_PREFIX, packet, 24) // destination field
  assert.deepEqual(mapIpv6ToPilot(packet, DEFAULT_OVERLAY_PREFIX, 24), a)
  assert.equal(classifyOverlayIpv6(packet, DEFAULT_OVERLAY_PREFIX, 8), 'outside-prefix') // zero source
  assert.throws(() => mapIpv6ToPilot(packet, DEFAULT_OVERLAY_PREFIX, 25), isReason('short-buffer'))
  assert.throws(() => mapPilotToIpv6(a, DEFAULT_OVERLAY_PREFIX, new Uint8Array(15)), isReason('short-buffer'))
  assert.throws(() => mapPilotToIpv6({ network: 0x10000, node: 0 }, DEFAULT_OVERLAY_PREFIX), isReason('bad-address'))
})

test('IPv6 text parse/format: RFC 5952 output, bad text refused', () => {
  assert.equal(formatIpv6(parseIpv6('2001:0db8:0000:0000:0001:0000:0000:0001')), '2001:db8::1:0:0:1')
  assert.equal(formatIpv6(parseIpv6('::')), '::')
  assert.equal(formatIpv6(parseIpv6('::1')), '::1')
  assert.equal(formatIpv6(parseIpv6('::ffff:1.2.3.4')), '::ffff:1.2.3.4')
  for (const bad of ['', 'fd50::2a::1', '1:2:3:4:5:6:7:8:9', 'fe80::1%eth0', 'fd50::/48', '1.2.3.4', 'g::1']) {
    assert.throws(() => parseIpv6(bad), isReason('bad-address'), bad)
  }
})

test('random nodes, networks and prefixes round-trip both ways (3,000 seeded cases)', () => {
  const rnd = new SeededRandom(48)
  const prefixes = [DEFAULT_OVERLAY_PREFIX]
  for (let i = 0; i < 20; i++) {
    const g = () => rnd.int(0x10000).toString(16)
    prefixes.push(parseOverlayPrefix(`${g()}:${g()}:${g()}::/48`))
  }
  const bytes = new Uint8Array(16)
  for (let i = 0; i < 3000; i++) {
    const p = prefixes[rnd.int(prefixes.length)]!
    const a = { network: rnd.int(0x10000), node: rnd.u32() }
    mapPilotToIpv6(a, p, bytes)
    assert.deepEqual(mapIpv6ToPilot(bytes, p), a)
    const text = pilotToIpv6Text(a, p)
    assert.equal(formatIpv6(parseIpv6(text)), text)
    assert.deepEqual(ipv6TextToPilot(text, p), a)
    // Any non-zero bit in 64..95 makes it "not a node".
    const bit = rnd.int(32)
    bytes[8 + (bit >> 3)]! ^= 0x80 >> (bit & 7)
    assert.equal(classifyOverlayIpv6(bytes, p), 'not-a-node')
    // Any changed bit in the first 48 takes it outside the prefix.
    bytes[8 + (bit >> 3)]! ^= 0x80 >> (bit & 7)
    const pbit = rnd.int(48)
    bytes[pbit >> 3]! ^= 0x80 >> (pbit & 7)
    assert.equal(classifyOverlayIpv6(bytes, p), 'outside-prefix')
  }
})

test('IPv6 text parser agrees with node:net on random address-like strings, and only throws DecodeError', () => {
  const rnd = new SeededRandom(6)
  const alphabet = '0123456789abcdefABCDEF:::...g%/ '
  let accepted = 0
  for (let i = 0; i < 20_000; i++) {
    let s = ''
    for (let n = 1 + rnd.int(24); n > 0; n--) s += alphabet[rnd.int(alphabet.length)]
    let ok: boolean
    try {
      const b = parseIpv6(s)
      assert.deepEqual(parseIpv6(formatIpv6(b)), b)
      ok = true
    } catch (e) {
      assert.ok(e instanceof DecodeError && e.reason === 'bad-address', `${JSON.stringify(s)}: ${String(e)}`)
      ok = false
    }
    assert.equal(ok, isIPv6(s) && !s.includes('%'), JSON.stringify(s))
    if (ok) accepted++
  }
  assert.ok(accepted > 50)
})

test('hot-path field readers: network, node and 48-bit key of a node address at an offset, in a non-default prefix', () => {
  const p = parseOverlayPrefix('2001:db8:42::/48')
  const packet = Buffer.alloc(40, 0xee)
  const a = { network: 0xbeef, node: 0xf2910004 }
  mapPilotToIpv6(a, p, packet, 24)
  assert.equal(formatIpv6(packet, 24), '2001:db8:42:beef::f291:4')
  assert.equal(overlayNetworkAt(packet, 24), 0xbeef)
  assert.equal(overlayNodeAt(packet, 24), 0xf2910004, 'unsigned, even with the top bit set')
  assert.equal(overlayNodeKeyAt(packet, 24), addressKey(a))
  assert.deepEqual(mapIpv6ToPilot(packet, p, 24), a)
  // The readers agree with the mapping for random nodes and prefixes.
  const rnd = new SeededRandom(0x1f)
  for (let i = 0; i < 500; i++) {
    const q = parseOverlayPrefix(`${rnd.int(0x10000).toString(16)}:${rnd.int(0x10000).toString(16)}:${rnd.int(0x10000).toString(16)}::/48`)
    const b = { network: rnd.int(0x10000), node: rnd.u32() }
    const off = rnd.int(8)
    const buf = new Uint8Array(off + 16)
    mapPilotToIpv6(b, q, buf, off)
    assert.equal(overlayNetworkAt(buf, off), b.network)
    assert.equal(overlayNodeAt(buf, off), b.node)
    assert.equal(overlayNodeKeyAt(buf, off), addressKey(b))
  }
})

test('mapPilotToIpv6 into a Buffer at an offset writes exactly the 16 address bytes (non-default prefix), and still checks ranges', () => {
  const p = parseOverlayPrefix('fd00:1:2::/48')
  const buf = Buffer.alloc(64, 0xaa)
  const out = mapPilotToIpv6({ network: 3, node: 0x2a }, p, buf, 8)
  assert.equal(out, buf, 'returns the buffer it was given')
  assert.equal(hex(buf.subarray(8, 24)), 'fd0000010002' + '0003' + '00000000' + '0000002a')
  assert.ok(buf.subarray(0, 8).every((b) => b === 0xaa), 'bytes before untouched')
  assert.ok(buf.subarray(24).every((b) => b === 0xaa), 'bytes after untouched')
  // Writing over an old address leaves nothing of it behind (bytes 8..11 are zeroed).
  buf.fill(0xff, 8, 24)
  mapPilotToIpv6({ network: 0, node: 0 }, p, buf, 8)
  assert.equal(formatIpv6(buf, 8), 'fd00:1:2::')
  assert.throws(() => mapPilotToIpv6({ network: -1, node: 0 }, p, buf, 8), isReason('bad-address'))
  assert.throws(() => mapPilotToIpv6({ network: 1.5, node: 0 }, p, buf, 8), isReason('bad-address'))
  assert.throws(() => mapPilotToIpv6({ network: 0, node: 0x1_0000_0000 }, p, buf, 8), isReason('bad-address'))
  assert.throws(() => mapPilotToIpv6({ network: 0, node: 1 }, p, buf, 49), isReason('short-buffer'))
})

test('reflector address in a non-default prefix: in the prefix, not a node, network from the caller', () => {
  const p = parseOverlayPrefix('2001:db8:42::/48')
  const r = reflectorIpv6(p, 9)
  assert.equal(formatIpv6(r), '2001:db8:42:9:0:1:0:1')
  assert.equal(isInOverlayPrefix(r, p), true)
  assert.equal(classifyOverlayIpv6(r, p), 'not-a-node')
  assert.equal(classifyOverlayIpv6(r, DEFAULT_OVERLAY_PREFIX), 'outside-prefix')
  const out = new Uint8Array(20)
  reflectorIpv6(p, 9, out, 4)
  assert.deepEqual(out.subarray(4), r)
})
