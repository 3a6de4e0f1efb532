// Interop with the running Go reference (issue 11): its `daemon`, `pilotctl`
// and `rendezvous` against pilot-tun's daemon and rendezvous, all on
// 127.0.0.1 with ports chosen free at run time (no namespaces needed). Each
// test starts what it needs and, in `finally`, kills every process group it
// started and removes its temp dir. Skips, saying why, without the reference
// binaries (test/util/reference.ts).
//
// Safety: every reference daemon gets -registry and -beacon on loopback
// servers this test started, and its own HOME, -socket and -identity.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn, type ChildProcess } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { existsSync, mkdtempSync, mkdirSync, rmSync } from 'node:fs'
import { createServer, Socket } from 'node:net'
import { createSocket } from 'node:dgram'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { findReference, type ReferenceBinaries } from '../test/util/reference.js'
import { repoRoot } from '../test/util/fixtures.js'
import { Daemon } from '../src/daemon/index.js'

const lookup = findReference()
const skip = lookup.reason ?? false
const pilotTunBin = join(repoRoot, 'bin', 'pilot-tun.js')
const HOST = '127.0.0.1'

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

/** A TCP and a UDP port on 127.0.0.1 that were free a moment ago. */
async function freeTcpPort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((r) => server.listen(0, HOST, r))
  const port = (server.address() as { port: number }).port
  await new Promise<void>((r) => server.close(() => r()))
  return port
}

async function freeUdpPort(): Promise<number> {
  const sock = createSocket('udp4')
  await new Promise<void>((r) => sock.bind(0, HOST, r))
  const port = sock.address().port
  await new Promise<void>((r) => sock.close(() => r()))
  return port
}

