/** RegistryClient: exact request bytes, lock step, reconnect, retry, timeouts and typed errors. */
import { after, test } from 'node:test'
import assert from 'node:assert/strict'
import { createServer, type AddressInfo, type Socket } from 'node:net'
import { Identity } from '../../src/crypto/identity.js'
import { encodeRegistryMessage, type JsonObject } from '../../src/protocol/registry-framing.js'
import { RegistryError, RegistryErrorCode } from '../../src/registry/errors.js'
import { RegistryServer } from '../../src/registry/server.js'
import { FakeClock, scriptedRegistry, startTestRegistry, testClient, leakedHandles, type ScriptedRegistry } from './helpers.js'

/** RFC 8032 test 1 key, whose registry signatures docs/wire.md §16.5 lists. */
const RFC8032_SEED = Buffer.from('9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60', 'hex')

/** A scripted server: records raw request frames and answers with `answer(request)` (null = stay silent). */
const scriptedServer = (answer: (req: JsonObject, socket: Socket) => JsonObject | null): Promise<ScriptedRegistry> => scriptedRegistry(answer)

test('requests are the bytes Go daemons send: §16.7 lookup, §16.5 signatures, sorted keys, numbers as numbers', async () => {
  const fake = await scriptedServer((req) => {
    switch (req.type) {
      case 'lookup':
        return { type: 'lookup_ok', node_id: 1, address: '0:0000.0000.0001', public_key: 'x', public: false, networks: [0], polo_score: 0 }
      case 'heartbeat':
        return { type: 'heartbeat_ok', time: 5 }
      case 'resolve':
        return { type: 'resolve_ok', node_id: 2, real_addr: '1.2.3.4:5' }
      default:
        return { type: `${String(req.type)}_ok`, status: 'delivered' }
    }
  })
  const client = testClient(fake.port, Identity.fromSeed(RFC8032_SEED))
  try {
    await client.lookup(1)
    assert.equal(fake.frames[0]!.toString('hex'), '0000001d7b226e6f64655f6964223a312c2274797065223a226c6f6f6b7570227d')
    await client.heartbeat(1)
    await client.resolve(1, 2)
    await client.requestHandshake(1, 2, 'hi')
    const sent = fake.frames.slice(1).map((f) => f.subarray(4).toString('utf8'))
    assert.equal(
      sent[0],
      '{"node_id":1,"signature":"VnlNDnMgPNrEstsrIUUV4v6d2E7QkVIddCAIpv1x28UtcY15dnl85d0ldVgesmCWwT8vPsUTgZrs82oJtGTtAQ==","type":"heartbeat"}',
    )
    assert.equal(
      sent[1],
      '{"node_id":2,"requester_id":1,"signature":"a782c6+50CLxw5CdBgYqTOdXCgBvP0bH1Pc1vA1BZE/zb4XhaloIU6GMcNtJVitQIMY57SgoK21CUKmjSAItAw==","type":"resolve"}',
    )
    assert.equal(
      sent[2],
      '{"from_node_id":1,"justification":"hi","signature":"9S+I5TI03acn8tKkIroprBmv6NzljsX4+ZcP04hlEtUrmPJEww0O11uGhVSGh4Xs/so1V4HlVcLx5g/kulFZCw==","to_node_id":2,"type":"request_handshake"}',
    )
  } finally {
    client.close()
    await fake.close()
  }
})

test('register request matches the captured Go register byte for byte', async () => {
  // Session 1 register: {"listen_addr":"127.0.0.1:4001","public_key":"Arv4kSYU…","type":"register"}, length 110.
  const captured = '{"listen_addr":"127.0.0.1:4001","public_key":"Arv4kSYU3H7d9fTqfPTDJ6j8Qlqvnoho+DPrbSAyCT8=","type":"register"}'
  const fake = await scriptedServer(() => ({ type: 'register_ok', node_id: 1, network_id: 0, address: '0:0000.0000.0001', public_key: 'k' }))
  // Same key shape: the client sends whatever public key its identity has, so compare structure with a key we swap in.
  const id = Identity.generate()
  const client = testClient(fake.port, id)
  try {
    const result = await client.register({ listenAddr: '127.0.0.1:4001' })
    assert.deepEqual(result, { nodeId: 1, address: '0:0000.0000.0001', publicKey: 'k' })
    const ours = fake.frames[0]!
    const expected = captured.replace('Arv4kSYU3H7d9fTqfPTDJ6j8Qlqvnoho+DPrbSAyCT8=', Buffer.from(id.publicKey).toString('base64'))
    assert.equal(ours.readUInt32BE(0), 110)
    assert.equal(ours.subarray(4).toString('utf8'), expected)
  } finally {
    client.close()
    await fake.close()
  }
})

