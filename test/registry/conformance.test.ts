/**
 * Replays every client→registry request of the two Go captures
 * (test/fixtures/captures/registry-messages-session{1,2}.json) against a fresh
 * server and compares each answer with the Go registry's. The register
 * requests carry the daemons' real keys, so every captured signature must
 * verify against what we stored. The fake clock follows the capture's time
 * of day, so even `time` and handshake `timestamp` values come out equal.
 *
 * Intended differences (our hardening, §17): error texts say why.
 */
import { after, test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import type { JsonObject } from '../../src/protocol/registry-framing.js'
import { captureFixture } from '../util/fixtures.js'
import { FakeClock, RawConnection, startTestRegistry, leakedHandles } from './helpers.js'

interface CapturedMessage {
  time: string
  dir: 'client->registry' | 'registry->client'
  src: string
  dst: string
  len_prefix: number
  json: JsonObject
}


/** Unix seconds of 00:00 UTC on the capture day (heartbeat_ok time 1795776975 was sent at 10:56:15). */
const CAPTURE_DAY = 1_795_776_975 - (10 * 3600 + 56 * 60 + 15)

function captureTimeMs(time: string): number {
  const [h, m, s] = time.split(':').map(Number) as [number, number, number]
  return Math.round((CAPTURE_DAY + h * 3600 + m * 60 + s) * 1000)
}

/** Where our answer is meant to differ from Go's: request index → the error text we send. */
const EXPECTED_ERROR_TEXTS: Record<string, Record<number, string>> = {
  // Go hides every reason as "request failed"; we say the resolve was not authorised (no trust yet).
  'registry-messages-session1.json': { 16: 'not authorised', 20: 'not authorised', 32: 'not authorised' },
  'registry-messages-session2.json': { 10: 'not authorised', 22: 'not authorised' },
}

for (const file of ['registry-messages-session1.json', 'registry-messages-session2.json']) {
  test(`Go capture ${file}: same answers, request by request`, async () => {
    const messages = JSON.parse(readFileSync(captureFixture(file), 'utf8')) as CapturedMessage[]
    const clock = new FakeClock()
    const registry = await startTestRegistry({ clock })
    const connections = new Map<string, RawConnection>()
    const expectedErrors = EXPECTED_ERROR_TEXTS[file]!
    const seenErrors: number[] = []
    let compared = 0
    try {
      for (let i = 0; i < messages.length; i++) {
        const request = messages[i]!
        if (request.dir !== 'client->registry') continue
        const answerIndex = messages.findIndex((m, j) => j > i && m.dir === 'registry->client' && m.dst === request.src)
        assert.ok(answerIndex > i, `request ${i} has an answer in the capture`)
        const expected = messages[answerIndex]!
        // Claim the answer so the connection's next request finds its own.
        messages[answerIndex] = { ...expected, dst: '' }

        let connection = connections.get(request.src)
        if (connection === undefined) {
          connection = await RawConnection.open(registry.port)
          connections.set(request.src, connection)
        }
        clock.ms = captureTimeMs(request.time)
        const answer = await connection.ask(request.json)

        if (expected.json.type === 'error') {
          assert.equal(answer.type, 'error', `request ${i} (${String(request.json.type)}) must fail like Go's`)
          assert.equal(answer.error, expectedErrors[i], `request ${i}: our error text`)
          seenErrors.push(i)
        } else {
          assert.deepEqual(answer, expected.json, `request ${i} (${String(request.json.type)})`)
          // Same keys in the same (sorted) order and same values: same length prefix as Go's frame.
          assert.equal(Buffer.byteLength(JSON.stringify(answer)), expected.len_prefix, `request ${i}: length prefix`)
          assert.deepEqual(Object.keys(answer), Object.keys(expected.json))
        }
        compared++
      }
      assert.deepEqual(seenErrors, Object.keys(expectedErrors).map(Number), 'Go failed exactly these requests')
      assert.equal(compared, messages.filter((m) => m.dir === 'client->registry').length)
      assert.equal(registry.server.stats().rejected['bad-signature'], undefined, 'every captured signature verified')
    } finally {
      for (const c of connections.values()) c.destroy()
      await registry.close()
    }
  })
}

test('Go capture: the trust pair exists after the approving side answered, and came from the handshake', async () => {
  // Session 2 in short: node 2 asks, node 1 polls, accepts (respond + report_trust), node 2 resolves.
  const messages = JSON.parse(readFileSync(captureFixture('registry-messages-session2.json'), 'utf8')) as CapturedMessage[]
  const registry = await startTestRegistry()
  const connections = new Map<string, RawConnection>()
  try {
    for (const m of messages) {
      if (m.dir !== 'client->registry') continue
      let c = connections.get(m.src)
      if (c === undefined) connections.set(m.src, (c = await RawConnection.open(registry.port)))
      await c.ask(m.json)
    }
    assert.deepEqual(
      (await registry.store.listTrustPairs()).map((p) => [p.nodeA, p.nodeB, p.origin]),
      [[1, 2, 'handshake']],
    )
  } finally {
    for (const c of connections.values()) c.destroy()
    await registry.close()
  }
})

after(async () => {
  assert.deepEqual(await leakedHandles(), [], 'sockets, servers or timers left open')
})
