/**
 * A small internet inside network namespaces, for tests, the demo and the
 * benchmarks. Addresses exist only inside the namespaces; the root namespace's
 * interfaces, routes, sysctls and nftables ruleset are never changed (veths
 * are created directly inside their namespaces, every rule lives in one).
 *
 * The default topology (specs.ts, "default"); the test adds a second public host e:
 *
 *   rendezvous 198.18.0.2              a 198.18.1.2                (public hosts)
 *   registry :9000/tcp, beacon :9001/udp
 *        │ ptb-<id>-0u                      │ ptb-<id>-1u
 *        │ ptb-<id>-0h 198.18.0.1           │ ptb-<id>-1h 198.18.1.1
 *   ┌────┴──────────────────────────────────┴────────────────────────────────┐
 *   │ ptb-<id>-hub  "internet" 198.18.0.0/15, ip_forward,                    │
 *   │ table ip ptb_impair: loss (numgen random), duplication (dup to)        │
 *   └────┬──────────────────────────┬───────────────────────────┬────────────┘
 *        │ 198.18.2.1               │ 198.18.3.1                │ 198.18.4.1
 *        │ 198.18.2.2               │ 198.18.3.2                │ 198.18.4.2
 *   b-gw full cone             c-gw port-restricted        d-gw symmetric
 *   snat+dnat udp :4000        masquerade                  masquerade fully-random
 *        │ 10.200.2.1               │ 10.200.3.1                │ 10.200.4.1
 *        │ 10.200.2.2               │ 10.200.3.2                │ 10.200.4.2
 *   b (tunnel :4000)           c (tunnel :4000)            d (tunnel :4000)
 *
 * Names: namespaces ptb-<id>-<node> and ptb-<id>-<node>-gw; veths
 * ptb-<id>-<k>h/u (hub link) and ptb-<id>-<k>l/n (LAN). The owner record in
 * /run/pilot-tun-testbed/<id>.json lets `cleanupStale()` remove the test beds
 * of dead processes; `create()` runs it first.
 *
 * Kinds of methods: getters (`id`, `node`, `address`, `publicAddress`,
 * `namespace`), commands inside a namespace (`exec`, `spawn`, `reachable`),
 * knobs (`setLoss`, `setDuplication`, `setNatKind`, `flushConntrack`), and
 * `destroy()`, which is idempotent.
 */
import { spawn as spawnChild, spawnSync, type ChildProcess, type SpawnOptions } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { TestbedError, TestbedErrorCode } from './errors.js'
import {
  claimOwner,
  cleanupStale,
  listPrefixedNamespaces,
  listOwners,
  ownerAlive,
  processStart,
  readOwner,
  removeNamespace,
  removeOwner,
  writeOwner,
  NAME_PREFIX,
  type CleanupReport,
  type OwnerRecord,
} from './owners.js'
import {
  checkNatKind,
  checkPercent,
  impairRuleset,
  namespaceBatches,
  natRuleset,
  planTopology,
  rootBatch,
  sysctlArgs,
  type NatKind,
  type NodeLayout,
  type TopologyLayout,
  type TopologySpec,
} from './plan.js'
import { commandFailed, run, type RunOptions, type RunResult } from './run.js'

export type { NatKind, NodeLayout, NodeSpec, TopologyLayout, TopologySpec } from './plan.js'
export type { CleanupReport } from './owners.js'

export interface CreateOptions {
  /** Keep the test bed after this process exits (CLI `up --detach`); only `down` removes it. */
  detached?: boolean
  /** On a normal process exit, delete the namespaces synchronously if `destroy()` was not called. Default true (not for detached). */
  cleanupOnExit?: boolean
}

/** Why the test bed cannot run here, or null when it can (root, ip, nft, sysctl present). Tests use it for `skip`. */
export async function testbedUnavailable(): Promise<string | null> {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return 'needs root (network namespaces, veths, nftables)'
  for (const tool of ['ip', 'nft', 'sysctl', 'conntrack']) {
    const r = spawnSync(tool, tool === 'sysctl' ? ['-V'] : tool === 'ip' ? ['-V'] : ['--version'], { stdio: 'ignore' })
    if (r.error !== undefined) return `\`${tool}\` is not installed`
  }
  return null
}

export class Topology {
  readonly id: string
  readonly layout: TopologyLayout
  private loss = 0
  private duplication = 0
  private readonly natKinds = new Map<string, NatKind>()
  private readonly children = new Set<ChildProcess>()
  private destroyed = false
  private readonly owned: boolean
  private readonly exitHook: (() => void) | null

