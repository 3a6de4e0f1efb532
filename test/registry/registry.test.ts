/** Registry behaviour through the real client: nodes, hostnames, trust, hardening, reaper, limits. */
import { after, test } from 'node:test'
import assert from 'node:assert/strict'
import { Identity } from '../../src/crypto/identity.js'
import { RegistryError, RegistryErrorCode } from '../../src/registry/errors.js'
import type { RegistryClient } from '../../src/registry/client.js'
import { RegistryChallenge } from '../../src/registry/challenges.js'
import { startTestRegistry, testClient, RawConnection, type TestRegistry, leakedHandles } from './helpers.js'

/** Runs `body` with a fresh registry; closes everything it opened. */
async function withRegistry(
  body: (r: TestRegistry, open: (id?: Identity) => RegistryClient) => Promise<void>,
  options: Parameters<typeof startTestRegistry>[0] = {},
): Promise<void> {
  const registry = await startTestRegistry(options)
  const clients: RegistryClient[] = []
  const open = (id = Identity.generate()): RegistryClient => {
    const c = testClient(registry.port, id)
    clients.push(c)
    return c
  }
  try {
    await body(registry, open)
  } finally {
    for (const c of clients) c.close()
    await registry.close()
  }
}

async function rejectsWith(promise: Promise<unknown>, serverError: string): Promise<void> {
  await assert.rejects(promise, (e: unknown) => {
    assert.ok(e instanceof RegistryError, String(e))
    assert.equal(e.code, RegistryErrorCode.ERROR)
    assert.equal(e.serverError, serverError)
    return true
  })
}

test('register, heartbeat, lookup: IDs from 1, real_addr only for public nodes', async () => {
  await withRegistry(async (registry, open) => {
    const a = open()
    const b = open()
    const ra = await a.register({ listenAddr: '0.0.0.0:4001' })
    const rb = await b.register({ listenAddr: ':4002' })
    assert.equal(ra.nodeId, 1)
    assert.equal(ra.address, '0:0000.0000.0001')
    assert.equal(rb.nodeId, 2)
    assert.deepEqual(await a.heartbeat(1), { time: Math.floor(registry.clock.ms / 1000) })

    const privateLookup = await b.lookup(1)
    assert.equal(privateLookup.isPublic, false)
    assert.equal(privateLookup.realAddr, undefined)
    assert.deepEqual(privateLookup.networks, [0])
    assert.equal(privateLookup.publicKey, ra.publicKey)

    assert.deepEqual(await a.setVisibility(1, true), { visibility: 'public' })
    // The host is the TCP source address; only the port comes from listen_addr.
    assert.equal((await b.lookup(1)).realAddr, '127.0.0.1:4001')
    assert.deepEqual(await b.resolve(2, 1), { nodeId: 1, realAddr: '127.0.0.1:4001' })

    await a.setTags(1, ['#gpu', 'llm'])
    await a.setTaskExec(1, true)
    const full = await b.lookup(1)
    assert.deepEqual(full.tags, ['gpu', 'llm'])
    assert.equal(full.taskExec, true)
  })
})

test('heartbeat with another node\'s signature or a junk signature is refused', async () => {
  await withRegistry(async (registry, open) => {
    const a = open()
    const b = open()
    await a.register({ listenAddr: '127.0.0.1:1' })
    await b.register({ listenAddr: '127.0.0.1:2' })
    await rejectsWith(b.heartbeat(1), 'signature invalid') // b signs heartbeat:1 with its own key
    await rejectsWith(a.request({ type: 'heartbeat', node_id: 1, signature: 'AAAA' }), 'signature invalid')
    await rejectsWith(a.request({ type: 'heartbeat', node_id: 1 }), 'signature missing')
    assert.equal(registry.server.stats().rejected['bad-signature'], 3)
  })
})

test('hostnames: set, unique among online nodes, invalid, register-time errors, resolve, clear', async () => {
  await withRegistry(async (_registry, open) => {
    const a = open()
    const b = open()
    await a.register({ listenAddr: '127.0.0.1:1' })
    await b.register({ listenAddr: '127.0.0.1:2' })
    assert.deepEqual(await a.setHostname(1, 'alpha'), { hostname: 'alpha' })
    await rejectsWith(b.setHostname(2, 'alpha'), 'hostname taken')
    await assert.rejects(b.setHostname(2, 'Bad_Name'), (e: RegistryError) => e.code === RegistryErrorCode.ERROR)
    await assert.rejects(b.setHostname(2, 'localhost'), /reserved/)
    assert.deepEqual(await b.resolveHostname('alpha'), { nodeId: 1, address: '0:0000.0000.0001', isPublic: false, hostname: 'alpha' })

    // At registration an invalid hostname is reported, a taken one silently skipped (Go's rules).
    const c = open()
    const rc = await c.register({ listenAddr: '127.0.0.1:3', hostname: '-nope' })
    assert.match(rc.hostnameError ?? '', /hostname/)
    assert.equal(rc.hostname, undefined)
    const d = open()
    const rd = await d.register({ listenAddr: '127.0.0.1:4', hostname: 'alpha' })
    assert.equal(rd.hostname, undefined)
    assert.equal(rd.hostnameError, undefined)
    const e = open()
    assert.equal((await e.register({ listenAddr: '127.0.0.1:5', hostname: 'echo' })).hostname, 'echo')

    assert.deepEqual(await a.setHostname(1, ''), { hostname: '' })
    await rejectsWith(b.resolveHostname('alpha'), 'not found')
    assert.deepEqual(await b.setHostname(2, 'alpha'), { hostname: 'alpha' })
  })
})

