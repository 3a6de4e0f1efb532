/**
 * Loss recovery beyond the basics of reliability.test.ts: RACK finds lost
 * retransmissions, tail loss probes repair tail drops without an RTO, several
 * holes are repaired within one round trip, and goodput at 5 % loss on a
 * LAN-like path stays within a loose factor of the lossless rate.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { SimPair, type LinkConfig } from '../../src/session/testing/pair.js'
import { OneWay } from '../../src/session/testing/transfer.js'
import { StreamState } from '../../src/session/stream.js'
import { decodeSack } from '../../src/protocol/sack.js'
import { runTransfer } from './helpers.js'

const isData = (p: Uint8Array): boolean => p.length > 0 && decodeSack(p) === null

test('RACK: a lost retransmission is found and sent again without an RTO', () => {
  let n = 0
  let target = -1
  let targetSends = 0
  const r = runTransfer({
    seed: 61, bytesAB: 200 * 4096, bytesBA: 0, stream: { mss: 4096 },
    ab: { delay: 20 }, ba: { delay: 20 },
    filter: (from, h, p) => {
      if (from !== 0 || !isData(p)) return false
      if (++n === 30) target = h.seq
      if (h.seq !== target) return false
      targetSends++
      return targetSends <= 2 // the original and its first retransmission
    },
  })
  assert.ok(r.completed)
  assert.equal(r.digests.ab[0], r.digests.ab[1])
  const st = r.client.stats()
  assert.equal(targetSends, 3, 'sent three times')
  assert.equal(st.rtoTimeouts, 0)
  assert.equal(st.probes, 0, 'found by RACK, not by a probe')
  assert.equal(st.retransmits, 2)
  assert.equal(st.fastRetransmits, 1, 'one recovery episode')
})

test('tail loss probe: a dropped last segment is repaired without an RTO', () => {
  let dropped = -1
  const sends: number[] = []
  const sim = new SimPair({ seed: 62, stream: { mss: 4096 }, ab: { delay: 20 }, ba: { delay: 20 } })
  sim.b.listen(80)
  const c = sim.a.connect(sim.now, sim.addressB, 80)
  sim.run(() => c.state === StreamState.Established && sim.accepted[1].length === 1, 10_000)
  const s = sim.accepted[1][0]!
  const total = 10 * 4096
  sim.filter = (from, h, p) => {
    if (from !== 0 || !isData(p)) return false
    sends.push(sim.now)
    if (dropped < 0 && p.length === 4096 && h.seq === (c.initialSequenceNumber + 1 + total - 4096) >>> 0) {
      dropped = sim.now
      return true
    }
    return false
  }
  const f = new OneWay(c, s, total, 3, { finish: false })
  const t0 = sim.now
  assert.ok(sim.run(() => f.readBytes === total, 10_000, () => f.pump(sim.now)))
  const st = c.stats()
  assert.ok(dropped >= 0)
  assert.equal(st.rtoTimeouts, 0)
  assert.equal(st.probes, 1)
  assert.equal(st.retransmits, 1)
  // 40 ms RTT: the 9th segment's ACK is delayed (40 ms + RTT), then with one
  // segment in flight PTO = 2·SRTT + 40 ms, then one RTT for the probe.
  assert.ok(sim.now - dropped <= 80 + 120 + 40 + 5, `repaired ${sim.now - dropped} ms after the drop`)
  assert.ok(sim.now - t0 < 300)
})

test('several holes in one window are all retransmitted within one round trip', () => {
  let n = 0
  const lost = new Set([20, 23, 26, 29, 32, 35])
  const lostSeqs = new Set<number>()
  const retx: number[] = []
  const sim = new SimPair({ seed: 63, stream: { mss: 4096 }, ab: { delay: 20 }, ba: { delay: 20 } })
  sim.b.listen(80)
  const c = sim.a.connect(sim.now, sim.addressB, 80)
  sim.run(() => c.state === StreamState.Established && sim.accepted[1].length === 1, 10_000)
  const s = sim.accepted[1][0]!
  sim.filter = (from, h, p) => {
    if (from !== 0 || !isData(p)) return false
    if (lostSeqs.has(h.seq)) {
      retx.push(sim.now)
      return false
    }
    if (lost.has(++n)) {
      lostSeqs.add(h.seq)
      return true
    }
    return false
  }
  const f = new OneWay(c, s, 300 * 4096, 4, { finish: false })
  assert.ok(sim.run(() => f.readBytes === f.total, 10_000, () => f.pump(sim.now)))
  const [w, r] = f.digests()
  assert.equal(r, w)
  const st = c.stats()
  assert.equal(retx.length, lost.size, 'each hole retransmitted once')
  const spread = retx[retx.length - 1]! - retx[0]!
  // One RTT at most (the holes span two slow-start rounds), not one hole per RTT.
  assert.ok(spread <= 40, `retransmissions spread over ${spread} ms (RTT 40 ms)`)
  assert.equal(st.rtoTimeouts, 0)
  assert.equal(st.fastRetransmits, 1, 'one congestion response for the episode')
})

function goodput(loss: number, seed: number): number {
  const link: Partial<LinkConfig> = { delay: 0.1, bandwidth: 25_000, queueLimit: 256 * 1024, loss }
  const sim = new SimPair({ seed, ab: link, ba: link })
  sim.b.listen(80)
  const c = sim.a.connect(sim.now, sim.addressB, 80)
  const total = 4 << 20
  let f: OneWay | null = null
  const ok = sim.run(() => f !== null && f.readBytes === total, 600_000, () => {
    if (f === null && sim.accepted[1].length > 0) f = new OneWay(c, sim.accepted[1][0]!, total, seed, { finish: false })
    f?.pump(sim.now)
  })
  assert.ok(ok, `loss ${loss}: transfer incomplete`)
  return total / 1000 / sim.now // MB/s (bytes per ms / 1000)
}

test('goodput at 5 % loss both ways on a 0.2 ms, 25 MB/s path: ≥ 30 % of the link, ≥ 40 % of the lossless rate', () => {
  const lossless = goodput(0, 64)
  const lossy = (goodput(0.05, 64) + goodput(0.05, 65)) / 2
  console.log(`goodput: lossless ${lossless.toFixed(1)} MB/s, 5 % loss ${lossy.toFixed(1)} MB/s (link 25)`)
  // Before RACK/TLP/PRR: ~12 % of the link lossless (slow-start overshoot into the
  // queue, repaired at cwnd 1 MSS) and ~11 % at 5 % loss (RTOs).
  assert.ok(lossless >= 0.8 * 25, `lossless ${lossless.toFixed(2)} MB/s`)
  assert.ok(lossy >= 0.3 * 25, `${lossy.toFixed(2)} MB/s at 5 %`)
  assert.ok(lossy >= 0.4 * lossless, `${lossy.toFixed(2)} MB/s at 5 % vs ${lossless.toFixed(2)} MB/s lossless`)
})
