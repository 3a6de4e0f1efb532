/**
 * What `pilot-tun netcheck --json` prints (`NetcheckReport`; snake_case, as
 * the daemon's results in daemon/api.ts), and `buildReport`, which turns the
 * probe's and the registry probe's raw results into it, classifier verdict
 * included. Pure: no I/O.
 */
import { formatHostPort } from '../protocol/host-port.js'
import type { Endpoint } from '../protocol/beacon-messages.js'
import { classifyNat, type FilteringBehaviour, type MappingBehaviour, type NatKind, type NatObservations, type ProbeVantage } from './classify.js'
import { median, type ProbeResult } from './probe.js'
import type { RegistryProbeResult } from './registry-probe.js'

export interface NetcheckReport {
  /** The UDP socket every probe left from: the inside endpoint the NAT translated. */
  local: string
  /** The port asked for (`--listen`, the config's `listen`) when it was busy, e.g. a running daemon's; `local` is then a random one. */
  local_busy: string | null
  /** Whether the beacon answered over UDP; null when it was not probed (none given, or its name did not resolve). */
  udp: boolean | null
  /** Our endpoint as the beacon saw it. */
  public_endpoint: string | null
  nat: {
    kind: NatKind
    /** For people: "port-restricted cone", "cone (full or address-restricted: unknown)". */
    description: string
    mapping: MappingBehaviour
    filtering: FilteringBehaviour
  }
  beacon: NetcheckBeacon | null
  registry: NetcheckRegistry | null
  /** What could not be tested or told apart. */
  notes: string[]
}

export interface NetcheckBeacon {
  /** As given (a name or an IP). */
  address: string
  /** The IP endpoint probed; null when the name did not resolve. */
  endpoint: string | null
  /** Median Discover → DiscoverReply round trip. */
  rtt_ms: number | null
  rtt_samples_ms: number[]
  /** The beacon answered a ProbeRequest (docs/wire.md §9.8). */
  probe_ports: boolean
  probes: NetcheckProbePort[]
  error: { code: string; message: string } | null
}

export interface NetcheckProbePort {
  endpoint: string
  vantage: ProbeVantage
  /** Our endpoint as this port saw it; null = no answer. */
  mapped: string | null
  /** Its unsolicited packet reached us. */
  unsolicited_received: boolean
}

export interface NetcheckRegistry {
  address: string
  reachable: boolean
  /** TCP connect, ms. */
  connect_ms: number | null
  /** One request's round trip on the open connection, ms. */
  rtt_ms: number | null
  error: { code: string; message: string } | null
}

export interface ReportInput {
  local: Endpoint
  localBusy: Endpoint | null
  /** This host's addresses (an observed endpoint among them, on our port, means no NAT). */
  localAddresses: readonly string[]
  beacon: { address: string; probe: ProbeResult | null; error: { code: string; message: string } | null } | null
  registry: { address: string; result: RegistryProbeResult } | null
}

export function buildReport(input: ReportInput): NetcheckReport {
  const probe = input.beacon?.probe ?? null
  const notes: string[] = []
  if (input.localBusy !== null) {
    notes.push(`port ${input.localBusy.port} was busy (a running daemon?), so the probes left from port ${input.local.port}; a NAT may treat the daemon's port differently`)
  }
  let nat: NetcheckReport['nat']
  if (probe === null) {
    nat = { kind: 'unknown', description: input.beacon === null ? 'unknown (no beacon to ask)' : 'unknown (the beacon was not probed)', mapping: 'unknown', filtering: 'unknown' }
    if (input.beacon === null) notes.push('no beacon given (--beacon or the config file\'s "beacon"): UDP and the NAT were not tested')
  } else {
    const verdict = classifyNat(observationsOf(probe, input.local.port, input.localAddresses))
    nat = { kind: verdict.kind, description: verdict.description, mapping: verdict.mapping, filtering: verdict.filtering }
    notes.push(...verdict.notes)
    if (probe.publicEndpointChanged) notes.push('the beacon saw our public endpoint change during the check (the NAT rebound the mapping)')
  }
  return {
    local: text(input.local),
    local_busy: input.localBusy === null ? null : text(input.localBusy),
    udp: probe === null ? null : probe.publicEndpoint !== null,
    public_endpoint: probe?.publicEndpoint ? text(probe.publicEndpoint) : null,
    nat,
    beacon: input.beacon === null ? null : beaconPart(input.beacon.address, probe, input.beacon.error),
    registry: input.registry === null ? null : registryPart(input.registry.address, input.registry.result),
    notes,
  }
}

/** The classifier's view of one probe run. */
export function observationsOf(probe: ProbeResult, localPort: number, localAddresses: readonly string[]): NatObservations {
  return {
    local: { addresses: localAddresses, port: localPort },
    primary: probe.publicEndpoint,
    probesAnswered: probe.probesAnswered,
    mappings: probe.probes.map((p) => ({ towards: p.vantage, observed: p.mapped })),
    // A reply that came from another address than advertised tested that address (a multi-homed beacon).
    filtering: probe.probes.map((p) => ({
      from: p.unsolicitedFrom === null ? p.vantage : p.unsolicitedFrom.host === probe.beacon.host ? 'other-port' : 'other-address',
      received: p.unsolicitedFrom !== null,
    })),
  }
}

function beaconPart(address: string, probe: ProbeResult | null, error: NetcheckBeacon['error']): NetcheckBeacon {
  const samples = probe?.rttSamplesMs.map(round3) ?? []
  return {
    address,
    endpoint: probe === null ? null : text(probe.beacon),
    rtt_ms: samples.length === 0 ? null : median(samples),
    rtt_samples_ms: samples,
    probe_ports: probe?.probesAnswered ?? false,
    probes: (probe?.probes ?? []).map((p) => ({
      endpoint: text(p.endpoint),
      vantage: p.vantage,
      mapped: p.mapped === null ? null : text(p.mapped),
      unsolicited_received: p.unsolicitedFrom !== null,
    })),
    error,
  }
}

function registryPart(address: string, r: RegistryProbeResult): NetcheckRegistry {
  return {
    address,
    reachable: r.connectMs !== null,
    connect_ms: r.connectMs === null ? null : round3(r.connectMs),
    rtt_ms: r.rttMs === null ? null : round3(r.rttMs),
    error: r.error === null ? null : { code: r.error.code, message: r.error.message },
  }
}

function text(e: Endpoint): string {
  return formatHostPort(e.host, e.port)
}

function round3(x: number): number {
  return Math.round(x * 1000) / 1000
}
