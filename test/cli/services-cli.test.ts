// The data-service CLI commands (send-message, send-file, inbox, received,
// publish, subscribe) through the real launcher against a control server in
// this process with a fake `ServicesControl`; and the streaming answer of
// events.subscribe: event frames, a slow reader cut off, a gone client.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { createConnection } from 'node:net'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { ControlServer } from '../../src/daemon/control/server.js'
import { ControlClient } from '../../src/daemon/control/client.js'
import { encodeControlMessage } from '../../src/daemon/control/protocol.js'
import type { ServicesControl, StreamedEvent, SubscribeOptions } from '../../src/services/api.js'
import { ServiceError, ServiceErrorCode } from '../../src/services/errors.js'
import { runCli } from './run-cli.js'
import { FakeDaemon } from '../daemon/fake-daemon.js'

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..')
const bin = join(repoRoot, 'bin', 'pilot-tun.js')

const run = (args: string[], cwd?: string) => runCli(args, cwd === undefined ? {} : { cwd })

/** Canned answers, recorded calls; `subscribe` behaviour swappable. */
class FakeServices implements ServicesControl {
  calls: unknown[][] = []
  subscribeImpl: (o: SubscribeOptions, onEvent: (e: StreamedEvent) => void, signal: AbortSignal) => Promise<void> = async (_o, onEvent) => {
    onEvent({ topic: 'news', data: 'one', bytes: 3 })
    onEvent({ topic: 'news', data: 'two', bytes: 3 })
  }
  async sendMessage(target: string, type: 'text' | 'json' | 'binary', data: string) {
    this.calls.push(['sendMessage', target, type, data])
    if (target === 'full') throw new ServiceError(ServiceErrorCode.REFUSED, '0:0000.0000.0009 answered: ERR TEXT save failed: inbox full', { hint: 'the receiver must clear its inbox first' })
    return { target: '0:0000.0000.002B', type, bytes: Buffer.byteLength(data), ack: `ACK ${type.toUpperCase()} ${Buffer.byteLength(data)} bytes` }
  }
  async sendFile(target: string, path: string) {
    this.calls.push(['sendFile', target, path])
    return { destination: '0:0000.0000.002B', filename: 'f.txt', bytes: 12, ack: 'ACK FILE 12 bytes' }
  }
  async inboxList() {
    return { dir: '/s/inbox', messages: [{ bytes: 5, data: 'hello', from: '0:0000.0000.002B', received_at: '2026-12-06T06:26:43Z', type: 'TEXT' }], total: 1, truncated: false }
  }
  async inboxClear() {
    return { cleared: 4 }
  }
  async receivedList() {
    return { dir: '/s/received', files: [{ name: 'f-20261206-062643.857.txt', bytes: 2048, modified: '2026-12-06T06:26:43Z', path: '/s/received/f-20261206-062643.857.txt' }], total: 1, truncated: false }
  }
  async receivedClear() {
    return { cleared: 1 }
  }
  async publish(target: string, topic: string, data: string) {
    this.calls.push(['publish', target, topic, data])
    return { target: '0:0000.0000.002B', topic, bytes: Buffer.byteLength(data) }
  }
  async subscribe(target: string, topic: string, options: SubscribeOptions, onEvent: (e: StreamedEvent) => void, signal: AbortSignal) {
    this.calls.push(['subscribe', target, topic, options])
    await this.subscribeImpl(options, onEvent, signal)
    return { target: '0:0000.0000.002B', topic, events: 2, timeout: false }
  }
}

async function withServer(fn: (sock: string, fake: FakeServices, dir: string) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'pt-svc-cli-'))
  const sock = join(dir, 'control.sock')
  const fake = new FakeServices()
  const server = new ControlServer({ path: sock, control: new FakeDaemon(), services: () => fake })
  await server.listen()
  try {
    await fn(sock, fake, dir)
  } finally {
    await server.close()
    rmSync(dir, { recursive: true, force: true })
  }
}

