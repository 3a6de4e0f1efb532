/**
 * Brings the TUN interface up and down with iproute2 (`ip`, run by execFile,
 * never a shell): MTU and link up, the node's address (/128, nodad: nobody
 * else can hold it, and DAD would delay the address by a second), and the
 * overlay prefix route with `src` set to the node's address so the kernel
 * picks that source for every overlay destination.
 *
 * The reflector address R (docs/design.md, "TCP through the TUN") is only routed,
 * never assigned: it lies inside the prefix, so the prefix route covers it; a
 * reflector outside the prefix gets a /128 route of its own.
 *
 * The TUN is not persistent, so when the device fd closes (close() or the
 * process dying, crash included) the kernel deletes the interface with its
 * address and routes. teardown() exists for the orderly path and for links
 * that outlive us anyway; it is idempotent.
 *
 * `ip` is injected as an `IpRunner` so the command lines and the error
 * parsing are tested without root.
 */
import { readFile, writeFile } from 'node:fs/promises'
import { execFile } from 'node:child_process'
import { readFileSync, readdirSync, readlinkSync } from 'node:fs'
import { isIPv6 } from 'node:net'
import { DEFAULT_OVERLAY_PREFIX_TEXT, formatIpv6, isInOverlayPrefix, parseIpv6, parseOverlayPrefix, type OverlayPrefix } from '../protocol/ipv6-mapping.js'
import { TunError, TunErrorCode, PERMISSION_HINT, inUseHint } from './tun-errors.js'
import { DEFAULT_TUN_MTU, DEFAULT_TUN_NAME, NativeTunDevice, resolveTunOptions, type TunDeviceOptions } from './device.js'
import type { TunAddon } from './native.js'

export interface IpResult {
  stdout: string
  stderr: string
}

/** Runs `ip ARGS`; rejects with an `IpCommandError` when it exits non-zero. */
export type IpRunner = (args: readonly string[]) => Promise<IpResult>

/** An `ip` command that failed. The message quotes the command line and its stderr. */
export class IpCommandError extends TunError {
  constructor(
    readonly args: readonly string[],
    readonly stderr: string,
    readonly exitCode: number | null,
    code: TunErrorCode = TunErrorCode.IP_COMMAND_FAILED,
    hint?: string,
  ) {
    super(code, `\`ip ${args.join(' ')}\` failed: ${stderr.trim() || `exit code ${exitCode}`}`, hint === undefined ? {} : { hint })
  }
}

/** The real runner: execFile, no shell, a timeout so a wedged netlink call cannot hang shutdown. */
export function execIp(command = 'ip', timeoutMs = 10_000): IpRunner {
  return (args) =>
    new Promise((resolve, reject) => {
      execFile(command, args as string[], { timeout: timeoutMs, encoding: 'utf8' }, (err, stdout, stderr) => {
        if (err === null) {
          resolve({ stdout, stderr })
          return
        }
        const e = err as NodeJS.ErrnoException & { code?: string | number }
        if (e.code === 'ENOENT') {
          reject(
            new IpCommandError(args, `${command}: not found`, null, TunErrorCode.IP_COMMAND_FAILED, 'install iproute2 (apt-get install iproute2)'),
          )
          return
        }
        reject(classifyIpFailure(args, stderr, typeof e.code === 'number' ? e.code : null))
      })
    })
}

/** Turns an `ip` failure into the typed error a user can act on. */
export function classifyIpFailure(args: readonly string[], stderr: string, exitCode: number | null): IpCommandError {
  if (/Operation not permitted|Permission denied/i.test(stderr)) {
    return new IpCommandError(args, stderr, exitCode, TunErrorCode.PERMISSION, PERMISSION_HINT)
  }
  return new IpCommandError(args, stderr, exitCode)
}

/** stderr texts that mean "already gone", which teardown treats as success. */
const GONE_RE = /Cannot find device|does not exist|No such device|No such process|address not found|Cannot assign requested address/i

