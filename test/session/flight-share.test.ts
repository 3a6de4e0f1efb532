/**
 * The streams to one peer share one flight limit (src/session/flight-share.ts), and the
 * endpoint's round-robin gives a connection several packets per turn (endpoint.ts
 * `turnQuantum`). Issue 12: 8 parallel flows through one tunnel collapsed below one flow,
 * because together they queued 8 receive windows at the receiver's UDP socket buffer and
 * overflowed it. Here the bottleneck is the simulated link's drop-tail queue, in virtual time.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { SimPair, type SimPairOptions } from '../../src/session/testing/pair.js'
import { OneWay } from '../../src/session/testing/transfer.js'
import { StreamState } from '../../src/session/stream.js'
import { FlightShare, type FlightShareWaiter } from '../../src/session/flight-share.js'
import { SessionEndpoint } from '../../src/session/endpoint.js'
import { SeededRandom } from '../../src/random.js'
import { HEADER_SIZE, PacketHeader, decodePacket } from '../../src/protocol/header.js'

/** 100 Mbit/s, 1 ms each way, a 3 MiB drop-tail queue: more than one stream's 2 MiB window, less than 8 of them. */
const BOTTLENECK = { bandwidth: 12_500, delay: 1, queueLimit: 3 * 1024 * 1024 }

interface FlowsRun {
  /** Virtual ms from the first write to the last byte read, all flows. */
  ms: number
  /** Each flow's bytes / its own ms. */
  rates: number[]
  lost: number
  retransmits: number
  byteExact: boolean
}

function runFlows(flows: number, totalBytes: number, endpoint?: SimPairOptions['endpoint']): FlowsRun {
  const sim = new SimPair({ seed: 12, ab: BOTTLENECK, ba: { delay: 1 }, ...(endpoint === undefined ? {} : { endpoint }) })
  sim.b.listen(80)
  const conns = Array.from({ length: flows }, () => sim.a.connect(sim.now, sim.addressB, 80))
  assert.ok(sim.run(() => conns.every((c) => c.state === StreamState.Established) && sim.accepted[1].length === flows, 10_000))
  const per = Math.floor(totalBytes / flows)
  const ways = conns.map((c, i) => new OneWay(c, sim.accepted[1][i]!, per, i * 7919))
  const t0 = sim.now
  const doneAt: number[] = new Array(flows).fill(-1)
  const app = (): void => {
    for (let i = 0; i < flows; i++) {
      ways[i]!.pump(sim.now)
      if (ways[i]!.done && doneAt[i] === -1) doneAt[i] = sim.now
    }
  }
  assert.ok(sim.run(() => ways.every((w) => w.done), 600_000, app), 'every flow completes')
  const retransmits = conns.reduce((n, c) => n + c.stats().retransmits, 0)
  const byteExact = ways.every((w) => {
    const [sent, got] = w.digests()
    return sent === got && w.readBytes === per
  })
  return { ms: Math.max(...doneAt) - t0, rates: doneAt.map((t) => per / (t - t0)), lost: sim.packetsLost[0], retransmits, byteExact }
}

test('8 flows to one peer: no drops at a bounded queue, aggregate at least one flow, fair within 20 %', () => {
  const total = 16 * 1024 * 1024
  const one = runFlows(1, total)
  const eight = runFlows(8, total)
  assert.ok(one.byteExact && eight.byteExact)
  assert.equal(one.lost, 0, 'one flow (its 2 MiB window) fits the 3 MiB queue')
  assert.equal(eight.lost, 0, 'the 8 flows together keep no more in flight than the share allows')
  assert.equal(eight.retransmits, 0)
  assert.ok(eight.ms <= one.ms * 1.01, `8 flows took ${eight.ms.toFixed(0)} ms, one flow ${one.ms.toFixed(0)} ms (virtual time)`)
  const fairness = Math.min(...eight.rates) / Math.max(...eight.rates)
  assert.ok(fairness >= 0.8, `slowest/fastest ${fairness.toFixed(2)}`)
})

