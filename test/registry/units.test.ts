/** Small pieces of the registry: endpoint text, token buckets, field rules, key order, address claims. */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { formatHostPort, isHostPort, normalizeRemoteIp, portOf, sourceKeyOf } from '../../src/registry/endpoints.js'
import { KeyedRateLimiter } from '../../src/registry/rate-limiter.js'
import { hostnameProblem, readTags, RequestRejected } from '../../src/registry/request-fields.js'
import { withSortedKeys } from '../../src/registry/json-order.js'
import { claimRegistration, confirmSigner, newConnectionState } from '../../src/registry/address-claims.js'
import { SqliteRegistryStore } from '../../src/registry/store.js'

test('real_addr text: IPv4 plain, IPv6 bracketed, IPv4-mapped IPv6 unwrapped', () => {
  assert.equal(formatHostPort('127.0.0.1', 4000), '127.0.0.1:4000')
  assert.equal(formatHostPort('2001:db8::1', 4000), '[2001:db8::1]:4000')
  assert.equal(normalizeRemoteIp('::ffff:10.0.0.7'), '10.0.0.7')
  assert.equal(normalizeRemoteIp('::FFFF:10.0.0.7'), '10.0.0.7')
  assert.equal(normalizeRemoteIp('2001:DB8::1'), '2001:db8::1')
  assert.equal(portOf('1.2.3.4:4000'), 4000)
  assert.equal(portOf('[::1]:4000'), 4000)
  assert.equal(portOf(':4000'), 4000)
  for (const bad of ['', '4000', '1.2.3.4:', '1.2.3.4:0', '1.2.3.4:65536', '1.2.3.4:+1', 'a:1e3']) assert.equal(portOf(bad), null, bad)
  assert.ok(isHostPort('beacon.example.com:9001'))
  assert.ok(isHostPort('[2001:db8::1]:9001'))
  assert.ok(!isHostPort('2001:db8::1:9001'))
  assert.ok(!isHostPort('bad host:9001'))
})

test('per-source cap key: IPv4 as is, IPv6 by its /64', () => {
  assert.equal(sourceKeyOf('10.0.0.7'), '10.0.0.7')
  assert.equal(sourceKeyOf('2001:db8:0:1::5'), '2001:db8:0:1::/64')
  assert.equal(sourceKeyOf('2001:DB8:0:1:ffff:1:2:3'), '2001:db8:0:1::/64')
  assert.equal(sourceKeyOf('2001:0db8:0000:0001:0000:0000:0000:0009'), '2001:db8:0:1::/64')
  assert.equal(sourceKeyOf('2001:db8::1'), '2001:db8:0:0::/64')
  assert.equal(sourceKeyOf('::1'), '0:0:0:0::/64')
  assert.equal(sourceKeyOf('::'), '0:0:0:0::/64')
  assert.equal(sourceKeyOf('1:2:3:4:5:6::'), '1:2:3:4::/64')
  assert.equal(sourceKeyOf('64:ff9b::10.0.0.1'), '64:ff9b:0:0::/64')
  assert.equal(sourceKeyOf('fe80::1%eth0'), 'fe80:0:0:0::/64')
})

test('token bucket: capacity, proportional refill, independent keys, bounded table', () => {
  const limiter = new KeyedRateLimiter({ capacity: 10, periodMs: 60_000, maxKeys: 100 })
  for (let i = 0; i < 10; i++) assert.ok(limiter.tryTake('a', 0))
  assert.ok(!limiter.tryTake('a', 0))
  assert.ok(limiter.tryTake('b', 0))
  assert.ok(!limiter.tryTake('a', 5_999))
  assert.ok(limiter.tryTake('a', 6_000))
  for (let i = 0; i < 1_000; i++) limiter.tryTake(`ip-${i}`, 10_000 + i)
  assert.ok(limiter.size <= 100)
})

test('hostname and tag rules (§10.5.6-7)', () => {
  for (const ok of ['a', 'alpha', 'a-b', '0x', 'a'.repeat(63)]) assert.equal(hostnameProblem(ok), null, ok)
  for (const bad of ['', '-a', 'a-', 'A', 'a_b', 'a.b', 'a'.repeat(64), 'localhost', 'backbone', 'broadcast']) {
    assert.notEqual(hostnameProblem(bad), null, bad)
  }
  assert.deepEqual(readTags({ tags: ['#gpu', 'gpu', 'llm-7b'] }), ['gpu', 'llm-7b'])
  for (const tags of [['#'], ['GPU'], ['a'.repeat(33)], ['x y']]) assert.throws(() => readTags({ tags }), RequestRejected)
})

test('responses are emitted with sorted keys at every depth, as Go maps are', () => {
  const sorted = withSortedKeys({ type: 't', b: [{ z: 1, a: 2 }], a: { y: 1, x: undefined } })
  assert.equal(JSON.stringify(sorted), '{"a":{"y":1},"b":[{"a":2,"z":1}],"type":"t"}')
})

test('address claims: an unproven register leaves address and owner pending on its connection; the node\'s signature there commits them', async () => {
  const store = new SqliteRegistryStore({ path: ':memory:' })
  try {
    const node = await store.createNode({ publicKey: 'k1', owner: 'ops', realAddr: '10.0.0.1:1', now: 1 })
    const other = await store.createNode({ publicKey: 'k2', owner: null, realAddr: '10.0.0.2:2', now: 1 })
    const connection = newConnectionState()
    let n = await claimRegistration(store, node, { realAddr: '10.6.6.6:6', owner: 'mallory', now: 2 }, connection)
    assert.deepEqual([n.realAddr, n.owner, n.lastSeen], ['10.0.0.1:1', 'ops', 2])
    assert.deepEqual(connection.pending, { nodeId: 1, realAddr: '10.6.6.6:6', owner: 'mallory' })

    // Another node's signature on that connection commits nothing of node 1's.
    await confirmSigner(store, other, connection)
    assert.equal(connection.provenNode, 2)
    assert.equal((await store.getNode(1))!.realAddr, '10.0.0.1:1')
    assert.notEqual(connection.pending, null)

    n = await confirmSigner(store, (await store.getNode(1))!, connection)
    assert.deepEqual([n.realAddr, n.owner], ['10.6.6.6:6', 'mallory'])
    assert.equal(connection.pending, null)
    assert.equal(connection.provenNode, 1)

    // On a connection that speaks for the node, a register applies at once; no owner given keeps the owner.
    n = await claimRegistration(store, n, { realAddr: '10.0.0.9:9', owner: null, now: 3 }, connection)
    assert.deepEqual([n.realAddr, n.owner], ['10.0.0.9:9', 'mallory'])

    // Nothing changes: nothing pends, and an offline node comes back online.
    await store.markOffline(1)
    const fresh = newConnectionState()
    n = await claimRegistration(store, (await store.getNode(1))!, { realAddr: '10.0.0.9:9', owner: null, now: 4 }, fresh)
    assert.equal(fresh.pending, null)
    assert.deepEqual([n.online, n.realAddr], [true, '10.0.0.9:9'])
  } finally {
    await store.close()
  }
})
