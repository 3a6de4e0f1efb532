import { test } from 'node:test'
import assert from 'node:assert/strict'
import { ReflectAction, TcpReflector, type ReflectDecision, type ReflectorConfig } from '../../src/tun/reflector.js'
import { IPPROTO_TCP, IPPROTO_UDP, verifyTransportChecksum } from '../../src/tun/packets/checksum.js'
import { Ipv6Packet, parseIpv6Into } from '../../src/tun/packets/ipv6.js'
import { TCP_ACK, TCP_FIN, TCP_PSH, TCP_RST, TCP_SYN, tcpAck, tcpFlags, tcpSeq } from '../../src/tun/packets/tcp.js'
import { DEFAULT_OVERLAY_PREFIX, formatIpv6, mapPilotToIpv6, reflectorIpv6 } from '../../src/protocol/ipv6-mapping.js'
import { readU16 } from '../../src/bytes.js'
import { ConfigError } from '../../src/errors.js'
import { SeededRandom } from '../../src/random.js'
import { mutate, randomBytes } from '../util/fuzz.js'
import { naivePacket, naiveVerify, tcpHeader, udpHeader } from './packet-oracle.js'

const A = mapPilotToIpv6({ network: 0, node: 0x2a }, DEFAULT_OVERLAY_PREFIX)
const P = mapPilotToIpv6({ network: 0, node: 7 }, DEFAULT_OVERLAY_PREFIX)
const Q = mapPilotToIpv6({ network: 1, node: 0xf2910004 }, DEFAULT_OVERLAY_PREFIX)
/** A_1: our own node in network 1, the source the kernel picks towards Q. */
const A1 = mapPilotToIpv6({ network: 1, node: 0x2a }, DEFAULT_OVERLAY_PREFIX)
const R = reflectorIpv6(DEFAULT_OVERLAY_PREFIX)
const L = 4100

function reflector(over: Partial<ReflectorConfig> = {}): TcpReflector {
  return new TcpReflector({ localAddress: A, listenerPort: L, prefix: DEFAULT_OVERLAY_PREFIX, ...over })
}

function seg(src: Uint8Array, dst: Uint8Array, sport: number, dport: number, flags: number, seq = 1000, ack = 0, data: Uint8Array = new Uint8Array(0)): Uint8Array {
  return naivePacket({ src, dst, protocol: IPPROTO_TCP, l4: tcpHeader({ sport, dport, seq, ack, flags, data }) })
}

interface Seen {
  src: Uint8Array
  dst: Uint8Array
  sport: number
  dport: number
  flags: number
  seq: number
  ack: number
  payload: Uint8Array
}

/** Runs one packet through and checks it was written back with a valid checksum (verified naively). */
function pass(r: TcpReflector, now: number, pkt: Uint8Array): Seen {
  const before = Uint8Array.from(pkt)
  const d = r.handlePacket(now, pkt)
  assert.equal(d.action, ReflectAction.WriteBack, `dropped: ${d.reason}`)
  assert.equal(d.offset, 0)
  const out = pkt.subarray(d.offset, d.offset + d.length)
  assert.ok(naiveVerify(out), 'checksum of the rewritten packet')
  if (!d.isReset) {
    // Only addresses and ports change: hop limit, seq, ack, flags, window, data stay.
    assert.deepEqual(out.subarray(0, 8), before.subarray(0, 8))
    assert.deepEqual(out.subarray(44, 56), before.subarray(44, 56)) // seq, ack, offset, flags, window
    assert.deepEqual(out.subarray(58), before.subarray(58))
  }
  return {
    src: Uint8Array.from(out.subarray(8, 24)),
    dst: Uint8Array.from(out.subarray(24, 40)),
    sport: readU16(out, 40),
    dport: readU16(out, 42),
    flags: tcpFlags(out, 40),
    seq: tcpSeq(out, 40),
    ack: tcpAck(out, 40),
    payload: Uint8Array.from(out.subarray(60)),
  }
}

function dropped(r: TcpReflector, now: number, pkt: Uint8Array, reason: string): ReflectDecision {
  const d = r.handlePacket(now, pkt)
  assert.equal(d.action, ReflectAction.Drop)
  assert.equal(d.reason, reason)
  return d
}

