// `pilot-tun task ...` through the real launcher against a fake daemon served
// in this process: each subcommand becomes the right control call, human and
// --json output, typed errors with hints, usage errors.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ControlServer } from '../../src/daemon/control/server.js'
import { runCli } from './run-cli.js'
import { FakeDaemon } from '../daemon/fake-daemon.js'

const ID = 'd0d4a514-be96-93b8-1855-eed1e3c54243'

const run = (args: string[], cwd?: string) => runCli(args, cwd === undefined ? {} : { cwd })

test('task subcommands against a fake daemon', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'pilot-taskcli-'))
  const sock = join(dir, 'control.sock')
  const daemon = new FakeDaemon()
  const server = new ControlServer({ path: sock, control: daemon })
  await server.listen()
  daemon.taskAnswers = {
    submit: { task_id: ID, target: '0:0000.0000.002B', node_id: 43, status: 200, message: 'Task received with status NEW', accepted: true, task: 'echo hi' },
    list: {
      tasks: [
        { task_id: ID, category: 'received', description: 'echo hi', status: 'NEW', status_justification: 'A new task was created', from: '0:0000.0000.002B', to: '0:0000.0000.002A', created_at: '2026-12-06T06:26:46Z' },
      ],
    },
    accept: { task_id: ID, status: 'ACCEPTED', message: 'Task accepted', notified: true },
    decline: { task_id: ID, status: 'DECLINED', message: 'Task declined', notified: false, justification: 'busy' },
    execute: { task_id: ID, task_description: 'echo hi', from: '0:0000.0000.002B', status: 'EXECUTING', notified: true },
    send_results: { task_id: ID, status: 'SUCCEEDED', sent_to: '0:0000.0000.002B', sent_type: 'file', filename: 'out.md', file_size: 10, reward_estimate: 1 },
    queue: { queue: [] },
  }
  const cs = ['--control-socket', sock]
  try {
    const submit = await run(['task', 'submit', 'bob', '--task', 'echo hi', ...cs])
    assert.equal(submit.code, 0, submit.stderr)
    assert.equal(submit.stdout.trim(), `task ${ID} submitted to 0:0000.0000.002B: Task received with status NEW`)
    const list = await run(['task', 'list', '--type', 'received', '--json', ...cs])
    assert.deepEqual(JSON.parse(list.stdout), daemon.taskAnswers.list)
    const human = await run(['task', 'list', ...cs])
    assert.match(human.stdout, /^TASK +SIDE +STATUS +FROM +TO +CREATED +DESCRIPTION$/m)
    assert.match(human.stdout, new RegExp(`^${ID} +received +NEW +0:0000\\.0000\\.002B`, 'm'))
    assert.equal((await run(['task', 'accept', '--id', ID, ...cs])).stdout.trim(), `task ${ID}: ACCEPTED`)
    assert.equal((await run(['task', 'decline', '--id', ID, '--justification', 'busy', ...cs])).stdout.trim(), `task ${ID}: DECLINED (the submitter could not be told)`)
    assert.match((await run(['task', 'execute', ...cs])).stdout, /^description: +echo hi$/m)
    const sent = await run(['task', 'send-results', '--id', ID, '--file', 'out.md', ...cs], dir)
    assert.equal(sent.stdout.trim(), `task ${ID}: results sent to 0:0000.0000.002B (file out.md, 10 bytes)`)
    assert.equal((await run(['task', 'queue', ...cs])).stdout.trim(), 'the queue is empty')
    const tasks = daemon.calls.filter((c) => c[0] === 'task').map((c) => c[1])
    assert.deepEqual(tasks, [
      { op: 'submit', target: 'bob', description: 'echo hi' },
      { op: 'list', type: 'received' },
      { op: 'list', type: null },
      { op: 'accept', id: ID },
      { op: 'decline', id: ID, justification: 'busy' },
      { op: 'execute' },
      // The path is made absolute for the daemon.
      { op: 'send_results', id: ID, results: null, file: join(dir, 'out.md') },
      { op: 'queue' },
    ])
    // Errors: typed, with the hint; --json prints the error object.
    delete daemon.taskAnswers.accept
    const missing = await run(['task', 'accept', '--id', ID, ...cs])
    assert.equal(missing.code, 1)
    assert.match(missing.stderr, /task not found: x \[PT_TASK_NOT_FOUND\]/)
    assert.match(missing.stderr, /^hint: see `pilot-tun task list`/m)
    const missingJson = await run(['task', 'accept', '--id', ID, '--json', ...cs])
    assert.equal(JSON.parse(missingJson.stdout).error.code, 'PT_TASK_NOT_FOUND')
    // Usage errors never reach the daemon.
    const before = daemon.calls.length
    assert.equal((await run(['task', 'send-results', '--id', ID, ...cs])).code, 2)
    assert.equal((await run(['task', 'send-results', '--id', ID, '--results', 'a', '--file', 'b', ...cs])).code, 2)
    assert.equal((await run(['task', 'submit', 'bob', ...cs])).code, 2)
    assert.equal((await run(['task', 'list', '--type', 'both', ...cs])).code, 2)
    assert.equal(daemon.calls.length, before)
  } finally {
    await server.close()
    rmSync(dir, { recursive: true, force: true })
  }
})

test('up --no-tasks and the "tasks" config key: default on, flag and key accepted, a non-boolean refused', async () => {
  const { resolveUpSettings } = await import('../../src/cli/commands/up.js')
  const dir = mkdtempSync(join(tmpdir(), 'pilot-up-tasks-'))
  try {
    const none = join(dir, 'none.json')
    const config = join(dir, 'config.json')
    const { writeFileSync } = await import('node:fs')
    writeFileSync(none, JSON.stringify({ registry: '127.0.0.1:9000' }))
    writeFileSync(config, JSON.stringify({ registry: '127.0.0.1:9000', tasks: false }))
    assert.equal((await resolveUpSettings({ config: none })).tasks, true)
    assert.equal((await resolveUpSettings({ config: none, tasks: false })).tasks, false)
    assert.equal((await resolveUpSettings({ config })).tasks, false)
    assert.equal((await resolveUpSettings({ config, tasks: true })).tasks, true, 'the flag wins')
    writeFileSync(config, JSON.stringify({ registry: '127.0.0.1:9000', tasks: 'no' }))
    await assert.rejects(resolveUpSettings({ config }), (e: { code?: string }) => e.code === 'PT_CONFIG_INVALID')
    const help = await run(['up', '--help'])
    assert.match(help.stdout, /--tasks +run the task submission service on port 1003/)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})
