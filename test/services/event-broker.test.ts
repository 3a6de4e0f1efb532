// The event broker (port 1002) over in-memory streams: first event subscribes,
// fan-out to the topic and to `*`, no echo, local subscribers and publishers,
// slow subscribers cut off, bad framing dropped; and the remote client.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { EventDecoder, encodeEvent } from '../../src/protocol/event-frames.js'
import { EventBroker } from '../../src/services/event-broker.js'
import { publishRemote, subscribeRemote } from '../../src/services/event-client.js'
import type { ServiceStream } from '../../src/services/service-stream.js'
import { streamPair, until } from './helpers.js'

const EMPTY = Buffer.alloc(0)

/** A remote client on `broker`: subscribes to `topic`, records the events it gets. */
function client(broker: EventBroker, node: number, topic: string): { got: string[]; send(topic: string, data: string): void; end: ServiceStream } {
  const { client: end, server } = streamPair(node)
  broker.accept(server)
  const got: string[] = []
  const dec = new EventDecoder()
  end.on('data', (c: Buffer) => {
    for (const e of dec.push(c)) got.push(`${e.topic}:${Buffer.from(e.payload).toString()}`)
  })
  end.on('error', () => {})
  end.write(encodeEvent(topic, EMPTY))
  return { got, send: (t, d) => end.write(encodeEvent(t, Buffer.from(d))), end }
}

test('publications reach the other subscribers of the topic and every `*` subscriber, never the publisher', async () => {
  const broker = new EventBroker()
  const a = client(broker, 1, 'news')
  const b = client(broker, 2, 'news')
  const all = client(broker, 3, '*')
  const other = client(broker, 4, 'sport')
  const local: string[] = []
  const unsubscribe = broker.subscribeLocal('news', (t, p) => local.push(`${t}:${Buffer.from(p).toString()}`))
  await until(() => broker.stats().subscribers === 4 + 1, 'the subscriptions')
  a.send('news', 'one')
  await until(() => b.got.length === 1 && all.got.length === 1 && local.length === 1, 'the fan-out')
  assert.deepEqual(b.got, ['news:one'])
  assert.deepEqual(a.got, [], 'no echo to the publisher')
  assert.deepEqual(other.got, [])
  // A publication on another topic than one's own subscription goes to that topic's subscribers.
  other.send('news', 'two')
  await until(() => a.got.length === 1 && b.got.length === 2, 'the second')
  // Local publish: all subscribers of the topic and `*`.
  assert.equal(broker.publish('sport', Buffer.from('goal')), 2)
  await until(() => other.got.length === 1 && all.got.length === 3, 'the local publication')
  assert.deepEqual(other.got, ['sport:goal'])
  // `*` as a publication topic goes to `*` subscribers only (once).
  b.send('*', 'star')
  await until(() => all.got.length === 4, 'the star')
  assert.equal(all.got[3], '*:star')
  unsubscribe()
  a.send('news', 'three')
  await until(() => b.got.length === 3, 'after unsubscribe')
  assert.equal(local.length, 2)
  broker.close()
})

test('a subscriber that does not read is cut off once its unsent bytes pass the bound; the others keep getting events', async () => {
  const broker = new EventBroker({ limits: { maxQueuedBytes: 64 * 1024 } })
  const slow = streamPair(1)
  broker.accept(slow.server)
  slow.client.on('error', () => {})
  slow.client.write(encodeEvent('t', EMPTY))
  const fast = client(broker, 2, 't')
  await until(() => broker.stats().subscribers === 2, 'the subscriptions')
  slow.server.stalled = true // the network stops taking its bytes
  const payload = Buffer.alloc(10 * 1024, 1)
  for (let i = 0; i < 50; i++) {
    broker.publish('t', payload)
    await new Promise((r) => setImmediate(r)) // the fast reader keeps up
  }
  assert.ok(slow.server.destroyed, 'cut off')
  assert.equal(broker.stats().cutOff, 1)
  assert.ok(slow.server.writableLength <= 64 * 1024 + 10 * 1024 + 6 + 1)
  await until(() => fast.got.length === 50, 'the fast subscriber to get all 50')
  assert.equal(broker.stats().subscribers, 1)
  broker.close()
})

test('a bad frame drops the connection; connections are bounded per node', async () => {
  const broker = new EventBroker({ limits: { maxConnectionsPerNode: 1 } })
  const bad = streamPair(1)
  broker.accept(bad.server)
  bad.client.on('error', () => {})
  bad.client.write(Buffer.from([0xff, 0xff]))
  await until(() => bad.server.destroyed, 'the drop')
  assert.equal(broker.stats().dropped, 1)
  const first = streamPair(2)
  const second = streamPair(2)
  broker.accept(first.server)
  broker.accept(second.server)
  assert.ok(second.server.destroyed)
  assert.equal(broker.stats().refused, 1)
  first.client.on('error', () => {}).destroy()
  broker.close()
})

test('remote client: publishRemote subscribes then publishes; subscribeRemote streams events until aborted', async () => {
  const broker = new EventBroker()
  let next = 10
  const opener = {
    openStream: async (): Promise<ServiceStream> => {
      const { client: c, server } = streamPair(next++)
      broker.accept(server)
      return c
    },
  }
  const events: string[] = []
  const stop = new AbortController()
  const sub = await subscribeRemote(opener, 2, 'jobs', (t, p) => events.push(`${t}:${Buffer.from(p).toString()}`), stop.signal)
  await until(() => broker.stats().subscribers === 1, 'the remote subscription')
  await publishRemote(opener, 2, 'jobs', Buffer.from('build 1'))
  await publishRemote(opener, 2, 'jobs', Buffer.from('build 2'))
  await until(() => events.length === 2, 'both events')
  assert.deepEqual(events, ['jobs:build 1', 'jobs:build 2'])
  stop.abort()
  assert.equal(await sub.done, 'aborted')
  broker.close()
})

test('partial events held by all connections together are bounded: the connection that passes the bound is dropped', async () => {
  const broker = new EventBroker({ limits: { maxHeldBytes: 1000 } })
  const a = client(broker, 1, 't')
  const b = client(broker, 2, 't')
  await until(() => broker.stats().subscribers === 2, 'the subscriptions')
  const partial = encodeEvent('t', Buffer.alloc(800)).subarray(0, 600)
  a.end.write(partial)
  await until(() => broker.held === 600, 'the first partial event held')
  b.end.write(partial)
  await until(() => broker.stats().dropped === 1, 'the second connection dropped')
  assert.equal(broker.held, 600)
  assert.equal(broker.stats().subscribers, 1)
  a.end.destroy()
  await until(() => broker.held === 0 && broker.stats().connections === 0, 'everything released')
  broker.close()
})
