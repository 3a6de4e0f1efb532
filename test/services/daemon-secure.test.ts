// The port-443 secure channel between whole daemons (in-process World,
// memory network): a secure echo both derivations, messages reported to the
// listener, untrusted nodes refused, one listener per port, count/timeout/abort.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import type { Daemon } from '../../src/daemon/daemon.js'
import type { SecureMessageEvent } from '../../src/services/secure/secure-service.js'
import { secureClient } from '../../src/services/secure/secure-stream.js'
import { World } from '../daemon/world.js'
import { codeOf, waitFor } from '../daemon/helpers.js'

function addr(node: number): string {
  const hex = (n: number): string => n.toString(16).toUpperCase().padStart(4, '0')
  return `0:0000.${hex(node >>> 16)}.${hex(node & 0xffff)}`
}

async function trustPair(a: Daemon, b: Daemon): Promise<void> {
  await a.trustRequest(addr(b.nodeId), 'test')
  await waitFor(async () => (await a.trustList()).trusted.some((t) => t.node_id === b.nodeId), 'a trusts b', 8_000)
  await waitFor(async () => (await b.trustList()).trusted.some((t) => t.node_id === a.nodeId), 'b trusts a', 8_000)
}

const SEND = { port: 443, kdf: 'legacy' as const, replies: 1, timeoutMs: 5_000 }
const LISTEN = { port: 443, echo: true, kdf: 'auto' as const, count: 0, timeoutMs: 0 }

test('secure echo between two daemons: legacy and hkdf, the listener sees each message; strangers are refused', async () => {
  const w = await World.create({ memory: true })
  try {
    const a = await w.daemon('a', { hostname: 'alpha' })
    const b = await w.daemon('b', { autoAccept: true, hostname: 'beta' })
    const c = await w.daemon('c')
    await trustPair(a, b)
    const events: SecureMessageEvent[] = []
    const stop = new AbortController()
    const listening = b.secure.listen(LISTEN, (e) => events.push(e), stop.signal)
    const legacy = await a.secure.send('beta', Buffer.from('over the legacy key'), SEND)
    assert.deepEqual(legacy.replies, ['over the legacy key'])
    assert.equal(legacy.target, addr(b.nodeId))
    const hkdf = await a.secure.send(addr(b.nodeId), Buffer.from('over the hkdf key'), { ...SEND, kdf: 'hkdf' })
    assert.deepEqual(hkdf.replies, ['over the hkdf key'])
    // A larger message: several frames out, and the echo brings them all back.
    const big = Buffer.alloc(200_000, 0x61)
    const bigReply = await a.secure.send('beta', big, { ...SEND, replies: 4 })
    assert.equal(bigReply.reply_bytes, big.length)
    // c is not trusted by b: its SYN to 443 is refused like on any port.
    assert.equal(await codeOf(c.secure.send(addr(b.nodeId), Buffer.from('stranger'), SEND)), 'PT_TRUST_REQUIRED')
    // Only one listener per port.
    assert.equal(await codeOf(b.secure.listen(LISTEN, () => {}, new AbortController().signal)), 'PT_SECURE_PORT_IN_USE')
    stop.abort()
    const r = await listening
    assert.equal(r.channels, 3)
    assert.equal(r.refused, 0)
    assert.deepEqual(events.slice(0, 2).map((e) => [e.from, e.channel, e.kdf, e.data]), [
      [addr(a.nodeId), 1, 'legacy', 'over the legacy key'],
      [addr(a.nodeId), 2, 'hkdf', 'over the hkdf key'],
    ])
    assert.equal(events.slice(2).reduce((n, e) => n + e.bytes, 0), big.length)
    // The port is free again: nothing answers there now.
    assert.equal(await codeOf(a.secure.send('beta', Buffer.from('late'), SEND)), 'PT_CONNECTION_REFUSED')
  } finally {
    await w.close()
  }
})

