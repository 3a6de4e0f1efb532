/**
 * `runNetcheck`: the edge that runs the sans-IO probe (probe.ts) on a real
 * UDP socket and clock, times the registry alongside (registry-probe.ts), and
 * returns the report (report.ts). It needs no daemon. Every edge — socket,
 * resolver, clock, randomness — can be replaced, so a test can run the whole
 * thing over the in-memory network behind a simulated NAT.
 *
 * The probing socket is bound to the daemon's tunnel port by default (the
 * caller passes the config's `listen`), because that is the mapping that
 * matters: a full-cone rule often covers one forwarded port only. When that
 * port is busy — the daemon is running — and it was not named explicitly,
 * a random port is used instead and the report says so.
 */
import { lookup } from 'node:dns/promises'
import { isIP } from 'node:net'
import { networkInterfaces } from 'node:os'
import { PilotError } from '../errors.js'
import type { Endpoint } from '../protocol/beacon-messages.js'
import { formatHostPort, type HostPort } from '../protocol/host-port.js'
import { CryptoRandom, type RandomSource } from '../random.js'
import { UdpBind, type PacketBind } from '../tunnel/bind.js'
import { NetcheckProbe, type ProbeResult, type ProbeTiming } from './probe.js'
import { probeRegistry, type RegistryProbeResult } from './registry-probe.js'
import { buildReport, type NetcheckReport } from './report.js'

export const NetcheckErrorCode = {
  /** The probing socket cannot be bound. */
  BIND_FAILED: 'PT_NETCHECK_BIND_FAILED',
  /** The beacon's name does not resolve (reported in the result, not thrown). */
  RESOLVE_FAILED: 'PT_NETCHECK_RESOLVE_FAILED',
} as const

export interface NetcheckEdges {
  /** Binds the probing socket; a busy port throws an error whose `code` or `cause.code` is EADDRINUSE. */
  openBind(host: string, port: number): Promise<PacketBind>
  /** A name to an IP of `family`. */
  lookup(host: string, family: 4 | 6): Promise<string>
  /** This host's own addresses. */
  localAddresses(): string[]
  probeRegistry(target: HostPort, timeoutMs: number): Promise<RegistryProbeResult>
  /** Monotonic ms. */
  now(): number
  random: RandomSource
}

export interface NetcheckOptions {
  registry: HostPort | null
  beacon: HostPort | null
  /** The probing socket's address: normally the daemon's tunnel port. */
  listen: HostPort
  /** `listen` was named on the command line: a busy port is then an error, not a reason to pick another. */
  listenExplicit: boolean
  /** The longest the whole check takes. */
  timeoutMs: number
  timing?: Partial<ProbeTiming>
  edges?: Partial<NetcheckEdges>
}

/** The real socket, resolver, interfaces, registry, clock and randomness (a fresh set per run). */
function realEdges(): NetcheckEdges {
  return {
  openBind: (host, port) => UdpBind.open({ host, port, receiveBufferSize: 256 * 1024, sendBufferSize: 256 * 1024 }),
  lookup: async (host, family) => (isIP(host) !== 0 ? host : (await lookup(host, { family })).address),
  localAddresses: () =>
    Object.values(networkInterfaces())
      .flat()
      .flatMap((a) => (a === undefined ? [] : [a.address])),
  probeRegistry: (target, timeoutMs) => probeRegistry(target, timeoutMs),
  now: () => performance.now(),
  random: new CryptoRandom(),
  }
}

export async function runNetcheck(opts: NetcheckOptions): Promise<NetcheckReport> {
  const edges: NetcheckEdges = { ...realEdges(), ...opts.edges }
  const { bind, busy } = await openProbingSocket(edges, opts.listen, opts.listenExplicit)
  try {
    const registry = opts.registry === null ? null : edges.probeRegistry(opts.registry, opts.timeoutMs)
    const beacon = opts.beacon === null ? null : probeBeacon(edges, bind, opts.beacon, opts)
    const local = bind.local
    const localAddresses = isUnspecified(local.host) ? edges.localAddresses() : [local.host]
    return buildReport({
      local,
      localBusy: busy ? opts.listen : null,
      localAddresses,
      beacon: beacon === null ? null : { address: formatHostPort(opts.beacon!.host, opts.beacon!.port), ...(await beacon) },
      registry: registry === null ? null : { address: formatHostPort(opts.registry!.host, opts.registry!.port), result: await registry },
    })
  } finally {
    await bind.close()
  }
}

async function openProbingSocket(edges: NetcheckEdges, listen: HostPort, explicit: boolean): Promise<{ bind: PacketBind; busy: boolean }> {
  try {
    return { bind: await edges.openBind(listen.host, listen.port), busy: false }
  } catch (err) {
    const inUse = isAddressInUse(err)
    if (inUse && !explicit && listen.port !== 0) {
      try {
        return { bind: await edges.openBind(listen.host, 0), busy: true }
      } catch (again) {
        err = again
      }
    }
    throw new PilotError(NetcheckErrorCode.BIND_FAILED, `cannot bind UDP ${formatHostPort(listen.host, listen.port)}: ${(err as Error).message}`, {
      hint: inUse ? 'the port is busy (a running daemon?): pick another with --listen, e.g. --listen :0' : 'use one of this host\'s addresses, or 0.0.0.0 / [::]',
      cause: err,
    })
  }
}

async function probeBeacon(
  edges: NetcheckEdges,
  bind: PacketBind,
  beacon: HostPort,
  opts: NetcheckOptions,
): Promise<{ probe: ProbeResult | null; error: { code: string; message: string } | null }> {
  const family = bind.local.host.includes(':') ? 6 : 4
  let host: string
  try {
    host = await edges.lookup(beacon.host, family)
  } catch (err) {
    return { probe: null, error: { code: NetcheckErrorCode.RESOLVE_FAILED, message: `cannot resolve ${beacon.host} (IPv${family}): ${(err as Error).message}` } }
  }
  return { probe: await driveProbe(edges, bind, { host, port: beacon.port }, opts), error: null }
}

/** Runs the sans-IO probe on `bind` until it is done: poll, send, arm one timer. */
function driveProbe(edges: NetcheckEdges, bind: PacketBind, beacon: Endpoint, opts: NetcheckOptions): Promise<ProbeResult> {
  return new Promise((resolve) => {
    const probe = new NetcheckProbe(beacon, edges.now(), { timeoutMs: opts.timeoutMs, txid: edges.random.u32(), ...(opts.timing ? { timing: opts.timing } : {}) })
    let timer: NodeJS.Timeout | null = null
    const flush = (): void => {
      for (let t = probe.pollTransmit(); t !== null; t = probe.pollTransmit()) bind.send(t.data, t.host, t.port)
      if (timer !== null) clearTimeout(timer)
      timer = null
      const wake = probe.pollTimeout()
      if (probe.done || wake === null) {
        resolve(probe.result())
        return
      }
      timer = setTimeout(() => {
        timer = null
        probe.handleTimeout(edges.now())
        flush()
      }, Math.max(0, wake - edges.now()))
    }
    bind.onDatagram((data, host, port) => {
      if (probe.done) return
      probe.handleDatagram(edges.now(), data, host, port)
      flush()
    })
    flush()
  })
}

function isAddressInUse(err: unknown): boolean {
  const e = err as { code?: unknown; cause?: { code?: unknown } } | null
  return e?.code === 'EADDRINUSE' || e?.cause?.code === 'EADDRINUSE'
}

function isUnspecified(host: string): boolean {
  return host === '0.0.0.0' || host === '::'
}