test('relayed handshake: resolve refused, request → poll → accept → resolve both ways; revoke refuses again', async () => {
  await withRegistry(async (registry, open) => {
    const a = open()
    const b = open()
    await a.register({ listenAddr: '127.0.0.1:4001' })
    await b.register({ listenAddr: '127.0.0.1:4002' })
    await rejectsWith(a.resolve(1, 2), 'not authorised')

    assert.deepEqual(await a.requestHandshake(1, 2, 'let me in'), { status: 'delivered' })
    await rejectsWith(a.resolve(1, 2), 'not authorised') // a request alone is one-sided
    const inbox = await b.pollHandshakes(2)
    assert.deepEqual(inbox.requests, [{ fromNodeId: 1, justification: 'let me in', timestamp: Math.floor(registry.clock.ms / 1000) }])
    assert.deepEqual((await b.pollHandshakes(2)).requests, [], 'polling clears the inbox')

    await b.respondHandshake(2, 1, true)
    await b.reportTrust(2, 1) // what a Go daemon sends next
    assert.deepEqual(await a.resolve(1, 2), { nodeId: 2, realAddr: '127.0.0.1:4002' })
    assert.deepEqual(await b.resolve(2, 1), { nodeId: 1, realAddr: '127.0.0.1:4001' })
    const answers = await a.pollHandshakes(1)
    assert.deepEqual(answers.responses.map((r) => [r.fromNodeId, r.accept]), [[2, true]])
    assert.deepEqual((await a.pollHandshakes(1)).responses, [])

    await a.revokeTrust(1, 2)
    await rejectsWith(a.resolve(1, 2), 'not authorised')
    await rejectsWith(b.resolve(2, 1), 'not authorised')
    // b still trusts a locally and re-reports after a re-registration: unilateral, so still refused.
    await b.reportTrust(2, 1)
    await rejectsWith(a.resolve(1, 2), 'not authorised')
    await rejectsWith(a.revokeTrust(1, 3), 'not found')
  })
})

test('a rejected handshake is relayed and creates no trust; an unsolicited accept is not relayed', async () => {
  await withRegistry(async (_registry, open) => {
    const a = open()
    const b = open()
    const c = open()
    await a.register({ listenAddr: '127.0.0.1:1' })
    await b.register({ listenAddr: '127.0.0.1:2' })
    await c.register({ listenAddr: '127.0.0.1:3' })
    await a.requestHandshake(1, 2, 'hi')
    await b.respondHandshake(2, 1, false)
    assert.deepEqual((await a.pollHandshakes(1)).responses.map((r) => [r.fromNodeId, r.accept]), [[2, false]])
    await rejectsWith(a.resolve(1, 2), 'not authorised')

    // c never asked b; b "accepting" c must not reach c's inbox (Go would trust it blindly).
    await b.respondHandshake(2, 3, true)
    assert.deepEqual((await c.pollHandshakes(3)).responses, [])
    await rejectsWith(c.resolve(3, 2), 'not authorised')
  })
})

test('hardening: one report_trust does not unlock resolve; reports from both sides do', async () => {
  await withRegistry(async (_registry, open) => {
    const a = open()
    const b = open()
    await a.register({ listenAddr: '127.0.0.1:1' })
    await b.register({ listenAddr: '127.0.0.1:2' })
    await a.reportTrust(1, 2) // Go: this alone lets node 1 resolve node 2
    await rejectsWith(a.resolve(1, 2), 'not authorised')
    await rejectsWith(b.resolve(2, 1), 'not authorised')
    await b.reportTrust(2, 1)
    assert.equal((await a.resolve(1, 2)).realAddr, '127.0.0.1:2')
    assert.equal((await b.resolve(2, 1)).realAddr, '127.0.0.1:1')
  })
})

