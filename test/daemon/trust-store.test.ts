// TrustStore: persistence format, atomic 0600 writes, reload, corrupt file,
// the cap on pending requests, and retried writes.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { chmod, mkdir, mkdtemp, readFile, readdir, rename, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { TrustStore } from '../../src/daemon/trust-store.js'
import { sleep, waitFor } from './helpers.js'

test('trust.json: §11.3 shape plus outgoing, mode 0600, survives a reload', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'pilot-trust-'))
  try {
    const s = await TrustStore.open(dir)
    s.addPending(7, 'hello', 'KEY7')
    s.addOutgoing(9)
    s.trust(5, 'KEY5', true)
    assert.equal(s.addPending(5, 'again', ''), 'trusted') // trusted nodes have no pending requests
    await s.flush()
    const file = JSON.parse(await readFile(join(dir, 'trust.json'), 'utf8'))
    assert.deepEqual(Object.keys(file), ['trusted', 'pending', 'outgoing'])
    assert.equal(file.trusted[0].node_id, 5)
    assert.equal(file.trusted[0].public_key, 'KEY5')
    assert.equal(file.trusted[0].mutual, true)
    assert.match(file.trusted[0].approved_at, /^\d{4}-\d\d-\d\dT/)
    assert.deepEqual(
      file.pending.map((p: { node_id: number }) => p.node_id),
      [7],
    )
    assert.equal(file.pending[0].justification, 'hello')
    assert.equal(file.outgoing[0].node_id, 9)
    assert.equal((await stat(join(dir, 'trust.json'))).mode & 0o777, 0o600)
    assert.deepEqual((await readdir(dir)).filter((f) => f.includes('.tmp-')), [])

    const again = await TrustStore.open(dir)
    assert.equal(again.isTrusted(5), true)
    assert.equal(again.pendingEntry(7)?.justification, 'hello')
    assert.equal(again.hasOutgoing(9), true)
    again.forget(5)
    again.trust(9, '', false) // outgoing 9 answered
    await again.flush()
    const third = await TrustStore.open(dir)
    assert.equal(third.isTrusted(5), false)
    assert.equal(third.isTrusted(9), true)
    assert.equal(third.hasOutgoing(9), false)
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
})

test('a corrupt trust.json is moved aside and the table starts empty', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'pilot-trust-'))
  try {
    await writeFile(join(dir, 'trust.json'), '{not json', { mode: 0o600 })
    const s = await TrustStore.open(dir)
    assert.equal(s.listTrusted().length, 0)
    assert.ok((await readdir(dir)).some((f) => f.startsWith('trust.json.corrupt-')))
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
})

test('1,000 distinct pending requests: at most the cap is kept, in memory and in trust.json', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'pilot-trust-'))
  try {
    const s = await TrustStore.open(dir)
    for (let node = 1; node <= 1000; node++) s.addPending(node, `please ${node}`, '')
    assert.equal(s.listPending().length, 256)
    // The first ones stay (an operator may be looking at them); the flood is refused.
    assert.notEqual(s.pendingEntry(1), undefined)
    assert.equal(s.pendingEntry(1000), undefined)
    await s.flush()
    const file = JSON.parse(await readFile(join(dir, 'trust.json'), 'utf8'))
    assert.equal(file.pending.length, 256)
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
})

test('a repeated request from the same node replaces its entry instead of adding one', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'pilot-trust-'))
  try {
    const s = await TrustStore.open(dir)
    s.addPending(7, 'first', '')
    s.addPending(7, 'second', 'KEY7')
    assert.equal(s.listPending().length, 1)
    assert.equal(s.pendingEntry(7)?.justification, 'second')
    assert.equal(s.pendingEntry(7)?.public_key, 'KEY7')
    await s.flush()
    const file = JSON.parse(await readFile(join(dir, 'trust.json'), 'utf8'))
    assert.deepEqual(
      file.pending.map((p: { node_id: number; justification: string }) => [p.node_id, p.justification]),
      [[7, 'second']],
    )
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
})

test('a failed write is retried and the change reaches the file once the directory is writable again', async () => {
  const root = await mkdtemp(join(tmpdir(), 'pilot-trust-'))
  const dir = join(root, 'state')
  try {
    await mkdir(dir, { mode: 0o700 })
    const s = await TrustStore.open(dir)
    s.trust(5, 'KEY5', true)
    await s.flush()
    // Make the directory unwritable. Root ignores mode bits, so as root the
    // directory is swapped for a plain file (mkdir/open fail with EEXIST/ENOTDIR).
    const asRoot = process.getuid?.() === 0
    const aside = join(root, 'state-aside')
    if (asRoot) {
      await rename(dir, aside)
      await writeFile(dir, 'not a directory')
    } else {
      await chmod(dir, 0o500)
    }
    s.trust(6, 'KEY6', true)
    await sleep(300) // the first attempt fails; the store keeps the change
    assert.equal(s.isTrusted(6), true, 'memory stays authoritative')
    assert.ok(s.writeFailures >= 1)
    assert.match(s.unsavedReason ?? '', /cannot write/, 'status says the table is unsaved')
    if (asRoot) {
      await rm(dir)
      await rename(aside, dir)
    } else {
      await chmod(dir, 0o700)
    }
    await waitFor(async () => {
      try {
        const file = JSON.parse(await readFile(join(dir, 'trust.json'), 'utf8'))
        return file.trusted.some((t: { node_id: number }) => t.node_id === 6)
      } catch {
        return false
      }
    }, 'node 6 in trust.json after the directory is writable again', 8_000)
    await s.flush()
    assert.equal(s.unsavedReason, null)
  } finally {
    await chmod(dir, 0o700).catch(() => {})
    await rm(root, { recursive: true, force: true })
  }
})

test('retries back off (doubling), every change made meanwhile is in the next write, close() stops retrying', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'pilot-trust-'))
  try {
    const attempts: number[] = []
    let failing = 3
    let last = ''
    const s = await TrustStore.open(dir, undefined, {
      retryMinMs: 20,
      retryMaxMs: 1_000,
      write: async (_path, text) => {
        attempts.push(performance.now())
        if (failing-- > 0) throw Object.assign(new Error('read-only file system'), { code: 'EROFS' })
        last = text
      },
    })
    s.trust(5, 'KEY5', true)
    s.addOutgoing(9) // while the first write fails or waits: written with the retry
    await waitFor(() => last !== '', 'the fourth attempt succeeds', 3_000)
    assert.equal(attempts.length, 4)
    const gaps = attempts.slice(1).map((t, i) => t - attempts[i]!)
    assert.ok(gaps[1]! >= 35 && gaps[2]! >= 75, `back-off doubles: ${gaps.map((g) => g.toFixed(0)).join(', ')} ms`)
    const file = JSON.parse(last)
    assert.deepEqual([file.trusted[0].node_id, file.outgoing[0].node_id], [5, 9])
    assert.equal(s.unsavedReason, null)

    // A store that can never write: close() makes one last attempt, logs, and leaves no timer behind.
    const broken = await TrustStore.open(dir, undefined, { retryMinMs: 10_000, write: async () => Promise.reject(new Error('EIO')) })
    broken.trust(6, '', true)
    await broken.flush()
    assert.match(broken.unsavedReason ?? '', /EIO/)
    await broken.close()
    assert.equal(broken.writeFailures, 2, 'one failure, then the last attempt at close')
    assert.equal((broken as unknown as { retryTimer: unknown }).retryTimer, null, 'no retry left scheduled')
    broken.trust(7, '', true) // after close: kept in memory, no write started
    await broken.flush()
    assert.equal(broken.writeFailures, 2)
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
})
