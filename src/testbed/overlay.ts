/**
 * A Pilot overlay on the namespace test bed for the loss/load tests and the
 * netns benchmark: one `pilot-tun rendezvous` in the rendezvous namespace and
 * `pilot-tun up` daemons (with the TUN front door unless `tun: false`) in
 * node namespaces, each with its own state dir and control socket under one
 * temp dir. Also runs the traffic tools of blast.ts inside namespaces.
 *
 * Cleanup: `close()` SIGTERMs the daemons (so a --cpu-prof profile is
 * written), SIGKILLs whatever is left by PID and removes the temp dir; the
 * Topology's destroy() then deletes the namespaces. Call both in `finally`.
 */
import type { ChildProcess } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { Topology } from './topology.js'

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..')
export const pilotBin = join(repoRoot, 'bin', 'pilot-tun.js')
export const blastScript = join(repoRoot, 'dist', 'src', 'testbed', 'blast.js')

export const REGISTRY_PORT = 9000
export const BEACON_PORT = 9001
export const TUNNEL_PORT = 4000

/** The daemon cannot bring the TUN up in this build (bridge not wired yet, or no /dev/net/tun). Tests skip on it. */
export class TunNotReady extends Error {}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms))
}

/** A long-running process inside a namespace; its output is kept for `waitFor` and diagnostics. */
export class NsProcess {
  output = ''
  readonly exited: Promise<number>
  constructor(
    readonly label: string,
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

  /** `ip netns exec` execs the command, so this is the node process itself. */
  get pid(): number {
    return this.child.pid!
  }

  async waitFor(pattern: RegExp, timeoutMs = 20_000): Promise<RegExpMatchArray> {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      const m = this.output.match(pattern)
      if (m !== null) return m
      if (!this.running) throw new Error(`${this.label} exited (${this.child.exitCode ?? this.child.signalCode}) before ${pattern}:\n${this.tail()}`)
      if (Date.now() > deadline) throw new Error(`${this.label}: timed out waiting for ${pattern}:\n${this.tail()}`)
      await sleep(20)
    }
  }

  /** `signal`, then SIGKILL after `graceMs`; resolves with the exit code. */
  async stop(signal: NodeJS.Signals = 'SIGTERM', graceMs = 5_000): Promise<number> {
    if (this.running) {
      try {
        process.kill(this.pid, signal)
      } catch {
        // gone
      }
      const t = setTimeout(() => this.kill(), graceMs)
      const code = await this.exited
      clearTimeout(t)
      return code
    }
    return this.exited
  }

  kill(): void {
    if (!this.running) return
    try {
      process.kill(this.pid, 'SIGKILL')
    } catch {
      // gone
    }
  }

  tail(lines = 30): string {
    return this.output.trimEnd().split('\n').slice(-lines).join('\n')
  }
}

/** Resident set size of a process in bytes (VmRSS of /proc/<pid>/status), or null when it is gone. */
export function rssBytes(pid: number): number | null {
  try {
    const m = readFileSync(`/proc/${pid}/status`, 'utf8').match(/^VmRSS:\s+(\d+)\s+kB/m)
    return m === null ? null : Number(m[1]) * 1024
  } catch {
    return null
  }
}

/** Samples a process's RSS every `intervalMs` until stopped; `stop()` returns the peak. */
export function sampleRss(pid: number, intervalMs = 50): { stop(): number } {
  let peak = rssBytes(pid) ?? 0
  const t = setInterval(() => {
    peak = Math.max(peak, rssBytes(pid) ?? 0)
  }, intervalMs)
  return {
    stop: () => {
      clearInterval(t)
      return Math.max(peak, rssBytes(pid) ?? 0)
    },
  }
}

export interface DaemonInfo {
  name: string
  address: string
  ipv6: string
  tun: { interface: string; address: string; prefix: string; mtu: number; dns: string } | null
}

export interface UpOptions {
  /** Extra `up` flags (e.g. `--mtu 65000`). */
  extraArgs?: string[]
  /** Node flags for the daemon process (e.g. `--cpu-prof --cpu-prof-dir DIR`). */
  nodeArgs?: string[]
  /** Keep the state dir of an earlier run of this node (restart: same identity and trust). */
  keepState?: boolean
}

export interface OverlayOptions {
  /** Start daemons with the TUN front door (default true); false passes --no-tun. */
  tun?: boolean
  heartbeatS?: number
}

