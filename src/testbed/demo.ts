#!/usr/bin/env node
/**
 * `sudo npm run demo` (node dist/src/testbed/demo.js): two agents behind
 * different NATs reach each other by name through their pilot0 interfaces.
 *
 *   rendezvous 198.18.0.2 (registry :9000/tcp, beacon :9001/udp)
 *        │
 *   ─────┴──────── hub "internet" 198.18.0.0/15 ───────┬─────────
 *        │ 198.18.1.2                                   │ 198.18.2.2
 *   alice-gw  full-cone NAT                        bob-gw  port-restricted NAT
 *        │ 10.200.1.2                                   │ 10.200.2.2
 *   alice  pilot-tun up → pilot0                   bob  pilot-tun up → pilot0,
 *          curl http://bob.pilot/                       a plain HTTP server on [::]:80
 *
 * Steps: build the namespaces (src/testbed/), start a rendezvous, start
 * `pilot-tun up` in alice and bob (each with its own state dir and control
 * socket), alice asks bob for trust and bob approves, bob serves a page, alice
 * curls it by name (resolv.conf for alice's namespace points at alice's own
 * daemon, whose DNS responder answers .pilot names), both sides print
 * `pilot-tun peers`, then everything is torn down.
 *
 * Exit 0 on success, 1 with a message (and the daemons' last log lines) on a
 * failure, 130 after Ctrl-C / SIGTERM. Teardown always runs: daemons stopped,
 * resolv.conf removed, namespaces deleted, temp dir removed.
 *
 * `--no-tun` runs the daemons without the interface and replaces the page and
 * curl with `pilot-tun ping bob` (for a machine without the TUN addon).
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync, rmdirSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { ChildProcess } from 'node:child_process'
import { PilotError } from '../errors.js'
import { Topology, testbedUnavailable, type TopologySpec } from './topology.js'

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..')
const bin = join(repoRoot, 'bin', 'pilot-tun.js')
const ETC_NETNS = '/etc/netns'
const REGISTRY_PORT = 9000
const BEACON_PORT = 9001
const TUNNEL_PORT = 4000

const SPEC: TopologySpec = {
  nodes: [
    { name: 'alice', kind: 'nat', nat: 'full-cone', tunnelPort: TUNNEL_PORT },
    { name: 'bob', kind: 'nat', nat: 'port-restricted', tunnelPort: TUNNEL_PORT },
  ],
}

const NAT_WORDS: Record<string, string> = {
  'full-cone': 'a full-cone NAT',
  'port-restricted': 'a port-restricted NAT',
  symmetric: 'a symmetric NAT',
}

/** The page bob serves: a plain Node HTTP server that knows nothing about Pilot. */
const PAGE_SERVER = `
const http = require('node:http')
http.createServer((req, res) => {
  res.writeHead(200, { 'content-type': 'text/plain' })
  res.end('Hello from bob, served on [::]:80 and reached over Pilot Protocol.\\nYou are ' + req.socket.remoteAddress + '\\n')
}).listen({ port: 80, host: '::', ipv6Only: true }, () => console.log('serving'))
`

class DemoError extends Error {}

interface Status {
  address: string
  ipv6: string
  hostname: string | null
  public_endpoint: string | null
  tun: { interface: string; address: string; prefix: string; mtu: number; dns: string } | null
}

interface TrustList {
  trusted: Array<{ address: string; mutual: boolean }>
  pending: Array<{ address: string }>
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms))
}

/** A program running in a namespace, with its output kept for waiting and for failure messages. */
class Proc {
  output = ''
  readonly exited: Promise<number>
  constructor(
    readonly name: string,
    readonly child: ChildProcess,
  ) {
    child.stdout?.setEncoding('utf8').on('data', (d: string) => (this.output = (this.output + d).slice(-100_000)))
    child.stderr?.setEncoding('utf8').on('data', (d: string) => (this.output = (this.output + d).slice(-100_000)))
    this.exited = new Promise((r) => child.once('exit', (code, signal) => r(code ?? (signal !== null ? 128 : -1))))
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null
  }

