// The task.* control methods: parameters checked on the socket, mapped to the
// daemon's `task(command)`.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ControlServer } from '../../../src/daemon/control/server.js'
import { ControlClient } from '../../../src/daemon/control/client.js'
import { CONTROL_METHODS } from '../../../src/daemon/control/protocol.js'
import { FakeDaemon } from '../../daemon/fake-daemon.js'
import { codeOf } from './helpers.js'

const ID = 'd0d4a514-be96-93b8-1855-eed1e3c54243'

test('task.* methods: parameters validated, commands passed on', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'pilot-taskctl-'))
  const daemon = new FakeDaemon()
  daemon.taskAnswers = { queue: { queue: [] }, list: { tasks: [] } }
  const server = new ControlServer({ path: join(dir, 's'), control: daemon })
  await server.listen()
  const c = await ControlClient.connect(join(dir, 's'))
  try {
    assert.deepEqual(
      CONTROL_METHODS.filter((m) => m.startsWith('task.')),
      ['task.submit', 'task.list', 'task.accept', 'task.decline', 'task.execute', 'task.send_results', 'task.queue', 'task.set_exec'],
    )
    assert.deepEqual(await c.call('task.queue', {}), { queue: [] })
    assert.deepEqual(await c.call('task.list', {} as never), { tasks: [] })
    assert.equal(await codeOf(c.call('task.accept', { id: ID })), 'PT_TASK_NOT_FOUND')
    await codeOf(c.call('task.decline', { id: ID } as never))
    await codeOf(c.call('task.send_results', { id: ID, results: 'r' } as never))
    await codeOf(c.call('task.send_results', { id: ID, file: '/tmp/x' } as never))
    await codeOf(c.call('task.submit', { target: 'bob', description: 'd' }))
    await codeOf(c.call('task.execute', {}))
    await codeOf(c.call('task.set_exec', { enabled: 1 }))
    const bad = [
      c.call('task.list', { type: 'both' }),
      c.call('task.accept', {} as never),
      c.call('task.accept', { id: 'x'.repeat(65) }),
      c.call('task.submit', { target: 'bob', description: '' }),
      c.call('task.submit', { target: 'bob', description: 'x'.repeat(65_537) }),
      c.call('task.send_results', { id: ID, results: '', file: '' }),
      c.call('task.send_results', { id: ID, results: 'a', file: '/b' }),
      c.call('task.execute', { id: ID } as never),
      c.call('task.set_exec', { enabled: 2 }),
      c.call('task.set_exec', {} as never),
    ]
    for (const p of bad) assert.equal(await codeOf(p), 'PT_CONTROL_BAD_REQUEST')
    assert.deepEqual(
      daemon.calls.filter((x) => x[0] === 'task').map((x) => x[1]),
      [
        { op: 'queue' },
        { op: 'list', type: null },
        { op: 'accept', id: ID },
        { op: 'decline', id: ID, justification: '' },
        { op: 'send_results', id: ID, results: 'r', file: null },
        { op: 'send_results', id: ID, results: null, file: '/tmp/x' },
        { op: 'submit', target: 'bob', description: 'd' },
        { op: 'execute' },
        { op: 'set_exec', enabled: true },
      ],
    )
  } finally {
    c.close()
    await server.close()
    rmSync(dir, { recursive: true, force: true })
  }
})
