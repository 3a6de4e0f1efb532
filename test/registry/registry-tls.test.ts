// Registry over pinned TLS (issue 15): the server's certificate (made once and
// kept, or given), TLS and plaintext on one port, --tls-only, the client's pin
// check on every (re)connection, and a captured plaintext heartbeat that a
// TLS-only registry never lets in.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { connect, createServer, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { PilotError } from '../../src/errors.js'
import { Identity } from '../../src/crypto/identity.js'
import { createSelfSignedCertificate, certificatePin } from '../../src/crypto/x509.js'
import { startRegistry, type RunningRegistry } from '../../src/registry/start.js'
import { loadRegistryTls, pinOfPem, TLS_CERT_FILE, TLS_KEY_FILE } from '../../src/registry/tls.js'
import { registryTlsOption } from '../../src/registry/tls-pin.js'
import type { RegistryTlsListenOptions } from '../../src/registry/tls-front.js'
import { FakeClock, leakedHandles, testClient } from './helpers.js'

const codeOf = (e: unknown): string | undefined => (e instanceof PilotError ? e.code : undefined)

async function withDir(body: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'pt-regtls-'))
  try {
    await body(dir)
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}

function tlsListen(only: boolean): { listen: RegistryTlsListenOptions; pin: string } {
  const made = createSelfSignedCertificate()
  return { listen: { certPem: made.certPem, keyPem: made.keyPem, only }, pin: certificatePin(made.der) }
}

async function registryOn(dir: string, tls: RegistryTlsListenOptions | undefined, clock = new FakeClock(), port = 0): Promise<RunningRegistry> {
  return startRegistry({ host: '127.0.0.1', port, storePath: join(dir, 'registry.db'), now: clock.now, ...(tls === undefined ? {} : { tls }) })
}

test('the certificate is made once, kept 0600 beside the store, and loaded with the same pin afterwards', async () => {
  await withDir(async (dir) => {
    const first = await loadRegistryTls({ dir })
    assert.equal(first.source, 'created')
    assert.match(first.pin, /^[0-9a-f]{64}$/)
    for (const f of [TLS_CERT_FILE, TLS_KEY_FILE]) assert.equal((await stat(join(dir, f))).mode & 0o777, 0o600, f)
    const again = await loadRegistryTls({ dir })
    assert.equal(again.source, 'loaded')
    assert.equal(again.pin, first.pin, 'a restart keeps the pin')
    assert.equal(pinOfPem(await readFile(join(dir, TLS_CERT_FILE), 'utf8')), first.pin)
    // Given files: the pin is that of the first certificate in the file (a chain may follow).
    const other = createSelfSignedCertificate()
    await writeFile(join(dir, 'chain.pem'), other.certPem + first.certPem)
    await writeFile(join(dir, 'k.pem'), other.keyPem)
    const given = await loadRegistryTls({ certPath: join(dir, 'chain.pem'), keyPath: join(dir, 'k.pem') })
    assert.equal(given.pin, certificatePin(other.der))
    assert.equal((await loadRegistryTls({ dir: null })).source, 'ephemeral')
  })
})

test('bad certificate material is a clear error, never a half-made certificate', async () => {
  await withDir(async (dir) => {
    await assert.rejects(loadRegistryTls({ certPath: join(dir, 'c.pem') }), (e) => codeOf(e) === 'PT_CONFIG_INVALID')
    const a = createSelfSignedCertificate()
    const b = createSelfSignedCertificate()
    await writeFile(join(dir, 'a.pem'), a.certPem)
    await writeFile(join(dir, 'b-key.pem'), b.keyPem)
    await writeFile(join(dir, 'junk.pem'), 'not a certificate')
    await assert.rejects(loadRegistryTls({ certPath: join(dir, 'a.pem'), keyPath: join(dir, 'b-key.pem') }), (e) => codeOf(e) === 'PT_REGISTRY_TLS' && /is not the key/.test((e as Error).message))
    await assert.rejects(loadRegistryTls({ certPath: join(dir, 'junk.pem'), keyPath: join(dir, 'b-key.pem') }), (e) => codeOf(e) === 'PT_REGISTRY_TLS')
    await assert.rejects(loadRegistryTls({ certPath: join(dir, 'missing.pem'), keyPath: join(dir, 'b-key.pem') }), (e) => codeOf(e) === 'PT_REGISTRY_TLS')
    const kept = join(dir, 'kept')
    await loadRegistryTls({ dir: kept })
    await rm(join(kept, TLS_KEY_FILE))
    await assert.rejects(loadRegistryTls({ dir: kept }), (e) => codeOf(e) === 'PT_REGISTRY_TLS' && /does not/.test((e as Error).message))
  })
})

