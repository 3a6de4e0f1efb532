// The task store: the reference's on-disk layout and JSON, bounds, safe file
// names, reload after a restart.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, readFile, readdir, rm, writeFile, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { TaskStore, rfc3339, safeFileName, type TaskRecord } from '../../../src/services/tasks/task-store.js'
import { codeOf } from './helpers.js'

const ID = 'd0d4a514-be96-93b8-1855-eed1e3c54243'

function rec(id: string, status: TaskRecord['status'] = 'NEW', created = '2026-12-06T06:26:46Z'): TaskRecord {
  return { task_id: id, task_description: 'echo hi', created_at: created, status, status_justification: 'A new task was created', from: '0:0000.0000.0001', to: '0:0000.0000.0002' }
}

function id(n: number): string {
  return `${n.toString(16).padStart(8, '0')}-0000-0000-0000-000000000000`
}

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'pt-taskstore-'))
  try {
    await fn(join(dir, 'tasks'))
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}

test('layout and JSON as the reference writes them (received/, submitted/, results/; 2-space JSON, same field order)', () =>
  withDir(async (dir) => {
    const store = await TaskStore.open(dir)
    assert.deepEqual((await readdir(dir)).sort(), ['received', 'results', 'submitted'])
    assert.equal((await stat(join(dir, 'received'))).mode & 0o777, 0o700)
    await store.add('received', rec(ID))
    await store.update('received', ID, { status: 'ACCEPTED', status_justification: 'Task accepted', accepted_at: '2026-12-06T06:26:50Z', time_idle_ms: 4707 })
    const path = join(dir, 'received', `${ID}.json`)
    assert.equal((await stat(path)).mode & 0o777, 0o600)
    // Byte for byte what the reference daemon wrote in the same situation (see the report).
    assert.equal(
      await readFile(path, 'utf8'),
      `{
  "task_id": "${ID}",
  "task_description": "echo hi",
  "created_at": "2026-12-06T06:26:46Z",
  "status": "ACCEPTED",
  "status_justification": "Task accepted",
  "from": "0:0000.0000.0001",
  "to": "0:0000.0000.0002",
  "accepted_at": "2026-12-06T06:26:50Z",
  "time_idle_ms": 4707
}`,
    )
    assert.equal(rfc3339(Date.parse('2026-12-06T06:26:46.789Z')), '2026-12-06T06:26:46Z')
  }))

test('a reference task file is read back; reopening restores every task; junk files are skipped', () =>
  withDir(async (dir) => {
    const s1 = await TaskStore.open(dir)
    await s1.add('submitted', rec(ID))
    await writeFile(join(dir, 'submitted', 'junk.json'), '{nope')
    await writeFile(join(dir, 'submitted', `${id(5)}.json`), JSON.stringify(rec(id(6)))) // name and id disagree
    const s2 = await TaskStore.open(dir)
    assert.deepEqual(s2.list('submitted').map((t) => t.task_id), [ID])
    assert.deepEqual(s2.get('submitted', ID), rec(ID))
  }))

test('bounded: the oldest finished task makes room; when all are live a new one is refused', () =>
  withDir(async (dir) => {
    const store = await TaskStore.open(dir, { maxTasks: 3 })
    await store.add('received', rec(id(1), 'COMPLETED', '2026-01-01T00:00:01Z'))
    await store.add('received', rec(id(2), 'NEW', '2026-01-01T00:00:02Z'))
    await store.add('received', rec(id(3), 'NEW', '2026-01-01T00:00:03Z'))
    await store.add('received', rec(id(4), 'NEW', '2026-01-01T00:00:04Z'))
    assert.deepEqual(store.list('received').map((t) => t.task_id), [id(2), id(3), id(4)])
    assert.deepEqual((await readdir(join(dir, 'received'))).sort(), [id(2), id(3), id(4)].map((x) => `${x}.json`))
    assert.equal(await codeOf(store.add('received', rec(id(5)))), 'PT_TASK_STORE_FULL')
    assert.equal(await codeOf(store.add('received', rec(id(4)))), 'PT_TASK_BAD_STATE')
    // The other side has its own budget.
    await store.add('submitted', rec(id(5)))
  }))

test('results: size limits, and a peer file name never leaves results/', () =>
  withDir(async (dir) => {
    const store = await TaskStore.open(dir, { maxResultBytes: 10, maxResultsTotalBytes: 15 })
    assert.equal(await store.saveResult(ID, { text: 'hi there' }), `${ID}_result.txt`)
    assert.equal(await codeOf(store.saveResult(id(1), { text: 'x'.repeat(11) })), 'PT_TASK_TOO_LARGE')
    assert.equal(await codeOf(store.saveResult(id(1), { filename: 'a.txt', data: Buffer.alloc(8) })), 'PT_TASK_STORE_FULL')
    assert.equal(await store.saveResult(id(2), { filename: '../../../../tmp/evil.sh', data: Buffer.from('x') }), `${id(2)}_evil.sh`)
    assert.deepEqual((await readdir(join(dir, 'results'))).sort(), [`${ID}_result.txt`, `${id(2)}_evil.sh`].sort())
    for (const [given, safe] of [
      ['..', 'result.bin'],
      ['', 'result.bin'],
      ['.bashrc', 'bashrc'],
      ['a/b\\c.txt', 'c.txt'],
      ['rm -rf $(x).md', 'rm_-rf___x_.md'],
      ['é.txt', '_.txt'],
    ] as const) {
      assert.equal(safeFileName(given), safe, given)
    }
    assert.ok(safeFileName('x'.repeat(500)).length <= 200)
  }))
