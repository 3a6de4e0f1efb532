/**
 * Task submission frames, port 1003 (docs/wire.md §13.5). Sans-IO: bytes in,
 * typed messages out.
 *
 *   frame = type u32 BE || length u32 BE || JSON object (length bytes, ≤ 16 MiB)
 *
 *   1 SUBMIT         request {task_id, task_description, from_addr, to_addr}
 *                    answer  {task_id, status (200|400), message}
 *   2 RESULT         legacy, never sent; refused here
 *   3 STATUS_UPDATE  {task_id, status, justification}
 *   4 SEND_RESULTS   {task_id, result_type "text"|"file", result_text?, filename?,
 *                     file_data? (base64), completed_at, time_idle_ms?, time_staged_ms?, time_cpu_ms?}
 *
 * Every decoder throws `DecodeError` (a typed `PT_PROTOCOL_*` error) on bad
 * input: a short buffer, an unknown type, an oversized length, JSON that is
 * not an object, or a field of the wrong type or out of range. Unknown JSON
 * fields are ignored (newer peers may add some).
 */
import { readU32, writeU32 } from '../bytes.js'
import { DecodeError } from '../errors.js'
import { parseAddress } from './address.js'

export const TaskFrameType = {
  SUBMIT: 1,
  RESULT: 2,
  STATUS_UPDATE: 3,
  SEND_RESULTS: 4,
} as const
export type TaskFrameType = (typeof TaskFrameType)[keyof typeof TaskFrameType]

export const TASK_FRAME_HEADER_SIZE = 8
/** Largest JSON body either way, as [G]. */
export const TASK_FRAME_MAX = 16 * 1024 * 1024
/** Field bounds (pilot-tun's; [G] has none beyond the frame). */
export const TASK_FIELD_LIMITS = {
  description: 64 * 1024,
  justification: 4096,
  message: 4096,
  filename: 255,
  completedAt: 64,
} as const

/** Every task status [G] knows. */
export const TASK_STATUSES = ['NEW', 'ACCEPTED', 'DECLINED', 'EXECUTING', 'COMPLETED', 'SUCCEEDED', 'CANCELLED', 'EXPIRED'] as const
export type TaskStatus = (typeof TASK_STATUSES)[number]

export interface SubmitRequest {
  task_id: string
  task_description: string
  from_addr: string
  to_addr: string
}

export interface SubmitResponse {
  task_id: string
  status: number
  message: string
}

export interface StatusUpdate {
  task_id: string
  status: TaskStatus
  justification: string
}

export interface SendResults {
  task_id: string
  result_type: 'text' | 'file'
  result_text?: string
  filename?: string
  /** The file's bytes (base64 on the wire). */
  file_data?: Buffer
  completed_at: string
  time_idle_ms?: number
  time_staged_ms?: number
  time_cpu_ms?: number
}

export type TaskMessage =
  | { type: typeof TaskFrameType.SUBMIT; submit: SubmitRequest }
  | { type: typeof TaskFrameType.SUBMIT; answer: SubmitResponse }
  | { type: typeof TaskFrameType.STATUS_UPDATE; update: StatusUpdate }
  | { type: typeof TaskFrameType.SEND_RESULTS; results: SendResults }

const TASK_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/

