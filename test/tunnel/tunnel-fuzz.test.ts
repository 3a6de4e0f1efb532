// 100,000 random and mutated datagrams into a live tunnel: nothing throws, nothing
// is counted as an internal error, and the tunnel still delivers afterwards.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { SeededRandom } from '../../src/random.js'
import { X25519KeyPair } from '../../src/crypto/index.js'
import { encodeBeaconMessage } from '../../src/protocol/beacon-messages.js'
import { encodePilk, encodePilp, encodePilt } from '../../src/protocol/tunnel-frames.js'
import { mutate, randomBytes } from '../util/fuzz.js'
import { BEACON, World, exchange, firstWord, packet } from './helpers.js'

const ITERATIONS = 100_000

test(`fuzz: ${ITERATIONS} random/mutated datagrams into a live tunnel`, async () => {
  const w = await World.create()
  const recorded: Buffer[] = []
  w.net.setFilter((from, to, d) => {
    if (to.host === '10.0.0.2') recorded.push(Buffer.from(d))
    return true
  })
  try {
    const a = w.node(1, '10.0.0.1')
    const b = w.node(2, '10.0.0.2')
    await exchange(a, b, 'before')
    await exchange(b, a, 'before back')
    await exchange(a, b, 'with payload '.repeat(20))
    w.net.setFilter(null)

    const pils = recorded.filter((d) => firstWord(d) === 'PILS')
    const pila = recorded.filter((d) => firstWord(d) === 'PILA')
    assert.ok(pils.length > 0 && pila.length > 0)
    const relayDeliver = (sender: number, frame: Uint8Array) => encodeBeaconMessage({ type: 6, senderId: sender, frame })
    const corpus: Uint8Array[] = [
      ...pils,
      ...pila,
      relayDeliver(1, pils[0]!),
      relayDeliver(1, pila[0]!),
      relayDeliver(3, pils[0]!),
      encodeBeaconMessage({ type: 4, endpoint: { host: '10.0.0.77', port: 4000 } }),
      encodeBeaconMessage({ type: 2, endpoint: { host: '198.51.100.7', port: 4000 } }),
      encodeBeaconMessage({ type: 4, endpoint: { host: '2001:db8::1', port: 4000 } }),
      encodePilt(packet(1, 2, 'plain')),
      encodePilk({ senderId: 1, x25519Public: X25519KeyPair.generate().publicKey }),
      encodePilp(),
      encodePilp(1),
    ]
    const rng = new SeededRandom(0x7e57)
    const start = performance.now()
    for (let i = 0; i < ITERATIONS; i++) {
      const input = i % 4 === 0 ? randomBytes(rng, rng.int(200)) : mutate(rng, corpus[rng.int(corpus.length)]!)
      // Beacon-typed input from the beacon's endpoint (so it is parsed), the rest from the
      // real peer's endpoint or from a stranger.
      let host = '10.0.0.1'
      let port = 4000
      if (input.length > 0 && input[0]! < 0x10 && rng.int(4) !== 0) {
        host = BEACON.host
        port = BEACON.port
      } else if (rng.int(2) === 0) {
        host = `10.9.${rng.int(256)}.${rng.int(256)}`
        port = 1 + rng.int(65535)
      }
      b.tunnel.receive(Buffer.from(input), host, port)
      if (i % 2000 === 0) await new Promise((r) => setImmediate(r)) // let lookups and sends settle
    }
    const elapsed = performance.now() - start
    const s = b.tunnel.stats()
    assert.equal(s.drops['internal-error'], 0)
    const total = Object.values(s.drops).reduce((x, y) => x + y, 0)
    assert.ok(total > ITERATIONS / 2, `most inputs dropped and counted (${total})`)
    // Still alive both ways.
    await exchange(a, b, 'after the storm', 5_000)
    await exchange(b, a, 'after the storm, back', 5_000)
    assert.equal(b.tunnel.stats().drops['internal-error'], 0)
    console.log(`# fuzz: ${ITERATIONS} datagrams in ${elapsed.toFixed(0)} ms; drops ${JSON.stringify(Object.fromEntries(Object.entries(s.drops).filter(([, v]) => v > 0)))}`)
  } finally {
    await w.close()
  }
})