async function tcpAccepts(port: number): Promise<boolean> {
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

async function waitFor<T>(what: string, probe: () => Promise<T | null | undefined | false>, timeoutMs = 10_000): Promise<T> {
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

interface RunResult {
  code: number | null
  stdout: string
  stderr: string
}

/**
 * One test's equipment: a temp dir, the long-running processes (each in its
 * own process group, output kept for failure messages) and the short commands.
 */
class Bench {
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

  async pilotTunRendezvous(): Promise<{ registry: string; beacon: string }> {
    const [r, b] = [await freeTcpPort(), await freeUdpPort()]
    this.start('pilot-tun rendezvous', process.execPath, [
      pilotTunBin, 'rendezvous', '--registry-listen', `${HOST}:${r}`, '--beacon-listen', `${HOST}:${b}`,
      '--store', join(this.dir, 'registry.db'), '--log-format', 'text',
    ])
    await waitFor('the pilot-tun registry', () => tcpAccepts(r))
    return { registry: `${HOST}:${r}`, beacon: `${HOST}:${b}` }
  }

  /** `pilot-tun up --no-tun`; returns its control socket and node id once it has registered. */
  async pilotTunUp(name: string, rv: { registry: string; beacon: string }): Promise<{ control: string; nodeId: number; address: string }> {
    const control = join(this.dir, `${name}.sock`)
    const port = await freeUdpPort()
    this.start(`pilot-tun up (${name})`, process.execPath, [
      pilotTunBin, 'up', '--no-tun', '--registry', rv.registry, '--beacon', rv.beacon, '--listen', `${HOST}:${port}`,
      '--state-dir', join(this.dir, name), '--control-socket', control, '--hostname', name, '--log-format', 'text',
      '--heartbeat-interval', '1',
    ])
    const status = await waitFor(`pilot-tun ${name} to register`, async () => {
      if (!existsSync(control)) return null
      const r = await this.pilotTun(['status', '--json', '--control-socket', control])
      return r.code === 0 ? (JSON.parse(r.stdout) as { node_id: number; address: string }) : null
    })
    return { control, nodeId: status.node_id, address: status.address }
  }

  // ───────────────────────── the reference ─────────────────────────

  async referenceRendezvous(): Promise<{ registry: string; beacon: string }> {
    const [r, b] = [await freeTcpPort(), await freeUdpPort()]
    this.start('reference rendezvous', this.ref.bin('rendezvous'), [
      '-registry-addr', `${HOST}:${r}`, '-beacon-addr', `${HOST}:${b}`, '-store', join(this.dir, 'ref-store.json'),
    ])
    await waitFor('the reference registry', () => tcpAccepts(r))
    return { registry: `${HOST}:${r}`, beacon: `${HOST}:${b}` }
  }

  /** A reference `daemon` on the test's own registry and beacon, with its own HOME, socket and identity. */
  async referenceDaemon(name: string, rv: { registry: string; beacon: string }): Promise<ReferenceNode> {
    const home = join(this.dir, `${name}-home`)
    mkdirSync(home, { mode: 0o700 })
    const socket = join(this.dir, `${name}.sock`)
    const port = await freeUdpPort()
    this.start(`reference daemon (${name})`, this.ref.bin('daemon'), [
      '-registry', rv.registry, '-beacon', rv.beacon, '-listen', `${HOST}:${port}`, '-socket', socket,
      '-identity', join(this.dir, `${name}.identity`), '-hostname', name, '-keepalive', '2s',
    ], { HOME: home })
    const node = new ReferenceNode(this, home, socket)
    const info = await waitFor(`reference daemon ${name} to register`, async () => {
      if (!existsSync(socket)) return null
      const r = await node.ctl(['info'])
      return r.code === 0 ? (r.json as { node_id: number; address: string }) : null
    })
    node.nodeId = info.node_id
    node.address = info.address
    return node
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
class ReferenceNode {
  nodeId = 0
  address = ''
  constructor(private readonly bench: Bench, private readonly home: string, private readonly socket: string) {}

  async ctl(args: string[], timeoutMs?: number): Promise<RunResult & { json: unknown }> {
    const r = await this.bench.run(this.bench.ref.bin('pilotctl'), ['--json', ...args], { HOME: this.home, PILOT_SOCKET: this.socket }, timeoutMs)
    this.bench.transcript.push(`[+${((Date.now() - this.bench.startedAt) / 1000).toFixed(1)} s] $ pilotctl --json ${args.join(' ')}  → exit ${r.code}: ${(r.stdout + r.stderr).trim().slice(0, 300)}`)
    let json: unknown = null
    try {
      json = (JSON.parse(r.stdout) as { data?: unknown }).data ?? null
    } catch {
      json = null
    }
    return { ...r, json }
  }
}

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return
  try {
    process.kill(-child.pid, signal)
  } catch {
    // already gone
  }
}

/** Runs `body` with a fresh Bench, reporting the reference transcript and the logs when it fails. */
async function withBench(t: { diagnostic(msg: string): void }, body: (bench: Bench) => Promise<void>): Promise<void> {
  const bench = new Bench(lookup.found!)
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

interface PingJson {
  sent: number
  received: number
}

interface RefPingJson {
  results?: { seq: number; rtt_ms: number; error?: string }[]
  timeout?: boolean
}

/** `pilot-tun ping` gets every reply from `target`. */
async function pilotTunPings(bench: Bench, control: string, target: string): Promise<void> {
  const r = await bench.pilotTun(['ping', target, '-c', '3', '-i', '0.2', '-W', '3', '--json', '--control-socket', control], 20_000)
  assert.equal(r.code, 0, `pilot-tun ping ${target}: ${r.stdout}${r.stderr}`)
  const ping = JSON.parse(r.stdout) as PingJson
  assert.equal(ping.sent, 3)
  assert.equal(ping.received, 3, r.stdout)
}

/** `pilotctl ping` gets every reply from `target`. */
async function referencePings(node: ReferenceNode, target: string): Promise<void> {
  const r = await node.ctl(['ping', target, '--count', '3', '--timeout', '5s'], 30_000)
  assert.equal(r.code, 0, `pilotctl ping ${target}: ${r.stdout}${r.stderr}`)
  const ping = r.json as RefPingJson
  assert.equal(ping.results?.length, 3, r.stdout)
  assert.ok(ping.results.every((x) => x.error === undefined && x.rtt_ms > 0), r.stdout)
  assert.notEqual(ping.timeout, true)
}

const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex')

/**
 * Sends `size` random bytes to `node`'s echo port over one Pilot stream and
 * asserts they all come back unchanged. Our FIN goes only after the echo is
 * complete: Go closes its receive side on a FIN, dropping what its echo has
 * not read yet (docs/wire.md §6.12).
 */
async function echoedIntact(daemon: Daemon, node: number, size: number, mss: number | undefined, timeoutMs = 15_000): Promise<void> {
  const payload = randomBytes(size)
  const stream = await daemon.openStream(node, 7, mss === undefined ? undefined : { mss })
  const back: Buffer[] = []
  let got = 0
  try {
    const done = new Promise<void>((resolve, reject) => {
      stream.on('data', (d: Buffer) => {
        back.push(d)
        got += d.length
        if (got >= size) resolve()
      })
      stream.on('error', reject)
      stream.on('end', () => reject(new Error(`the echo ended after ${got} of ${size} bytes`)))
    })
    stream.write(payload)
    let timer: NodeJS.Timeout | undefined
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`echo of ${size} bytes (mss ${mss ?? 'default'}): ${got} back after ${timeoutMs} ms`)), timeoutMs)
    })
    try {
      await Promise.race([done, late])
    } finally {
      clearTimeout(timer)
    }
    assert.equal(got, size)
    assert.equal(sha256(Buffer.concat(back)), sha256(payload))
  } finally {
    stream.destroy()
  }
}

