// Task submission frames (port 1003, docs/wire.md §13.5): layout, field
// checks, streaming reassembly, limits, and a small fuzz.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { DecodeError } from '../../src/errors.js'
import {
  TASK_FRAME_MAX,
  TaskFrameDecoder,
  TaskFrameType,
  decodeTaskFrame,
  encodeSendResults,
  encodeStatusUpdate,
  encodeSubmit,
  encodeSubmitResponse,
  encodeTaskFrame,
  formatTaskId,
  isTaskId,
} from '../../src/protocol/task-frames.js'

const ID = 'd0d4a514-be96-93b8-1855-eed1e3c54243'
const SUBMIT = { task_id: ID, task_description: 'echo hi', from_addr: '0:0000.0000.0001', to_addr: '0:0000.0000.0002' }

function reason(fn: () => unknown): string {
  try {
    fn()
  } catch (err) {
    assert.ok(err instanceof DecodeError, `expected a DecodeError, got ${String(err)}`)
    return err.reason
  }
  assert.fail('expected a DecodeError')
}

function frame(type: number, json: string): Buffer {
  const body = Buffer.from(json)
  const head = Buffer.alloc(8)
  head.writeUInt32BE(type, 0)
  head.writeUInt32BE(body.length, 4)
  return Buffer.concat([head, body])
}

test('SUBMIT layout: type u32 BE, length u32 BE, then the JSON', () => {
  const f = encodeSubmit(SUBMIT)
  assert.equal(f.readUInt32BE(0), 1)
  assert.equal(f.readUInt32BE(4), f.length - 8)
  assert.deepEqual(JSON.parse(f.subarray(8).toString()), SUBMIT)
  assert.deepEqual(decodeTaskFrame(f), { type: 1, submit: SUBMIT })
})

test('a type-1 frame with a numeric status is the answer', () => {
  const f = encodeSubmitResponse({ task_id: ID, status: 400, message: 'Polo score too low: submitter=-1, receiver=1' })
  assert.deepEqual(decodeTaskFrame(f), { type: 1, answer: { task_id: ID, status: 400, message: 'Polo score too low: submitter=-1, receiver=1' } })
})

test('STATUS_UPDATE and SEND_RESULTS round-trip (file bytes as base64)', () => {
  const u = { task_id: ID, status: 'DECLINED' as const, justification: 'no thanks' }
  assert.deepEqual(decodeTaskFrame(encodeStatusUpdate(u)), { type: 3, update: u })
  const data = randomBytes(1000)
  const r = { task_id: ID, result_type: 'file' as const, filename: 'out.md', file_data: data, completed_at: '2026-12-06T06:28:34Z', time_idle_ms: 1410, time_staged_ms: 0, time_cpu_ms: 7 }
  const f = encodeSendResults(r)
  assert.equal(JSON.parse(f.subarray(8).toString()).file_data, data.toString('base64'))
  assert.deepEqual(decodeTaskFrame(f), { type: 4, results: r })
  const t = { task_id: ID, result_type: 'text' as const, result_text: 'hi there', completed_at: 'x' }
  assert.deepEqual(decodeTaskFrame(encodeSendResults(t)), { type: 4, results: t })
})

test('task ids: 16 bytes as 8-4-4-4-12 lower-case hex; upper case on the wire is normalised', () => {
  const id = formatTaskId(Buffer.from('00112233445566778899aabbccddeeff', 'hex'))
  assert.equal(id, '00112233-4455-6677-8899-aabbccddeeff')
  assert.ok(isTaskId(id))
  assert.ok(!isTaskId('00112233-4455-6677-8899-aabbccddeef'))
  assert.ok(!isTaskId('../../etc/passwd'))
  const m = decodeTaskFrame(frame(1, JSON.stringify({ ...SUBMIT, task_id: ID.toUpperCase() })))
  assert.ok('submit' in m && m.submit.task_id === ID)
  assert.equal(reason(() => formatTaskId(new Uint8Array(15))), 'bad-length')
})

