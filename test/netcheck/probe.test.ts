// The sans-IO probe schedule (src/netcheck/probe.ts) against a scripted rendezvous, in virtual time.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { BeaconType, encodeBeaconMessage, type Endpoint } from '../../src/protocol/beacon-messages.js'
import { NetcheckType, decodeNetcheckMessage, encodeNetcheckMessage } from '../../src/protocol/netcheck-messages.js'
import { NetcheckProbe, median, type ProbeResult, type Transmit } from '../../src/netcheck/probe.js'

const BEACON = { host: '192.0.2.1', port: 9001 }
const PROBE_PORT = { host: '192.0.2.1', port: 9002 }
const PROBE_ADDR = { host: '192.0.2.2', port: 9003 }
const UNSOLICITED = [{ host: '192.0.2.1', port: 50001 }, { host: '192.0.2.2', port: 50002 }]
const PUBLIC = { host: '203.0.113.7', port: 4000 }
const TXID = 0xabcd

interface World {
  /** One-way delay, ms. */
  delay?: number
  /** Discovers to the main port that get no answer (the first n). */
  loseDiscovers?: number
  /** The beacon answers ProbeRequest (a pilot-tun beacon with probe ports). */
  probes?: boolean
  /** Unsolicited replies that reach us, by probe index. */
  unsolicitedArrives?: [boolean, boolean]
  /** Our public endpoint as a destination sees it (symmetric NATs vary it). */
  mapping?: (to: Endpoint) => Endpoint
  /** The beacon answers nothing at all. */
  silent?: boolean
  /** An extra datagram delivered at a given time. */
  extra?: { at: number; data: Uint8Array; from: Endpoint }
}

interface Sent {
  at: number
  to: string
  type: number
}

/** Runs the probe to completion against `w`; returns its result, what it sent, and when it finished. */
function run(w: World, timeoutMs = 5000): { result: ProbeResult; sent: Sent[]; end: number } {
  const delay = w.delay ?? 10
  const mapping = w.mapping ?? (() => PUBLIC)
  let now = 1000
  const probe = new NetcheckProbe(BEACON, now, { timeoutMs, txid: TXID })
  const queue: Array<{ at: number; data: Uint8Array; from: Endpoint }> = []
  if (w.extra) queue.push(w.extra)
  const sent: Sent[] = []
  let discovers = 0
  const reply = (from: Endpoint, data: Uint8Array): void => {
    queue.push({ at: now + 2 * delay, data, from })
  }
  const answer = (t: Transmit): void => {
    const to = { host: t.host, port: t.port }
    sent.push({ at: now, to: `${t.host}:${t.port}`, type: t.data[0]! })
    if (w.silent) return
    const seen = mapping(to)
    const isMain = t.host === BEACON.host && t.port === BEACON.port
    if (t.data[0] === BeaconType.DISCOVER) {
      if (isMain && discovers++ < (w.loseDiscovers ?? 0)) return
      if (isMain || (w.probes && [PROBE_PORT, PROBE_ADDR].some((p) => p.host === t.host && p.port === t.port))) {
        reply(to, encodeBeaconMessage({ type: BeaconType.DISCOVER_REPLY, endpoint: seen }))
      }
    } else if (t.data[0] === NetcheckType.PROBE_REQUEST && isMain && w.probes) {
      const { txid } = decodeNetcheckMessage(t.data) as { txid: number }
      reply(to, encodeNetcheckMessage({ type: NetcheckType.PROBE_INFO, txid, observed: seen, probes: [{ host: null, port: PROBE_PORT.port }, PROBE_ADDR] }))
      UNSOLICITED.forEach((from, index) => {
        if (w.unsolicitedArrives?.[index] ?? true) reply(from, encodeNetcheckMessage({ type: NetcheckType.PROBE_REPLY, txid, index, observed: seen }))
      })
    }
  }
  const drain = (): void => {
    for (let t = probe.pollTransmit(); t !== null; t = probe.pollTransmit()) answer(t)
  }
  drain()
  for (let guard = 0; !probe.done; guard++) {
    assert.ok(guard < 10_000, 'the probe never finished')
    queue.sort((a, b) => a.at - b.at)
    const wake = probe.pollTimeout()
    assert.ok(wake !== null && wake >= now - 1e-9, `a wake-up in the past: ${wake} at ${now}`)
    const next = queue[0]
    if (next !== undefined && next.at <= wake!) {
      queue.shift()
      now = next.at
      probe.handleDatagram(now, next.data, next.from.host, next.from.port)
    } else {
      now = wake!
      probe.handleTimeout(now)
    }
    drain()
  }
  assert.equal(probe.pollTimeout(), null)
  return { result: probe.result(), sent, end: now }
}

test('a pilot-tun beacon with two probe ports, everything answered: three RTT samples, both probes mapped and heard from', () => {
  const { result, sent, end } = run({ probes: true })
  assert.deepEqual(result.publicEndpoint, PUBLIC)
  assert.deepEqual(result.rttSamplesMs, [20, 20, 20])
  assert.equal(result.probesAnswered, true)
  assert.deepEqual(
    result.probes.map((p) => [p.vantage, p.endpoint, p.mapped, p.unsolicitedFrom]),
    [
      ['other-port', PROBE_PORT, PUBLIC, UNSOLICITED[0]],
      ['other-address', PROBE_ADDR, PUBLIC, UNSOLICITED[1]],
    ],
  )
  assert.equal(result.timedOut, false)
  assert.ok(end - 1000 < 200, `finished after ${end - 1000} ms`)
  // One ProbeRequest was enough: both unsolicited replies came.
  assert.equal(sent.filter((s) => s.type === NetcheckType.PROBE_REQUEST).length, 1)
})

