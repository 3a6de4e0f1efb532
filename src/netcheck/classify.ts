/**
 * The NAT verdict of `pilot-tun netcheck`, from observations alone: no
 * sockets, no clock. Terms are RFC 4787's, and the kinds are the classic ones
 * (RFC 3489) they combine into.
 *
 * Mapping (does the public endpoint depend on where a packet goes?): compare
 * the endpoint the beacon's main port saw with what its probe ports saw, one
 * on another port of the beacon's address, optionally one on another address.
 * Filtering (who may send to that public endpoint?): whether a packet from a
 * port, or an address, we never sent to reached us.
 *
 * What one beacon cannot see is said, not guessed: without a probe on another
 * address a full cone and an address-restricted cone look the same ("cone"),
 * and so do a port-dependent and an address-dependent mapping for addresses.
 */
import type { Endpoint } from '../protocol/beacon-messages.js'

/** Which way a probe differs from the beacon's main port: another port of the same address, or another address. */
export type ProbeVantage = 'other-port' | 'other-address'

export interface MappingObservation {
  readonly towards: ProbeVantage
  /** Our endpoint as that probe port saw it; null = it never answered. */
  readonly observed: Endpoint | null
}

export interface FilteringObservation {
  readonly from: ProbeVantage
  /** Whether the unsolicited packet arrived (across all attempts). */
  readonly received: boolean
}

export interface NatObservations {
  /** This host's own addresses and the probing socket's port: an observed endpoint among them means no NAT. */
  readonly local: { readonly addresses: readonly string[]; readonly port: number }
  /** Our endpoint as the beacon's main port saw it; null = the beacon never answered over UDP. */
  readonly primary: Endpoint | null
  /** Whether the beacon answered a ProbeRequest (a pilot-tun beacon with probe ports); false for a Go beacon. */
  readonly probesAnswered: boolean
  readonly mappings: readonly MappingObservation[]
  readonly filtering: readonly FilteringObservation[]
}

export type MappingBehaviour = 'endpoint-independent' | 'address-dependent' | 'address-and-port-dependent' | 'unknown'
export type FilteringBehaviour =
  | 'endpoint-independent'
  | 'address-dependent'
  | 'address-and-port-dependent'
  /** Another port got through, another address was not tried. */
  | 'endpoint-independent-or-address-dependent'
  /** Another address was stopped, another port was not tried. */
  | 'address-dependent-or-address-and-port-dependent'
  | 'unknown'

export type NatKind =
  /** The public endpoint is this host's own: no NAT. */
  | 'none'
  | 'full-cone'
  /** Address-restricted cone. */
  | 'restricted-cone'
  | 'port-restricted-cone'
  /** A cone (endpoint-independent mapping) whose filtering could not be pinned down; `description` says what is left. */
  | 'cone'
  | 'symmetric'
  /** No UDP answer, or behind a NAT the beacon's probes could not characterise. */
  | 'unknown'

export interface NatVerdict {
  readonly kind: NatKind
  /** One line for people, e.g. "cone (full or address-restricted: unknown)". */
  readonly description: string
  readonly mapping: MappingBehaviour
  readonly filtering: FilteringBehaviour
  /** What could not be told apart, and why. */
  readonly notes: readonly string[]
}

