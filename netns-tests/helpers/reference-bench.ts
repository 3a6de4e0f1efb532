// The equipment of the interop tests against the Go reference: a `Bench`
// (temp dir, long-running processes in their own process groups, short
// commands, a transcript of every reference command), pilot-tun and reference
// rendezvous/daemon starters, and small waiting helpers. All on 127.0.0.1 with
// ports chosen free at run time; `close()` kills every process group it
// started and removes the temp dir.
//
// Safety: every reference daemon gets -registry and -beacon on servers the
// test started, and its own HOME, -socket and -identity.
import assert from 'node:assert/strict'
import { spawn, type ChildProcess } from 'node:child_process'
import { createHash } from 'node:crypto'
import { existsSync, mkdtempSync, mkdirSync, rmSync } from 'node:fs'
import { createServer, Socket } from 'node:net'
import { createSocket } from 'node:dgram'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { findReference, type ReferenceBinaries } from '../../test/util/reference.js'
import { repoRoot } from '../../test/util/fixtures.js'

export const HOST = '127.0.0.1'
export const pilotTunBin = join(repoRoot, 'bin', 'pilot-tun.js')
/** The reference binaries, or why they are absent (the tests' `skip`). */
export const referenceLookup = findReference()

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

/** A TCP and a UDP port on 127.0.0.1 that were free a moment ago. */
export async function freeTcpPort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((r) => server.listen(0, HOST, r))
  const port = (server.address() as { port: number }).port
  await new Promise<void>((r) => server.close(() => r()))
  return port
}

export async function freeUdpPort(): Promise<number> {
  const sock = createSocket('udp4')
  await new Promise<void>((r) => sock.bind(0, HOST, r))
  const port = sock.address().port
  await new Promise<void>((r) => sock.close(() => r()))
  return port
}

export async function tcpAccepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = new Socket()
    s.once('connect', () => {
      s.destroy()
      resolve(true)
    })
    s.once('error', () => resolve(false))
    s.connect(port, HOST)
  })
}

export async function waitFor<T>(what: string, probe: () => Promise<T | null | undefined | false>, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs
  let last: unknown = null
  while (Date.now() < deadline) {
    try {
      const v = await probe()
      if (v !== null && v !== undefined && v !== false) return v
    } catch (err) {
      last = err
    }
    await sleep(150)
  }
  throw new Error(`timed out waiting for ${what}${last === null ? '' : `: ${(last as Error).message}`}`)
}

export interface RunResult {
  code: number | null
  stdout: string
  stderr: string
}

/**
 * One test's equipment: a temp dir, the long-running processes (each in its
 * own process group, output kept for failure messages) and the short commands.
 */
export class Bench {
  readonly dir = mkdtempSync(join(tmpdir(), 'pt-interop-'))
  private readonly procs: { name: string; child: ChildProcess; out: string[] }[] = []
  /** Every reference command run and what it printed, for diagnostics. */
  readonly transcript: string[] = []
  readonly startedAt = Date.now()

  constructor(readonly ref: ReferenceBinaries) {}

