// Registry latency (src/netcheck/registry-probe.ts) against small TCP servers on loopback, and a real registry.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createServer, type Server, type Socket } from 'node:net'
import { probeRegistry } from '../../src/netcheck/registry-probe.js'
import { RegistryFrameDecoder, encodeRegistryMessage } from '../../src/protocol/registry-framing.js'
import { startRegistry } from '../../src/registry/start.js'

async function server(onSocket: (s: Socket) => void): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<Socket>()
  const srv: Server = createServer((s) => {
    sockets.add(s)
    s.on('close', () => sockets.delete(s))
    onSocket(s)
  })
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve))
  const port = (srv.address() as { port: number }).port
  return {
    port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy()
        srv.close(() => resolve())
      }),
  }
}

test('a framed answer: connect and request times, and the request is one unsigned beacon_list', async () => {
  const requests: unknown[] = []
  const srv = await server((s) => {
    const d = new RegistryFrameDecoder()
    s.on('data', (c) => {
      d.push(c)
      for (let m = d.next(); m !== null; m = d.next()) {
        requests.push(m)
        // Split answer: the probe must wait for the whole frame.
        const out = encodeRegistryMessage({ type: 'beacon_list_ok', beacons: [] })
        s.write(out.subarray(0, 3))
        setTimeout(() => s.write(out.subarray(3)), 20)
      }
    })
  })
  try {
    const r = await probeRegistry({ host: '127.0.0.1', port: srv.port }, 2000)
    assert.equal(r.error, null)
    assert.ok(r.connectMs !== null && r.connectMs >= 0)
    assert.ok(r.rttMs !== null && r.rttMs >= 15, `rtt ${r.rttMs}`)
    assert.deepEqual(requests, [{ type: 'beacon_list' }])
  } finally {
    await srv.close()
  }
})

test('the pilot-tun registry answers it', async () => {
  const reg = await startRegistry({ host: '127.0.0.1', port: 0, storePath: ':memory:' })
  try {
    const r = await probeRegistry({ host: '127.0.0.1', port: reg.address.port }, 2000)
    assert.equal(r.error, null, JSON.stringify(r))
    assert.ok(r.rttMs !== null)
  } finally {
    await reg.close()
  }
})

test('failures are results with a registry error code, never exceptions', async () => {
  const closed = await server(() => {})
  const port = closed.port
  await closed.close()
  const refused = await probeRegistry({ host: '127.0.0.1', port }, 2000)
  assert.equal(refused.error?.code, 'PT_REGISTRY_UNREACHABLE')
  assert.equal(refused.connectMs, null)

  const silent = await server(() => {})
  try {
    const r = await probeRegistry({ host: '127.0.0.1', port: silent.port }, 200)
    assert.equal(r.error?.code, 'PT_REGISTRY_TIMEOUT')
    assert.ok(r.connectMs !== null, 'connected, then no answer')
  } finally {
    await silent.close()
  }

  const hangUp = await server((s) => s.end())
  try {
    assert.equal((await probeRegistry({ host: '127.0.0.1', port: hangUp.port }, 2000)).error?.code, 'PT_REGISTRY_CLOSED')
  } finally {
    await hangUp.close()
  }

  const garbage = await server((s) => s.write(Buffer.from('ffffffff', 'hex')))
  try {
    assert.equal((await probeRegistry({ host: '127.0.0.1', port: garbage.port }, 2000)).error?.code, 'PT_REGISTRY_BAD_RESPONSE')
  } finally {
    await garbage.close()
  }

  const unresolvable = await probeRegistry({ host: 'nowhere.invalid', port: 9000 }, 2000)
  assert.equal(unresolvable.error?.code, 'PT_REGISTRY_UNREACHABLE')
})
