/**
 * The control-socket methods of networks and the audit trail (issue 13):
 *
 *     network.create  {name, join_rule, token?, max_members?, allowed_ports?, members_resolve?}
 *     network.join    {network, token?, invite?}        network = name or ID; invite = text form
 *     network.leave   {network}
 *     network.invite  {network, node, ttl_s?}           → {invite, invitee_id, expires}
 *     network.members {network}
 *     network.policy  {network, max_members?, allowed_ports?, members_resolve?}   nothing given = show
 *     network.list    {}
 *     network.role    {network, node, role}
 *     network.remove  {network, node}
 *     audit.list      {network?, admin_token?, local?}
 *     audit.verify    {network?, admin_token?, local?}  → {ok, entries, head} | {ok:false, entries, first_broken, reason}
 *
 * Parameters are checked here (unknown keys, types, ranges: PT_CONTROL_BAD_REQUEST)
 * before `NetworkOps` (network-ops.ts) sees them.
 */
import type { JsonObject } from '../../protocol/registry-framing.js'
import { JOIN_RULES, NETWORK_ROLES } from '../../registry/network-types.js'
import { DaemonError, DaemonErrorCode } from '../errors.js'
import { MAX_INVITE_TTL_S, type NetworkOps } from '../network-ops.js'
import { ControlError, ControlErrorCode } from './protocol.js'

export const NETWORK_METHODS = [
  'network.create',
  'network.join',
  'network.leave',
  'network.invite',
  'network.members',
  'network.policy',
  'network.list',
  'network.role',
  'network.remove',
  'audit.list',
  'audit.verify',
] as const

export type NetworkMethod = (typeof NETWORK_METHODS)[number]

export function isNetworkMethod(m: unknown): m is NetworkMethod {
  return typeof m === 'string' && (NETWORK_METHODS as readonly string[]).includes(m)
}

/** Most ports one policy lists. */
export const MAX_ALLOWED_PORTS = 1024

type Field =
  | { kind: 'string'; max: number; required?: boolean; choices?: readonly string[] }
  | { kind: 'int'; min: number; max: number }
  | { kind: 'bool' }
  | { kind: 'ports' }

const NET: Field = { kind: 'string', max: 63, required: true }
const NODE: Field = { kind: 'string', max: 256, required: true }
const TOKEN: Field = { kind: 'string', max: 256 }
const POLICY = {
  max_members: { kind: 'int', min: 1, max: 1_000_000 },
  allowed_ports: { kind: 'ports' },
  members_resolve: { kind: 'bool' },
} as const satisfies Record<string, Field>
const AUDIT = { network: { kind: 'string', max: 63 }, admin_token: TOKEN, local: { kind: 'bool' } } as const satisfies Record<string, Field>

const SPECS: { [M in NetworkMethod]: Record<string, Field> } = {
  'network.create': { name: NET, join_rule: { kind: 'string', max: 8, required: true, choices: JOIN_RULES }, token: TOKEN, ...POLICY },
  'network.join': { network: NET, token: TOKEN, invite: { kind: 'string', max: 2048 } },
  'network.leave': { network: NET },
  'network.invite': { network: NET, node: NODE, ttl_s: { kind: 'int', min: 1, max: MAX_INVITE_TTL_S } },
  'network.members': { network: NET },
  'network.policy': { network: NET, ...POLICY },
  'network.list': {},
  'network.role': { network: NET, node: NODE, role: { kind: 'string', max: 8, required: true, choices: NETWORK_ROLES } },
  'network.remove': { network: NET, node: NODE },
  'audit.list': AUDIT,
  'audit.verify': AUDIT,
}

function bad(message: string, hint?: string): ControlError {
  return new ControlError(ControlErrorCode.BAD_REQUEST, message, hint === undefined ? {} : { hint })
}

/** Checks `params` against the method's fields; returns only the fields given. */
export function validateNetworkParams(method: NetworkMethod, params: JsonObject): Record<string, unknown> {
  const spec = SPECS[method]
  for (const key of Object.keys(params)) if (!Object.hasOwn(spec, key)) throw bad(`${method}: unknown parameter "${key}"`)
  const out: Record<string, unknown> = {}
  for (const [key, f] of Object.entries(spec)) {
    const v = params[key]
    if (v === undefined || v === null) {
      if (f.kind === 'string' && f.required === true) throw bad(`${method}: missing parameter "${key}"`)
      continue
    }
    switch (f.kind) {
      case 'string':
        if (typeof v !== 'string') throw bad(`${method}: "${key}" must be a string`)
        if (v.length === 0) throw bad(`${method}: "${key}" must not be empty`)
        if (v.length > f.max) throw bad(`${method}: "${key}" is longer than ${f.max} characters`)
        if (f.choices !== undefined && !f.choices.includes(v)) throw bad(`${method}: "${key}" must be one of ${f.choices.join(', ')}`)
        break
      case 'int':
        if (typeof v !== 'number' || !Number.isInteger(v) || v < f.min || v > f.max) throw bad(`${method}: "${key}" must be an integer in ${f.min}..${f.max}`)
        break
      case 'bool':
        if (typeof v !== 'boolean') throw bad(`${method}: "${key}" must be true or false`)
        break
      case 'ports':
        checkPorts(method, v)
        break
    }
    out[key] = v
  }
  if (method === 'network.create') {
    if (out.join_rule === 'token' && out.token === undefined) throw bad('network.create: join rule "token" needs a token', 'give --token T')
    if (out.join_rule !== 'token' && out.token !== undefined) throw bad(`network.create: a token only goes with join rule "token" (not "${String(out.join_rule)}")`)
  }
  return out
}

function checkPorts(method: string, v: unknown): void {
  const hint = 'ports are integers in 1..65535, e.g. --allowed-ports 80,443 (empty list = every port)'
  if (!Array.isArray(v)) throw bad(`${method}: "allowed_ports" must be a list of ports`, hint)
  if (v.length > MAX_ALLOWED_PORTS) throw bad(`${method}: more than ${MAX_ALLOWED_PORTS} allowed ports`, hint)
  for (const p of v) {
    if (typeof p !== 'number' || !Number.isInteger(p) || p < 1 || p > 65535) throw bad(`${method}: allowed port ${JSON.stringify(p)} is out of range`, hint)
  }
}

/** Calls the `NetworkOps` method behind `method`; `ops` null = the daemon is not up (yet). */
export async function dispatchNetwork(ops: NetworkOps | null, method: NetworkMethod, params: JsonObject): Promise<unknown> {
  const p = validateNetworkParams(method, params) as never
  if (ops === null) throw new DaemonError(DaemonErrorCode.CLOSED, `the daemon cannot run ${method} now: it is starting or shutting down`)
  switch (method) {
    case 'network.create':
      return ops.create(p)
    case 'network.join':
      return ops.join(p)
    case 'network.leave':
      return ops.leave(p)
    case 'network.invite':
      return ops.invite(p)
    case 'network.members':
      return ops.members(p)
    case 'network.policy':
      return ops.policy(p)
    case 'network.list':
      return ops.list()
    case 'network.role':
      return ops.role(p)
    case 'network.remove':
      return ops.remove(p)
    case 'audit.list':
      return ops.auditList(p)
    case 'audit.verify':
      return ops.auditVerify(p)
  }
}
