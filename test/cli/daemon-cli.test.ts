// The daemon-facing CLI commands, run through the real launcher: a missing
// daemon, config errors, every command against a fake daemon served in this
// process, and (when the daemon module exists) a loopback network of a
// rendezvous and two `up --no-tun` daemons.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn, type ChildProcess } from 'node:child_process'
import { createServer as createNetServer, type AddressInfo } from 'node:net'
import { createSocket } from 'node:dgram'
import { existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { ControlServer } from '../../src/daemon/control/server.js'
import { formatBytes, formatMs, formatTable } from '../../src/cli/output.js'
import { parseConfig, mergeConfig } from '../../src/cli/config.js'
import { PilotError } from '../../src/errors.js'
import { FakeDaemon, PEER, STATUS } from '../daemon/fake-daemon.js'
import { runCli } from './run-cli.js'

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..')
const bin = join(repoRoot, 'bin', 'pilot-tun.js')


const run = runCli

function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'pilot-dcli-'))
}

const NO_STACK = /\n\s+at /

test('client commands against a missing daemon: PT_DAEMON_NOT_RUNNING, exit 1, no stack trace', async () => {
  const dir = tempDir()
  try {
    const sock = join(dir, 'control.sock')
    const cmds = [['status'], ['peers'], ['ping', 'bob', '--count', '1'], ['resolve', 'bob'], ['trust', 'list'], ['hostname', 'set', 'x'], ['down']]
    const results = await Promise.all(cmds.map((c) => run([...c, '--control-socket', sock])))
    for (const [i, r] of results.entries()) {
      assert.equal(r.code, 1, `${cmds[i]!.join(' ')}: ${r.stderr}`)
      assert.match(r.stderr, /daemon is not running.*\[PT_DAEMON_NOT_RUNNING\]/)
      assert.match(r.stderr, /^hint: start it with `sudo pilot-tun up/m)
      assert.doesNotMatch(r.stderr, NO_STACK)
      assert.equal(r.stdout, '')
    }
    const json = await run(['status', '--json', '--control-socket', sock])
    assert.equal(json.code, 1)
    const body = JSON.parse(json.stdout)
    assert.equal(body.error.code, 'PT_DAEMON_NOT_RUNNING')
    assert.ok(body.error.hint)
    // The environment variable names the socket too.
    const env = await run(['peers', '--json'], { env: { PILOT_TUN_CONTROL_SOCKET: sock } })
    assert.match(JSON.parse(env.stdout).error.message, new RegExp(sock.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')))
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test('up: config file errors name the key; flags and files are checked before anything starts', async () => {
  const dir = tempDir()
  try {
    const write = (name: string, text: string): string => {
      const p = join(dir, name)
      writeFileSync(p, text)
      return p
    }
    const cases: Array<[string[], RegExp, string]> = [
      [['--config', join(dir, 'missing.json')], /does not exist/, 'PT_CONFIG_NOT_FOUND'],
      [['--config', write('bad.json', '{"registry": ')], /not valid JSON/, 'PT_CONFIG_INVALID'],
      [['--config', write('array.json', '[]')], /JSON object/, 'PT_CONFIG_INVALID'],
      [['--config', write('unknown.json', '{"registry": "127.0.0.1:9000", "colour": "blue"}')], /unknown key "colour"/, 'PT_CONFIG_INVALID'],
      [['--config', write('camel.json', '{"registry": "127.0.0.1:9000", "stateDir": "/x"}')], /unknown key "stateDir"/, 'PT_CONFIG_INVALID'],
      [['--config', write('type.json', '{"auto-accept": "yes"}')], /"auto-accept" must be true or false/, 'PT_CONFIG_INVALID'],
      [['--config', write('kdf.json', '{"kdf": "md5"}')], /"kdf" must be one of auto, hkdf, legacy/, 'PT_CONFIG_INVALID'],
      [['--config', write('noreg.json', '{"tun": false}')], /no registry/, 'PT_CONFIG_INVALID'],
      [['--config', write('mtu.json', '{"registry": "127.0.0.1:9000", "mtu": 100}')], /"mtu" must be a number in 1280\.\.65535/, 'PT_CONFIG_INVALID'],
      [['--config', write('dns.json', '{"registry": "127.0.0.1:9000", "dns": "maybe"}')], /"dns" must be one of on, off/, 'PT_CONFIG_INVALID'],
      [['--config', write('mtuflag.json', '{"registry": "127.0.0.1:9000"}'), '--mtu', '70000'], /--mtu 70000 is out of range/, 'PT_CONFIG_INVALID'],
    ]
    const results = await Promise.all(cases.map(([args]) => run(['up', ...args])))
    for (const [i, r] of results.entries()) {
      const [args, message, code] = cases[i]!
      assert.equal(r.code, 1, `${args.join(' ')}: ${r.stderr}`)
      assert.match(r.stderr, message, args.join(' '))
      assert.match(r.stderr, new RegExp(`\\[${code}\\]`), args.join(' '))
      assert.doesNotMatch(r.stderr, NO_STACK)
    }
    // "camelCase" keys get the kebab-case spelling.
    assert.match(results[4]!.stderr, /write "state-dir"/)
    // A flag wins over the file: --no-tun overrides "tun": true, then the registry check is what fails.
    const tunFile = write('tun-true.json', '{"tun": true}')
    const flagWins = await run(['up', '--config', tunFile, '--no-tun'])
    assert.match(flagWins.stderr, /no registry/)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test('config merge and formatting helpers', () => {
  assert.deepEqual(mergeConfig(parseConfig('{"registry":"a:1","public":true,"tun":true}'), { public: false, tun: undefined }), {
    registry: 'a:1',
    public: false,
    tun: true,
  })
  assert.throws(() => parseConfig('{"listen": ""}'), (e: PilotError) => e.code === 'PT_CONFIG_INVALID' && /"listen"/.test(e.message))
  assert.equal(formatBytes(0), '0 B')
  assert.equal(formatBytes(1023), '1023 B')
  assert.equal(formatBytes(1258291), '1.2 MiB')
  assert.equal(formatBytes(5 * 1024 ** 3), '5.0 GiB')
  assert.equal(formatMs(0.456), '0.5 ms')
  assert.equal(formatTable(['A', 'LONG'], [['xx', 'y'], ['z', '']]), 'A   LONG\nxx  y\nz')
})

/** Serves a FakeDaemon on a temp socket in this process while `fn` runs CLI commands against it. */
async function withFakeDaemon(fn: (sock: string, daemon: FakeDaemon, server: ControlServer) => Promise<void>): Promise<void> {
  const dir = tempDir()
  const sock = join(dir, 'control.sock')
  const daemon = new FakeDaemon()
  const server = new ControlServer({ path: sock, control: daemon })
  daemon.onShutdown = () => void setTimeout(() => void server.close(), 50)
  await server.listen()
  try {
    await fn(sock, daemon, server)
  } finally {
    await server.close()
    rmSync(dir, { recursive: true, force: true })
  }
}

test('every client command against a fake daemon: human output, --json, exit codes', async () => {
  await withFakeDaemon(async (sock, daemon) => {
    const cs = ['--control-socket', sock]
    const [status, statusJson, peers, peersJson, resolveR, trustList, hostname, request, approve, reject, revoke] = await Promise.all([
      run(['status', ...cs]),
      run(['status', '--json', ...cs]),
      run(['peers', ...cs]),
      run(['peers', '--json', ...cs]),
      run(['resolve', 'bob', ...cs]),
      run(['trust', 'list', ...cs]),
      run(['hostname', 'set', 'carol', ...cs]),
      run(['trust', 'request', 'bob', '--reason', 'build farm', ...cs]),
      run(['trust', 'approve', '44', ...cs]),
      run(['trust', 'reject', '45', ...cs]),
      run(['trust', 'revoke', '43', '--json', ...cs]),
    ])
    for (const r of [status, statusJson, peers, peersJson, resolveR, trustList, hostname, request, approve, reject, revoke]) {
      assert.equal(r.code, 0, r.stderr)
    }
    assert.match(status.stdout, /^address: +0:0000\.0000\.002A$/m)
    assert.match(status.stdout, /^registry: +127\.0\.0\.1:9000 \(connected, heartbeat 3s ago\)$/m)
    assert.match(status.stdout, /^public endpoint: +203\.0\.113\.7:4000$/m)
    assert.match(status.stdout, /^tun: +none \(--no-tun\)$/m)
    assert.deepEqual(JSON.parse(statusJson.stdout), STATUS)
    const lines = peers.stdout.trimEnd().split('\n')
    assert.match(lines[0]!, /^ADDRESS +HOSTNAME +PATH +ENDPOINT +RTT +KDF +IN +OUT$/)
    assert.match(lines[1]!, /^0:0000\.0000\.002B +bob +direct +198\.51\.100\.2:4000 +1\.3 ms +hkdf +1\.2 KiB +5\.5 KiB$/)
    assert.equal(lines[0]!.indexOf('PATH'), lines[1]!.indexOf('direct'))
    assert.deepEqual(JSON.parse(peersJson.stdout), [PEER])
    assert.match(resolveR.stdout, /^ipv6: +fd50:494c:4f54::2b$/m)
    assert.match(trustList.stdout, /^trusted:\n +ADDRESS +NODE +MUTUAL +SINCE\n +0:0000\.0000\.002B +43 +yes/m)
    assert.match(trustList.stdout, /^pending \(approve with/m)
    assert.match(trustList.stdout, /^outgoing: none$/m)
    assert.equal(hostname.stdout, 'hostname set to carol\n')
    assert.equal(request.stdout, 'trust request sent to node 43\n')
    assert.match(approve.stdout, /approved: node 43/)
    assert.match(reject.stdout, /rejected/)
    assert.deepEqual(JSON.parse(revoke.stdout), { status: 'revoked', node_id: 43 })
    assert.ok(daemon.calls.some((c) => c[0] === 'trustRequest' && c[2] === 'build farm'))
  })
})

test('ping: replies as they arrive, summary, exit 1 when nothing answers; daemon errors keep their code', async () => {
  await withFakeDaemon(async (sock) => {
    const cs = ['--control-socket', sock]
    const [ok, okJson, lost, lostJson, internal, badCount] = await Promise.all([
      run(['ping', 'bob', '--count', '3', '--interval', '0.05', ...cs]),
      run(['ping', 'bob', '-c', '2', '-i', '0.05', '--json', ...cs]),
      run(['ping', 'nobody', '--count', '2', '--interval', '0.05', ...cs]),
      run(['ping', 'nobody', '--count', '1', '--json', ...cs]),
      run(['ping', 'boom', '--count', '3', ...cs]),
      run(['ping', 'bob', '--count', '-1', ...cs]),
    ])
    assert.equal(ok.code, 0, ok.stderr)
    const lines = ok.stdout.trimEnd().split('\n')
    assert.match(lines[0]!, /^PING nobody|^PING bob \(0:0000\.0000\.002B, fd50:494c:4f54::2b\)$/)
    assert.deepEqual(lines.slice(1, 4).map((l) => l.replace(/time=\S+ ms/, 'time=T ms')), [
      'reply from bob (0:0000.0000.002B): seq=1 time=T ms path=direct',
      'reply from bob (0:0000.0000.002B): seq=2 time=T ms path=direct',
      'reply from bob (0:0000.0000.002B): seq=3 time=T ms path=direct',
    ])
    assert.match(ok.stdout, /^--- bob ping statistics ---\n3 sent, 3 received, 0% loss, time \d+\.\d s\nrtt min\/avg\/max = 0\.5\/0\.5\/0\.5 ms$/m)
    const j = JSON.parse(okJson.stdout)
    assert.equal(okJson.code, 0)
    assert.deepEqual([j.sent, j.received, j.loss_pct, j.rtt_ms], [2, 2, 0, { min: 0.5, avg: 0.5, max: 0.5 }])
    assert.equal(lost.code, 1)
    assert.match(lost.stdout, /no reply from nobody: seq=1 timeout/)
    assert.match(lost.stdout, /2 sent, 0 received, 100% loss/)
    assert.equal(lost.stderr, '')
    assert.equal(lostJson.code, 1)
    assert.equal(JSON.parse(lostJson.stdout).replies[0].error.code, 'PT_PING_TIMEOUT')
    assert.equal(internal.code, 1)
    assert.match(internal.stderr, /\[PT_DAEMON_INTERNAL\]/)
    assert.doesNotMatch(internal.stdout, /statistics/)
    assert.equal(badCount.code, 1)
    assert.match(badCount.stderr, /--count -1.*\[PT_CONFIG_INVALID\]/)
  })
})

test('down asks the daemon to stop and returns once the socket is gone', async () => {
  await withFakeDaemon(async (sock, daemon) => {
    const r = await run(['down', '--control-socket', sock])
    assert.equal(r.code, 0, r.stderr)
    assert.match(r.stdout, /^pilot-tun daemon stopped \(\d+\.\d s\)$/m)
    assert.equal(daemon.shutdownCalled, true)
    assert.equal(existsSync(sock), false)
  })
})

// ───────────────────────── end to end on loopback ─────────────────────────

/** A long-running CLI process whose stderr is collected; `waitFor` resolves on a matching line. */
class CliProcess {
  readonly child: ChildProcess
  output = ''
  readonly exited: Promise<number>

  constructor(args: string[]) {
    this.child = spawn(process.execPath, [bin, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
    this.child.stdout!.setEncoding('utf8').on('data', (d: string) => (this.output += d))
    this.child.stderr!.setEncoding('utf8').on('data', (d: string) => (this.output += d))
    this.exited = new Promise((resolvePromise) => this.child.on('exit', (code, signal) => resolvePromise(code ?? (signal ? 128 : -1))))
  }

  async waitFor(pattern: RegExp, timeoutMs = 15_000): Promise<void> {
    const deadline = Date.now() + timeoutMs
    while (!pattern.test(this.output)) {
      if (this.child.exitCode !== null) throw new Error(`process exited (${this.child.exitCode}) before ${pattern}:\n${this.output}`)
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${pattern}:\n${this.output}`)
      await sleep(25)
    }
  }

  kill(): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL')
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms))
}

