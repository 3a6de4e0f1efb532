// The task service between in-memory nodes (test/services/tasks/helpers.ts):
// the whole submit → accept → execute → results flow, the polo check and
// score updates, refusals of frames from the wrong node, and the timers in
// virtual time.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFile, readdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { TaskNet, codeOf } from './helpers.js'
import { encodeSendResults, encodeStatusUpdate, TaskFrameType, decodeTaskFrame } from '../../../src/protocol/task-frames.js'
import { taskReward } from '../../../src/services/tasks/reward.js'

const W = 2 // worker
const S = 1 // submitter

async function pair(): Promise<TaskNet> {
  const net = new TaskNet()
  await net.node(S)
  await net.node(W)
  return net
}

test('submit → accept → execute → send-results: both sides move through the statuses, the result is saved, scores change', async () => {
  const net = await pair()
  try {
    const s = net.services.get(S)!
    const w = net.services.get(W)!
    net.polo.scores.set(S, 5)
    net.polo.scores.set(W, 5)
    const sub = await s.task({ op: 'submit', target: 'node2', description: 'count to ten' })
    assert.equal(sub.status, 200)
    assert.equal(sub.message, 'Task received with status NEW')
    assert.equal(sub.target, '0:0000.0000.0002')
    assert.deepEqual(s.list('submitted').map((t) => [t.task_id, t.status]), [[sub.task_id, 'NEW']])
    assert.deepEqual(w.list('received').map((t) => [t.task_id, t.status, t.from]), [[sub.task_id, 'NEW', '0:0000.0000.0001']])

    net.clock += 30_000 // idle 30 s
    const acc = await w.task({ op: 'accept', id: sub.task_id })
    assert.deepEqual(acc, { task_id: sub.task_id, status: 'ACCEPTED', message: 'Task accepted', notified: true })
    assert.equal(s.list('submitted')[0]!.status, 'ACCEPTED')
    assert.deepEqual((await w.task({ op: 'queue' })).queue.map((q) => q.task_id), [sub.task_id])

    net.clock += 300_000 // staged 5 min
    const ex = await w.task({ op: 'execute' })
    assert.equal(ex.status, 'EXECUTING')
    assert.equal(ex.task_description, 'count to ten')
    assert.equal(s.list('submitted')[0]!.status, 'EXECUTING')
    assert.equal(await codeOf(w.task({ op: 'execute' })), 'PT_TASK_QUEUE_EMPTY')

    net.clock += 7 * 60_000 // cpu 7 min
    const sent = await w.task({ op: 'send_results', id: sub.task_id, results: '1 2 3 4 5 6 7 8 9 10', file: null })
    // (1 + log2(1 + 7)) × (1 − 0.15 − 0.15) = 4 × 0.7 = 2.8 → 3
    assert.equal(sent.reward_estimate, 3)
    assert.equal(w.list('received')[0]!.status, 'SUCCEEDED')
    const done = s.list('submitted')[0]!
    assert.equal(done.status, 'COMPLETED')
    assert.equal(done.status_justification, 'Task completed with results')
    assert.equal(await readFile(done.result_path!, 'utf8'), '1 2 3 4 5 6 7 8 9 10')
    assert.equal(done.result_path, join(net.storeDir(0), 'results', `${sub.task_id}_result.txt`))
    assert.equal(net.polo.scores.get(S), 4)
    assert.equal(net.polo.scores.get(W), 8)
    // Finished: no second result, no second score change.
    assert.equal(await codeOf(w.task({ op: 'send_results', id: sub.task_id, results: 'again', file: null })), 'PT_TASK_BAD_STATE')
    assert.equal(net.polo.scores.get(W), 8)
  } finally {
    await net.close()
  }
})

