/**
 * The control-socket protocol: what the CLI sends to a running daemon.
 *
 * Framing is the registry's (`u32 BE length || UTF-8 JSON object`) with a
 * smaller maximum, `CONTROL_MAX_MESSAGE`. A connection carries any number of
 * requests; each is answered in order:
 *
 *     request   {"id": 1, "method": "ping", "params": {"target": "alice", "timeout_ms": 3000}}
 *     response  {"id": 1, "ok": true, "result": {...}}
 *               {"id": 1, "ok": false, "error": {"code": "PT_...", "message": "...", "hint": "..."}}
 *
 * One method streams: `events.subscribe` (service-methods.ts, with the data
 * services' other methods) sends `{"id", "event": {...}}` frames before its
 * final answer.
 *
 * Methods are the `DaemonControl` methods (api.ts); results are its result
 * types as-is. Parameters are checked here, before the daemon sees them: a
 * wrong or missing parameter is `PT_CONTROL_BAD_REQUEST`, an unknown method
 * `PT_CONTROL_UNKNOWN_METHOD`.
 */
import { PilotError } from '../../errors.js'
import { RegistryFrameDecoder, encodeRegistryMessage, type JsonObject } from '../../protocol/registry-framing.js'
import type {
  DaemonControl,
  DaemonStatus,
  PeerStatus,
  PingReply,
  ResolveResult,
  TrustList,
} from '../api.js'
import type { TaskResults } from '../../services/tasks/task-api.js'

/** Largest JSON body accepted either way (a peers list of ~1,000 peers fits). */
export const CONTROL_MAX_MESSAGE = 256 * 1024

export const ControlErrorCode = {
  /** The request is not a valid request: framing, JSON, id, or parameters. */
  BAD_REQUEST: 'PT_CONTROL_BAD_REQUEST',
  /** The method is not one this daemon knows. */
  UNKNOWN_METHOD: 'PT_CONTROL_UNKNOWN_METHOD',
  /** Another daemon answers on the control socket path. */
  IN_USE: 'PT_CONTROL_IN_USE',
  /** The control socket path cannot be created or is not a socket. */
  PATH: 'PT_CONTROL_PATH',
  /** The daemon did not answer in time. */
  TIMEOUT: 'PT_CONTROL_TIMEOUT',
  /** The connection closed before the answer came. */
  CLOSED: 'PT_CONTROL_CLOSED',
  /** The control socket exists but this user may not open it. */
  ACCESS_DENIED: 'PT_CONTROL_ACCESS_DENIED',
  /** The daemon answered with something that is not a response. */
  BAD_RESPONSE: 'PT_CONTROL_BAD_RESPONSE',
  /** Nothing listens on the control socket. */
  DAEMON_NOT_RUNNING: 'PT_DAEMON_NOT_RUNNING',
  /** The daemon threw something that is not a PilotError (a bug); details are in its log. */
  INTERNAL: 'PT_DAEMON_INTERNAL',
} as const

export type ControlErrorCode = (typeof ControlErrorCode)[keyof typeof ControlErrorCode]

export class ControlError extends PilotError {}

export const CONTROL_METHODS = [
  'status',
  'peers',
  'ping',
  'resolve',
  'trust.request',
  'trust.approve',
  'trust.reject',
  'trust.revoke',
  'trust.list',
  'hostname.set',
  'shutdown',
  'task.submit',
  'task.list',
  'task.accept',
  'task.decline',
  'task.execute',
  'task.send_results',
  'task.queue',
  'task.set_exec',
] as const

export type ControlMethod = (typeof CONTROL_METHODS)[number]

