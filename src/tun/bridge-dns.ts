/**
 * The `.pilot` DNS responder of the TUN front door: a UDP socket on [A]:53
 * answering `<hostname>.pilot` AAAA with the node's mapped address, looked
 * up through the daemon (registry) and cached briefly. The codec is dns.ts.
 * `<hostname>.<network>.pilot` answers `prefix:N::node` when this node and
 * that one are members of the network named so (the host's
 * `resolveInNetwork`), NXDOMAIN otherwise.
 *
 * With systemd-resolved running (in our own network namespace), the
 * responder is registered on the interface (`resolvectl dns IF A`,
 * `resolvectl domain IF ~pilot`) and reverted on close; otherwise `hint`
 * says how to use it.
 *
 * A query never takes the daemon down: whatever the lookup or the codec
 * throws is logged and counted (`handlerErrors`), and that query gets
 * SERVFAIL or no answer; the next ones are answered as usual.
 */
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram'
import { execFile } from 'node:child_process'
import { readlinkSync } from 'node:fs'
import type { Logger } from '../logger.js'
import { mapPilotToIpv6, type OverlayPrefix } from '../protocol/ipv6-mapping.js'
import { buildDnsResponse, buildDnsServerFailure, dnsResponseWithoutLookup, parseDnsQuery, type DnsQuery } from './dns.js'
import type { BridgeHost } from './bridge-host.js'

/** Runs a command (no shell); resolves stdout, rejects on failure. Injected in tests. */
export type CommandRunner = (command: string, args: readonly string[]) => Promise<string>

export const execCommand: CommandRunner = (command, args) =>
  new Promise((resolve, reject) => {
    execFile(command, args as string[], { timeout: 5_000, encoding: 'utf8' }, (err, stdout, stderr) => {
      if (err === null) resolve(stdout)
      else reject(Object.assign(err, { stderr }))
    })
  })

export interface DnsResponderOptions {
  host: BridgeHost
  prefix: OverlayPrefix
  /** Bind address (A) and port (53). */
  bindHost: string
  bindPort?: number
  interfaceName: string
  logger: Logger
  /** Positive answers are cached this long; default 30 s. */
  cacheMs?: number
  /** NXDOMAIN is cached this long; default 5 s. */
  negativeCacheMs?: number
  /** Register with systemd-resolved when it runs here; default true. */
  useResolved?: boolean
  run?: CommandRunner
}

export interface DnsStats {
  queries: number
  answeredFromCache: number
  lookups: number
  lookupFailures: number
  malformed: number
  /** Queries whose handling threw (a bug: logged with its stack). */
  handlerErrors: number
}

interface CacheEntry {
  address: Uint8Array | null
  expires: number
}

const MAX_CACHE = 1024

export class DnsResponder {
  private socket: Socket | null = null
  private readonly host: BridgeHost
  private readonly prefix: OverlayPrefix
  private readonly logger: Logger
  private readonly cacheMs: number
  private readonly negativeMs: number
  private readonly cache = new Map<string, CacheEntry>()
  private readonly inflight = new Map<string, Promise<Uint8Array | null>>()
  private readonly run: CommandRunner
  private resolvedRegistered = false
  private closed = false
  /** Where the responder listens, e.g. `[fd50:…::2a]:53`. */
  port = 0
  readonly st: DnsStats = { queries: 0, answeredFromCache: 0, lookups: 0, lookupFailures: 0, malformed: 0, handlerErrors: 0 }

  constructor(private readonly opts: DnsResponderOptions) {
    this.host = opts.host
    this.prefix = opts.prefix
    this.logger = opts.logger
    this.cacheMs = opts.cacheMs ?? 30_000
    this.negativeMs = opts.negativeCacheMs ?? 5_000
    this.run = opts.run ?? execCommand
  }

  async start(): Promise<void> {
    const sock = createSocket({ type: 'udp6', ipv6Only: true })
    await new Promise<void>((resolve, reject) => {
      sock.once('error', reject)
      sock.bind({ address: this.opts.bindHost, port: this.opts.bindPort ?? 53, exclusive: true }, () => {
        sock.off('error', reject)
        resolve()
      })
    })
    sock.on('error', (err) => this.logger.warn('DNS socket error', { error: err.message }))
    sock.on('message', (msg, rinfo) => this.onMessage(msg, rinfo))
    this.socket = sock
    this.port = sock.address().port
    if (this.opts.useResolved !== false) this.resolvedRegistered = await this.registerWithResolved()
  }

  /** True when systemd-resolved sends `~pilot` queries to us. */
  get viaResolved(): boolean {
    return this.resolvedRegistered
  }

  /** How a user reaches the responder, for `status`. */
  hint(): string {
    const a = this.opts.bindHost
    if (this.resolvedRegistered) return `systemd-resolved sends *.pilot to ${a} on ${this.opts.interfaceName}`
    return `dig @${a} <hostname>.pilot AAAA, or add "nameserver ${a}" to /etc/resolv.conf`
  }

