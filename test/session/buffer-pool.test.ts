/**
 * Memory on demand (issue 12, memory per flow): the endpoint's BufferPool,
 * rings that hold no buffer until bytes arrive, grow as the live range needs
 * and give the buffer back when drained, and idle connections that hold none.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { BufferPool } from '../../src/session/buffer-pool.js'
import { ByteRing } from '../../src/session/byte-ring.js'
import { SendBuffer } from '../../src/session/send-buffer.js'
import { ReceiveAssembler } from '../../src/session/receive-assembler.js'
import { SimPair } from '../../src/session/testing/pair.js'
import { OneWay } from '../../src/session/testing/transfer.js'
import { StreamState, type StreamConnection } from '../../src/session/stream.js'

function bytes(from: number, n: number): Uint8Array {
  const b = new Uint8Array(n)
  for (let i = 0; i < n; i++) b[i] = ((from + i) * 7) & 0xff
  return b
}

test('the pool hands back a released buffer of the same size, and never holds more than its cap', () => {
  const pool = new BufferPool(64 * 1024)
  const a = pool.acquire(16 * 1024)
  assert.equal(a.length, 16 * 1024)
  pool.release(a)
  assert.equal(pool.pooledBytes, 16 * 1024)
  assert.equal(pool.acquire(16 * 1024), a, 'reused, not allocated again')
  assert.equal(pool.acquire(8 * 1024).length, 8 * 1024, 'another size: a new buffer')
  assert.equal(pool.pooledBytes, 0)
  const many = Array.from({ length: 40 }, () => pool.acquire(4096))
  for (const b of many) {
    pool.release(b)
    assert.ok(pool.pooledBytes <= 64 * 1024)
  }
  const st = pool.stats()
  assert.equal(st.pooledBytes, 64 * 1024)
  assert.equal(st.dropped, 40 - 16, 'beyond the cap, buffers are dropped for the collector')
  assert.equal(st.allocated, 1 + 1 + 40)
  const none = new BufferPool(0)
  none.release(none.acquire(4096))
  assert.equal(none.pooledBytes, 0)
  assert.throws(() => new BufferPool(-1), RangeError)
})

test('a request the pool has no exact size for takes the smallest free buffer up to its max instead of allocating', () => {
  const pool = new BufferPool(1 << 20)
  const big = pool.acquire(64 * 1024)
  const mid = pool.acquire(32 * 1024)
  pool.release(big)
  pool.release(mid)
  assert.notEqual(pool.acquire(8 * 1024), mid, 'max defaults to the size: exact only')
  assert.equal(pool.acquire(8 * 1024, 64 * 1024), mid, 'the smallest that fits')
  assert.equal(pool.acquire(8 * 1024, 16 * 1024).length, 8 * 1024, 'nothing free up to 16 KiB: a new buffer')
  assert.equal(pool.acquire(16 * 1024, 64 * 1024), big)
  assert.equal(pool.pooledBytes, 0)
  // A ring given a larger pooled buffer works at that capacity, across the wrap.
  const spare = pool.acquire(32 * 1024)
  pool.release(spare)
  const r = new ByteRing(4096, pool)
  r.reserve(3000, 1 << 20, 30_000, 30_000)
  assert.equal(r.capacity, 32 * 1024, 'took the free 32 KiB buffer')
  r.write(30_000, bytes(30_000, 3000), 0, 3000)
  r.reserve(6000, 1 << 20, 30_000, 33_000)
  r.write(33_000, bytes(33_000, 3000), 0, 3000)
  const out = new Uint8Array(6000)
  r.read(30_000, out, 0, 6000)
  assert.deepEqual(out, bytes(30_000, 6000))
})

test('a ring holds no buffer until written, doubles from its minimum, and gives it back when released', () => {
  const pool = new BufferPool(1 << 20)
  const r = new ByteRing(4096, pool)
  assert.equal(r.capacity, 0, 'nothing allocated up front')
  r.reserve(1000, 1 << 20, 0, 0)
  r.write(0, bytes(0, 1000), 0, 1000)
  assert.equal(r.capacity, 4096)
  r.reserve(40_000, 1 << 20, 0, 1000)
  assert.equal(r.capacity, 65536, '4 KiB doubled until 40,000 bytes fit')
  const out = new Uint8Array(1000)
  r.read(0, out, 0, 1000)
  assert.deepEqual(out, bytes(0, 1000), 'the live bytes moved with the growth')
  r.release()
  assert.equal(r.capacity, 0)
  assert.equal(pool.pooledBytes, 65536 + 4096, 'both buffers are back in the pool')
  // Taken again at the size the live bytes reached (no regrowth from 4 KiB)...
  r.reserve(100, 1 << 20, 50_000, 50_000)
  assert.equal(r.capacity, 65536)
  r.write(50_000, bytes(5, 100), 0, 100)
  r.release()
  // ...and after a quiet use (100 bytes live at most) it comes back small.
  r.reserve(100, 1 << 20, 60_000, 60_000)
  assert.equal(r.capacity, 4096)
})

test('the send buffer holds ring memory only while bytes are unacknowledged', () => {
  const pool = new BufferPool(1 << 20)
  const s = new SendBuffer(1 << 20, 4096, pool)
  assert.equal(s.ringCapacity, 0)
  s.write(bytes(0, 64 * 1024), 64 * 1024)
  assert.equal(s.ringCapacity, 64 * 1024)
  const out = new Uint8Array(64 * 1024)
  const i = s.cutSegment(64 * 1024)
  s.transmit(i, 0, out, 0)
  assert.deepEqual(out, bytes(0, 64 * 1024))
  s.popHead()
  s.acknowledge(32 * 1024) // a partial ACK (the record was popped by hand): bytes still live
  assert.equal(s.ringCapacity, 64 * 1024)
  s.acknowledge(64 * 1024)
  assert.equal(s.ringCapacity, 0, 'everything acknowledged: the buffer went back')
  assert.equal(pool.pooledBytes, 64 * 1024)
})

test('the receive ring is released when everything in order is read and nothing is held out of order', () => {
  const pool = new BufferPool(1 << 20)
  const a = new ReceiveAssembler({ receiveBufferSize: 64 * 4096, mss: 1400, maxOutOfOrderRanges: 4, buffers: pool })
  assert.equal(a.ringCapacity, 0)
  a.accept(0, bytes(0, 1400), -1)
  assert.equal(a.ringCapacity, 4096)
  a.accept(2800, bytes(2800, 1400), -1) // out of order: 4200 bytes from the read offset
  assert.equal(a.ringCapacity, 8192)
  const into = new Uint8Array(8192)
  assert.equal(a.read(into), 1400)
  assert.equal(a.ringCapacity, 8192, 'a range is still held beyond the gap')
  a.accept(1400, bytes(1400, 1400), -1)
  assert.equal(a.read(into), 2800)
  assert.deepEqual(into.subarray(0, 2800), bytes(1400, 2800))
  assert.equal(a.ringCapacity, 0)
  assert.equal(a.window(), 64, 'the advertised window is the configured buffer, whatever the ring holds')
  assert.equal(pool.pooledBytes, 4096 + 8192)
})

test('connections that exchanged 64 KiB and went idle hold no ring buffer; their endpoint pool stays within its cap', () => {
  const sim = new SimPair({ seed: 7, ab: { delay: 1 }, ba: { delay: 1 } })
  sim.b.listen(80)
  const n = 20
  const conns: StreamConnection[] = []
  for (let k = 0; k < n; k++) conns.push(sim.a.connect(sim.now, sim.addressB, 80))
  sim.run(() => conns.every((c) => c.state === StreamState.Established) && sim.accepted[1].length === n, 10_000)
  const flows = conns.map((c, k) => new OneWay(c, sim.accepted[1][k]!, 64 * 1024, k * 1000, { finish: false }))
  let peak = 0
  const done = sim.run(() => flows.every((f) => f.readBytes === f.total), 60_000, () => {
    for (const f of flows) f.pump(sim.now)
    peak = Math.max(peak, conns.reduce((s, c) => s + c.ringBytes, 0))
  })
  assert.ok(done, 'every flow delivered its 64 KiB')
  sim.advance(200) // the last ACKs
  for (const f of flows) {
    const [w, r] = f.digests()
    assert.equal(r, w, 'byte-exact')
  }
  assert.ok(peak >= 64 * 1024, `the rings grew while data was in flight (peak ${peak})`)
  for (const c of [...conns, ...sim.accepted[1]]) assert.equal(c.ringBytes, 0, 'idle: no ring buffer held')
  assert.ok(sim.a.buffers.pooledBytes <= sim.a.buffers.maxPooledBytes)
  assert.ok(sim.b.buffers.stats().acquired > 0, 'the rings took their buffers from the endpoint pool')
})