/** Parameters of each method, as sent on the wire (snake_case like the results). */
export interface ControlParams {
  status: Record<string, never>
  peers: Record<string, never>
  ping: { target: string; timeout_ms: number }
  resolve: { target: string }
  'trust.request': { target: string; reason: string }
  'trust.approve': { target: string }
  'trust.reject': { target: string; reason: string }
  'trust.revoke': { target: string }
  'trust.list': Record<string, never>
  'hostname.set': { name: string }
  shutdown: Record<string, never>
  'task.submit': { target: string; description: string }
  /** '' = both sides. */
  'task.list': { type: string }
  'task.accept': { id: string }
  'task.decline': { id: string; justification: string }
  'task.execute': Record<string, never>
  /** Exactly one of `results` (text) and `file` (a path the daemon reads) is non-empty. */
  'task.send_results': { id: string; results: string; file: string }
  'task.queue': Record<string, never>
  /** 1 = enable, 0 = disable. */
  'task.set_exec': { enabled: number }
}

export interface ControlResults {
  status: DaemonStatus
  peers: PeerStatus[]
  ping: PingReply
  resolve: ResolveResult
  'trust.request': Awaited<ReturnType<DaemonControl['trustRequest']>>
  'trust.approve': Awaited<ReturnType<DaemonControl['trustApprove']>>
  'trust.reject': Awaited<ReturnType<DaemonControl['trustReject']>>
  'trust.revoke': Awaited<ReturnType<DaemonControl['trustRevoke']>>
  'trust.list': TrustList
  'hostname.set': { hostname: string }
  shutdown: { status: 'shutting-down' }
  'task.submit': TaskResults['submit']
  'task.list': TaskResults['list']
  'task.accept': TaskResults['accept']
  'task.decline': TaskResults['decline']
  'task.execute': TaskResults['execute']
  'task.send_results': TaskResults['send_results']
  'task.queue': TaskResults['queue']
  'task.set_exec': TaskResults['set_exec']
}

export type RequestId = number | string

export interface ControlRequest {
  id: RequestId
  method: string
  params: JsonObject
}

export interface ControlErrorBody {
  code: string
  message: string
  hint?: string
}

export type ControlResponse =
  | { id: RequestId | null; ok: true; result: unknown }
  | { id: RequestId | null; ok: false; error: ControlErrorBody }

/** Limits on parameter values, so a hostile request cannot make the daemon do much. */
export const PARAM_LIMITS = {
  targetLength: 256,
  reasonLength: 1024,
  hostnameLength: 253,
  minPingTimeoutMs: 1,
  maxPingTimeoutMs: 60_000,
  taskIdLength: 64,
  taskDescriptionLength: 65_536,
  taskResultsLength: 200_000,
  pathLength: 4096,
} as const

export const DEFAULT_PING_TIMEOUT_MS = 3000

export function encodeControlMessage(message: ControlRequest | ControlResponse): Buffer {
  return encodeRegistryMessage(message as unknown as JsonObject, CONTROL_MAX_MESSAGE)
}

export function createControlDecoder(): RegistryFrameDecoder {
  return new RegistryFrameDecoder(CONTROL_MAX_MESSAGE)
}

export function isControlMethod(m: unknown): m is ControlMethod {
  return typeof m === 'string' && (CONTROL_METHODS as readonly string[]).includes(m)
}

function badRequest(message: string, hint?: string): ControlError {
  return new ControlError(ControlErrorCode.BAD_REQUEST, message, hint === undefined ? {} : { hint })
}

/**
 * Checks the envelope of a decoded message: `id` (a finite number or a short
 * string), `method` (a string), `params` (an object, or absent). Throws
 * PT_CONTROL_BAD_REQUEST. Returns the id it could read even on failure, via
 * `readRequestId`, so the error response can carry it.
 */
export function parseRequestEnvelope(msg: JsonObject): ControlRequest {
  const id = readRequestId(msg)
  if (id === null) throw badRequest('request has no valid "id" (a number or a string of at most 64 characters)')
  if (typeof msg.method !== 'string') throw badRequest('request has no "method" string')
  const params = msg.params === undefined ? {} : msg.params
  if (typeof params !== 'object' || params === null || Array.isArray(params)) throw badRequest('"params" must be a JSON object')
  for (const key of Object.keys(msg)) {
    if (key !== 'id' && key !== 'method' && key !== 'params') throw badRequest(`unknown request field "${key}"`)
  }
  return { id, method: msg.method, params: params as JsonObject }
}