  stats(): DnsStats {
    return { ...this.st }
  }

  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    if (this.resolvedRegistered) {
      this.resolvedRegistered = false
      await this.run('resolvectl', ['revert', this.opts.interfaceName]).catch((err: Error) =>
        this.logger.warn('resolvectl revert failed', { error: err.message }),
      )
    }
    const sock = this.socket
    this.socket = null
    if (sock !== null) await new Promise<void>((resolve) => sock.close(() => resolve()))
  }

  // ───────────────────────── queries ─────────────────────────

  private onMessage(msg: Buffer, rinfo: RemoteInfo): void {
    this.st.queries++
    try {
      this.answer(msg, rinfo)
    } catch (err) {
      this.handlerFailed(err)
    }
  }

  private answer(msg: Buffer, rinfo: RemoteInfo): void {
    let q: DnsQuery
    try {
      q = parseDnsQuery(msg)
    } catch {
      this.st.malformed++
      return
    }
    const early = dnsResponseWithoutLookup(q)
    if (early !== null) return this.reply(early, rinfo)
    const name = q.network === null ? q.hostname! : `${q.hostname!}.${q.network}`
    const now = performance.now()
    const hit = this.cache.get(name)
    if (hit !== undefined && hit.expires > now) {
      this.st.answeredFromCache++
      return this.reply(buildDnsResponse(q, hit.address), rinfo)
    }
    this.lookup(name, q.network === null ? null : { host: q.hostname!, network: q.network })
      .then(
        (address) => this.reply(buildDnsResponse(q, address), rinfo),
        () => this.reply(buildDnsServerFailure(q), rinfo),
      )
      .catch((err: unknown) => this.handlerFailed(err))
  }

  private handlerFailed(err: unknown): void {
    this.st.handlerErrors++
    this.logger.error('DNS query handling failed', { error: String(err), stack: (err as Error)?.stack })
  }

  /** The node's mapped address, null for "no such name"; rejects when the registry cannot answer. */
  private lookup(name: string, inNetwork: { host: string; network: string } | null): Promise<Uint8Array | null> {
    let p = this.inflight.get(name)
    if (p !== undefined) return p
    this.st.lookups++
    let resolving: Promise<{ node_id: number; network?: number }>
    try {
      resolving = inNetwork === null ? this.host.resolve(name) : this.resolveInNetwork(inNetwork.network, inNetwork.host)
    } catch (err) {
      // A resolver that throws instead of rejecting: a bug, but this query's alone.
      this.handlerFailed(err)
      resolving = Promise.reject(err)
    }
    p = resolving.then(
      (r) => mapPilotToIpv6({ network: r.network ?? 0, node: r.node_id }, this.prefix),
      (err: unknown) => {
        if ((err as { code?: string } | null)?.code === 'PT_NAME_NOT_FOUND') return null
        this.st.lookupFailures++
        throw err
      },
    )
    const settled = p.then(
      (address) => {
        if (this.cache.size >= MAX_CACHE) this.cache.clear()
        // Network names follow membership (a leave, a removal): kept briefly, as misses are.
        const ttl = address === null || inNetwork !== null ? this.negativeMs : this.cacheMs
        this.cache.set(name, { address, expires: performance.now() + ttl })
      },
      () => {},
    )
    void settled.finally(() => this.inflight.delete(name))
    this.inflight.set(name, p)
    return p
  }

  /** A member of a network we are in; PT_NAME_NOT_FOUND (NXDOMAIN) otherwise. */
  private async resolveInNetwork(network: string, host: string): Promise<{ node_id: number; network: number }> {
    const r = this.host.resolveInNetwork === undefined ? null : await this.host.resolveInNetwork(network, host)
    if (r === null) throw Object.assign(new Error(`no member ${host} in network ${network}`), { code: 'PT_NAME_NOT_FOUND' })
    return r
  }

  private reply(bytes: Uint8Array, rinfo: RemoteInfo): void {
    const sock = this.socket
    if (sock === null) return
    sock.send(bytes, rinfo.port, rinfo.address, (err) => {
      if (err !== null && err !== undefined && this.logger.debugEnabled) this.logger.debug('DNS reply failed', { error: err.message })
    })
  }

  // ───────────────────────── systemd-resolved ─────────────────────────

  private async registerWithResolved(): Promise<boolean> {
    // resolvectl names links by index in *its* namespace but talks to the host's
    // resolved: only safe when we share PID 1's network namespace.
    if (!sameNetnsAsInit()) return false
    try {
      const state = (await this.run('systemctl', ['is-active', 'systemd-resolved'])).trim()
      if (state !== 'active') return false
    } catch {
      return false
    }
    const ifname = this.opts.interfaceName
    try {
      await this.run('resolvectl', ['dns', ifname, this.opts.bindHost])
      await this.run('resolvectl', ['domain', ifname, '~pilot'])
      this.logger.info('registered the .pilot resolver with systemd-resolved', { interface: ifname, server: this.opts.bindHost })
      return true
    } catch (err) {
      this.logger.warn('resolvectl failed; .pilot names need a manual resolver setting', { error: (err as Error).message })
      await this.run('resolvectl', ['revert', ifname]).catch(() => {})
      return false
    }
  }
}

function sameNetnsAsInit(): boolean {
  try {
    return readlinkSync('/proc/self/ns/net') === readlinkSync('/proc/1/ns/net')
  } catch {
    return false
  }
}