async function freeTcpPort(): Promise<number> {
  const s = createNetServer()
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()))
  const port = (s.address() as AddressInfo).port
  await new Promise<void>((r) => s.close(() => r()))
  return port
}

async function freeUdpPort(): Promise<number> {
  const s = createSocket('udp4')
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()))
  const port = s.address().port
  await new Promise<void>((r) => s.close(() => r()))
  return port
}

/** Retries `fn` until `ok` holds for its result. */
async function eventually<T>(fn: () => Promise<T>, ok: (v: T) => boolean, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const v = await fn()
    if (ok(v) || Date.now() > deadline) return v
    await sleep(200)
  }
}

test('end to end: rendezvous, two `up --no-tun` daemons, status/hostname/resolve/trust/ping/peers/down', { timeout: 90_000 }, async () => {
  const dir = tempDir()
  const procs: CliProcess[] = []
  try {
    const regPort = await freeTcpPort()
    const beaconPort = await freeUdpPort()
    const rendezvous = new CliProcess([
      'rendezvous', '--registry-listen', `127.0.0.1:${regPort}`, '--beacon-listen', `127.0.0.1:${beaconPort}`,
      '--store', join(dir, 'registry.db'), '--log-format', 'text',
    ])
    procs.push(rendezvous)
    await rendezvous.waitFor(/rendezvous running/)
    const sock = { a: join(dir, 'a', 'control.sock'), b: join(dir, 'b', 'control.sock') }
    const up = (name: 'a' | 'b', hostname: string, extra: string[] = []): CliProcess =>
      new CliProcess([
        'up', '--no-tun', '--registry', `127.0.0.1:${regPort}`, '--beacon', `127.0.0.1:${beaconPort}`, '--listen', '127.0.0.1:0',
        '--state-dir', join(dir, name, 'state'), '--control-socket', sock[name], '--hostname', hostname, '--auto-accept',
        '--config', join(dir, 'none.json'), '--log-format', 'text', '--heartbeat-interval', '0.5', ...extra,
      ])
    writeFileSync(join(dir, 'none.json'), '{}')
    // alice maps addresses into a prefix of her own: status, resolve and IPv6 targets must follow it.
    const a = up('a', 'alice', ['--prefix', 'fd12:3456:789a::/48'])
    const b = up('b', 'bob')
    procs.push(a, b)
    await Promise.all([a.waitFor(/pilot-tun up address=/), b.waitFor(/pilot-tun up address=/)])
    assert.equal(statSync(sock.a).mode & 0o777, 0o600)
    const A = ['--control-socket', sock.a]
    const B = ['--control-socket', sock.b]

    // A second daemon on a's socket is refused before it touches anything.
    const second = await run(['up', '--no-tun', '--registry', `127.0.0.1:${regPort}`, '--state-dir', join(dir, 'c'), '--control-socket', sock.a, '--config', join(dir, 'none.json')])
    assert.equal(second.code, 1)
    assert.match(second.stderr, /\[PT_CONTROL_IN_USE\]/)

    const [statusA, rename] = await Promise.all([run(['status', '--json', ...A]), run(['hostname', 'set', 'bobby', ...B])])
    assert.equal(statusA.code, 0, statusA.stderr)
    const st = JSON.parse(statusA.stdout)
    assert.equal(st.hostname, 'alice')
    assert.equal(st.tun, null)
    assert.equal(st.registry.connected, true)
    assert.match(st.address, /^0:0000\.[0-9A-F]{4}\.[0-9A-F]{4}$/)
    assert.match(st.ipv6, /^fd12:3456:789a::[0-9a-f:]+$/, 'status maps into --prefix')
    assert.equal(rename.code, 0, rename.stderr)
    assert.equal(rename.stdout, 'hostname set to bobby\n')

    const resolved = await run(['resolve', 'bobby', '--json', ...A])
    assert.equal(resolved.code, 0, resolved.stderr)
    const bob = JSON.parse(resolved.stdout)
    assert.equal(bob.hostname, 'bobby')
    assert.match(bob.ipv6, /^fd12:3456:789a::/, 'resolve maps into --prefix')
    const inDefault = await run(['resolve', bob.ipv6.replace('fd12:3456:789a:', 'fd50:494c:4f54:'), ...A])
    assert.equal(inDefault.code, 1, 'an address in the default prefix is no node of alice')
    assert.match(inDefault.stderr, /\[PT_NAME_NOT_FOUND\][\s\S]*fd12:3456:789a::\/48/)
    const fromBob = JSON.parse((await run(['status', '--json', ...B])).stdout)
    assert.match(fromBob.ipv6, /^fd50:494c:4f54::/, 'bob keeps the default prefix')

    // Private by default: no echo without trust, and the error says what to do.
    const early = await run(['ping', 'bobby', '--count', '1', ...A])
    assert.equal(early.code, 1)
    assert.match(early.stderr, /\[PT_TRUST_REQUIRED\]\nhint: ask for trust first/)

    const req = await run(['trust', 'request', bob.address, '--reason', 'e2e test', ...A])
    assert.equal(req.code, 0, req.stderr)
    assert.match(req.stdout, /trust request sent to node|already trust/)
    const list = await eventually(
      () => run(['trust', 'list', '--json', ...A]),
      (r) => r.code === 0 && JSON.parse(r.stdout).trusted.some((t: { node_id: number; mutual: boolean }) => t.node_id === bob.node_id && t.mutual),
    )
    assert.ok(JSON.parse(list.stdout).trusted.some((t: { node_id: number }) => t.node_id === bob.node_id), list.stdout)

    const ping = await run(['ping', bob.ipv6, '--count', '3', '--interval', '0.2', ...A])
    assert.equal(ping.code, 0, ping.stdout + ping.stderr)
    assert.equal(ping.stdout.match(/^reply from bobby \(.+\): seq=\d time=\d+\.\d ms path=(direct|punched|relay)$/gm)?.length, 3, ping.stdout)
    assert.match(ping.stdout, /3 sent, 3 received, 0% loss/)

    const peers = await run(['peers', '--json', ...A])
    const peer = JSON.parse(peers.stdout).find((p: { node_id: number }) => p.node_id === bob.node_id)
    assert.ok(peer, peers.stdout)
    assert.match(peer.path, /^(direct|punched|relay)$/)
    assert.ok(peer.bytes_in > 0 && peer.bytes_out > 0)
    const table = await run(['peers', ...A])
    assert.match(table.stdout, /^ADDRESS +HOSTNAME +PATH +ENDPOINT +RTT +KDF +IN +OUT\n0:0000\.\S+ +bobby +(direct|punched|relay) /)

    // down: the daemon stops and its socket disappears; SIGINT does the same for the other.
    const down = await run(['down', ...B])
    assert.equal(down.code, 0, down.stderr)
    assert.equal(existsSync(sock.b), false)
    assert.equal(await b.exited, 0)
    assert.match(b.output, /shutdown requested over the control socket/)
    const gone = await run(['status', ...B])
    assert.match(gone.stderr, /\[PT_DAEMON_NOT_RUNNING\]/)
    a.child.kill('SIGINT')
    assert.equal(await a.exited, 0)
    assert.equal(existsSync(sock.a), false)
    rendezvous.child.kill('SIGTERM')
    assert.equal(await rendezvous.exited, 0)
    assert.match(rendezvous.output, /rendezvous stopped/)
  } finally {
    for (const p of procs) p.kill()
    rmSync(dir, { recursive: true, force: true })
  }
})
