/** `real_addr` text: the TCP source IP of the registration plus the port the node listens on (docs/wire.md §10.5.1). */
import { isIP } from 'node:net'
import { tryParseHostPort } from '../protocol/host-port.js'

/** `ip:port`, or `[ipv6]:port` (the project's one formatter). */
export { formatHostPort } from '../protocol/host-port.js'

/** Node reports IPv4 peers of a dual-stack socket as `::ffff:a.b.c.d`; store the plain IPv4 form. */
export function normalizeRemoteIp(ip: string): string {
  const lower = ip.toLowerCase()
  if (lower.startsWith('::ffff:') && isIP(lower.slice(7)) === 4) return lower.slice(7)
  return lower
}

/** The port of a `host:port` text, or null if there is none in 1..65535. */
export function portOf(hostPort: string): number | null {
  const colon = hostPort.lastIndexOf(':')
  if (colon < 0) return null
  const text = hostPort.slice(colon + 1)
  if (!/^[0-9]{1,5}$/.test(text)) return null
  const port = Number(text)
  return port >= 1 && port <= 65535 ? port : null
}

/** A plausible `host:port` (IPv4, `[IPv6]` or a DNS name) for beacon addresses. */
export function isHostPort(text: string): boolean {
  return text.length <= 262 && tryParseHostPort(text, { hosts: 'name' }) !== null
}

/**
 * What connections are counted against for the per-source cap: an IPv4 address as it is,
 * an IPv6 address by its /64 (one host usually holds a whole /64), e.g. `2001:db8:0:1::/64`.
 */
export function sourceKeyOf(ip: string): string {
  const bare = ip.toLowerCase().split('%')[0]!
  if (isIP(bare) !== 6) return bare
  const halves = bare.split('::')
  const head = halves[0] === '' ? [] : halves[0]!.split(':')
  const tail = halves.length < 2 || halves[1] === '' ? [] : halves[1]!.split(':')
  // A dotted IPv4 tail takes the room of two groups.
  const tailGroups = tail.reduce((n, g) => n + (g.includes('.') ? 2 : 1), 0)
  const groups = halves.length < 2 ? head : [...head, ...Array<string>(Math.max(0, 8 - head.length - tailGroups)).fill('0'), ...tail]
  return `${groups.slice(0, 4).map((g) => parseInt(g, 16).toString(16)).join(':')}::/64`
}
