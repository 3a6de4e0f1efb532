// The key exchange (key-exchange.ts): PILAs checked against the registry, parked while its key
// is fetched; a peer's session derived from a new key; our key pair rotated.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Identity } from '../../src/crypto/index.js'
import { CryptoRandom } from '../../src/random.js'
import { nullLogger } from '../../src/logger.js'
import { PILA_SIZE } from '../../src/protocol/tunnel-frames.js'
import { KeyExchange } from '../../src/tunnel/key-exchange.js'
import { KdfChooser, type KdfMode } from '../../src/tunnel/kdf.js'
import { Peer } from '../../src/tunnel/peer.js'
import { newDropCounters } from '../../src/tunnel/stats.js'
import { DEFAULT_LIMITS, type TunnelLimits } from '../../src/tunnel/limits.js'
import { MemoryPeerDirectory } from '../../src/tunnel/testing/memory-directory.js'

const TIMING = { keyRefetchMs: 200, negativeKeyCacheMs: 100 }

interface Accepted {
  sender: number
  host: string
  port: number
  relayed: boolean
}

class Clock {
  t = 1_000
  now(): number {
    return this.t
  }
}

function node(nodeId: number, directory: MemoryPeerDirectory, clock: Clock, opts: { kdf?: KdfMode; identity?: Identity; register?: boolean; limits?: Partial<TunnelLimits> } = {}) {
  const identity = opts.identity ?? Identity.generate()
  if (opts.register !== false) directory.setKey(nodeId, identity.publicKey)
  const drops = newDropCounters()
  const accepted: Accepted[] = []
  const unknown: number[] = []
  const kx = new KeyExchange({
    nodeId,
    identity,
    kdf: new KdfChooser(opts.kdf ?? 'auto', nullLogger),
    random: new CryptoRandom(),
    directory,
    clock,
    logger: nullLogger,
    timing: TIMING,
    limits: { ...DEFAULT_LIMITS, ...opts.limits },
    drops,
    port: {
      acceptPila: (sender, _frame, host, port, relayed) => accepted.push({ sender, host, port, relayed }),
      keyUnknown: (id) => unknown.push(id),
    },
  })
  return { kx, drops, accepted, unknown, identity }
}

/** Lets the directory's promises settle. */
const settle = (): Promise<void> => new Promise((r) => setImmediate(r))

test('a PILA is parked while its sender key is fetched, then accepted; later ones are checked at once', async () => {
  const dir = new MemoryPeerDirectory()
  const clock = new Clock()
  const a = node(1, dir, clock)
  const b = node(2, dir, clock)
  b.kx.receivePila(a.kx.copyPila(), '10.0.0.1', 4000, false, 0)
  assert.equal(b.accepted.length, 0, 'not before the registry answered')
  assert.equal(dir.lookups, 1)
  await settle()
  assert.deepEqual(b.accepted, [{ sender: 1, host: '10.0.0.1', port: 4000, relayed: false }])
  b.kx.receivePila(a.kx.copyPila(), '10.0.0.254', 9001, true, 1)
  assert.deepEqual(b.accepted[1], { sender: 1, host: '10.0.0.254', port: 9001, relayed: true })
  assert.equal(dir.lookups, 1, 'the key stays cached')
})

test('refused PILAs are counted: too short, our own ID, another sender than the relay says, a bad signature', async () => {
  const dir = new MemoryPeerDirectory()
  const clock = new Clock()
  const a = node(1, dir, clock)
  const b = node(2, dir, clock)
  b.kx.receivePila(a.kx.copyPila().subarray(0, PILA_SIZE - 1), 'h', 1, false, 0)
  b.kx.receivePila(b.kx.copyPila(), 'h', 1, false, 0)
  b.kx.receivePila(a.kx.copyPila(), 'h', 1, true, 3)
  assert.deepEqual([b.drops.short, b.drops.self, b.drops['relay-sender-mismatch']], [1, 1, 1])
  b.kx.prefetchKey(1)
  await settle()
  const forged = a.kx.copyPila()
  forged[100]! ^= 0x01 // inside the signature
  b.kx.receivePila(forged, 'h', 1, false, 0)
  assert.equal(b.drops['pila-bad-signature'], 1)
  assert.equal(b.accepted.length, 0)
})

