// The session warm-up (src/session/warm-up.ts) must really run a stream's life: the bytes it
// reports went through a handshake, both directions and the close, on two throwaway endpoints.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { SeededRandom } from '../../src/random.js'
import { warmUpSessions } from '../../src/session/warm-up.js'

test('warm-up: 1,400 bytes echoed each round, both ways, through a real handshake and close', () => {
  assert.equal(warmUpSessions(new SeededRandom(1), 1), 2 * 1400)
  assert.equal(warmUpSessions(new SeededRandom(2), 3), 3 * 2 * 1400)
})
