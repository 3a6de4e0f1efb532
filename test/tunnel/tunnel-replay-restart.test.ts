// A peer restarts with a new X25519 key; an attacker who captured its old PILA and old PILS
// replays them from elsewhere (docs/wire.md §17). The old key must stay retired: no replay
// window reset, nothing delivered twice, and the peer's endpoint never moves on a PILA.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { World, exchange, firstWord, packet, payloads, sleep, waitFor } from './helpers.js'

const B = { host: '10.0.0.2', port: 4000 }

test('replayed PILA of a restarted peer (its previous key) and its old PILS from another address: nothing again, no move', async () => {
  const w = await World.create()
  const fromA: Buffer[] = []
  w.net.setFilter((from, to, d) => {
    if (from.host === '10.0.0.1' && to.host === '10.0.0.2' && to.port === 4000) fromA.push(Buffer.from(d))
    return true
  })
  try {
    const a = w.node(1, '10.0.0.1')
    const b = w.node(2, '10.0.0.2')
    await exchange(a, b, 'setup')
    await exchange(b, a, 'setup back')
    await exchange(a, b, 'secret-1')
    await exchange(a, b, 'secret-2')
    // The attacker's capture: a's first PILA (key #1) and the PILS sealed under it.
    const pila1 = fromA.find((d) => firstWord(d) === 'PILA')!
    const oldPils = fromA.filter((d) => firstWord(d) === 'PILS')
    assert.ok(oldPils.length >= 3)

    // a restarts: same identity and endpoint, a new X25519 key (PILA #2).
    await a.tunnel.close()
    const a2 = w.node(1, '10.0.0.1', { identity: a.identity })
    await exchange(a2, b, 'after restart')
    await exchange(b, a2, 'after restart back')
    const delivered = payloads(b, 1).length

    const evil = w.net.bind('10.6.6.6', 5000)
    evil.send(Buffer.from(pila1), B.host, B.port)
    await sleep(30)
    for (const f of oldPils) evil.send(Buffer.from(f), B.host, B.port)
    await sleep(50)

    assert.equal(payloads(b, 1).length, delivered, `replayed old PILS delivered again: ${payloads(b, 1).slice(delivered).join(', ')}`)
    assert.deepEqual(b.tunnel.peer(1)!.endpoint, { host: '10.0.0.1', port: 4000 }, 'the endpoint did not move to the attacker')
    assert.ok(b.tunnel.stats().drops['pila-retired-key'] >= 1, 'the old key is refused and counted')
    assert.ok(b.paths.every((e) => e.endpoint?.host !== '10.6.6.6'), 'no path event towards the attacker')
    // The real session keeps working both ways.
    await exchange(a2, b, 'still works')
    await exchange(b, a2, 'still works back')
    await evil.close()
  } finally {
    await w.close()
  }
})

test('a fresh-key PILA from a new address moves nothing until an authenticated PILS arrives from there', async () => {
  const w = await World.create({ beacon: false })
  let blockPils = false
  w.net.setFilter((from, _to, d) => !(blockPils && from.port === 4001 && firstWord(d) === 'PILS'))
  try {
    const a = w.node(1, '10.0.0.1')
    const b = w.node(2, '10.0.0.2')
    await exchange(a, b, 'setup')
    await exchange(b, a, 'setup back')
    // a restarts on a new port; its PILA reaches b from 10.0.0.1:4001, its PILS do not (yet).
    await a.tunnel.close()
    blockPils = true
    const a2 = w.node(1, '10.0.0.1', { identity: a.identity, bind: w.net.bind('10.0.0.1', 4001) })
    const accepted = b.tunnel.stats().keyFramesAccepted
    a2.tunnel.send(2, packet(1, 2, 'queued at a2'))
    await waitFor(() => b.tunnel.stats().keyFramesAccepted > accepted, 'b took the PILA of a2')
    await sleep(30)
    assert.deepEqual(b.tunnel.peer(1)!.endpoint, { host: '10.0.0.1', port: 4000 }, 'a PILA alone does not move the endpoint')
    // b's traffic reaches a2 meanwhile (copies to the endpoint the new key came from) ...
    await exchange(b, a2, 'to the new port')
    assert.deepEqual(b.tunnel.peer(1)!.endpoint, { host: '10.0.0.1', port: 4000 })
    // ... and the first authenticated PILS from there moves it.
    blockPils = false
    await exchange(a2, b, 'from the new port')
    await waitFor(() => b.tunnel.peer(1)!.endpoint?.port === 4001, 'endpoint moved after a PILS')
    assert.ok(b.paths.some((e) => e.reason === 'key-change' && e.endpoint?.port === 4001))
  } finally {
    await w.close()
  }
})