test('hardening: punch returns endpoints only to a node that may resolve the other', async () => {
  await withRegistry(async (_registry, open) => {
    const ida = Identity.generate()
    const a = open(ida)
    const b = open()
    await a.register({ listenAddr: '127.0.0.1:1' })
    await b.register({ listenAddr: '127.0.0.1:2' })
    const punch = () =>
      a.request({ type: 'punch', requester_id: 1, node_a: 1, node_b: 2, signature: ida.signChallenge(RegistryChallenge.punch(1, 2)) })
    await rejectsWith(punch(), 'not authorised')
    await a.reportTrust(1, 2)
    await b.reportTrust(2, 1)
    assert.deepEqual(await punch(), {
      type: 'punch_ok',
      node_a: 1,
      node_a_addr: '127.0.0.1:1',
      node_b: 2,
      node_b_addr: '127.0.0.1:2',
    })
  })
})

test('hardening: a new key with a known owner gets a fresh ID; the same key keeps its ID', async () => {
  await withRegistry(async (_registry, open) => {
    const original = Identity.generate()
    const first = await open(original).register({ listenAddr: '127.0.0.1:1', owner: 'alice@example.com' })
    const thief = await open().register({ listenAddr: '127.0.0.1:2', owner: 'alice@example.com' })
    assert.equal(first.nodeId, 1)
    assert.equal(thief.nodeId, 2, 'Go would have handed node 1 to this key')
    const again = open(original)
    assert.equal((await again.register({ listenAddr: '127.0.0.1:3' })).nodeId, 1)
    await again.deregister(1)
    assert.equal((await again.register({ listenAddr: '127.0.0.1:3' })).nodeId, 1, 'also after deregistering')
  })
})

test('reaper: silent nodes go offline, hostname freed; key index and trust survive', async () => {
  await withRegistry(async (registry, open) => {
    const ida = Identity.generate()
    const a = open(ida)
    const b = open()
    await a.register({ listenAddr: '127.0.0.1:1', hostname: 'alpha' })
    await b.register({ listenAddr: '127.0.0.1:2' })
    await a.reportTrust(1, 2)
    await b.reportTrust(2, 1)

    registry.clock.advance(2 * 60_000)
    await b.heartbeat(2)
    registry.clock.advance(60_000 + 1)
    assert.deepEqual((await registry.server.reapNow()).nodes, [1])
    await rejectsWith(b.lookup(1), 'not found')
    await rejectsWith(a.heartbeat(1), 'not found') // a Go daemon re-registers after this
    await b.setHostname(2, 'alpha')

    const back = await a.register({ listenAddr: '127.0.0.1:1', hostname: 'alpha' })
    assert.equal(back.nodeId, 1)
    assert.equal(back.hostname, undefined, 'alpha now belongs to node 2')
    assert.equal((await a.resolve(1, 2)).realAddr, '127.0.0.1:2', 'trust pair kept')
    assert.equal(registry.server.stats().nodesReaped, 1)
  })
})

test('registrations of unknown keys: 10 per source IP per minute; known keys are exempt', async () => {
  await withRegistry(async (registry, open) => {
    const first = Identity.generate()
    await open(first).register({ listenAddr: '127.0.0.1:1' })
    for (let i = 0; i < 9; i++) await open().register({ listenAddr: '127.0.0.1:1' })
    await rejectsWith(open().register({ listenAddr: '127.0.0.1:1' }), 'rate limited')
    assert.equal((await open(first).register({ listenAddr: '127.0.0.1:9' })).nodeId, 1)
    registry.clock.advance(6_000) // one token back
    assert.equal((await open().register({ listenAddr: '127.0.0.1:1' })).nodeId, 11)
    await rejectsWith(open().register({ listenAddr: '127.0.0.1:1' }), 'rate limited')
    assert.equal(registry.server.stats().rejected['rate-limited'], 2)
  })
})

test('polo score: get/update/set unsigned as in Go, but rate limited', async () => {
  await withRegistry(
    async (_registry, open) => {
      const a = open()
      await a.register({ listenAddr: '127.0.0.1:1' })
      assert.deepEqual(await a.request({ type: 'get_polo_score', node_id: 1 }), {
        type: 'get_polo_score_ok',
        node_id: 1,
        address: '0:0000.0000.0001',
        polo_score: 0,
      })
      assert.equal((await a.request({ type: 'update_polo_score', node_id: 1, delta: 5 })).polo_score, 5)
      assert.equal((await a.request({ type: 'update_polo_score', node_id: 1, delta: -2 })).polo_score, 3)
      assert.equal((await a.request({ type: 'set_polo_score', node_id: 1, polo_score: 42 })).polo_score, 42)
      await rejectsWith(a.request({ type: 'update_polo_score', node_id: 1, delta: 1 }), 'rate limited')
      assert.equal((await a.lookup(1)).poloScore, 42)
    },
    { limits: { scoreChangesPerMinute: 3 } },
  )
})

