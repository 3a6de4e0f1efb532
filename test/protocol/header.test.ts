import { test } from 'node:test'
import assert from 'node:assert/strict'
import { crc32 } from 'node:zlib'
import { PacketHeader, decodePacket, encodePacket, packetPayload, Flag } from '../../src/protocol/header.js'
import { DecodeError } from '../../src/errors.js'

// docs/wire.md §16.2: complete packets with their CRCs.
const VECTORS: Record<string, string> = {
  P1: '11010000000000000001000000000002c00003e800000000000000000200145ed874',
  P2: '1301000000000000000200000000000103e8c0000000000000000001020024f40f8e',
  P3: '12010000000000000001000000000002c00003e8000000010000000102001e21ff5a',
  P4: '12010005000000000001000000000002c00003e8000000010000000101f65ee872c868656c6c6f',
  P5: '1201000d00000000000200000000000103e8c000000000010000100101fe9d38dcd55341434b010000200100003001',
  P6: '14010000000000000001000000000002c00003e80000000600000000000007a8a6d2',
  P7: '1601000000000000000200000000000103e8c000000000010000000700007de95191',
  P8: '10030004000000000001000000000002c001000000000007000000000000f4c802bc70696e67',
  P9: '120300040000000000020000000000010000c00100000007000000080000ce14cdd970696e67',
  P10: '10020002000000000001000000000002c002138800000000000000000000035919166869',
}

test('CRC-32/IEEE check value (§16.1)', () => {
  assert.equal(crc32(Buffer.from('123456789')).toString(16), 'cbf43926')
})

for (const [name, hex] of Object.entries(VECTORS)) {
  test(`§16.2 ${name} decodes and re-encodes byte for byte`, () => {
    const bytes = Buffer.from(hex, 'hex')
    const h = decodePacket(bytes, 0, new PacketHeader())
    assert.equal(h.version, 1)
    const again = encodePacket(h, packetPayload(bytes, 0, h))
    assert.equal(again.toString('hex'), hex)
  })
}

test('P1 fields are the SYN of §4.5', () => {
  const h = decodePacket(Buffer.from(VECTORS.P1!, 'hex'), 0, new PacketHeader())
  assert.equal(h.flags, Flag.SYN)
  assert.deepEqual([h.srcNode, h.srcPort, h.dstNode, h.dstPort, h.window], [1, 49152, 2, 1000, 512])
})

test('a flipped bit anywhere fails the CRC or the length check', () => {
  const good = Buffer.from(VECTORS.P4!, 'hex')
  for (let bit = 0; bit < good.length * 8; bit++) {
    const bad = Buffer.from(good)
    bad[bit >> 3]! ^= 1 << (bit & 7)
    assert.throws(() => decodePacket(bad, 0, new PacketHeader()), (e: unknown) => {
      return e instanceof DecodeError && (e.reason === 'bad-crc' || e.reason === 'bad-length')
    })
  }
})
