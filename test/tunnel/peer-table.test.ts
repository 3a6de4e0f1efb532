// The peer table (peer-table.ts): bounded, and what it remembers of a removed peer.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { PeerTable, lastTrafficMs } from '../../src/tunnel/peer-table.js'

const key = (n: number): Uint8Array => new Uint8Array(32).fill(n)

test('add / get / remove; full at maxPeers; idlest is the one with the oldest traffic either way', () => {
  const t = new PeerTable({ maxPeers: 3, maxForgottenPeers: 10 })
  const a = t.add(1, 100)
  const b = t.add(2, 200)
  const c = t.add(3, 300)
  assert.equal(t.full, true)
  assert.equal(t.get(2), b)
  assert.equal(t.idlest(), a)
  a.lastReceiveMs = 400 // an authenticated frame from it since
  assert.equal(lastTrafficMs(a), 400)
  assert.equal(t.idlest(), b)
  assert.equal(t.remove(b), false)
  assert.equal(t.get(2), undefined)
  assert.equal(t.full, false)
  assert.equal(t.forgottenCount, 0, 'a peer that never had a key leaves nothing behind')
  assert.equal(t.remove(b), false, 'removing twice is harmless')
  assert.deepEqual([...t.values()].map((p) => p.nodeId), [1, 3])
  void c
})

test('a removed peer with a key is remembered; added again it gets back its key (as restoredKey), replay windows and retired keys', () => {
  const t = new PeerTable({ maxPeers: 10, maxForgottenPeers: 10 })
  const p = t.add(7, 0)
  p.peerX25519 = key(2)
  p.retiredKeys.push(key(1))
  p.replay.commit(0xabc, 5)
  const windows = p.replay
  t.remove(p)
  assert.equal(t.forgottenCount, 1)
  const q = t.add(7, 50)
  assert.notEqual(q, p)
  assert.deepEqual(q.restoredKey, key(2))
  assert.equal(q.peerX25519, null, 'keys must be set up again; only the memory comes back')
  assert.equal(q.replay, windows)
  assert.equal(q.replay.check(0xabc, 5), false, 'an old frame stays a replay')
  assert.deepEqual(q.retiredKeys, [key(1)])
  assert.equal(t.forgottenCount, 0)
  // Removed again before its key came back: the restored key is what is remembered.
  t.remove(q)
  assert.deepEqual(t.add(7, 60).restoredKey, key(2))
})

test('remembered peers are bounded: the oldest goes, and remove() says so (the tunnel then rotates its keys)', () => {
  const t = new PeerTable({ maxPeers: 10, maxForgottenPeers: 2 })
  const removeKeyed = (id: number): boolean => {
    const p = t.add(id, 0)
    p.peerX25519 = key(id)
    return t.remove(p)
  }
  assert.equal(removeKeyed(1), false)
  assert.equal(removeKeyed(2), false)
  assert.equal(removeKeyed(3), true)
  assert.equal(t.forgottenCount, 2)
  assert.equal(t.add(1, 0).restoredKey, null, 'node 1 was forgotten entirely')
  assert.deepEqual(t.add(3, 0).restoredKey, key(3))
  t.clear()
  assert.deepEqual([t.size, t.forgottenCount], [0, 0])
})
