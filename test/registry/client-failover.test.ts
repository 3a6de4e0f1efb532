/**
 * RegistryClient with several registry front ends (issue 14): a dead front end
 * costs one redial, the request interrupted by a front end's death is answered
 * by the next, and when none answers the error names them all.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createServer, type AddressInfo } from 'node:net'
import { Identity } from '../../src/crypto/identity.js'
import { parseHostPortListOption } from '../../src/daemon/options.js'
import { RegistryError, RegistryErrorCode } from '../../src/registry/errors.js'
import { scriptedRegistry, testClient, type ScriptedRegistry } from './helpers.js'

const answer = (name: string) => (req: { type?: unknown }) =>
  req.type === 'heartbeat' ? { type: 'heartbeat_ok', time: 1, front_end: name } : { type: 'lookup_ok', node_id: 1, address: '0:0000.0000.0001', public_key: 'k', public: false, networks: [0], front_end: name }

/** A loopback port nothing listens on (bound, then closed). */
async function deadPort(): Promise<number> {
  const s = createServer()
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r))
  const port = (s.address() as AddressInfo).port
  await new Promise<void>((r) => s.close(() => r()))
  return port
}

test('a client with several front ends moves to the next when the one in use dies, and keeps using it', async () => {
  const a: ScriptedRegistry = await scriptedRegistry(answer('a'))
  const b: ScriptedRegistry = await scriptedRegistry(answer('b'))
  const client = testClient(a.port, Identity.generate(), { fallbacks: [{ host: '127.0.0.1', port: b.port }] })
  try {
    await client.heartbeat(1)
    assert.equal(a.requests.length, 1)
    assert.equal(client.address, `127.0.0.1:${a.port}`)
    // Front end a dies with the connection open: the next request reaches b.
    for (const s of a.sockets) s.destroy()
    await a.close()
    await client.heartbeat(1)
    assert.equal(b.requests.length, 1, 'b answered the heartbeat')
    assert.equal(client.address, `127.0.0.1:${b.port}`)
    assert.deepEqual(client.addresses, [`127.0.0.1:${b.port}`, `127.0.0.1:${a.port}`])
    await client.lookup(1)
    assert.equal(b.requests.length, 2, 'the client stays on b')
  } finally {
    client.close()
    await b.close()
  }
})

test('a dead first front end costs one dial, not the backoff', async () => {
  const dead = await deadPort()
  const b = await scriptedRegistry(answer('b'))
  // Backoff of 5 s between tries: only reaching b within the first try keeps this quick.
  const client = testClient(dead, Identity.generate(), {
    fallbacks: [{ host: '127.0.0.1', port: b.port }],
    reconnect: { initialDelayMs: 5_000, maxDelayMs: 5_000, maxAttempts: 3, dialTimeoutMs: 1_000 },
  })
  try {
    const started = Date.now()
    await client.heartbeat(7)
    assert.ok(Date.now() - started < 4_000, 'answered before the first backoff would have ended')
    assert.equal(b.requests.length, 1)
  } finally {
    client.close()
    await b.close()
  }
})

test('with every front end down the error names them all', async () => {
  const [p1, p2] = [await deadPort(), await deadPort()]
  const client = testClient(p1, Identity.generate(), {
    fallbacks: [{ host: '127.0.0.1', port: p2 }],
    reconnect: { initialDelayMs: 10, maxDelayMs: 10, maxAttempts: 2, dialTimeoutMs: 500 },
  })
  try {
    await assert.rejects(client.heartbeat(1), (err: unknown) => {
      assert.ok(err instanceof RegistryError)
      assert.equal(err.code, RegistryErrorCode.UNREACHABLE)
      assert.match(err.message, new RegExp(`no registry front end reachable .*127\\.0\\.0\\.1:${p1}.*127\\.0\\.0\\.1:${p2}`))
      assert.match(err.hint ?? '', /at least one of/)
      return true
    })
  } finally {
    client.close()
  }
})

test('--registry takes a comma-separated list of front ends and refuses repeats, empty entries and more than 16', () => {
  assert.deepEqual(parseHostPortListOption('10.0.0.1:9000, 10.0.0.2:9000', '--registry'), [
    { host: '10.0.0.1', port: 9000 },
    { host: '10.0.0.2', port: 9000 },
  ])
  assert.deepEqual(parseHostPortListOption('[::1]:9000', '--registry'), [{ host: '::1', port: 9000 }])
  assert.throws(() => parseHostPortListOption('a:1,a:1', '--registry'), /lists a:1 twice/)
  assert.throws(() => parseHostPortListOption('a:1,,b:2', '--registry'), (e: Error & { code?: string }) => e.code === 'PT_CONFIG_INVALID')
  const many = Array.from({ length: 17 }, (_, i) => `h${i}:9000`).join(',')
  assert.throws(() => parseHostPortListOption(many, '--registry'), /at most 16/)
})
