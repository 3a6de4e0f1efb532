/** UDP endpoint helpers (control plane: no string keys on the packet path). */
import type { UdpEndpoint } from './bind.js'
import { formatHostPort } from '../protocol/host-port.js'

/** `::ffff:1.2.3.4` (a dual-stack socket's view of an IPv4 peer) → `1.2.3.4`. */
export function normalizeHost(host: string): string {
  return host.length > 7 && host.charCodeAt(0) === 58 /* : */ && host.toLowerCase().startsWith('::ffff:') && host.includes('.')
    ? host.slice(7)
    : host
}

export function endpointEquals(a: UdpEndpoint | null, host: string, port: number): boolean {
  return a !== null && a.port === port && a.host === host
}

export function formatEndpoint(e: UdpEndpoint | null): string {
  return e === null ? '-' : formatHostPort(e.host, e.port)
}

/** A direct endpoint we may try for a peer, and where we learned it. */
export interface CandidateEndpoint {
  readonly host: string
  readonly port: number
  /** Learned from a beacon PunchCommand (so a path through it is "punched"). */
  fromPunch: boolean
  fromResolve: boolean
}