test('send-message, send-file, publish: parameters reach the daemon, answers print as text or JSON', async () => {
  await withServer(async (sock, fake, dir) => {
    const m = await run(['send-message', 'bob', '--data', 'hello there', '--control-socket', sock])
    assert.equal(m.code, 0, m.stderr)
    assert.equal(m.stdout, 'sent 11 bytes (text) to 0:0000.0000.002B: ACK TEXT 11 bytes\n')
    const j = await run(['send-message', 'bob', '--data', '{"a":1}', '--type', 'json', '--json', '--control-socket', sock])
    assert.deepEqual(JSON.parse(j.stdout), { target: '0:0000.0000.002B', type: 'json', bytes: 7, ack: 'ACK JSON 7 bytes' })
    const badJson = await run(['send-message', 'bob', '--data', '{nope', '--type', 'json', '--control-socket', sock])
    assert.equal(badJson.code, 2)
    assert.match(badJson.stderr, /PT_CLI_USAGE/)
    const full = await run(['send-message', 'full', '--data', 'x', '--json', '--control-socket', sock])
    assert.equal(full.code, 1)
    assert.equal(JSON.parse(full.stdout).error.code, 'PT_SERVICE_REFUSED')
    // A relative path is made absolute by the CLI (the daemon has another working directory).
    const f = await run(['send-file', 'bob', 'some/file.txt', '--control-socket', sock], dir)
    assert.equal(f.code, 0, f.stderr)
    assert.match(f.stdout, /^sent f\.txt \(12 B\) to 0:0000\.0000\.002B: ACK FILE 12 bytes/)
    const p = await run(['publish', 'bob', 'news', '--data', 'hi', '--control-socket', sock])
    assert.equal(p.stdout, 'published 2 bytes on "news" at 0:0000.0000.002B\n')
    assert.deepEqual(fake.calls, [
      ['sendMessage', 'bob', 'text', 'hello there'],
      ['sendMessage', 'bob', 'json', '{"a":1}'],
      ['sendMessage', 'full', 'text', 'x'],
      ['sendFile', 'bob', join(dir, 'some/file.txt')],
      ['publish', 'bob', 'news', 'hi'],
    ])
  })
})

test('inbox and received list and clear', async () => {
  await withServer(async (sock) => {
    const i = await run(['inbox', '--control-socket', sock])
    assert.match(i.stdout, /\[2026-12-06T06:26:43Z\] from 0:0000\.0000\.002B type=TEXT\n {4}hello/)
    assert.equal(JSON.parse((await run(['inbox', '--json', '--control-socket', sock])).stdout).total, 1)
    assert.equal((await run(['inbox', '--clear', '--control-socket', sock])).stdout, 'cleared 4 message(s)\n')
    const r = await run(['received', '--control-socket', sock])
    assert.match(r.stdout, /f-20261206-062643\.857\.txt\s+2\.0 KiB\s+2026-12-06T06:26:43Z/)
    assert.deepEqual(JSON.parse((await run(['received', '--clear', '--json', '--control-socket', sock])).stdout), { cleared: 1 })
  })
})

test('subscribe streams one JSON object per line (--json) or `[topic] data` lines; --count and --timeout reach the daemon', async () => {
  await withServer(async (sock, fake) => {
    const j = await run(['subscribe', 'bob', 'news', '--count', '2', '--timeout', '5s', '--json', '--control-socket', sock])
    assert.equal(j.code, 0, j.stderr)
    assert.deepEqual(j.stdout.trim().split('\n').map((l) => JSON.parse(l)), [
      { topic: 'news', data: 'one', bytes: 3 },
      { topic: 'news', data: 'two', bytes: 3 },
    ])
    assert.deepEqual(fake.calls.at(-1), ['subscribe', 'bob', 'news', { count: 2, timeoutMs: 5000 }])
    const h = await run(['subscribe', 'bob', '*', '--timeout', '500ms', '--control-socket', sock])
    assert.equal(h.stdout, '[news] one\n[news] two\n')
    assert.match(h.stderr, /subscribed to "\*"/)
    const bad = await run(['subscribe', 'bob', 'x', '--timeout', 'soon', '--control-socket', sock])
    assert.equal(bad.code, 2)
  })
})