  async waitFor(pattern: RegExp, what: string, timeoutMs = 20_000): Promise<void> {
    const deadline = Date.now() + timeoutMs
    while (!pattern.test(this.output)) {
      if (!this.running) throw new DemoError(`${this.name} exited (code ${this.child.exitCode ?? this.child.signalCode}) before ${what}`)
      if (Date.now() > deadline) throw new DemoError(`${this.name}: no ${what} within ${timeoutMs / 1000} s`)
      await sleep(25)
    }
  }

  signal(sig: NodeJS.Signals): void {
    if (!this.running || this.child.pid === undefined) return
    try {
      process.kill(this.child.pid, sig)
    } catch {
      // gone
    }
  }

  /** SIGTERM, then SIGKILL after `graceMs`. */
  async stop(graceMs = 5_000): Promise<void> {
    if (!this.running) return
    this.signal('SIGTERM')
    const t = setTimeout(() => this.signal('SIGKILL'), graceMs)
    await this.exited
    clearTimeout(t)
  }

  tail(lines = 15): string {
    return this.output
      .trimEnd()
      .split('\n')
      .slice(-lines)
      .map((l) => `    ${l}`)
      .join('\n')
  }
}

class Demo {
  topo: Topology | null = null
  dir: string | null = null
  readonly procs: Proc[] = []
  readonly daemons = new Map<string, Proc>()
  private resolvDir: string | null = null
  private createdEtcNetns = false
  private tornDown: Promise<void> | null = null
  private step = 0

  constructor(
    readonly tun: boolean,
    readonly steps: number,
  ) {}

  say(text: string): void {
    if (this.tornDown !== null) throw new DemoError('stopped')
    this.step++
    process.stdout.write(`\n[${this.step}/${this.steps}] ${text}\n`)
  }

  line(text = ''): void {
    if (this.tornDown !== null) return // after Ctrl-C, only the teardown speaks
    process.stdout.write(text === '' ? '\n' : `      ${text.split('\n').join('\n      ')}\n`)
  }

  private get t(): Topology {
    if (this.topo === null) throw new DemoError('the test network is gone')
    return this.topo
  }

  spawn(label: string, node: string, argv: string[]): Proc {
    // detached: Ctrl-C reaches the demo only, which then stops everything in order.
    const p = new Proc(label, this.t.spawn(node, argv, { detached: true, stdio: ['ignore', 'pipe', 'pipe'] }))
    this.procs.push(p)
    return p
  }

  socket(node: string): string {
    return join(this.dir!, node, 'control.sock')
  }

  /** `pilot-tun ARGS` against `node`'s daemon, inside its namespace. */
  async cli(node: string, args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
    return this.t.exec(node, [process.execPath, bin, ...args, '--control-socket', this.socket(node)], { allowFailure: true, timeoutMs: 30_000 })
  }

  async json<T>(node: string, args: string[]): Promise<T> {
    const r = await this.cli(node, [...args, '--json'])
    if (r.code !== 0) throw new DemoError(`${node}: \`pilot-tun ${args.join(' ')}\` failed: ${(r.stderr || r.stdout).trim()}`)
    return JSON.parse(r.stdout) as T
  }

