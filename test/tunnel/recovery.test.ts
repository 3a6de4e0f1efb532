// Session recovery (recovery.ts): which unopenable PILS are answered with our PILA and where,
// the rate limit, and our PILA again when our PILS go unanswered.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { NonceSequence } from '../../src/crypto/index.js'
import { CryptoRandom } from '../../src/random.js'
import { nullLogger } from '../../src/logger.js'
import { Peer } from '../../src/tunnel/peer.js'
import { RECOVERY_AUTH_FAILURES, RECOVERY_MIN_PILS, SILENCE_BACKOFF_MAX, SessionRecovery } from '../../src/tunnel/recovery.js'
import { newTunnelCounters } from '../../src/tunnel/stats.js'

const ME = 1
const SILENCE = 500
const INTERVAL = 200
const BIG = RECOVERY_MIN_PILS

function setup(opts: { hasRelay?: boolean; maxPerSecond?: number } = {}) {
  const clock = { t: 50_000, now(): number { return this.t } }
  const calls: string[] = []
  const counters = newTunnelCounters()
  const recovery = new SessionRecovery({
    nodeId: ME,
    hasRelay: opts.hasRelay ?? true,
    timing: { recoveryIntervalMs: INTERVAL, silenceRekeyMs: SILENCE },
    maxPerSecond: opts.maxPerSecond ?? 20,
    clock,
    logger: nullLogger,
    counters,
    port: {
      sendKeyFrame: (peer, now) => calls.push(`key ${peer.nodeId} on path at ${now}`),
      sendKeyFrameTo: (host, port) => calls.push(`key to ${host}:${port}`),
      sendKeyFrameRelayed: (to) => calls.push(`key relayed to ${to}`),
      resolveIfIdle: (peer) => calls.push(`resolve ${peer.nodeId}`),
      prefetchKey: (nodeId) => calls.push(`prefetch ${nodeId}`),
    },
  })
  return { recovery, clock, calls, counters }
}

/** A peer we have a session with (ready to send). */
function readyPeer(id: number): Peer {
  const p = new Peer(id)
  p.sendSeq = new NonceSequence(new CryptoRandom(), 0)
  p.peerKeyCurrent = true
  p.keySentMs = 1
  return p
}

test('a PILS from a node without a session is answered with our PILA, to its source or through the relay, and its key fetched', () => {
  const { recovery, calls, counters } = setup()
  recovery.noSession(7, BIG, '10.0.0.7', 4000, false)
  recovery.noSession(8, BIG, '10.0.0.254', 9001, true)
  assert.deepEqual(calls, ['key to 10.0.0.7:4000', 'prefetch 7', 'key relayed to 8', 'prefetch 8'])
  assert.equal(counters.recoveryKeyFramesSent, 2)
})

test('not answered: frames too small to hold a packet, sender 0 or our own ID, relayed ones without a beacon', () => {
  const { recovery, calls, counters } = setup({ hasRelay: false })
  recovery.noSession(7, BIG - 1, '10.0.0.7', 4000, false)
  recovery.noSession(0, BIG, '10.0.0.7', 4001, false)
  recovery.noSession(ME, BIG, '10.0.0.7', 4002, false)
  recovery.noSession(9, BIG, '10.0.0.254', 9001, true)
  assert.deepEqual(calls, [])
  assert.equal(counters.recoveryRateLimited, 0, 'not even counted as rate-limited')
})

test('answers are rate-limited per node (and counted), and allowed again after the interval', () => {
  const { recovery, calls, counters, clock } = setup()
  recovery.noSession(7, BIG, '10.0.0.7', 4000, false)
  recovery.noSession(7, BIG, '10.0.0.8', 4000, false)
  assert.equal(counters.recoveryRateLimited, 1)
  clock.t += INTERVAL
  recovery.noSession(7, BIG, '10.0.0.8', 4000, false)
  assert.deepEqual(calls.filter((c) => c.startsWith('key')), ['key to 10.0.0.7:4000', 'key to 10.0.0.8:4000'])
})

test(`a peer's PILS failing authentication ${RECOVERY_AUTH_FAILURES} times in a row is answered; one that opens resets the count`, () => {
  const { recovery, calls } = setup()
  const p = readyPeer(7)
  for (let i = 1; i < RECOVERY_AUTH_FAILURES; i++) recovery.authFailed(p, BIG, '10.0.0.7', 4000, false)
  recovery.authenticated(p)
  for (let i = 1; i < RECOVERY_AUTH_FAILURES; i++) recovery.authFailed(p, BIG, '10.0.0.7', 4000, false)
  assert.deepEqual(calls, [])
  recovery.authFailed(p, BIG, '10.0.0.7', 4000, false)
  assert.deepEqual(calls, ['key to 10.0.0.7:4000', 'prefetch 7'])
})

test('silence: our PILS unanswered for silenceRekeyMs → resolve and our PILA on the path, then backing off to a cap', () => {
  const { recovery, calls, clock } = setup()
  const p = readyPeer(7)
  const start = clock.t
  p.silentSinceMs = start
  const fired: number[] = []
  for (let t = start; t <= start + 30 * SILENCE; t += 50) {
    const before = calls.length
    recovery.tick(p, t)
    if (calls.length > before) {
      fired.push(t - start)
      assert.deepEqual(calls.slice(before), ['resolve 7', `key 7 on path at ${t}`])
    }
  }
  // Gaps of 1×, 2×, 4×, then 8× silenceRekeyMs (the cap) between re-sends.
  assert.equal(SILENCE_BACKOFF_MAX, 8)
  assert.deepEqual(fired, [500, 1000, 2000, 4000, 8000, 12000])
})

test('silence: nothing while the peer answers, nor for a peer we have no session with', () => {
  const { recovery, calls, clock } = setup()
  const answered = readyPeer(7)
  recovery.tick(answered, clock.t + 10 * SILENCE) // silentSinceMs 0: our PILS were answered
  const notReady = new Peer(8)
  notReady.silentSinceMs = clock.t
  recovery.tick(notReady, clock.t + 10 * SILENCE)
  assert.deepEqual(calls, [])
})
