/**
 * Reference (Go) nodes and pilot-tun agents on a namespace test bed, for the
 * interop tests behind NATs: a PilotBed (its pilot-tun rendezvous on :9000 and
 * :9001 of the rendezvous host) plus the reference's `rendezvous` on :9100 and
 * :9101 of the same host, reference `daemon`s driven by `pilotctl --json`
 * inside their namespace, and pilot-tun nodes as agents (pilot-agent.ts)
 * driven over stdin.
 *
 * Safety: every reference daemon gets -registry and -beacon on a rendezvous
 * inside the test bed, and its own HOME, -socket and -identity under the
 * bed's temp dir. Every reference command and what it printed is kept in
 * `transcript`. Cleanup: close() kills every process started here by PID
 * (PilotBed.close) — call it and the Topology's destroy() in `finally`.
 */
import { mkdirSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { PilotBed } from '../../src/testbed/pilot-bed.js'
import type { NsProcess } from '../../src/testbed/ns-process.js'
import { waitUntil } from '../../src/testbed/ns-process.js'
import type { Topology } from '../../src/testbed/topology.js'
import type { ReferenceBinaries } from '../../test/util/reference.js'

const agentJs = join(dirname(fileURLToPath(import.meta.url)), 'pilot-agent.js')
const tcpSendJs = join(dirname(fileURLToPath(import.meta.url)), 'tcp-send.js')

export interface Rendezvous {
  registry: string
  beacon: string
}

/** A reference daemon in a namespace, driven by `pilotctl --json`. */
export class NsReferenceNode {
  nodeId = 0
  address = ''
  constructor(
    private readonly net: ReferenceNet,
    readonly node: string,
    readonly name: string,
    readonly home: string,
    readonly socket: string,
    readonly process: NsProcess,
  ) {}

  async ctl(args: string[], timeoutMs = 20_000): Promise<{ code: number | null; stdout: string; stderr: string; json: unknown }> {
    const r = await this.net.topo.exec(this.node, ['env', `HOME=${this.home}`, `PILOT_SOCKET=${this.socket}`, this.net.ref.bin('pilotctl'), '--json', ...args], {
      allowFailure: true,
      timeoutMs,
    })
    this.net.note(`[${this.name}@${this.node}] $ pilotctl --json ${args.join(' ')}  → exit ${r.code}: ${(r.stdout + r.stderr).trim().slice(0, 400)}`)
    let json: unknown = null
    try {
      json = (JSON.parse(r.stdout) as { data?: unknown }).data ?? null
    } catch {
      json = null
    }
    return { ...r, json }
  }

  /**
   * `pilotctl gateway start --ports PORT TARGET`: the reference's TCP-to-overlay
   * proxy, in this namespace (it maps TARGET to 10.4.0.1 on lo). Returns the local IP.
   */
  async gateway(port: number, target: string): Promise<string> {
    const argv = ['env', `HOME=${this.home}`, `PILOT_SOCKET=${this.socket}`, this.net.ref.bin('pilotctl'), 'gateway', 'start', '--ports', String(port), target]
    this.net.note(`[${this.name}@${this.node}] $ pilotctl gateway start --ports ${port} ${target}`)
    const p = this.net.bed.spawn(`gateway ${this.name}`, this.node, argv)
    const m = await p.waitFor(/mapped (\S+) → /, 15_000)
    await p.waitFor(/gateway running/, 5_000)
    this.net.note(`  → ${p.output.trim().split('\n').join(' | ')}`)
    return m[1]!
  }

  /** Sends `bytes` random bytes over TCP from this namespace to HOST:PORT (tcp-send.ts). */
  async tcpSend(host: string, port: number, bytes: number): Promise<{ sha: string; bytes: number; ms: number }> {
    const r = await this.net.topo.exec(this.node, [process.execPath, tcpSendJs, host, String(port), String(bytes)], { allowFailure: true, timeoutMs: 90_000 })
    if (r.code !== 0) throw new Error(`tcp-send to ${host}:${port} failed (${r.code}): ${r.stderr}`)
    return JSON.parse(r.stdout) as { sha: string; bytes: number; ms: number }
  }

  /** The daemon's log so far (it runs with -log-level debug). */
  get log(): string {
    return this.process.output
  }
}

interface AgentReply {
  id?: number
  ok?: boolean
  result?: unknown
  error?: string
  ready?: { node_id: number; address: string }
}

/** A pilot-tun node (pilot-agent.ts) in a namespace. */
export class PilotAgent {
  nodeId = 0
  address = ''
  private nextId = 1
  private buffered = ''
  private readonly waiting = new Map<number, (r: AgentReply) => void>()
  private readyResolve: ((r: AgentReply) => void) | null = null

  constructor(
    readonly name: string,
    readonly process: NsProcess,
  ) {
    process.child.stdout!.on('data', (d: string | Buffer) => {
      this.buffered += d.toString()
      let nl: number
      while ((nl = this.buffered.indexOf('\n')) >= 0) {
        const line = this.buffered.slice(0, nl)
        this.buffered = this.buffered.slice(nl + 1)
        let msg: AgentReply
        try {
          msg = JSON.parse(line) as AgentReply
        } catch {
          continue
        }
        if (msg.ready !== undefined) this.readyResolve?.(msg)
        else if (msg.id !== undefined) this.waiting.get(msg.id)?.(msg)
      }
    })
  }

  async ready(timeoutMs = 30_000): Promise<void> {
    const msg = await new Promise<AgentReply>((resolve, reject) => {
      this.readyResolve = resolve
      const t = setTimeout(() => reject(new Error(`agent ${this.name} not ready: ${this.process.tail(20)}`)), timeoutMs)
      this.process.exited.then(() => reject(new Error(`agent ${this.name} exited: ${this.process.tail(20)}`)), () => {})
      void t
    }).finally(() => (this.readyResolve = null))
    this.nodeId = msg.ready!.node_id
    this.address = msg.ready!.address
  }

  /** One command; resolves with its result, rejects with its error. */
  async call<T>(op: string, args: Record<string, unknown> = {}, timeoutMs = 30_000): Promise<T> {
    const id = this.nextId++
    const reply = await new Promise<AgentReply>((resolve, reject) => {
      const t = setTimeout(() => {
        this.waiting.delete(id)
        reject(new Error(`agent ${this.name}: ${op} timed out after ${timeoutMs} ms`))
      }, timeoutMs)
      this.waiting.set(id, (r) => {
        clearTimeout(t)
        this.waiting.delete(id)
        resolve(r)
      })
      this.process.child.stdin!.write(JSON.stringify({ id, op, ...args }) + '\n')
    })
    if (reply.ok !== true) throw new Error(`agent ${this.name}: ${op} failed: ${reply.error}`)
    return reply.result as T
  }
}

export class ReferenceNet {
  readonly bed: PilotBed
  readonly transcript: string[] = []
  private readonly started = Date.now()
  /** The reference rendezvous once started (its log shows what the registry relayed). */
  refRendezvous: NsProcess | null = null

  constructor(
    readonly topo: Topology,
    readonly ref: ReferenceBinaries,
  ) {
    this.bed = new PilotBed(topo, { tmpPrefix: 'ptint-' })
  }

  note(line: string): void {
    this.transcript.push(`[+${((Date.now() - this.started) / 1000).toFixed(1)} s] ${line}`)
  }

  get rvHost(): string {
    return this.topo.rendezvous!.address
  }

  /** pilot-tun's rendezvous (registry :9000, beacon :9001). */
  async pilotTunRendezvous(): Promise<Rendezvous> {
    await this.bed.startRendezvous()
    return { registry: this.bed.registryAddr, beacon: this.bed.beaconAddr }
  }

  /** The reference's rendezvous (registry :9100, beacon :9101). */
  async referenceRendezvous(): Promise<Rendezvous> {
    const argv = [this.ref.bin('rendezvous'), '-registry-addr', '0.0.0.0:9100', '-beacon-addr', '0.0.0.0:9101', '-store', join(this.bed.dir, 'ref-store.json')]
    this.note(`$ ${argv.join(' ')}`)
    const p = this.bed.spawn('reference rendezvous', this.topo.rendezvous!.name, argv)
    this.refRendezvous = p
    await p.waitFor(/registry listening/, 15_000)
    return { registry: `${this.rvHost}:9100`, beacon: `${this.rvHost}:9101` }
  }

  /** A reference daemon in `node`'s namespace on UDP `port`, -log-level debug. */
  async referenceDaemon(node: string, name: string, rv: Rendezvous, port = 4000, extraArgs: string[] = []): Promise<NsReferenceNode> {
    const home = join(this.bed.dir, `${name}-home`)
    mkdirSync(home, { recursive: true, mode: 0o700 })
    const socket = join(this.bed.dir, `${name}.sock`)
    const args = [
      '-registry', rv.registry, '-beacon', rv.beacon, '-listen', `0.0.0.0:${port}`, '-socket', socket,
      '-identity', join(this.bed.dir, `${name}.identity`), '-hostname', name, '-keepalive', '2s', '-log-level', 'debug', ...extraArgs,
    ]
    this.note(`[${name}@${node}] $ daemon ${args.join(' ')}`)
    const p = this.bed.spawn(`reference daemon ${name}`, node, ['env', `HOME=${home}`, this.ref.bin('daemon'), ...args])
    const r = new NsReferenceNode(this, node, name, home, socket, p)
    const info = await waitUntil(`reference daemon ${name} to register`, () => r.ctl(['info']), (x) => x.code === 0, { timeoutMs: 20_000, intervalMs: 300 })
    const data = info.json as { node_id: number; address: string }
    r.nodeId = data.node_id
    r.address = data.address
    return r
  }

  /** A pilot-tun node (pilot-agent.ts) in `node`'s namespace on UDP `port`. */
  async agent(node: string, name: string, rv: Rendezvous, port = 4000, extraArgs: string[] = []): Promise<PilotAgent> {
    const stateDir = join(this.bed.dir, `${name}-state`)
    const p = this.bed.spawnNode(`pilot-tun agent ${name}`, node, [
      agentJs, '--registry', rv.registry, '--beacon', rv.beacon, '--hostname', name, '--state-dir', stateDir, '--listen', `0.0.0.0:${port}`, ...extraArgs,
    ])
    const a = new PilotAgent(name, p)
    await a.ready()
    return a
  }

  /** The transcript and the last lines of every process, for failure messages. */
  report(): string {
    return `--- reference commands ---\n${this.transcript.join('\n')}\n${this.bed.logs(undefined, 30)}`
  }

  async close(): Promise<void> {
    await this.bed.close()
  }
}
