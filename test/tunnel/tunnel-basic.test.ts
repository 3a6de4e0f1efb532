// Tunnel key exchange, queueing and KDF selection between real Tunnel instances
// over a MemoryNetwork with the real BeaconServer.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Identity } from '../../src/crypto/index.js'
import { World, exchange, firstWord, packet, payloads, waitFor } from './helpers.js'
import type { KdfMode } from '../../src/tunnel/tunnel.js'

test('key exchange completes and packets flow both ways; packets sent before keys are delivered after', async () => {
  const w = await World.create()
  const seen: string[] = []
  w.net.setFilter((_f, _t, d) => {
    seen.push(firstWord(d))
    return true
  })
  try {
    const a = w.node(1, '10.0.0.1')
    const b = w.node(2, '10.0.0.2')
    // Five packets before any key exists: all queued, all delivered once keys are up, in order.
    for (let i = 0; i < 5; i++) a.tunnel.send(2, packet(1, 2, `early-${i}`))
    await waitFor(() => b.received.length === 5, 'five queued packets')
    assert.deepEqual(payloads(b, 1), ['early-0', 'early-1', 'early-2', 'early-3', 'early-4'])
    await exchange(b, a, 'reply')
    const pa = a.tunnel.peer(2)!
    const pb = b.tunnel.peer(1)!
    assert.equal(pa.path, 'direct')
    assert.equal(pb.path, 'direct')
    assert.ok(pa.authenticated && pb.authenticated)
    assert.deepEqual(pa.endpoint, { host: '10.0.0.2', port: 4000 })
    assert.equal(pa.packetsOut, 5)
    assert.equal(pa.packetsIn, 1)
    assert.equal(pb.packetsIn, 5)
    assert.ok(pa.rttMs !== undefined && pa.rttMs >= 0)
    assert.ok(pa.lastReceiveMs > 0)
    // Decrypted packets are real Pilot packets: header intact, CRC valid (decoded by the tunnel).
    assert.equal(b.received[0]!.packet.readUInt32BE(6), 1) // src node
    assert.equal(b.received[0]!.packet.readUInt32BE(12), 2) // dst node
    // Never any plaintext or anonymous key frame on the wire; Discover went to the beacon.
    assert.ok(!seen.includes('PILT'), 'no PILT sent')
    assert.ok(!seen.includes('PILK'), 'no PILK sent')
    assert.ok(seen.includes('beacon:1'), 'Discover sent')
    assert.ok(seen.includes('beacon:3'), 'PunchRequest sent')
    const s = a.tunnel.stats()
    assert.equal(s.drops['internal-error'], 0)
    assert.equal(s.drops['auth-failed'], 0)
  } finally {
    await w.close()
  }
})

test('queue is bounded: 64 per peer, oldest dropped', async () => {
  const w = await World.create({ beacon: false })
  try {
    const a = w.node(1, '10.0.0.1')
    // Node 2 is registered (a node the registry does not know gets no peer and no queue) but
    // not reachable yet: everything stays queued.
    const identity2 = Identity.generate()
    w.directory.setKey(2, identity2.publicKey).setEndpoint(2, null)
    for (let i = 0; i < 70; i++) a.tunnel.send(2, packet(1, 2, `p${i}`))
    assert.equal(a.tunnel.peer(2)!.queued, 64)
    assert.equal(a.tunnel.stats().drops['queue-overflow'], 6)
    // Now the peer appears: the 64 newest arrive.
    const b = w.node(2, '10.0.0.2', { identity: identity2 })
    b.tunnel.send(1, packet(2, 1, 'hello')) // b knows a's endpoint from the directory
    await waitFor(() => b.received.length === 64, '64 queued packets')
    assert.equal(payloads(b)[0], 'p6')
    assert.equal(payloads(b)[63], 'p69')
  } finally {
    await w.close()
  }
})

const kdfCases: Array<[KdfMode, KdfMode, string]> = [
  ['auto', 'auto', 'hkdf'],
  ['hkdf', 'hkdf', 'hkdf'],
  ['legacy', 'legacy', 'legacy'],
  ['auto', 'legacy', 'legacy'], // a Go snapshot peer: no capability byte, legacy only
  ['auto', 'hkdf', 'hkdf'],
  ['legacy', 'auto', 'legacy'],
  ['hkdf', 'auto', 'hkdf'],
]

for (const [ka, kb, expected] of kdfCases) {
  test(`KDF ${ka} <-> ${kb} settles on ${expected}`, async () => {
    const w = await World.create()
    try {
      const a = w.node(1, '10.0.0.1', { kdf: ka })
      const b = w.node(2, '10.0.0.2', { kdf: kb })
      await exchange(a, b, 'a->b')
      await exchange(b, a, 'b->a')
      await exchange(a, b, 'a->b again')
      assert.equal(a.tunnel.peer(2)!.kdf, expected)
      assert.equal(b.tunnel.peer(1)!.kdf, expected)
      assert.equal(a.tunnel.stats().drops['auth-failed'], 0)
      assert.equal(b.tunnel.stats().drops['auth-failed'], 0)
    } finally {
      await w.close()
    }
  })
}

test('auto learns the variant from a peer whose PILA has no capability byte but speaks HKDF', async () => {
  // A "newer Go" peer that speaks HKDF without advertising it: we start with legacy
  // (its frames fail on its side) and switch as soon as one of its frames opens with HKDF.
  const w = await World.create()
  try {
    const a = w.node(1, '10.0.0.1', { kdf: 'auto' })
    const b = w.node(2, '10.0.0.2', { kdf: 'hkdf' })
    // Strip b's capability byte on the wire.
    w.net.setFilter(() => true)
    const origSend = b.bind.send.bind(b.bind)
    b.bind.send = (parts, host, port) => {
      const d = Buffer.concat(Array.isArray(parts) ? (parts as Uint8Array[]) : [parts as Uint8Array])
      const isPila = d.length === 137 && d.toString('latin1', 0, 4) === 'PILA'
      origSend(isPila ? d.subarray(0, 136) : d, host, port)
    }
    await exchange(b, a, 'b speaks hkdf')
    assert.equal(a.tunnel.peer(2)!.kdf, 'hkdf')
    assert.equal(a.tunnel.peer(2)!.kdfConfirmed, true)
    await exchange(a, b, 'a answers with hkdf')
  } finally {
    await w.close()
  }
})

test('RTT: the key-exchange sample until real ones arrive, then an EWMA (gain 1/8); bad samples ignored', async () => {
  const w = await World.create({ beacon: false })
  try {
    const a = w.node(1, '10.0.0.1')
    const b = w.node(2, '10.0.0.2')
    await exchange(a, b, 'hi')
    const kx = a.tunnel.peer(2)!.rttMs
    assert.ok(kx !== undefined && kx >= 0, 'key-exchange RTT')
    a.tunnel.recordRtt(2, 10) // replaces the provisional key-exchange value
    assert.equal(a.tunnel.peer(2)!.rttMs, 10)
    a.tunnel.recordRtt(2, 18)
    assert.equal(a.tunnel.peer(2)!.rttMs, 11)
    for (const bad of [Number.NaN, -1, Number.POSITIVE_INFINITY, 1e9]) a.tunnel.recordRtt(2, bad)
    a.tunnel.recordRtt(99, 5) // unknown peer
    assert.equal(a.tunnel.peer(2)!.rttMs, 11)
    assert.equal(a.tunnel.peer(99), null)
  } finally {
    await w.close()
  }
})