export function classifyNat(o: NatObservations): NatVerdict {
  const notes: string[] = []
  if (o.primary === null) {
    return {
      kind: 'unknown',
      description: 'unknown (no UDP answer from the beacon)',
      mapping: 'unknown',
      filtering: 'unknown',
      notes: ['the beacon never answered over UDP: UDP is blocked on the way, or the beacon is down'],
    }
  }
  const filtering = filteringBehaviour(o.filtering)
  if (!o.probesAnswered) notes.push('the beacon has no netcheck probe ports (a Go beacon, or `pilot-tun beacon` without --probe-listen): mapping and filtering were not tested')
  if (isLocal(o.primary, o.local)) {
    // No translation; the filtering tests still say whether a firewall drops unsolicited UDP.
    const blocked = o.filtering.some((f) => !f.received)
    return {
      kind: 'none',
      description: blocked ? 'none (public endpoint is local), but unsolicited UDP is dropped (a firewall)' : 'none (public endpoint is local)',
      mapping: 'endpoint-independent',
      filtering,
      notes,
    }
  }
  const mapping = mappingBehaviour(o.primary, o.mappings, notes)
  if (mapping === 'unknown') {
    if (o.probesAnswered) notes.push('no probe port answered our Discover: the mapping could not be compared')
    return { kind: 'unknown', description: 'behind NAT (kind unknown)', mapping, filtering, notes }
  }
  if (mapping !== 'endpoint-independent') {
    return { kind: 'symmetric', description: 'symmetric (a new public port per destination)', mapping, filtering, notes }
  }
  switch (filtering) {
    case 'endpoint-independent':
      return { kind: 'full-cone', description: 'full cone', mapping, filtering, notes }
    case 'address-dependent':
      return { kind: 'restricted-cone', description: 'restricted cone (address-restricted)', mapping, filtering, notes }
    case 'address-and-port-dependent':
      return { kind: 'port-restricted-cone', description: 'port-restricted cone', mapping, filtering, notes }
    case 'endpoint-independent-or-address-dependent':
      notes.push('no probe port on another beacon address: a full cone and an address-restricted cone look the same from one address')
      return { kind: 'cone', description: 'cone (full or address-restricted: unknown)', mapping, filtering, notes }
    case 'address-dependent-or-address-and-port-dependent':
      notes.push('no probe from another port of the beacon\'s address: address- and port-restricted cones look the same')
      return { kind: 'cone', description: 'cone (address- or port-restricted: unknown)', mapping, filtering, notes }
    case 'unknown':
      notes.push('no unsolicited probe was sent: the filtering is unknown')
      return { kind: 'cone', description: 'cone (filtering unknown)', mapping, filtering, notes }
  }
}

function isLocal(e: Endpoint, local: NatObservations['local']): boolean {
  return e.port === local.port && local.addresses.includes(e.host)
}

function sameEndpoint(a: Endpoint, b: Endpoint): boolean {
  return a.port === b.port && a.host === b.host
}

function mappingBehaviour(primary: Endpoint, mappings: readonly MappingObservation[], notes: string[]): MappingBehaviour {
  const changed = (towards: ProbeVantage): boolean | null => {
    const seen = mappings.filter((m) => m.towards === towards && m.observed !== null)
    if (seen.length === 0) return null
    return seen.some((m) => !sameEndpoint(m.observed!, primary))
  }
  const port = changed('other-port')
  const address = changed('other-address')
  if (port === null && address === null) return 'unknown'
  // A new mapping for another port of the same address: the mapping depends on the port.
  if (port === true) return 'address-and-port-dependent'
  if (address === true) {
    if (port === null) notes.push('no probe on another port of the beacon\'s address: the mapping may depend on the port as well')
    return 'address-dependent'
  }
  if (address === null) notes.push('no probe port on another beacon address: a mapping that changes only with the destination address would look endpoint-independent')
  return 'endpoint-independent'
}

function filteringBehaviour(filtering: readonly FilteringObservation[]): FilteringBehaviour {
  const got = (from: ProbeVantage): boolean | null => {
    const tried = filtering.filter((f) => f.from === from)
    return tried.length === 0 ? null : tried.some((f) => f.received)
  }
  const port = got('other-port')
  const address = got('other-address')
  if (address === true) return 'endpoint-independent'
  if (address === false) {
    if (port === true) return 'address-dependent'
    if (port === false) return 'address-and-port-dependent'
    return 'address-dependent-or-address-and-port-dependent'
  }
  if (port === true) return 'endpoint-independent-or-address-dependent'
  if (port === false) return 'address-and-port-dependent'
  return 'unknown'
}