test('nothing goes to a probe port before the filtering test is over (it would open an address-restricted NAT)', () => {
  const { sent } = run({ probes: true, unsolicitedArrives: [false, false] })
  const toProbes = sent.filter((s) => s.to !== `${BEACON.host}:${BEACON.port}`)
  const requests = sent.filter((s) => s.type === NetcheckType.PROBE_REQUEST)
  assert.equal(requests.length, 3, 'a missing unsolicited reply is asked for three times')
  assert.ok(toProbes.length >= 2)
  const lastRequest = Math.max(...requests.map((r) => r.at))
  assert.ok(toProbes.every((s) => s.at >= lastRequest + 500), JSON.stringify(sent))
})

test('blocked unsolicited replies are reported as not received; the mapping test still runs', () => {
  const { result } = run({ probes: true, unsolicitedArrives: [true, false] })
  assert.deepEqual(result.probes.map((p) => p.unsolicitedFrom !== null), [true, false])
  assert.ok(result.probes.every((p) => p.mapped !== null))
})

test('a symmetric mapping: each destination sees another public port', () => {
  const { result } = run({ probes: true, mapping: (to) => ({ host: PUBLIC.host, port: 30000 + to.port }) })
  assert.deepEqual(result.publicEndpoint, { host: PUBLIC.host, port: 39001 })
  assert.deepEqual(result.probes.map((p) => p.mapped?.port), [39002, 39003])
})

test('a beacon without probe ports (Go): done one probeInfoWait after its first answer, probes not answered', () => {
  const { result, end } = run({ probes: false })
  assert.equal(result.probesAnswered, false)
  assert.deepEqual(result.probes, [])
  assert.deepEqual(result.publicEndpoint, PUBLIC)
  assert.equal(result.timedOut, false)
  assert.ok(end - 1000 >= 1000 && end - 1000 < 1100, `finished after ${end - 1000} ms`)
})

test('no UDP answer at all: the run ends at the deadline with no public endpoint, resending meanwhile', () => {
  const { result, sent, end } = run({ silent: true }, 2000)
  assert.equal(result.publicEndpoint, null)
  assert.equal(result.timedOut, true)
  assert.equal(end, 3000)
  const discovers = sent.filter((s) => s.type === BeaconType.DISCOVER)
  assert.ok(discovers.length >= 7 && discovers.length <= 9, `${discovers.length} Discovers in 2 s at a 250 ms retry`)
})

test('a lost DiscoverReply: the resent round trip is not timed (Karn), the others are', () => {
  const { result } = run({ probes: true, loseDiscovers: 1 })
  assert.deepEqual(result.rttSamplesMs, [20, 20]) // three exchanges, the first ambiguous
})

test('stray datagrams are ignored: a ProbeReply with another txid, garbage from the beacon, a DiscoverReply from a probe port not yet asked', () => {
  const stray = encodeNetcheckMessage({ type: NetcheckType.PROBE_REPLY, txid: TXID + 1, index: 0, observed: PUBLIC })
  const { result } = run({ probes: true, unsolicitedArrives: [false, true], extra: { at: 1001, data: stray, from: UNSOLICITED[0]! } })
  assert.equal(result.probes[0]!.unsolicitedFrom, null)
  const garbage = run({ probes: true, extra: { at: 1001, data: Uint8Array.of(0x09, 1, 2), from: BEACON } })
  assert.equal(garbage.result.probesAnswered, true)
  const early = encodeBeaconMessage({ type: BeaconType.DISCOVER_REPLY, endpoint: { host: '6.6.6.6', port: 6 } })
  const unasked = run({ probes: true, extra: { at: 1005, data: early, from: PROBE_PORT } })
  assert.deepEqual(unasked.result.probes[0]!.mapped, PUBLIC)
})

test('an unsolicited reply that beats its ProbeInfo still counts', () => {
  const early = encodeNetcheckMessage({ type: NetcheckType.PROBE_REPLY, txid: TXID, index: 1, observed: PUBLIC })
  const { result } = run({ probes: true, unsolicitedArrives: [true, false], extra: { at: 1005, data: early, from: UNSOLICITED[1]! } })
  assert.deepEqual(result.probes[1]!.unsolicitedFrom, UNSOLICITED[1])
})

test('a public endpoint that changes mid-run is flagged', () => {
  let n = 0
  const { result } = run({ probes: true, mapping: () => ({ host: PUBLIC.host, port: n++ < 2 ? 4000 : 4001 }) })
  assert.equal(result.publicEndpointChanged, true)
})

test('median picks the middle (the upper one of an even count)', () => {
  assert.equal(median([3, 1, 2]), 2)
  assert.equal(median([4, 1, 3, 2]), 3)
  assert.equal(median([7]), 7)
})