  private constructor(layout: TopologyLayout, owned: boolean, cleanupOnExit: boolean) {
    this.id = layout.id
    this.layout = layout
    this.owned = owned
    for (const n of layout.nodes) if (n.nat !== null) this.natKinds.set(n.name, n.nat)
    this.exitHook = cleanupOnExit ? () => this.destroySync() : null
    if (this.exitHook !== null) process.once('exit', this.exitHook)
  }

  /**
   * Builds the topology: removes stale test beds, claims a run id, then
   * namespaces, veths, sysctls, addresses and routes, the hub's impairment
   * table and each router's NAT table. On failure everything built so far is
   * removed before the error is thrown.
   */
  static async create(spec: TopologySpec, opts: CreateOptions = {}): Promise<Topology> {
    if (typeof process.getuid !== 'function' || process.getuid() !== 0) {
      throw new TestbedError(TestbedErrorCode.NOT_ROOT, 'the namespace test bed needs root', {
        hint: 'run as root (sudo), or skip the netns tests',
      })
    }
    planTopology(spec, '000000') // validate before touching anything
    await cleanupStale()
    const detached = opts.detached === true
    let layout: TopologyLayout | null = null
    for (let attempt = 0; attempt < 16 && layout === null; attempt++) {
      const id = randomBytes(3).toString('hex')
      const candidate = planTopology(spec, id)
      const rec: OwnerRecord = {
        id,
        pid: process.pid,
        pidStart: processStart(process.pid) ?? 0,
        detached,
        createdAt: new Date().toISOString(),
        layout: candidate,
      }
      if (claimOwner(rec)) layout = candidate
    }
    if (layout === null) throw new TestbedError(TestbedErrorCode.COMMAND_FAILED, 'could not claim a free run id in /run/pilot-tun-testbed')
    const topo = new Topology(layout, true, !detached && opts.cleanupOnExit !== false)
    try {
      await topo.build(spec)
    } catch (err) {
      await topo.destroy().catch(() => {})
      throw err
    }
    return topo
  }

  /** Drives a test bed another process built (e.g. `cli.js up --detach`). `destroy()` on it removes it. */
  static attach(id: string): Topology {
    const rec = readOwner(id)
    if (rec === null || rec.layout === null) {
      throw new TestbedError(TestbedErrorCode.NOT_FOUND, `no test bed with id ${id}`, { hint: 'list them with `node dist/src/testbed/cli.js status`' })
    }
    const t = new Topology(rec.layout, false, false)
    if (rec.state !== undefined) {
      t.loss = rec.state.loss
      t.duplication = rec.state.duplication
      for (const [name, kind] of Object.entries(rec.state.nat)) t.natKinds.set(name, kind)
    }
    return t
  }

  /** Records the knobs in the owner record (best effort: a destroyed test bed has none). */
  private persist(): void {
    const rec = readOwner(this.id)
    if (rec === null) return
    writeOwner({ ...rec, state: { loss: this.loss, duplication: this.duplication, nat: Object.fromEntries(this.natKinds) } })
  }

  /** Removes every prefixed namespace/link whose owner process is dead. */
  static cleanupStale(): Promise<CleanupReport> {
    return cleanupStale()
  }

  /** The owner records of all test beds on this machine, with liveness. */
  static list(): Array<OwnerRecord & { alive: boolean }> {
    return listOwners().map((r) => ({ ...r, alive: ownerAlive(r) }))
  }

  private async build(spec: TopologySpec): Promise<void> {
    const L = this.layout
    const batch = rootBatch(L)
    await run(['ip', '-batch', '-'], { input: batch.namespaces })
    const sysctls = sysctlArgs(L)
    await Promise.all([...sysctls].map(([ns, args]) => run(['ip', 'netns', 'exec', ns, 'sysctl', '-q', '-w', ...args])))
    await run(['ip', '-batch', '-'], { input: batch.links })
    await Promise.all([...namespaceBatches(L)].map(([ns, text]) => run(['ip', '-n', ns, '-batch', '-'], { input: text })))
    this.loss = checkPercent('loss', spec.loss ?? 0)
    this.duplication = checkPercent('duplication', spec.duplication ?? 0)
    await Promise.all([
      this.nft(L.hub.namespace, impairRuleset(this.loss, this.duplication)),
      ...L.nodes.filter((n) => n.router !== null).map((n) => this.nft(n.router!.namespace, natRuleset(n, n.nat!))),
    ])
    this.persist()
  }

