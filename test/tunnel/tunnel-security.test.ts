// Hostile and Go-shaped input: replays, unregistered or wrong keys, bad signatures,
// PILT/PILK, inner-source spoofing, replay-window poisoning, and a Go-like peer.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Identity, X25519KeyPair, signPila } from '../../src/crypto/index.js'
import { encodePila, encodePilk, encodePilt } from '../../src/protocol/tunnel-frames.js'
import { BeaconType, encodeBeaconMessage } from '../../src/protocol/beacon-messages.js'
import { Tunnel } from '../../src/tunnel/tunnel.js'
import { PUNCH_COPIES } from '../../src/tunnel/beacon-client.js'
import { DEFAULT_LIMITS } from '../../src/tunnel/limits.js'
import { BEACON, FAST, ManualScheduler, World, exchange, firstWord, packet, payloads, sleep, waitFor } from './helpers.js'
import { GoLikePeer } from './go-peer.js'

const B = { host: '10.0.0.2', port: 4000 }

/** a and b with a session; every datagram from a to b is recorded. */
async function pair() {
  const w = await World.create()
  const fromA: Buffer[] = []
  w.net.setFilter((from, to, d) => {
    if (from.host === '10.0.0.1' && to.host === '10.0.0.2') fromA.push(Buffer.from(d))
    return true
  })
  const a = w.node(1, '10.0.0.1')
  const b = w.node(2, '10.0.0.2')
  await exchange(a, b, 'setup')
  await exchange(b, a, 'setup back')
  return { w, a, b, fromA }
}

test('a replayed PILS is dropped and counted; so is one replayed after a repeated PILA (§17 item 4)', async () => {
  const { w, a, b, fromA } = await pair()
  try {
    await exchange(a, b, 'once')
    const pils = fromA.filter((d) => firstWord(d) === 'PILS').at(-1)!
    const pilaFrame = fromA.find((d) => firstWord(d) === 'PILA')!
    a.bind.send(Buffer.from(pils), B.host, B.port)
    await sleep(20)
    assert.equal(payloads(b, 1).filter((p) => p === 'once').length, 1)
    assert.equal(b.tunnel.stats().drops.replay, 1)
    // Go would reset its replay window on a replayed key frame; we must not.
    a.bind.send(Buffer.from(pilaFrame), B.host, B.port)
    await sleep(20)
    a.bind.send(Buffer.from(pils), B.host, B.port)
    await sleep(20)
    assert.equal(payloads(b, 1).filter((p) => p === 'once').length, 1)
    assert.equal(b.tunnel.stats().drops.replay, 2)
    await exchange(a, b, 'still works')
  } finally {
    await w.close()
  }
})

test('PILA from a node whose key the registry does not know → refused, no session', async () => {
  const w = await World.create()
  try {
    const b = w.node(2, '10.0.0.2')
    const c = w.node(3, '10.0.0.3', { register: false })
    c.tunnel.send(2, packet(3, 2, 'let me in'))
    await waitFor(() => b.tunnel.stats().drops['pila-unknown-key'] >= 1, 'refusal')
    await sleep(50)
    assert.equal(b.tunnel.peer(3), null)
    assert.equal(b.received.length, 0)
    // (c may hold b's PILA — b sends it towards c on the beacon's PunchCommand — but b has no session for c.)
    c.tunnel.send(2, packet(3, 2, 'again'))
    await sleep(50)
    assert.equal(b.received.length, 0)
    assert.ok(b.tunnel.stats().drops['no-session'] + b.tunnel.stats().drops['pila-unknown-key'] >= 1)
  } finally {
    await w.close()
  }
})

