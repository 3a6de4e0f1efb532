// Restarts: a peer comes back with a new X25519 key (same node ID, same registered
// Ed25519 key) and traffic recovers without help from above; recovery key frames
// answer PILS we cannot open, rate-limited against strangers.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { RECOVERY_AUTH_FAILURES } from '../../src/tunnel/tunnel.js'
import { FAST, World, exchange, firstWord, packet, payloads, sleep, waitFor, type Node } from './helpers.js'

const RECOVER_MS = 2_000

/** Restarts `n` in place: same node ID, identity and endpoint; new tunnel, new X25519 key. */
async function restart(w: World, n: Node, host: string): Promise<Node> {
  await n.tunnel.close()
  const old = Buffer.from(n.tunnel.x25519PublicKey)
  const n2 = w.node(n.id, host, { identity: n.identity })
  assert.ok(!old.equals(Buffer.from(n2.tunnel.x25519PublicKey)), 'a new X25519 key')
  return n2
}

/** Sends a numbered packet every 20 ms from `from` to `to` until stopped. */
function pump(from: () => Node, to: number, tag: string): { stop(): void } {
  let i = 0
  const t = setInterval(() => from().tunnel.send(to, packet(from().id, to, `${tag}-${i++}`)), 20)
  return { stop: () => clearInterval(t) }
}

test('peer restart, traffic only towards it: its answer to our dead-key PILS re-keys us within 2 s', async () => {
  const w = await World.create()
  const pumps: { stop(): void }[] = []
  try {
    const a = w.node(1, '10.0.0.1')
    const b = w.node(2, '10.0.0.2')
    await exchange(a, b, 'before')
    await exchange(b, a, 'before back')
    pumps.push(pump(() => a, 2, 'ab'))
    await waitFor(() => payloads(b, 1).includes('ab-2'), 'traffic before the restart')
    const b2 = await restart(w, b, '10.0.0.2')
    const t0 = performance.now()
    // b2 sends nothing: only a's PILS, sealed with keys b2 no longer has, reach it.
    await waitFor(() => b2.received.length > 0, 'a packet at the restarted peer', RECOVER_MS)
    const took = performance.now() - t0
    assert.ok(b2.tunnel.stats().recoveryKeyFramesSent >= 1, 'b2 answered a no-session PILS with its PILA')
    assert.ok(a.paths.every((e) => e.reason !== 'direct-stale'), 'no detour through the relay')
    await exchange(b2, a, 'after restart')
    assert.equal(a.tunnel.peer(2)!.path, 'direct')
    console.log(`# recovered in ${took.toFixed(0)} ms`)
  } finally {
    for (const p of pumps) p.stop()
    await w.close()
  }
})

test('restart of either side with traffic flowing both ways recovers within 2 s', async () => {
  const w = await World.create()
  const pumps: { stop(): void }[] = []
  try {
    let a = w.node(1, '10.0.0.1')
    let b = w.node(2, '10.0.0.2')
    await exchange(a, b, 'setup')
    await exchange(b, a, 'setup back')
    pumps.push(pump(() => a, 2, 'ab'), pump(() => b, 1, 'ba'))
    for (const side of ['b', 'a'] as const) {
      if (side === 'b') b = await restart(w, b, '10.0.0.2')
      else a = await restart(w, a, '10.0.0.1')
      const t0 = performance.now()
      const aSeen = a.received.length
      const bSeen = b.received.length
      await waitFor(() => a.received.length > aSeen + 2 && b.received.length > bSeen + 2, `both directions after ${side} restarted`, RECOVER_MS)
      console.log(`# ${side} restarted: both directions flow again after ${(performance.now() - t0).toFixed(0)} ms`)
    }
    assert.equal(a.tunnel.stats().drops['internal-error'] + b.tunnel.stats().drops['internal-error'], 0)
  } finally {
    for (const p of pumps) p.stop()
    await w.close()
  }
})

