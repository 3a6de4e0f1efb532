/**
 * The TUN front door as the daemon sees it: one call builds it (interface,
 * bridge, DNS responder), one call tears it down in order:
 *
 *   start:  parse options → open + configure the interface (openTunInterface)
 *           → TunBridge.start (listener, reflector, reading) → DNS responder
 *           (optional: a port it cannot bind leaves DNS off with a warning,
 *           and status().dns says why)
 *   close:  bridge.close (sockets, hooks) → DNS close (resolvectl revert)
 *           → interface close (the kernel removes address and routes)
 *
 * Tests inject a `device` (MemoryTun) instead of a real interface, and a
 * loopback listener host since A is not a local address then.
 */
import type { Logger } from '../logger.js'
import { nullLogger } from '../logger.js'
import { DEFAULT_OVERLAY_PREFIX_TEXT, formatIpv6, parseOverlayPrefix, pilotToIpv6Text, reflectorIpv6, type OverlayPrefix } from '../protocol/ipv6-mapping.js'
import { DEFAULT_TUN_MTU, DEFAULT_TUN_NAME, resolveTunOptions, type TunDevice } from './device.js'
import { assertInterfaceFree, hasNetAdmin, openTunInterface, type IpRunner, type TunInterface } from './interface-setup.js'
import { TunError, TunErrorCode, PERMISSION_HINT } from './tun-errors.js'
import type { TunAddon } from './native.js'
import { TunBridge, type TunBridgeOptions, type TunBridgeStats } from './bridge.js'
import { DnsResponder, type CommandRunner, type DnsStats } from './bridge-dns.js'
import type { BridgeHost } from './bridge-host.js'

export interface TunFrontDoorOptions {
  /** Interface name; default pilot0. */
  interface?: string
  /** Overlay prefix; default fd50:494c:4f54::/48. */
  prefix?: string
  /** Link MTU; default 65520. */
  mtu?: number
  /** Answer `<hostname>.pilot` on [A]:53; default true. */
  dns?: boolean
  // ---- tests ----
  /** A ready device (MemoryTun): no interface is created. */
  device?: TunDevice
  /** Where the DNS responder binds (default [A]:53). */
  dnsBind?: { host: string; port: number }
  /** Internal listener / inbound bind host (default A). */
  listenHost?: string
  ipRunner?: IpRunner
  commandRunner?: CommandRunner
  addon?: TunAddon
  bridge?: Partial<Pick<TunBridgeOptions, 'icmpErrorsPerSecond' | 'pingTimeoutMs' | 'tickMs' | 'acceptTimeoutMs' | 'inboundConnectTimeoutMs' | 'inboundConnect'>>
}

/** `status().tun`. */
export interface TunStatus {
  interface: string
  address: string
  prefix: string
  mtu: number
  dns: string
}

export interface TunFrontDoorStats {
  bridge: TunBridgeStats
  dns: DnsStats | null
  device: TunDevice['stats']
}

/**
 * One line for the log and `status`: where the responder tried to bind, the
 * errno, and the usual way out for the two that happen in practice.
 */
export function describeDnsStartFailure(err: unknown, host: string, port: number): string {
  const where = `[${host}]:${port}`
  const code = (err as NodeJS.ErrnoException | null)?.code
  if (typeof code !== 'string') return `cannot bind ${where}: ${err instanceof Error ? err.message : String(err)}`
  const fix =
    code === 'EACCES' || code === 'EPERM'
      ? ': ports below 1024 need root or CAP_NET_BIND_SERVICE (the shipped systemd unit grants it)'
      : code === 'EADDRINUSE'
        ? ': another DNS server holds that port on that address'
        : ''
  return `cannot bind ${where} (${code})${fix}`
}

function parsePrefix(text: string): OverlayPrefix {
  try {
    return parseOverlayPrefix(text)
  } catch (err) {
    throw new TunError(TunErrorCode.INVALID_OPTIONS, `bad overlay prefix: ${(err as Error).message}`, {
      hint: `use a /48, e.g. --prefix ${DEFAULT_OVERLAY_PREFIX_TEXT}`,
      cause: err,
    })
  }
}

/**
 * Checks that cost nothing and change nothing, run before the daemon
 * registers: options, permission, and that the interface name is free.
 */
export async function precheckTunFrontDoor(options: TunFrontDoorOptions): Promise<void> {
  parsePrefix(options.prefix ?? DEFAULT_OVERLAY_PREFIX_TEXT)
  resolveTunOptions({ name: options.interface ?? DEFAULT_TUN_NAME, mtu: options.mtu ?? DEFAULT_TUN_MTU })
  if (options.device !== undefined) return
  if (!hasNetAdmin()) {
    throw new TunError(TunErrorCode.PERMISSION, `creating ${options.interface ?? DEFAULT_TUN_NAME} needs root or CAP_NET_ADMIN`, { hint: PERMISSION_HINT })
  }
  await assertInterfaceFree(options.interface ?? DEFAULT_TUN_NAME, options.ipRunner)
}