test('without the shared limit the same 8 flows overflow the queue (the collapse the share prevents)', () => {
  const one = runFlows(1, 16 * 1024 * 1024, { peerFlightLimit: 0, turnQuantum: 1 })
  const eight = runFlows(8, 16 * 1024 * 1024, { peerFlightLimit: 0, turnQuantum: 1 })
  assert.ok(eight.byteExact)
  assert.equal(one.lost, 0)
  assert.ok(eight.lost > 0, 'drops at the queue')
  assert.ok(eight.retransmits > 0)
  assert.ok(eight.ms > one.ms * 1.1, `8 flows took ${eight.ms.toFixed(0)} ms, one flow ${one.ms.toFixed(0)} ms (virtual time)`)
})

class Waiter implements FlightShareWaiter {
  shareWaiting = false
  shareHungry = false
  woken = 0
  constructor(readonly log: string[], readonly name: string) {}
  onShareRoom(): void {
    this.woken++
    this.log.push(this.name)
  }
}

test('FlightShare: room, waiters woken oldest first, about one per unit of room, all once nothing is in flight', () => {
  const share = new FlightShare(10_000, 1_000)
  const log: string[] = []
  const ws = ['a', 'b', 'c', 'd', 'e'].map((n) => new Waiter(log, n))
  share.add(10_000)
  assert.equal(share.room, 0)
  for (const w of ws) share.wait(w)
  share.wait(ws[0]!) // already waiting: not twice
  assert.equal(share.waiting, 5)
  share.add(-1_500) // room 1500: one waiter
  assert.deepEqual(log, ['a'])
  share.add(-2_000) // room 3500: three more
  assert.deepEqual(log, ['a', 'b', 'c', 'd'])
  share.forget(ws[4]!)
  assert.equal(ws[4]!.shareWaiting, false)
  share.add(+500) // growing wakes nobody
  share.wait(ws[0]!)
  share.add(-7_000) // nothing in flight: everyone left
  assert.deepEqual(log, ['a', 'b', 'c', 'd', 'a'])
  assert.equal(share.flight, 0)
  assert.equal(share.waiting, 0)
  share.add(-5) // never below zero
  assert.equal(share.flight, 0)
})

test('the endpoint: one share per peer, left by closed streams; a stream with nothing in flight still sends one segment', () => {
  const sim = new SimPair({ seed: 3, ab: { delay: 5 }, ba: { delay: 5 }, endpoint: { peerFlightLimit: 8 * 1024 } })
  sim.b.listen(80)
  const c1 = sim.a.connect(sim.now, sim.addressB, 80)
  const c2 = sim.a.connect(sim.now, sim.addressB, 80)
  assert.ok(sim.run(() => sim.accepted[1].length === 2 && c2.state === StreamState.Established, 10_000))
  const share = sim.a.flightShare(sim.addressB)!
  assert.equal(share.members, 2)
  // c1 fills the share (its own window, IW10, is larger); c2 (nothing of its own in flight) still gets one segment out.
  c1.write(sim.now, new Uint8Array(256 * 1024))
  sim.flush()
  assert.ok(share.flight > 8 * 1024 - 1402 && share.flight <= 8 * 1024, `flight ${share.flight}`)
  c2.write(sim.now, new Uint8Array(8 * 1402))
  sim.flush()
  assert.equal(c2.stats().dataSegmentsSent, 1)
  assert.ok(share.waiting >= 1)
  c1.reset(sim.now)
  sim.flush()
  // The reset stream's flight left the share: c2 was woken and filled it on its own.
  const sent = c2.stats().dataSegmentsSent
  assert.ok(sent >= 5, `c2 sent ${sent} segments`)
  assert.ok(share.flight === sent * 1402 && share.flight <= 8 * 1024 + 1402, `flight ${share.flight}`)
  assert.ok(sim.run(() => c2.stats().dataSegmentsSent === 8 && share.flight === 0, 10_000), 'c2 sent the rest as its ACKs came back')
})