test('requests queued together go out one at a time, answers matched in order', async () => {
  let inFlight = 0
  let maxInFlight = 0
  const fake = await scriptedServer((req, socket) => {
    inFlight++
    maxInFlight = Math.max(maxInFlight, inFlight)
    setTimeout(() => {
      inFlight--
      socket.write(encodeRegistryMessage({ type: 'lookup_ok', node_id: req.node_id as number, address: 'a', public_key: 'k' }))
    }, 2)
    return null
  })
  const client = testClient(fake.port)
  try {
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => client.lookup(i + 1)))
    assert.deepEqual(results.map((r) => r.nodeId), Array.from({ length: 20 }, (_, i) => i + 1))
    assert.equal(maxInFlight, 1)
    assert.equal(fake.sockets.size, 1, 'one long-lived connection')
  } finally {
    client.close()
    await fake.close()
  }
})

test('typed errors: PT_REGISTRY_ERROR carries the server text; PT_REGISTRY_TIMEOUT; PT_REGISTRY_CLOSED', async () => {
  const fake = await scriptedServer((req) => (req.type === 'lookup' ? { type: 'error', error: 'not found' } : null))
  const client = testClient(fake.port, Identity.generate(), { timeoutMs: 150 })
  try {
    await assert.rejects(client.lookup(9), (e: unknown) => {
      assert.ok(e instanceof RegistryError)
      assert.equal(e.code, RegistryErrorCode.ERROR)
      assert.equal(e.serverError, 'not found')
      return true
    })
    const silent = client.heartbeat(1)
    await assert.rejects(silent, (e: unknown) => e instanceof RegistryError && e.code === RegistryErrorCode.TIMEOUT)
    // The timed-out request's connection was dropped so a late answer cannot be mistaken; the next one works.
    await assert.rejects(client.lookup(9), (e: unknown) => e instanceof RegistryError && e.serverError === 'not found')
    const pending = client.heartbeat(1)
    client.close()
    await assert.rejects(pending, (e: unknown) => e instanceof RegistryError && e.code === RegistryErrorCode.CLOSED)
    await assert.rejects(client.lookup(1), (e: unknown) => e instanceof RegistryError && e.code === RegistryErrorCode.CLOSED)
  } finally {
    client.close()
    await fake.close()
  }
})

test('nothing listening: PT_REGISTRY_UNREACHABLE with a hint naming the address', async () => {
  const probe = createServer()
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve))
  const port = (probe.address() as AddressInfo).port
  await new Promise<void>((resolve) => probe.close(() => resolve()))
  const client = testClient(port, Identity.generate(), { reconnect: { maxAttempts: 3, initialDelayMs: 10, maxDelayMs: 20 } })
  try {
    await assert.rejects(client.lookup(1), (e: unknown) => {
      assert.ok(e instanceof RegistryError)
      assert.equal(e.code, RegistryErrorCode.UNREACHABLE)
      assert.match(e.hint ?? '', new RegExp(`127\\.0\\.0\\.1:${port}`))
      return true
    })
  } finally {
    client.close()
  }
})

test('the client reconnects after the registry restarts on the same port, and retries the interrupted request', async () => {
  const clock = new FakeClock()
  const registry = await startTestRegistry({ clock })
  const id = Identity.generate()
  const client = testClient(registry.port, id)
  let second: RegistryServer | null = null
  try {
    await client.register({ listenAddr: ':4000' })
    await client.heartbeat(1)
    await registry.server.close() // drops our connection; the store stays
    second = new RegistryServer({ store: registry.store, now: clock.now })
    const restarted = second.listen('127.0.0.1', registry.port)
    assert.deepEqual(await client.heartbeat(1), { time: Math.floor(clock.ms / 1000) })
    await restarted

    // Registry down while a request is queued, back within the backoff window.
    await second.close()
    const queued = client.lookup(1)
    await new Promise((r) => setTimeout(r, 60))
    const third = new RegistryServer({ store: registry.store, now: clock.now })
    await third.listen('127.0.0.1', registry.port)
    second = third
    assert.equal((await queued).nodeId, 1)
  } finally {
    client.close()
    await second?.close()
    await registry.close()
  }
})

test('a connection dropped under a request is retried once on a new connection', async () => {
  let lookups = 0
  const fake = await scriptedServer((req, socket) => {
    if (req.type !== 'lookup') return null
    lookups++
    if (lookups === 1) {
      socket.destroy() // the registry dies mid-request
      return null
    }
    return { type: 'lookup_ok', node_id: 1, address: 'a', public_key: 'k' }
  })
  const client = testClient(fake.port)
  try {
    assert.equal((await client.lookup(1)).nodeId, 1)
    assert.equal(lookups, 2)
  } finally {
    client.close()
    await fake.close()
  }
})

after(async () => {
  assert.deepEqual(await leakedHandles(), [], 'sockets, servers or timers left open')
})