test('--registry-tls needs a pin; a pin must be 64 lower-case hex digits (compared exactly, as the reference does)', () => {
  const pin = 'ab'.repeat(32)
  assert.deepEqual(registryTlsOption(true, pin), { pin })
  assert.equal(registryTlsOption(undefined, undefined), null)
  assert.equal(registryTlsOption(false, ''), null)
  const refused = (tls: boolean | undefined, fp: string | undefined, hint: RegExp): void => {
    assert.throws(() => registryTlsOption(tls, fp), (e: unknown) => codeOf(e) === 'PT_CONFIG_INVALID' && hint.test((e as PilotError).hint ?? ''), `${tls} ${fp}`)
  }
  refused(true, undefined, /--registry-fingerprint/)
  refused(true, '', /--registry-fingerprint/)
  refused(undefined, pin, /--registry-tls/)
  refused(true, pin.toUpperCase(), new RegExp(`write ${pin}`))
  refused(true, pin.match(/../g)!.join(':'), new RegExp(`write ${pin}`))
  refused(true, 'abc', /prints its pin/)
})

test('--tls serves TLS and plaintext on one port; a pinned client registers over TLS', async () => {
  await withDir(async (dir) => {
    const before = (await leakedHandles()).length
    const { listen, pin } = tlsListen(false)
    const reg = await registryOn(dir, listen)
    const overTls = testClient(reg.address.port, Identity.generate(), { tls: { pin } })
    const plain = testClient(reg.address.port)
    try {
      const a = await overTls.register({ listenAddr: '127.0.0.1:4000' })
      const b = await plain.register({ listenAddr: '127.0.0.1:4001' })
      assert.notEqual(a.nodeId, b.nodeId)
      assert.equal((await overTls.lookup(b.nodeId)).nodeId, b.nodeId, 'the TLS client sees the plaintext one')
      assert.deepEqual(reg.server.tlsStats(), { tlsConnections: 1, plaintextConnections: 1, plaintextRefused: 0, handshakeFailures: 0, pendingRefused: 0 })
    } finally {
      overTls.close()
      plain.close()
      await reg.close()
    }
    assert.ok((await leakedHandles()).length <= before, 'nothing left open')
  })
})

test('a wrong pin is PT_REGISTRY_TLS_PIN naming the presented pin, and no request reaches the registry', async () => {
  await withDir(async (dir) => {
    const { listen, pin } = tlsListen(true)
    const reg = await registryOn(dir, listen)
    const wrong = 'ee'.repeat(32)
    const client = testClient(reg.address.port, Identity.generate(), { tls: { pin: wrong } })
    try {
      await assert.rejects(client.register({ listenAddr: '127.0.0.1:4000' }), (e: unknown) => {
        const err = e as PilotError
        return err.code === 'PT_REGISTRY_TLS_PIN' && err.message.includes(pin) && err.message.includes(wrong) && (err.hint ?? '').includes(`--registry-fingerprint ${pin}`)
      })
      assert.equal(reg.server.stats().requests, 0)
      // A plaintext registry answers a TLS dial with nothing TLS: a connection error, not a pin match.
      const plainReg = await registryOn(join(dir, 'plain'), undefined)
      const c2 = testClient(plainReg.address.port, Identity.generate(), { tls: { pin }, reconnect: { maxAttempts: 1, dialTimeoutMs: 1_000 } })
      await assert.rejects(c2.register({ listenAddr: '127.0.0.1:4000' }), (e) => codeOf(e) === 'PT_REGISTRY_UNREACHABLE')
      c2.close()
      await plainReg.close()
    } finally {
      client.close()
      await reg.close()
    }
  })
})

