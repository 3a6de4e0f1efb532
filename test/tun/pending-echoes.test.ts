// PendingEchoes: echo requests turned into Pilot pings, waiting for pongs.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { PendingEchoes } from '../../src/tun/pending-echoes.js'
import { Icmpv6Echo, parseIcmpv6EchoInto } from '../../src/tun/packets/icmpv6.js'
import { mapPilotToIpv6, parseOverlayPrefix } from '../../src/protocol/ipv6-mapping.js'
import { naivePacket } from './packet-oracle.js'

const PREFIX = parseOverlayPrefix('2001:db8:7::/48')
const A = mapPilotToIpv6({ network: 0, node: 1 }, PREFIX)
const B = { network: 0, node: 2 }
const C = { network: 3, node: 2 }

function echoRequest(to: { network: number; node: number }, id: number, seq: number, data: string): { buf: Uint8Array; echo: Icmpv6Echo } {
  const l4 = new Uint8Array(8 + data.length)
  l4[0] = 128
  l4[4] = id >> 8
  l4[5] = id & 0xff
  l4[6] = seq >> 8
  l4[7] = seq & 0xff
  l4.set(Buffer.from(data), 8)
  const buf = naivePacket({ src: A, dst: mapPilotToIpv6(to, PREFIX), protocol: 58, l4 })
  const echo = new Icmpv6Echo()
  assert.equal(parseIcmpv6EchoInto(echo, buf, 40, buf.length - 40), null)
  return { buf, echo }
}

test('a pong from the pinged node takes its echo: id, seq, a copy of the data and the address pinged', () => {
  const e = new PendingEchoes(8, 1000)
  const { buf, echo } = echoRequest(B, 0x1234, 7, 'hello')
  e.add(0, 41, B, echo, buf, 24)
  buf.fill(0) // the bridge reuses its buffers
  const got = e.take(41, { network: 0, node: 2 })
  assert.ok(got)
  assert.equal(got.id, 0x1234)
  assert.equal(got.seq, 7)
  assert.equal(got.data.toString(), 'hello')
  assert.deepEqual(got.peerAddress, mapPilotToIpv6(B, PREFIX))
  assert.equal(got.deadline, 1000)
  assert.equal(e.take(41, B), null, 'taken once')
  assert.equal(e.size, 0)
})

test('a pong from another node, or with an unknown id, is ignored and the echo stays', () => {
  const e = new PendingEchoes(8, 1000)
  const { buf, echo } = echoRequest(B, 1, 1, 'x')
  e.add(0, 5, B, echo, buf, 24)
  assert.equal(e.take(5, C), null, 'same node id, other network')
  assert.equal(e.take(6, B), null)
  assert.equal(e.size, 1)
  assert.ok(e.take(5, B))
})

test('full: the oldest is forgotten and counted as expired', () => {
  const e = new PendingEchoes(2, 1000)
  for (const id of [1, 2, 3]) {
    const { buf, echo } = echoRequest(B, id, id, 'x')
    e.add(id, id, B, echo, buf, 24)
  }
  assert.equal(e.size, 2)
  assert.equal(e.expired, 1)
  assert.equal(e.take(1, B), null)
  assert.equal(e.take(3, B)?.id, 3)
})

test('expire forgets echoes due at or before now, in order, and counts them', () => {
  const e = new PendingEchoes(8, 100)
  for (const [id, at] of [[1, 0], [2, 10], [3, 20]] as const) {
    const { buf, echo } = echoRequest(B, id, 0, '')
    e.add(at, id, B, echo, buf, 24)
  }
  e.expire(109)
  assert.deepEqual([e.size, e.expired], [2, 1])
  e.expire(110)
  assert.deepEqual([e.size, e.expired], [1, 2])
  assert.equal(e.take(3, B)?.data.length, 0)
  e.clear()
  assert.equal(e.size, 0)
})
