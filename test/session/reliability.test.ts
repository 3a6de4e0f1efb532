import { test } from 'node:test'
import assert from 'node:assert/strict'
import { SimPair } from '../../src/session/testing/pair.js'
import { StreamState } from '../../src/session/stream.js'
import { OneWay } from '../../src/session/testing/transfer.js'
import { Flag } from '../../src/protocol/header.js'
import { decodeSack } from '../../src/protocol/sack.js'
import { runTransfer } from './helpers.js'

function established(sim: SimPair) {
  sim.b.listen(80)
  const c = sim.a.connect(sim.now, sim.addressB, 80)
  sim.run(() => c.state === StreamState.Established && sim.accepted[1].length === 1, 10_000)
  return { c, s: sim.accepted[1][0]! }
}

test('RTO: a tail loss probe, then exponential backoff to the cap, then RST when the 8th RTO transmission of a silent path times out', () => {
  const sim = new SimPair({ seed: 11, stream: { mss: 4096, maxRto: 4000, retransmitGiveUp: 0 }, ab: { delay: 50 }, ba: { delay: 50 } })
  const { c } = established(sim)
  const times: number[] = []
  sim.filter = (from, h, payload) => {
    if (from === 0 && payload.length > 0) {
      times.push(sim.now)
      return true // every data segment from A is lost
    }
    return from === 1 // and B's keepalives too: the path is silent

  }
  c.write(sim.now, new Uint8Array(100).fill(1))
  sim.run(() => c.isClosed, 200_000)
  assert.equal(times.length, 9, `transmissions at ${times.join(', ')}: the first, the probe and 7 RTO retransmissions`)
  const gaps = times.slice(1).map((t, i) => t - times[i]!)
  // SRTT 100 ms from the handshake: the probe after 2·SRTT + 40 ms (one segment
  // in flight may wait for a delayed ACK), then the RTO, doubling.
  assert.equal(gaps[0], 240, `gaps ${gaps.join(', ')}`)
  assert.ok(gaps[1]! > gaps[0]!, `gaps ${gaps.join(', ')}`)
  for (let i = 2; i < gaps.length; i++) {
    assert.ok(gaps[i]! === Math.min(gaps[i - 1]! * 2, 4000), `gaps ${gaps.join(', ')}`)
  }
  assert.equal(gaps[gaps.length - 1], 4000, 'capped at maxRto')
  assert.equal(c.stats().probes, 1)
  assert.equal(c.error?.code, 'PT_SESSION_RETRANSMIT_TIMEOUT')
  assert.equal(c.stats().rtoTimeouts, 7)
})

test('fast retransmit on three duplicate ACKs repairs a single loss without an RTO', () => {
  let n = 0
  const r = runTransfer({
    seed: 12, bytesAB: 200 * 4096, bytesBA: 0, stream: { mss: 4096 },
    ab: { delay: 20 }, ba: { delay: 20 },
    filter: (from, h, p) => from === 0 && p.length > 0 && ++n === 30,
  })
  assert.ok(r.completed)
  assert.equal(r.digests.ab[0], r.digests.ab[1])
  const st = r.client.stats()
  assert.equal(st.fastRetransmits, 1)
  assert.equal(st.rtoTimeouts, 0)
  assert.equal(st.retransmits, 1)
})

test('SACK repairs several holes in one window, keeping original segment boundaries', () => {
  let n = 0
  const lost = new Set([20, 23, 26, 29])
  const sackCounts: number[] = []
  const segs = new Map<number, number>()
  const r = runTransfer({
    seed: 13, bytesAB: 200 * 4096, bytesBA: 0, stream: { mss: 4096 },
    ab: { delay: 20 }, ba: { delay: 20 },
    filter: (from, h, p) => {
      if (from === 1 && p.length > 0) {
        const blocks = decodeSack(p)
        if (blocks !== null) sackCounts.push(blocks.length)
      }
      if (from === 0 && p.length > 0) {
        const prev = segs.get(h.seq)
        if (prev !== undefined) assert.equal(p.length, prev, `retransmission of seq ${h.seq} changed its length`)
        segs.set(h.seq, p.length)
        return lost.has(++n)
      }
      return false
    },
  })
  assert.ok(r.completed)
  assert.equal(r.digests.ab[0], r.digests.ab[1])
  const st = r.client.stats()
  assert.ok(Math.max(...sackCounts) >= 3, `SACK blocks per ACK: max ${Math.max(...sackCounts)}`)
  assert.equal(st.rtoTimeouts, 0)
  assert.equal(st.fastRetransmits, 1, 'one recovery episode')
  assert.equal(st.retransmits, 4, 'exactly the four holes')
})