function isGone(err: unknown): boolean {
  return err instanceof IpCommandError && err.code === TunErrorCode.IP_COMMAND_FAILED && GONE_RE.test(err.stderr)
}

export interface InterfaceSetupOptions {
  name?: string
  mtu?: number
  /** The node's IPv6 address (its Pilot address mapped into the prefix). */
  address: string
  /** The overlay prefix, `fd50:494c:4f54::/48` by default. */
  prefix?: string | OverlayPrefix
  /** The reflector address R: routed into the TUN, never assigned. */
  reflector?: string
}

/** What `ip -d -j link show` says about an interface, reduced to what we decide on. */
export interface LinkInfo {
  name: string
  kind: string | null
  /** For a TUN: whether it outlives its fd (only a persistent TUN can be stale). */
  persistent: boolean
}

export class InterfaceSetup {
  readonly name: string
  readonly mtu: number
  readonly address: string
  readonly prefix: OverlayPrefix
  readonly reflector: string | null
  private isUp = false
  /** Networks (≠ the address's own) whose address and /64 route are on the link. */
  private readonly networks = new Set<number>()

  constructor(
    options: InterfaceSetupOptions,
    private readonly run: IpRunner = execIp(),
    private readonly sysctl: SysctlFiles = procSysctlFiles,
  ) {
    const resolved = resolveTunOptions({ name: options.name ?? DEFAULT_TUN_NAME, mtu: options.mtu ?? DEFAULT_TUN_MTU })
    this.name = resolved.name
    this.mtu = resolved.mtu
    this.address = canonicalIpv6(options.address, 'address')
    try {
      this.prefix = typeof options.prefix === 'object' ? options.prefix : parseOverlayPrefix(options.prefix ?? DEFAULT_OVERLAY_PREFIX_TEXT)
    } catch (err) {
      throw new TunError(TunErrorCode.INVALID_OPTIONS, `bad overlay prefix: ${(err as Error).message}`, { cause: err })
    }
    this.reflector = options.reflector === undefined ? null : canonicalIpv6(options.reflector, 'reflector')
    if (!inPrefix(this.address, this.prefix)) {
      throw new TunError(TunErrorCode.INVALID_OPTIONS, `address ${this.address} is outside the overlay prefix ${this.prefix.text}`)
    }
  }

  /** The `ip` argument lists `up()` runs, in order (shown by `--dry-run` and checked by tests). */
  upCommands(): string[][] {
    const cmds = [
      ['link', 'set', 'dev', this.name, 'mtu', String(this.mtu), 'up'],
      ['-6', 'addr', 'add', `${this.address}/128`, 'dev', this.name, 'nodad'],
      ['-6', 'route', 'add', this.prefix.text, 'dev', this.name, 'src', this.address],
    ]
    if (this.reflector !== null && !inPrefix(this.reflector, this.prefix)) {
      cmds.push(['-6', 'route', 'add', `${this.reflector}/128`, 'dev', this.name, 'src', this.address])
    }
    return cmds
  }

  /**
   * Network N's address A_N = prefix:N::node (/128, like A) and its /64
   * route with A_N as source, so the kernel picks A_N towards N's members
   * and A (the /48 route) everywhere else. `ip` arguments, in order.
   */
  networkCommands(network: number, verb: 'add' | 'del'): string[][] {
    if (!Number.isInteger(network) || network < 0 || network > 0xffff) {
      throw new TunError(TunErrorCode.INVALID_OPTIONS, `network ${network} is not a 16-bit network ID`)
    }
    const a = parseIpv6(this.address)
    a[6] = network >>> 8
    a[7] = network & 0xff
    const address = formatIpv6(a)
    a.fill(0, 8)
    const route = `${formatIpv6(a)}/64`
    const addr = ['-6', 'addr', verb, `${address}/128`, 'dev', this.name]
    const via = ['-6', 'route', verb, route, 'dev', this.name]
    return verb === 'add' ? [[...addr, 'nodad'], [...via, 'src', address]] : [via, addr]
  }