  private nft(namespace: string, ruleset: string): Promise<RunResult> {
    return run(['ip', 'netns', 'exec', namespace, 'nft', '-f', '-'], { input: ruleset })
  }

  // --- getters ---

  /** Every node (rendezvous first), with namespaces, addresses and routers. */
  get nodes(): readonly NodeLayout[] {
    return this.layout.nodes
  }

  /** The rendezvous node (registry + beacon host), or null if the spec has none. */
  get rendezvous(): NodeLayout | null {
    return this.layout.nodes.find((n) => n.rendezvous) ?? null
  }

  node(name: string): NodeLayout {
    const n = this.layout.nodes.find((x) => x.name === name)
    if (n === undefined) throw this.unknown(name)
    return n
  }

  /** The node's own interface address (a 10.200.k.2 LAN address behind NAT). For "hub" or "<node>-gw", the hub-facing address. */
  address(name: string): string {
    if (name === 'hub') return '198.18.0.1'
    const gw = this.routerOf(name)
    if (gw !== null) return gw.router!.wanAddress
    return this.node(name).address
  }

  /** The address the internet reaches the node at: its own, or its NAT router's WAN address. */
  publicAddress(name: string): string {
    return this.node(name).publicAddress
  }

  /** The namespace of "hub", a node, or "<node>-gw" (its NAT router). */
  namespace(name: string): string {
    if (name === 'hub') return this.layout.hub.namespace
    const gw = this.routerOf(name)
    if (gw !== null) return gw.router!.namespace
    return this.node(name).namespace
  }

  /** The current NAT kind of a node behind NAT. */
  natKind(name: string): NatKind {
    const k = this.natKinds.get(name)
    if (k === undefined) throw this.unknown(name, 'a node behind NAT')
    return k
  }

  // --- commands inside a namespace ---

  /** Runs argv inside the namespace of `name` (`ip netns exec`, no shell); throws PT_TESTBED_COMMAND_FAILED with stderr. */
  async exec(name: string, argv: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
    this.checkAlive()
    return run(['ip', 'netns', 'exec', this.namespace(name), ...argv], opts)
  }

  /** Starts argv inside the namespace of `name`. The child is killed by `destroy()` if still running. */
  spawn(name: string, argv: readonly string[], opts: SpawnOptions = {}): ChildProcess {
    this.checkAlive()
    const [cmd, ...args] = argv
    if (cmd === undefined) throw new TestbedError(TestbedErrorCode.BAD_VALUE, 'spawn: empty command line')
    const child = spawnChild('ip', ['netns', 'exec', this.namespace(name), cmd, ...args], { stdio: 'pipe', ...opts })
    this.children.add(child)
    child.once('exit', () => this.children.delete(child))
    child.once('error', () => this.children.delete(child))
    return child
  }

  /** True if one ping from `name` to `address` is answered within `timeoutS` seconds. */
  async reachable(name: string, address: string, timeoutS = 1): Promise<boolean> {
    const r = await this.exec(name, ['ping', '-n', '-q', '-c', '1', '-W', String(timeoutS), address], { allowFailure: true })
    return r.code === 0
  }

  // --- knobs ---

  /** Random loss of forwarded packets on the hub, in percent (0.01 % steps; each hub crossing is one draw). */
  async setLoss(percent: number): Promise<void> {
    this.checkAlive()
    checkPercent('loss', percent)
    await this.nft(this.layout.hub.namespace, impairRuleset(percent, this.duplication))
    this.loss = percent
    this.persist()
  }

  /** Random duplication of forwarded packets on the hub, in percent (nftables `dup to ip daddr device oif`). */
  async setDuplication(percent: number): Promise<void> {
    this.checkAlive()
    checkPercent('duplication', percent)
    await this.nft(this.layout.hub.namespace, impairRuleset(this.loss, percent))
    this.duplication = percent
    this.persist()
  }

  get impairments(): { loss: number; duplication: number } {
    return { loss: this.loss, duplication: this.duplication }
  }

  /**
   * Replaces the NAT kind of node `name`'s router. Existing conntrack entries
   * keep their old mappings, so by default they are flushed too
   * (`{ flush: false }` keeps them).
   */
  async setNatKind(name: string, kind: NatKind, opts: { flush?: boolean } = {}): Promise<void> {
    this.checkAlive()
    checkNatKind(kind)
    const n = this.node(name)
    if (n.router === null) throw this.unknown(name, 'a node behind NAT')
    await this.nft(n.router.namespace, natRuleset(n, kind))
    this.natKinds.set(name, kind)
    this.persist()
    if (opts.flush !== false) await this.flushConntrack(name)
  }