test('several packets per round-robin turn: a receive batch touches fewer streams, so fewer ACKs come back', () => {
  function acksFor(turnQuantum: number): { streamsInBatch: number; acks: number } {
    const sim = new SimPair({ seed: 5, endpoint: { turnQuantum } })
    sim.b.listen(80)
    const conns = Array.from({ length: 8 }, () => sim.a.connect(sim.now, sim.addressB, 80))
    assert.ok(sim.run(() => sim.accepted[1].length === 8 && conns.every((c) => c.state === StreamState.Established), 10_000))
    for (const c of conns) c.write(sim.now, new Uint8Array(64 * 1024))
    // One batch of 32 packets from a, handed to b together (like one receive wake-up of a daemon), then b answers.
    const buf = new Uint8Array(HEADER_SIZE + 0xffff)
    const batch: Uint8Array[] = []
    for (let i = 0; i < 32; i++) {
      const n = sim.a.pollTransmit(sim.now, buf, 0)
      assert.ok(n > 0)
      batch.push(buf.slice(0, n))
    }
    const h = new PacketHeader()
    const ports = new Set<number>()
    for (const p of batch) {
      decodePacket(p, 0, h)
      ports.add(h.srcPort)
      sim.b.handlePacket(sim.now, h, p.subarray(HEADER_SIZE, HEADER_SIZE + h.payloadLength))
    }
    let acks = 0
    while (sim.b.pollTransmit(sim.now, buf, 0) > 0) acks++
    return { streamsInBatch: ports.size, acks }
  }
  // (8 per turn here: a new stream's window, IW10, holds 10 segments.)
  assert.deepEqual(acksFor(1), { streamsInBatch: 8, acks: 8 })
  assert.deepEqual(acksFor(8), { streamsInBatch: 4, acks: 4 })
})

test('an endpoint without the shared limit has no share', () => {
  const ep = new SessionEndpoint({ local: { network: 0, node: 1 }, random: new SeededRandom(1), peerFlightLimit: 0 })
  ep.connect(0, { network: 0, node: 2 }, 80)
  assert.equal(ep.flightShare({ network: 0, node: 2 }), undefined)
})

test('the default limit is at least the streams\' own receive window', () => {
  const big = new SessionEndpoint({ local: { network: 0, node: 1 }, random: new SeededRandom(1), stream: { receiveBufferSize: 8 << 20 } })
  big.connect(0, { network: 0, node: 2 }, 80)
  assert.equal(big.flightShare({ network: 0, node: 2 })!.limit, 8 << 20)
  const def = new SessionEndpoint({ local: { network: 0, node: 1 }, random: new SeededRandom(1) })
  def.connect(0, { network: 0, node: 2 }, 80)
  assert.equal(def.flightShare({ network: 0, node: 2 })!.limit, 2 << 20)
})

test('FlightShare: the fair part is the limit over the members with something in flight', () => {
  const share = new FlightShare(8_000, 1_000)
  assert.equal(share.fairShare, 8_000)
  share.update(0, 3_000)
  share.update(0, 1_000)
  assert.equal(share.active, 2)
  assert.equal(share.fairShare, 4_000)
  assert.equal(share.flight, 4_000)
  share.update(1_000, 0)
  assert.equal(share.active, 1)
  assert.equal(share.flight, 3_000)
})

test('a stream joining a peer whose streams keep a queue starts from their RTT: no spurious losses, its fair part soon', () => {
  // Two streams through the 3 MiB queue: the first has a 200 ms head start and builds a ~90 ms
  // queue; the second's handshake RTT (2 ms, idle path) would fire its probe and RTO at once.
  const sim = new SimPair({ seed: 8, ab: BOTTLENECK, ba: { delay: 1 } })
  sim.b.listen(80)
  const c1 = sim.a.connect(sim.now, sim.addressB, 80)
  const c2 = sim.a.connect(sim.now, sim.addressB, 80)
  assert.ok(sim.run(() => sim.accepted[1].length === 2 && c2.state === StreamState.Established && c1.state === StreamState.Established, 10_000))
  const w1 = new OneWay(c1, sim.accepted[1][0]!, 64 << 20, 1)
  const w2 = new OneWay(c2, sim.accepted[1][1]!, 64 << 20, 2)
  sim.run(() => false, 200, () => w1.pump(sim.now))
  const both = (ms: number): void => {
    sim.run(() => false, ms, () => {
      w1.pump(sim.now)
      w2.pump(sim.now)
    })
  }
  both(1_000) // the newcomer's slow start
  const [h1, h2] = [w1.readBytes, w2.readBytes]
  both(1_000)
  const [r1, r2] = [w1.readBytes - h1, w2.readBytes - h2]
  assert.equal(c2.stats().retransmits, 0, 'no spurious retransmission')
  assert.ok(r2 / r1 > 0.8 && r2 / r1 < 1.25, `after the ramp: ${r1} vs ${r2} bytes in 1 s`)
  assert.equal(sim.packetsLost[0], 0)
})
