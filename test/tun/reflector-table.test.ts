// FlowTable: the reflector's struct-of-arrays flow table (lookup by NAT port
// and by (P, peer port, local port), add/release/expire, allocation limits,
// invariants), here with a non-default overlay prefix.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { ALLOC_EXHAUSTED, ALLOC_TABLE_FULL, FlowKind, FlowTable, NO_FLOW } from '../../src/tun/reflector-table.js'
import { F_LIVE } from '../../src/tun/reflector-state.js'
import { mapPilotToIpv6, parseOverlayPrefix } from '../../src/protocol/ipv6-mapping.js'
import { SeededRandom } from '../../src/random.js'

const PREFIX = parseOverlayPrefix('2001:db8:42::/48')
const peer = (network: number, node: number) => mapPilotToIpv6({ network, node }, PREFIX)
const P = peer(0, 7)
const Q = peer(5, 0xf2910004)

function table(over: Partial<ConstructorParameters<typeof FlowTable>[0]> = {}): FlowTable {
  return new FlowTable({ portMin: 20000, portMax: 20099, maxFlows: 100, quarantineMs: 50, ...over })
}

test('add: the flow is found by its NAT port and by its key, with every field set', () => {
  const t = table()
  const slot = t.add(0, FlowKind.Outbound, P, 0, 80, 40000, 0, 1234)
  assert.ok(slot >= 0)
  const natPort = t.natPortOf(slot)
  assert.equal(natPort, 20000 + slot)
  assert.equal(t.slotOf(natPort), slot)
  assert.equal(t.find(P, 0, 80, 40000), slot)
  assert.equal(t.find(P, 0, 80, 40001), NO_FLOW, 'other local port')
  assert.equal(t.find(P, 0, 81, 40000), NO_FLOW, 'other peer port')
  assert.equal(t.find(Q, 0, 80, 40000), NO_FLOW, 'other peer')
  assert.deepEqual(
    [t.flags[slot], t.kind[slot], t.peerPort[slot], t.localPort[slot], t.daemonPort[slot], t.deadline[slot]],
    [F_LIVE, FlowKind.Outbound, 80, 40000, 0, 1234],
  )
  assert.deepEqual(t.peerAddr.subarray(slot * 16, slot * 16 + 16), P)
  assert.equal(t.size, 1)
  assert.equal(t.flowsCreated, 1)
  // The key may sit anywhere in a buffer (an IPv6 header's destination field).
  const packet = new Uint8Array(40)
  packet.set(P, 24)
  assert.equal(t.find(packet, 24, 80, 40000), slot)
  t.checkInvariants(PREFIX)
})

test('slotOf: ports outside the range or without a live flow are NO_FLOW', () => {
  const t = table()
  const slot = t.add(0, FlowKind.Inbound, Q, 0, 50000, 22, 45000, 10)
  assert.equal(t.slotOf(19999), NO_FLOW)
  assert.equal(t.slotOf(20100), NO_FLOW)
  assert.equal(t.slotOf(t.natPortOf(slot) + 1), NO_FLOW)
  assert.equal(t.slotOf(t.natPortOf(slot)), slot)
  assert.equal(t.daemonPort[slot], 45000)
})

test('release: gone from both lookups, counted, and the port is quarantined before reuse', () => {
  const t = table({ portMin: 30000, portMax: 30001, maxFlows: 2 })
  const a = t.add(0, FlowKind.Outbound, P, 0, 80, 1, 0, 100)
  const b = t.add(0, FlowKind.Outbound, P, 0, 80, 2, 0, 100)
  assert.equal(t.add(0, FlowKind.Outbound, P, 0, 80, 3, 0, 100), ALLOC_EXHAUSTED)
  t.release(a, 10)
  assert.equal(t.slotOf(t.natPortOf(a)), NO_FLOW)
  assert.equal(t.find(P, 0, 80, 1), NO_FLOW)
  assert.equal(t.find(P, 0, 80, 2), b, 'the other flow stays')
  assert.equal(t.flags[a], 0)
  assert.equal(t.flowsReleased, 1)
  assert.equal(t.quarantinedPorts, 1)
  assert.equal(t.add(59, FlowKind.Outbound, P, 0, 80, 3, 0, 100), ALLOC_EXHAUSTED, 'still in quarantine')
  assert.equal(t.add(60, FlowKind.Outbound, P, 0, 80, 3, 0, 100), a, 'reused after 50 ms')
  t.checkInvariants(PREFIX)
})