test('--tls-only closes plaintext connections unread; a plaintext client cannot register', async () => {
  await withDir(async (dir) => {
    const { listen } = tlsListen(true)
    const reg = await registryOn(dir, listen)
    const plain = testClient(reg.address.port, Identity.generate(), { reconnect: { maxAttempts: 1, dialTimeoutMs: 1_000 } })
    try {
      await assert.rejects(plain.register({ listenAddr: '127.0.0.1:4000' }), (e) => codeOf(e) === 'PT_REGISTRY_UNREACHABLE')
      assert.equal(reg.server.stats().requests, 0)
      assert.ok(reg.server.tlsStats()!.plaintextRefused >= 1)
    } finally {
      plain.close()
      await reg.close()
    }
  })
})

test('reconnects keep the pin: a registry back with another certificate is refused, the same one accepted', async () => {
  await withDir(async (dir) => {
    const clock = new FakeClock()
    const first = tlsListen(true)
    let reg = await registryOn(dir, first.listen, clock)
    const port = reg.address.port
    const client = testClient(port, Identity.generate(), { tls: { pin: first.pin } })
    try {
      const { nodeId } = await client.register({ listenAddr: '127.0.0.1:4000' })
      await reg.close() // drops the connection
      reg = await registryOn(dir, tlsListen(true).listen, clock, port)
      await assert.rejects(client.heartbeat(nodeId), (e) => codeOf(e) === 'PT_REGISTRY_TLS_PIN')
      await reg.close()
      reg = await registryOn(dir, first.listen, clock, port)
      assert.equal(typeof (await client.heartbeat(nodeId)).time, 'number', 'the right certificate again: heartbeats resume')
    } finally {
      client.close()
      await reg.close()
    }
  })
})

/** A TCP relay to `port` that records what the client sends. */
async function recordingRelay(port: number): Promise<{ port: number; sent: Buffer[]; close(): Promise<void> }> {
  const sent: Buffer[] = []
  const sockets = new Set<Socket>()
  const server = createServer((inbound) => {
    const outbound = connect({ host: '127.0.0.1', port })
    for (const s of [inbound, outbound]) {
      sockets.add(s)
      s.on('error', () => {})
      s.on('close', () => {
        sockets.delete(s)
        inbound.destroy()
        outbound.destroy()
      })
    }
    inbound.on('data', (d: Buffer) => {
      sent.push(Buffer.from(d))
      outbound.write(d)
    })
    outbound.on('data', (d: Buffer) => inbound.write(d))
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  return {
    port: (server.address() as { port: number }).port,
    sent,
    close: async () => {
      for (const s of sockets) s.destroy()
      await new Promise<void>((r) => server.close(() => r()))
    },
  }
}

/** The frames (length prefix included) of a recorded byte stream, with their JSON. */
function framesOf(stream: Buffer): Array<{ raw: Buffer; json: Record<string, unknown> }> {
  const out: Array<{ raw: Buffer; json: Record<string, unknown> }> = []
  for (let at = 0; at + 4 <= stream.length; ) {
    const len = stream.readUInt32BE(at)
    const raw = stream.subarray(at, at + 4 + len)
    out.push({ raw, json: JSON.parse(raw.subarray(4).toString('utf8')) as Record<string, unknown> })
    at += 4 + len
  }
  return out
}

/** Sends `frame` on a fresh plaintext connection; resolves with what came back before the close (or 1 s). */
function replay(port: number, frame: Buffer): Promise<{ answer: Buffer; closed: boolean }> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = []
    const s = connect({ host: '127.0.0.1', port }, () => s.write(frame))
    s.on('data', (d: Buffer) => chunks.push(d))
    s.on('error', () => {})
    const timer = setTimeout(() => {
      s.destroy()
      resolve({ answer: Buffer.concat(chunks), closed: false })
    }, 1_000)
    s.on('close', () => {
      clearTimeout(timer)
      resolve({ answer: Buffer.concat(chunks), closed: true })
    })
  })
}

