// `pilot-tun secure send|listen` through the real launcher against a control
// server in this process with a fake `SecureControl`: parameters reach the
// daemon, answers print as text or JSON, listen streams one line per message,
// usage errors are PT_CLI_USAGE, service errors keep their PT_SECURE_* code.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ControlServer } from '../../src/daemon/control/server.js'
import { SecureError, SecureErrorCode } from '../../src/services/secure/errors.js'
import type { SecureControl, SecureListenOptions, SecureMessageEvent, SecureSendOptions } from '../../src/services/secure/secure-service.js'
import { runCli } from './run-cli.js'
import { FakeDaemon } from '../daemon/fake-daemon.js'

class FakeSecure implements SecureControl {
  calls: unknown[] = []
  async send(target: string, data: Buffer, options: SecureSendOptions) {
    this.calls.push(['send', target, data.toString(), options])
    if (target === 'silent') throw new SecureError(SecureErrorCode.NO_ANSWER, 'no answer from 0:0000.0000.0009 port 443 within 10 ms', { hint: 'try --kdf legacy' })
    return { target: '0:0000.0000.002B', port: options.port, kdf: options.kdf, sent_bytes: data.length, replies: [`echo: ${data.toString()}`, 'second'], reply_bytes: 20, peer_closed: false }
  }
  async listen(options: SecureListenOptions, onMessage: (e: SecureMessageEvent) => void) {
    this.calls.push(['listen', options])
    onMessage({ from: '0:0000.0000.0002', channel: 1, kdf: 'legacy', data: 'one', bytes: 3 })
    onMessage({ from: '0:0000.0000.0003', channel: 2, kdf: 'hkdf', data: 'two', bytes: 3 })
    return { port: options.port, channels: 2, messages: 2, refused: 1, timeout: true }
  }
}

async function withServer(fn: (sock: string, fake: FakeSecure) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'pt-secure-cli-'))
  const sock = join(dir, 'control.sock')
  const fake = new FakeSecure()
  const server = new ControlServer({ path: sock, control: new FakeDaemon(), secure: () => fake })
  await server.listen()
  try {
    await fn(sock, fake)
  } finally {
    await server.close()
    rmSync(dir, { recursive: true, force: true })
  }
}

test('secure send: the message, port, kdf, replies and timeout reach the daemon; answers print one per line or as JSON', async () => {
  await withServer(async (sock, fake) => {
    const t = await runCli(['secure', 'send', 'bob', 'hello', '--control-socket', sock])
    assert.equal(t.code, 0, t.stderr)
    assert.equal(t.stdout, 'echo: hello\nsecond\n')
    const j = await runCli(['secure', 'send', 'bob', 'hi', '--kdf', 'hkdf', '--port', '8443', '--replies', '2', '--timeout', '3s', '--json', '--control-socket', sock])
    assert.equal(j.code, 0, j.stderr)
    assert.equal(JSON.parse(j.stdout).kdf, 'hkdf')
    // No message: stdin (here empty).
    const s = await runCli(['secure', 'send', 'bob', '--replies', '0', '--control-socket', sock])
    assert.equal(s.code, 0, s.stderr)
    assert.deepEqual(fake.calls, [
      ['send', 'bob', 'hello', { port: 443, kdf: 'legacy', replies: 1, timeoutMs: 10_000 }],
      ['send', 'bob', 'hi', { port: 8443, kdf: 'hkdf', replies: 2, timeoutMs: 3_000 }],
      ['send', 'bob', '', { port: 443, kdf: 'legacy', replies: 0, timeoutMs: 10_000 }],
    ])
    const silent = await runCli(['secure', 'send', 'silent', 'x', '--json', '--control-socket', sock])
    assert.equal(silent.code, 1)
    assert.deepEqual(JSON.parse(silent.stdout).error, { code: 'PT_SECURE_NO_ANSWER', message: 'no answer from 0:0000.0000.0009 port 443 within 10 ms', hint: 'try --kdf legacy' })
    for (const bad of [['--port', '0'], ['--replies', '-1'], ['--timeout', 'soon'], ['--kdf', 'md5']]) {
      const r = await runCli(['secure', 'send', 'bob', 'x', ...bad, '--control-socket', sock])
      assert.notEqual(r.code, 0, bad.join(' '))
    }
    assert.equal(fake.calls.length, 4, 'no bad invocation reached the daemon')
  })
})

test('secure listen: one line per message (`[from] data` or JSON), the summary last; options reach the daemon', async () => {
  await withServer(async (sock, fake) => {
    const h = await runCli(['secure', 'listen', '--count', '2', '--control-socket', sock])
    assert.equal(h.code, 0, h.stderr)
    assert.equal(h.stdout, '[0:0000.0000.0002] one\n[0:0000.0000.0003] two\n')
    assert.match(h.stderr, /listening on port 443 \(echo\)/)
    assert.match(h.stderr, /2 messages on 2 channels, 1 refused \(timeout\)/)
    const j = await runCli(['secure', 'listen', '--no-echo', '--kdf', 'hkdf', '--port', '4430', '--timeout', '2s', '--json', '--control-socket', sock])
    const lines = j.stdout.trim().split('\n').map((l) => JSON.parse(l))
    assert.deepEqual(lines[1], { from: '0:0000.0000.0003', channel: 2, kdf: 'hkdf', data: 'two', bytes: 3 })
    assert.deepEqual(lines[2], { port: 4430, channels: 2, messages: 2, refused: 1, timeout: true })
    assert.deepEqual(fake.calls, [
      ['listen', { port: 443, echo: true, kdf: 'auto', count: 2, timeoutMs: 0 }],
      ['listen', { port: 4430, echo: false, kdf: 'hkdf', count: 0, timeoutMs: 2_000 }],
    ])
  })
})
