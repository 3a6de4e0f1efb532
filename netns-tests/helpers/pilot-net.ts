/**
 * Real `pilot-tun` processes inside a test bed (src/testbed/): a rendezvous
 * (or a registry and a beacon as separate processes, so one can stop without
 * the other) in the rendezvous namespace, and `up --no-tun` daemons in node
 * namespaces, each with its state dir and control socket under one temp dir.
 * CLI commands run in the node's namespace with `--json` and are parsed.
 *
 * Cleanup: `close()` SIGKILLs every process this object started, by PID
 * (`ip netns exec` execs, so the child's PID is the node process), and removes
 * the temp dir; the Topology's own destroy() kills anything left and deletes
 * the namespaces. Call both in `finally`.
 */
import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { ChildProcess } from 'node:child_process'
import type { Topology } from '../../src/testbed/topology.js'
import type { PeerStatus, DaemonStatus, TrustList } from '../../src/daemon/api.js'

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..')
export const bin = join(repoRoot, 'bin', 'pilot-tun.js')

export const REGISTRY_PORT = 9000
export const BEACON_PORT = 9001
/** Every node's tunnel port (the full-cone routers forward exactly this port). */
export const TUNNEL_PORT = 4000

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms))
}

/**
 * Calls `fn` until `ok(value)` holds or the deadline passes; returns the value,
 * or throws with `what` and the last value (or error) when time runs out.
 */
export async function waitUntil<T>(
  what: string,
  fn: () => Promise<T>,
  ok: (v: T) => boolean,
  opts: { timeoutMs?: number; intervalMs?: number } = {},
): Promise<T> {
  const deadline = Date.now() + (opts.timeoutMs ?? 15_000)
  let last: unknown = undefined
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
      throw new Error(`timed out after ${opts.timeoutMs ?? 15_000} ms waiting for ${what}; last: ${shown}`)
    }
    await sleep(opts.intervalMs ?? 250)
  }
}

/** A long-running process in a namespace; output collected for diagnostics and `waitFor`. */
export class NetProcess {
  output = ''
  readonly exited: Promise<number>
  constructor(
    readonly name: string,
    readonly child: ChildProcess,
  ) {
    child.stdout?.setEncoding('utf8').on('data', (d: string) => this.append(d))
    child.stderr?.setEncoding('utf8').on('data', (d: string) => this.append(d))
    this.exited = new Promise((r) => child.once('exit', (code, signal) => r(code ?? (signal ? 128 : -1))))
  }

  private append(d: string): void {
    this.output += d
    if (this.output.length > 400_000) this.output = this.output.slice(-200_000)
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null
  }

