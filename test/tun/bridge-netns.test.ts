// Root only: the whole front door with real kernels. Two network namespaces
// joined by a veth, a rendezvous in the first, `pilot-tun up` (with pilot0)
// in both; an untrusted curl fails at once, then trust, ping6, dig and a
// curl of 20 MB from a Python HTTP server across the overlay, byte-exact.
// Namespaces, processes and temp files are removed in `finally`; the host's
// interfaces and routes are never touched.
//
//   pte-a-<id>  10.99.0.1/24 ── veth ── 10.99.0.2/24  pte-b-<id>
//     rendezvous :9000 :9001                 pilot-tun up (bob, auto-accept)
//     pilot-tun up (alice)                   python3 -m http.server [::]:8080
//     pilot0 fd50:494c:4f54::<a>             pilot0 fd50:494c:4f54::<b>
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync, writeFileSync, readFileSync } from 'node:fs'
import { randomBytes, createHash } from 'node:crypto'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const bin = fileURLToPath(new URL('../../../bin/pilot-tun.js', import.meta.url))
const addon = fileURLToPath(new URL('../../../build/Release/pilot_tun_native.node', import.meta.url))

function skipReason(): string | null {
  if (process.platform !== 'linux') return 'needs Linux'
  if (process.getuid?.() !== 0) return 'needs root (creates network namespaces)'
  if (!existsSync('/dev/net/tun')) return '/dev/net/tun is missing'
  if (!existsSync(addon)) return 'the addon is not built (npm run build:native)'
  for (const [tool, arg] of [['ip', '-V'], ['curl', '--version'], ['python3', '--version']] as const) {
    if (spawnSync(tool, [arg], { stdio: 'ignore' }).status !== 0) return `\`${tool}\` is not installed`
  }
  return null
}

function sh(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(args[0]!, args.slice(1), { encoding: 'utf8', timeout: 60_000 })
  return { status: r.status, stdout: r.stdout, stderr: r.stderr }
}
function ok(args: string[]): string {
  const r = sh(args)
  assert.equal(r.status, 0, `${args.join(' ')}: ${r.stderr}`)
  return r.stdout
}
function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms))
}

