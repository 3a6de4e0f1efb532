// TunWriter: what the bridge writes into the TUN, batched, and the
// rate-limited ICMPv6 errors it answers with.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { setImmediate as nextImmediate } from 'node:timers/promises'
import { TunWriter } from '../../src/tun/tun-writer.js'
import { UNREACH_ADDRESS, UNREACH_ADMIN_PROHIBITED } from '../../src/tun/packets/icmpv6.js'
import { mapPilotToIpv6, parseIpv6, parseOverlayPrefix } from '../../src/protocol/ipv6-mapping.js'
import { naivePacket, naiveVerify, udpHeader } from './packet-oracle.js'

/** A device that records each writePackets call, and accepts all but `refuse` packets per call. */
function fakeDevice(refuse = 0) {
  const calls: Uint8Array[][] = []
  return {
    calls,
    writePackets(packets: readonly Uint8Array[]): number {
      calls.push([...packets])
      return Math.max(0, packets.length - refuse)
    },
  }
}

const PREFIX = parseOverlayPrefix('2001:db8:7::/48')
const A = mapPilotToIpv6({ network: 1, node: 0x2a }, PREFIX)
const P = mapPilotToIpv6({ network: 1, node: 7 }, PREFIX)
const bytes = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.byteLength)
const u32 = (b: Uint8Array, o: number) => ((b[o]! << 24) | (b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!) >>> 0

test('inside a batch, queued packets leave in one writePackets at endBatch, in order', async () => {
  const dev = fakeDevice()
  const w = new TunWriter(dev, 100)
  const p1 = Uint8Array.of(1)
  const p2 = Uint8Array.of(2)
  w.beginBatch()
  w.queue(p1)
  w.queue(p2)
  await nextImmediate()
  assert.equal(dev.calls.length, 0, 'nothing before the batch ends, not even on an immediate')
  w.endBatch()
  assert.deepEqual(dev.calls, [[p1, p2]])
  assert.equal(w.stats().packetsOut, 2)
  w.endBatch()
  assert.equal(dev.calls.length, 1, 'an empty flush writes nothing')
})

test('outside a batch, packets queued in one callback leave together when it ends, before any immediate', async () => {
  const dev = fakeDevice(1)
  const w = new TunWriter(dev, 100)
  w.queue(Uint8Array.of(1))
  w.queue(Uint8Array.of(2))
  w.queue(Uint8Array.of(3))
  assert.equal(dev.calls.length, 0, 'not while the callback runs')
  await Promise.resolve() // the end of this callback: no event-loop turn in between
  assert.equal(dev.calls.length, 1)
  assert.equal(dev.calls[0]!.length, 3)
  assert.equal(w.stats().packetsOut, 2, 'counts what the device accepted')
  w.queue(Uint8Array.of(4))
  await nextImmediate()
  assert.equal(dev.calls.length, 2, 'a later callback gets its own write')
})

test('close drops what is queued and ignores later packets', async () => {
  const dev = fakeDevice()
  const w = new TunWriter(dev, 100)
  w.queue(Uint8Array.of(1))
  w.close()
  w.queue(Uint8Array.of(2))
  w.beginBatch()
  w.endBatch()
  await nextImmediate()
  assert.equal(dev.calls.length, 0)
  w.close()
})

test('Destination Unreachable: from the unreachable destination to the sender, quoting the packet, right checksum', () => {
  const dev = fakeDevice()
  const w = new TunWriter(dev, 100)
  const invoking = naivePacket({ src: A, dst: P, protocol: 17, l4: udpHeader(5000, 53, Buffer.from('query')) })
  w.beginBatch()
  w.unreachable(0, UNREACH_ADMIN_PROHIBITED, invoking, 0, invoking.length)
  w.endBatch()
  const out = dev.calls[0]![0]!
  assert.equal(out[6], 58, 'ICMPv6')
  assert.deepEqual(bytes(out.subarray(8, 24)), bytes(P))
  assert.deepEqual(bytes(out.subarray(24, 40)), bytes(A))
  assert.equal(out[40], 1, 'type 1')
  assert.equal(out[41], UNREACH_ADMIN_PROHIBITED)
  assert.deepEqual(bytes(out.subarray(48)), bytes(invoking), 'the whole packet quoted')
  assert.ok(naiveVerify(out))
  assert.equal(w.stats().icmpErrorsSent, 1)
})

test('Packet Too Big announces the MTU and quotes no more than fits in 1280 bytes', () => {
  const dev = fakeDevice()
  const w = new TunWriter(dev, 100)
  const big = naivePacket({ src: A, dst: P, protocol: 17, l4: udpHeader(5000, 6000, new Uint8Array(3000)) })
  w.beginBatch()
  w.packetTooBig(0, 1400, big, 0, big.length)
  w.endBatch()
  const out = dev.calls[0]![0]!
  assert.equal(out.length, 1280)
  assert.equal(out[40], 2)
  assert.equal(u32(out, 44), 1400)
  assert.deepEqual(bytes(out.subarray(48)), bytes(big.subarray(0, 1280 - 48)))
  assert.ok(naiveVerify(out))
})

test('ICMPv6 errors: a token bucket of N a second (burst N), refilled with time', () => {
  const dev = fakeDevice()
  const w = new TunWriter(dev, 3)
  const pkt = naivePacket({ src: A, dst: P, protocol: 17, l4: udpHeader(1, 2, new Uint8Array(1)) })
  w.beginBatch()
  for (let i = 0; i < 5; i++) w.unreachable(1000, UNREACH_ADDRESS, pkt, 0, pkt.length)
  w.endBatch()
  assert.equal(dev.calls[0]!.length, 3)
  assert.deepEqual([w.stats().icmpErrorsSent, w.stats().icmpErrorsRateLimited], [3, 2])
  w.beginBatch()
  w.unreachable(1200, UNREACH_ADDRESS, pkt, 0, pkt.length) // 0.6 token: still limited
  w.unreachable(1400, UNREACH_ADDRESS, pkt, 0, pkt.length) // 1.2 tokens: one goes out
  w.packetTooBig(1400, 1280, pkt, 0, pkt.length) // the two kinds share the bucket
  w.endBatch()
  assert.equal(dev.calls[1]!.length, 1)
  assert.deepEqual([w.stats().icmpErrorsSent, w.stats().icmpErrorsRateLimited], [4, 4])
})

test('no error about an ICMPv6 error or an unspecified source; Packet Too Big may answer a multicast destination', () => {
  const dev = fakeDevice()
  const w = new TunWriter(dev, 100)
  const icmpErr = naivePacket({ src: A, dst: P, protocol: 58, l4: Uint8Array.of(1, 0, 0, 0, 0, 0, 0, 0) })
  const fromNowhere = naivePacket({ src: parseIpv6('::'), dst: P, protocol: 17, l4: udpHeader(1, 2, new Uint8Array(1)) })
  const toGroup = naivePacket({ src: A, dst: parseIpv6('ff02::fb'), protocol: 17, l4: udpHeader(1, 2, new Uint8Array(1)) })
  w.beginBatch()
  w.unreachable(0, UNREACH_ADDRESS, icmpErr, 0, icmpErr.length)
  w.unreachable(0, UNREACH_ADDRESS, fromNowhere, 0, fromNowhere.length)
  w.unreachable(0, UNREACH_ADDRESS, toGroup, 0, toGroup.length)
  w.packetTooBig(0, 1280, toGroup, 0, toGroup.length)
  w.endBatch()
  assert.equal(dev.calls[0]!.length, 1, 'only the Packet Too Big')
  assert.equal(dev.calls[0]![0]![40], 2)
  assert.equal(dev.calls[0]![0]![41], 0, 'code 0')
  assert.deepEqual([w.stats().icmpErrorsSent, w.stats().icmpErrorsSuppressed], [1, 3])
})