  /** Starts a long-running process in its own group. */
  start(name: string, cmd: string, args: string[], env: NodeJS.ProcessEnv = {}): ChildProcess {
    const child = spawn(cmd, args, { detached: true, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } })
    const out: string[] = []
    child.stdout!.setEncoding('utf8').on('data', (d: string) => out.push(d))
    child.stderr!.setEncoding('utf8').on('data', (d: string) => out.push(d))
    child.on('error', (err) => out.push(`spawn error: ${err.message}\n`))
    this.procs.push({ name, child, out })
    return child
  }

  logs(): string {
    return this.procs.map((p) => `--- ${p.name} (exit ${p.child.exitCode ?? p.child.signalCode ?? 'running'}) ---\n${p.out.join('').slice(-3000)}`).join('\n')
  }

  /** Runs a command to completion (killed after `timeoutMs`). */
  run(cmd: string, args: string[], env: NodeJS.ProcessEnv = {}, timeoutMs = 15_000): Promise<RunResult> {
    return new Promise((resolve) => {
      const child = spawn(cmd, args, { detached: true, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } })
      let stdout = ''
      let stderr = ''
      child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d))
      child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d))
      const timer = setTimeout(() => killGroup(child, 'SIGKILL'), timeoutMs)
      child.on('error', (err) => (stderr += `spawn error: ${err.message}`))
      child.on('close', (code) => {
        clearTimeout(timer)
        resolve({ code, stdout, stderr })
      })
    })
  }

  // ───────────────────────── pilot-tun ─────────────────────────

  pilotTun(args: string[], timeoutMs?: number): Promise<RunResult> {
    return this.run(process.execPath, [pilotTunBin, ...args], {}, timeoutMs)
  }
  /** Waits until the pilot-tun daemon on `control` lists `node` as trusted. */
  async pilotTunTrusts(control: string, node: number): Promise<void> {
    await waitFor(`pilot-tun to trust node ${node}`, async () => {
      const r = await this.pilotTun(['trust', 'list', '--json', '--control-socket', control])
      return (JSON.parse(r.stdout) as { trusted: { node_id: number }[] }).trusted.some((x) => x.node_id === node)
    })
  }


  async pilotTunRendezvous(extraArgs: string[] = []): Promise<{ registry: string; beacon: string }> {
    const [r, b] = [await freeTcpPort(), await freeUdpPort()]
    this.start('pilot-tun rendezvous', process.execPath, [
      pilotTunBin, 'rendezvous', '--registry-listen', `${HOST}:${r}`, '--beacon-listen', `${HOST}:${b}`,
      '--store', join(this.dir, 'registry.db'), '--log-format', 'text', ...extraArgs,
    ])
    await waitFor('the pilot-tun registry', () => tcpAccepts(r))
    return { registry: `${HOST}:${r}`, beacon: `${HOST}:${b}` }
  }

  /** `pilot-tun up --no-tun`; returns its control socket and node id once it has registered. */
  async pilotTunUp(name: string, rv: { registry: string; beacon: string }, extraArgs: string[] = []): Promise<{ control: string; nodeId: number; address: string }> {
    const control = join(this.dir, `${name}.sock`)
    const port = await freeUdpPort()
    this.start(`pilot-tun up (${name})`, process.execPath, [
      pilotTunBin, 'up', '--no-tun', '--registry', rv.registry, '--beacon', rv.beacon, '--listen', `${HOST}:${port}`,
      '--state-dir', join(this.dir, name), '--control-socket', control, '--hostname', name, '--log-format', 'text',
      '--heartbeat-interval', '1', ...extraArgs,
    ])
    const status = await waitFor(`pilot-tun ${name} to register`, async () => {
      if (!existsSync(control)) return null
      const r = await this.pilotTun(['status', '--json', '--control-socket', control])
      return r.code === 0 ? (JSON.parse(r.stdout) as { node_id: number; address: string }) : null
    })
    return { control, nodeId: status.node_id, address: status.address }
  }

  // ───────────────────────── the reference ─────────────────────────

  async referenceRendezvous(extraArgs: string[] = []): Promise<{ registry: string; beacon: string }> {
    const [r, b] = [await freeTcpPort(), await freeUdpPort()]
    this.start('reference rendezvous', this.ref.bin('rendezvous'), [
      '-registry-addr', `${HOST}:${r}`, '-beacon-addr', `${HOST}:${b}`, '-store', join(this.dir, 'ref-store.json'), ...extraArgs,
    ])
    await waitFor('the reference registry', () => tcpAccepts(r))
    return { registry: `${HOST}:${r}`, beacon: `${HOST}:${b}` }
  }

  /** A reference `daemon` on the test's own registry and beacon, with its own HOME, socket and identity. */
  async referenceDaemon(name: string, rv: { registry: string; beacon: string }, extraArgs: string[] = []): Promise<ReferenceNode> {
    const home = join(this.dir, `${name}-home`)
    mkdirSync(home, { mode: 0o700 })
    const socket = join(this.dir, `${name}.sock`)
    const port = await freeUdpPort()
    this.start(`reference daemon (${name})`, this.ref.bin('daemon'), [
      '-registry', rv.registry, '-beacon', rv.beacon, '-listen', `${HOST}:${port}`, '-socket', socket,
      '-identity', join(this.dir, `${name}.identity`), '-hostname', name, '-keepalive', '2s', ...extraArgs,
    ], { HOME: home })
    const node = new ReferenceNode(this, home, socket)
    node.registry = rv.registry
    const info = await waitFor(`reference daemon ${name} to register`, async () => {
      if (!existsSync(socket)) return null
      const r = await node.ctl(['info'])
      return r.code === 0 ? (r.json as { node_id: number; address: string }) : null
    })
    node.nodeId = info.node_id
    node.address = info.address
    return node
  }

  /** Stops the processes started under `name` (SIGTERM to the group, SIGKILL after 3 s). */
  async stop(name: string): Promise<void> {
    const mine = this.procs.filter((p) => p.name === name)
    for (const p of mine) killGroup(p.child, 'SIGTERM')
    const deadline = Date.now() + 3_000
    while (Date.now() < deadline && mine.some((p) => p.child.exitCode === null && p.child.signalCode === null)) await sleep(50)
    for (const p of mine) killGroup(p.child, 'SIGKILL')
  }

  async close(): Promise<void> {
    for (const p of this.procs) killGroup(p.child, 'SIGTERM')
    const deadline = Date.now() + 3_000
    while (Date.now() < deadline && this.procs.some((p) => p.child.exitCode === null && p.child.signalCode === null)) await sleep(50)
    for (const p of this.procs) killGroup(p.child, 'SIGKILL')
    rmSync(this.dir, { recursive: true, force: true })
  }
}

