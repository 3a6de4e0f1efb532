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
import { existsSync } from 'node:fs'
import { PilotError } from '../errors.js'
import { sleep, type NsProcess } from './ns-process.js'
import { BEACON_PORT, PilotBed, REGISTRY_PORT, TUNNEL_PORT, type CliResult, type DaemonInfo } from './pilot-bed.js'
import { Topology, testbedUnavailable, type TopologySpec } from './topology.js'

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

/** Waits for `pattern` in `p`'s output, with the demo's own words when it does not come. */
async function waitForLine(p: NsProcess, pattern: RegExp, what: string, timeoutMs = 20_000): Promise<void> {
  try {
    await p.waitFor(pattern, timeoutMs)
  } catch {
    if (!p.running) throw new DemoError(`${p.name} exited (code ${p.child.exitCode ?? p.child.signalCode}) before ${what}`)
    throw new DemoError(`${p.name}: no ${what} within ${timeoutMs / 1000} s`)
  }
}

type Status = DaemonInfo

/** The first line of an error's message (the demo prints the logs separately). */
function firstLine(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).split('\n')[0]!
}

class Demo {
  topo: Topology | null = null
  /** The rendezvous, the daemons and the page server (pilot-bed.ts); made in build(). */
  bed: PilotBed | null = null
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

  private get b(): PilotBed {
    if (this.bed === null) throw new DemoError('the test network is gone')
    return this.bed
  }

  /** `pilot-tun ARGS` against `node`'s daemon, inside its namespace. */
  cli(node: string, args: string[]): Promise<CliResult> {
    return this.b.cli(node, args)
  }

  async build(): Promise<void> {
    this.say('building the test network in network namespaces (nothing outside them changes)')
    this.topo = await Topology.create(SPEC)
    // detached: Ctrl-C reaches the demo only, which then stops everything in order.
    this.bed = new PilotBed(this.topo, {
      tmpPrefix: 'pilot-tun-demo-',
      spawn: { detached: true, stdio: ['ignore', 'pipe', 'pipe'] },
      daemon: { tun: this.tun, autoAccept: false },
    })
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
    const b = this.b
    try {
      await b.startRendezvous()
    } catch (err) {
      throw new DemoError(`the rendezvous did not start: ${firstLine(err)}`)
    }
    this.line(`registry ${b.registryAddr}, beacon ${b.beaconAddr}`)
  }

  async startDaemons(): Promise<Record<'alice' | 'bob', Status>> {
    this.say(`starting \`pilot-tun up\` in alice and bob${this.tun ? ' (each gets its own pilot0)' : ' (--no-tun)'}`)
    const start = async (n: 'alice' | 'bob'): Promise<Status> => {
      try {
        return await this.b.up(n)
      } catch (err) {
        throw new DemoError(`pilot-tun up in ${n}: ${firstLine(err)}`)
      }
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
    let done: { request: CliResult; approve: CliResult }
    try {
      done = await this.b.establishTrust('alice', 'bob', { from: st.alice.address, to: st.bob.address }, { target: 'bob', reason: 'pilot-tun demo' })
    } catch (err) {
      throw new DemoError(firstLine(err))
    }
    this.line(`alice$ pilot-tun trust request bob\n${done.request.stdout.trim()}`)
    this.line(`bob$ pilot-tun trust approve ${st.alice.address}\n${done.approve.stdout.trim()}`)
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
    const server = this.b.spawn('http server (bob)', 'bob', [process.execPath, '-e', PAGE_SERVER])
    await waitForLine(server, /serving/, 'the page server')
    this.line(`bob listens on [::]:80; its pilot0 address is ${st.bob.ipv6}`)

    this.say(`alice (behind ${aliceNat}) → bob (behind ${bobNat}): curl http://bob.pilot/`)
    const resolvConf = this.b.resolvConf('alice', st.alice.ipv6, { comment: `pilot-tun demo (${this.t.namespace('alice')})`, attempts: 2 })
    this.line(`${resolvConf}: nameserver ${st.alice.ipv6} (alice's daemon answers .pilot)`)
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

  /** Stops the daemons cleanly, then everything else; removes resolv.conf, namespaces and the temp dir. Idempotent. */
  teardown(narrate: boolean): Promise<void> {
    this.tornDown ??= this.doTeardown(narrate)
    return this.tornDown
  }

  private async doTeardown(narrate: boolean): Promise<void> {
    const said: string[] = []
    const bed = this.bed
    if (bed !== null) {
      const running = [...bed.daemons].filter(([, p]) => p.running)
      if (running.length > 0) {
        // `pilot-tun down`, which waits for the daemon to finish; SIGTERM/SIGKILL if that fails.
        await Promise.all(
          running.map(async ([n, p]) => {
            const r = await bed.cli(n, ['down']).catch(() => null)
            if (r === null || r.code !== 0) await p.stop()
            else await Promise.race([p.exited, sleep(5_000)])
            await p.stop()
          }),
        )
        said.push(`pilot-tun down in ${running.map(([n]) => n).join(' and ')}`)
      }
      await Promise.all(bed.processes.map((p) => p.stop('SIGTERM', 3_000)))
      // Kills what is left, removes resolv.conf and the temp dir.
      for (const f of await bed.close()) said.push(`${f} removed`)
    }
    if (this.topo !== null) {
      const id = this.topo.id
      await this.topo.destroy()
      said.push(`test bed ${id} removed (namespaces, veths, NAT rules)`)
    }
    if (narrate && said.length > 0) {
      process.stdout.write(`\nteardown: ${said.join('; ')}\n`)
    }
  }

  logs(): string {
    const indent = (text: string): string => text.split('\n').map((l) => `    ${l}`).join('\n')
    return (this.bed?.processes ?? []).map((p) => `  ${p.name}${p.running ? '' : ' (exited)'}:\n${indent(p.tail(15))}`).join('\n')
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
