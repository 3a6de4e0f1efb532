// The data services inside whole daemons (in-process World, memory network):
// trusted nodes exchange messages, files and events; untrusted nodes are
// refused; the services can be switched off (port not listened: the SYN goes
// to the default handler, as the TUN would get it); local publish/subscribe.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { Daemon } from '../../src/daemon/daemon.js'
import type { StreamedEvent } from '../../src/services/api.js'
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

test('trusted daemons: send-message and send-file land in the inbox with the ACK text; untrusted ones are refused', async () => {
  const w = await World.create({ memory: true })
  try {
    const a = await w.daemon('a', { hostname: 'alpha' })
    const b = await w.daemon('b', { autoAccept: true, hostname: 'beta' })
    const c = await w.daemon('c')
    // No trust yet: the SYN to 1001 is refused (private by default).
    assert.equal(await codeOf(a.services.sendMessage(addr(b.nodeId), 'text', 'too early')), 'PT_TRUST_REQUIRED')
    assert.equal((await b.services.inboxList()).total, 0)
    await trustPair(a, b)
    const sent = await a.services.sendMessage('beta', 'text', 'hello beta')
    assert.deepEqual(sent, { target: addr(b.nodeId), type: 'text', bytes: 10, ack: 'ACK TEXT 10 bytes' })
    const path = join(w.dir, 'payload.bin')
    await writeFile(path, Buffer.alloc(100_000, 5))
    const file = await a.services.sendFile(addr(b.nodeId), path)
    assert.equal(file.ack, 'ACK FILE 100000 bytes')
    const inbox = await b.services.inboxList()
    assert.equal(inbox.total, 1)
    assert.deepEqual({ ...inbox.messages[0], received_at: '' }, { bytes: 10, data: 'hello beta', from: addr(a.nodeId), received_at: '', type: 'TEXT' })
    assert.equal(inbox.dir, join(w.dir, 'b', 'inbox'))
    const files = await b.services.receivedList()
    assert.equal(files.total, 1)
    assert.deepEqual(await readFile(files.files[0]!.path), Buffer.alloc(100_000, 5))
    // A node b does not trust gets an RST on 1001 even though b listens there.
    assert.equal(await codeOf(c.services.sendMessage(addr(b.nodeId), 'text', 'stranger')), 'PT_TRUST_REQUIRED')
    assert.equal((await b.services.inboxList()).total, 1)
    // A message to ourselves lands in our own inbox.
    assert.equal((await b.services.sendMessage(addr(b.nodeId), 'json', '{"self":true}')).ack, 'ACK JSON 13 bytes')
    assert.equal((await b.services.inboxClear()).cleared, 2)
    assert.equal((await b.services.receivedClear()).cleared, 1)
    assert.equal(await codeOf(a.services.sendFile(addr(b.nodeId), join(w.dir, 'missing'))), 'PT_SERVICE_FILE')
  } finally {
    await w.close()
  }
})

test('events across daemons: a subscribes at b\'s broker, b publishes locally and a publishes remotely; count and timeout end it', async () => {
  const w = await World.create({ memory: true })
  try {
    const a = await w.daemon('a')
    const b = await w.daemon('b', { autoAccept: true })
    await trustPair(a, b)
    const remoteEvents: StreamedEvent[] = []
    const localEvents: StreamedEvent[] = []
    const never = new AbortController().signal
    const remote = a.services.subscribe(addr(b.nodeId), 'news', { count: 2, timeoutMs: 10_000 }, (e) => remoteEvents.push(e), never)
    const local = b.services.subscribe(addr(b.nodeId), '*', { count: 2, timeoutMs: 10_000 }, (e) => localEvents.push(e), never)
    await waitFor(() => b.services.broker!.stats().subscribers === 2, 'both subscriptions at b', 5_000)
    assert.equal((await b.services.publish(addr(b.nodeId), 'news', 'local one')).delivered, 2)
    await a.services.publish(addr(b.nodeId), 'news', 'remote two')
    const [r, l] = await Promise.all([remote, local])
    assert.deepEqual(r, { target: addr(b.nodeId), topic: 'news', events: 2, timeout: false })
    assert.equal(l.events, 2)
    assert.deepEqual(remoteEvents.map((e) => e.data), ['local one', 'remote two'])
    // a's publication is not echoed to a's own subscription connection: a got it through a separate one.
    assert.deepEqual(localEvents.map((e) => e.data), ['local one', 'remote two'])
    const quiet = await a.services.subscribe(addr(b.nodeId), 'silence', { count: 0, timeoutMs: 300 }, () => {}, never)
    assert.equal(quiet.timeout, true)
    assert.equal(quiet.events, 0)
    // An aborted subscription (the CLI went away) ends and leaves no subscriber behind.
    const stop = new AbortController()
    const open = a.services.subscribe(addr(b.nodeId), 'x', { count: 0, timeoutMs: 0 }, () => {}, stop.signal)
    await waitFor(() => b.services.broker!.stats().subscribers === 1, 'the open subscription', 5_000)
    stop.abort()
    assert.equal((await open).events, 0)
    await waitFor(() => b.services.broker!.stats().subscribers === 0, 'the subscriber gone at b', 5_000)
  } finally {
    await w.close()
  }
})

test('services switched off: ports 1001/1002 are not listened (a SYN there reaches the default handler, as the TUN would get it)', async () => {
  const w = await World.create({ memory: true })
  try {
    const a = await w.daemon('a')
    const b = await w.daemon('b', { autoAccept: true, dataExchange: false, eventStream: false })
    await trustPair(a, b)
    const seen: number[] = []
    b.setDefaultStreamHandler((inc) => {
      seen.push(inc.localPort)
      inc.refuse()
    })
    assert.equal(await codeOf(a.services.sendMessage(addr(b.nodeId), 'text', 'x')), 'PT_CONNECTION_REFUSED')
    assert.equal(await codeOf(a.services.publish(addr(b.nodeId), 't', 'x')), 'PT_CONNECTION_REFUSED')
    assert.deepEqual(seen.sort(), [1001, 1002])
    assert.equal(b.services.dataExchange, null)
    assert.equal(await codeOf(b.services.sendMessage(addr(b.nodeId), 'text', 'x')), 'PT_SERVICE_DISABLED')
    assert.equal(await codeOf(b.services.subscribe(addr(b.nodeId), 't', { count: 1, timeoutMs: 100 }, () => {}, new AbortController().signal)), 'PT_SERVICE_DISABLED')
    // With them on (a's default), the default handler never sees those ports.
    const seenA: number[] = []
    a.setDefaultStreamHandler((inc) => {
      seenA.push(inc.localPort)
      inc.refuse()
    })
    await b.services.publish(addr(a.nodeId), 't', 'to a')
    assert.deepEqual(seenA, [])
  } finally {
    await w.close()
  }
})
