import { test } from 'node:test'
import assert from 'node:assert/strict'
import { runTransfer } from './helpers.js'
import { streamStateName } from '../../src/session/stream.js'

test('smoke: 1 MB each way over a perfect link', () => {
  const r = runTransfer({ seed: 1, bytesAB: 1 << 20, bytesBA: 1 << 20, stream: { mss: 4096 } })
  console.log(r.sim.now, r.sim.packetsSent, streamStateName(r.client.state), streamStateName(r.server.state), r.ab.readBytes, r.ba.readBytes)
  assert.ok(r.completed)
  assert.equal(r.digests.ab[0], r.digests.ab[1])
  assert.equal(r.digests.ba[0], r.digests.ba[1])
})

test('smoke: 1 MB each way, 10% loss, delay', () => {
  const link = { loss: 0.1, delay: 10, jitter: 5, duplicate: 0.02, reorder: 0.05, reorderDelay: 20 }
  const r = runTransfer({ seed: 2, bytesAB: 1 << 20, bytesBA: 1 << 20, stream: { mss: 4096 }, ab: link, ba: link })
  console.log(r.sim.now, r.sim.packetsSent, streamStateName(r.client.state), streamStateName(r.server.state), r.ab.readBytes, r.ba.readBytes, r.client.stats(), r.client.error)
  assert.ok(r.completed)
  assert.equal(r.digests.ab[0], r.digests.ab[1])
  assert.equal(r.digests.ba[0], r.digests.ba[1])
})