test('segment boundaries survive heavy loss and every data packet carries ACK, none starts with SACK', () => {
  const segs = new Map<number, number>()
  const r = runTransfer({
    seed: 14, bytesAB: 1 << 20, bytesBA: 1 << 19, stream: { mss: 1402 },
    ab: { delay: 10, loss: 0.15, reorder: 0.1, reorderDelay: 10 }, ba: { delay: 10, loss: 0.15 },
    filter: (from, h, p) => {
      // A's pure ACKs carry SACK options as payload; everything else with a payload is data.
      if (from === 0 && p.length > 0 && (h.flags & Flag.FIN) === 0 && decodeSack(p) === null) {
        assert.equal(h.flags, Flag.ACK)
        const prev = segs.get(h.seq)
        if (prev !== undefined) assert.equal(p.length, prev)
        segs.set(h.seq, p.length)
      }
      return false
    },
  })
  assert.ok(r.completed)
  assert.equal(r.digests.ab[0], r.digests.ab[1])
  assert.equal(r.digests.ba[0], r.digests.ba[1])
})

test('data that begins with the SACK pattern is split so no payload starts with it', () => {
  const sim = new SimPair({ seed: 15, stream: { mss: 4096 } })
  const { c, s } = established(sim)
  const data = new Uint8Array(4096 * 3)
  for (let i = 0; i < data.length; i++) data[i] = i & 0xff
  const sackLike = new Uint8Array([0x53, 0x41, 0x43, 0x4b, 0x01, 0, 0, 0, 1, 0, 0, 0, 2])
  data.set(sackLike, 0)
  data.set(sackLike, 4096 + 1) // second segment would start here after the 1-byte split
  const starts: number[] = []
  sim.filter = (from, h, p) => {
    if (from === 0 && p.length > 0) {
      starts.push(p.length)
      assert.equal(decodeSack(p), null, 'a data payload starts with the SACK pattern')
    }
    return false
  }
  const f = new OneWay(c, s, 0, 0)
  void f
  c.write(sim.now, data)
  c.finish(sim.now)
  const got: number[] = []
  const buf = new Uint8Array(65536)
  sim.run(() => got.length === data.length, 10_000, () => {
    for (;;) {
      const n = s.read(buf)
      if (n <= 0) break
      for (let i = 0; i < n; i++) got.push(buf[i]!)
    }
  })
  assert.deepEqual(Uint8Array.from(got), data)
  assert.equal(starts[0], 1)
})

test('sequence numbers wrap at 2^32 (ISN just below it), with loss', () => {
  const seqs: number[] = []
  const r = runTransfer({
    seed: 16, bytesAB: 1 << 20, bytesBA: 1 << 20,
    stream: { mss: 4096, isn: 0xffffffff - 300_000 },
    ab: { delay: 5, loss: 0.05, reorder: 0.05, reorderDelay: 10 }, ba: { delay: 5, loss: 0.05 },
    filter: (from, h) => {
      if (from === 0) seqs.push(h.seq)
      return false
    },
  })
  assert.ok(r.completed)
  assert.equal(r.digests.ab[0], r.digests.ab[1])
  assert.equal(r.digests.ba[0], r.digests.ba[1])
  assert.ok(seqs.some((x) => x > 0xfff00000) && seqs.some((x) => x < 0x00100000), 'crossed the wrap')
})