test('the polo check: refused when the submitter scores below the worker, or the registry cannot say', async () => {
  const net = await pair()
  try {
    const s = net.services.get(S)!
    const w = net.services.get(W)!
    net.polo.scores.set(S, -1)
    net.polo.scores.set(W, 1)
    await assert.rejects(s.task({ op: 'submit', target: 'node2', description: 'x' }), (err: Error & { code?: string }) => {
      assert.equal(err.code, 'PT_TASK_REFUSED')
      assert.match(err.message, /Polo score too low: submitter=-1, receiver=1/)
      return true
    })
    assert.deepEqual(w.list(null), [])
    assert.deepEqual(s.list(null), [])
    net.polo.scores.set(S, 1) // equal is enough
    assert.equal((await s.task({ op: 'submit', target: 'node2', description: 'x' })).status, 200)
    net.polo.failing = true
    await assert.rejects(s.task({ op: 'submit', target: 'node2', description: 'y' }), /Failed to verify polo score/)
    assert.equal(w.list('received').length, 1)
    assert.equal(w.stats().submitsRefused, 2)
  } finally {
    await net.close()
  }
})

test('decline carries the justification to the submitter; a peer that is gone leaves notified=false', async () => {
  const net = await pair()
  try {
    const s = net.services.get(S)!
    const w = net.services.get(W)!
    const a = await s.task({ op: 'submit', target: 'node2', description: 'a' })
    const b = await s.task({ op: 'submit', target: 'node2', description: 'b' })
    const d = await w.task({ op: 'decline', id: a.task_id, justification: 'no thanks' })
    assert.deepEqual(d, { task_id: a.task_id, status: 'DECLINED', message: 'Task declined', notified: true, justification: 'no thanks' })
    const sa = s.list('submitted').find((t) => t.task_id === a.task_id)!
    assert.equal(sa.status, 'DECLINED')
    assert.equal(sa.status_justification, 'no thanks')
    assert.equal(await codeOf(w.task({ op: 'accept', id: a.task_id })), 'PT_TASK_BAD_STATE')
    assert.equal(await codeOf(w.task({ op: 'accept', id: 'nope' })), 'PT_TASK_BAD_ID')
    assert.equal(await codeOf(w.task({ op: 'accept', id: '00000000-0000-0000-0000-000000000000' })), 'PT_TASK_NOT_FOUND')
    net.refusing.add(S)
    const acc = await w.task({ op: 'accept', id: b.task_id })
    assert.equal(acc.notified, false)
    assert.equal(w.list('received').find((t) => t.task_id === b.task_id)!.status, 'ACCEPTED')
  } finally {
    await net.close()
  }
})

test('a file result lands in results/ under a sanitised name; frames from a node that is not the worker are ignored', async () => {
  const net = await pair()
  try {
    const s = net.services.get(S)!
    const w = net.services.get(W)!
    const sub = await s.task({ op: 'submit', target: 'node2', description: 'f' })
    // Node 3 is not the task's worker: its status update and results change nothing.
    assert.equal(await s.handle(3, decodeTaskFrame(encodeStatusUpdate({ task_id: sub.task_id, status: 'ACCEPTED', justification: '' }))), null)
    await s.handle(3, decodeTaskFrame(encodeSendResults({ task_id: sub.task_id, result_type: 'text', result_text: 'forged', completed_at: '' })))
    assert.equal(s.list('submitted')[0]!.status, 'NEW')
    assert.deepEqual(net.polo.calls.filter((c) => c.startsWith('update')), [])
    // The worker itself, with a hostile file name.
    await s.handle(W, decodeTaskFrame(encodeSendResults({ task_id: sub.task_id, result_type: 'file', filename: '../../../etc/.passwd', file_data: Buffer.from('data'), completed_at: '' })))
    const t = s.list('submitted')[0]!
    assert.equal(t.status, 'COMPLETED')
    assert.equal(t.result_path, join(net.storeDir(0), 'results', `${sub.task_id}_passwd`))
    assert.deepEqual(await readdir(join(net.storeDir(0), 'results')), [`${sub.task_id}_passwd`])
    void w
  } finally {
    await net.close()
  }
})

