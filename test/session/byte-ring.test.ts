/** ByteRing: bytes addressed by stream offset, across the wrap and through growth. */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { ByteRing } from '../../src/session/byte-ring.js'

function bytes(from: number, n: number): Uint8Array {
  const b = new Uint8Array(n)
  for (let i = 0; i < n; i++) b[i] = (from + i) & 0xff
  return b
}

test('write and read at stream offsets that wrap around the end of the ring', () => {
  const r = new ByteRing(16)
  r.write(10, bytes(10, 12), 0, 12) // positions 10..15 then 0..5
  const out = new Uint8Array(12)
  r.read(10, out, 0, 12)
  assert.deepEqual(out, bytes(10, 12))
  assert.equal(r.byteAt(21), 21)
  assert.equal(r.byteAt(15), 15)
})

test('write takes a slice of its source; read writes at an offset in the destination', () => {
  const r = new ByteRing(8)
  const src = bytes(100, 10)
  r.write(6, src, 3, 5) // bytes 103..107 at offsets 6..10
  const out = new Uint8Array(9).fill(0xee)
  r.read(6, out, 2, 5)
  assert.deepEqual([...out], [0xee, 0xee, 103, 104, 105, 106, 107, 0xee, 0xee])
})

test('reserve doubles up to the limit and keeps the live range readable at its offsets', () => {
  const r = new ByteRing(16)
  r.write(12, bytes(12, 10), 0, 10) // live [12, 22), wrapped
  r.reserve(10, 1000, 12, 22)
  assert.equal(r.capacity, 16, 'no growth while it fits')
  r.reserve(40, 1000, 12, 22)
  assert.equal(r.capacity, 64)
  const out = new Uint8Array(10)
  r.read(12, out, 0, 10)
  assert.deepEqual(out, bytes(12, 10))
  r.write(22, bytes(22, 40), 0, 40)
  const all = new Uint8Array(50)
  r.read(12, all, 0, 50)
  assert.deepEqual(all, bytes(12, 50))
  r.reserve(5000, 100, 12, 62)
  assert.equal(r.capacity, 100, 'capped at the limit')
  const again = new Uint8Array(50)
  r.read(12, again, 0, 50)
  assert.deepEqual(again, bytes(12, 50))
})