/** A [G]-style task id: 16 random bytes printed 8-4-4-4-12 in lower-case hex. */
export function formatTaskId(bytes: Uint8Array): string {
  if (bytes.length !== 16) throw new DecodeError('bad-length', `a task id is 16 bytes, got ${bytes.length}`)
  const h = Buffer.from(bytes).toString('hex')
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`
}

/** True for a well-formed task id (lower-case; callers lower-case user input first). */
export function isTaskId(text: string): boolean {
  return TASK_ID.test(text)
}

// ───────────────────────── framing ─────────────────────────

/** One frame: header and JSON body. */
export function encodeTaskFrame(type: TaskFrameType, body: object): Buffer {
  const json = Buffer.from(JSON.stringify(body), 'utf8')
  if (json.length > TASK_FRAME_MAX) throw new DecodeError('too-large', `task frame body of ${json.length} bytes exceeds ${TASK_FRAME_MAX}`)
  const out = Buffer.allocUnsafe(TASK_FRAME_HEADER_SIZE + json.length)
  writeU32(out, 0, type)
  writeU32(out, 4, json.length)
  json.copy(out, TASK_FRAME_HEADER_SIZE)
  return out
}

export function encodeSubmit(m: SubmitRequest): Buffer {
  return encodeTaskFrame(TaskFrameType.SUBMIT, m)
}

export function encodeSubmitResponse(m: SubmitResponse): Buffer {
  return encodeTaskFrame(TaskFrameType.SUBMIT, m)
}

export function encodeStatusUpdate(m: StatusUpdate): Buffer {
  return encodeTaskFrame(TaskFrameType.STATUS_UPDATE, m)
}

export function encodeSendResults(m: SendResults): Buffer {
  const body: Record<string, unknown> = { task_id: m.task_id, result_type: m.result_type }
  if (m.result_text !== undefined) body.result_text = m.result_text
  if (m.filename !== undefined) body.filename = m.filename
  if (m.file_data !== undefined) body.file_data = m.file_data.toString('base64')
  body.completed_at = m.completed_at
  if (m.time_idle_ms !== undefined) body.time_idle_ms = m.time_idle_ms
  if (m.time_staged_ms !== undefined) body.time_staged_ms = m.time_staged_ms
  if (m.time_cpu_ms !== undefined) body.time_cpu_ms = m.time_cpu_ms
  return encodeTaskFrame(TaskFrameType.SEND_RESULTS, body)
}

/**
 * Reassembles frames from stream chunks split anywhere. An oversized length is
 * refused as soon as its header is in, so no more than `max` bytes are ever
 * held. `push` returns the frames completed by this chunk.
 */
export class TaskFrameDecoder {
  private chunks: Buffer[] = []
  private held = 0

  constructor(private readonly max = TASK_FRAME_MAX) {}

  /** Bytes received and not yet part of a returned frame. */
  get buffered(): number {
    return this.held
  }

  push(chunk: Uint8Array): { type: number; body: Buffer }[] {
    this.chunks.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength))
    this.held += chunk.byteLength
    const out: { type: number; body: Buffer }[] = []
    for (;;) {
      if (this.held < TASK_FRAME_HEADER_SIZE) break
      const head = this.peek(TASK_FRAME_HEADER_SIZE)
      const type = readU32(head, 0)
      const length = readU32(head, 4)
      checkType(type)
      if (length > this.max) throw new DecodeError('too-large', `task frame length ${length} exceeds ${this.max}`)
      if (this.held < TASK_FRAME_HEADER_SIZE + length) break
      const all = Buffer.concat(this.chunks)
      out.push({ type, body: all.subarray(TASK_FRAME_HEADER_SIZE, TASK_FRAME_HEADER_SIZE + length) })
      const rest = all.subarray(TASK_FRAME_HEADER_SIZE + length)
      this.chunks = rest.length === 0 ? [] : [rest]
      this.held = rest.length
    }
    return out
  }

  private peek(n: number): Buffer {
    if (this.chunks[0]!.length >= n) return this.chunks[0]!
    const all = Buffer.concat(this.chunks)
    this.chunks = [all]
    return all
  }
}

function checkType(type: number): void {
  if (type === TaskFrameType.SUBMIT || type === TaskFrameType.STATUS_UPDATE || type === TaskFrameType.SEND_RESULTS) return
  if (type === TaskFrameType.RESULT) throw new DecodeError('bad-type', 'task frame type 2 (RESULT) is legacy and unused')
  throw new DecodeError('bad-type', `unknown task frame type ${type}`)
}

/** Decodes exactly one whole frame (header + body, nothing after). */
export function decodeTaskFrame(bytes: Uint8Array, max = TASK_FRAME_MAX): TaskMessage {
  if (bytes.length < TASK_FRAME_HEADER_SIZE) throw new DecodeError('short-buffer', `task frame of ${bytes.length} bytes is shorter than its header`)
  const length = readU32(bytes, 4)
  if (length > max) throw new DecodeError('too-large', `task frame length ${length} exceeds ${max}`)
  if (bytes.length !== TASK_FRAME_HEADER_SIZE + length) {
    throw new DecodeError('bad-length', `task frame says ${length} body bytes, has ${bytes.length - TASK_FRAME_HEADER_SIZE}`)
  }
  return decodeTaskBody(readU32(bytes, 0), Buffer.from(bytes.buffer, bytes.byteOffset + TASK_FRAME_HEADER_SIZE, length))
}

/** Types the body of a frame of `type`. A SUBMIT with a numeric `status` is an answer. */
export function decodeTaskBody(type: number, body: Uint8Array): TaskMessage {
  checkType(type)
  const obj = parseJsonObject(body)
  switch (type) {
    case TaskFrameType.SUBMIT:
      return typeof obj.status === 'number' && obj.task_description === undefined
        ? { type: TaskFrameType.SUBMIT, answer: parseSubmitResponse(obj) }
        : { type: TaskFrameType.SUBMIT, submit: parseSubmitRequest(obj) }
    case TaskFrameType.STATUS_UPDATE:
      return { type: TaskFrameType.STATUS_UPDATE, update: parseStatusUpdate(obj) }
    default:
      return { type: TaskFrameType.SEND_RESULTS, results: parseSendResults(obj) }
  }
}

// ───────────────────────── JSON fields ─────────────────────────

type Obj = Record<string, unknown>

function parseJsonObject(body: Uint8Array): Obj {
  let v: unknown
  try {
    v = JSON.parse(Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString('utf8'))
  } catch {
    throw new DecodeError('bad-json', 'task frame body is not JSON')
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new DecodeError('bad-json', 'task frame body is not a JSON object')
  return v as Obj
}

function str(o: Obj, key: string, max: number, optional: true): string | undefined
function str(o: Obj, key: string, max: number, optional?: false): string
function str(o: Obj, key: string, max: number, optional = false): string | undefined {
  const v = o[key]
  if (v === undefined || v === null) {
    if (optional) return undefined
    throw new DecodeError('bad-value', `task frame lacks "${key}"`)
  }
  if (typeof v !== 'string') throw new DecodeError('bad-value', `task frame "${key}" is not a string`)
  if (v.length > max) throw new DecodeError('too-large', `task frame "${key}" is longer than ${max} characters`)
  return v
}

function taskId(o: Obj): string {
  const id = str(o, 'task_id', 64).toLowerCase()
  if (!isTaskId(id)) throw new DecodeError('bad-value', 'task frame "task_id" is not 8-4-4-4-12 hex')
  return id
}

function address(o: Obj, key: string): string {
  const text = str(o, key, 64)
  try {
    parseAddress(text)
  } catch {
    throw new DecodeError('bad-address', `task frame "${key}" is not a Pilot address: ${JSON.stringify(text.slice(0, 40))}`)
  }
  return text
}

function ms(o: Obj, key: string): number | undefined {
  const v = o[key]
  if (v === undefined || v === null) return undefined
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > Number.MAX_SAFE_INTEGER) {
    throw new DecodeError('bad-value', `task frame "${key}" is not a non-negative integer`)
  }
  return v
}

export function parseSubmitRequest(o: Obj): SubmitRequest {
  return {
    task_id: taskId(o),
    task_description: str(o, 'task_description', TASK_FIELD_LIMITS.description),
    from_addr: address(o, 'from_addr'),
    to_addr: address(o, 'to_addr'),
  }
}

export function parseSubmitResponse(o: Obj): SubmitResponse {
  const status = o.status
  if (typeof status !== 'number' || !Number.isInteger(status) || status < 100 || status > 599) {
    throw new DecodeError('bad-value', 'task answer "status" is not an HTTP-like code')
  }
  return { task_id: taskId(o), status, message: str(o, 'message', TASK_FIELD_LIMITS.message, true) ?? '' }
}

export function parseStatusUpdate(o: Obj): StatusUpdate {
  const status = str(o, 'status', 16)
  if (!(TASK_STATUSES as readonly string[]).includes(status)) throw new DecodeError('bad-value', `unknown task status ${JSON.stringify(status)}`)
  return {
    task_id: taskId(o),
    status: status as TaskStatus,
    justification: str(o, 'justification', TASK_FIELD_LIMITS.justification, true) ?? '',
  }
}

export function parseSendResults(o: Obj): SendResults {
  const kind = str(o, 'result_type', 8)
  if (kind !== 'text' && kind !== 'file') throw new DecodeError('bad-value', `task "result_type" must be text or file, got ${JSON.stringify(kind)}`)
  const out: SendResults = {
    task_id: taskId(o),
    result_type: kind,
    completed_at: str(o, 'completed_at', TASK_FIELD_LIMITS.completedAt, true) ?? '',
  }
  if (kind === 'text') {
    out.result_text = str(o, 'result_text', TASK_FRAME_MAX, true) ?? ''
  } else {
    const filename = str(o, 'filename', TASK_FIELD_LIMITS.filename)
    if (filename.length === 0) throw new DecodeError('bad-value', 'task "filename" is empty')
    out.filename = filename
    const data = str(o, 'file_data', TASK_FRAME_MAX, true) ?? ''
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(data) || data.length % 4 !== 0) throw new DecodeError('bad-value', 'task "file_data" is not base64')
    out.file_data = Buffer.from(data, 'base64')
  }
  for (const key of ['time_idle_ms', 'time_staged_ms', 'time_cpu_ms'] as const) {
    const v = ms(o, key)
    if (v !== undefined) out[key] = v
  }
  return out
}
