// ControlServer + ControlClient against an in-test fake DaemonControl.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createConnection, createServer, type Socket } from 'node:net'
import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync, statSync, existsSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { PilotError } from '../../src/errors.js'
import { MemoryLogger } from '../../src/logger.js'
import { FakeDaemon, PEER, STATUS, TRUST } from './fake-daemon.js'
import { ControlClient } from '../../src/daemon/control/client.js'
import { ControlServer } from '../../src/daemon/control/server.js'
import { CONTROL_MAX_MESSAGE, CONTROL_METHODS } from '../../src/daemon/control/protocol.js'

/** Resources before any test ran (the runner's own stdout/stderr pipes). */
const BASELINE_RESOURCES = process.getActiveResourcesInfo()

async function withServer(
  fn: (ctx: { server: ControlServer; daemon: FakeDaemon; path: string; dir: string }) => Promise<void>,
  opts: { maxPipelined?: number } = {},
): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'pilot-ctl-'))
  const path = join(dir, 'run', 'control.sock')
  const daemon = new FakeDaemon()
  const server = new ControlServer({ path, control: daemon, logger: new MemoryLogger(), ...opts })
  await server.listen()
  try {
    await fn({ server, daemon, path, dir })
  } finally {
    await server.close()
    rmSync(dir, { recursive: true, force: true })
  }
}

/** Raw connection helper: write bytes, collect responses until the server closes or `count` arrive. */
function rawExchange(path: string, bytes: Buffer[], opts: { expect?: number; timeoutMs?: number; end?: boolean } = {}): Promise<{ messages: any[]; closed: boolean }> {
  return new Promise((resolve, reject) => {
    const s = createConnection({ path })
    let buf = Buffer.alloc(0)
    const messages: any[] = []
    let closed = false
    const finish = (): void => {
      clearTimeout(timer)
      s.destroy()
      resolve({ messages, closed })
    }
    const timer = setTimeout(finish, opts.timeoutMs ?? 1500)
    s.on('connect', () => {
      for (const b of bytes) s.write(b)
      if (opts.end) s.end()
    })
    s.on('data', (d) => {
      buf = Buffer.concat([buf, d])
      while (buf.length >= 4 && buf.length >= 4 + buf.readUInt32BE(0)) {
        const n = buf.readUInt32BE(0)
        messages.push(JSON.parse(buf.subarray(4, 4 + n).toString('utf8')))
        buf = buf.subarray(4 + n)
      }
      if (opts.expect !== undefined && messages.length >= opts.expect) finish()
    })
    s.on('end', () => { closed = true; finish() })
    s.on('close', () => { closed = true; finish() })
    s.on('error', reject)
  })
}

function frame(obj: unknown): Buffer {
  const body = Buffer.from(JSON.stringify(obj), 'utf8')
  const out = Buffer.alloc(4 + body.length)
  out.writeUInt32BE(body.length, 0)
  body.copy(out, 4)
  return out
}

test('every method round-trips through the socket to the daemon', async () => {
  await withServer(async ({ daemon, path }) => {
    const c = await ControlClient.connect(path)
    try {
      assert.deepEqual(await c.call('status', {}), STATUS)
      assert.deepEqual(await c.call('peers', {}), [PEER])
      assert.deepEqual(await c.call('ping', { target: 'bob', timeout_ms: 1500 }), { address: PEER.address, hostname: 'bob', rtt_ms: 0.5, path: 'direct' })
      assert.equal((await c.call('resolve', { target: 'bob' })).ipv6, 'fd50:494c:4f54::2b')
      assert.deepEqual(await c.call('trust.request', { target: 'bob', reason: 'please' }), { status: 'sent', node_id: 43 })
      assert.deepEqual(await c.call('trust.approve', { target: '43' }), { status: 'approved', node_id: 43 })
      assert.deepEqual(await c.call('trust.reject', { target: '44', reason: '' }), { status: 'rejected', node_id: 43 })
      assert.deepEqual(await c.call('trust.revoke', { target: '43' }), { status: 'revoked', node_id: 43 })
      assert.deepEqual(await c.call('trust.list', {}), TRUST)
      assert.deepEqual(await c.call('hostname.set', { name: 'carol' }), { hostname: 'carol' })
      assert.deepEqual(await c.call('shutdown', {}), { status: 'shutting-down' })
      // Defaults are filled in: ping timeout and an empty reason.
      await c.call('ping', { target: 'bob' } as never)
      await c.call('trust.request', { target: 'bob' } as never)
    } finally {
      c.close()
    }
    assert.deepEqual(daemon.calls, [
      ['status'], ['peers'], ['ping', 'bob', 1500], ['resolve', 'bob'], ['trustRequest', 'bob', 'please'],
      ['trustApprove', '43'], ['trustReject', '44', ''], ['trustRevoke', '43'], ['trustList'], ['setHostname', 'carol'],
      ['shutdown'], ['ping', 'bob', 3000], ['trustRequest', 'bob', ''],
    ])
    // The task.* methods have their own test (test/services/tasks/task-control.test.ts).
    assert.equal(CONTROL_METHODS.filter((m) => !m.startsWith('task.')).length, 11)
  })
})

