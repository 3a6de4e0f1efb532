/** Small pure pieces of the registry: endpoint text, token buckets, field rules, key order. */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { formatHostPort, isHostPort, normalizeRemoteIp, portOf } from '../../src/registry/endpoints.js'
import { KeyedRateLimiter } from '../../src/registry/rate-limiter.js'
import { hostnameProblem, readTags, RequestRejected } from '../../src/registry/request-fields.js'
import { withSortedKeys } from '../../src/registry/json-order.js'

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
