// Beacon ↔ beacon messages (docs/wire.md §9.7): Sync rounds split with the
// pilot-tun trailer, PeerPunch / PeerPunchReply, and the cluster's state.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { DecodeError } from '../../src/errors.js'
import { decodeBeaconMessage } from '../../src/protocol/beacon-messages.js'
import {
  ClusterType,
  SYNC_IDS_PER_DATAGRAM,
  decodePeerPunch,
  decodeSyncPart,
  encodePeerPunch,
  encodeSyncRound,
} from '../../src/protocol/beacon-cluster-messages.js'
import { ClusterState } from '../../src/beacon/cluster-state.js'

test('a Sync round that fits one datagram is byte-identical to the reference Sync (wire.md §9.1 example)', () => {
  const [d, ...rest] = encodeSyncRound(9, [1, 2], 77)
  assert.equal(rest.length, 0)
  assert.equal(d!.toString('hex'), '07000000090002' + '00000001' + '00000002')
  assert.deepEqual(decodeSyncPart(d!), { beaconId: 9, nodeIds: [1, 2], round: null })
  // An empty set is still one Sync (it tells the peer we hold nothing).
  assert.equal(encodeSyncRound(3, [], 1)[0]!.toString('hex'), '07000000030000')
})

test('a larger round is split into parts with a trailer, each still a valid Sync for a reader without the trailer', () => {
  const ids = Array.from({ length: 1000 }, (_, i) => i + 1)
  const parts = encodeSyncRound(5, ids, 0xabcdef01)
  assert.equal(parts.length, Math.ceil(1000 / SYNC_IDS_PER_DATAGRAM))
  const seen: number[] = []
  parts.forEach((p, i) => {
    assert.ok(p.length <= 1400, `part ${i} is ${p.length} bytes`)
    const part = decodeSyncPart(p)
    assert.deepEqual(part.round, { id: 0xabcdef01, part: i, parts: parts.length })
    seen.push(...part.nodeIds)
    // The generic decoder (the reference's layout) reads the same IDs and ignores the trailer.
    const plain = decodeBeaconMessage(p)
    assert.equal(plain.type, 0x07)
    assert.deepEqual((plain as { nodeIds: readonly number[] }).nodeIds, part.nodeIds)
  })
  assert.deepEqual(seen, ids)
  assert.throws(() => encodeSyncRound(1, [1], 1, 0), DecodeError)
  assert.throws(() => encodeSyncRound(1, [2 ** 32], 1), DecodeError)
})

test('Sync decoding refuses short datagrams and impossible part numbers; random trailing bytes are no trailer', () => {
  assert.throws(() => decodeSyncPart(Buffer.from('070000000100', 'hex')), DecodeError)
  assert.throws(() => decodeSyncPart(Buffer.from('07000000010002' + '00000001', 'hex')), DecodeError)
  const bad = Buffer.from('07000000010001' + '00000001' + '50545359' + '00000001' + '0003' + '0002', 'hex')
  assert.throws(() => decodeSyncPart(bad), DecodeError)
  const junk = Buffer.from('07000000010001' + '00000001' + 'deadbeefdeadbeefdeadbeef', 'hex')
  assert.equal(decodeSyncPart(junk).round, null)
})

test('PeerPunch and PeerPunchReply round-trip, IPv4 and IPv6; malformed ones are typed errors', () => {
  const m = { type: ClusterType.PEER_PUNCH, requesterId: 1, targetId: 2, endpoint: { host: '203.0.113.5', port: 4000 } }
  const b = encodePeerPunch(m)
  assert.equal(b.toString('hex'), '0b' + '00000001' + '00000002' + '04cb007105' + '0fa0')
  assert.deepEqual(decodePeerPunch(b), m)
  const r = { type: ClusterType.PEER_PUNCH_REPLY, requesterId: 7, targetId: 9, endpoint: { host: '2001:db8::1', port: 1 } }
  assert.deepEqual(decodePeerPunch(encodePeerPunch(r)), r)
  assert.throws(() => decodePeerPunch(b.subarray(0, 12)), DecodeError)
  assert.throws(() => decodePeerPunch(Buffer.from('0b00000001000000020500', 'hex')), DecodeError)
  assert.throws(() => decodePeerPunch(Buffer.from('0700', 'hex')), DecodeError)
})