test('a captured plaintext heartbeat replays on a plaintext registry but never gets into a --tls-only one', async () => {
  await withDir(async (dir) => {
    const clock = new FakeClock()
    // 1. A node talks plaintext (the registry has TLS on, but not only): record its signed heartbeat.
    let reg = await registryOn(dir, tlsListen(false).listen, clock)
    const port = reg.address.port
    const relay = await recordingRelay(port)
    const victim = testClient(relay.port)
    const { nodeId } = await victim.register({ listenAddr: '127.0.0.1:4000' })
    await victim.heartbeat(nodeId)
    victim.close()
    await relay.close()
    const heartbeat = framesOf(Buffer.concat(relay.sent)).find((f) => f.json.type === 'heartbeat')
    assert.ok(heartbeat !== undefined && typeof heartbeat.json.signature === 'string', 'a signed heartbeat was captured')

    // 2. Without --tls-only the replay works: the registry takes it for the node (the weakness, §17 item 10).
    clock.advance(60_000)
    const accepted = await replay(port, heartbeat.raw)
    assert.match(accepted.answer.toString('utf8'), /heartbeat_ok/)
    await reg.server.close() // writes the gathered heartbeats; the store stays open to be read
    const seenAfterAccepted = (await reg.store.getNode(nodeId))!.lastSeen
    assert.equal(seenAfterAccepted, clock.now(), 'the replayed heartbeat moved last_seen')
    reg.store.close()

    // 3. The same store behind --tls-only: the replay is closed unread and last_seen stays.
    reg = await registryOn(dir, tlsListen(true).listen, clock, port)
    clock.advance(60_000)
    const refused = await replay(port, heartbeat.raw)
    assert.equal(refused.closed, true, 'the registry closed the connection')
    assert.equal(refused.answer.length, 0, 'and answered nothing')
    assert.equal(reg.server.stats().requests, 0, 'no request was handled')
    assert.equal(reg.server.tlsStats()!.plaintextRefused, 1)
    await reg.server.close()
    assert.equal((await reg.store.getNode(nodeId))!.lastSeen, seenAfterAccepted, 'last_seen did not move')
    reg.store.close()
  })
})

test('the pin applies to every front end: a dead one is skipped over TLS, one with another certificate is refused', async () => {
  await withDir(async (dir) => {
    const shared = tlsListen(true)
    const good = await registryOn(join(dir, 'a'), shared.listen)
    const impostor = await registryOn(join(dir, 'b'), tlsListen(true).listen)
    const dead = await registryOn(join(dir, 'c'), undefined)
    const deadPort = dead.address.port
    await dead.close()
    const reconnect = { maxAttempts: 1, dialTimeoutMs: 1_000 }
    const viaDead = testClient(deadPort, Identity.generate(), { tls: { pin: shared.pin }, fallbacks: [{ host: '127.0.0.1', port: good.address.port }], reconnect })
    const viaImpostor = testClient(impostor.address.port, Identity.generate(), { tls: { pin: shared.pin }, fallbacks: [{ host: '127.0.0.1', port: good.address.port }], reconnect })
    try {
      assert.equal(typeof (await viaDead.register({ listenAddr: '127.0.0.1:4000' })).nodeId, 'number')
      assert.equal(viaDead.address, `127.0.0.1:${good.address.port}`)
      await assert.rejects(viaImpostor.register({ listenAddr: '127.0.0.1:4001' }), (e) => codeOf(e) === 'PT_REGISTRY_TLS_PIN')
      assert.equal(impostor.server.stats().requests, 0)
    } finally {
      viaDead.close()
      viaImpostor.close()
      await good.close()
      await impostor.close()
    }
  })
})

test('a connection that stays silent, or opens a TLS record and then sends garbage, is closed and counted', async () => {
  await withDir(async (dir) => {
    const { listen } = tlsListen(false)
    const reg = await registryOn(dir, { ...listen, sniffTimeoutMs: 200, handshakeTimeoutMs: 200 })
    try {
      const silent = await replayOrClose(reg.address.port, Buffer.alloc(0))
      assert.equal(silent, 'closed', 'silent past the sniff timeout')
      const garbage = await replayOrClose(reg.address.port, Buffer.concat([Buffer.from([0x16, 0x03, 0x01, 0x00, 0x05]), Buffer.from('hello')]))
      assert.equal(garbage, 'closed', 'not a ClientHello')
      const stalled = await replayOrClose(reg.address.port, Buffer.from([0x16, 0x03, 0x01]))
      assert.equal(stalled, 'closed', 'a handshake that never completes')
      assert.equal(reg.server.tlsStats()!.handshakeFailures, 3)
      assert.equal(reg.server.stats().requests, 0)
    } finally {
      await reg.close()
    }
  })
})