test('send-results --file reads the file on the worker and the submitter saves it', async () => {
  const net = await pair()
  try {
    const s = net.services.get(S)!
    const w = net.services.get(W)!
    const sub = await s.task({ op: 'submit', target: 'node2', description: 'f' })
    await w.task({ op: 'accept', id: sub.task_id })
    await w.task({ op: 'execute' })
    const path = join(net.storeDir(1), '..', 'out.md')
    assert.equal(await codeOf(w.task({ op: 'send_results', id: sub.task_id, results: null, file: path })), 'PT_TASK_FILE')
    await writeFile(path, 'file body\n')
    const r = await w.task({ op: 'send_results', id: sub.task_id, results: null, file: path })
    assert.equal(r.filename, 'out.md')
    assert.equal(r.file_size, 10)
    assert.equal(await readFile(s.list('submitted')[0]!.result_path!, 'utf8'), 'file body\n')
  } finally {
    await net.close()
  }
})

test('a SUBMIT whose from_addr is not the sending node, or whose to_addr is not us, is refused', async () => {
  const net = await pair()
  try {
    const w = net.services.get(W)!
    const id = '0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0'
    const spoof = await w.handle(S, { type: TaskFrameType.SUBMIT, submit: { task_id: id, task_description: 'x', from_addr: '0:0000.0000.0009', to_addr: '0:0000.0000.0002' } })
    assert.equal(JSON.parse(spoof!.subarray(8).toString()).status, 400)
    const other = await w.handle(S, { type: TaskFrameType.SUBMIT, submit: { task_id: id, task_description: 'x', from_addr: '0:0000.0000.0001', to_addr: '0:0000.0000.0007' } })
    assert.equal(JSON.parse(other!.subarray(8).toString()).status, 400)
    assert.deepEqual(w.list(null), [])
  } finally {
    await net.close()
  }
})

test('timers in virtual time: NEW for 1 min → CANCELLED (submitter told); 1 h at the queue head → EXPIRED and the worker −1', async () => {
  const net = await pair()
  try {
    const s = net.services.get(S)!
    const w = net.services.get(W)!
    const a = await s.task({ op: 'submit', target: 'node2', description: 'a' })
    const b = await s.task({ op: 'submit', target: 'node2', description: 'b' })
    await w.task({ op: 'accept', id: b.task_id })
    await w.tick(net.clock + 59_999)
    assert.equal(w.list('received').find((t) => t.task_id === a.task_id)!.status, 'NEW')
    await w.tick(net.clock + 60_000)
    await new Promise((r) => setTimeout(r, 20)) // the update to the submitter is sent in the background
    assert.equal(w.list('received').find((t) => t.task_id === a.task_id)!.status, 'CANCELLED')
    assert.equal(s.list('submitted').find((t) => t.task_id === a.task_id)!.status, 'CANCELLED')
    // b has been the head since the first tick (+59.999 s); over an hour after that it expires, not before.
    const headSince = net.clock + 59_999
    await w.tick(headSince + 3_600_000)
    assert.equal(w.list('received').find((t) => t.task_id === b.task_id)!.status, 'ACCEPTED')
    await w.tick(headSince + 3_600_001)
    await new Promise((r) => setTimeout(r, 20))
    assert.equal(w.list('received').find((t) => t.task_id === b.task_id)!.status, 'EXPIRED')
    assert.equal(s.list('submitted').find((t) => t.task_id === b.task_id)!.status, 'EXPIRED')
    assert.equal(net.polo.scores.get(W), -1)
  } finally {
    await net.close()
  }
})

test('reward formula against hand-computed values (round half up, at least 1)', () => {
  const r = (cpuMin: number, idleS: number, stagedS: number): number => taskReward({ cpuMs: cpuMin * 60_000, idleMs: idleS * 1000, stagedMs: stagedS * 1000 })
  assert.equal(r(0, 0, 0), 1) // 1 × 1
  assert.equal(r(0, 4.707, 0), 1) // the reference's own log: efficiency 0.976465 → 1
  assert.equal(r(3, 0, 0), 3) // 1 + log2 4 = 3
  assert.equal(r(15, 0, 0), 5) // 1 + log2 16 = 5
  assert.equal(r(7, 30, 300), 3) // 4 × (1 − 0.15 − 0.15) = 2.8
  assert.equal(r(1, 50, 0), 2) // 2 × 0.75 = 1.5 → 2 (half up)
  assert.equal(r(1, 60, 0), 1) // 2 × 0.7 = 1.4 → 1
  assert.equal(r(15, 600, 6000), 2) // 5 × max(0.4, 0.4) = 2
  assert.equal(r(1, 6000, 0), 1) // 2 × 0.7 = 1.4; the idle penalty caps at 0.3
  assert.equal(r(63, 0, 600), 5) // (1 + 6) × 0.7 = 4.9 → 5
  assert.equal(taskReward({ cpuMs: Number.NaN, idleMs: -5, stagedMs: Infinity }), 1) // nonsense counts as 0
})