test('cluster state: a Sync replaces what the peer said before; a split round applies only when complete', () => {
  const s = new ClusterState(1)
  s.setPeers([{ host: '192.0.2.2', port: 9001 }], 'static')
  const peer = s.peerAt('::ffff:192.0.2.2', 9001)!
  assert.ok(peer, 'an IPv4-mapped source matches the IPv4 peer')
  assert.equal(s.peerAt('192.0.2.2', 9002), undefined)
  assert.equal(s.onSync(peer, { beaconId: 2, nodeIds: [10, 11], round: null }, 0), 'applied')
  assert.equal(s.ownerOf(10, 0), peer)
  assert.equal(s.onSync(peer, { beaconId: 2, nodeIds: [11, 12], round: null }, 1), 'applied')
  assert.equal(s.ownerOf(10, 1), undefined, 'replaced')
  assert.equal(s.ownerOf(12, 1), peer)
  // Two parts: nothing changes after the first, everything after the second.
  assert.equal(s.onSync(peer, { beaconId: 2, nodeIds: [20], round: { id: 5, part: 0, parts: 2 } }, 2), 'partial')
  assert.equal(s.ownerOf(20, 2), undefined)
  assert.equal(s.ownerOf(12, 2), peer)
  assert.equal(s.onSync(peer, { beaconId: 2, nodeIds: [21], round: { id: 5, part: 1, parts: 2 } }, 3), 'applied')
  assert.deepEqual([s.ownerOf(20, 3) === peer, s.ownerOf(21, 3) === peer, s.ownerOf(12, 3)], [true, true, undefined])
  assert.equal(peer.beaconId, 2)
  // Our own ID coming back (a peer list naming ourselves) is ignored.
  assert.equal(s.onSync(peer, { beaconId: 1, nodeIds: [99], round: null }, 4), 'self')
  assert.equal(s.ownerOf(99, 4), undefined)
})

test('cluster state: a silent peer is forgotten after learnedTtlMs; bounds on peers and IDs hold', () => {
  const s = new ClusterState(1, { maxPeers: 2, maxLearnedPerPeer: 3, learnedTtlMs: 1000 })
  assert.equal(s.setPeers([{ host: '10.0.0.2', port: 1 }, { host: '10.0.0.3', port: 1 }, { host: '10.0.0.4', port: 1 }], 'static'), 1)
  assert.equal(s.peerCount, 2)
  const p = s.peerAt('10.0.0.2', 1)!
  assert.equal(s.onSync(p, { beaconId: 2, nodeIds: [1, 2, 3, 4, 5], round: null }, 0), 'truncated')
  assert.equal(s.learnedCount(0), 3)
  assert.equal(s.ownerOf(5, 0), undefined)
  assert.equal(s.ownerOf(1, 1000), p)
  assert.equal(s.ownerOf(1, 1001), undefined, 'expired')
  assert.equal(s.learnedCount(1001), 0)
})

test('cluster state: registry peers are replaced by the next list, static ones stay; a node that moved follows the last Sync', () => {
  const s = new ClusterState(1)
  s.setPeers([{ host: '10.0.0.2', port: 1 }], 'static')
  s.setPeers([{ host: '10.0.0.3', port: 1, beaconId: 3 }, { host: '10.0.0.4', port: 1, beaconId: 4 }], 'registry')
  assert.equal(s.peerCount, 3)
  const p3 = s.peerAt('10.0.0.3', 1)!
  const p4 = s.peerAt('10.0.0.4', 1)!
  assert.equal(p3.beaconId, 3)
  s.onSync(p3, { beaconId: 3, nodeIds: [7], round: null }, 0)
  s.onSync(p4, { beaconId: 4, nodeIds: [7], round: null }, 1)
  assert.equal(s.ownerOf(7, 1), p4)
  s.onSync(p3, { beaconId: 3, nodeIds: [], round: null }, 2)
  assert.equal(s.ownerOf(7, 2), p4, 'p3 dropping 7 does not take it from p4')
  s.setPeers([{ host: '10.0.0.3', port: 1, beaconId: 3 }], 'registry')
  assert.equal(s.peerCount, 2)
  assert.equal(s.ownerOf(7, 2), undefined, 'the unlisted peer and what it held are gone')
  s.setPeers([], 'registry')
  assert.ok(s.peerAt('10.0.0.2', 1), 'the static peer stays')
})
