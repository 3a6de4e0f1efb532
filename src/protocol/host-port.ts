/**
 * `host:port` text, parsed and formatted one way for the whole project:
 * command-line flags and config keys, the registry's `real_addr`, the
 * beacon addresses the registry keeps, log lines and status output.
 *
 *   1.2.3.4:9000       an IPv4 address (or a DNS name, where names are allowed)
 *   [2001:db8::1]:9000 an IPv6 address, always in brackets: "::1:9000" is refused,
 *                      since it is itself an IPv6 address and the port could be its last group
 *   :9000              listen addresses only: every IPv4 interface (0.0.0.0)
 *   9000               only where `barePort` is allowed (the beacon's --listen)
 *
 * Ports are 1..65535, or 0..65535 for listen addresses (0 = any free port).
 * A refusal is a `DecodeError` ('bad-address' or 'bad-port') whose message
 * names the flag; the CLI and the daemon turn it into their own error
 * (PT_CONFIG_INVALID, PT_BEACON_INVALID_LISTEN) at their edge.
 */
import { isIP } from 'node:net'
import { DecodeError } from '../errors.js'

export interface HostPort {
  readonly host: string
  readonly port: number
}

/**
 * Which hosts a text may name: IP literals only, IP literals or `localhost`
 * (a TCP listener), or IP literals and DNS names (something to connect to).
 */
export type HostKind = 'ip' | 'ip-or-localhost' | 'name'

export interface HostPortRules {
  /** Names the text in error messages, e.g. '--registry'. */
  readonly flag?: string
  /** Default 'name'. */
  readonly hosts?: HostKind
  /** A listen address: an empty host means every IPv4 interface, and port 0 (any free port) is allowed. */
  readonly listen?: boolean
  /** With `listen`: a bare `PORT` is accepted too (every IPv4 interface). */
  readonly barePort?: boolean
}

/** The host of `:port` and of a bare port: every IPv4 interface. */
export const ALL_IPV4_INTERFACES = '0.0.0.0'

/** DNS labels (letters, digits, '-', '_' as in service names), dot-separated, 253 characters at most. */
const HOST_NAME = /^(?=.{1,253}$)[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?(?:\.[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)*\.?$/
const DECIMAL_PORT = /^[0-9]{1,5}$/

/** Parses `text` by `rules`; throws `DecodeError` naming the flag and what is wrong. */
export function parseHostPort(text: string, rules: HostPortRules = {}): HostPort {
  const listen = rules.listen === true
  const refuse = (reason: 'bad-address' | 'bad-port', why: string): DecodeError => new DecodeError(reason, `${subject(text, rules.flag)}: ${why}`)
  if (listen && rules.barePort === true && /^[0-9]+$/.test(text)) return { host: ALL_IPV4_INTERFACES, port: checkPort(text, listen, refuse) }

  let host: string
  let portText: string | null
  let bracketed = false
  if (text.startsWith('[')) {
    const close = text.indexOf(']')
    if (close < 0) throw refuse('bad-address', 'missing "]" after the IPv6 address')
    host = text.slice(1, close)
    bracketed = true
    const rest = text.slice(close + 1)
    if (rest !== '' && !rest.startsWith(':')) throw refuse('bad-address', 'expected ":PORT" after "]"')
    portText = rest === '' ? null : rest.slice(1)
  } else {
    const colon = text.lastIndexOf(':')
    host = colon < 0 ? text : text.slice(0, colon)
    portText = colon < 0 ? null : text.slice(colon + 1)
  }

  if (portText === null || portText === '') throw refuse('bad-port', `no port (expected ${listen ? '[HOST]:PORT' : 'HOST:PORT'})`)
  const port = checkPort(portText, listen, refuse)

  if (bracketed) {
    if (isIP(host) !== 6) throw refuse('bad-address', `[${host}] is not an IPv6 address`)
    return { host, port }
  }
  if (host === '') {
    if (!listen) throw refuse('bad-address', 'no host')
    return { host: ALL_IPV4_INTERFACES, port }
  }
  if (host.includes(':')) {
    if (isIP(host) === 6) throw refuse('bad-address', `write an IPv6 address in brackets: [${host}]:${portText}`)
    if (isIP(text) === 6) throw refuse('bad-address', `an IPv6 address needs brackets and a port: [${clip(text)}]:PORT`)
  }
  const kind = rules.hosts ?? 'name'
  if (isIP(host) === 4) return { host, port }
  if (kind === 'ip-or-localhost' && host === 'localhost') return { host, port }
  if (kind === 'name' && HOST_NAME.test(host)) return { host, port }
  throw refuse('bad-address', kind === 'name' ? `"${clip(host)}" is not a host name or IP address` : `"${clip(host)}" is not an IP address`)
}

/** `parseHostPort`, with null instead of an error (input from the network: the caller counts or ignores it). */
export function tryParseHostPort(text: string, rules: HostPortRules = {}): HostPort | null {
  try {
    return parseHostPort(text, rules)
  } catch (err) {
    if (err instanceof DecodeError) return null
    throw err
  }
}

/** `1.2.3.4:9000`, `name:9000`, or `[2001:db8::1]:9000`: what `parseHostPort` reads back. */
export function formatHostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`
}

function checkPort(text: string, listen: boolean, refuse: (reason: 'bad-port', why: string) => DecodeError): number {
  const port = DECIMAL_PORT.test(text) ? Number(text) : -1
  const min = listen ? 0 : 1
  if (port < min || port > 0xffff) throw refuse('bad-port', `port "${clip(text)}" is not a number in ${min}..65535`)
  return port
}

function subject(text: string, flag: string | undefined): string {
  const quoted = JSON.stringify(clip(text))
  return flag === undefined ? quoted : `${flag} ${quoted}`
}

function clip(s: string): string {
  return s.length > 80 ? `${s.slice(0, 80)}…` : s
}
