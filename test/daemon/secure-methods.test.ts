// The control socket's secure.send / secure.listen: parameters checked and
// defaulted before the secure service sees them, messages in text or base64,
// listen events streamed through the connection's context.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { dispatchSecure, isSecureMethod } from '../../src/daemon/control/secure-methods.js'
import type { SecureControl, SecureListenOptions, SecureMessageEvent, SecureSendOptions } from '../../src/services/secure/secure-service.js'

function fake(): { control: SecureControl; calls: unknown[] } {
  const calls: unknown[] = []
  const control: SecureControl = {
    send: async (target: string, data: Buffer, options: SecureSendOptions) => {
      calls.push({ target, data: data.toString('hex'), options })
      return { target, port: options.port, kdf: options.kdf, sent_bytes: data.length, replies: ['ok'], reply_bytes: 2, peer_closed: false }
    },
    listen: async (options: SecureListenOptions, onMessage: (e: SecureMessageEvent) => void) => {
      calls.push({ options })
      onMessage({ from: '0:0000.0000.0002', channel: 1, kdf: 'legacy', data: 'hi', bytes: 2 })
      return { port: options.port, channels: 1, messages: 1, refused: 0, timeout: false }
    },
  }
  return { control, calls }
}

const ctx = (events: unknown[] = []) => ({ emit: (e: unknown) => events.push(e), signal: new AbortController().signal })

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p
    return 'no error'
  } catch (err) {
    return (err as { code: string }).code
  }
}

test('secure.send: defaults (port 443, legacy, 1 reply, 10 s), text or base64 data, bad parameters refused', async () => {
  assert.ok(isSecureMethod('secure.send') && isSecureMethod('secure.listen') && !isSecureMethod('secure.other'))
  const { control, calls } = fake()
  await dispatchSecure(control, 'secure.send', { target: 'bob', data: 'hi' }, ctx())
  await dispatchSecure(control, 'secure.send', { target: 'bob', data_base64: Buffer.from([0, 255]).toString('base64'), kdf: 'hkdf', port: 8443, replies: 0, timeout_ms: 500 }, ctx())
  assert.deepEqual(calls, [
    { target: 'bob', data: '6869', options: { port: 443, kdf: 'legacy', replies: 1, timeoutMs: 10_000 } },
    { target: 'bob', data: '00ff', options: { port: 8443, kdf: 'hkdf', replies: 0, timeoutMs: 500 } },
  ])
  for (const bad of [
    {},
    { target: '' },
    { target: 'bob', data: 'x', data_base64: 'eA==' },
    { target: 'bob', kdf: 'sha1' },
    { target: 'bob', port: 0 },
    { target: 'bob', port: 70000 },
    { target: 'bob', replies: -1 },
    { target: 'bob', data: 'x'.repeat(128 * 1024 + 1) },
    { target: 'bob', extra: 1 },
  ]) {
    assert.equal(await codeOf(dispatchSecure(control, 'secure.send', bad, ctx())), 'PT_CONTROL_BAD_REQUEST', JSON.stringify(bad).slice(0, 80))
  }
  assert.equal(calls.length, 2, 'nothing invalid reached the service')
  assert.equal(await codeOf(dispatchSecure(null, 'secure.send', { target: 'bob' }, ctx())), 'PT_DAEMON_CLOSED')
})

test('secure.listen: defaults (443, echo, auto, no count, no timeout); events go through the context', async () => {
  const { control, calls } = fake()
  const events: unknown[] = []
  const r = await dispatchSecure(control, 'secure.listen', {}, ctx(events))
  assert.deepEqual(calls, [{ options: { port: 443, echo: true, kdf: 'auto', count: 0, timeoutMs: 0 } }])
  assert.deepEqual(events, [{ from: '0:0000.0000.0002', channel: 1, kdf: 'legacy', data: 'hi', bytes: 2 }])
  assert.equal((r as { messages: number }).messages, 1)
  await dispatchSecure(control, 'secure.listen', { port: 4430, echo: false, kdf: 'hkdf', count: 3, timeout_ms: 1000 }, ctx())
  assert.deepEqual(calls[1], { options: { port: 4430, echo: false, kdf: 'hkdf', count: 3, timeoutMs: 1000 } })
  for (const bad of [{ echo: 'yes' }, { kdf: 'none' }, { count: 1.5 }, { port: '443' }]) {
    assert.equal(await codeOf(dispatchSecure(control, 'secure.listen', bad, ctx())), 'PT_CONTROL_BAD_REQUEST')
  }
})