test('PILA with a key other than the registered one → re-fetched once, then refused (§17 item 16)', async () => {
  const w = await World.create()
  try {
    const b = w.node(2, '10.0.0.2')
    // Node 3 is registered with one key but signs with another (a takeover attempt).
    const c = w.node(3, '10.0.0.3', { register: false })
    w.directory.setKey(3, Identity.generate().publicKey)
    const lookupsBefore = w.directory.lookups
    c.tunnel.send(2, packet(3, 2, 'takeover'))
    await waitFor(() => b.tunnel.stats().drops['pila-key-mismatch'] >= 1, 'mismatch refusal')
    await sleep(150) // several key retries from c, within the refetch interval
    const lookups = w.directory.lookups - lookupsBefore
    assert.ok(lookups <= 3, `registry lookups bounded, got ${lookups}`)
    assert.equal(b.tunnel.peer(3), null)
    assert.equal(b.received.length, 0)
  } finally {
    await w.close()
  }
})

test('a peer restarted with a new registered key (rotate_key) is accepted after one re-fetch', async () => {
  const { w, a, b } = await pair()
  try {
    await a.tunnel.close()
    await sleep(FAST.keyRefetchMs! + 20)
    const lookups = w.directory.lookups
    const a2 = w.node(1, '10.0.0.1') // new Identity; the directory now returns its key
    await exchange(a2, b, 'after restart')
    assert.ok(w.directory.lookups > lookups, 'b re-fetched the registry key')
    assert.equal(b.tunnel.stats().drops['pila-key-mismatch'], 0)
    await exchange(b, a2, 'and back')
  } finally {
    await w.close()
  }
})

test('PILA whose signature does not verify → refused', async () => {
  const w = await World.create()
  try {
    const b = w.node(2, '10.0.0.2')
    const evil = w.net.bind('10.0.0.3', 4000)
    const id3 = Identity.generate()
    w.directory.setKey(3, id3.publicKey)
    const x = X25519KeyPair.generate()
    const sig = Buffer.from(signPila(id3, 3, x.publicKey))
    sig[10]! ^= 1
    evil.send(encodePila({ senderId: 3, x25519Public: x.publicKey, ed25519Public: id3.publicKey, signature: sig }), B.host, B.port)
    // Signed over "auth:" (the Go comment's wrong prefix) is refused too.
    const wrong = Buffer.from(id3.sign(Buffer.concat([Buffer.from('auth:'), Buffer.from([0, 0, 0, 3]), x.publicKey])))
    evil.send(encodePila({ senderId: 3, x25519Public: x.publicKey, ed25519Public: id3.publicKey, signature: wrong }), B.host, B.port)
    await waitFor(() => b.tunnel.stats().drops['pila-bad-signature'] === 2, 'two refusals')
    assert.equal(b.tunnel.peer(3), null)
    await evil.close()
  } finally {
    await w.close()
  }
})

test('PILT is refused and not delivered, even from a peer with a session', async () => {
  const { w, a, b } = await pair()
  try {
    const before = b.received.length
    a.bind.send(encodePilt(packet(1, 2, 'plaintext!')), B.host, B.port)
    const evil = w.net.bind('10.0.0.3', 4000)
    evil.send(encodePilt(packet(3, 2, 'plaintext from a stranger')), B.host, B.port)
    await waitFor(() => b.tunnel.stats().drops['plaintext-refused'] === 2, 'two PILT refused')
    assert.equal(b.received.length, before)
    await evil.close()
  } finally {
    await w.close()
  }
})

test('PILK is refused; a known peer gets our PILA back (like Go), a stranger gets nothing', async () => {
  const { w, a, b } = await pair()
  try {
    await sleep(FAST.keyRetryMs! + 30) // our answers are rate-limited per peer
    const sentBefore = b.tunnel.stats().keyFramesSent
    a.bind.send(encodePilk({ senderId: 1, x25519Public: X25519KeyPair.generate().publicKey }), B.host, B.port)
    await waitFor(() => b.tunnel.stats().drops['pilk-refused'] === 1, 'PILK refused')
    const evil = w.net.bind('10.0.0.3', 4000)
    evil.send(encodePilk({ senderId: 3, x25519Public: X25519KeyPair.generate().publicKey }), B.host, B.port)
    await waitFor(() => b.tunnel.stats().drops['pilk-refused'] === 2, 'second PILK refused')
    await sleep(20)
    assert.equal(b.tunnel.stats().keyFramesSent - sentBefore, 1)
    assert.equal(b.tunnel.peer(3), null)
    await exchange(a, b, 'session unaffected')
    await evil.close()
  } finally {
    await w.close()
  }
})