  /** Forgets every NAT mapping of node `name`'s router (or of "hub"/"<node>-gw"): `conntrack -F` inside it. */
  async flushConntrack(name: string): Promise<void> {
    this.checkAlive()
    let ns: string
    if (name === 'hub' || this.routerOf(name) !== null) ns = this.namespace(name)
    else {
      const n = this.node(name)
      if (n.router === null) throw this.unknown(name, 'a node behind NAT')
      ns = n.router.namespace
    }
    const argv = ['ip', 'netns', 'exec', ns, 'conntrack', '-F']
    const r = await run(argv, { allowFailure: true })
    // conntrack -F reports its work on stderr; exit 0 is success. An empty table is not an error either.
    if (r.code !== 0 && !/has been emptied|0 flow entries/i.test(r.stderr)) throw commandFailed(argv, r)
  }

  // --- teardown ---

  /** Kills processes started in the namespaces, deletes every namespace (and so every veth) and the owner record. Idempotent. */
  async destroy(): Promise<void> {
    if (this.destroyed) return
    this.destroyed = true
    if (this.exitHook !== null) process.removeListener('exit', this.exitHook)
    for (const c of this.children) c.kill('SIGKILL')
    this.children.clear()
    const errors: unknown[] = []
    await Promise.all(
      [...this.layout.namespaces].reverse().map((ns) => removeNamespace(ns).catch((e: unknown) => errors.push(e))),
    )
    if (errors.length > 0) {
      throw new TestbedError(TestbedErrorCode.COMMAND_FAILED, `destroy of test bed ${this.id} left namespaces behind: ${errors.map(String).join('; ')}`, {
        hint: 'run `node dist/src/testbed/cli.js down --all`',
      })
    }
    removeOwner(this.id)
  }

  /** Best-effort synchronous teardown for process exit. */
  private destroySync(): void {
    if (this.destroyed) return
    this.destroyed = true
    for (const c of this.children) c.kill('SIGKILL')
    for (const ns of this.layout.namespaces) {
      if (!ns.startsWith(NAME_PREFIX)) continue
      const p = spawnSync('ip', ['netns', 'pids', ns], { encoding: 'utf8' })
      for (const pid of (p.stdout ?? '').split(/\s+/).filter((s) => /^\d+$/.test(s)).map(Number)) {
        if (pid === process.pid) continue
        try {
          process.kill(pid, 'SIGKILL')
        } catch {
          // gone
        }
      }
      spawnSync('ip', ['netns', 'delete', ns], { stdio: 'ignore' })
    }
    removeOwner(this.id)
  }

  /** Whether this object created the test bed (false for `attach`). */
  get isOwner(): boolean {
    return this.owned
  }

  private routerOf(name: string): NodeLayout | null {
    if (!name.endsWith('-gw')) return null
    const n = this.layout.nodes.find((x) => x.router !== null && x.router.name === name)
    if (n === undefined) throw this.unknown(name)
    return n
  }

  private checkAlive(): void {
    if (this.destroyed) throw new TestbedError(TestbedErrorCode.DESTROYED, `test bed ${this.id} was destroyed`)
  }

  private unknown(name: string, what = 'a node'): TestbedError {
    const names = ['hub', ...this.layout.nodes.flatMap((n) => (n.router === null ? [n.name] : [n.name, n.router.name]))]
    return new TestbedError(TestbedErrorCode.UNKNOWN_NODE, `${JSON.stringify(name)} is not ${what} of test bed ${this.id}`, {
      hint: `names: ${names.join(', ')}`,
    })
  }
}

/** Removes the test bed `id` whatever its owner's state (CLI `down --id`). */
export async function removeTestbed(id: string): Promise<string[]> {
  const rec = readOwner(id)
  const names = rec?.layout?.namespaces ?? []
  const present = (await listPrefixedNamespaces()).filter((ns) => ns.startsWith(`${NAME_PREFIX}${id}-`))
  const all = [...new Set([...names.filter((n) => present.includes(n)), ...present])]
  if (rec === null && all.length === 0) {
    throw new TestbedError(TestbedErrorCode.NOT_FOUND, `no test bed with id ${id}`, { hint: 'list them with `node dist/src/testbed/cli.js status`' })
  }
  await Promise.all(all.map((ns) => removeNamespace(ns)))
  removeOwner(id)
  return all
}
