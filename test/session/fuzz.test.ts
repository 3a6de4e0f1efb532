/**
 * Bad input: 100,000 random and mutated packets (valid CRC, so they reach the
 * session layer; some with a broken CRC, which the decoder must reject) are fed
 * to both endpoints, aimed at an established connection X and at random
 * tuples. Nothing may throw; X may ignore them or reset; a transfer on
 * connection Y beside it must complete byte-exact.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { SimPair } from '../../src/session/testing/pair.js'
import { StreamState, type StreamConnection } from '../../src/session/stream.js'
import { OneWay } from '../../src/session/testing/transfer.js'
import { PacketHeader, decodePacket, encodePacket, HEADER_SIZE } from '../../src/protocol/header.js'
import { DecodeError } from '../../src/errors.js'
import { SeededRandom } from '../../src/random.js'
import { encodeSack } from '../../src/protocol/sack.js'

const TOTAL = 100_000

test(`fuzz: ${TOTAL} random and mutated packets beside a byte-exact transfer`, () => {
  let accepted = 0
  let xPortNow = -1
  const xPort = () => xPortNow
  const sim = new SimPair({
    seed: 51,
    stream: { mss: 4096 },
    ab: { delay: 5, loss: 0.02 },
    ba: { delay: 5, loss: 0.02 },
    policy: (_side, inc) => (inc.remotePort === xPort() || accepted++ < 2 ? 'accept' : 'refuse'),
  })
  sim.b.listen(80)
  let x = sim.a.connect(0, sim.addressB, 80)
  const y = sim.a.connect(0, sim.addressB, 80)
  sim.run(() => sim.accepted[1].length === 2 && x.state === StreamState.Established && y.state === StreamState.Established, 10_000)
  const byPort = (p: number) => sim.accepted[1].find((s) => s.remotePort === p)!
  let xs: StreamConnection | undefined = byPort(x.localPort)
  xPortNow = x.localPort
  let generations = 1
  const ys = byPort(y.localPort)
  const samples: Uint8Array[] = []
  sim.trace = (_from, _h, _p, _now) => {}
  const origSend = sim.trace
  void origSend
  sim.filter = (from, h, p) => {
    if (samples.length < 256 || (h.seq & 7) === 0) {
      const copy = encodePacket(PacketHeader.from({ ...h }), p)
      if (samples.length < 256) samples.push(copy)
      else samples[h.seq & 255] = copy
    }
    return false
  }
  const ab = new OneWay(y, ys, 1 << 20, 3)
  const ba = new OneWay(ys, y, 1 << 20, 4)
  const rng = new SeededRandom(52)
  const hdr = new PacketHeader()
  let injected = 0
  let badCrc = 0
  const inject = () => {
    if (x.isClosed || (xs !== undefined && xs.isClosed)) {
      // X died (reset or closed by fuzzed FINs): open a fresh X to keep fuzzing a live connection.
      x = sim.a.connect(sim.now, sim.addressB, 80)
      xPortNow = x.localPort
      xs = undefined
      generations++
    }
    if (xs === undefined) xs = sim.accepted[1].find((s) => s.remotePort === x.localPort && !s.isClosed)
    for (let k = 0; k < 60 && injected < TOTAL; k++, injected++) {
      const toB = xs !== undefined && rng.int(2) === 0
      const ep = toB ? sim.b : sim.a
      const target: StreamConnection = toB ? xs! : x // the X end living on that endpoint
      let pkt: Uint8Array
      if (samples.length > 0 && rng.float() < 0.6) {
        const src = samples[rng.int(samples.length)]!
        const h = decodePacket(src, 0, new PacketHeader())
        let payload: Uint8Array = src.subarray(HEADER_SIZE, HEADER_SIZE + h.payloadLength)
        const field = rng.int(9)
        if (field === 0) h.flags = rng.int(16)
        else if (field === 1) h.seq = rng.u32()
        else if (field === 2) h.ack = rng.u32()
        else if (field === 3) h.window = rng.int(65536)
        else if (field === 4) h.version = rng.int(16)
        else if (field === 5) h.protocol = rng.int(5)
        else if (field === 6) h.seq = (h.seq + rng.int(20000) - 10000) >>> 0
        else if (field === 7) payload = encodeSack([{ left: rng.u32(), right: rng.u32() }])
        else {
          payload = new Uint8Array(rng.int(5000))
          rng.fill(payload)
        }
        aim(h, target, toB)
        pkt = encodePacket(h, payload)
      } else {
        const h = new PacketHeader()
        h.version = rng.int(4) === 0 ? rng.int(16) : 1
        h.flags = rng.int(16)
        h.protocol = 1 + rng.int(3)
        h.seq = rng.u32()
        h.ack = rng.u32()
        h.window = rng.int(65536)
        h.srcPort = rng.int(65536)
        h.dstPort = rng.int(65536)
        if (rng.float() < 0.7) aim(h, target, toB)
        else {
          h.srcNetwork = 0
          h.srcNode = toB ? 1 : 2
          h.dstNode = toB ? 2 : 1
        }
        const payload = new Uint8Array(rng.int(100))
        rng.fill(payload)
        pkt = encodePacket(h, payload)
      }
      // Never aim at Y's tuple: without authentication nothing could protect it.
      if (rng.float() < 0.1) {
        pkt[rng.int(pkt.length)] ^= 1 + rng.int(255)
      }
      let h: PacketHeader
      try {
        h = decodePacket(pkt, 0, hdr)
      } catch (e) {
        assert.ok(e instanceof DecodeError)
        badCrc++
        continue
      }
      if (h.protocol === 1 && (h.srcPort === y.localPort || h.dstPort === y.localPort)) continue
      ep.handlePacket(sim.now, h, pkt.subarray(HEADER_SIZE, HEADER_SIZE + h.payloadLength))
    }
  }
  const ok = sim.run(() => ab.done && ba.done && injected >= TOTAL, 3_600_000, () => {
    inject()
    ab.pump(sim.now)
    ba.pump(sim.now)
  })
  assert.ok(ok, `transfer: ${ab.readBytes}/${ba.readBytes}, injected ${injected}`)
  assert.equal(injected, TOTAL)
  assert.ok(badCrc > 1000)
  const [w1, r1] = ab.digests()
  const [w2, r2] = ba.digests()
  assert.equal(r1, w1)
  assert.equal(r2, w2)
  assert.equal(y.error, null)
  assert.equal(ys.error, null)
  // X either survived or was reset; either way its state is coherent.
  assert.ok(x.state <= StreamState.Closed)
  console.log(`X generations ${generations}; last X ${x.state} ${x.error?.code ?? ''}; ${badCrc} bad CRC`)
})

function aim(h: PacketHeader, target: StreamConnection, toB: boolean): void {
  // Packet appears to come from target's peer, addressed to target.
  h.srcNetwork = target.remoteAddress.network
  h.srcNode = target.remoteAddress.node
  h.dstNetwork = target.localAddress.network
  h.dstNode = target.localAddress.node
  h.srcPort = target.remotePort
  h.dstPort = target.localPort
  void toB
}
