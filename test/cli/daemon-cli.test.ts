// The daemon-facing CLI commands, run through the real launcher: a missing
// daemon, config errors, every command against a fake daemon served in this
// process, and (when the daemon module exists) a loopback network of a
// rendezvous and two `up --no-tun` daemons.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { ControlServer } from '../../src/daemon/control/server.js'
import { formatBytes, formatMs, formatTable } from '../../src/cli/output.js'
import { parseConfig, mergeConfig } from '../../src/cli/config.js'
import { PilotError } from '../../src/errors.js'
import { FakeDaemon, PEER, STATUS } from '../daemon/fake-daemon.js'

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..')
const bin = join(repoRoot, 'bin', 'pilot-tun.js')

interface RunResult {
  code: number
  stdout: string
  stderr: string
}

/** Runs the CLI without blocking this process's event loop (a fake daemon may be serving here). */
function run(args: string[], opts: { timeoutMs?: number; env?: NodeJS.ProcessEnv } = {}): Promise<RunResult> {
  return new Promise((resolvePromise) => {
    const child = spawn(process.execPath, [bin, ...args], { env: { ...process.env, ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d))
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d))
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 20_000)
    child.on('close', (code, signal) => {
      clearTimeout(timer)
      resolvePromise({ code: code ?? (signal ? 128 : -1), stdout, stderr })
    })
  })
}

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
      [['--config', write('tun.json', '{"registry": "127.0.0.1:9000"}')], /TUN/, 'PT_TUN_UNAVAILABLE'],
    ]
    const results = await Promise.all(cases.map(([args]) => run(['up', ...args])))
    for (const [i, r] of results.entries()) {
      const [args, message, code] = cases[i]!
      assert.equal(r.code, 1, `${args.join(' ')}: ${r.stderr}`)
      assert.match(r.stderr, message, args.join(' '))
      assert.match(r.stderr, new RegExp(`\\[${code}\\]`), args.join(' '))
      assert.doesNotMatch(r.stderr, NO_STACK)
    }
    // The TUN refusal tells the user what to do; "camelCase" keys get the kebab-case spelling.
    assert.match(results[8]!.stderr, /hint: run with --no-tun/)
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
    assert.match(internal.stdout, /1 sent, 0 received/)
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
