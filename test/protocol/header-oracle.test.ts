// The fast header codec checked against a naive twin: DataView fields and a
// bit-by-bit CRC-32, written independently of src/protocol/header.ts.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { PacketHeader, encodePacket, decodePacket } from '../../src/protocol/header.js'
import { SeededRandom } from '../../src/random.js'

function naiveCrc32(bytes: Uint8Array): number {
  let crc = 0xffffffff
  for (const byte of bytes) {
    crc ^= byte
    for (let k = 0; k < 8; k++) crc = crc & 1 ? (crc >>> 1) ^ 0xedb88320 : crc >>> 1
  }
  return (crc ^ 0xffffffff) >>> 0
}

function naiveEncode(f: Record<string, number>, payload: Uint8Array): Uint8Array {
  const b = new Uint8Array(34 + payload.length)
  const v = new DataView(b.buffer)
  v.setUint8(0, (1 << 4) | f.flags!)
  v.setUint8(1, f.protocol!)
  v.setUint16(2, payload.length)
  v.setUint16(4, f.srcNetwork!)
  v.setUint32(6, f.srcNode!)
  v.setUint16(10, f.dstNetwork!)
  v.setUint32(12, f.dstNode!)
  v.setUint16(16, f.srcPort!)
  v.setUint16(18, f.dstPort!)
  v.setUint32(20, f.seq!)
  v.setUint32(24, f.ack!)
  v.setUint16(28, f.window!)
  b.set(payload, 34)
  v.setUint32(30, naiveCrc32(b))
  return b
}

test('fast header codec equals the naive DataView + bitwise-CRC twin on 5,000 random packets', () => {
  const rng = new SeededRandom(99)
  for (let i = 0; i < 5000; i++) {
    const f = {
      flags: rng.int(16), protocol: rng.int(256), srcNetwork: rng.int(65536), srcNode: rng.u32(),
      dstNetwork: rng.int(65536), dstNode: rng.u32(), srcPort: rng.int(65536), dstPort: rng.int(65536),
      seq: rng.u32(), ack: rng.u32(), window: rng.int(65536),
    }
    const payload = new Uint8Array(rng.int(300))
    rng.fill(payload)
    const fast = encodePacket(PacketHeader.from(f), payload)
    const naive = naiveEncode(f, payload)
    assert.deepEqual(new Uint8Array(fast), naive)
    const h = decodePacket(naive, 0, new PacketHeader())
    for (const [k, val] of Object.entries(f)) assert.equal(h[k as keyof typeof f], val, k)
  }
})
