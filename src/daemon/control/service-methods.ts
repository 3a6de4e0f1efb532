/**
 * The control-socket methods of the data services (src/services/): the CLI's
 * send-message, send-file, inbox, received, publish and subscribe.
 *
 *     message.send     {target, type: text|json|binary, data}
 *     file.send        {target, path}           (absolute; the daemon reads it)
 *     inbox.list / inbox.clear / received.list / received.clear   {}
 *     events.publish   {target, topic, data}
 *     events.subscribe {target, topic, count?, timeout_ms?}   streaming
 *
 * `events.subscribe` is the one streaming method: before its final answer
 * the daemon sends any number of event frames on the same connection,
 *
 *     {"id": 7, "event": {"topic": "news", "data": "hello", "bytes": 5}}
 *
 * and the final `{"id": 7, "ok": …}` ends it. A reader that falls behind
 * (more than `STREAM_BACKLOG_LIMIT` bytes unsent on the socket) is cut off
 * with PT_SUBSCRIBER_TOO_SLOW; a client that closes its connection ends the
 * subscription.
 */
import type { JsonObject } from '../../protocol/registry-framing.js'
import type { MessageKind, ServicesControl } from '../../services/api.js'
import { ControlError, ControlErrorCode } from './protocol.js'
import { DaemonError, DaemonErrorCode } from '../errors.js'

export const SERVICE_METHODS = [
  'message.send',
  'file.send',
  'inbox.list',
  'inbox.clear',
  'received.list',
  'received.clear',
  'events.publish',
  'events.subscribe',
] as const

export type ServiceMethod = (typeof SERVICE_METHODS)[number]

/** Bytes of event frames that may wait unsent on one control connection. */
export const STREAM_BACKLOG_LIMIT = 1024 * 1024
/** Longest `data` of message.send / events.publish (the control frame is at most 256 KiB). */
export const MAX_DATA_CHARS = 128 * 1024

export interface StreamContext {
  /** Sends one `{"id", "event"}` frame. */
  emit(event: unknown): void
  /** Aborted when the client goes away or reads too slowly. */
  signal: AbortSignal
}

export function isServiceMethod(m: unknown): m is ServiceMethod {
  return typeof m === 'string' && (SERVICE_METHODS as readonly string[]).includes(m)
}

type Field = { kind: 'string'; max: number; choices?: readonly string[] } | { kind: 'int'; min: number; max: number; optional: number }

const TARGET: Field = { kind: 'string', max: 256 }
const SPECS: { [M in ServiceMethod]: Record<string, Field> } = {
  'message.send': { target: TARGET, type: { kind: 'string', max: 6, choices: ['text', 'json', 'binary'] }, data: { kind: 'string', max: MAX_DATA_CHARS } },
  'file.send': { target: TARGET, path: { kind: 'string', max: 4096 } },
  'inbox.list': {},
  'inbox.clear': {},
  'received.list': {},
  'received.clear': {},
  'events.publish': { target: TARGET, topic: { kind: 'string', max: 1024 }, data: { kind: 'string', max: MAX_DATA_CHARS } },
  'events.subscribe': {
    target: TARGET,
    topic: { kind: 'string', max: 1024 },
    count: { kind: 'int', min: 0, max: 1_000_000_000, optional: 0 },
    timeout_ms: { kind: 'int', min: 0, max: 2_147_483_647, optional: 0 },
  },
}

function bad(message: string): ControlError {
  return new ControlError(ControlErrorCode.BAD_REQUEST, message)
}

/** Checks `params` against the method's fields (unknown keys, types, lengths, ranges): PT_CONTROL_BAD_REQUEST. */
function validate(method: ServiceMethod, params: JsonObject): Record<string, string | number> {
  const spec = SPECS[method]
  for (const key of Object.keys(params)) if (!Object.hasOwn(spec, key)) throw bad(`${method}: unknown parameter "${key}"`)
  const out: Record<string, string | number> = {}
  for (const [key, f] of Object.entries(spec)) {
    const v = params[key]
    if (f.kind === 'int') {
      if (v === undefined) out[key] = f.optional
      else if (typeof v !== 'number' || !Number.isInteger(v) || v < f.min || v > f.max) throw bad(`${method}: "${key}" must be an integer in ${f.min}..${f.max}`)
      else out[key] = v
      continue
    }
    if (v === undefined) throw bad(`${method}: missing parameter "${key}"`)
    if (typeof v !== 'string') throw bad(`${method}: "${key}" must be a string`)
    if (v.length > f.max) throw bad(`${method}: "${key}" is longer than ${f.max} characters`)
    if (v.length === 0 && key !== 'data') throw bad(`${method}: "${key}" must not be empty`)
    if (f.choices !== undefined && !f.choices.includes(v)) throw bad(`${method}: "${key}" must be one of ${f.choices.join(', ')}`)
    out[key] = v
  }
  return out
}

/** Calls the `ServicesControl` method behind `method`; `services` null = this daemon has none. */
export async function dispatchService(services: ServicesControl | null, method: ServiceMethod, params: JsonObject, ctx: StreamContext): Promise<unknown> {
  const p = validate(method, params)
  if (services === null) throw new DaemonError(DaemonErrorCode.CLOSED, `the daemon's data services are not running (${method}): it is starting or shutting down`)
  const s = (k: string): string => p[k] as string
  switch (method) {
    case 'message.send':
      return services.sendMessage(s('target'), s('type') as MessageKind, s('data'))
    case 'file.send':
      if (!s('path').startsWith('/')) throw bad('file.send: "path" must be absolute')
      return services.sendFile(s('target'), s('path'))
    case 'inbox.list':
      return services.inboxList()
    case 'inbox.clear':
      return services.inboxClear()
    case 'received.list':
      return services.receivedList()
    case 'received.clear':
      return services.receivedClear()
    case 'events.publish':
      return services.publish(s('target'), s('topic'), s('data'))
    case 'events.subscribe':
      return services.subscribe(s('target'), s('topic'), { count: p.count as number, timeoutMs: p.timeout_ms as number }, (e) => ctx.emit(e), ctx.signal)
  }
}
