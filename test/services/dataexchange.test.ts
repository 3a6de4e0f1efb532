// The data exchange service (port 1001) over in-memory streams: frames in,
// ACK/ERR TEXT frames out in order, the inbox filled, oversize dropped, quota
// answered with ERR, connection bounds; and the client `sendDataFrame`.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, readdir, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DataExchangeDecoder, DxType, encodeDxFile, encodeDxFrame } from '../../src/protocol/dataexchange-frames.js'
import { DataExchangeService, sendDataFrame } from '../../src/services/dataexchange.js'
import { InboxStore, type InboxQuota } from '../../src/services/inbox-store.js'
import type { ServiceStream } from '../../src/services/service-stream.js'
import { collect, streamPair, until } from './helpers.js'

async function withService(fn: (svc: DataExchangeService, dir: string) => Promise<void>, quota: Partial<InboxQuota> = {}, limits = {}): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'pt-dx-'))
  try {
    await fn(new DataExchangeService(await InboxStore.open(dir, quota), { limits }), dir)
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}

function answers(bytes: Buffer): string[] {
  return new DataExchangeDecoder().push(bytes).map((f) => Buffer.from(f.data).toString('utf8'))
}

test('several frames on one connection: each stored, each answered in order with the reference\'s ACK text', async () => {
  await withService(async (svc, dir) => {
    const { client, server } = streamPair(5)
    svc.accept(server)
    const got = collect(client)
    client.write(
      Buffer.concat([
        encodeDxFrame(DxType.TEXT, Buffer.from('hello world')),
        encodeDxFrame(DxType.JSON, Buffer.from('{"a":1}')),
        encodeDxFile('../notes.txt', Buffer.from('file body')),
        encodeDxFrame(9, Buffer.from('odd')),
      ]),
    )
    client.end()
    const bytes = await got.done
    assert.deepEqual(answers(bytes), ['ACK TEXT 11 bytes', 'ACK JSON 7 bytes', 'ACK FILE 9 bytes', 'ACK UNKNOWN(9) 3 bytes'])
    // Other types are acknowledged but not kept (as the reference does).
    const inbox = await readdir(join(dir, 'inbox'))
    assert.equal(inbox.length, 2)
    assert.ok(!inbox.some((n) => n.startsWith('UNKNOWN')))
    const received = await readdir(join(dir, 'received'))
    assert.equal(received.length, 1)
    assert.match(received[0]!, /^notes-\d{8}-\d{6}\.\d{3}\.txt$/)
    const msgs = await svc.store.listMessages()
    assert.ok(msgs.every((m) => m.from === '0:0000.0000.0005'))
    assert.equal(svc.stats().acked, 4)
  })
})

test('over the quota the answer is ERR <TYPE> save failed: <reason>, and the connection goes on', async () => {
  await withService(
    async (svc) => {
      const { client, server } = streamPair()
      svc.accept(server)
      const got = collect(client)
      client.write(Buffer.concat([encodeDxFrame(DxType.TEXT, Buffer.from('one')), encodeDxFrame(DxType.TEXT, Buffer.from('two')), encodeDxFile('f', Buffer.from('x'))]))
      client.end()
      const a = answers(await got.done)
      assert.equal(a.length, 3)
      assert.equal(a[0], 'ACK TEXT 3 bytes')
      assert.match(a[1]!, /^ERR TEXT save failed: inbox full/)
      assert.match(a[2]!, /^ERR FILE save failed: inbox full/)
    },
    { maxCount: 1 },
  )
})

test('an announced length over 16 MiB drops the connection; nothing is stored', async () => {
  await withService(async (svc, dir) => {
    const { client, server } = streamPair()
    svc.accept(server)
    const closed = new Promise<void>((r) => server.once('close', () => r()))
    client.on('error', () => {})
    const header = Buffer.alloc(8)
    header.writeUInt32BE(DxType.TEXT, 0)
    header.writeUInt32BE(16 * 1024 * 1024 + 1, 4)
    client.write(header)
    await closed
    assert.equal(svc.stats().dropped, 1)
    assert.deepEqual(await readdir(join(dir, 'inbox')), [])
  })
})

test('connections are bounded per node and in all: more are reset at once', async () => {
  await withService(
    async (svc) => {
      const ends = [streamPair(1), streamPair(1), streamPair(1)]
      for (const { server } of ends) svc.accept(server)
      await until(() => ends[2]!.server.destroyed, 'the third stream from node 1 to be reset')
      assert.equal(ends[0]!.server.destroyed, false)
      const other = streamPair(2)
      svc.accept(other.server)
      assert.equal(other.server.destroyed, false)
      assert.equal(svc.stats().refused, 1)
      for (const { client } of ends) client.on('error', () => {}).destroy()
      other.client.on('error', () => {}).destroy()
    },
    {},
    { maxConnectionsPerNode: 2, maxConnections: 3 },
  )
})

test('sendDataFrame: one frame out, the answer text back; a silent peer is PT_SERVICE_NO_ANSWER', async () => {
  await withService(async (svc) => {
    const opener = {
      openStream: async (): Promise<ServiceStream> => {
        const { client, server } = streamPair(1, 2)
        svc.accept(server)
        return client
      },
    }
    assert.equal(await sendDataFrame(opener, 2, encodeDxFrame(DxType.TEXT, Buffer.from('hey'))), 'ACK TEXT 3 bytes')
    const silent = {
      openStream: async (): Promise<ServiceStream> => {
        const { client, server } = streamPair(1, 2)
        server.resume()
        return client
      },
    }
    await assert.rejects(sendDataFrame(silent, 2, encodeDxFrame(DxType.TEXT, Buffer.from('hey')), 200), (e: unknown) => (e as { code?: string }).code === 'PT_SERVICE_NO_ANSWER')
    const closing = {
      openStream: async (): Promise<ServiceStream> => {
        const { client, server } = streamPair(1, 2)
        server.resume()
        server.end()
        return client
      },
    }
    await assert.rejects(sendDataFrame(closing, 2, encodeDxFrame(DxType.TEXT, Buffer.from('hey'))), (e: unknown) => (e as { code?: string }).code === 'PT_SERVICE_NO_ANSWER')
  })
})

test('partial frames held by all connections together are bounded: the connection that passes the bound is dropped', async () => {
  await withService(
    async (svc) => {
      const partial = (n: number): Buffer => encodeDxFrame(DxType.BINARY, Buffer.alloc(800)).subarray(0, 8 + n)
      const one = streamPair(1)
      const two = streamPair(2)
      svc.accept(one.server)
      svc.accept(two.server)
      one.client.write(partial(600))
      await until(() => svc.held === 608, 'the first partial frame held')
      two.client.write(partial(600))
      await until(() => two.server.destroyed, 'the second connection dropped')
      assert.equal(one.server.destroyed, false)
      assert.equal(svc.stats().dropped, 1)
      assert.equal(svc.held, 608)
      // The first completes normally and is answered; then nothing is held.
      const got = collect(one.client)
      one.client.write(encodeDxFrame(DxType.BINARY, Buffer.alloc(800)).subarray(608))
      one.client.end()
      assert.deepEqual(answers(await got.done), ['ACK BINARY 800 bytes'])
      await until(() => svc.held === 0, 'nothing held')
    },
    {},
    { maxHeldBytes: 1000 },
  )
})