test('outbound flow: SYN, SYN|ACK, data, FIN both ways produce exactly the rewrites of docs/design.md', () => {
  const r = reflector()
  let now = 1000
  // A:40000 -> P:80 SYN becomes R:x -> A:L.
  const syn = pass(r, now, seg(A, P, 40000, 80, TCP_SYN, 5000))
  assert.deepEqual(syn.src, R)
  assert.deepEqual(syn.dst, A)
  assert.equal(syn.dport, L)
  const x = syn.sport
  assert.ok(x >= 10000 && x <= 60000)
  assert.equal(syn.seq, 5000)
  assert.equal(syn.flags, TCP_SYN)
  // The listener accepts R:x and learns the original flow.
  assert.ok(r.isReflectedPeer(formatIpv6(R), x))
  assert.ok(r.isReflectedPeer(R, x))
  assert.deepEqual(r.lookupByReflectedPort(x), { kind: 1, natPort: x, peer: { network: 0, node: 7 }, peerAddress: 'fd50:494c:4f54::7', peerPort: 80, localPort: 40000 })
  // A retransmitted SYN takes the same NAT port.
  assert.equal(pass(r, now, seg(A, P, 40000, 80, TCP_SYN, 5000)).sport, x)
  // A:L -> R:x SYN|ACK becomes P:80 -> A:40000.
  const synAck = pass(r, ++now, seg(A, R, L, x, TCP_SYN | TCP_ACK, 9000, 5001))
  assert.deepEqual(synAck.src, P)
  assert.deepEqual(synAck.dst, A)
  assert.equal(synAck.sport, 80)
  assert.equal(synAck.dport, 40000)
  assert.equal(synAck.ack, 5001)
  // Data both ways.
  const data = Uint8Array.from({ length: 1200 }, (_, i) => i * 31)
  const up = pass(r, ++now, seg(A, P, 40000, 80, TCP_ACK | TCP_PSH, 5001, 9001, data))
  assert.deepEqual([up.sport, up.dport], [x, L])
  assert.deepEqual(up.payload, data)
  const down = pass(r, ++now, seg(A, R, L, x, TCP_ACK | TCP_PSH, 9001, 6201, data))
  assert.deepEqual([down.sport, down.dport], [80, 40000])
  assert.deepEqual(down.payload, data)
  // FIN from the app, ACK, FIN from the listener, last ACK.
  assert.equal(pass(r, ++now, seg(A, P, 40000, 80, TCP_FIN | TCP_ACK, 6201, 10201)).flags, TCP_FIN | TCP_ACK)
  pass(r, ++now, seg(A, R, L, x, TCP_ACK, 10201, 6202))
  assert.deepEqual(pass(r, ++now, seg(A, R, L, x, TCP_FIN | TCP_ACK, 10201, 6202)).src, P)
  assert.deepEqual(pass(r, ++now, seg(A, P, 40000, 80, TCP_ACK, 6202, 10202)).dst, A)
  const s = r.stats()
  assert.equal(s.toDaemon, 5)
  assert.equal(s.toApp, 4)
  assert.equal(s.liveFlows, 1)
  r.checkInvariants()
  // TIME_WAIT-like linger, then gone.
  assert.equal(r.expire(now + 119_000), 0)
  assert.equal(r.expire(now + 120_000), 1)
  assert.equal(r.liveFlows, 0)
  assert.equal(r.isReflectedPeer(R, x), false)
  assert.equal(r.lookupByReflectedPort(x), null)
  r.checkInvariants()
})

test('many concurrent flows get distinct NAT ports; each return path finds its own flow', () => {
  const r = reflector({ random: new SeededRandom(9) })
  const ports = new Map<number, [number, number]>()
  for (let i = 0; i < 3000; i++) {
    const peer = i % 2 ? P : Q
    const e = 32768 + (i % 1500)
    const p = 80 + Math.floor(i / 1500)
    const out = pass(r, 0, seg(peer === Q ? A1 : A, peer, e, p, TCP_SYN))
    assert.ok(!ports.has(out.sport), `NAT port ${out.sport} reused`)
    ports.set(out.sport, [e, p])
  }
  assert.equal(r.liveFlows, 3000)
  r.checkInvariants()
  for (const [x, [e, p]] of ports) {
    const back = pass(r, 1, seg(A, R, L, x, TCP_SYN | TCP_ACK, 1, 1001))
    assert.deepEqual([back.sport, back.dport], [p, e])
  }
})

