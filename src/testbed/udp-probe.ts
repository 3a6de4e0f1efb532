/**
 * Drives a udp-agent.js inside a test-bed namespace: reflector, probe, and
 * traffic source/sink for the NAT, loss and duplication checks.
 *
 *   const r = await UdpAgent.start(topo, 'a', { port: 3478, reflect: true })
 *   const b = await UdpAgent.start(topo, 'b', { port: 4000 })
 *   await b.observe(topo.address('a'), 3478)   // -> { address: '198.18.2.2', port: 4000 }
 */
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import type { ChildProcess } from 'node:child_process'
import { TestbedError, TestbedErrorCode } from './errors.js'
import type { Topology } from './topology.js'

export interface Datagram {
  from: string
  port: number
  data: string
}

interface AgentEvent {
  ev: string
  port?: number
  from?: string
  data?: string
  count?: number
  received?: number
  distinct?: number
  message?: string
}

export interface AgentOptions {
  /** Local UDP port; 0 (default) for an ephemeral one. */
  port?: number
  /** Answer each datagram with "seen IP:PORT". */
  reflect?: boolean
  /** Count datagrams without reporting each one. */
  quiet?: boolean
}

const AGENT_PATH = fileURLToPath(new URL('./udp-agent.js', import.meta.url))

export class UdpAgent {
  /** Datagrams received so far (not with `quiet`). */
  readonly received: Datagram[] = []
  private readonly waiters: Array<{ ev: string; resolve: (e: AgentEvent) => void }> = []
  private readonly watchers = new Set<() => void>()
  private exited = false
  private stderr = ''

  private constructor(
    readonly node: string,
    readonly port: number,
    private readonly child: ChildProcess,
  ) {}

  static async start(topo: Topology, node: string, opts: AgentOptions = {}): Promise<UdpAgent> {
    const argv = [process.execPath, AGENT_PATH, '--port', String(opts.port ?? 0)]
    if (opts.reflect === true) argv.push('--reflect')
    if (opts.quiet === true) argv.push('--quiet')
    const child = topo.spawn(node, argv, { stdio: ['pipe', 'pipe', 'pipe'] })
    let agent: UdpAgent | null = null
    let stderr = ''
    child.stderr!.on('data', (b: Buffer) => {
      stderr += b.toString('utf8')
      if (agent !== null) agent.stderr = stderr
    })
    const lines = createInterface({ input: child.stdout! })
    let onEarlyExit: ((code: number | null) => void) | null = null
    const ready = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => reject(failed(`udp agent in ${node} did not start within 5 s`, stderr)), 5000)
      onEarlyExit = (code) => {
        clearTimeout(timer)
        reject(failed(`udp agent in ${node} exited with code ${code} before it was ready`, stderr))
      }
      child.once('exit', onEarlyExit)
      lines.once('line', (line) => {
        clearTimeout(timer)
        const e = JSON.parse(line) as AgentEvent
        if (e.ev === 'ready' && typeof e.port === 'number') resolve(e.port)
        else reject(failed(`udp agent in ${node} failed: ${line}`, stderr))
      })
    })
    if (onEarlyExit !== null) child.removeListener('exit', onEarlyExit)
    agent = new UdpAgent(node, ready, child)
    agent.stderr = stderr
    const a = agent
    lines.on('line', (line) => a.onLine(line))
    child.once('exit', () => {
      a.exited = true
      for (const w of a.waiters.splice(0)) w.resolve({ ev: 'exit' })
    })
    return agent
  }

  private onLine(line: string): void {
    const e = JSON.parse(line) as AgentEvent
    if (e.ev === 'recv') {
      this.received.push({ from: e.from!, port: e.port!, data: e.data! })
      for (const w of this.watchers) w()
      return
    }
    const i = this.waiters.findIndex((w) => w.ev === e.ev)
    if (i >= 0) this.waiters.splice(i, 1)[0]!.resolve(e)
  }

  private command(cmd: object, ev: string, timeoutMs = 10_000): Promise<AgentEvent> {
    if (this.exited) return Promise.reject(failed(`udp agent in ${this.node} has exited`, this.stderr))
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(failed(`udp agent in ${this.node}: no "${ev}" within ${timeoutMs} ms`, this.stderr)), timeoutMs)
      this.waiters.push({
        ev,
        resolve: (e) => {
          clearTimeout(timer)
          if (e.ev === 'exit') reject(failed(`udp agent in ${this.node} exited`, this.stderr))
          else resolve(e)
        },
      })
      this.child.stdin!.write(JSON.stringify(cmd) + '\n')
    })
  }

  /** Sends `count` datagrams (payload `data`, or `data#i` when count > 1) and resolves when they are out. */
  async send(host: string, port: number, data: string, count = 1): Promise<void> {
    await this.command({ op: 'send', host, port, data, count }, 'sent', 10_000 + count * 2)
  }

  /** Datagrams counted since start or `reset()`: total and distinct payloads. */
  async stats(): Promise<{ received: number; distinct: number }> {
    const e = await this.command({ op: 'stats' }, 'stats')
    return { received: e.received!, distinct: e.distinct! }
  }

  async reset(): Promise<void> {
    this.received.length = 0
    await this.command({ op: 'reset' }, 'reset')
  }

  /** The first received datagram (past or future) that matches, or null after `timeoutMs`. */
  waitFor(pred: (d: Datagram) => boolean, timeoutMs: number): Promise<Datagram | null> {
    const found = this.received.find(pred)
    if (found !== undefined) return Promise.resolve(found)
    return new Promise((resolve) => {
      const check = () => {
        const d = this.received.find(pred)
        if (d !== undefined) done(d)
      }
      const done = (d: Datagram | null) => {
        clearTimeout(timer)
        this.watchers.delete(check)
        resolve(d)
      }
      const timer = setTimeout(() => done(null), timeoutMs)
      this.watchers.add(check)
    })
  }

  /**
   * Asks a reflector at host:port which source address it sees for us
   * (retried every 200 ms, since the hub may lose datagrams).
   */
  async observe(host: string, port: number, timeoutMs = 3000): Promise<{ address: string; port: number }> {
    const isAnswer = (d: Datagram) => d.from === host && d.port === port && d.data.startsWith('seen ')
    const deadline = Date.now() + timeoutMs
    this.received.splice(0, this.received.length, ...this.received.filter((d) => !isAnswer(d)))
    while (Date.now() < deadline) {
      await this.send(host, port, 'probe')
      const d = await this.waitFor(isAnswer, Math.min(200, Math.max(1, deadline - Date.now())))
      if (d !== null) {
        const seen = d.data.slice(5)
        const colon = seen.lastIndexOf(':')
        return { address: seen.slice(0, colon), port: Number(seen.slice(colon + 1)) }
      }
    }
    throw failed(`no answer from reflector ${host}:${port} to ${this.node} within ${timeoutMs} ms`, this.stderr)
  }

  /** Closes stdin (the agent exits) and waits for the exit; SIGKILL after 2 s. */
  async close(): Promise<void> {
    if (this.exited) return
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => this.child.kill('SIGKILL'), 2000)
      this.child.once('exit', () => {
        clearTimeout(timer)
        resolve()
      })
      this.child.stdin!.end()
    })
  }
}

function failed(message: string, stderr: string): TestbedError {
  return new TestbedError(TestbedErrorCode.COMMAND_FAILED, stderr.trim() === '' ? message : `${message}; stderr: ${stderr.trim()}`)
}