test('hostile streams: garbage, an oversized length, a silent peer, a second frame — each is closed, nothing stored, the service lives on', async () => {
  const net = new TaskNet()
  try {
    await net.node(S)
    const w = await net.node(W, { readTimeoutMs: 100 })
    // Refused streams are reset (an error here), answered ones end cleanly.
    const ended = (s: import('node:stream').Duplex): Promise<Buffer> =>
      new Promise((resolve) => {
        const got: Buffer[] = []
        s.on('data', (d: Buffer) => got.push(d))
        s.on('end', () => resolve(Buffer.concat(got)))
        s.on('error', () => resolve(Buffer.concat(got)))
      })
    // Random bytes.
    for (let i = 0; i < 20; i++) {
      const s = net.rawStream(S, W)
      const done = ended(s)
      s.write(Buffer.from(Array.from({ length: 64 }, () => Math.floor(Math.random() * 256))))
      assert.equal((await done).length, 0)
    }
    // A 4 GiB length: refused from the header, no body awaited.
    const big = net.rawStream(S, W)
    const bigDone = ended(big)
    big.write(Buffer.from([0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff]))
    assert.equal((await bigDone).length, 0)
    // Half a header, then silence: closed after the read timeout.
    const slow = net.rawStream(S, W)
    const slowDone = ended(slow)
    slow.write(Buffer.from([0, 0]))
    assert.equal((await slowDone).length, 0)
    // A SUBMIT followed by a second frame: the first is answered, the second ignored.
    const { encodeSubmit } = await import('../../../src/protocol/task-frames.js')
    const two = net.rawStream(S, W)
    const twoDone = ended(two)
    const id = 'aaaaaaaa-0000-0000-0000-000000000001'
    two.write(Buffer.concat([
      encodeSubmit({ task_id: id, task_description: 'one', from_addr: '0:0000.0000.0001', to_addr: '0:0000.0000.0002' }),
      encodeStatusUpdate({ task_id: id, status: 'ACCEPTED', justification: '' }),
    ]))
    const answer = decodeTaskFrame(await twoDone)
    assert.ok('answer' in answer && answer.answer.status === 200)
    assert.deepEqual(w.list('received').map((t) => [t.task_id, t.status]), [[id, 'NEW']])
    assert.ok(w.stats().badFrames >= 21, JSON.stringify(w.stats()))
  } finally {
    await net.close()
  }
})

test('a result the submitter cannot save is reset, so the worker keeps the task EXECUTING and may retry; a full submitted store refuses before sending', async () => {
  const net = new TaskNet()
  try {
    const s = await net.node(S, { limits: { maxResultBytes: 4, maxTasks: 1 } })
    const w = await net.node(W)
    const sub = await s.task({ op: 'submit', target: 'node2', description: 'x' })
    await w.task({ op: 'accept', id: sub.task_id })
    await w.task({ op: 'execute' })
    assert.notEqual(await codeOf(w.task({ op: 'send_results', id: sub.task_id, results: 'far too long', file: null })), 'resolved')
    assert.equal(w.list('received')[0]!.status, 'EXECUTING')
    assert.equal(s.list('submitted')[0]!.status, 'EXECUTING')
    await w.task({ op: 'send_results', id: sub.task_id, results: 'ok', file: null })
    assert.equal(s.list('submitted')[0]!.status, 'COMPLETED')
    // One slot, and it is finished: room. Then it is live: refused here, nothing reaches the worker.
    net.polo.scores.set(S, 100)
    await s.task({ op: 'submit', target: 'node2', description: 'y' })
    assert.equal(await codeOf(s.task({ op: 'submit', target: 'node2', description: 'z' })), 'PT_TASK_STORE_FULL')
    assert.equal(w.list('received').length, 2)
  } finally {
    await net.close()
  }
})
