// Tasks between whole daemons (test/daemon/world.ts: a real registry, loopback
// UDP): the flow through `Daemon.task`, polo scores at the real registry, the
// task files under the state dir, untrusted nodes refused on port 1003, and
// `tasks: false`.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { Daemon } from '../../../src/daemon/daemon.js'
import { formatAddress } from '../../../src/protocol/address.js'
import { Identity } from '../../../src/crypto/identity.js'
import { RegistryClient } from '../../../src/registry/client.js'
import { World } from '../../daemon/world.js'
import { codeOf, waitFor } from '../../daemon/helpers.js'

async function trustPair(a: Daemon, b: Daemon): Promise<void> {
  await a.trustRequest(formatAddress(b.address), 'tasks')
  await waitFor(async () => (await a.trustList()).trusted.some((t) => t.node_id === b.nodeId), 'a trusts b', 8_000)
  await waitFor(async () => (await b.trustList()).trusted.some((t) => t.node_id === a.nodeId), 'b trusts a', 8_000)
}

function registryClient(w: World): RegistryClient {
  return new RegistryClient({ host: '127.0.0.1', port: w.registry.address.port, identity: Identity.generate(), timeoutMs: 3_000 })
}

test('daemon pair: submit, accept, execute, send-results; scores at the registry; files under <state>/tasks', async () => {
  const w = await World.create()
  const reg = registryClient(w)
  try {
    const a = await w.daemon('a')
    const b = await w.daemon('b', { autoAccept: true })
    await trustPair(a, b)
    assert.deepEqual(await reg.getPoloScore(a.nodeId), { nodeId: a.nodeId, poloScore: 0 })
    const sub = await a.task({ op: 'submit', target: formatAddress(b.address), description: 'say hello' })
    assert.equal(sub.status, 200)
    await b.task({ op: 'accept', id: sub.task_id })
    await b.task({ op: 'execute' })
    await b.task({ op: 'send_results', id: sub.task_id, results: 'hello', file: null })
    const [done] = (await a.task({ op: 'list', type: 'submitted' })).tasks
    assert.equal(done!.status, 'COMPLETED')
    assert.equal(await readFile(done!.result_path!, 'utf8'), 'hello')
    // −1 for the submitter, +1 (quick task: the minimum) for the worker.
    await waitFor(async () => (await reg.getPoloScore(b.nodeId)).poloScore === 1, 'worker +1')
    assert.equal((await reg.getPoloScore(a.nodeId)).poloScore, -1)
    assert.deepEqual(await readdir(join(w.dir, 'a', 'tasks', 'submitted')), [`${sub.task_id}.json`])
    assert.deepEqual(await readdir(join(w.dir, 'a', 'tasks', 'results')), [`${sub.task_id}_result.txt`])
    const onB = JSON.parse(await readFile(join(w.dir, 'b', 'tasks', 'received', `${sub.task_id}.json`), 'utf8'))
    assert.equal(onB.status, 'SUCCEEDED')
    assert.equal(onB.from, formatAddress(a.address))
    // Now a scores below b: b refuses a's next task.
    assert.equal(await codeOf(a.task({ op: 'submit', target: formatAddress(b.address), description: 'again' })), 'PT_TASK_REFUSED')
    // task_exec at the registry, as `pilotctl enable-tasks` / `disable-tasks`.
    assert.deepEqual(await b.task({ op: 'set_exec', enabled: true }), { node_id: b.nodeId, task_exec: true })
    assert.equal((await reg.lookup(b.nodeId)).taskExec, true)
    assert.deepEqual(await b.task({ op: 'set_exec', enabled: false }), { node_id: b.nodeId, task_exec: false })
    assert.equal((await reg.lookup(b.nodeId)).taskExec, undefined)
    // set_polo_score through the client, then it is accepted again.
    await reg.setPoloScore(a.nodeId, 10)
    assert.equal((await a.task({ op: 'submit', target: String(b.nodeId), description: 'again' })).status, 200)
  } finally {
    reg.close()
    await w.close()
  }
})

test('port 1003 refuses nodes without trust; tasks: false leaves the port closed and the commands say so', async () => {
  const w = await World.create()
  try {
    const a = await w.daemon('a')
    const b = await w.daemon('b')
    const c = await w.daemon('c', { autoAccept: true, tasks: false })
    // No trust between a and b: the SYN to 1003 is refused.
    assert.equal(await codeOf(a.task({ op: 'submit', target: formatAddress(b.address), description: 'x' })), 'PT_TRUST_REQUIRED')
    assert.deepEqual((await b.task({ op: 'list', type: null })).tasks, [])
    await trustPair(a, c)
    const code = await codeOf(a.task({ op: 'submit', target: formatAddress(c.address), description: 'x' }))
    assert.ok(code === 'PT_CONNECTION_REFUSED' || code === 'PT_TASK_NO_ANSWER', code)
    assert.equal(await codeOf(c.task({ op: 'list', type: null })), 'PT_TASK_DISABLED')
  } finally {
    await w.close()
  }
})