test('connections still being sorted count against a per-source cap: silent ones cannot pile up', async () => {
  await withDir(async (dir) => {
    const { listen } = tlsListen(true)
    const reg = await registryOn(dir, { ...listen, maxPendingPerSource: 2, sniffTimeoutMs: 1_500 })
    const sockets: Socket[] = []
    try {
      const open = (): Promise<Socket> =>
        new Promise((resolve) => {
          const s = connect({ host: '127.0.0.1', port: reg.address.port }, () => resolve(s))
          s.on('error', () => {})
          sockets.push(s)
        })
      await open()
      await open()
      const third = await open()
      const closedAtOnce = await new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => resolve(false), 1_000)
        third.once('close', () => {
          clearTimeout(timer)
          resolve(true)
        })
      })
      assert.equal(closedAtOnce, true, 'the third silent connection of one source is closed before the sniff timeout')
      assert.equal(reg.server.tlsStats()!.pendingRefused, 1)
    } finally {
      for (const s of sockets) s.destroy()
      await reg.close()
    }
  })
})

/** Writes `bytes` on a plaintext connection and reports whether the server closed it within 2 s. */
function replayOrClose(port: number, bytes: Buffer): Promise<'closed' | 'open'> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port }, () => {
      if (bytes.length > 0) s.write(bytes)
    })
    s.on('error', () => {})
    s.on('data', () => {})
    const timer = setTimeout(() => {
      s.destroy()
      resolve('open')
    }, 2_000)
    s.on('close', () => {
      clearTimeout(timer)
      resolve('closed')
    })
  })
}

test('/metrics of a TLS registry counts connections by outcome (absent without TLS)', async () => {
  const { serveServerMetrics } = await import('../../src/metrics/server-metrics.js')
  const { scrape } = await import('../metrics/prom-text.js')
  await withDir(async (dir) => {
    const { listen, pin } = tlsListen(true)
    const reg = await registryOn(dir, listen)
    const plainReg = await registryOn(join(dir, 'p'), undefined)
    const http = await serveServerMetrics({ host: '127.0.0.1', port: 0 }, { registry: reg })
    const plainHttp = await serveServerMetrics({ host: '127.0.0.1', port: 0 }, { registry: plainReg })
    const client = testClient(reg.address.port, Identity.generate(), { tls: { pin } })
    try {
      await client.register({ listenAddr: '127.0.0.1:4000' })
      assert.equal(await replayOrClose(reg.address.port, Buffer.from([0, 0, 0, 2, 0x7b, 0x7d])), 'closed')
      const m = await scrape(http.url)
      assert.equal(m.value('pilot_tun_registry_server_tls_connections_total', { outcome: 'tls' }), 1)
      assert.equal(m.value('pilot_tun_registry_server_tls_connections_total', { outcome: 'plaintext_refused' }), 1)
      assert.equal((await scrape(plainHttp.url)).all('pilot_tun_registry_server_tls_connections_total').length, 0)
    } finally {
      client.close()
      await http.close()
      await plainHttp.close()
      await reg.close()
      await plainReg.close()
    }
  })
})

test('with --tls, a plaintext client that sends its request and half-closes still gets the answer', async () => {
  await withDir(async (dir) => {
    const reg = await registryOn(dir, tlsListen(false).listen)
    try {
      const body = Buffer.from(JSON.stringify({ type: 'lookup', node_id: 9 }))
      const frame = Buffer.concat([Buffer.from([0, 0, 0, body.length]), body])
      const answer = await new Promise<Buffer>((resolve) => {
        const chunks: Buffer[] = []
        const s = connect({ host: '127.0.0.1', port: reg.address.port }, () => s.end(frame))
        s.on('data', (d: Buffer) => chunks.push(d))
        s.on('error', () => {})
        s.on('close', () => resolve(Buffer.concat(chunks)))
      })
      assert.match(answer.subarray(4).toString('utf8'), /"type":"error"/, 'the lookup of an unknown node is answered')
    } finally {
      await reg.close()
    }
  })
})