test('pilot-tun up in two namespaces: curl, ping6 and dig across pilot0', { skip: skipReason() ?? false, timeout: 120_000 }, async () => {
  const id = randomBytes(3).toString('hex')
  const na = `pte-a-${id}`
  const nb = `pte-b-${id}`
  const dir = mkdtempSync(join(tmpdir(), 'pilot-tun-e2e-'))
  const procs: ChildProcess[] = []
  const inNs = (ns: string, args: string[], log: string): ChildProcess => {
    const p = spawn('ip', ['netns', 'exec', ns, ...args], { stdio: ['ignore', 'ignore', 'ignore'] })
    void log
    procs.push(p)
    return p
  }
  writeFileSync(join(dir, 'none.json'), '{}')
  try {
    ok(['ip', 'netns', 'add', na])
    ok(['ip', 'netns', 'add', nb])
    ok(['ip', 'link', 'add', `va-${id}`, 'type', 'veth', 'peer', 'name', `vb-${id}`])
    ok(['ip', 'link', 'set', `va-${id}`, 'netns', na])
    ok(['ip', 'link', 'set', `vb-${id}`, 'netns', nb])
    for (const [ns, dev, ip] of [[na, `va-${id}`, '10.99.0.1/24'], [nb, `vb-${id}`, '10.99.0.2/24']] as const) {
      ok(['ip', '-n', ns, 'addr', 'add', ip, 'dev', dev])
      ok(['ip', '-n', ns, 'link', 'set', dev, 'up'])
      ok(['ip', '-n', ns, 'link', 'set', 'lo', 'up'])
    }
    inNs(na, [process.execPath, bin, 'rendezvous', '--registry-listen', '10.99.0.1:9000', '--beacon-listen', '10.99.0.1:9001', '--store', join(dir, 'reg.db')], 'rv')
    await sleep(1000)
    const up = (ns: string, name: string, extra: string[]): ChildProcess =>
      inNs(ns, [process.execPath, bin, 'up', '--registry', '10.99.0.1:9000', '--beacon', '10.99.0.1:9001', '--listen', '0.0.0.0:4000',
        '--state-dir', join(dir, name), '--control-socket', join(dir, `${name}.sock`), '--hostname', name, '--config', join(dir, 'none.json'), ...extra], name)
    const alice = up(na, 'alice', [])
    up(nb, 'bob', ['--auto-accept'])
    const cli = (ns: string, name: string, args: string[]): string => ok(['ip', 'netns', 'exec', ns, process.execPath, bin, '--control-socket', join(dir, `${name}.sock`), ...args])
    const status = async (ns: string, name: string): Promise<{ tun: { address: string; interface: string } }> => {
      for (let i = 0; i < 100; i++) {
        const r = sh(['ip', 'netns', 'exec', ns, process.execPath, bin, '--control-socket', join(dir, `${name}.sock`), 'status', '--json'])
        if (r.status === 0) return JSON.parse(r.stdout)
        await sleep(100)
      }
      throw new Error(`${name} never answered status`)
    }
    const A = (await status(na, 'alice')).tun.address
    const B = (await status(nb, 'bob')).tun.address
    assert.match(ok(['ip', '-n', na, '-6', 'route']), /fd50:494c:4f54::\/48 dev pilot0/)

    const data = randomBytes(20 * 1024 * 1024)
    writeFileSync(join(dir, 'blob'), data)
    inNs(nb, ['python3', '-m', 'http.server', '--bind', '::', '8080', '--directory', dir], 'http')
    await sleep(800)

    // No trust yet: connect() fails at once (ICMPv6 administratively prohibited), it does not hang.
    const t0 = Date.now()
    const refused = sh(['ip', 'netns', 'exec', na, 'curl', '-sS', '-m', '10', '-o', '/dev/null', `http://[${B}]:8080/blob`])
    assert.notEqual(refused.status, 0)
    assert.ok(Date.now() - t0 < 5_000, `untrusted curl took ${Date.now() - t0} ms`)

    cli(na, 'alice', ['trust', 'request', 'bob'])
    for (let i = 0; i < 50 && !/yes/.test(cli(na, 'alice', ['trust', 'list'])); i++) await sleep(100)

    const ping = ok(['ip', 'netns', 'exec', na, 'ping', '-6', '-c', '3', '-i', '0.2', '-W', '2', B])
    assert.match(ping, /3 received/)
    const dig = sh(['ip', 'netns', 'exec', na, 'dig', '+short', `@${A}`, 'bob.pilot', 'AAAA'])
    if (dig.status === 0) assert.equal(dig.stdout.trim(), B)

    const got = join(dir, 'got')
    const curl = ok(['ip', 'netns', 'exec', na, 'curl', '-sS', '-m', '60', '-o', got, '-w', '%{speed_download} %{time_total}', `http://[${B}]:8080/blob`])
    const [speed, time] = curl.trim().split(' ').map(Number)
    console.log(`# curl 20 MB across pilot0: ${((speed! * 8) / 1e6).toFixed(0)} Mbit/s in ${time!.toFixed(2)} s`)
    const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex')
    assert.equal(sha(readFileSync(got)), sha(data))

    // A clean stop removes the interface.
    alice.kill('SIGINT')
    await new Promise<void>((r) => alice.once('exit', () => r()))
    assert.notEqual(sh(['ip', '-n', na, 'link', 'show', 'pilot0']).status, 0, 'pilot0 removed after shutdown')
  } finally {
    for (const p of procs) if (p.exitCode === null && p.pid !== undefined) p.kill('SIGKILL')
    await sleep(200)
    sh(['ip', 'netns', 'del', na])
    sh(['ip', 'netns', 'del', nb])
    rmSync(dir, { recursive: true, force: true })
  }
})