test('bad requests get typed errors and the connection stays usable', async () => {
  await withServer(async ({ daemon, path }) => {
    const c = await ControlClient.connect(path)
    const codeOf = async (p: Promise<unknown>): Promise<string> => {
      try {
        await p
        return 'ok'
      } catch (err) {
        assert.ok(err instanceof PilotError)
        return err.code
      }
    }
    try {
      assert.equal(await codeOf(c.call('frobnicate', {})), 'PT_CONTROL_UNKNOWN_METHOD')
      assert.equal(await codeOf(c.call('ping', {})), 'PT_CONTROL_BAD_REQUEST')
      assert.equal(await codeOf(c.call('ping', { target: 7 })), 'PT_CONTROL_BAD_REQUEST')
      assert.equal(await codeOf(c.call('ping', { target: 'bob', timeout_ms: 0 })), 'PT_CONTROL_BAD_REQUEST')
      assert.equal(await codeOf(c.call('ping', { target: 'bob', timeout_ms: 1.5 })), 'PT_CONTROL_BAD_REQUEST')
      assert.equal(await codeOf(c.call('resolve', { target: '' })), 'PT_CONTROL_BAD_REQUEST')
      assert.equal(await codeOf(c.call('resolve', { target: 'x'.repeat(300) })), 'PT_CONTROL_BAD_REQUEST')
      assert.equal(await codeOf(c.call('status', { verbose: true })), 'PT_CONTROL_BAD_REQUEST')
      assert.equal(await codeOf(c.call('hostname.set', { hostname: 'x' })), 'PT_CONTROL_BAD_REQUEST')
      // Daemon errors keep code and hint; non-PilotErrors become PT_DAEMON_INTERNAL without a stack.
      await assert.rejects(c.call('ping', { target: 'nobody', timeout_ms: 10 }), (e: PilotError) => e.code === 'PT_PING_TIMEOUT' && e.hint === 'is it up?')
      await assert.rejects(c.call('ping', { target: 'boom', timeout_ms: 10 }), (e: PilotError) => e.code === 'PT_DAEMON_INTERNAL' && !/at /.test(e.message))
      assert.equal((await c.call('status', {})).address, STATUS.address)
    } finally {
      c.close()
    }
    assert.ok(!daemon.calls.some(([m]) => m === 'setHostname'))
  })
})

test('envelope errors: missing id, non-object params, unknown fields', async () => {
  await withServer(async ({ path }) => {
    const r = await rawExchange(path, [
      frame({ method: 'status' }),
      frame({ id: 1, method: 'status', params: [1] }),
      frame({ id: 2, method: 'status', extra: 1 }),
      frame({ id: 'x', method: 'status' }),
    ], { expect: 4 })
    assert.equal(r.messages.length, 4)
    assert.deepEqual(r.messages.map((m) => [m.id, m.ok, m.error?.code]), [
      [null, false, 'PT_CONTROL_BAD_REQUEST'],
      [1, false, 'PT_CONTROL_BAD_REQUEST'],
      [2, false, 'PT_CONTROL_BAD_REQUEST'],
      ['x', true, undefined],
    ])
  })
})