test('bad input is a typed DecodeError, never a crash', () => {
  assert.equal(reason(() => decodeTaskFrame(Buffer.alloc(5))), 'short-buffer')
  assert.equal(reason(() => decodeTaskFrame(frame(2, '{}'))), 'bad-type') // legacy RESULT
  assert.equal(reason(() => decodeTaskFrame(frame(9, '{}'))), 'bad-type')
  assert.equal(reason(() => decodeTaskFrame(frame(1, 'nope'))), 'bad-json')
  assert.equal(reason(() => decodeTaskFrame(frame(1, '[1]'))), 'bad-json')
  assert.equal(reason(() => decodeTaskFrame(frame(1, JSON.stringify({ ...SUBMIT, task_id: '../x' })))), 'bad-value')
  assert.equal(reason(() => decodeTaskFrame(frame(1, JSON.stringify({ ...SUBMIT, from_addr: 'alice' })))), 'bad-address')
  assert.equal(reason(() => decodeTaskFrame(frame(1, JSON.stringify({ ...SUBMIT, task_description: 7 })))), 'bad-value')
  assert.equal(reason(() => decodeTaskFrame(frame(1, JSON.stringify({ ...SUBMIT, task_description: 'x'.repeat(70_000) })))), 'too-large')
  assert.equal(reason(() => decodeTaskFrame(frame(3, JSON.stringify({ task_id: ID, status: 'DONE' })))), 'bad-value')
  assert.equal(reason(() => decodeTaskFrame(frame(4, JSON.stringify({ task_id: ID, result_type: 'blob' })))), 'bad-value')
  assert.equal(reason(() => decodeTaskFrame(frame(4, JSON.stringify({ task_id: ID, result_type: 'file', filename: 'a', file_data: '***' })))), 'bad-value')
  assert.equal(reason(() => decodeTaskFrame(frame(4, JSON.stringify({ task_id: ID, result_type: 'file', filename: '', file_data: '' })))), 'bad-value')
  assert.equal(reason(() => decodeTaskFrame(frame(4, JSON.stringify({ task_id: ID, result_type: 'text', time_cpu_ms: -1 })))), 'bad-value')
  assert.equal(reason(() => decodeTaskFrame(frame(1, JSON.stringify({ task_id: ID, status: 99 })))), 'bad-value')
  // Length field and bytes present disagree.
  const f = encodeSubmit(SUBMIT)
  assert.equal(reason(() => decodeTaskFrame(f.subarray(0, f.length - 1))), 'bad-length')
  assert.equal(reason(() => decodeTaskFrame(Buffer.concat([f, Buffer.from('x')]))), 'bad-length')
})

test('the 16 MiB limit: a bigger length is refused from its header alone, before any body arrives', () => {
  const head = Buffer.alloc(8)
  head.writeUInt32BE(4, 0)
  head.writeUInt32BE(TASK_FRAME_MAX + 1, 4)
  const d = new TaskFrameDecoder()
  assert.equal(reason(() => d.push(head)), 'too-large')
  assert.equal(reason(() => decodeTaskFrame(head)), 'too-large')
  assert.equal(reason(() => encodeTaskFrame(TaskFrameType.SEND_RESULTS, { result_text: 'x'.repeat(TASK_FRAME_MAX) })), 'too-large')
  // A smaller limit for the decoder works the same way.
  assert.equal(reason(() => new TaskFrameDecoder(100).push(encodeSubmit({ ...SUBMIT, task_description: 'y'.repeat(200) }))), 'too-large')
})

test('the stream decoder takes frames split anywhere and several in one chunk', () => {
  const frames = [encodeSubmit(SUBMIT), encodeStatusUpdate({ task_id: ID, status: 'ACCEPTED', justification: 'Task accepted' })]
  const all = Buffer.concat(frames)
  for (let cut = 0; cut <= all.length; cut += 7) {
    const d = new TaskFrameDecoder()
    const out = [...d.push(all.subarray(0, cut)), ...d.push(all.subarray(cut))]
    assert.deepEqual(out.map((f) => f.type), [1, 3])
    assert.equal(d.buffered, 0)
  }
  const d = new TaskFrameDecoder()
  const got = []
  for (const byte of all) got.push(...d.push(Buffer.from([byte])))
  assert.equal(got.length, 2)
  assert.equal(d.buffered, 0)
})

test('fuzz: random and mutated frames only ever throw DecodeError', () => {
  const seeds = [
    encodeSubmit(SUBMIT),
    encodeSubmitResponse({ task_id: ID, status: 200, message: 'Task received with status NEW' }),
    encodeStatusUpdate({ task_id: ID, status: 'EXECUTING', justification: '' }),
    encodeSendResults({ task_id: ID, result_type: 'file', filename: 'a.txt', file_data: Buffer.from('abc'), completed_at: 'now' }),
  ]
  let ok = 0
  for (let i = 0; i < 3000; i++) {
    let input: Buffer
    if (i % 4 === 0) input = randomBytes(Math.floor(Math.random() * 64))
    else {
      input = Buffer.from(seeds[i % seeds.length]!)
      for (let k = 0; k < 1 + (i % 5); k++) input[Math.floor(Math.random() * input.length)] = Math.floor(Math.random() * 256)
    }
    try {
      decodeTaskFrame(input)
      ok++
    } catch (err) {
      assert.ok(err instanceof DecodeError, `not a DecodeError for ${input.toString('hex')}: ${String(err)}`)
    }
    const d = new TaskFrameDecoder(4096)
    try {
      d.push(input)
    } catch (err) {
      assert.ok(err instanceof DecodeError)
    }
    assert.ok(d.buffered <= input.length)
  }
  assert.ok(ok > 0, 'some mutations still decode (mutations inside strings)')
})