  async until<T>(what: string, fn: () => Promise<T>, ok: (v: T) => boolean, timeoutMs = 20_000): Promise<T> {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      const v = await fn()
      if (ok(v)) return v
      if (Date.now() > deadline) throw new DemoError(`timed out after ${timeoutMs / 1000} s waiting for ${what}`)
      await sleep(200)
    }
  }

  async build(): Promise<void> {
    this.say('building the test network in network namespaces (nothing outside them changes)')
    this.topo = await Topology.create(SPEC)
    this.dir = mkdtempSync(join(tmpdir(), 'pilot-tun-demo-'))
    writeFileSync(join(this.dir, 'none.json'), '{}')
    const t = this.t
    this.line(`test bed ${t.id}: namespaces ${t.layout.namespaces.join(', ')}`)
    this.line(`rendezvous  ${t.address('rendezvous').padEnd(11)} registry :${REGISTRY_PORT}/tcp, beacon :${BEACON_PORT}/udp`)
    for (const n of ['alice', 'bob']) {
      const node = t.node(n)
      this.line(`${n.padEnd(11)} ${node.address.padEnd(11)} behind ${NAT_WORDS[node.nat!]}, seen on the internet as ${node.publicAddress}`)
    }
  }

  async startRendezvous(): Promise<void> {
    this.say('starting the rendezvous: `pilot-tun rendezvous` (registry + beacon)')
    const p = this.spawn('rendezvous', 'rendezvous', [
      process.execPath, bin, 'rendezvous', '--registry-listen', `0.0.0.0:${REGISTRY_PORT}`, '--beacon-listen', `0.0.0.0:${BEACON_PORT}`,
      '--store', join(this.dir!, 'registry.db'), '--log-format', 'text',
    ])
    await p.waitFor(/rendezvous running/, 'the "rendezvous running" line')
    this.line(`registry ${this.t.address('rendezvous')}:${REGISTRY_PORT}, beacon ${this.t.address('rendezvous')}:${BEACON_PORT}`)
  }

  async startDaemons(): Promise<Record<'alice' | 'bob', Status>> {
    this.say(`starting \`pilot-tun up\` in alice and bob${this.tun ? ' (each gets its own pilot0)' : ' (--no-tun)'}`)
    const rv = this.t.address('rendezvous')
    const start = async (n: 'alice' | 'bob'): Promise<Status> => {
      mkdirSync(join(this.dir!, n), { recursive: true })
      // The test bed turns IPv6 off in its namespaces; pilot0 needs it (this namespace only).
      if (this.tun) await this.t.exec(n, ['sysctl', '-q', '-w', 'net.ipv6.conf.default.disable_ipv6=0', 'net.ipv6.conf.lo.disable_ipv6=0'])
      const p = this.spawn(`pilot-tun up (${n})`, n, [
        process.execPath, bin, 'up', ...(this.tun ? [] : ['--no-tun']),
        '--registry', `${rv}:${REGISTRY_PORT}`, '--beacon', `${rv}:${BEACON_PORT}`, '--listen', `0.0.0.0:${TUNNEL_PORT}`,
        '--state-dir', join(this.dir!, n, 'state'), '--control-socket', this.socket(n), '--hostname', n,
        '--config', join(this.dir!, 'none.json'), '--log-format', 'text', '--heartbeat-interval', '1',
      ])
      this.daemons.set(n, p)
      await p.waitFor(/pilot-tun up address=/, 'the "pilot-tun up" line')
      return this.until(`${n}'s status`, () => this.json<Status>(n, ['status']), (s) => !this.tun || s.tun !== null, 10_000)
    }
    // One after the other, so the registry numbers them in order (alice 1, bob 2).
    const alice = await start('alice')
    const bob = await start('bob')
    for (const [n, s] of [['alice', alice], ['bob', bob]] as const) {
      const dns = s.tun === null || s.tun.dns === 'off' ? 'no DNS responder' : `.pilot DNS on [${s.tun.address}]:53`
      const tun = s.tun === null ? 'no interface (--no-tun)' : `${s.tun.interface} ${s.tun.address}/128, route ${s.tun.prefix}, mtu ${s.tun.mtu}, ${dns}`
      this.line(`${n.padEnd(6)} Pilot address ${s.address}  IPv6 ${s.ipv6}`)
      this.line(`${''.padEnd(6)} ${tun}`)
    }
    return { alice, bob }
  }

  async trust(st: Record<'alice' | 'bob', Status>): Promise<void> {
    this.say('trust: alice asks bob (`pilot-tun trust request bob`), bob approves (`pilot-tun trust approve alice`)')
    const req = await this.cli('alice', ['trust', 'request', 'bob', '--reason', 'pilot-tun demo'])
    if (req.code !== 0) throw new DemoError(`alice: trust request bob failed: ${req.stderr.trim()}`)
    this.line(`alice$ pilot-tun trust request bob\n${req.stdout.trim()}`)
    await this.until("bob's pending request from alice", () => this.json<TrustList>('bob', ['trust', 'list']), (l) => l.pending.some((p) => p.address === st.alice.address))
    const ok = await this.cli('bob', ['trust', 'approve', st.alice.address])
    if (ok.code !== 0) throw new DemoError(`bob: trust approve alice failed: ${ok.stderr.trim()}`)
    this.line(`bob$ pilot-tun trust approve ${st.alice.address}\n${ok.stdout.trim()}`)
    const mutual = (n: 'alice' | 'bob', addr: string): Promise<TrustList> =>
      this.until(`${n} to trust ${addr} mutually`, () => this.json<TrustList>(n, ['trust', 'list']), (l) => l.trusted.some((x) => x.address === addr && x.mutual))
    await Promise.all([mutual('alice', st.bob.address), mutual('bob', st.alice.address)])
    this.line('alice and bob trust each other (mutual)')
  }

  async page(st: Record<'alice' | 'bob', Status>): Promise<string> {
    const aliceNat = NAT_WORDS[this.t.node('alice').nat!]!
    const bobNat = NAT_WORDS[this.t.node('bob').nat!]!
    if (!this.tun) {
      this.say(`alice (behind ${aliceNat}) → bob (behind ${bobNat}): pilot-tun ping bob (--no-tun: no page)`)
      const r = await this.cli('alice', ['ping', 'bob', '--count', '3', '--interval', '0.3'])
      this.line(`alice$ pilot-tun ping bob\n${(r.stdout + r.stderr).trim()}`)
      if (r.code !== 0) throw new DemoError('alice could not ping bob')
      return ''
    }
    this.say(`bob serves a page: a plain Node HTTP server on [::]:80 (it knows nothing about Pilot)`)
    const server = this.spawn('http server (bob)', 'bob', [process.execPath, '-e', PAGE_SERVER])
    await server.waitFor(/serving/, 'the page server')
    this.line(`bob listens on [::]:80; its pilot0 address is ${st.bob.ipv6}`)

    this.say(`alice (behind ${aliceNat}) → bob (behind ${bobNat}): curl http://bob.pilot/`)
    this.writeResolvConf('alice', st.alice.ipv6)
    this.line(`${join(ETC_NETNS, this.t.namespace('alice'), 'resolv.conf')}: nameserver ${st.alice.ipv6} (alice's daemon answers .pilot)`)
    const dig = await this.t.exec('alice', ['dig', '+short', '+time=2', '+tries=1', 'bob.pilot', 'AAAA'], { allowFailure: true, timeoutMs: 10_000 })
    if (dig.code === 0) this.line(`alice$ dig +short bob.pilot AAAA\n${dig.stdout.trim() || '(no answer)'}`)
    const t0 = Date.now()
    const r = await this.t.exec('alice', ['curl', '-sS', '--max-time', '20', 'http://bob.pilot/'], { allowFailure: true, timeoutMs: 30_000 })
    this.line(`alice$ curl http://bob.pilot/`)
    if (r.code !== 0) throw new DemoError(`curl http://bob.pilot/ from alice failed (exit ${r.code}): ${r.stderr.trim()}`)
    this.line(r.stdout.trimEnd())
    this.line(`(${Date.now() - t0} ms, including the name lookup and the connection through both NATs)`)
    return r.stdout
  }

  async peers(): Promise<void> {
    this.say('`pilot-tun peers` on both sides')
    for (const n of ['alice', 'bob']) {
      const r = await this.cli(n, ['peers'])
      if (r.code !== 0) throw new DemoError(`${n}: pilot-tun peers failed: ${r.stderr.trim()}`)
      if (n === 'bob') this.line()
      this.line(`${n}$ pilot-tun peers`)
      this.line(r.stdout.trimEnd())
    }
  }

  private writeResolvConf(node: string, nameserver: string): void {
    const ns = this.t.namespace(node)
    if (!existsSync(ETC_NETNS)) {
      mkdirSync(ETC_NETNS, { recursive: true })
      this.createdEtcNetns = true
    }
    this.resolvDir = join(ETC_NETNS, ns)
    mkdirSync(this.resolvDir, { recursive: true })
    writeFileSync(join(this.resolvDir, 'resolv.conf'), `# pilot-tun demo (${ns})\nnameserver ${nameserver}\noptions timeout:2 attempts:2\n`)
  }

  /** Stops the daemons cleanly, then everything else; removes resolv.conf, namespaces and the temp dir. Idempotent. */
  teardown(narrate: boolean): Promise<void> {
    this.tornDown ??= this.doTeardown(narrate)
    return this.tornDown
  }

  private async doTeardown(narrate: boolean): Promise<void> {
    const said: string[] = []
    if (this.topo !== null) {
      const running = [...this.daemons].filter(([, p]) => p.running)
      if (running.length > 0) {
        // `pilot-tun down`, which waits for the daemon to finish; SIGTERM/SIGKILL if that fails.
        await Promise.all(
          running.map(async ([n, p]) => {
            const r = await this.cli(n, ['down']).catch(() => null)
            if (r === null || r.code !== 0) await p.stop()
            else await Promise.race([p.exited, sleep(5_000)])
            await p.stop()
          }),
        )
        said.push(`pilot-tun down in ${running.map(([n]) => n).join(' and ')}`)
      }
      await Promise.all(this.procs.map((p) => p.stop(3_000)))
    }
    if (this.resolvDir !== null) {
      rmSync(this.resolvDir, { recursive: true, force: true })
      said.push(`${join(this.resolvDir, 'resolv.conf')} removed`)
      this.resolvDir = null
    }
    if (this.createdEtcNetns) {
      try {
        rmdirSync(ETC_NETNS)
      } catch {
        // someone else put something there meanwhile
      }
    }
    if (this.topo !== null) {
      const id = this.topo.id
      await this.topo.destroy()
      said.push(`test bed ${id} removed (namespaces, veths, NAT rules)`)
    }
    if (this.dir !== null) rmSync(this.dir, { recursive: true, force: true })
    if (narrate && said.length > 0) {
      process.stdout.write(`\nteardown: ${said.join('; ')}\n`)
    }
  }

  logs(): string {
    return this.procs.map((p) => `  ${p.name}${p.running ? '' : ' (exited)'}:\n${p.tail()}`).join('\n')
  }
}