  /** Puts network N's address and route on the link (after up()). Undoes itself on failure. */
  async addNetwork(network: number): Promise<void> {
    if (this.networks.has(network)) return
    try {
      for (const args of this.networkCommands(network, 'add')) await this.run(args)
      this.networks.add(network)
    } catch (err) {
      await this.removeNetwork(network, true).catch(() => {})
      throw err
    }
  }

  /** Takes network N's route and address off the link. Idempotent; what is already gone is no error. */
  async removeNetwork(network: number, force = false): Promise<void> {
    if (!force && !this.networks.has(network)) return
    this.networks.delete(network)
    let firstError: unknown = null
    for (const args of this.networkCommands(network, 'del')) {
      try {
        await this.run(args)
      } catch (err) {
        if (!isGone(err) && firstError === null) firstError = err
      }
    }
    if (firstError !== null) throw firstError
  }

  /** Networks whose address is on the link. */
  joinedNetworks(): number[] {
    return [...this.networks]
  }

  /**
   * Configures the (already opened) TUN. On failure it undoes what it did
   * and rethrows, so a half-configured interface is never left behind.
   */
  async up(): Promise<void> {
    try {
      const [link, ...rest] = this.upCommands()
      await this.run(link!)
      await enableIpv6On(this.name, this.sysctl)
      for (const args of rest) await this.run(args)
      this.isUp = true
    } catch (err) {
      await this.teardown().catch(() => {})
      throw err
    }
  }

  /**
   * Removes the routes, the address and the link. Idempotent, and safe when
   * the link is already gone (closed fd, crash) or never came up. Deleting
   * the link while a device still holds it makes that device's reader fail,
   * so the orderly order is device.close() first, then teardown().
   */
  async teardown(): Promise<void> {
    this.isUp = false
    const info = await linkInfo(this.name, this.run)
    if (info === null) return // the kernel already removed everything with the link
    const steps: string[][] = []
    for (const n of this.networks) steps.push(...this.networkCommands(n, 'del'))
    this.networks.clear()
    if (this.reflector !== null && !inPrefix(this.reflector, this.prefix)) {
      steps.push(['-6', 'route', 'del', `${this.reflector}/128`, 'dev', this.name])
    }
    steps.push(['-6', 'route', 'del', this.prefix.text, 'dev', this.name])
    steps.push(['-6', 'addr', 'del', `${this.address}/128`, 'dev', this.name])
    // Only a TUN is ours to delete; never remove some other kind of link that happens to share the name.
    if (info.kind === 'tun') steps.push(['link', 'del', 'dev', this.name])
    let firstError: unknown = null
    for (const args of steps) {
      try {
        await this.run(args)
      } catch (err) {
        if (!isGone(err) && firstError === null) firstError = err
      }
    }
    if (firstError !== null) throw firstError
  }

  /** True between a successful up() and teardown(). */
  get configured(): boolean {
    return this.isUp
  }
}

function canonicalIpv6(text: string, what: string): string {
  if (typeof text !== 'string' || !isIPv6(text) || text.includes('%') || text.includes('/')) {
    throw new TunError(TunErrorCode.INVALID_OPTIONS, `${what} ${JSON.stringify(text)} is not a plain IPv6 address`)
  }
  return formatIpv6(parseIpv6(text))
}

/** `address` is canonical IPv6 text (checked by the constructor). */
function inPrefix(address: string, prefix: OverlayPrefix): boolean {
  return isInOverlayPrefix(parseIpv6(address), prefix)
}

/** The link named `name`, or null when there is none. */
export async function linkInfo(name: string, run: IpRunner = execIp()): Promise<LinkInfo | null> {
  let out: IpResult
  try {
    out = await run(['-d', '-j', 'link', 'show', 'dev', name])
  } catch (err) {
    if (isGone(err)) return null
    throw err
  }
  let parsed: unknown
  try {
    parsed = JSON.parse(out.stdout)
  } catch {
    throw new IpCommandError(['-d', '-j', 'link', 'show', 'dev', name], `unparsable output: ${out.stdout.slice(0, 200)}`, 0)
  }
  const link = Array.isArray(parsed) ? (parsed[0] as Record<string, unknown> | undefined) : undefined
  if (link === undefined) return null
  const linkinfo = link['linkinfo'] as { info_kind?: string; info_data?: { persist?: boolean } } | undefined
  return {
    name: String(link['ifname'] ?? name),
    kind: linkinfo?.info_kind ?? null,
    persistent: linkinfo?.info_data?.persist === true,
  }
}