test('beacons, networks, rotate_key and the refused operations', async () => {
  await withRegistry(async (registry, open) => {
    const id = Identity.generate()
    const a = open(id)
    await a.register({ listenAddr: '127.0.0.1:1' })
    assert.deepEqual(await a.request({ type: 'beacon_register', beacon_id: 7, addr: '127.0.0.1:9001' }), {
      type: 'beacon_register_ok',
      beacon_id: 7,
    })
    assert.deepEqual((await a.request({ type: 'beacon_list' })).beacons, [{ id: 7, addr: '127.0.0.1:9001' }])
    registry.clock.advance(61_000)
    assert.deepEqual((await a.request({ type: 'beacon_list' })).beacons, [])
    await rejectsWith(a.request({ type: 'beacon_register', beacon_id: 0, addr: '127.0.0.1:9001' }), 'invalid beacon_id')

    assert.deepEqual((await a.request({ type: 'list_networks' })).networks, [
      { id: 0, name: 'backbone', members: 1, join_rule: 'open' },
    ])
    await rejectsWith(a.request({ type: 'list_nodes', network_id: 0 }), 'listing network 0 is not allowed')
    // Networks exist now (issue 13, test/registry/networks.test.ts); unsigned writes in the reference's shape are refused.
    await rejectsWith(a.request({ type: 'create_network', node_id: 1, name: 'x', join_rule: 'open', admin_token: '' }), 'invalid timestamp')
    await assert.rejects(a.request({ type: 'join_network', node_id: 1, network_id: 1 }), { code: 'PT_NETWORK_NOT_FOUND' })
    await assert.rejects(a.request({ type: 'leave_network', node_id: 1, network_id: 1 }), { code: 'PT_NETWORK_NOT_FOUND' })
    await rejectsWith(a.request({ type: 'subscribe_replication', token: 'x' }), 'replication not configured')

    const next = Identity.generate()
    const newKey = Buffer.from(next.publicKey).toString('base64')
    const rotated = await a.request({ type: 'rotate_key', node_id: 1, new_public_key: newKey, signature: id.signChallenge('rotate:1') })
    assert.deepEqual(rotated, { type: 'rotate_key_ok', node_id: 1, address: '0:0000.0000.0001', public_key: newKey })
    await rejectsWith(a.heartbeat(1), 'signature invalid') // the old key no longer speaks for node 1
    const b = open(next)
    await b.heartbeat(1)
    await rejectsWith(a.register({ listenAddr: '127.0.0.1:1' }), 'public key was rotated out')
    assert.equal((await b.register({ listenAddr: '127.0.0.1:1' })).nodeId, 1)
  })
})

test('handshake inbox holds a bounded number of requests per target, one per sender', async () => {
  await withRegistry(
    async (_registry, open) => {
      const target = open()
      await target.register({ listenAddr: '127.0.0.1:1' })
      const senders: RegistryClient[] = []
      for (let i = 0; i < 4; i++) {
        const s = open()
        await s.register({ listenAddr: '127.0.0.1:1' })
        senders.push(s)
      }
      await senders[0]!.requestHandshake(2, 1, 'one')
      await senders[0]!.requestHandshake(2, 1, 'one again') // replaces, does not add
      await senders[1]!.requestHandshake(3, 1, 'two')
      await senders[2]!.requestHandshake(4, 1, 'three')
      await rejectsWith(senders[3]!.requestHandshake(5, 1, 'four'), 'handshake inbox full')
      const inbox = await target.pollHandshakes(1)
      assert.deepEqual(inbox.requests.map((r) => [r.fromNodeId, r.justification]), [[2, 'one again'], [3, 'two'], [4, 'three']])
      await senders[3]!.requestHandshake(5, 1, 'four') // room again after the poll
    },
    { limits: { handshakeInboxSize: 3 } },
  )
})

test('idle connections are closed after the idle limit', async () => {
  await withRegistry(
    async (registry) => {
      const raw = await RawConnection.open(registry.port)
      await raw.waitClosed(2_000)
      assert.equal(registry.server.stats().connectionsClosedIdle, 1)
    },
    { limits: { idleTimeoutMs: 100 } },
  )
})

test('the reaper runs on its own timer', async () => {
  await withRegistry(
    async (registry, open) => {
      const a = open()
      await a.register({ listenAddr: '127.0.0.1:1' })
      registry.clock.advance(10_000)
      await new Promise((resolve) => setTimeout(resolve, 120))
      await rejectsWith(a.lookup(1), 'not found')
    },
    { limits: { reapIntervalMs: 30, staleAfterMs: 5_000 } },
  )
})

after(async () => {
  assert.deepEqual(await leakedHandles(), [], 'sockets, servers or timers left open')
})