test('a sender the registry does not know: refused after the lookup, and asked again only after negativeKeyCacheMs', async () => {
  const dir = new MemoryPeerDirectory()
  const clock = new Clock()
  const c = node(3, dir, clock, { register: false })
  const b = node(2, dir, clock)
  b.kx.receivePila(c.kx.copyPila(), 'h', 1, false, 0)
  await settle()
  assert.equal(b.drops['pila-unknown-key'], 1)
  assert.equal(dir.lookups, 1)
  b.kx.receivePila(c.kx.copyPila(), 'h', 1, false, 0)
  assert.equal(b.drops['pila-unknown-key'], 2, 'remembered: refused at once')
  assert.equal(dir.lookups, 1)
  // Registered meanwhile: after the negative cache expires, the next PILA asks again and passes.
  dir.setKey(3, c.identity.publicKey)
  clock.t += TIMING.negativeKeyCacheMs
  b.kx.receivePila(c.kx.copyPila(), 'h', 1, false, 0)
  await settle()
  assert.equal(dir.lookups, 2)
  assert.deepEqual(b.accepted.map((x) => x.sender), [3])
})

test('a PILA signed with another Ed25519 key than the registered one: re-fetched at most once per keyRefetchMs, else refused', async () => {
  const dir = new MemoryPeerDirectory()
  const clock = new Clock()
  const a = node(1, dir, clock)
  const b = node(2, dir, clock)
  dir.setKey(1, Identity.generate().publicKey) // a takeover attempt, or a key rotated in the registry
  b.kx.receivePila(a.kx.copyPila(), 'h', 1, false, 0)
  await settle()
  assert.equal(b.drops['pila-key-mismatch'], 1, 'the fresh key does not match either')
  b.kx.receivePila(a.kx.copyPila(), 'h', 1, false, 0)
  assert.equal(b.drops['pila-key-mismatch'], 2)
  assert.equal(dir.lookups, 1, 'no second lookup within keyRefetchMs')
  dir.setKey(1, a.identity.publicKey) // the registry now has a's key
  clock.t += TIMING.keyRefetchMs
  b.kx.receivePila(a.kx.copyPila(), 'h', 1, false, 0)
  await settle()
  assert.equal(dir.lookups, 2)
  assert.deepEqual(b.accepted.map((x) => x.sender), [1])
})

test('a PILA parked before forget() or close() never comes back', async () => {
  const dir = new MemoryPeerDirectory()
  const clock = new Clock()
  const a = node(1, dir, clock)
  const b = node(2, dir, clock)
  b.kx.receivePila(a.kx.copyPila(), 'h', 1, false, 0)
  b.kx.forget(1)
  await settle()
  assert.equal(b.accepted.length, 0)
  b.kx.receivePila(a.kx.copyPila(), 'h', 1, false, 0)
  assert.equal(dir.lookups, 2, 'the cached key went with forget()')
  b.kx.close()
  await settle()
  assert.equal(b.accepted.length, 0)
})

