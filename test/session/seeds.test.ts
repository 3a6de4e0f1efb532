/**
 * The big randomized test: 1,000 seeds × loss 0–20 % with reordering,
 * duplication, delay and jitter; 1 MB each way, byte-exact (SHA-256), both
 * sides CLOSED, and a bound on packets sent ("no storms").
 *
 * Bound: ideal = data segments both ways × 1.5 (one ACK per two segments) + 12
 * (handshake and close); packets sent by both sides ≤ 2 × ideal / (1 − loss)² (measured worst: 1.28 × ideal).
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { runTransfer } from './helpers.js'
import { streamStateName } from '../../src/session/stream.js'

const SEEDS = Number(process.env.PT_SESSION_SEEDS ?? 1000)
const BYTES = 1 << 20
const MSS = 4096

export function seedLink(seed: number) {
  const loss = (seed % 21) / 100
  return {
    loss,
    duplicate: (seed % 3) * 0.01,
    reorder: (seed % 5) * 0.03,
    reorderDelay: 15,
    delay: 2 + (seed % 7) * 3,
    jitter: seed % 4,
  }
}

test(`${SEEDS} seeds × loss 0–20 %, reordering, duplication: 1 MB each way`, () => {
  let worst = 0
  let worstSeed = -1
  let totalPackets = 0
  const started = Date.now()
  for (let seed = 1; seed <= SEEDS; seed++) {
    const link = seedLink(seed)
    const r = runTransfer({ seed, bytesAB: BYTES, bytesBA: BYTES, stream: { mss: MSS }, ab: link, ba: link, limit: 3_600_000 })
    const what = `seed ${seed} loss ${link.loss}: client ${streamStateName(r.client.state)} server ${streamStateName(r.server.state)} read ${r.ab.readBytes}/${r.ba.readBytes}`
    assert.ok(r.completed, `${what} did not complete (${r.client.error?.code ?? ''} ${r.server.error?.code ?? ''})`)
    assert.equal(r.digests.ab[1], r.digests.ab[0], `${what}: A→B bytes differ`)
    assert.equal(r.digests.ba[1], r.digests.ba[0], `${what}: B→A bytes differ`)
    assert.equal(r.client.error, null, what)
    assert.equal(r.server.error, null, what)
    const sent = r.sim.packetsSent[0] + r.sim.packetsSent[1]
    const ideal = 2 * Math.ceil(BYTES / MSS) * 1.5 + 12
    const bound = (2 * ideal) / (1 - link.loss) ** 2
    assert.ok(sent <= bound, `${what}: ${sent} packets sent, bound ${Math.round(bound)}`)
    const ratio = (sent * (1 - link.loss) ** 2) / ideal
    if (ratio > worst) {
      worst = ratio
      worstSeed = seed
    }
    totalPackets += sent
  }
  console.log(`seeds=${SEEDS} packets=${totalPackets} worst normalised ratio ${worst.toFixed(2)} (seed ${worstSeed}) in ${Date.now() - started} ms`)
})