export interface TunOwner {
  pid: number
  command: string
}

/**
 * Processes holding a TUN fd attached to `name`, found the way iproute2 does:
 * /proc/PID/fd links to /dev/net/tun whose fdinfo says `iff: NAME`. Best
 * effort (processes we may not inspect are skipped); used for hints and to
 * decide whether a persistent TUN is stale.
 */
export function findTunOwners(name: string, procRoot = '/proc'): TunOwner[] {
  const owners: TunOwner[] = []
  let pids: string[]
  try {
    pids = readdirSync(procRoot).filter((p) => /^\d+$/.test(p))
  } catch {
    return owners
  }
  for (const pid of pids) {
    let fds: string[]
    try {
      fds = readdirSync(`${procRoot}/${pid}/fd`)
    } catch {
      continue
    }
    for (const fd of fds) {
      try {
        if (readlinkSync(`${procRoot}/${pid}/fd/${fd}`) !== '/dev/net/tun') continue
        const info = readFileSync(`${procRoot}/${pid}/fdinfo/${fd}`, 'utf8')
        if (!new RegExp(`^iff:\\s*${escapeRe(name)}$`, 'm').test(info)) continue
        let command = '?'
        try {
          command = readFileSync(`${procRoot}/${pid}/comm`, 'utf8').trim()
        } catch {
          /* keep '?' */
        }
        owners.push({ pid: Number(pid), command })
        break
      } catch {
        /* the fd closed or the process exited meanwhile */
      }
    }
  }
  return owners
}

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
}

/**
 * Refuses to bring up `name` when an interface of that name exists: a
 * running pilot-tun, another program, or a stale persistent TUN.
 */
export async function assertInterfaceFree(name: string, run: IpRunner = execIp()): Promise<void> {
  const info = await linkInfo(name, run)
  if (info === null) return
  const owners = info.kind === 'tun' ? findTunOwners(name) : []
  const held = owners.length > 0 ? ` (held by ${owners.map((o) => `${o.command}[${o.pid}]`).join(', ')})` : ''
  const what = info.kind === 'tun' ? 'TUN interface' : `${info.kind ?? 'network'} interface`
  throw new TunError(TunErrorCode.IN_USE, `${what} ${name} already exists${held}; is pilot-tun already up?`, {
    hint: inUseHint(name),
  })
}

/**
 * Removes `name` if it is a TUN nobody holds (left behind by `ip tuntap add`
 * or a persistent TUN whose owner died). A non-persistent TUN exists only
 * while a process holds it, so it is never stale. Returns what it found.
 */
export async function cleanupStale(name: string, run: IpRunner = execIp()): Promise<'absent' | 'removed'> {
  const info = await linkInfo(name, run)
  if (info === null) return 'absent'
  if (info.kind !== 'tun') {
    throw new TunError(TunErrorCode.IN_USE, `${name} is a ${info.kind ?? 'network'} interface, not a TUN; not removing it`, {
      hint: 'pick another name with --name',
    })
  }
  const owners = findTunOwners(name)
  if (!info.persistent || owners.length > 0) {
    const held = owners.length > 0 ? ` by ${owners.map((o) => `${o.command}[${o.pid}]`).join(', ')}` : ''
    throw new TunError(TunErrorCode.IN_USE, `TUN interface ${name} is held${held}; not removing it`, {
      hint: 'stop that process first (`pilot-tun down`)',
    })
  }
  try {
    await run(['link', 'del', 'dev', name])
  } catch (err) {
    if (!isGone(err)) throw err
  }
  return 'removed'
}