test('adoptPeerKey: ciphers, a fresh sequence that starts above every retired counter, replay reset, KDF from the capability byte', () => {
  const dir = new MemoryPeerDirectory()
  const clock = new Clock()
  const a = node(1, dir, clock)
  const b = node(2, dir, clock)
  const peer = new Peer(1)
  const frame = a.kx.copyPila()
  assert.equal(b.kx.peerKeyChanged(peer, frame), true)
  peer.keySentMs = 5
  peer.gotPils = true
  assert.equal(b.kx.adoptPeerKey(peer, frame), true)
  assert.deepEqual(peer.peerX25519, a.kx.publicKey)
  assert.ok(peer.legacy !== null && peer.hkdf !== null)
  assert.deepEqual([peer.kdf, peer.kdfConfirmed, peer.peerAdvertisesHkdf], ['hkdf', false, true])
  assert.deepEqual([peer.keySentMs, peer.gotPils], [0, false], 'the peer has no session with us yet: it needs our key')
  assert.equal(b.kx.peerKeyChanged(peer, frame), false)
  const nonce = new Uint8Array(12)
  for (let i = 0; i < 5; i++) peer.sendSeq!.next(nonce, 0)
  peer.replay.commit(0x1234, 9)
  assert.equal(peer.replay.check(0x1234, 9), false)
  // The peer restarted: a new X25519 key, and no capability byte this time (legacy only).
  const legacyA = node(1, dir, clock, { kdf: 'legacy', identity: a.identity })
  const frame2 = legacyA.kx.copyPila()
  assert.equal(frame2.length, PILA_SIZE)
  assert.equal(b.kx.peerKeyChanged(peer, frame2), true)
  assert.equal(b.kx.adoptPeerKey(peer, frame2), true)
  assert.equal(peer.sendSeq!.lastCounter, 5, 'the new sequence continues above the retired one')
  assert.equal(peer.replay.check(0x1234, 9), true, 'new key material: fresh replay state')
  assert.deepEqual([peer.kdf, peer.peerAdvertisesHkdf], ['legacy', false])
})

test('a PILA carrying a low-order X25519 key is refused (pila-bad-key) and leaves the peer without keys', () => {
  const dir = new MemoryPeerDirectory()
  const clock = new Clock()
  const a = node(1, dir, clock)
  const b = node(2, dir, clock)
  const frame = a.kx.copyPila()
  frame.fill(0, 8, 40)
  const peer = new Peer(1)
  assert.equal(b.kx.adoptPeerKey(peer, frame), false)
  assert.equal(b.drops['pila-bad-key'], 1)
  assert.deepEqual([peer.peerX25519, peer.sendSeq], [null, null])
})

test('our PILA: our X25519 key, the capability byte unless legacy; rotate() replaces both key and frame', () => {
  const dir = new MemoryPeerDirectory()
  const clock = new Clock()
  const auto = node(1, dir, clock)
  const legacy = node(2, dir, clock, { kdf: 'legacy' })
  const hkdf = node(3, dir, clock, { kdf: 'hkdf' })
  assert.equal(auto.kx.copyPila().length, PILA_SIZE + 1)
  assert.equal(auto.kx.copyPila()[PILA_SIZE], 0x01)
  assert.equal(hkdf.kx.copyPila().length, PILA_SIZE + 1)
  assert.equal(legacy.kx.copyPila().length, PILA_SIZE)
  const before = Buffer.from(auto.kx.publicKey)
  assert.deepEqual(auto.kx.copyPila().subarray(8, 40), before)
  const copy = auto.kx.copyPila()
  copy.fill(0)
  assert.deepEqual(auto.kx.copyPila().subarray(8, 40), before, 'copies do not alias our frame')
  auto.kx.rotate()
  assert.notDeepEqual(Buffer.from(auto.kx.publicKey), before)
  assert.deepEqual(auto.kx.copyPila().subarray(8, 40), Buffer.from(auto.kx.publicKey))
})

test('rekeyPeer after rotate(): old ciphers kept for frames in flight, a new sequence, the peer must answer our new key', () => {
  const dir = new MemoryPeerDirectory()
  const clock = new Clock()
  const a = node(1, dir, clock)
  const b = node(2, dir, clock)
  const peer = new Peer(1)
  b.kx.adoptPeerKey(peer, a.kx.copyPila())
  peer.peerKeyCurrent = true
  peer.keySentMs = 7
  const oldLegacy = peer.legacy
  const oldHkdf = peer.hkdf
  b.kx.rotate()
  assert.equal(b.kx.rekeyPeer(peer), true)
  assert.deepEqual([peer.prevLegacy, peer.prevHkdf], [oldLegacy, oldHkdf])
  assert.ok(peer.legacy !== oldLegacy && peer.hkdf !== oldHkdf)
  assert.deepEqual([peer.peerKeyCurrent, peer.keySentMs, peer.sendSeq!.lastCounter], [false, 0, 0])
  assert.equal(b.kx.rekeyPeer(new Peer(9)), false, 'a peer without a key has nothing to re-key')
})