export function readRequestId(msg: JsonObject): RequestId | null {
  const id = msg.id
  if (typeof id === 'number' && Number.isFinite(id)) return id
  if (typeof id === 'string' && id.length <= 64) return id
  return null
}

type FieldSpec = { kind: 'string'; max: number; optional?: string } | { kind: 'int'; min: number; max: number; optional?: number }

const PARAM_SPECS: { [M in ControlMethod]: Record<string, FieldSpec> } = {
  status: {},
  peers: {},
  ping: {
    target: { kind: 'string', max: PARAM_LIMITS.targetLength },
    timeout_ms: { kind: 'int', min: PARAM_LIMITS.minPingTimeoutMs, max: PARAM_LIMITS.maxPingTimeoutMs, optional: DEFAULT_PING_TIMEOUT_MS },
  },
  resolve: { target: { kind: 'string', max: PARAM_LIMITS.targetLength } },
  'trust.request': {
    target: { kind: 'string', max: PARAM_LIMITS.targetLength },
    reason: { kind: 'string', max: PARAM_LIMITS.reasonLength, optional: '' },
  },
  'trust.approve': { target: { kind: 'string', max: PARAM_LIMITS.targetLength } },
  'trust.reject': {
    target: { kind: 'string', max: PARAM_LIMITS.targetLength },
    reason: { kind: 'string', max: PARAM_LIMITS.reasonLength, optional: '' },
  },
  'trust.revoke': { target: { kind: 'string', max: PARAM_LIMITS.targetLength } },
  'trust.list': {},
  'hostname.set': { name: { kind: 'string', max: PARAM_LIMITS.hostnameLength } },
  shutdown: {},
  'task.submit': {
    target: { kind: 'string', max: PARAM_LIMITS.targetLength },
    description: { kind: 'string', max: PARAM_LIMITS.taskDescriptionLength },
  },
  'task.list': { type: { kind: 'string', max: 16, optional: '' } },
  'task.accept': { id: { kind: 'string', max: PARAM_LIMITS.taskIdLength } },
  'task.decline': {
    id: { kind: 'string', max: PARAM_LIMITS.taskIdLength },
    justification: { kind: 'string', max: PARAM_LIMITS.reasonLength, optional: '' },
  },
  'task.execute': {},
  'task.send_results': {
    id: { kind: 'string', max: PARAM_LIMITS.taskIdLength },
    results: { kind: 'string', max: PARAM_LIMITS.taskResultsLength, optional: '' },
    file: { kind: 'string', max: PARAM_LIMITS.pathLength, optional: '' },
  },
  'task.queue': {},
  'task.set_exec': { enabled: { kind: 'int', min: 0, max: 1 } },
}

/**
 * Validates `params` for `method` and fills defaults. Unknown keys, wrong
 * types, empty or over-long strings and out-of-range numbers are
 * PT_CONTROL_BAD_REQUEST with the parameter named.
 */
export function validateParams<M extends ControlMethod>(method: M, params: JsonObject): ControlParams[M] {
  const spec = PARAM_SPECS[method]
  const out: Record<string, string | number> = {}
  for (const key of Object.keys(params)) {
    if (!Object.hasOwn(spec, key)) {
      const known = Object.keys(spec)
      throw badRequest(
        `${method}: unknown parameter "${key}"`,
        known.length === 0 ? `${method} takes no parameters` : `${method} takes ${known.join(', ')}`,
      )
    }
  }
  for (const [key, field] of Object.entries(spec)) {
    const v = params[key]
    if (v === undefined) {
      if (field.optional === undefined) throw badRequest(`${method}: missing parameter "${key}"`)
      out[key] = field.optional
      continue
    }
    if (field.kind === 'string') {
      if (typeof v !== 'string') throw badRequest(`${method}: "${key}" must be a string`)
      if (v.length === 0 && field.optional === undefined) throw badRequest(`${method}: "${key}" must not be empty`)
      if (v.length > field.max) throw badRequest(`${method}: "${key}" is longer than ${field.max} characters`)
      out[key] = v
    } else {
      if (typeof v !== 'number' || !Number.isInteger(v)) throw badRequest(`${method}: "${key}" must be an integer`)
      if (v < field.min || v > field.max) throw badRequest(`${method}: "${key}" must be ${field.min}..${field.max}`)
      out[key] = v
    }
  }
  return out as unknown as ControlParams[M]
}