test('secure listen: --count and --timeout end it; a listener that insists on hkdf refuses a legacy client; --no-echo only reports', async () => {
  const w = await World.create({ memory: true })
  try {
    const a = await w.daemon('a')
    const b = await w.daemon('b', { autoAccept: true })
    await trustPair(a, b)
    const never = new AbortController().signal
    const seen: string[] = []
    const counted = b.secure.listen({ ...LISTEN, port: 4430, echo: false, count: 2 }, (e) => seen.push(e.data), never)
    // No echo: the sender waits for nothing (--replies 0) and the message still arrives.
    await a.secure.send(addr(b.nodeId), Buffer.from('one'), { ...SEND, port: 4430, replies: 0 })
    await a.secure.send(addr(b.nodeId), Buffer.from('two'), { ...SEND, port: 4430, replies: 0 })
    assert.deepEqual(await counted, { port: 4430, channels: 2, messages: 2, refused: 0, timeout: false })
    assert.deepEqual(seen, ['one', 'two'])

    const strict = b.secure.listen({ ...LISTEN, kdf: 'hkdf', timeoutMs: 3_000 }, () => {}, never)
    assert.equal(await codeOf(a.secure.send(addr(b.nodeId), Buffer.from('legacy'), { ...SEND, timeoutMs: 2_000 })), 'PT_SECURE_NO_ANSWER')
    const r = await strict
    assert.equal(r.timeout, true)
    assert.equal(r.messages, 0)
    assert.equal(r.refused, 1, 'the legacy frame failed authentication under the hkdf key')
  } finally {
    await w.close()
  }
})

test('a client talking to a port-443 listener over a raw daemon stream: reflected frames never reach the application', async () => {
  const w = await World.create({ memory: true })
  try {
    const a = await w.daemon('a')
    const b = await w.daemon('b', { autoAccept: true })
    await trustPair(a, b)
    // b runs a hostile "server" on 443: it swaps keys like a real one, then sends the client's own frame back.
    b.listenStreams(443, (s) => {
      let first = true
      s.on('data', (chunk: Buffer) => {
        if (first) {
          first = false
          s.write(Buffer.from(chunk.subarray(0, 32))) // answers with the client's own key: shared secret = X25519(a, A)
          return
        }
        s.write(chunk) // the reflection
      })
      s.on('error', () => {})
    })
    const inner = await a.openStream(b.nodeId, 443)
    const channel = await secureClient(inner)
    const failed = new Promise<Error>((resolve) => channel.once('error', resolve))
    const got: Buffer[] = []
    channel.on('data', (c: Buffer) => got.push(c))
    channel.write('secret question')
    const err = (await failed) as Error & { code?: string }
    assert.equal(err.code, 'PT_SECURE_REFLECTED')
    assert.equal(got.length, 0, 'the reflected frame was not delivered')
  } finally {
    await w.close()
  }
})

test('a secure channel from a node to itself goes to its own listener (in-process); without one it fails at once', async () => {
  const w = await World.create({ memory: true })
  try {
    const b = await w.daemon('b', { hostname: 'beta' })
    const started = Date.now()
    assert.equal(await codeOf(b.secure.send('beta', Buffer.from('nobody'), SEND)), 'PT_SECURE_NO_ANSWER')
    assert.ok(Date.now() - started < 2_000, 'no dial timeout to wait for')
    const events: SecureMessageEvent[] = []
    const stop = new AbortController()
    const listening = b.secure.listen(LISTEN, (e) => events.push(e), stop.signal)
    const big = Buffer.alloc(100_000, 0x62)
    const r = await b.secure.send(addr(b.nodeId), big, { ...SEND, kdf: 'hkdf', replies: 2 })
    assert.equal(r.reply_bytes, big.length)
    assert.equal(Buffer.from(r.replies.join('')).equals(big), true)
    stop.abort()
    const done = await listening
    assert.equal(done.channels, 1)
    assert.deepEqual([...new Set(events.map((e) => [e.from, e.kdf].join(' ')))], [`${addr(b.nodeId)} hkdf`])
  } finally {
    await w.close()
  }
})