test('events.subscribe: a reader that stops reading is cut off (PT_SUBSCRIBER_TOO_SLOW), the daemon\'s backlog stays bounded', async () => {
  await withServer(async (sock, fake) => {
    let reason: unknown = null
    let emitted = 0
    fake.subscribeImpl = async (_o, onEvent, signal) => {
      const big = 'x'.repeat(30_000)
      while (!signal.aborted && emitted < 10_000) {
        onEvent({ topic: 't', data: big, bytes: big.length })
        emitted++
        await new Promise((r) => setImmediate(r))
      }
      reason = signal.reason
    }
    const raw = createConnection({ path: sock })
    await new Promise((r) => raw.once('connect', r))
    raw.pause() // never reads
    raw.write(encodeControlMessage({ id: 1, method: 'events.subscribe', params: { target: 'bob', topic: 't' } }))
    const deadline = Date.now() + 15_000
    while (reason === null && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20))
    raw.destroy()
    assert.ok(reason instanceof ServiceError, `aborted with ${String(reason)} after ${emitted} events`)
    assert.equal(reason.code, 'PT_SUBSCRIBER_TOO_SLOW')
    assert.ok(emitted < 10_000, 'cut off long before the end')
  })
})

test('events.subscribe: the client going away ends the subscription; a fast client gets every event then the answer', async () => {
  await withServer(async (sock, fake) => {
    let aborted = false
    fake.subscribeImpl = async (_o, onEvent, signal) => {
      onEvent({ topic: 't', data: 'first', bytes: 5 })
      await new Promise<void>((r) => signal.addEventListener('abort', () => r(), { once: true }))
      aborted = true
    }
    const client = await ControlClient.connect(sock)
    const events: unknown[] = []
    const answer = client.stream('events.subscribe', { target: 'bob', topic: 't' }, (e) => events.push(e), 10_000)
    answer.catch(() => {})
    while (events.length === 0) await new Promise((r) => setTimeout(r, 10))
    assert.deepEqual(events, [{ topic: 't', data: 'first', bytes: 5 }])
    client.close()
    const deadline = Date.now() + 5_000
    while (!aborted && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10))
    assert.ok(aborted, 'the daemon-side subscription ended')
  })
})

test('subscribe | head: a closed stdout ends the subscription quietly (exit 0) and the daemon side stops', async () => {
  await withServer(async (sock, fake) => {
    let aborted = false
    fake.subscribeImpl = async (_o, onEvent, signal) => {
      while (!signal.aborted) {
        onEvent({ topic: 't', data: 'tick', bytes: 4 })
        await new Promise((r) => setTimeout(r, 5))
      }
      aborted = true
    }
    const child = spawn(process.execPath, [bin, 'subscribe', 'bob', 't', '--json', '--control-socket', sock], { stdio: ['ignore', 'pipe', 'pipe'] })
    let stderr = ''
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d))
    const firstLine = await new Promise<string>((resolveLine) => {
      let buf = ''
      child.stdout.setEncoding('utf8').on('data', (d: string) => {
        buf += d
        if (buf.includes('\n')) resolveLine(buf.split('\n')[0]!)
      })
    })
    assert.deepEqual(JSON.parse(firstLine), { topic: 't', data: 'tick', bytes: 4 })
    child.stdout.destroy() // like `head -1` exiting
    const code = await new Promise<number | null>((r) => child.on('close', (c) => r(c)))
    assert.equal(code, 0, stderr)
    assert.doesNotMatch(stderr, /\n\s+at /)
    const deadline = Date.now() + 5_000
    while (!aborted && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10))
    assert.ok(aborted)
  })
})
