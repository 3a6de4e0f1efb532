import { test } from 'node:test'
import assert from 'node:assert/strict'
import { decodeSack, decodeSackInto, encodeSack, encodeSackInto, isSackOption, sackBlockCount, MAX_SACK_SIZE } from '../../src/protocol/sack.js'
import { PacketHeader, decodePacket, HEADER_SIZE } from '../../src/protocol/header.js'

test('§6.7 / §16.2 P5 vector: ACK + SACK [8193, 12289)', () => {
  const p5 = Buffer.from('1201000d00000000000200000000000103e8c000000000010000100101fe9d38dcd55341434b010000200100003001', 'hex')
  const h = decodePacket(p5, 0, new PacketHeader())
  const payload = p5.subarray(HEADER_SIZE, HEADER_SIZE + h.payloadLength)
  assert.deepEqual(decodeSack(payload), [{ left: 8193, right: 12289 }])
  assert.equal(Buffer.from(encodeSack([{ left: 8193, right: 12289 }])).toString('hex'), payload.toString('hex'))
})

test('detection rule: length ≥ 5, magic, 1 ≤ count ≤ 4, length ≥ 5 + 8·count; trailing bytes allowed', () => {
  const ok = encodeSack([{ left: 1, right: 2 }, { left: 5, right: 9 }])
  assert.equal(sackBlockCount(ok), 2)
  assert.equal(isSackOption(ok.subarray(0, ok.length - 1)), false, 'one byte short')
  assert.equal(isSackOption(ok.subarray(0, 4)), false)
  const zero = Uint8Array.from([0x53, 0x41, 0x43, 0x4b, 0])
  assert.equal(isSackOption(zero), false)
  const five = new Uint8Array(5 + 40)
  five.set([0x53, 0x41, 0x43, 0x4b, 5])
  assert.equal(isSackOption(five), false)
  const lower = Uint8Array.from([0x73, 0x41, 0x43, 0x4b, 1, 0, 0, 0, 0, 0, 0, 0, 0])
  assert.equal(isSackOption(lower), false)
  const trailing = new Uint8Array(ok.length + 7)
  trailing.set(ok)
  assert.equal(sackBlockCount(trailing), 2)
  assert.equal(sackBlockCount(trailing, 0, ok.length - 1), 0)
})

test('round trip with four blocks and u32 extremes; encoder refuses 0 or 5 blocks', () => {
  const blocks = [
    { left: 0, right: 1 },
    { left: 0xfffffff0, right: 0x10 },
    { left: 2 ** 31, right: 0xffffffff },
    { left: 42, right: 4138 },
  ]
  const enc = encodeSack(blocks)
  assert.equal(enc.length, MAX_SACK_SIZE)
  assert.deepEqual(decodeSack(enc), blocks)
  const into = new Uint32Array(8)
  assert.equal(decodeSackInto(enc, into), 4)
  assert.equal(into[3], 0x10)
  assert.throws(() => encodeSackInto([], 0, new Uint8Array(40), 0))
  assert.throws(() => encodeSackInto(new Array(10).fill(0), 5, new Uint8Array(60), 0))
  assert.throws(() => encodeSackInto([1, 2], 1, new Uint8Array(12), 0))
  assert.equal(decodeSack(new Uint8Array([1, 2, 3])), null)
})