test('port exhaustion and a full table are typed drops; quarantine delays reuse', () => {
  const r = reflector({ portMin: 20000, portMax: 20009 })
  for (let i = 0; i < 10; i++) pass(r, 0, seg(A, P, 30000 + i, 80, TCP_SYN))
  dropped(r, 0, seg(A, P, 31000, 80, TCP_SYN), 'ports-exhausted')
  assert.equal(r.stats().drops['ports-exhausted'], 1)
  // All ten time out (SYN never answered) and go to quarantine for 60 s.
  assert.equal(r.expire(120_000), 10)
  assert.equal(r.stats().quarantinedPorts, 10)
  dropped(r, 120_000 + 59_999, seg(A, P, 31000, 80, TCP_SYN), 'ports-exhausted')
  const again = pass(r, 180_000, seg(A, P, 31000, 80, TCP_SYN))
  assert.ok(again.sport >= 20000 && again.sport <= 20009)
  r.checkInvariants()

  const small = reflector({ maxFlows: 3 })
  for (let i = 0; i < 3; i++) pass(small, 0, seg(A, P, 30000 + i, 80, TCP_SYN))
  dropped(small, 0, seg(A, P, 31000, 80, TCP_SYN), 'table-full')
  assert.deepEqual(small.registerInbound(0, { network: 0, node: 7 }, 50000, 22), { ok: false, reason: 'table-full' })
})

test('expiry follows the flow state: SYN, established idle, one FIN, RST', () => {
  const t = { synMs: 100, establishedMs: 1000, finWaitMs: 500, timeWaitMs: 50, resetMs: 10, quarantineMs: 0 }
  const r = reflector({ timeouts: t })
  const x1 = pass(r, 0, seg(A, P, 1, 80, TCP_SYN)).sport // SYN only
  const x2 = pass(r, 0, seg(A, P, 2, 80, TCP_SYN)).sport // established
  pass(r, 0, seg(A, R, L, x2, TCP_SYN | TCP_ACK))
  const x3 = pass(r, 0, seg(A, P, 3, 80, TCP_SYN)).sport // established, then one FIN
  pass(r, 0, seg(A, R, L, x3, TCP_SYN | TCP_ACK))
  pass(r, 0, seg(A, R, L, x3, TCP_FIN | TCP_ACK))
  const x4 = pass(r, 0, seg(A, P, 4, 80, TCP_SYN)).sport // reset
  pass(r, 0, seg(A, R, L, x4, TCP_RST | TCP_ACK))
  assert.equal(r.expire(9), 0)
  assert.equal(r.expire(10), 1)
  assert.equal(r.lookupByReflectedPort(x4), null)
  assert.equal(r.expire(100), 1)
  assert.equal(r.lookupByReflectedPort(x1), null)
  assert.equal(r.expire(500), 1)
  assert.equal(r.lookupByReflectedPort(x3), null)
  // Traffic keeps an established flow alive.
  pass(r, 900, seg(A, P, 2, 80, TCP_ACK))
  assert.equal(r.expire(1800), 0)
  assert.equal(r.expire(1900), 1)
  assert.equal(r.liveFlows, 0)
  assert.equal(r.stats().flowsExpired, 4)
  r.checkInvariants()
})

test('unknown non-SYN segments get an RST written back; an RST is never answered', () => {
  const r = reflector()
  // App side: ACK for a flow we never saw -> RST from P:80 to A:40000, seq = SEG.ACK.
  const rst = pass(r, 0, seg(A, P, 40000, 80, TCP_ACK, 100, 777))
  assert.deepEqual(rst.src, P)
  assert.deepEqual(rst.dst, A)
  assert.deepEqual([rst.sport, rst.dport], [80, 40000])
  assert.equal(rst.flags, TCP_RST)
  assert.equal(rst.seq, 777)
  // SYN|ACK from the app side is no new connection either.
  assert.equal(pass(r, 0, seg(A, P, 40000, 80, TCP_SYN | TCP_ACK, 5, 6)).flags, TCP_RST)
  // Daemon side: the listener talks on a dead NAT port -> RST from R:x.
  const rst2 = pass(r, 0, seg(A, R, L, 12345, TCP_ACK | TCP_PSH, 1, 2, new Uint8Array(10)))
  assert.deepEqual(rst2.src, R)
  assert.equal(rst2.sport, 12345)
  assert.equal(rst2.dport, L)
  dropped(r, 0, seg(A, P, 40000, 80, TCP_RST), 'unknown-flow')
  dropped(r, 0, seg(A, R, L, 12345, TCP_RST | TCP_ACK), 'unknown-flow')
  assert.equal(r.stats().resetsSent, 3)
  assert.equal(r.liveFlows, 0)
  const quiet = reflector({ resetUnknown: false })
  dropped(quiet, 0, seg(A, P, 40000, 80, TCP_ACK), 'unknown-flow')
})

