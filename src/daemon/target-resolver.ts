/**
 * TARGET arguments (api.ts) → node IDs: a hostname (asked of the registry), a
 * Pilot address (N:NNNN.HHHH.LLLL) or a mapped overlay IPv6 address. Used by
 * the control API (ping, resolve, trust …) and by the TUN bridge's DNS.
 *
 * Also the hostname shown beside a node: never waits long on the registry,
 * so a status command answers while the registry is down.
 */
import type { ResolveResult } from './api.js'
import { formatAddress, parseAddress, type PilotAddress } from '../protocol/address.js'
import { ipv6TextToPilot, pilotToIpv6Text, type OverlayPrefix } from '../protocol/ipv6-mapping.js'
import type { LookupResult, RegistryClient } from '../registry/client.js'
import { RegistryError, RegistryErrorCode } from '../registry/errors.js'
import { DaemonError, DaemonErrorCode } from './errors.js'

/** How long `peers`/`resolve` wait for a hostname before showing the cached one. */
export const DISPLAY_LOOKUP_WAIT_MS = 300

export interface TargetResolverOptions {
  client: Pick<RegistryClient, 'resolveHostname'>
  /** Cached registry `lookup` answers (RegistryDirectory). */
  directory: {
    lookup(node: number): Promise<LookupResult | null>
    peek(node: number): LookupResult | null
  }
  displayWaitMs?: number
  /** The daemon's overlay prefix: which IPv6 targets are nodes, and the IPv6 `resolve` shows. */
  prefix: OverlayPrefix
}

export class TargetResolver {
  private readonly client: Pick<RegistryClient, 'resolveHostname'>
  private readonly directory: TargetResolverOptions['directory']
  private readonly displayWaitMs: number
  private readonly prefix: OverlayPrefix

  constructor(options: TargetResolverOptions) {
    this.client = options.client
    this.directory = options.directory
    this.displayWaitMs = options.displayWaitMs ?? DISPLAY_LOOKUP_WAIT_MS
    this.prefix = options.prefix
  }

  /**
   * Hostname, Pilot address or mapped IPv6 → node ID (and the hostname when a
   * name was given). PT_NAME_NOT_FOUND otherwise. Addresses must be on the
   * backbone unless `anyNetwork` (then `network` says which; a hostname is
   * the backbone's).
   */
  async resolveTarget(target: string, options: { anyNetwork?: boolean } = {}): Promise<{ node: number; hostname: string | null; network: number }> {
    const pick = (addr: PilotAddress, text: string) =>
      options.anyNetwork === true ? { node: anyNode(addr, text), hostname: null, network: addr.network } : { node: backboneNode(addr, text), hostname: null, network: 0 }
    const text = target.trim()
    if (/^[0-9]+:[0-9A-Fa-f]{4}\./.test(text)) {
      let addr: PilotAddress
      try {
        addr = parseAddress(text)
      } catch (err) {
        throw new DaemonError(DaemonErrorCode.NAME_NOT_FOUND, (err as Error).message, { hint: 'addresses look like 0:0000.0000.002A' })
      }
      return pick(addr, text)
    }
    if (text.includes(':')) {
      let addr: PilotAddress | null = null
      try {
        addr = ipv6TextToPilot(text, this.prefix)
      } catch {
        addr = null
      }
      if (addr === null) {
        throw new DaemonError(DaemonErrorCode.NAME_NOT_FOUND, `"${text}" is not a Pilot address or an overlay IPv6 address of a node`, {
          hint: `use a hostname, N:NNNN.HHHH.LLLL, or an address in ${this.prefix.text}`,
        })
      }
      return pick(addr, text)
    }
    try {
      const r = await this.client.resolveHostname(text.toLowerCase())
      return { node: r.nodeId, hostname: r.hostname, network: 0 }
    } catch (err) {
      if (err instanceof RegistryError && err.code === RegistryErrorCode.ERROR) {
        throw new DaemonError(DaemonErrorCode.NAME_NOT_FOUND, `no node is called "${text}"`, {
          hint: 'check the spelling; hostnames are set with `pilot-tun hostname set`',
          cause: err,
        })
      }
      throw err
    }
  }

  /** The `resolve` answer: address, node ID, overlay IPv6 and hostname. */
  async resolve(target: string): Promise<ResolveResult> {
    const { node, hostname, network } = await this.resolveTarget(target, { anyNetwork: true })
    const addr = { network, node }
    let name = hostname
    if (name === null) name = await this.displayHostname(node)
    return { address: formatAddress(addr), node_id: node, ipv6: pilotToIpv6Text(addr, this.prefix), hostname: name }
  }

  /**
   * A node's hostname for display: after a short wait on the registry this
   * falls back to the last answer seen (or null).
   */
  async displayHostname(node: number): Promise<string | null> {
    let timer: NodeJS.Timeout | undefined
    const fallback = new Promise<null>((resolve) => {
      timer = setTimeout(resolve, this.displayWaitMs, null)
    })
    try {
      const r = await Promise.race([this.directory.lookup(node).catch(() => null), fallback])
      return (r ?? this.directory.peek(node))?.hostname ?? null
    } finally {
      clearTimeout(timer)
    }
  }
}

function anyNode(addr: PilotAddress, text: string): number {
  if (addr.node === 0 || addr.node === 0xffffffff) throw new DaemonError(DaemonErrorCode.NAME_NOT_FOUND, `${text} is not a node`)
  return addr.node
}

function backboneNode(addr: PilotAddress, text: string): number {
  if (addr.network !== 0 || addr.node === 0 || addr.node === 0xffffffff) {
    throw new DaemonError(DaemonErrorCode.NAME_NOT_FOUND, `${text} is not a node on the backbone (network 0)`)
  }
  return addr.node
}