/**
 * A reference daemon and an in-process pilot-tun Daemon (for its stream API)
 * on a pilot-tun rendezvous; pilot-tun asks for trust, the reference approves.
 * The caller closes the Daemon.
 */
async function inProcessPair(bench: Bench): Promise<{ ref: ReferenceNode; daemon: Daemon }> {
  const rv = await bench.pilotTunRendezvous()
  const ref = await bench.referenceDaemon('refnode', rv)
  const daemon = await Daemon.start({
    stateDir: join(bench.dir, 'inproc'),
    registry: rv.registry,
    beacon: rv.beacon,
    listen: `${HOST}:0`,
    hostname: 'ptnode',
    timing: { heartbeatMs: 1_000 },
  })
  try {
    const sent = await daemon.trustRequest('refnode', 'interop streams')
    assert.equal(sent.node_id, ref.nodeId)
    await waitFor('the pilot-tun request at the reference', async () => {
      const r = await ref.ctl(['pending'])
      return ((r.json as { pending: { node_id: number }[] | null } | null)?.pending ?? []).some((p) => p.node_id === daemon.nodeId)
    })
    const ok = await ref.ctl(['approve', String(daemon.nodeId)])
    assert.equal(ok.code, 0, ok.stdout + ok.stderr)
    await waitFor('pilot-tun to trust the reference', async () => daemon.isTrusted(ref.nodeId))
    return { ref, daemon }
  } catch (err) {
    await daemon.close()
    throw err
  }
}

interface TrustJson {
  trusted: { node_id: number }[] | null
}

test('interop: a reference daemon and a pilot-tun daemon on the pilot-tun rendezvous trust each other and ping both ways', { skip, timeout: 40_000 }, async (t) => {
  await withBench(t, async (bench) => {
    const rv = await bench.pilotTunRendezvous()
    const [ref, pt] = await Promise.all([bench.referenceDaemon('refnode', rv), bench.pilotTunUp('ptnode', rv)])
    assert.notEqual(ref.nodeId, pt.nodeId)

    // The reference asks (its handshake goes through the registry relay), pilot-tun approves.
    const hs = await ref.ctl(['handshake', pt.address, 'interop test'])
    assert.equal(hs.code, 0, hs.stdout + hs.stderr)
    await waitFor('the reference request at pilot-tun', async () => {
      const r = await bench.pilotTun(['trust', 'list', '--json', '--control-socket', pt.control])
      const list = JSON.parse(r.stdout) as { pending: { node_id: number; justification?: string }[] }
      return list.pending.some((p) => p.node_id === ref.nodeId)
    })
    const ok = await bench.pilotTun(['trust', 'approve', ref.address, '--control-socket', pt.control])
    assert.equal(ok.code, 0, ok.stdout + ok.stderr)
    await waitFor('the reference to trust pilot-tun', async () => {
      const r = await ref.ctl(['trust'])
      return ((r.json as TrustJson | null)?.trusted ?? []).some((x) => x.node_id === pt.nodeId)
    })

    await pilotTunPings(bench, pt.control, ref.address)
    await pilotTunPings(bench, pt.control, 'refnode')
    await referencePings(ref, pt.address)
    await referencePings(ref, 'ptnode')
  })
})