test('maxFlows below the port range: a full table is ALLOC_TABLE_FULL, not exhaustion', () => {
  const t = table({ maxFlows: 3 })
  for (let i = 0; i < 3; i++) assert.ok(t.add(0, FlowKind.Outbound, P, 0, 80, i + 1, 0, 10) >= 0)
  assert.equal(t.add(0, FlowKind.Outbound, P, 0, 80, 9, 0, 10), ALLOC_TABLE_FULL)
  assert.equal(t.size, 3)
  t.checkInvariants(PREFIX)
})

test('expire: removes flows due at or before now (counted apart from releases), keeps the rest, ends quarantines', () => {
  const t = table({ quarantineMs: 5 })
  const early = t.add(0, FlowKind.Outbound, P, 0, 80, 1, 0, 10)
  const same = t.add(0, FlowKind.Outbound, Q, 0, 80, 1, 0, 10)
  const late = t.add(0, FlowKind.Inbound, Q, 0, 80, 2, 0, 11)
  assert.equal(t.expire(9), 0)
  assert.equal(t.expire(10), 2)
  assert.equal(t.slotOf(t.natPortOf(early)), NO_FLOW)
  assert.equal(t.slotOf(t.natPortOf(same)), NO_FLOW)
  assert.equal(t.slotOf(t.natPortOf(late)), late)
  assert.equal(t.flowsExpired, 2)
  assert.equal(t.flowsReleased, 0)
  assert.equal(t.quarantinedPorts, 2)
  t.deadline[late] = 100 // the reflector moves deadlines in place
  assert.equal(t.expire(15), 0)
  assert.equal(t.quarantinedPorts, 0, 'expire drains quarantine too')
  t.checkInvariants(PREFIX)
})

test('hash chains: a full table of flows differing only in ports, networks or nodes all stay findable', () => {
  const t = new FlowTable({ portMin: 1, portMax: 4096, maxFlows: 4096, quarantineMs: 0, random: new SeededRandom(1) })
  const keys: Array<[Uint8Array, number, number, number]> = []
  for (let i = 0; i < 4096; i++) {
    const addr = peer(i % 3, (i % 5) * 0x01000000)
    const k: [Uint8Array, number, number, number] = [addr, 1 + (i % 7), 1 + Math.floor(i / 35), 0]
    k[3] = t.add(0, FlowKind.Outbound, addr, 0, k[1], k[2], 0, 1 + (i % 11))
    assert.ok(k[3] >= 0, `flow ${i} added`)
    keys.push(k)
  }
  for (const [addr, pp, lp, slot] of keys) assert.equal(t.find(addr, 0, pp, lp), slot)
  t.checkInvariants(PREFIX)
  // Remove every other one by expiry and release; the rest are still found.
  t.expire(5)
  for (const [addr, pp, lp, slot] of keys) {
    if (t.deadline[slot]! > 5 && t.slotOf(t.natPortOf(slot)) === slot && pp % 2 === 0) t.release(slot, 6)
  }
  for (const [addr, pp, lp, slot] of keys) {
    const live = t.slotOf(t.natPortOf(slot)) === slot
    assert.equal(t.find(addr, 0, pp, lp), live ? slot : NO_FLOW)
  }
  t.checkInvariants(PREFIX)
})

test('checkInvariants catches a corrupted table and a peer outside the prefix', () => {
  const t = table()
  const slot = t.add(0, FlowKind.Outbound, P, 0, 80, 1, 0, 10)
  t.checkInvariants(PREFIX)
  assert.throws(() => t.checkInvariants(parseOverlayPrefix('fd50:494c:4f54::/48')), /peer is not a node/)
  t.kind[slot] = 0
  assert.throws(() => t.checkInvariants(PREFIX), /has no kind/)
  t.kind[slot] = FlowKind.Outbound
  t.flags[(slot + 1) % 100] = F_LIVE
  assert.throws(() => t.checkInvariants(PREFIX), /dead slot \d+ has flags/)
  t.flags[(slot + 1) % 100] = 0
  t.peerPort[slot] = 81 // the key changed behind the hash's back
  assert.throws(() => t.checkInvariants(PREFIX), /not found by its key/)
})
