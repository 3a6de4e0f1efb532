/**
 * The control-socket methods of the port-443 secure channel
 * (src/services/secure/): `pilot-tun secure send|listen`.
 *
 *     secure.send    {target, data | data_base64, port?, kdf?, replies?, timeout_ms?}
 *     secure.listen  {port?, echo?, kdf?, count?, timeout_ms?}   streaming
 *
 * `secure.listen` streams like `events.subscribe`: one `{"id", "event"}`
 * frame per message received, then the final answer when it ends (count,
 * timeout, or the client closing its connection).
 */
import type { JsonObject } from '../../protocol/registry-framing.js'
import { SECURE_PORT } from '../../services/secure/secure-core.js'
import type { SecureControl } from '../../services/secure/secure-service.js'
import { DaemonError, DaemonErrorCode } from '../errors.js'
import { ControlError, ControlErrorCode } from './protocol.js'
import type { StreamContext } from './service-methods.js'

export const SECURE_METHODS = ['secure.send', 'secure.listen'] as const
export type SecureMethod = (typeof SECURE_METHODS)[number]

/** Longest message `secure.send` carries (the control frame is at most 256 KiB). */
export const SECURE_MAX_DATA_CHARS = 128 * 1024

export function isSecureMethod(m: unknown): m is SecureMethod {
  return typeof m === 'string' && (SECURE_METHODS as readonly string[]).includes(m)
}

type Field =
  | { kind: 'string'; max: number; optional?: string; choices?: readonly string[] }
  | { kind: 'int'; min: number; max: number; optional: number }
  | { kind: 'bool'; optional: boolean }

const PORT: Field = { kind: 'int', min: 1, max: 65535, optional: SECURE_PORT }
const SPECS: Record<SecureMethod, Record<string, Field>> = {
  'secure.send': {
    target: { kind: 'string', max: 256 },
    data: { kind: 'string', max: SECURE_MAX_DATA_CHARS, optional: '' },
    data_base64: { kind: 'string', max: (SECURE_MAX_DATA_CHARS * 4) / 3 + 4, optional: '' },
    port: PORT,
    kdf: { kind: 'string', max: 6, optional: 'legacy', choices: ['legacy', 'hkdf'] },
    replies: { kind: 'int', min: 0, max: 1000, optional: 1 },
    timeout_ms: { kind: 'int', min: 1, max: 600_000, optional: 10_000 },
  },
  'secure.listen': {
    port: PORT,
    echo: { kind: 'bool', optional: true },
    kdf: { kind: 'string', max: 6, optional: 'auto', choices: ['auto', 'legacy', 'hkdf'] },
    count: { kind: 'int', min: 0, max: 1_000_000_000, optional: 0 },
    timeout_ms: { kind: 'int', min: 0, max: 2_147_483_647, optional: 0 },
  },
}

function bad(message: string): ControlError {
  return new ControlError(ControlErrorCode.BAD_REQUEST, message)
}

function validate(method: SecureMethod, params: JsonObject): Record<string, string | number | boolean> {
  const spec = SPECS[method]
  for (const key of Object.keys(params)) if (!Object.hasOwn(spec, key)) throw bad(`${method}: unknown parameter "${key}"`)
  const out: Record<string, string | number | boolean> = {}
  for (const [key, f] of Object.entries(spec)) {
    const v = params[key]
    if (v === undefined && f.optional !== undefined) {
      out[key] = f.optional
      continue
    }
    if (v === undefined) throw bad(`${method}: missing parameter "${key}"`)
    if (f.kind === 'bool') {
      if (typeof v !== 'boolean') throw bad(`${method}: "${key}" must be true or false`)
    } else if (f.kind === 'int') {
      if (typeof v !== 'number' || !Number.isInteger(v) || v < f.min || v > f.max) throw bad(`${method}: "${key}" must be an integer in ${f.min}..${f.max}`)
    } else {
      if (typeof v !== 'string') throw bad(`${method}: "${key}" must be a string`)
      if (v.length > f.max) throw bad(`${method}: "${key}" is longer than ${f.max} characters`)
      if (v.length === 0 && f.optional === undefined) throw bad(`${method}: "${key}" must not be empty`)
      if (f.choices !== undefined && !f.choices.includes(v)) throw bad(`${method}: "${key}" must be one of ${f.choices.join(', ')}`)
    }
    out[key] = v as string | number | boolean
  }
  return out
}

/** Calls the `SecureControl` method behind `method`; `secure` null = the daemon is not running yet. */
export async function dispatchSecure(secure: SecureControl | null, method: SecureMethod, params: JsonObject, ctx: StreamContext): Promise<unknown> {
  const p = validate(method, params)
  if (secure === null) throw new DaemonError(DaemonErrorCode.CLOSED, `the daemon is not running its services (${method}): it is starting or shutting down`)
  if (method === 'secure.send') {
    if (p.data !== '' && p.data_base64 !== '') throw bad('secure.send: give "data" or "data_base64", not both')
    const data = p.data_base64 !== '' ? Buffer.from(p.data_base64 as string, 'base64') : Buffer.from(p.data as string, 'utf8')
    return secure.send(p.target as string, data, {
      port: p.port as number,
      kdf: p.kdf as 'legacy' | 'hkdf',
      replies: p.replies as number,
      timeoutMs: p.timeout_ms as number,
    })
  }
  return secure.listen(
    { port: p.port as number, echo: p.echo as boolean, kdf: p.kdf as 'auto' | 'legacy' | 'hkdf', count: p.count as number, timeoutMs: p.timeout_ms as number },
    (e) => ctx.emit(e),
    ctx.signal,
  )
}
