// The inbox: the reference's layout and JSON fields, safe file names, O_EXCL
// with unique suffixes, quotas in bytes and count, clearing, usage after reopen.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { InboxStore, sanitizeFileName } from '../../src/services/inbox-store.js'
import { PilotError } from '../../src/errors.js'

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'pt-inbox-'))
  try {
    await fn(dir)
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}

const T = new Date(Date.UTC(2026, 11, 6, 6, 26, 43, 672))

test('messages: <TYPE>-YYYYMMDD-HHMMSS.mmm.json holding bytes, data, from, received_at, type (the reference\'s fields)', async () => {
  await withDir(async (dir) => {
    const store = await InboxStore.open(dir)
    const path = await store.saveMessage('TEXT', '0:0000.0000.0001', Buffer.from('hello world'), T)
    assert.equal(path, join(dir, 'inbox', 'TEXT-20261206-062643.672.json'))
    assert.equal(await readFile(path, 'utf8'), '{"bytes":11,"data":"hello world","from":"0:0000.0000.0001","received_at":"2026-12-06T06:26:43Z","type":"TEXT"}')
    // Same millisecond: a second file, never an overwrite.
    const again = await store.saveMessage('TEXT', '0:0000.0000.0001', Buffer.from('again'), T)
    assert.equal(again, join(dir, 'inbox', 'TEXT-20261206-062643.672-2.json'))
    // Not UTF-8: data as Go would write it, plus data_base64.
    const bin = await store.saveMessage('BINARY', 'x', Buffer.from([0xff, 0x00]), T)
    assert.equal(JSON.parse(await readFile(bin, 'utf8')).data_base64, '/wA=')
    const list = await store.listMessages()
    assert.equal(list.length, 3)
    assert.ok(list.some((m) => m.data === 'hello world' && m.type === 'TEXT'))
    assert.equal(await store.clearMessages(), 3)
    assert.deepEqual(await store.listMessages(), [])
  })
})

test('file names from the network never leave received/ and never replace a file', async () => {
  const cases: Array<[string, string]> = [
    ['../../etc/passwd', 'passwd'],
    ['/etc/shadow', 'shadow'],
    ['..\\..\\win.ini', 'win.ini'],
    ['a\u0000b.txt', 'ab.txt'],
    ['line\nbreak\r.txt', 'linebreak.txt'],
    ['.', 'file'],
    ['..', 'file'],
    ['', 'file'],
    ['dir/', 'file'],
    ['.hidden', 'hidden'],
    ['\u001b[31mred', '[31mred'],
  ]
  for (const [input, want] of cases) assert.equal(sanitizeFileName(input), want, JSON.stringify(input))
  assert.ok(Buffer.byteLength(sanitizeFileName('ü'.repeat(500)), 'utf8') <= 128)
  await withDir(async (dir) => {
    const store = await InboxStore.open(dir)
    const names: string[] = []
    for (const [input] of cases) names.push(await store.saveFile(input, Buffer.from(input), T))
    names.push(await store.saveFile('x'.repeat(5000) + '.txt', Buffer.from('long'), T))
    names.push(await store.saveFile('../../etc/passwd', Buffer.from('second'), T))
    const onDisk = await readdir(join(dir, 'received'))
    assert.equal(onDisk.length, names.length, 'every save is its own file')
    assert.deepEqual(new Set(onDisk), new Set(names))
    assert.ok(names.includes('passwd-20261206-062643.672'))
    assert.ok(names.includes('passwd-20261206-062643.672-2'))
    assert.ok(names.includes('win-20261206-062643.672.ini'))
    assert.ok(onDisk.every((n) => !n.includes('/') && !n.startsWith('.') && Buffer.byteLength(n) < 200))
    assert.deepEqual((await readdir(dir)).sort(), ['inbox', 'received'], 'nothing written beside the two directories')
    const files = await store.listFiles()
    assert.equal(files.length, names.length)
    assert.equal(files[0]!.path, join(dir, 'received', files[0]!.name))
    assert.equal(await store.clearFiles(), names.length)
  })
})

test('quota: over the count or the bytes a save is refused with PT_INBOX_FULL and nothing is written; clearing frees it', async () => {
  await withDir(async (dir) => {
    const store = await InboxStore.open(dir, { maxCount: 3, maxBytes: 10_000 })
    for (let i = 0; i < 3; i++) await store.saveMessage('TEXT', 'x', Buffer.from(`m${i}`))
    await assert.rejects(store.saveMessage('TEXT', 'x', Buffer.from('one more')), (e: unknown) => e instanceof PilotError && e.code === 'PT_INBOX_FULL')
    await assert.rejects(store.saveFile('f', Buffer.alloc(1)), (e: unknown) => e instanceof PilotError && e.code === 'PT_INBOX_FULL')
    assert.equal((await readdir(join(dir, 'inbox'))).length, 3)
    await store.clearMessages()
    assert.equal(store.usage().count, 0)
    await assert.rejects(store.saveFile('big', Buffer.alloc(10_001)), (e: unknown) => e instanceof PilotError && e.code === 'PT_INBOX_FULL')
    assert.deepEqual(await readdir(join(dir, 'received')), [])
    await store.saveFile('fits', Buffer.alloc(9_000))
    await assert.rejects(store.saveFile('over', Buffer.alloc(2_000)), (e: unknown) => e instanceof PilotError && e.code === 'PT_INBOX_FULL')
  })
})

test('quota: concurrent saves cannot overshoot, and usage is counted again after a restart', async () => {
  await withDir(async (dir) => {
    const store = await InboxStore.open(dir, { maxCount: 5 })
    const results = await Promise.allSettled(Array.from({ length: 20 }, (_, i) => store.saveFile(`f${i}`, Buffer.alloc(10))))
    assert.equal(results.filter((r) => r.status === 'fulfilled').length, 5)
    await writeFile(join(dir, 'inbox', 'foreign.json'), 'x'.repeat(100))
    const reopened = await InboxStore.open(dir, { maxCount: 100 })
    assert.deepEqual({ count: reopened.usage().count, bytes: reopened.usage().bytes }, { count: 6, bytes: 150 })
  })
})
