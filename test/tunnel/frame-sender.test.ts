// Frames out (frame-sender.ts): PILS sealed for a ready peer, frames on the peer's path (relay,
// direct, plus a copy to a pending endpoint), our PILA by every route, counted.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Identity } from '../../src/crypto/index.js'
import { CryptoRandom } from '../../src/random.js'
import { nullLogger } from '../../src/logger.js'
import { FrameSender } from '../../src/tunnel/frame-sender.js'
import { KeyExchange } from '../../src/tunnel/key-exchange.js'
import { DATA_OFFSET, KdfChooser } from '../../src/tunnel/kdf.js'
import { DEFAULT_LIMITS } from '../../src/tunnel/limits.js'
import { Peer } from '../../src/tunnel/peer.js'
import { newDropCounters, newTunnelCounters } from '../../src/tunnel/stats.js'
import { MemoryPeerDirectory } from '../../src/tunnel/testing/memory-directory.js'
import { firstWord, packet } from './helpers.js'

function keyExchange(nodeId: number) {
  const drops = newDropCounters()
  return new KeyExchange({
    nodeId,
    identity: Identity.generate(),
    kdf: new KdfChooser('auto', nullLogger),
    random: new CryptoRandom(),
    directory: new MemoryPeerDirectory(),
    clock: { now: () => 0 },
    logger: nullLogger,
    timing: { keyRefetchMs: 1_000, negativeKeyCacheMs: 1_000 },
    limits: DEFAULT_LIMITS,
    drops,
    port: { acceptPila: () => {}, keyUnknown: () => {} },
  })
}

function setup() {
  const sent: string[] = []
  const frames: Buffer[] = []
  const counters = newTunnelCounters()
  const drops = newDropCounters()
  const ours = keyExchange(1)
  const clock = { t: 500, now(): number { return this.t } }
  const sender = new FrameSender({
    nodeId: 1,
    bind: {
      send: (parts, host, port) => {
        frames.push(Buffer.from(parts as Uint8Array))
        sent.push(`${firstWord(parts as Uint8Array)} to ${host}:${port}`)
      },
    },
    beacon: { sendRelayed: (frame, to) => sent.push(`${firstWord(frame)} relayed to ${to}`) },
    keys: ours,
    clock,
    counters,
    drops,
  })
  return { sender, sent, frames, counters, drops, ours, clock }
}

test('frames go by relay, to the direct endpoint, and also to a pending endpoint; no path is a drop', () => {
  const { sender, sent, drops, counters } = setup()
  const p = new Peer(2)
  assert.equal(sender.keyFrame(p), false)
  assert.equal(drops['no-path'], 1)
  p.endpoint = { host: '10.0.0.2', port: 4000 }
  assert.equal(sender.keyFrame(p), true)
  p.pendingEndpoint = { host: '10.0.0.2', port: 4001, fromPunch: false, fromResolve: false }
  sender.keyFrame(p)
  p.path = 'relay'
  sender.keyFrame(p)
  sender.keyFrameTo('192.0.2.1', 7)
  sender.keyFrameRelayed(9)
  assert.deepEqual(sent, [
    'PILA to 10.0.0.2:4000',
    'PILA to 10.0.0.2:4000',
    'PILA to 10.0.0.2:4001',
    'PILA relayed to 2',
    'PILA to 192.0.2.1:7',
    'PILA relayed to 9',
  ])
  assert.equal(counters.keyFramesSent, 5, 'the frame that found no path is not counted')
})

test('seal: a PILS the peer opens, counted; the first one marks the silence and, on a direct path, the unanswered time', () => {
  const { sender, frames, counters, ours, clock } = setup()
  const theirs = keyExchange(2)
  const p = new Peer(2) // our view of node 2
  assert.equal(ours.adoptPeerKey(p, theirs.copyPila()), true)
  p.endpoint = { host: '10.0.0.2', port: 4000 }
  p.path = 'direct'
  const q = new Peer(1) // node 2's view of us, to open what we seal
  theirs.adoptPeerKey(q, ours.copyPila())
  q.kdf = p.kdf
  const pkt = packet(1, 2, 'sealed')
  assert.equal(sender.seal(p, pkt), false, 'no rotation needed')
  clock.t = 900
  sender.seal(p, pkt)
  assert.deepEqual([p.packetsOut, p.bytesOut, counters.packetsOut], [2, 2 * pkt.length, 2])
  assert.deepEqual([p.silentSinceMs, p.unansweredSinceMs], [500, 500], 'set by the first, kept by the second')
  const frame = frames[0]!
  assert.equal(firstWord(frame), 'PILS')
  assert.equal(frame.readUInt32BE(4), 1)
  const n = new KdfChooser('auto', nullLogger).open(q, 1, frame)
  assert.equal(n, pkt.length)
  assert.deepEqual(frame.subarray(DATA_OFFSET, DATA_OFFSET + n), pkt)
})

test('seal into the bind batch: a direct peer without a pending endpoint gets its frame built in the reserved room', () => {
  const { sender, frames, ours } = setup()
  const rooms: { bytes: Uint8Array; to: string }[] = []
  // The same sender with a bind that offers room, as the UDP bind's batch does.
  const batching = new FrameSender({
    nodeId: 1,
    bind: {
      send: () => assert.fail('the direct frame must go into the reserved room'),
      reserve: (length, host, port) => {
        const bytes = new Uint8Array(length)
        rooms.push({ bytes, to: `${host}:${port}` })
        return bytes
      },
    },
    beacon: { sendRelayed: () => {} },
    keys: ours,
    clock: { now: () => 0 },
    counters: newTunnelCounters(),
    drops: newDropCounters(),
  })
  const theirs = keyExchange(2)
  const p = new Peer(2)
  ours.adoptPeerKey(p, theirs.copyPila())
  p.endpoint = { host: '10.0.0.2', port: 4000 }
  p.path = 'direct'
  const q = new Peer(1)
  theirs.adoptPeerKey(q, ours.copyPila())
  q.kdf = p.kdf
  const pkt = packet(1, 2, 'in place')
  batching.seal(p, pkt)
  assert.equal(rooms.length, 1)
  assert.equal(rooms[0]!.to, '10.0.0.2:4000')
  const frame = Buffer.from(rooms[0]!.bytes)
  assert.equal(firstWord(frame), 'PILS')
  const n = new KdfChooser('auto', nullLogger).open(q, 1, frame)
  assert.deepEqual(frame.subarray(DATA_OFFSET, DATA_OFFSET + n), pkt)
  // With a pending endpoint the frame must reach both: the old path, not the room.
  p.pendingEndpoint = { host: '10.0.0.2', port: 4001, fromPunch: false, fromResolve: false }
  sender.seal(p, pkt)
  assert.equal(frames.length, 2, 'sent to the endpoint and to the pending one')
  assert.equal(rooms.length, 1)
})
