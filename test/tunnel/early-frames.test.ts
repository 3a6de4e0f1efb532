// The first PILS of a new session can overtake our check of its sender's PILA: the sender has
// our key (from a key frame we sent first) and seals at once, while we still wait for the
// registry to vouch for its Ed25519 key. Those PILS are held and opened when the PILA is
// accepted — no retransmit timeout (a Pilot SYN's is 1 s) and no clock movement needed.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Identity } from '../../src/crypto/index.js'
import { Tunnel } from '../../src/tunnel/tunnel.js'
import { MemoryNetwork } from '../../src/tunnel/testing/memory-bind.js'
import { MemoryPeerDirectory } from '../../src/tunnel/testing/memory-directory.js'
import { EarlyFrames, MAX_EARLY_BYTES, MAX_EARLY_FRAMES } from '../../src/tunnel/early-frames.js'
import { FAST, HeldDirectory, ManualScheduler, packet, settle } from './helpers.js'

/**
 * a (node 1) and b (node 2) on one memory network, clocks that never move (no tick, no retry
 * timer fires). b's registry lookups are held until the test releases them.
 */
function pair() {
  const net = new MemoryNetwork()
  const ida = Identity.generate()
  const idb = Identity.generate()
  const bindA = net.bind('10.0.0.1', 4000)
  const bindB = net.bind('10.0.0.2', 4000)
  const dirA = new MemoryPeerDirectory().setKey(2, idb.publicKey).setEndpoint(2, bindB.local)
  const dirB = new HeldDirectory()
  dirB.memory.setKey(1, ida.publicKey).setEndpoint(1, bindA.local)
  dirB.hold = true
  const clockA = new ManualScheduler()
  const clockB = new ManualScheduler()
  const a = new Tunnel({ bind: bindA, identity: ida, nodeId: 1, directory: dirA, beacon: null, timing: FAST, scheduler: clockA })
  const b = new Tunnel({ bind: bindB, identity: idb, nodeId: 2, directory: dirB, beacon: null, timing: FAST, scheduler: clockB })
  const atB: string[] = []
  b.onPacket((p) => atB.push(p.subarray(34).toString()))
  return { a, b, dirB, clockA, clockB, atB, net }
}

/** Lets the memory network and promise callbacks run `n` rounds. */
async function rounds(n: number): Promise<void> {
  for (let i = 0; i < n; i++) await settle()
}

test('PILS that arrive while their sender’s PILA waits for the registry are opened once it is accepted, without a retry', async () => {
  const { a, b, dirB, clockA, clockB, atB } = pair()
  try {
    const t0a = clockA.t
    const t0b = clockB.t
    // b sends first, so a gets b's PILA and b has a's PILA parked on the held lookup of a's key.
    b.send(1, packet(2, 1, 'from b'))
    a.send(2, packet(1, 2, 'syn'))
    a.send(2, packet(1, 2, 'data'))
    await rounds(20)
    assert.equal(a.peer(2)?.authenticated, true, 'a has b’s key and sent its own: it sealed its queue')
    assert.equal(a.peer(2)!.queued, 0)
    assert.ok(a.peer(2)!.packetsOut >= 2, 'a’s first PILS left')
    assert.deepEqual(atB, [], 'b cannot open them yet')
    assert.equal(b.stateSizes().earlyFrameNodes, 1, 'b holds them')
    assert.equal(b.stats().drops['no-session'], 0, 'nothing dropped')
    dirB.release()
    await rounds(5)
    assert.deepEqual(atB, ['syn', 'data'], 'opened in order once a’s PILA verified')
    assert.equal(b.stateSizes().earlyFrameNodes, 0)
    assert.equal(clockA.t, t0a, 'no virtual time passed at a')
    assert.equal(clockB.t, t0b, 'no virtual time passed at b: no tick, no key retry, no retransmit')
    assert.equal(b.stats().recoveryKeyFramesSent, 0, 'no recovery round trip')
  } finally {
    await a.close()
    await b.close()
  }
})

test('held PILS are dropped (no-session) when the sender’s key turns out unknown', async () => {
  const { a, b, dirB, atB } = pair()
  try {
    dirB.memory.setKey(1, null) // the registry has no key for a: its PILA never verifies
    b.send(1, packet(2, 1, 'from b'))
    a.send(2, packet(1, 2, 'syn'))
    await rounds(20)
    assert.equal(b.stateSizes().earlyFrameNodes, 1)
    dirB.release()
    await rounds(5)
    assert.deepEqual(atB, [])
    assert.equal(b.stateSizes().earlyFrameNodes, 0, 'nothing held any longer')
    assert.ok(b.stats().drops['no-session'] >= 1)
  } finally {
    await a.close()
    await b.close()
  }
})

test('PILS from a node without a parked PILA are not held (dropped and answered as before)', async () => {
  const { b } = pair()
  try {
    const frame = Buffer.alloc(200)
    frame.write('PILS', 0, 'latin1')
    frame.writeUInt32BE(7, 4)
    b.receive(frame, '10.0.0.7', 4000)
    assert.equal(b.stateSizes().earlyFrameNodes, 0)
    assert.equal(b.stats().drops['no-session'], 1)
  } finally {
    await b.close()
  }
})

test('EarlyFrames is bounded per node in frames and bytes, the oldest going first', () => {
  const e = new EarlyFrames()
  let dropped = 0
  for (let i = 0; i < MAX_EARLY_FRAMES + 4; i++) dropped += e.hold(9, Buffer.from([i]), 'h', 1, false)
  assert.equal(dropped, 4)
  const kept = e.take(9)
  assert.equal(kept.length, MAX_EARLY_FRAMES)
  assert.equal(kept[0]!.frame[0], 4, 'the oldest went')
  assert.equal(e.nodes, 0)
  const big = Buffer.alloc(MAX_EARLY_BYTES / 2)
  assert.equal(e.hold(9, big, 'h', 1, false), 0)
  assert.equal(e.hold(9, big, 'h', 1, false), 0)
  assert.equal(e.hold(9, Buffer.alloc(1), 'h', 1, false), 1, 'over the byte bound: the oldest goes')
  assert.equal(e.hold(9, Buffer.alloc(MAX_EARLY_BYTES + 1), 'h', 1, false), -1, 'one frame over the bound is not held')
  const src = Buffer.from([1, 2, 3])
  e.hold(10, src, 'h', 1, false)
  src[0] = 99
  assert.equal(e.take(10)[0]!.frame[0], 1, 'a copy: the bind may reuse its buffer')
})