/** CAP_NET_ADMIN in the effective set (root has it unless dropped). */
export function hasNetAdmin(statusPath = '/proc/self/status'): boolean {
  try {
    const m = /^CapEff:\s*([0-9a-f]+)$/m.exec(readFileSync(statusPath, 'utf8'))
    if (m === null) return process.getuid?.() === 0
    return (BigInt(`0x${m[1]}`) & (1n << 12n)) !== 0n
  } catch {
    return process.getuid?.() === 0
  }
}

export interface TunInterface {
  readonly device: NativeTunDevice
  readonly setup: InterfaceSetup
  /** device.close() then setup.teardown(); idempotent. */
  close(): Promise<void>
}

/**
 * The whole front door in one call: permission check, refuse a second up,
 * open the TUN, configure it. Any failure leaves nothing behind.
 */
export async function openTunInterface(
  options: InterfaceSetupOptions & TunDeviceOptions,
  deps: { run?: IpRunner; addon?: TunAddon } = {},
): Promise<TunInterface> {
  const run = deps.run ?? execIp()
  const setup = new InterfaceSetup(options, run)
  if (!hasNetAdmin()) {
    throw new TunError(TunErrorCode.PERMISSION, `creating ${setup.name} needs root or CAP_NET_ADMIN`, { hint: PERMISSION_HINT })
  }
  await assertInterfaceFree(setup.name, run)
  const device = NativeTunDevice.open({ ...options, name: setup.name, mtu: setup.mtu }, deps.addon)
  try {
    await setup.up()
  } catch (err) {
    device.close()
    await setup.teardown().catch(() => {})
    throw err
  }
  let closing: Promise<void> | null = null
  return {
    device,
    setup,
    close() {
      closing ??= (async () => {
        device.close()
        await setup.teardown()
      })()
      return closing
    },
  }
}

/** Reads and writes sysctl files; tests pass a fake (a read-only /proc/sys cannot be staged as root). */
export interface SysctlFiles {
  read(path: string): Promise<string>
  write(path: string, text: string): Promise<void>
}

export const procSysctlFiles: SysctlFiles = {
  read: (path) => readFile(path, 'utf8'),
  write: (path, text) => writeFile(path, text),
}

/**
 * Turns IPv6 on for our own interface only, when the system creates new links
 * with it disabled (`net.ipv6.conf.default.disable_ipv6=1`, common in
 * containers and namespaces); `ip -6 addr add` fails otherwise. Nothing else
 * is touched, and a system without the sysctl (or a test double) is fine.
 * When the sysctl says 1 but cannot be written (a read-only /proc/sys, as
 * under systemd's ProtectKernelTunables=yes) this says so, instead of leaving
 * `ip -6 addr add` to fail with "IPv6 is disabled on this device".
 */
export async function enableIpv6On(name: string, files: SysctlFiles = procSysctlFiles): Promise<void> {
  const path = `/proc/sys/net/ipv6/conf/${name}/disable_ipv6`
  let value: string
  try {
    value = (await files.read(path)).trim()
  } catch {
    return // no such interface in /proc (fake `ip` in tests) or no IPv6 at all: `ip -6 addr add` reports it
  }
  if (value !== '1') return
  try {
    await files.write(path, '0')
  } catch (err) {
    const code = (err as NodeJS.ErrnoException | null)?.code ?? (err as Error).message
    throw new TunError(
      TunErrorCode.PERMISSION,
      `IPv6 is disabled on ${name} (new links start with net.ipv6.conf.default.disable_ipv6=1) and ${path} cannot be written (${code})`,
      {
        hint:
          'turn IPv6 on for new links (sysctl -w net.ipv6.conf.default.disable_ipv6=0), or let pilot-tun write it: ' +
          'under systemd, ProtectKernelTunables=yes makes /proc/sys read-only and the shipped unit re-opens ' +
          'ReadWritePaths=/proc/sys/net/ipv6/conf/ for this',
        cause: err,
      },
    )
  }
}