test('PILS whose inner source differs from the sender ID → dropped (§17 item 2)', async () => {
  const { w, a, b } = await pair()
  try {
    a.tunnel.send(2, packet(7, 2, 'i am node 7'))
    await waitFor(() => b.tunnel.stats().drops['source-mismatch'] === 1, 'source mismatch')
    assert.ok(!payloads(b).includes('i am node 7'))
    assert.equal(b.tunnel.peer(1)!.dropped.sourceMismatch, 1)
  } finally {
    await w.close()
  }
})

test('a forged PILS with a huge counter does not block the real peer (§17 item 3)', async () => {
  const { w, a, b, fromA } = await pair()
  try {
    const real = fromA.filter((d) => firstWord(d) === 'PILS').at(-1)!
    const forged = Buffer.from(real)
    forged.writeUInt32BE(0x00100000, 12) // counter ≈ 2^52, same prefix
    forged[forged.length - 1]! ^= 0xff
    const evil = w.net.bind('10.0.0.3', 4000)
    evil.send(forged, B.host, B.port)
    await waitFor(() => b.tunnel.stats().drops['auth-failed'] === 1, 'forgery rejected')
    await exchange(a, b, 'after the forgery')
    await exchange(a, b, 'and another')
    await evil.close()
  } finally {
    await w.close()
  }
})

test('forget(): the session and endpoint are gone; the peer\'s frames find no session', async () => {
  const { w, a, b } = await pair()
  try {
    b.tunnel.forget(1)
    assert.equal(b.tunnel.peer(1), null)
    const before = b.received.length
    // a still has its session and sends PILS: b drops them (until a new key exchange).
    a.tunnel.send(2, packet(1, 2, 'after forget'))
    await waitFor(() => b.tunnel.stats().drops['no-session'] >= 1, 'no-session')
    assert.equal(b.received.length, before)
    // b wants to talk again: its PILA (a's view: unchanged key) is still answered, and both recover.
    await exchange(b, a, 'hello again')
    await exchange(a, b, 'welcome back')
  } finally {
    await w.close()
  }
})

test('key rotation: a new X25519 key is announced and traffic continues both ways', async () => {
  const { w, a, b } = await pair()
  try {
    const oldKey = Buffer.from(a.tunnel.x25519PublicKey)
    a.tunnel.rotateKeys()
    assert.ok(!oldKey.equals(Buffer.from(a.tunnel.x25519PublicKey)))
    await exchange(a, b, 'after rotation')
    await exchange(b, a, 'back after rotation')
    assert.equal(a.tunnel.stats().keyRotations, 1)
  } finally {
    await w.close()
  }
})

test('Go-shaped peer: answers PILA with a 136-byte PILA, re-derives on every PILA, sends legacy PILS', async () => {
  const w = await World.create()
  try {
    const registry = new Map<number, Uint8Array>()
    const goBind = w.net.bind('10.0.0.5', 4000)
    const go = new GoLikePeer(5, goBind, registry)
    w.directory.setKey(5, go.identity.publicKey).setEndpoint(5, goBind.local)
    const a = w.node(1, '10.0.0.1') // auto
    registry.set(1, a.identity.publicKey)

    // We dial the Go peer.
    a.tunnel.send(5, packet(1, 5, 'hello go'))
    await waitFor(() => go.received.includes('hello go'), 'Go peer decrypts our legacy PILS')
    assert.equal(a.tunnel.peer(5)!.kdf, 'legacy')
    // Go re-derived once more when our answering PILA arrived (new prefix, counter 1) — still fine.
    go.send({ host: '10.0.0.1', port: 4000 }, packet(5, 1, 'hello ts'))
    await waitFor(() => payloads(a, 5).includes('hello ts'), 'we decrypt Go legacy PILS')
    assert.equal(a.tunnel.peer(5)!.kdfConfirmed, true)
    for (let i = 0; i < 3; i++) go.send({ host: '10.0.0.1', port: 4000 }, packet(5, 1, `go-${i}`))
    for (let i = 0; i < 3; i++) a.tunnel.send(5, packet(1, 5, `ts-${i}`))
    await waitFor(() => payloads(a, 5).includes('go-2') && go.received.includes('ts-2'), 'both directions')
    assert.equal(go.decryptFailures, 0)
    assert.equal(a.tunnel.stats().drops['auth-failed'], 0)
    assert.ok(go.pilasSent <= 2, `Go sent ${go.pilasSent} PILA`)
  } finally {
    await w.close()
  }
})