test('garbage, oversize frames, half frames and sudden disconnects do not hurt the server', async () => {
  await withServer(async ({ server, path }) => {
    // Invalid JSON: one error response with id null, then the connection closes.
    const badJson = Buffer.concat([Buffer.from([0, 0, 0, 5]), Buffer.from('{nope')])
    let r = await rawExchange(path, [badJson])
    assert.equal(r.closed, true)
    assert.equal(r.messages[0].id, null)
    assert.equal(r.messages[0].error.code, 'PT_CONTROL_BAD_REQUEST')
    // JSON but not an object.
    r = await rawExchange(path, [frame([1, 2, 3])])
    assert.equal(r.messages[0].error.code, 'PT_CONTROL_BAD_REQUEST')
    // Oversize announcement: refused before its body arrives.
    const big = Buffer.alloc(4)
    big.writeUInt32BE(CONTROL_MAX_MESSAGE + 1, 0)
    r = await rawExchange(path, [big])
    assert.equal(r.closed, true)
    assert.match(r.messages[0].error.message, /exceeds/)
    // Random bytes.
    r = await rawExchange(path, [Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n')])
    assert.equal(r.closed, true)
    // Half a frame, then hang up.
    await new Promise<void>((resolve) => {
      const s = createConnection({ path }, () => {
        s.write(frame({ id: 1, method: 'status' }).subarray(0, 7))
        setTimeout(() => { s.destroy(); resolve() }, 20)
      })
    })
    // A slow request, then hang up before the answer.
    await new Promise<void>((resolve) => {
      const s = createConnection({ path }, () => {
        s.write(frame({ id: 1, method: 'ping', params: { target: 'bob' } }))
        s.destroy()
        resolve()
      })
    })
    // A frame split at every byte still arrives whole.
    const whole = frame({ id: 9, method: 'status' })
    const s: Socket = createConnection({ path })
    const got = new Promise<any>((resolve) => {
      let buf = Buffer.alloc(0)
      s.on('data', (d) => {
        buf = Buffer.concat([buf, d])
        if (buf.length >= 4 && buf.length >= 4 + buf.readUInt32BE(0)) resolve(JSON.parse(buf.subarray(4).toString()))
      })
    })
    await new Promise<void>((res) => s.once('connect', () => res()))
    for (const b of whole) {
      s.write(Buffer.from([b]))
      await new Promise((res) => setImmediate(res))
    }
    assert.equal((await got).result.address, STATUS.address)
    s.destroy()
    // Still answering.
    const c = await ControlClient.connect(path)
    assert.equal((await c.call('status', {})).node_id, 42)
    c.close()
    assert.ok(server.stats().badFrames >= 4)
  })
})

test('requests on one connection are answered in order; many clients at once', async () => {
  await withServer(async ({ daemon, path }) => {
    daemon.pingDelayMs = 30
    const r = await rawExchange(path, [
      Buffer.concat([
        frame({ id: 1, method: 'ping', params: { target: 'a' } }),
        frame({ id: 2, method: 'status' }),
        frame({ id: 3, method: 'ping', params: { target: 'b' } }),
        frame({ id: 4, method: 'nope' }),
      ]),
    ], { expect: 4 })
    assert.deepEqual(r.messages.map((m) => m.id), [1, 2, 3, 4])
    daemon.pingDelayMs = 5
    const clients = await Promise.all(Array.from({ length: 40 }, () => ControlClient.connect(path)))
    try {
      const replies = await Promise.all(clients.map((c, i) => c.call('ping', { target: `n${i}`, timeout_ms: 1000 })))
      assert.deepEqual(replies.map((x) => x.hostname), clients.map((_, i) => `n${i}`))
    } finally {
      for (const c of clients) c.close()
    }
  })
})

test('too many pipelined requests close the connection with an error', async () => {
  await withServer(async ({ daemon, path }) => {
    daemon.pingDelayMs = 50
    const frames = Array.from({ length: 10 }, (_, i) => frame({ id: i, method: 'ping', params: { target: 'x' } }))
    const r = await rawExchange(path, [Buffer.concat(frames)])
    assert.equal(r.closed, true)
    assert.ok(r.messages.some((m) => m.id === null && m.error.code === 'PT_CONTROL_BAD_REQUEST'))
  }, { maxPipelined: 4 })
})

test('socket is mode 0600, removed on close; a stale socket is replaced', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'pilot-ctl-'))
  try {
    const path = join(dir, 'control.sock')
    // A stale socket: a process binds it and dies without unlinking (SIGKILL).
    spawnSync(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(path)}, () => process.kill(process.pid, 'SIGKILL'))`])
    assert.ok(existsSync(path))
    const server = new ControlServer({ path, control: new FakeDaemon() })
    await server.listen()
    assert.equal(statSync(path).mode & 0o777, 0o600)
    assert.ok(statSync(path).isSocket())
    const c = await ControlClient.connect(path)
    assert.equal((await c.call('status', {})).hostname, 'alice')
    c.close()
    await server.close()
    assert.equal(existsSync(path), false)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test('a second server on a live path is refused; a non-socket file is refused', async () => {
  await withServer(async ({ path, dir }) => {
    const second = new ControlServer({ path, control: new FakeDaemon() })
    await assert.rejects(second.listen(), (e: PilotError) => e.code === 'PT_CONTROL_IN_USE' && /pilot-tun down/.test(e.hint ?? ''))
    await second.close()
    // The first still works and still owns its file.
    const c = await ControlClient.connect(path)
    assert.equal((await c.call('status', {})).node_id, 42)
    c.close()
    const file = join(dir, 'not-a-socket')
    writeFileSync(file, 'x')
    const third = new ControlServer({ path: file, control: new FakeDaemon() })
    await assert.rejects(third.listen(), (e: PilotError) => e.code === 'PT_CONTROL_PATH')
    assert.ok(existsSync(file))
  })
})

test('client: missing socket and stale socket are PT_DAEMON_NOT_RUNNING; a silent daemon is PT_CONTROL_TIMEOUT', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'pilot-ctl-'))
  try {
    await assert.rejects(ControlClient.connect(join(dir, 'nope.sock')), (e: PilotError) =>
      e.code === 'PT_DAEMON_NOT_RUNNING' && /pilot-tun up/.test(e.hint ?? ''))
    await assert.rejects(ControlClient.connect(join(dir, 'missing-dir', 'x.sock')), (e: PilotError) => e.code === 'PT_DAEMON_NOT_RUNNING')
    // Something accepts but never answers.
    const path = join(dir, 'silent.sock')
    const silent = createServer((s) => s.on('data', () => {}))
    await new Promise<void>((r) => silent.listen(path, () => r()))
    const c = await ControlClient.connect(path)
    await assert.rejects(c.call('status', {}, 100), (e: PilotError) => e.code === 'PT_CONTROL_TIMEOUT')
    c.close()
    await new Promise<void>((r) => silent.close(() => r()))
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test('closing the server answers the request in flight, then closes the connection', async () => {
  await withServer(async ({ server, daemon, path }) => {
    daemon.pingDelayMs = 100
    const c = await ControlClient.connect(path)
    const pending = c.call('ping', { target: 'bob', timeout_ms: 1000 })
    await new Promise((r) => setTimeout(r, 20))
    const closing = server.close()
    assert.equal((await pending).hostname, 'bob')
    await closing
    await assert.rejects(c.call('status', {}), (e: PilotError) => e.code === 'PT_CONTROL_CLOSED')
    c.close()
    assert.equal(existsSync(path), false)
  })
})

test('fuzz: 300 random and mutated messages, each on its own connection; the server keeps answering', async () => {
  await withServer(async ({ path }) => {
    let seed = 0x2545f491
    const rand = (n: number): number => {
      seed ^= seed << 13
      seed ^= seed >>> 17
      seed ^= seed << 5
      return (seed >>> 0) % n
    }
    const valid = frame({ id: 1, method: 'ping', params: { target: 'bob', timeout_ms: 100 } })
    for (let i = 0; i < 300; i++) {
      let bytes: Buffer
      if (i % 2 === 0) {
        bytes = Buffer.alloc(rand(64))
        for (let j = 0; j < bytes.length; j++) bytes[j] = rand(256)
      } else {
        bytes = Buffer.from(valid)
        for (let k = 0; k < 1 + rand(4); k++) bytes[rand(bytes.length)] = rand(256)
      }
      const r = await rawExchange(path, [bytes], { timeoutMs: 1000, end: true })
      assert.equal(r.closed, true)
      for (const m of r.messages) assert.equal(typeof m.ok, 'boolean')
    }
    const c = await ControlClient.connect(path)
    assert.equal((await c.call('status', {})).node_id, 42)
    c.close()
  })
})

test('no sockets or timers are left behind', async () => {
  await new Promise((r) => setTimeout(r, 50))
  const count = (list: string[]): Record<string, number> => {
    const out: Record<string, number> = {}
    for (const x of list) if (/Pipe|TCP|Timeout/.test(x)) out[x] = (out[x] ?? 0) + 1
    return out
  }
  assert.deepEqual(count(process.getActiveResourcesInfo()), count(BASELINE_RESOURCES))
})
