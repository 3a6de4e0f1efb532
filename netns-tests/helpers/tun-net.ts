/**
 * pilot-tun with its TUN front door inside a test bed (src/testbed/): a
 * `rendezvous` in the rendezvous namespace and `pilot-tun up` (TUN on, so
 * each node namespace gets its own pilot0) in node namespaces, each with its
 * own state dir and control socket under one temp dir; ordinary programs
 * (curl, ping, dig, overlay-apps.js) run next to them.
 *
 * The test bed disables IPv6 in every namespace; `up` here first turns it
 * back on for new interfaces (net.ipv6.conf.default.disable_ipv6=0) in that
 * node's namespace only, so pilot0 can hold its address. The veth keeps IPv6
 * off. Nothing in the root namespace changes.
 *
 * `.pilot` names: `resolvConf(node, nameserver)` writes
 * /etc/netns/<node's namespace>/resolv.conf, which `ip netns exec` mounts over
 * /etc/resolv.conf for programs in that namespace only. Only namespaces of
 * this test bed get one, and `close()` removes the files (and /etc/netns if
 * it created it). `removeStaleResolvConfs()` removes the leftovers of killed
 * runs: /etc/netns/ptb-* directories whose namespace no longer exists.
 *
 * Cleanup: `close()` SIGKILLs every process started here by PID (`ip netns
 * exec` execs, so the PID is the program's), removes the resolv.conf files
 * and the temp dir. The Topology's destroy() then deletes the namespaces.
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, rmdirSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { ChildProcess } from 'node:child_process'
import type { Topology } from '../../src/testbed/topology.js'
import type { DaemonStatus, PeerStatus, TrustList } from '../../src/daemon/api.js'

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..')
export const bin = join(repoRoot, 'bin', 'pilot-tun.js')
export const appsScript = join(repoRoot, 'dist', 'netns-tests', 'helpers', 'overlay-apps.js')
export const NATIVE_ADDON = join(repoRoot, 'build', 'Release', 'pilot_tun_native.node')

export const REGISTRY_PORT = 9000
export const BEACON_PORT = 9001
export const TUNNEL_PORT = 4000
export const OVERLAY_PREFIX = 'fd50:494c:4f54::/48'

const ETC_NETNS = '/etc/netns'

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms))
}

/** Calls `fn` until `ok(value)`; throws naming `what` and the last value or error when the time is up. */
export async function waitUntil<T>(
  what: string,
  fn: () => Promise<T>,
  ok: (v: T) => boolean,
  opts: { timeoutMs?: number; intervalMs?: number } = {},
): Promise<T> {
  const timeoutMs = opts.timeoutMs ?? 15_000
  const deadline = Date.now() + timeoutMs
  let last: unknown
  for (;;) {
    try {
      const v = await fn()
      last = v
      if (ok(v)) return v
    } catch (err) {
      last = err
    }
    if (Date.now() > deadline) {
      const shown = last instanceof Error ? last.message : JSON.stringify(last)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; last: ${shown}`)
    }
    await sleep(opts.intervalMs ?? 200)
  }
}

/** A long-running program in a namespace; its output is kept for `waitFor` and failure messages. */
export class NsProcess {
  output = ''
  readonly exited: Promise<number>

  constructor(
    readonly name: string,
    readonly child: ChildProcess,
  ) {
    child.stdout?.setEncoding('utf8').on('data', (d: string) => this.append(d))
    child.stderr?.setEncoding('utf8').on('data', (d: string) => this.append(d))
    this.exited = new Promise((r) => child.once('exit', (code, signal) => r(code ?? (signal !== null ? 128 : -1))))
  }

  private append(d: string): void {
    this.output += d
    if (this.output.length > 400_000) this.output = this.output.slice(-200_000)
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null
  }

  async waitFor(pattern: RegExp, timeoutMs = 20_000): Promise<RegExpMatchArray> {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      const m = this.output.match(pattern)
      if (m !== null) return m
      if (!this.running) throw new Error(`${this.name} exited (${this.child.exitCode ?? this.child.signalCode}) before ${pattern}:\n${this.tail()}`)
      if (Date.now() > deadline) throw new Error(`${this.name}: timed out waiting for ${pattern}:\n${this.tail()}`)
      await sleep(25)
    }
  }

  /** `signal` by PID, then the exit code (SIGKILL after `graceMs`). */
  async stop(signal: NodeJS.Signals = 'SIGTERM', graceMs = 8_000): Promise<number> {
    if (this.running) {
      this.signal(signal)
      const t = setTimeout(() => this.kill(), graceMs)
      const code = await this.exited
      clearTimeout(t)
      return code
    }
    return this.exited
  }

  signal(signal: NodeJS.Signals): void {
    if (!this.running || this.child.pid === undefined) return
    try {
      process.kill(this.child.pid, signal)
    } catch {
      // already gone
    }
  }

  kill(): void {
    this.signal('SIGKILL')
  }

  tail(lines = 40): string {
    return this.output.trimEnd().split('\n').slice(-lines).join('\n')
  }
}

export interface CliResult {
  code: number | null
  stdout: string
  stderr: string
}

export interface UpOptions {
  /** Registered hostname (default: the node's name). */
  hostname?: string
  /** `--auto-accept` (default false: trust is requested and approved by hand). */
  autoAccept?: boolean
  /** false runs `up --no-tun`. */
  tun?: boolean
  /** More flags for `up` (e.g. `--mtu 9000`). */
  extra?: string[]
}

/** Removes /etc/netns/ptb-* directories whose namespace is gone (left by a killed run). */
export function removeStaleResolvConfs(): string[] {
  if (!existsSync(ETC_NETNS)) return []
  const removed: string[] = []
  for (const name of readdirSync(ETC_NETNS)) {
    if (!name.startsWith('ptb-') || existsSync(join('/run/netns', name))) continue
    rmSync(join(ETC_NETNS, name), { recursive: true, force: true })
    removed.push(name)
  }
  return removed
}

export class TunNet {
  readonly dir: string
  rendezvous: NsProcess | null = null
  readonly daemons = new Map<string, NsProcess>()
  private readonly all: NsProcess[] = []
  private readonly resolvDirs = new Set<string>()
  private createdEtcNetns = false

  constructor(readonly topo: Topology) {
    this.dir = mkdtempSync(join(tmpdir(), 'pilot-tun-netns-'))
    writeFileSync(join(this.dir, 'none.json'), '{}')
    if (topo.rendezvous === null) throw new Error('the spec has no rendezvous node')
    removeStaleResolvConfs()
  }

  get registryAddr(): string {
    return `${this.topo.rendezvous!.address}:${REGISTRY_PORT}`
  }

  get beaconAddr(): string {
    return `${this.topo.rendezvous!.address}:${BEACON_PORT}`
  }

  /** Starts argv in `node`'s namespace; killed by close(). */
  spawn(label: string, node: string, argv: string[]): NsProcess {
    const p = new NsProcess(label, this.topo.spawn(node, argv))
    this.all.push(p)
    return p
  }

  async startRendezvous(): Promise<NsProcess> {
    const p = this.spawn('rendezvous', this.topo.rendezvous!.name, [
      process.execPath, bin, 'rendezvous', '--registry-listen', `0.0.0.0:${REGISTRY_PORT}`, '--beacon-listen', `0.0.0.0:${BEACON_PORT}`,
      '--store', join(this.dir, 'registry.db'), '--log-format', 'text',
    ])
    this.rendezvous = p
    await p.waitFor(/rendezvous running/)
    return p
  }

  socket(node: string): string {
    return join(this.dir, node, 'control.sock')
  }

  /** IPv6 on for interfaces created from now on in `node`'s namespace (pilot0), and on lo. */
  async enableIpv6(node: string): Promise<void> {
    await this.topo.exec(node, ['sysctl', '-q', '-w', 'net.ipv6.conf.default.disable_ipv6=0', 'net.ipv6.conf.lo.disable_ipv6=0'])
  }

  /** `pilot-tun up` in `node`'s namespace; resolves once registered (and, with the TUN, once status shows it). */
  async up(node: string, opts: UpOptions = {}): Promise<NsProcess> {
    mkdirSync(join(this.dir, node), { recursive: true })
    const tun = opts.tun !== false
    if (tun) await this.enableIpv6(node)
    const p = this.spawn(`daemon ${node}`, node, [
      process.execPath, bin, 'up', ...(tun ? [] : ['--no-tun']),
      '--registry', this.registryAddr, '--beacon', this.beaconAddr, '--listen', `0.0.0.0:${TUNNEL_PORT}`,
      '--state-dir', join(this.dir, node, 'state'), '--control-socket', this.socket(node), '--hostname', opts.hostname ?? node,
      ...(opts.autoAccept === true ? ['--auto-accept'] : []),
      '--config', join(this.dir, 'none.json'), '--log-format', 'text', '--heartbeat-interval', '1',
      ...(opts.extra ?? []),
    ])
    this.daemons.set(node, p)
    await p.waitFor(/pilot-tun up address=/)
    if (tun) await waitUntil(`${node}: status shows the TUN`, () => this.status(node), (s) => s.tun !== null, { timeoutMs: 10_000 })
    return p
  }

  /** `pilot-tun ARGS --control-socket <node's>` inside `node`'s namespace. */
  cli(node: string, args: string[], timeoutMs = 30_000): Promise<CliResult> {
    return this.topo.exec(node, [process.execPath, bin, ...args, '--control-socket', this.socket(node)], { allowFailure: true, timeoutMs })
  }

  async json<T>(node: string, args: string[]): Promise<T> {
    const r = await this.cli(node, [...args, '--json'])
    if (r.code !== 0) throw new Error(`${node}: pilot-tun ${args.join(' ')} --json failed (exit ${r.code}): ${r.stdout}${r.stderr}`)
    try {
      return JSON.parse(r.stdout) as T
    } catch {
      throw new Error(`${node}: pilot-tun ${args.join(' ')} --json gave no JSON: ${r.stdout}${r.stderr}`)
    }
  }

  status(node: string): Promise<DaemonStatus> {
    return this.json<DaemonStatus>(node, ['status'])
  }

  peers(node: string): Promise<PeerStatus[]> {
    return this.json<PeerStatus[]>(node, ['peers'])
  }

  trustList(node: string): Promise<TrustList> {
    return this.json<TrustList>(node, ['trust', 'list'])
  }

  /**
   * `from` runs `trust request <to>`, `to` waits for the pending request and
   * runs `trust approve <from>`, then both wait until the trust is mutual.
   */
  async establishTrust(from: string, to: string, addr: { from: string; to: string }, timeoutMs = 20_000): Promise<void> {
    const req = await this.cli(from, ['trust', 'request', addr.to, '--reason', 'pilot-tun netns test'])
    if (req.code !== 0) throw new Error(`${from}: trust request ${addr.to} failed: ${req.stderr}`)
    await waitUntil(`${to} sees ${from}'s trust request`, () => this.trustList(to), (l) => l.pending.some((p) => p.address === addr.from), { timeoutMs })
    const ok = await this.cli(to, ['trust', 'approve', addr.from])
    if (ok.code !== 0) throw new Error(`${to}: trust approve ${addr.from} failed: ${ok.stderr}`)
    const mutual = (l: TrustList, a: string): boolean => l.trusted.some((t) => t.address === a && t.mutual)
    await Promise.all([
      waitUntil(`${from} trusts ${to} mutually`, () => this.trustList(from), (l) => mutual(l, addr.to), { timeoutMs }),
      waitUntil(`${to} trusts ${from} mutually`, () => this.trustList(to), (l) => mutual(l, addr.from), { timeoutMs }),
    ])
  }

  /** Writes /etc/netns/<node's namespace>/resolv.conf (mounted over /etc/resolv.conf by `ip netns exec`). */
  resolvConf(node: string, nameserver: string): void {
    const ns = this.topo.namespace(node)
    if (!ns.startsWith('ptb-')) throw new Error(`refusing to write resolv.conf for ${ns}: not a test bed namespace`)
    if (!existsSync(ETC_NETNS)) {
      mkdirSync(ETC_NETNS, { recursive: true })
      this.createdEtcNetns = true
    }
    const dir = join(ETC_NETNS, ns)
    mkdirSync(dir, { recursive: true })
    this.resolvDirs.add(dir)
    writeFileSync(join(dir, 'resolv.conf'), `# written by pilot-tun netns tests for ${ns}\nnameserver ${nameserver}\noptions timeout:2 attempts:1\n`)
  }

  /** Removes the resolv.conf files written here (and /etc/netns when this created it and it is empty). */
  removeResolvConfs(): void {
    for (const dir of this.resolvDirs) rmSync(dir, { recursive: true, force: true })
    this.resolvDirs.clear()
    if (this.createdEtcNetns) {
      try {
        rmdirSync(ETC_NETNS)
      } catch {
        // not empty: someone else uses it now
      }
      this.createdEtcNetns = false
    }
  }

  /** The last lines of every process's output (for failure messages). */
  logs(lines = 25): string {
    return this.all.map((p) => `----- ${p.name}${p.running ? '' : ' (exited)'} -----\n${p.tail(lines)}`).join('\n')
  }

  /** Kills everything started here, removes the resolv.conf files and the temp dir. Idempotent. */
  async close(): Promise<void> {
    for (const p of this.all) p.kill()
    await Promise.all(this.all.map((p) => Promise.race([p.exited, sleep(3_000)])))
    this.removeResolvConfs()
    rmSync(this.dir, { recursive: true, force: true })
  }
}

/** Why the TUN tests cannot run here, or null. */
export function tunUnavailable(): string | null {
  if (process.platform !== 'linux') return 'the TUN front door needs Linux'
  if (!existsSync('/dev/net/tun')) return '/dev/net/tun is missing'
  if (!existsSync(NATIVE_ADDON)) return 'the TUN addon is not built (npm run build:native)'
  return null
}