async function main(argv: string[]): Promise<number> {
  const unknown = argv.filter((a) => a !== '--no-tun')
  if (unknown.length > 0) {
    process.stderr.write(`usage: demo.js [--no-tun]\nunknown argument: ${unknown[0]}\n`)
    return 2
  }
  const tun = !argv.includes('--no-tun')
  const why = await testbedUnavailable()
  if (why !== null) {
    process.stderr.write(`pilot-tun demo: cannot run here: ${why}\nhint: sudo npm run demo\n`)
    return 1
  }
  if (tun && !existsSync('/dev/net/tun')) {
    process.stderr.write('pilot-tun demo: /dev/net/tun is missing\nhint: load the tun module (modprobe tun), or run with --no-tun\n')
    return 1
  }
  const demo = new Demo(tun, tun ? 8 : 7)
  let interrupted: NodeJS.Signals | null = null
  const onSignal = (sig: NodeJS.Signals): void => {
    if (interrupted !== null) {
      process.stderr.write(`\n${sig} again: exiting now; \`node dist/src/testbed/cli.js cleanup\` removes what is left\n`)
      process.exit(130)
    }
    interrupted = sig
    process.stdout.write(`\n${sig}: stopping the demo and tearing everything down\n`)
    void demo.teardown(true).then(
      () => process.exit(130),
      (err: unknown) => {
        process.stderr.write(`teardown failed: ${(err as Error).message}\n`)
        process.exit(1)
      },
    )
  }
  process.on('SIGINT', onSignal)
  process.on('SIGTERM', onSignal)

  process.stdout.write(
    'pilot-tun demo: two agents behind different NATs, a rendezvous, pilot0 in each; alice fetches a page from bob by name\n',
  )
  try {
    await demo.build()
    await demo.startRendezvous()
    const st = await demo.startDaemons()
    await demo.trust(st)
    await demo.page(st)
    await demo.peers()
    demo.say('tearing down')
    await demo.teardown(true)
    process.stdout.write(
      tun
        ? '\ndemo finished: alice reached bob by name through pilot0, across two NATs\n'
        : '\ndemo finished (--no-tun): alice and bob trust each other and talk across two NATs\n',
    )
    return 0
  } catch (err) {
    if (interrupted !== null) return new Promise<number>(() => {}) // the signal handler finishes and exits
    const msg = err instanceof PilotError ? `${err.message} [${err.code}]${err.hint !== undefined ? `\nhint: ${err.hint}` : ''}` : (err as Error).message
    process.stderr.write(`\npilot-tun demo failed: ${msg}\n`)
    const logs = demo.logs()
    if (logs !== '') process.stderr.write(`last log lines:\n${logs}\n`)
    await demo.teardown(true).catch((e: unknown) => process.stderr.write(`teardown failed: ${(e as Error).message}\n`))
    return 1
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`pilot-tun demo: ${(err as Error).stack ?? String(err)}\n`)
    process.exit(1)
  },
)