test('a new SYN on a closed flow gets a new NAT port (the old one is quarantined)', () => {
  const r = reflector()
  const x = pass(r, 0, seg(A, P, 40000, 80, TCP_SYN)).sport
  pass(r, 1, seg(A, R, L, x, TCP_RST | TCP_ACK))
  const y = pass(r, 2, seg(A, P, 40000, 80, TCP_SYN)).sport
  assert.notEqual(x, y)
  assert.equal(r.lookupByReflectedPort(x), null)
  assert.equal(r.lookupByReflectedPort(y)!.localPort, 40000)
  r.checkInvariants()
})

test('inbound: the local server sees the agent\'s mapped address and Pilot port; answers go back to the daemon socket', () => {
  const r = reflector()
  const agent = { network: 1, node: 0xf2910004 }
  const reg = r.registerInbound(0, agent, 50000, 8080, 45000)
  assert.ok(reg.ok)
  if (!reg.ok) return
  assert.equal(reg.connectAddress, formatIpv6(R))
  assert.deepEqual(reg.connectAddressBytes, R)
  const y = reg.natPort
  // Daemon socket A:45000 -> R:y SYN becomes Q:50000 -> A:8080.
  const syn = pass(r, 1, seg(A, R, 45000, y, TCP_SYN, 77))
  assert.deepEqual(syn.src, Q)
  assert.deepEqual(syn.dst, A1, "the server sees its own address in the agent's network")
  assert.deepEqual([syn.sport, syn.dport], [50000, 8080])
  // The server's SYN|ACK A:8080 -> Q:50000 becomes R:y -> A:45000.
  // From A (network 0) towards Q (network 1): no address of ours would send that.
  dropped(r, 2, seg(A, Q, 8080, 50000, TCP_SYN | TCP_ACK, 900, 78), 'foreign-source')
  const synAck = pass(r, 2, seg(A1, Q, 8080, 50000, TCP_SYN | TCP_ACK, 900, 78))
  assert.deepEqual(synAck.src, R)
  assert.deepEqual(synAck.dst, A)
  assert.deepEqual([synAck.sport, synAck.dport], [y, 45000])
  // Data and close both ways.
  const data = Uint8Array.from({ length: 500 }, (_, i) => i)
  assert.deepEqual(pass(r, 3, seg(A, R, 45000, y, TCP_ACK | TCP_PSH, 78, 901, data)).payload, data)
  assert.deepEqual(pass(r, 4, seg(A1, Q, 8080, 50000, TCP_ACK | TCP_FIN, 901, 578)).dport, 45000)
  assert.deepEqual(pass(r, 5, seg(A, R, 45000, y, TCP_ACK | TCP_FIN, 578, 902)).sport, 50000)
  // Only the registered daemon socket may use R:y; the internal listener never accepts inbound flows.
  dropped(r, 6, seg(A, R, 45001, y, TCP_ACK), 'bad-port')
  dropped(r, 6, seg(A, R, L, y, TCP_ACK), 'bad-port')
  assert.equal(r.isReflectedPeer(R, y), false)
  assert.equal(r.lookupByReflectedPort(y)!.kind, 2)
  assert.equal(r.lookupByReflectedPort(y)!.peerAddress, formatIpv6(Q))
  r.checkInvariants()
})