test(`we restarted and took the peer's key from a replayed PILA: ${RECOVERY_AUTH_FAILURES} auth failures in a row → our PILA, recovered`, async () => {
  const w = await World.create()
  const fromB: Buffer[] = []
  let blockAtoB = false
  w.net.setFilter((from, to, d) => {
    if (from.host === '10.0.0.2' && to.host === '10.0.0.1') fromB.push(Buffer.from(d))
    return !(blockAtoB && from.host === '10.0.0.1' && to.host === '10.0.0.2')
  })
  try {
    const a = w.node(1, '10.0.0.1')
    const b = w.node(2, '10.0.0.2')
    await exchange(a, b, 'setup')
    await exchange(b, a, 'setup back')
    const bPila = fromB.find((d) => firstWord(d) === 'PILA')!
    // a restarts; b's (replayed) PILA reaches it, but a's answer is lost: a holds b's key, b still a's old one.
    blockAtoB = true
    const a2 = await restart(w, a, '10.0.0.1')
    b.bind.send(Buffer.from(bPila), '10.0.0.1', 4000)
    await waitFor(() => a2.tunnel.peer(2)?.authenticated === true, 'a2 has a session with b')
    blockAtoB = false
    const t0 = performance.now()
    const p = pump(() => b, 1, 'ba')
    try {
      await waitFor(() => a2.received.length > 0, 'b reaches the restarted a', RECOVER_MS)
    } finally {
      p.stop()
    }
    const took = performance.now() - t0
    assert.ok(a2.tunnel.peer(2)!.dropped.authFailed >= RECOVERY_AUTH_FAILURES)
    assert.ok(a2.tunnel.stats().recoveryKeyFramesSent >= 1)
    assert.ok(took < FAST.silenceRekeyMs!, `recovered by the failure rule (${took.toFixed(0)} ms), not by b's silence re-key`)
    await exchange(a2, b, 'and back')
  } finally {
    await w.close()
  }
})

test('a stranger spraying PILS gets at most the rate-limited number of PILA back, and no state', async () => {
  const w = await World.create()
  try {
    const cap = 5
    const b = w.node(2, '10.0.0.2', { maxRecoveryPerSecond: cap })
    const evil = Array.from({ length: 8 }, (_, i) => w.net.bind('10.6.6.6', 1000 + i))
    const answers: string[] = []
    for (const e of evil) e.onDatagram((d) => answers.push(firstWord(d)))
    const pils = (sender: number, size = 80): Buffer => {
      const f = Buffer.alloc(size)
      f.write('PILS', 0, 'latin1')
      f.writeUInt32BE(sender, 4)
      return f
    }
    const lookups = w.directory.lookups
    // One node ID, one source, 50 times: one answer.
    for (let i = 0; i < 50; i++) evil[0]!.send(pils(77), '10.0.0.2', 4000)
    await waitFor(() => b.tunnel.stats().drops['no-session'] === 50, '50 no-session drops')
    await sleep(10)
    assert.deepEqual(answers, ['PILA'])
    // Too small to hold a packet: never answered.
    for (let i = 0; i < 20; i++) evil[1]!.send(pils(500 + i, 36), '10.0.0.2', 4000)
    // 8 sources × 100 node IDs: the global cap.
    for (let i = 0; i < 800; i++) evil[i % 8]!.send(pils(1000 + i), '10.0.0.2', 4000)
    await waitFor(() => b.tunnel.stats().drops['no-session'] === 870, 'all sprayed PILS dropped')
    await sleep(20)
    assert.equal(answers.length, cap, `answers: ${answers.length}`)
    assert.ok(answers.every((x) => x === 'PILA'))
    assert.equal(b.tunnel.stats().recoveryKeyFramesSent, cap)
    assert.ok(b.tunnel.stats().recoveryRateLimited >= 800)
    assert.deepEqual(b.tunnel.peers(), [], 'no peer state for strangers')
    assert.ok(w.directory.lookups - lookups <= cap, 'registry lookups only for answered senders')
    for (const e of evil) await e.close()
  } finally {
    await w.close()
  }
})

test('peer restarted on a new port, no relay: our silence re-key resolves it again and follows it', async () => {
  const w = await World.create({ beacon: false })
  const pumps: { stop(): void }[] = []
  try {
    const a = w.node(1, '10.0.0.1')
    const b = w.node(2, '10.0.0.2')
    await exchange(a, b, 'before')
    await b.tunnel.close()
    const b2 = w.node(2, '10.0.0.2', { identity: b.identity, bind: w.net.bind('10.0.0.2', 4001) }) // the registry learns the new port
    const t0 = performance.now()
    pumps.push(pump(() => a, 2, 'ab'))
    await waitFor(() => b2.received.length > 0, 'a packet at the new port', RECOVER_MS)
    console.log(`# followed to the new port after ${(performance.now() - t0).toFixed(0)} ms`)
    // b2's new key came from the new port: our frames go there too, but the endpoint moves only
    // once a PILS from there authenticates (a PILA can be replayed from anywhere).
    await exchange(b2, a, 'from the new port')
    assert.deepEqual(a.tunnel.peer(2)!.endpoint, { host: '10.0.0.2', port: 4001 })
    assert.ok(a.paths.some((e) => e.reason === 'key-change' && e.endpoint?.port === 4001))
  } finally {
    for (const p of pumps) p.stop()
    await w.close()
  }
})
