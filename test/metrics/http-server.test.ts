// The /metrics HTTP edge: address parsing, routes, a taken port, and a close that leaves nothing open.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { connect, createServer, type AddressInfo } from 'node:net'
import { Counter, Registry } from 'prom-client'
import { MetricsHttpServer, parseMetricsListen } from '../../src/metrics/http-server.js'
import { PilotError } from '../../src/errors.js'
import { activeResources } from '../daemon/world.js'
import { portOpen } from './prom-text.js'

function registryWithOne(): Registry {
  const registry = new Registry()
  new Counter({ name: 'demo_things_total', help: 'things', registers: [registry] }).inc(3)
  return registry
}

test('parseMetricsListen: listen addresses in, bad text is PT_CONFIG_INVALID naming the flag', () => {
  assert.deepEqual(parseMetricsListen('127.0.0.1:9101'), { host: '127.0.0.1', port: 9101 })
  assert.deepEqual(parseMetricsListen(':9101'), { host: '0.0.0.0', port: 9101 })
  assert.deepEqual(parseMetricsListen('[::1]:0'), { host: '::1', port: 0 })
  assert.deepEqual(parseMetricsListen('localhost:9101'), { host: 'localhost', port: 9101 })
  for (const bad of ['9101', 'example.com:9101', '127.0.0.1', '127.0.0.1:70000', '::1:9101', '']) {
    assert.throws(
      () => parseMetricsListen(bad),
      (e: unknown) => e instanceof PilotError && e.code === 'PT_CONFIG_INVALID' && e.message.includes('--metrics-listen'),
      bad,
    )
  }
  assert.throws(() => parseMetricsListen('nope', '"metrics-listen"'), /"metrics-listen"/)
})

test('MetricsHttpServer: GET /metrics is Prometheus text; other paths 404, other methods 405', async () => {
  const server = await MetricsHttpServer.listen({ host: '127.0.0.1', port: 0 }, registryWithOne())
  try {
    assert.equal(server.address.host, '127.0.0.1')
    assert.ok(server.address.port > 0)
    assert.equal(server.url, `http://127.0.0.1:${server.address.port}/metrics`)
    const ok = await fetch(server.url)
    assert.equal(ok.status, 200)
    assert.match(ok.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/)
    assert.match(await ok.text(), /^demo_things_total 3$/m)
    const withQuery = await fetch(`${server.url}?x=1`)
    assert.equal(withQuery.status, 200)
    await withQuery.arrayBuffer()
    const head = await fetch(server.url, { method: 'HEAD' })
    assert.equal(head.status, 200)
    assert.equal(await head.text(), '')
    const other = await fetch(`http://127.0.0.1:${server.address.port}/`)
    assert.equal(other.status, 404)
    assert.match(await other.text(), /\/metrics/)
    const post = await fetch(server.url, { method: 'POST', body: 'x' })
    assert.equal(post.status, 405)
    assert.equal(post.headers.get('allow'), 'GET, HEAD')
    await post.arrayBuffer()
  } finally {
    await server.close()
  }
})

test('MetricsHttpServer: a collector that throws is a 500, and the server goes on', async () => {
  const registry = new Registry()
  let fail = true
  new Counter({
    name: 'demo_flaky_total',
    help: 'flaky',
    registers: [registry],
    collect() {
      if (fail) throw new Error('boom')
    },
  })
  const server = await MetricsHttpServer.listen({ host: '127.0.0.1', port: 0 }, registry)
  try {
    const bad = await fetch(server.url)
    assert.equal(bad.status, 500)
    await bad.arrayBuffer()
    fail = false
    const good = await fetch(server.url)
    assert.equal(good.status, 200)
    await good.arrayBuffer()
  } finally {
    await server.close()
  }
})

test('MetricsHttpServer: a taken port is PT_METRICS_LISTEN_FAILED naming the flag and the address', async () => {
  const holder = createServer()
  await new Promise<void>((r) => holder.listen(0, '127.0.0.1', r))
  const port = (holder.address() as AddressInfo).port
  try {
    await assert.rejects(
      MetricsHttpServer.listen({ host: '127.0.0.1', port }, new Registry(), { flag: '--metrics-listen' }),
      (e: unknown) =>
        e instanceof PilotError &&
        e.code === 'PT_METRICS_LISTEN_FAILED' &&
        e.message.includes('--metrics-listen') &&
        e.message.includes(`127.0.0.1:${port}`) &&
        /already in use/.test(e.message) &&
        /another process/.test(e.hint ?? ''),
    )
  } finally {
    await new Promise<void>((r) => holder.close(() => r()))
  }
})

test('MetricsHttpServer: close() ends kept-alive connections at once and leaves nothing listening', { timeout: 10_000 }, async () => {
  const before = activeResources()
  const server = await MetricsHttpServer.listen({ host: '127.0.0.1', port: 0 }, registryWithOne())
  const port = server.address.port
  // fetch keeps its connection alive, and a stalled scraper leaves a request half sent:
  // close() must wait for neither (idle and request timeouts).
  const r = await fetch(server.url)
  await r.text()
  const stalled = connect(port, '127.0.0.1')
  await new Promise<void>((res) => stalled.once('connect', () => res()))
  stalled.write('GET /metrics HTTP/1.1\r\nHost: x\r\n')
  const stalledClosed = new Promise<void>((res) => stalled.once('close', () => res()))
  stalled.on('error', () => {})
  assert.equal(await portOpen(port), true)
  const started = Date.now()
  await server.close()
  await server.close() // idempotent
  assert.ok(Date.now() - started < 1_000, 'close did not wait for the keep-alive timeout')
  await stalledClosed
  assert.equal(await portOpen(port), false, 'nothing listens after close')
  await assert.rejects(fetch(server.url))
  const deadline = Date.now() + 2_000
  while (activeResources().length > before.length && Date.now() < deadline) await new Promise((res) => setTimeout(res, 20))
  assert.ok(activeResources().length <= before.length, `resources left: ${activeResources().join(', ')}`)
})