test('inbound: daemon port learned from the first SYN; server silence before it; conflicts and bad arguments', () => {
  const r = reflector()
  const agent = { network: 0, node: 7 }
  const reg = r.registerInbound(0, agent, 50001, 22)
  assert.ok(reg.ok)
  if (!reg.ok) return
  dropped(r, 0, seg(A, P, 22, 50001, TCP_SYN | TCP_ACK), 'not-connected')
  dropped(r, 0, seg(A, R, 41000, reg.natPort, TCP_ACK), 'bad-port') // first packet must be a SYN
  assert.deepEqual(pass(r, 0, seg(A, R, 41000, reg.natPort, TCP_SYN)).src, P)
  dropped(r, 0, seg(A, R, 41001, reg.natPort, TCP_SYN), 'bad-port')
  assert.equal(pass(r, 0, seg(A, P, 22, 50001, TCP_SYN | TCP_ACK)).dport, 41000)
  assert.deepEqual(r.registerInbound(0, agent, 50001, 22), { ok: false, reason: 'flow-exists' })
  assert.deepEqual(r.registerInbound(0, agent, 50002, L), { ok: false, reason: 'reserved-port' })
  assert.deepEqual(r.registerInbound(0, agent, 0, 22), { ok: false, reason: 'bad-argument' })
  assert.deepEqual(r.registerInbound(0, { network: 0, node: 0x2a }, 5, 22), { ok: false, reason: 'bad-argument' })
  assert.deepEqual(r.registerInbound(0, { network: 70000, node: 1 }, 5, 22), { ok: false, reason: 'bad-argument' })
  // An unused registration times out like a SYN.
  const lonely = r.registerInbound(0, agent, 50009, 22)
  assert.ok(lonely.ok)
  r.expire(120_000)
  assert.equal(lonely.ok && r.lookupByReflectedPort(lonely.natPort), null)
  r.checkInvariants()
})

test('releaseFlow forgets a flow at once', () => {
  const r = reflector()
  const x = pass(r, 0, seg(A, P, 40000, 80, TCP_SYN)).sport
  assert.ok(r.releaseFlow(1, x))
  assert.equal(r.releaseFlow(1, x), false)
  assert.equal(r.isReflectedPeer(R, x), false)
  assert.equal(r.stats().flowsReleased, 1)
  r.checkInvariants()
})

test('isReflectedPeer refuses anything but R with a live outbound NAT port', () => {
  const r = reflector()
  const x = pass(r, 0, seg(A, P, 40000, 80, TCP_SYN)).sport
  assert.ok(r.isReflectedPeer('fd50:494c:4f54:0:0:1:0:1', x))
  assert.equal(r.isReflectedPeer(formatIpv6(P), x), false)
  assert.equal(r.isReflectedPeer(formatIpv6(A), x), false)
  assert.equal(r.isReflectedPeer('::ffff:127.0.0.1', x), false)
  assert.equal(r.isReflectedPeer('not an address', x), false)
  assert.equal(r.isReflectedPeer(formatIpv6(R), x + 1), false)
  assert.equal(r.isReflectedPeer(formatIpv6(R), 70000), false)
  assert.equal(r.isReflectedPeer(new Uint8Array(4), x), false)
})

test('drops: not TCP, fragments, foreign source, outside the prefix, not a node, to self, malformed', () => {
  const r = reflector()
  dropped(r, 0, naivePacket({ src: A, dst: P, protocol: IPPROTO_UDP, l4: udpHeader(1, 2, new Uint8Array(3)) }), 'not-tcp')
  const frag = new Uint8Array(8)
  frag[3] = 1
  dropped(r, 0, naivePacket({ src: A, dst: P, protocol: IPPROTO_TCP, ext: [[44, frag]], l4: tcpHeader({ sport: 1, dport: 2, seq: 0, ack: 0, flags: TCP_SYN }) }), 'fragment')
  dropped(r, 0, seg(P, A, 80, 40000, TCP_SYN), 'foreign-source')
  const outside = Uint8Array.from(P)
  outside[0] = 0x20
  dropped(r, 0, seg(A, outside, 1, 80, TCP_SYN), 'outside-prefix')
  const notNode = Uint8Array.from(P)
  notNode[9] = 5
  dropped(r, 0, seg(A, notNode, 1, 80, TCP_SYN), 'not-a-node')
  dropped(r, 0, seg(A, A, 1, 80, TCP_SYN), 'to-self')
  dropped(r, 0, seg(A, P, 1, 80, TCP_SYN).subarray(0, 50), 'malformed')
  const shortTcp = naivePacket({ src: A, dst: P, protocol: IPPROTO_TCP, l4: new Uint8Array(12) })
  dropped(r, 0, shortTcp, 'malformed')
  dropped(r, 0, seg(A, P, 0, 80, TCP_SYN), 'bad-port')
  assert.equal(r.liveFlows, 0)
  r.checkInvariants()
})