test('interop: streams both ways between a reference daemon and a pilot-tun daemon (echo, 1 MiB SHA-256)', { skip, timeout: 40_000 }, async (t) => {
  await withBench(t, async (bench) => {
    const { ref, daemon } = await inProcessPair(bench)
    try {
      // Reference → pilot-tun: our echo service on port 7.
      const ptAddress = (await daemon.status()).address
      const message = `hello from the reference ${randomBytes(8).toString('hex')}`
      const echo = await ref.ctl(['connect', ptAddress, '7', '--message', message, '--timeout', '10s'], 20_000)
      assert.equal(echo.code, 0, echo.stdout + echo.stderr)
      assert.equal((echo.json as { response: string }).response, message)

      // Reference → pilot-tun, 1 MB through our echo (the reference counts the bytes back).
      const benchRun = await ref.ctl(['bench', ptAddress, '1', '--timeout', '20s'], 25_000)
      assert.equal(benchRun.code, 0, benchRun.stdout + benchRun.stderr)
      const counts = benchRun.json as { sent_bytes: number; recv_bytes: number }
      assert.equal(counts.recv_bytes, counts.sent_bytes)
      assert.ok(counts.sent_bytes >= 1_000_000)

      // pilot-tun → reference: its echo port returns every byte in order. 64 KiB at our
      // default segment size (1402 bytes; Go's Nagle paces the echo, see the todo test
      // below), then 1 MiB at Go's own segment size (4096).
      await echoedIntact(daemon, ref.nodeId, 64 * 1024, undefined)
      await echoedIntact(daemon, ref.nodeId, 1 << 20, 4096)
    } finally {
      await daemon.close()
    }
  })
})

test('interop: a pilot-tun daemon on the reference rendezvous registers, resolves the reference node by name, trusts and pings it', { skip, timeout: 40_000 }, async (t) => {
  await withBench(t, async (bench) => {
    const rv = await bench.referenceRendezvous()
    const ref = await bench.referenceDaemon('refnode', rv)
    const pt = await bench.pilotTunUp('ptnode', rv)
    assert.notEqual(ref.nodeId, pt.nodeId)

    const resolved = await bench.pilotTun(['resolve', 'refnode', '--json', '--control-socket', pt.control])
    assert.equal(resolved.code, 0, resolved.stdout + resolved.stderr)
    assert.equal((JSON.parse(resolved.stdout) as { address: string }).address, ref.address)

    // pilot-tun asks by name, the reference approves.
    const req = await bench.pilotTun(['trust', 'request', 'refnode', '--reason', 'interop on the reference rendezvous', '--control-socket', pt.control])
    assert.equal(req.code, 0, req.stdout + req.stderr)
    await waitFor('the pilot-tun request at the reference', async () => {
      const r = await ref.ctl(['pending'])
      return ((r.json as { pending: { node_id: number }[] | null } | null)?.pending ?? []).some((p) => p.node_id === pt.nodeId)
    })
    const ok = await ref.ctl(['approve', String(pt.nodeId)])
    assert.equal(ok.code, 0, ok.stdout + ok.stderr)
    await waitFor('pilot-tun to trust the reference', async () => {
      const r = await bench.pilotTun(['trust', 'list', '--json', '--control-socket', pt.control])
      return (JSON.parse(r.stdout) as { trusted: { node_id: number }[] }).trusted.some((x) => x.node_id === ref.nodeId)
    })

    await pilotTunPings(bench, pt.control, 'refnode')
    await referencePings(ref, 'ptnode')
  })
})

test(
  'interop: pilot-tun streams 1 MiB to the reference echo at its default segment size (1402 bytes)',
  {
    skip,
    timeout: 30_000,
    todo:
      'fails: Go echoes each 1402-byte segment after a Nagle wait (~40 ms, ~35 KB/s) and, with ~500 segments queued unread, ' +
      'logs "max retransmits exceeded, sending RST"; at 4096-byte segments the same 1 MiB takes ~30 ms',
  },
  async (t) => {
    await withBench(t, async (bench) => {
      const { ref, daemon } = await inProcessPair(bench)
      try {
        await echoedIntact(daemon, ref.nodeId, 1 << 20, undefined, 8_000)
      } finally {
        await daemon.close()
      }
    })
  },
)
