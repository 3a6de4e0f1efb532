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