test('configuration is checked', () => {
  const isConfig = (e: unknown) => e instanceof ConfigError && e.code === 'PT_CONFIG_INVALID'
  assert.throws(() => reflector({ localAddress: R }), isConfig)
  assert.throws(() => reflector({ reflectorAddress: P }), isConfig)
  assert.throws(() => reflector({ listenerPort: 0 }), isConfig)
  assert.throws(() => reflector({ portMin: 5000, portMax: 4000 }), isConfig)
  assert.throws(() => reflector({ maxFlows: 0 }), isConfig)
  assert.equal(reflector().reflectorAddress, 'fd50:494c:4f54::1:0:1')
  // R defaults to A's network.
  const other = new TcpReflector({ localAddress: Q, listenerPort: L, prefix: DEFAULT_OVERLAY_PREFIX })
  assert.equal(other.reflectorAddress, 'fd50:494c:4f54:1:0:1:0:1')
})

test('fuzz: 100,000 random and mutated packets never throw, keep checksums honest and never corrupt the flow table', () => {
  const rng = new SeededRandom(0xf10)
  const r = reflector({ portMin: 30000, portMax: 30511, timeouts: { synMs: 2000, establishedMs: 5000, finWaitMs: 3000, timeWaitMs: 1000, resetMs: 500, quarantineMs: 700 } })
  const peers = [P, Q, mapPilotToIpv6({ network: 0, node: 9 }, DEFAULT_OVERLAY_PREFIX)]
  const view = new Ipv6Packet()
  const valid = (): Uint8Array => {
    const k = rng.int(10)
    const flags = [TCP_SYN, TCP_ACK, TCP_SYN | TCP_ACK, TCP_FIN | TCP_ACK, TCP_RST, TCP_ACK | TCP_PSH][rng.int(6)]!
    const data = randomBytes(rng, rng.int(40))
    if (k < 5) return seg(A, peers[rng.int(3)]!, 40000 + rng.int(64), 80 + rng.int(4), flags, rng.u32(), rng.u32(), data)
    if (k < 9) return seg(A, R, rng.int(4) ? L : 45000, 30000 + rng.int(600), flags, rng.u32(), rng.u32(), data)
    return seg(rng.int(2) ? A : P, peers[rng.int(3)]!, rng.int(65536), rng.int(65536), flags)
  }
  let now = 0
  let writes = 0
  for (let i = 0; i < 100_000; i++) {
    now += rng.int(20)
    if (i % 500 === 0) {
      r.registerInbound(now, { network: 0, node: 7 }, 50000 + rng.int(100), 22 + rng.int(3), rng.int(2) ? 45000 : 0)
    }
    const base = valid()
    const input = i % 3 === 0 ? mutate(rng, base) : i % 17 === 0 ? randomBytes(rng, rng.int(100)) : base
    // Whether the input was a well-formed TCP packet with a valid checksum.
    let inputValid = false
    if (parseIpv6Into(view, input) === null && view.protocol === IPPROTO_TCP && !view.fragmented && view.l4Length >= 20) {
      inputValid = verifyTransportChecksum(input, view.offset, view.l4Offset, view.l4Length, IPPROTO_TCP)
    }
    const d = r.handlePacket(now, input)
    if (d.action === ReflectAction.WriteBack) {
      writes++
      assert.ok(d.offset >= 0 && d.offset + d.length <= input.length)
      const out = input.subarray(d.offset, d.offset + d.length)
      assert.equal(parseIpv6Into(view, out), null)
      const outValid = verifyTransportChecksum(out, view.offset, view.l4Offset, view.l4Length, IPPROTO_TCP)
      // A reset is computed afresh; a rewrite keeps the input's checksum validity.
      if (d.isReset) assert.ok(outValid)
      else assert.equal(outValid, inputValid, `packet ${i}: checksum validity changed by the rewrite`)
    } else {
      assert.ok(d.reason !== null)
    }
    if (i % 1000 === 0) r.expire(now)
    if (i % 5000 === 0) r.checkInvariants()
  }
  r.checkInvariants()
  assert.ok(writes > 20_000, `writes ${writes}`)
})