/** One reference node, driven through `pilotctl --json` on its IPC socket. */
export class ReferenceNode {
  nodeId = 0
  address = ''
  /** PILOT_REGISTRY for pilotctl (its compiled-in default is a public address); set it to the test's registry. */
  registry: string | null = null
  constructor(private readonly bench: Bench, readonly home: string, readonly socket: string) {}

  async ctl(args: string[], timeoutMs?: number): Promise<RunResult & { json: unknown }> {
    const env: NodeJS.ProcessEnv = { HOME: this.home, PILOT_SOCKET: this.socket, ...(this.registry === null ? {} : { PILOT_REGISTRY: this.registry }) }
    const r = await this.bench.run(this.bench.ref.bin('pilotctl'), ['--json', ...args], env, timeoutMs)
    this.bench.transcript.push(`[+${((Date.now() - this.bench.startedAt) / 1000).toFixed(1)} s] $ pilotctl --json ${args.join(' ')}  → exit ${r.code}: ${(r.stdout + r.stderr).trim().slice(0, 300)}`)
    let json: unknown = null
    try {
      json = (JSON.parse(r.stdout) as { data?: unknown }).data ?? null
    } catch {
      json = null
    }
    return { ...r, json }
  }
  /** Waits until `node`'s trust request is pending here, then approves it. */
  async approveWhenPending(node: number): Promise<void> {
    await waitFor(`node ${node}'s request at the reference`, async () => {
      const r = await this.ctl(['pending'])
      return ((r.json as { pending: { node_id: number }[] | null } | null)?.pending ?? []).some((p) => p.node_id === node)
    })
    const ok = await this.ctl(['approve', String(node)])
    assert.equal(ok.code, 0, ok.stdout + ok.stderr)
  }

}

export function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return
  try {
    process.kill(-child.pid, signal)
  } catch {
    // already gone
  }
}

/** Runs `body` with a fresh Bench, reporting the reference transcript and the logs when it fails. */
export async function withBench(t: { diagnostic(msg: string): void }, body: (bench: Bench) => Promise<void>): Promise<void> {
  const bench = new Bench(referenceLookup.found!)
  try {
    await body(bench)
  } catch (err) {
    ;(err as Error).message += `\n--- reference commands ---\n${bench.transcript.join('\n')}\n${bench.logs()}`
    throw err
  } finally {
    for (const line of bench.transcript) t.diagnostic(line)
    await bench.close()
  }
}

export const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex')
