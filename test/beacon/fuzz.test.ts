// 100k random and mutated datagrams straight into the handler: nothing throws,
// nothing counts as an internal error, and the beacon still answers afterwards.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { SeededRandom } from '../../src/random.js'
import { mutate, randomBytes } from '../util/fuzz.js'
import { hex, memoryRig, settle } from './helpers.js'

const CORPUS = [
  '01 00000001',
  '01 00000002 ffff',
  '01 00000000',
  '02 04 0a000001 0fa0',
  '02 10 20010db8000000000000000000000005 0fa0',
  '03 00000001 00000002',
  '03 00000002 00000001',
  '04 04 c6336407 0fa0',
  '05 00000001 00000002 50494c53 00000001 a1b2c3d4 0000000000000001 deadbeef',
  '05 00000002 00000001 50494c50',
  '06 00000001 50494c50',
  '07 00000009 0002 00000001 00000002',
  '50494c50',
  '50494c53 00000001 a1b2c3d4 0000000000000001 00112233445566778899aabbccddeeff',
].map((h) => Buffer.from(h.replace(/\s+/g, ''), 'hex'))

// A few sources so that Discovers and Relays meet; one IPv6 and one zone-scoped (unencodable) address.
const SOURCES: Array<[string, number]> = [
  ['10.0.0.1', 4000],
  ['10.0.0.2', 4000],
  ['10.0.0.3', 5000],
  ['2001:db8::7', 4000],
  ['fe80::1%eth0', 4000],
  ['::ffff:10.0.0.9', 4000],
]

test('100k random and mutated datagrams never throw; the beacon answers a Discover afterwards', async () => {
  const rig = memoryRig({ controlPerSecond: 1e9, controlBurst: 1e9, maxNodes: 1000 })
  try {
    const rng = new SeededRandom(0xbeac0)
    const n = 100_000
    for (let i = 0; i < n; i++) {
      const input = i % 4 === 0 ? randomBytes(rng, rng.int(80)) : mutate(rng, CORPUS[rng.int(CORPUS.length)]!)
      const [host, port] = SOURCES[rng.int(SOURCES.length)]!
      rig.clock.advance(rng.int(3)) // crosses several sweeps
      assert.doesNotThrow(() => rig.server.handleDatagram(input, host, port))
    }
    const s = rig.server.stats()
    assert.equal(s.datagrams, n)
    assert.equal(s.dropped['internal-error'], 0)
    assert.ok(s.received.discover > 1000 && s.received.relay > 1000 && s.received.punchRequest > 1000, JSON.stringify(s.received))
    assert.ok(s.relayedPackets > 0 && s.dropped['spoofed-relay'] > 0 && s.dropped['bad-source-address'] > 0)
    assert.ok(s.nodes <= 1000)

    const a = rig.client('10.9.9.9', 4000)
    a.discover(42)
    await settle()
    assert.deepEqual(a.take(), [hex('02 04 0a090909 0fa0')])
  } finally {
    await rig.close()
  }
})
