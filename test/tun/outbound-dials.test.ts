// OutboundDials: the TCP bridge's held SYNs and open-but-unaccepted streams.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { PassThrough } from 'node:stream'
import { OutboundDials, type OutboundDial } from '../../src/tun/outbound-dials.js'

function dial(node: number, peerPort: number, localPort: number, network = 0): OutboundDial {
  return { peer: { network, node }, peerPort, localPort, syn: Buffer.alloc(60), stream: null, deadline: Number.POSITIVE_INFINITY }
}

test('keyed by peer node, peer port and local port', () => {
  const d = new OutboundDials()
  const a = dial(7, 80, 40000)
  d.add(a)
  assert.equal(d.get({ network: 0, node: 7 }, 80, 40000), a, 'found by an equal address object')
  assert.equal(d.get({ network: 1, node: 7 }, 80, 40000), undefined, 'other network')
  assert.equal(d.get({ network: 0, node: 7 }, 40000, 80), undefined, 'ports swapped')
  assert.equal(d.get({ network: 0, node: 7 }, 81, 40000), undefined)
  assert.equal(d.size, 1)
  assert.ok(d.holds(a))
})

test('remove forgets a dial only while it is the one held: a newer dial for the same key stays', () => {
  const d = new OutboundDials()
  const old = dial(7, 80, 40000)
  d.add(old)
  const newer = dial(7, 80, 40000)
  d.add(newer)
  assert.equal(d.size, 1, 'replaced, not added')
  assert.equal(d.holds(old), false)
  d.remove(old)
  assert.equal(d.get(old.peer, 80, 40000), newer)
  d.remove(newer)
  assert.equal(d.size, 0)
  d.remove(newer)
  assert.equal(d.size, 0, 'removing twice is harmless')
})

test('takeLate returns and forgets only dials whose stream is open and whose deadline has come', () => {
  const d = new OutboundDials()
  const waiting = dial(1, 80, 1) // no stream yet: never late
  const due = dial(1, 80, 2)
  due.stream = new PassThrough()
  due.deadline = 100
  const notYet = dial(2, 80, 1)
  notYet.stream = new PassThrough()
  notYet.deadline = 101
  for (const x of [waiting, due, notYet]) d.add(x)
  assert.deepEqual(d.takeLate(99), [])
  assert.deepEqual(d.takeLate(100), [due])
  assert.equal(d.size, 2)
  assert.equal(d.holds(due), false)
  assert.deepEqual(new Set(d.all()), new Set([waiting, notYet]))
  assert.deepEqual(d.takeLate(1e9), [notYet])
  assert.deepEqual(d.all(), [waiting])
})
