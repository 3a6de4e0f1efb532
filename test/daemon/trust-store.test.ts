// TrustStore: persistence format, atomic 0600 writes, reload, corrupt file.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { TrustStore } from '../../src/daemon/trust-store.js'

test('trust.json: §11.3 shape plus outgoing, mode 0600, survives a reload', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'pilot-trust-'))
  try {
    const s = await TrustStore.open(dir)
    s.addPending(7, 'hello', 'KEY7')
    s.addOutgoing(9)
    s.trust(5, 'KEY5', true)
    assert.equal(s.addPending(5, 'again', ''), false) // trusted nodes have no pending requests
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