export class TunFrontDoor {
  private closing: Promise<void> | null = null

  private constructor(
    readonly bridge: TunBridge,
    readonly dns: DnsResponder | null,
    /** Why the DNS responder is not running although it was asked for (status shows it). */
    private readonly dnsFailure: string | null,
    readonly device: TunDevice,
    private readonly iface: TunInterface | null,
    readonly prefix: OverlayPrefix,
    private readonly logger: Logger,
  ) {}

  /** Builds and starts everything; on failure (other than DNS's) nothing is left behind. */
  static async start(host: BridgeHost, options: TunFrontDoorOptions, logger: Logger = nullLogger, onFatal?: (err: TunError) => void): Promise<TunFrontDoor> {
    const prefix = parsePrefix(options.prefix ?? DEFAULT_OVERLAY_PREFIX_TEXT)
    const name = options.interface ?? DEFAULT_TUN_NAME
    const mtu = options.mtu ?? DEFAULT_TUN_MTU
    // Addresses first (pure), so the interface gets A and the route to R's prefix.
    const address = pilotToIpv6Text(host.address, prefix)
    const reflector = formatIpv6(reflectorIpv6(prefix, host.address.network))
    let iface: TunInterface | null = null
    let device: TunDevice
    if (options.device !== undefined) {
      device = options.device
    } else {
      iface = await openTunInterface(
        { name, mtu, address, prefix, reflector },
        { ...(options.ipRunner ? { run: options.ipRunner } : {}), ...(options.addon ? { addon: options.addon } : {}) },
      )
      device = iface.device
    }
    let bridge: TunBridge
    try {
      bridge = await TunBridge.start({
        host,
        device,
        prefix,
        logger: logger.child({ component: 'tun' }),
        ...(options.listenHost ? { listenHost: options.listenHost, inboundBindHost: options.listenHost } : {}),
        ...options.bridge,
        ...(onFatal ? { onFatal } : {}),
      })
    } catch (err) {
      if (iface !== null) await iface.close().catch(() => {})
      throw err
    }
    let dns: DnsResponder | null = null
    let dnsFailure: string | null = null
    if (options.dns !== false) {
      const dnsLogger = logger.child({ component: 'dns' })
      const bindHost = options.dnsBind?.host ?? bridge.localAddressText
      const bindPort = options.dnsBind?.port ?? 53
      const responder = new DnsResponder({
        host,
        prefix,
        bindHost,
        bindPort,
        interfaceName: device.name,
        logger: dnsLogger,
        useResolved: options.device === undefined,
        ...(options.commandRunner ? { run: options.commandRunner } : {}),
      })
      // The responder is a convenience (names for addresses anyone can type);
      // without it the node still carries traffic, so a port it cannot have
      // (no CAP_NET_BIND_SERVICE, another resolver on 53) is a warning.
      try {
        await responder.start()
        dns = responder
      } catch (err) {
        await responder.close().catch(() => {})
        dnsFailure = describeDnsStartFailure(err, bindHost, bindPort)
        dnsLogger.warn('the .pilot DNS responder is off: its port could not be bound', {
          error: dnsFailure,
          code: (err as NodeJS.ErrnoException | null)?.code ?? null,
        })
      }
    }
    return new TunFrontDoor(bridge, dns, dnsFailure, device, iface, prefix, logger)
  }

  status(): TunStatus {
    return {
      interface: this.device.name,
      address: this.bridge.localAddressText,
      prefix: this.prefix.text,
      mtu: this.device.mtu,
      dns: this.dns !== null ? this.dns.hint() : this.dnsFailure !== null ? `failed: ${this.dnsFailure}` : 'off',
    }
  }

  /**
   * Network N's address and /64 route on the interface (a network joined).
   * Without an interface of ours (a device handed in) there is nothing to configure.
   */
  async addNetwork(network: number): Promise<void> {
    if (this.closing !== null) return
    await this.iface?.setup.addNetwork(network)
  }

  /** Takes network N's address and route away (a network left). */
  async removeNetwork(network: number): Promise<void> {
    await this.iface?.setup.removeNetwork(network)
  }

  stats(): TunFrontDoorStats {
    return { bridge: this.bridge.stats(), dns: this.dns?.stats() ?? null, device: { ...this.device.stats } }
  }

  /** Bridge, DNS, then the interface. Idempotent. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      await this.bridge.close().catch((err: Error) => this.logger.warn('closing the TUN bridge failed', { error: err.message }))
      await this.dns?.close().catch((err: Error) => this.logger.warn('closing the DNS responder failed', { error: err.message }))
      if (this.iface !== null) {
        await this.iface.close().catch((err: Error) => this.logger.warn('removing the TUN interface failed', { error: err.message }))
      } else {
        this.device.close()
      }
    })()
    return this.closing
  }
}