test('Go-shaped peer dials us first: PILA per queued packet, we answer once and it flushes', async () => {
  const w = await World.create()
  try {
    const registry = new Map<number, Uint8Array>()
    const goBind = w.net.bind('10.0.0.5', 4000)
    const go = new GoLikePeer(5, goBind, registry)
    w.directory.setKey(5, go.identity.publicKey)
    const a = w.node(1, '10.0.0.1')
    registry.set(1, a.identity.publicKey)
    for (let i = 0; i < 3; i++) go.send({ host: '10.0.0.1', port: 4000 }, packet(5, 1, `q${i}`))
    await waitFor(() => payloads(a, 5).length === 3, 'three flushed packets')
    assert.deepEqual(payloads(a, 5), ['q0', 'q1', 'q2'])
    a.tunnel.send(5, packet(1, 5, 'reply'))
    await waitFor(() => go.received.includes('reply'), 'reply reaches Go')
    assert.equal(a.tunnel.peer(5)!.path, 'direct')
  } finally {
    await w.close()
  }
})

test('construction rejects a bad node ID; close() is idempotent and stops the tick', async () => {
  const w = await World.create({ beacon: false })
  const bind = w.net.bind('10.0.0.1', 4000)
  assert.throws(() => new Tunnel({ bind, identity: Identity.generate(), nodeId: 0, directory: w.directory, beacon: null }), /node ID/)
  const t = new Tunnel({ bind, identity: Identity.generate(), nodeId: 9, directory: w.directory, beacon: null, timing: FAST })
  t.start()
  await t.close()
  await t.close()
  t.send(2, packet(9, 2, 'x')) // no throw after close
  t.receive(Buffer.from('PILS'), '1.2.3.4', 1)
})

test('10,000 PunchCommands (from the beacon address, for random targets) make at most the punch bound of PILP and PILA', async () => {
  const w = await World.create({ beacon: false }) // nothing answers on the beacon address but our spoofer
  try {
    const spoofedBeacon = w.net.bind(BEACON.host, BEACON.port)
    const evilBeacon = new Tunnel({
      bind: w.net.bind('10.0.0.2', 4000),
      identity: Identity.generate(),
      nodeId: 2,
      directory: w.directory,
      beacon: BEACON,
      timing: FAST,
      scheduler: new ManualScheduler(), // frozen: the budget does not refill during the flood
    })
    const sentBefore = w.net.delivered + w.net.dropped
    for (let i = 0; i < 10_000; i++) {
      const cmd = encodeBeaconMessage({ type: BeaconType.PUNCH_COMMAND, endpoint: { host: `198.51.${(i >> 8) & 255}.${i & 255}`, port: 7_000 } })
      evilBeacon.receive(cmd, BEACON.host, BEACON.port)
    }
    const punchDatagrams = w.net.delivered + w.net.dropped - sentBefore
    assert.equal(punchDatagrams, DEFAULT_LIMITS.punchBurst * (PUNCH_COPIES + 1), `datagrams sent: ${punchDatagrams}`)
    assert.equal(evilBeacon.stats().drops['punch-limited'], 10_000 - DEFAULT_LIMITS.punchBurst)
    await evilBeacon.close()
    await spoofedBeacon.close()
  } finally {
    await w.close()
  }
})