/** Calls the `DaemonControl` method behind `method` with validated `params`. */
export async function dispatch(control: DaemonControl, method: ControlMethod, params: JsonObject): Promise<unknown> {
  switch (method) {
    case 'status':
      validateParams(method, params)
      return control.status()
    case 'peers':
      validateParams(method, params)
      return control.peers()
    case 'ping': {
      const p = validateParams(method, params)
      return control.ping(p.target, p.timeout_ms)
    }
    case 'resolve':
      return control.resolve(validateParams(method, params).target)
    case 'trust.request': {
      const p = validateParams(method, params)
      return control.trustRequest(p.target, p.reason)
    }
    case 'trust.approve':
      return control.trustApprove(validateParams(method, params).target)
    case 'trust.reject': {
      const p = validateParams(method, params)
      return control.trustReject(p.target, p.reason)
    }
    case 'trust.revoke':
      return control.trustRevoke(validateParams(method, params).target)
    case 'trust.list':
      validateParams(method, params)
      return control.trustList()
    case 'hostname.set':
      return control.setHostname(validateParams(method, params).name)
    case 'shutdown':
      validateParams(method, params)
      await control.shutdown()
      return { status: 'shutting-down' }
    case 'task.submit': {
      const p = validateParams(method, params)
      return control.task({ op: 'submit', target: p.target, description: p.description })
    }
    case 'task.list': {
      const type = validateParams(method, params).type
      if (type !== '' && type !== 'received' && type !== 'submitted') throw badRequest('task.list: "type" must be received or submitted')
      return control.task({ op: 'list', type: type === '' ? null : type })
    }
    case 'task.accept':
      return control.task({ op: 'accept', id: validateParams(method, params).id })
    case 'task.decline': {
      const p = validateParams(method, params)
      return control.task({ op: 'decline', id: p.id, justification: p.justification })
    }
    case 'task.execute':
      validateParams(method, params)
      return control.task({ op: 'execute' })
    case 'task.send_results': {
      const p = validateParams(method, params)
      if ((p.results === '') === (p.file === '')) {
        throw badRequest('task.send_results: give exactly one of "results" and "file"', 'pilot-tun task send-results --id ID --results "..."')
      }
      return control.task({ op: 'send_results', id: p.id, results: p.results === '' ? null : p.results, file: p.file === '' ? null : p.file })
    }
    case 'task.queue':
      validateParams(method, params)
      return control.task({ op: 'queue' })
    case 'task.set_exec':
      return control.task({ op: 'set_exec', enabled: validateParams(method, params).enabled === 1 })
  }
}

/** The wire form of an error: PilotErrors keep code, message and hint; anything else is PT_DAEMON_INTERNAL. */
export function errorBody(err: unknown): ControlErrorBody {
  if (err instanceof PilotError) return err.toJSON()
  return {
    code: ControlErrorCode.INTERNAL,
    message: `internal error: ${err instanceof Error ? err.message : String(err)}`,
    hint: 'this is a bug in pilot-tun; the daemon log has the details',
  }
}

/** Checks that a decoded message is a response; returns null if it is not. */
export function parseResponse(msg: JsonObject): ControlResponse | null {
  const id = msg.id === null ? null : readRequestId(msg)
  if (id === null && msg.id !== null) return null
  if (msg.ok === true) return { id, ok: true, result: msg.result }
  if (msg.ok !== false) return null
  const e = msg.error
  if (typeof e !== 'object' || e === null || Array.isArray(e)) return null
  const { code, message, hint } = e as JsonObject
  if (typeof code !== 'string' || typeof message !== 'string') return null
  return { id, ok: false, error: typeof hint === 'string' ? { code, message, hint } : { code, message } }
}