export class Overlay {
  readonly dir: string
  rendezvous: NsProcess | null = null
  readonly daemons = new Map<string, NsProcess>()
  readonly info = new Map<string, DaemonInfo>()
  private readonly all: NsProcess[] = []

  constructor(
    readonly topo: Topology,
    readonly opts: OverlayOptions = {},
  ) {
    if (topo.rendezvous === null) throw new Error('the spec has no rendezvous node')
    this.dir = mkdtempSync(join(tmpdir(), 'pilot-overlay-'))
    writeFileSync(join(this.dir, 'none.json'), '{}')
  }

  get registryAddr(): string {
    return `${this.topo.rendezvous!.address}:${REGISTRY_PORT}`
  }

  get beaconAddr(): string {
    return `${this.topo.rendezvous!.address}:${BEACON_PORT}`
  }

  /** Starts `argv` (node script + args) in namespace `ns` under this overlay's cleanup. */
  spawnNode(label: string, ns: string, argv: string[], nodeArgs: string[] = []): NsProcess {
    const p = new NsProcess(label, this.topo.spawn(ns, [process.execPath, ...nodeArgs, ...argv]))
    this.all.push(p)
    return p
  }

  async startRendezvous(): Promise<void> {
    const p = this.spawnNode('rendezvous', this.topo.rendezvous!.name, [
      pilotBin, 'rendezvous', '--registry-listen', `0.0.0.0:${REGISTRY_PORT}`, '--beacon-listen', `0.0.0.0:${BEACON_PORT}`,
      '--store', join(this.dir, 'registry.db'), '--log-format', 'text',
    ])
    this.rendezvous = p
    await p.waitFor(/rendezvous running/)
  }

  socket(name: string): string {
    return join(this.dir, name, 'control.sock')
  }

  /**
   * Starts `pilot-tun up` in node `name`'s namespace, waits until it is
   * registered (and, with the TUN, until status reports the interface).
   * Throws TunNotReady when the daemon refuses the TUN.
   */
  async up(name: string, o: UpOptions = {}): Promise<DaemonInfo> {
    const tun = this.opts.tun !== false
    if (o.keepState !== true) rmSync(join(this.dir, name), { recursive: true, force: true })
    mkdirSync(join(this.dir, name), { recursive: true })
    // The test bed disables IPv6 in every namespace; pilot0 (created after this) and lo need it.
    if (tun) await this.topo.exec(name, ['sysctl', '-q', '-w', 'net.ipv6.conf.default.disable_ipv6=0', 'net.ipv6.conf.lo.disable_ipv6=0'])
    const p = this.spawnNode(`daemon ${name}`, name, [
      pilotBin, 'up', ...(tun ? [] : ['--no-tun']), '--registry', this.registryAddr, '--beacon', this.beaconAddr,
      '--listen', `0.0.0.0:${TUNNEL_PORT}`, '--state-dir', join(this.dir, name, 'state'), '--control-socket', this.socket(name),
      '--hostname', `node-${name}`, '--auto-accept', '--config', join(this.dir, 'none.json'), '--log-format', 'text',
      '--heartbeat-interval', String(this.opts.heartbeatS ?? 1), ...(o.extraArgs ?? []),
    ], o.nodeArgs ?? [])
    this.daemons.set(name, p)
    try {
      await p.waitFor(/pilot-tun up\b.*address=/, 30_000)
    } catch (err) {
      if (/PT_TUN_UNAVAILABLE|cannot create a TUN|Unknown argument|\/dev\/net\/tun/i.test(p.output)) {
        throw new TunNotReady(`pilot-tun up (with the TUN) does not run here: ${p.tail(3).replace(/\s+/g, ' ')}`)
      }
      throw err
    }
    const s = await this.status(name)
    if (tun && s.tun === null) {
      await p.stop()
      throw new TunNotReady('pilot-tun up started but status reports no TUN interface')
    }
    const info: DaemonInfo = { name, address: s.address, ipv6: s.ipv6, tun: s.tun }
    this.info.set(name, info)
    return info
  }

  /** SIGTERM and wait (a clean shutdown; a --cpu-prof profile is written). */
  async down(name: string): Promise<number> {
    const p = this.daemons.get(name)
    if (p === undefined) return 0
    return p.stop('SIGTERM', 8_000)
  }

  daemonPid(name: string): number {
    const p = this.daemons.get(name)
    if (p === undefined) throw new Error(`no daemon ${name}`)
    return p.pid
  }

