/**
 * The daemon's JSON config file (default /etc/pilot-tun/config.json).
 *
 * Keys are the long flag names of `pilot-tun up`, kebab-case, exactly as typed
 * on the command line without the dashes:
 *
 *     {
 *       "registry": "registry.example.net:9000",
 *       "registry-tls": true,
 *       "registry-fingerprint": "<64 hex digits: the registry's certificate pin>",
 *       "beacon": "registry.example.net:9001",      (several: "b1.example.net:9001,b2.example.net:9001")
 *       "listen": ":4000",
 *       "state-dir": "/var/lib/pilot-tun",
 *       "control-socket": "/run/pilot-tun/control.sock",
 *       "hostname": "build-agent-3",
 *       "auto-accept": false,
 *       "answer-pings": false,
 *       "tasks": true,
 *       "public": false,
 *       "kdf": "auto",
 *       "log-level": "info",
 *       "tun": true,
 *       "interface": "pilot0",
 *       "prefix": "fd50:494c:4f54::/48",
 *       "mtu": 65520,
 *       "dns": "on",
 *       "metrics-listen": "127.0.0.1:9101",
 *       "ipc-socket": "/tmp/pilot.sock",
 *       "dataexchange": true,
 *       "eventstream": true,
 *       "inbox-max-mb": 256,
 *       "inbox-max-files": 10000,
 *       "network-refresh": 10
 *     }
 *
 * `"tun": false` is `--no-tun`, `"dataexchange": false` `--no-dataexchange`, `"eventstream": false` `--no-eventstream`. A flag given on the command line wins over the
 * file. Unknown keys, wrong types and bad values are PT_CONFIG_INVALID naming
 * the key. A missing file is fine when --config was not given; naming a file
 * that does not exist is PT_CONFIG_NOT_FOUND.
 */
import { readFile } from 'node:fs/promises'
import { ConfigError, PilotError } from '../errors.js'

export const DEFAULT_CONFIG_PATH = '/etc/pilot-tun/config.json'
/** The tunnel socket when neither `--listen` nor the file names one (`up`; `netcheck` probes from it). */
export const DEFAULT_LISTEN = ':4000'

type KeySpec =
  | { type: 'string' }
  | { type: 'boolean' }
  | { type: 'number'; min: number; max: number }
  | { type: 'choice'; choices: readonly string[] }

/** Every key the file may hold. Kept in step with the options of `pilot-tun up`. */
export const CONFIG_KEYS = {
  registry: { type: 'string' },
  'registry-tls': { type: 'boolean' },
  'registry-fingerprint': { type: 'string' },
  beacon: { type: 'string' },
  listen: { type: 'string' },
  'state-dir': { type: 'string' },
  'control-socket': { type: 'string' },
  hostname: { type: 'string' },
  'auto-accept': { type: 'boolean' },
  'answer-pings': { type: 'boolean' },
  tasks: { type: 'boolean' },
  public: { type: 'boolean' },
  kdf: { type: 'choice', choices: ['auto', 'hkdf', 'legacy'] },
  'log-level': { type: 'choice', choices: ['error', 'warn', 'info', 'debug'] },
  'log-format': { type: 'choice', choices: ['auto', 'text', 'json'] },
  tun: { type: 'boolean' },
  interface: { type: 'string' },
  prefix: { type: 'string' },
  mtu: { type: 'number', min: 1280, max: 65535 },
  mss: { type: 'number', min: 536, max: 65000 },
  dns: { type: 'choice', choices: ['on', 'off'] },
  'metrics-listen': { type: 'string' },
  'ipc-socket': { type: 'string' },
  dataexchange: { type: 'boolean' },
  eventstream: { type: 'boolean' },
  'inbox-max-mb': { type: 'number', min: 1, max: 1_048_576 },
  'inbox-max-files': { type: 'number', min: 1, max: 10_000_000 },
  'network-refresh': { type: 'number', min: 1, max: 3600 },
} as const satisfies Record<string, KeySpec>

export type ConfigKey = keyof typeof CONFIG_KEYS

type ValueOf<S> = S extends { type: 'string' }
  ? string
  : S extends { type: 'boolean' }
    ? boolean
    : S extends { type: 'number' }
      ? number
      : S extends { choices: readonly (infer C)[] }
        ? C
        : never

export type ConfigValues = { -readonly [K in ConfigKey]?: ValueOf<(typeof CONFIG_KEYS)[K]> }

/**
 * Reads and checks a config file. `explicit` says whether the user named it
 * (--config): only then is a missing file an error.
 */
export async function loadConfigFile(path: string, explicit: boolean): Promise<ConfigValues> {
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'ENOENT' && !explicit) return {}
    if (code === 'ENOENT') {
      throw new PilotError('PT_CONFIG_NOT_FOUND', `config file ${path} does not exist`, {
        hint: 'check the path given to --config, or leave --config out to use flags only',
      })
    }
    throw new ConfigError(`cannot read config file ${path}: ${(err as Error).message}`, code === 'EACCES' ? 'run as root (sudo) or fix the file\'s permissions' : undefined)
  }
  return parseConfig(text, path)
}

/** Parses config text; `source` names the file in messages. */
export function parseConfig(text: string, source = 'config'): ConfigValues {
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch (err) {
    throw new ConfigError(`${source} is not valid JSON: ${(err as Error).message}`, 'the config file is one JSON object, e.g. {"registry": "host:9000"}')
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new ConfigError(`${source} must hold a JSON object`, 'the config file is one JSON object, e.g. {"registry": "host:9000"}')
  }
  const out: Record<string, unknown> = {}
  for (const [key, v] of Object.entries(value)) {
    if (!Object.hasOwn(CONFIG_KEYS, key)) {
      const camel = toKebab(key)
      throw new ConfigError(
        `${source}: unknown key "${key}"`,
        Object.hasOwn(CONFIG_KEYS, camel)
          ? `keys are the long flag names in kebab-case: write "${camel}"`
          : `known keys: ${Object.keys(CONFIG_KEYS).join(', ')}`,
      )
    }
    const spec: KeySpec = CONFIG_KEYS[key as ConfigKey]
    out[key] = checkValue(source, key, spec, v)
  }
  return out as ConfigValues
}

function checkValue(source: string, key: string, spec: KeySpec, v: unknown): unknown {
  const bad = (want: string): ConfigError => new ConfigError(`${source}: "${key}" must be ${want}, not ${JSON.stringify(v)}`)
  switch (spec.type) {
    case 'string':
      if (typeof v !== 'string' || v === '') throw bad('a non-empty string')
      return v
    case 'boolean':
      if (typeof v !== 'boolean') throw bad('true or false')
      return v
    case 'number':
      if (typeof v !== 'number' || !Number.isFinite(v) || v < spec.min || v > spec.max) throw bad(`a number in ${spec.min}..${spec.max}`)
      return v
    case 'choice':
      if (typeof v !== 'string' || !spec.choices.includes(v)) throw bad(`one of ${spec.choices.join(', ')}`)
      return v
  }
}

function toKebab(key: string): string {
  return key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`).replace(/_/g, '-')
}

/**
 * Flags win over the file: `flags` holds only what was typed (undefined for
 * anything not given), `file` what the config file says.
 */
export function mergeConfig(file: ConfigValues, flags: ConfigValues): ConfigValues {
  const out: ConfigValues = { ...file }
  for (const [k, v] of Object.entries(flags)) {
    if (v !== undefined) (out as Record<string, unknown>)[k] = v
  }
  return out
}
