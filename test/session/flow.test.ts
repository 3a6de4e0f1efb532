import { test } from 'node:test'
import assert from 'node:assert/strict'
import { SimPair } from '../../src/session/testing/pair.js'
import { StreamEvent, StreamState, type StreamConfig } from '../../src/session/stream.js'
import { OneWay, drainEvents } from '../../src/session/testing/transfer.js'
import { Flag } from '../../src/protocol/header.js'

function established(sim: SimPair, cfg?: Partial<StreamConfig>) {
  sim.b.listen(80, cfg)
  const c = sim.a.connect(sim.now, sim.addressB, 80, cfg)
  sim.run(() => c.state === StreamState.Established && sim.accepted[1].length === 1, 10_000)
  return { c, s: sim.accepted[1][0]! }
}

function smallWrites(noDelay: boolean) {
  const sim = new SimPair({ seed: 21, ab: { delay: 50 }, ba: { delay: 50 } })
  const { c } = established(sim, { noDelay })
  const sent: number[] = []
  sim.filter = (from, h, p) => {
    if (from === 0 && p.length > 0) sent.push(sim.now)
    return false
  }
  const t0 = sim.now
  c.write(sim.now, new Uint8Array(10))
  sim.flush()
  c.write(sim.now, new Uint8Array(10))
  sim.flush()
  c.write(sim.now, new Uint8Array(10))
  sim.advance(500)
  return sent.map((t) => t - t0)
}

test('Nagle holds small segments while data is unacknowledged (≤ 40 ms); noDelay sends at once', () => {
  const nagle = smallWrites(false)
  assert.equal(nagle.length, 2, `sent at ${nagle.join(', ')}`)
  assert.equal(nagle[0], 0)
  assert.equal(nagle[1], 40, 'the held bytes leave when the 40 ms Nagle timer fires, before the ACK (100 ms RTT)')
  const noDelay = smallWrites(true)
  assert.deepEqual(noDelay, [0, 0, 0])
})

test('zero window: a slow reader bounds memory, slows the writer, probes keep it alive, data byte-exact', () => {
  const recv = 256 * 1024
  const sim = new SimPair({ seed: 22, ab: { delay: 10 }, ba: { delay: 10 } })
  const cfg = { mss: 4096, receiveBufferSize: recv, sendBufferSize: 512 * 1024 }
  const { c, s } = established(sim, cfg)
  const windows: number[] = []
  sim.filter = (from, h) => {
    if (from === 1 && (h.flags & Flag.ACK) !== 0 && h.protocol === 1) windows.push(h.window)
    return false
  }
  const total = 4 << 20
  const f = new OneWay(c, s, total, 99)
  let reading = false
  let maxHeld = 0
  let blockedWrites = 0
  const app = () => {
    const before = f.written
    f.pump(sim.now, reading ? 64 * 1024 : 0)
    if (f.written === before && f.written < total) blockedWrites++
    maxHeld = Math.max(maxHeld, s.readableLength)
  }
  // Phase 1: nobody reads for 60 s.
  sim.run(() => sim.now > 60_000, 120_000, app)
  assert.equal(c.state, StreamState.Established, 'no RST while the receiver is merely slow')
  assert.ok(f.written < 1.2 * (recv + 512 * 1024), `writer was held back (${f.written} written)`)
  assert.ok(blockedWrites > 0)
  assert.ok(maxHeld <= recv + 4096 + 4096, `receiver holds ${maxHeld} bytes`)
  assert.ok(!windows.includes(0), 'never advertised window 0')
  assert.ok(windows.includes(1), 'advertised 1 slot when full')
  assert.ok(c.stats().rtoTimeouts > 0, 'probed the closed window')
  assert.ok(c.stats().retransmits < 40, `probes are backed off (${c.stats().retransmits})`)
  drainEvents(c)
  // Phase 2: the reader drains at 64 KiB per step; everything arrives.
  reading = true
  const ok = sim.run(() => f.done && c.isClosed && s.isClosed, 600_000, () => {
    app()
    if (f.done) s.finish(sim.now) // B has nothing to send: close its side too
  })
  assert.ok(ok, `written ${f.written} read ${f.readBytes} states ${c.state}/${s.state} ${c.error?.code} ${s.error?.code} now ${sim.now} ${JSON.stringify(c.stats())}`)
  const [w, r] = f.digests()
  assert.equal(r, w)
  assert.ok(drainEvents(c).includes(StreamEvent.Writable))
})

test('a lossless 100 ms, 100 Mbit/s link runs at ≥ 80 % of the link rate after slow start', () => {
  const rate = 12_500 // bytes per ms = 100 Mbit/s
  const link = { delay: 100, bandwidth: rate, queueLimit: 2_500_000 }
  const sim = new SimPair({ seed: 23, ab: link, ba: { delay: 100 } })
  const cfg = { mss: 4096, receiveBufferSize: 1024 * 4096, sendBufferSize: 8 << 20 }
  const { c, s } = established(sim, cfg)
  const total = 120 << 20
  const f = new OneWay(c, s, total, 5)
  let mark: { t: number; bytes: number } | null = null
  const ok = sim.run(() => f.done, 120_000, () => {
    f.pump(sim.now)
    if (mark === null && f.readBytes >= 20 << 20) mark = { t: sim.now, bytes: f.readBytes }
  })
  assert.ok(ok || f.readBytes === total)
  const m = mark as unknown as { t: number; bytes: number }
  const rateAfter = (total - m.bytes) / (sim.now - m.t)
  assert.ok(rateAfter >= 0.8 * rate, `goodput ${(rateAfter * 8 / 1000).toFixed(1)} Mbit/s`)
  assert.equal(sim.packetsLost[0], 0)
  console.log(`goodput after slow start: ${((rateAfter * 8) / 1000).toFixed(1)} Mbit/s of 100`)
})