  /** `pilot-tun ARGS --control-socket <name's>` in node `name`'s namespace. */
  async cli(name: string, args: string[], timeoutMs = 30_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
    return this.topo.exec(name, [process.execPath, pilotBin, ...args, '--control-socket', this.socket(name)], { allowFailure: true, timeoutMs })
  }

  async json<T>(name: string, args: string[]): Promise<T> {
    const r = await this.cli(name, [...args, '--json'])
    if (r.code !== 0) throw new Error(`${name}: pilot-tun ${args.join(' ')} failed (exit ${r.code}): ${r.stdout}${r.stderr}`)
    return JSON.parse(r.stdout) as T
  }

  status(name: string): Promise<{ address: string; ipv6: string; tun: DaemonInfo['tun']; connections: number; peers: number }> {
    return this.json(name, ['status'])
  }

  /** `from` asks `to` for trust (both run --auto-accept); waits until both see it mutual. */
  async trust(from: string, to: string, timeoutMs = 20_000): Promise<void> {
    const a = this.info.get(from)
    const b = this.info.get(to)
    if (a === undefined || b === undefined) throw new Error(`trust: start ${from} and ${to} first`)
    const r = await this.cli(from, ['trust', 'request', b.address, '--reason', 'netns bench'])
    if (r.code !== 0) throw new Error(`${from}: trust request failed: ${r.stderr}${r.stdout}`)
    type List = { trusted: Array<{ address: string; mutual: boolean }> }
    const mutual = async (who: string, peer: string): Promise<boolean> =>
      (await this.json<List>(who, ['trust', 'list'])).trusted.some((t) => t.address === peer && t.mutual)
    const deadline = Date.now() + timeoutMs
    while (!((await mutual(from, b.address)) && (await mutual(to, a.address)))) {
      if (Date.now() > deadline) throw new Error(`trust between ${from} and ${to} not mutual after ${timeoutMs} ms\n${this.logs()}`)
      await sleep(200)
    }
  }

  /** Starts the blast/echo servers in `name`'s namespace; resolves when they listen. */
  async serveTraffic(name: string, blastPort = 7001, echoPort = 7002): Promise<NsProcess> {
    const p = this.spawnNode(`traffic server ${name}`, name, [blastScript, 'serve', '--host', '::', '--blast-port', String(blastPort), '--echo-port', String(echoPort)])
    await p.waitFor(/"ready":true/, 10_000)
    return p
  }

  /** Runs a blast.js client in `name`'s namespace and parses its JSON line. `onLine` sees every earlier line. */
  async traffic<T>(name: string, args: string[], timeoutMs: number, onLine?: (line: unknown) => void): Promise<T> {
    const p = this.spawnNode(`traffic client ${name}`, name, [blastScript, ...args])
    let seen = 0
    const lines = (): string[] => p.output.split('\n').filter((l) => l.startsWith('{'))
    const poll = setInterval(() => {
      const ls = lines()
      for (; seen < ls.length; seen++) onLine?.(JSON.parse(ls[seen]!))
    }, 20)
    const timer = setTimeout(() => p.kill(), timeoutMs)
    const code = await p.exited
    clearTimeout(timer)
    clearInterval(poll)
    const ls = lines()
    for (; seen < ls.length - 1; seen++) onLine?.(JSON.parse(ls[seen]!))
    const last = ls[ls.length - 1]
    if (code !== 0 || last === undefined) throw new Error(`blast.js ${args.join(' ')} in ${name} failed (exit ${code}):\n${p.tail()}`)
    return JSON.parse(last) as T
  }

  /** The last lines of every daemon's and the rendezvous' output. */
  logs(lines = 20): string {
    return this.all
      .filter((p) => p.label.startsWith('daemon') || p.label === 'rendezvous')
      .map((p) => `----- ${p.label} (pid ${p.pid}${p.running ? '' : ', exited'}) -----\n${p.tail(lines)}`)
      .join('\n')
  }

  /** Stops the daemons cleanly (SIGTERM), kills everything else by PID, removes the temp dir. Idempotent. */
  async close(): Promise<void> {
    await Promise.all([...this.daemons.values()].map((p) => p.stop('SIGTERM', 5_000)))
    for (const p of this.all) p.kill()
    await Promise.all(this.all.map((p) => Promise.race([p.exited, sleep(3_000)])))
    rmSync(this.dir, { recursive: true, force: true })
  }
}