  get pid(): number {
    return this.child.pid!
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

  /** Sends `signal` to the PID and waits for the exit (SIGKILL after `graceMs`). */
  async stop(signal: NodeJS.Signals = 'SIGTERM', graceMs = 5_000): Promise<number> {
    if (this.running) {
      try {
        process.kill(this.pid, signal)
      } catch {
        // already gone
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
      // already gone
    }
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

export interface PingSummary {
  sent: number
  received: number
  loss_pct: number
  replies: Array<{ seq: number; ok: boolean; rtt_ms?: number; path?: string; error?: { code: string; message: string } }>
  error?: { code: string; message: string }
}

export interface NetOptions {
  /** Registry and beacon as two processes (faults test) instead of one `rendezvous`. */
  split?: boolean
  /** Registry heartbeat of every daemon, seconds (hidden `--heartbeat-interval`). */
  heartbeatS?: number
}

export class PilotNet {
  readonly dir: string
  registry: NetProcess | null = null
  beacon: NetProcess | null = null
  readonly daemons = new Map<string, NetProcess>()
  /** Every process ever started here (restarts add more), killed by PID in close(). */
  private readonly all: NetProcess[] = []
  private readonly registryHost: string

  constructor(
    readonly topo: Topology,
    readonly opts: NetOptions = {},
  ) {
    this.dir = mkdtempSync(join(tmpdir(), 'pilot-netns-'))
    writeFileSync(join(this.dir, 'none.json'), '{}')
    const rv = topo.rendezvous
    if (rv === null) throw new Error('the spec has no rendezvous node')
    this.registryHost = rv.address
  }

  get registryAddr(): string {
    return `${this.registryHost}:${REGISTRY_PORT}`
  }

  get beaconAddr(): string {
    return `${this.registryHost}:${BEACON_PORT}`
  }

  private spawn(label: string, ns: string, args: string[]): NetProcess {
    const p = new NetProcess(label, this.topo.spawn(ns, [process.execPath, bin, ...args]))
    this.all.push(p)
    return p
  }

  /** The registry and the beacon: one `rendezvous`, or two processes with `split`. */
  async startRendezvous(): Promise<void> {
    if (this.opts.split === true) {
      await Promise.all([this.startRegistry(), this.startBeacon()])
      return
    }
    const rv = this.topo.rendezvous!.name
    const p = this.spawn('rendezvous', rv, [
      'rendezvous', '--registry-listen', `0.0.0.0:${REGISTRY_PORT}`, '--beacon-listen', `0.0.0.0:${BEACON_PORT}`,
      '--store', join(this.dir, 'registry.db'), '--log-format', 'text',
    ])
    this.registry = p
    this.beacon = p
    await p.waitFor(/rendezvous running/)
  }

  async startRegistry(): Promise<NetProcess> {
    const p = this.spawn('registry', this.topo.rendezvous!.name, [
      'registry', '--listen', `0.0.0.0:${REGISTRY_PORT}`, '--store', join(this.dir, 'registry.db'), '--log-format', 'text',
    ])
    this.registry = p
    await p.waitFor(/listening on/)
    return p
  }

  async startBeacon(): Promise<NetProcess> {
    const p = this.spawn('beacon', this.topo.rendezvous!.name, ['beacon', '--listen', `0.0.0.0:${BEACON_PORT}`, '--log-level', 'info'])
    this.beacon = p
    await p.waitFor(/beacon listening/)
    return p
  }

  socket(name: string): string {
    return join(this.dir, name, 'control.sock')
  }

  /** Starts `pilot-tun up --no-tun` in node `name`'s namespace and waits until it is registered. */
  async up(name: string): Promise<NetProcess> {
    mkdirSync(join(this.dir, name), { recursive: true })
    const p = this.spawn(`daemon ${name}`, name, [
      'up', '--no-tun', '--registry', this.registryAddr, '--beacon', this.beaconAddr, '--listen', `0.0.0.0:${TUNNEL_PORT}`,
      '--state-dir', join(this.dir, name, 'state'), '--control-socket', this.socket(name), '--hostname', `node-${name}`,
      '--auto-accept', '--config', join(this.dir, 'none.json'), '--log-format', 'text',
      '--heartbeat-interval', String(this.opts.heartbeatS ?? 1),
    ])
    this.daemons.set(name, p)
    await p.waitFor(/pilot-tun up address=/)
    return p
  }

  /** SIGTERM (clean shutdown), waits for the exit. */
  async down(name: string): Promise<number> {
    const p = this.daemons.get(name)
    if (p === undefined) return 0
    return p.stop('SIGTERM')
  }

  /** `pilot-tun ARGS --control-socket <name's>` inside node `name`'s namespace. */
  async cli(name: string, args: string[], timeoutMs = 30_000): Promise<CliResult> {
    const r = await this.topo.exec(name, [process.execPath, bin, ...args, '--control-socket', this.socket(name)], {
      allowFailure: true,
      timeoutMs,
    })
    return r
  }

  /** Runs with `--json` and parses stdout; throws with stderr when it is not JSON. */
  async json<T>(name: string, args: string[], timeoutMs?: number): Promise<{ code: number | null; body: T }> {
    const r = await this.cli(name, [...args, '--json'], timeoutMs)
    try {
      return { code: r.code, body: JSON.parse(r.stdout) as T }
    } catch {
      throw new Error(`${name}: pilot-tun ${args.join(' ')} --json gave no JSON (exit ${r.code}): ${r.stdout}${r.stderr}`)
    }
  }

  async status(name: string): Promise<DaemonStatus> {
    const r = await this.json<DaemonStatus>(name, ['status'])
    if (r.code !== 0) throw new Error(`${name}: status failed: ${JSON.stringify(r.body)}`)
    return r.body
  }

  async peers(name: string): Promise<PeerStatus[]> {
    const r = await this.json<PeerStatus[]>(name, ['peers'])
    if (r.code !== 0) throw new Error(`${name}: peers failed: ${JSON.stringify(r.body)}`)
    return r.body
  }

  /** `name`'s view of the peer with address `address`, or null. */
  async peer(name: string, address: string): Promise<PeerStatus | null> {
    return (await this.peers(name)).find((p) => p.address === address) ?? null
  }

  async ping(name: string, target: string, count: number, opts: { interval?: number; timeout?: number } = {}): Promise<PingSummary> {
    const interval = opts.interval ?? 0.2
    const timeout = opts.timeout ?? 3
    const r = await this.json<PingSummary>(
      name,
      ['ping', target, '--count', String(count), '--interval', String(interval), '--timeout', String(timeout)],
      (count * (interval + timeout) + 20) * 1000,
    )
    return r.body
  }

  async trustList(name: string): Promise<TrustList> {
    const r = await this.json<TrustList>(name, ['trust', 'list'])
    if (r.code !== 0) throw new Error(`${name}: trust list failed: ${JSON.stringify(r.body)}`)
    return r.body
  }

  /**
   * `from` asks `to` for trust (`to` runs --auto-accept) and both wait until
   * the trust is mutual. Note: the request travels over the tunnel (port 444)
   * first, so this is where `from` "connects first".
   */
  async trust(from: string, to: string, addrs: { from: string; to: string }, timeoutMs = 20_000): Promise<void> {
    const r = await this.cli(from, ['trust', 'request', addrs.to, '--reason', 'netns test'])
    if (r.code !== 0) throw new Error(`${from}: trust request ${to} failed: ${r.stderr}`)
    const mutual = (list: TrustList, address: string): boolean => list.trusted.some((t) => t.address === address && t.mutual)
    await Promise.all([
      waitUntil(`${from} trusts ${to} mutually`, () => this.trustList(from), (l) => mutual(l, addrs.to), { timeoutMs }),
      waitUntil(`${to} trusts ${from} mutually`, () => this.trustList(to), (l) => mutual(l, addrs.from), { timeoutMs }),
    ])
  }

  /** The last lines of every process's output (for failure messages). */
  logs(names?: string[], lines = 25): string {
    const out: string[] = []
    for (const p of this.all) {
      if (names !== undefined && !names.some((n) => p.name === n || p.name === `daemon ${n}`)) continue
      out.push(`----- ${p.name} (pid ${p.pid}${p.running ? '' : ', exited'}) -----\n${p.tail(lines)}`)
    }
    return out.join('\n')
  }

  /** Kills every process started here by PID and removes the temp dir. Idempotent. */
  async close(): Promise<void> {
    for (const p of this.all) p.kill()
    await Promise.all(this.all.map((p) => Promise.race([p.exited, sleep(3_000)])))
    rmSync(this.dir, { recursive: true, force: true })
  }
}

/** Direct path kinds: a hole-punched path is direct too. */
export function isDirect(path: string | undefined): boolean {
  return path === 'direct' || path === 'punched'
}

