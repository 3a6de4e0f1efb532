// The demo (issue 6) end to end: `node dist/src/testbed/demo.js` (what
// `sudo npm run demo` runs after building) exits 0, shows bob's page fetched
// by name from alice and `pilot-tun peers` from both sides, and leaves nothing
// behind; Ctrl-C (SIGINT) in the middle tears everything down too. Root only.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn, spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { testbedUnavailable } from '../src/testbed/topology.js'
import { sleep } from '../src/testbed/ns-process.js'
import { repoRoot } from '../src/testbed/pilot-bed.js'
import { tunUnavailable } from './helpers/tun-net.js'

const demo = join(repoRoot, 'dist', 'src', 'testbed', 'demo.js')

function missingTool(): string | null {
  for (const tool of ['curl', 'dig']) if (spawnSync(tool, ['-v'], { stdio: 'ignore' }).error !== undefined) return `\`${tool}\` is not installed`
  return null
}

const skip = (await testbedUnavailable()) ?? tunUnavailable() ?? missingTool()

interface DemoRun {
  code: number | null
  signal: NodeJS.Signals | null
  stdout: string
  stderr: string
  ms: number
}

/** Runs the demo; `interruptAt`: send SIGINT once stdout matches it. */
function runDemo(opts: { interruptAt?: RegExp; timeoutMs?: number } = {}): Promise<DemoRun> {
  return new Promise((resolve) => {
    const t0 = performance.now()
    const child = spawn(process.execPath, [demo], { stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    let interrupted = false
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      stdout += d
      if (opts.interruptAt !== undefined && !interrupted && opts.interruptAt.test(stdout)) {
        interrupted = true
        child.kill('SIGINT')
      }
    })
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d))
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 120_000)
    child.on('close', (code, signal) => {
      clearTimeout(timer)
      resolve({ code, signal, stdout, stderr, ms: performance.now() - t0 })
    })
  })
}

/** Namespaces and resolv.conf directories of test bed `id` still present. */
function leftovers(id: string): string[] {
  const ns = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' })
    .stdout.split('\n')
    .map((l) => l.split(' ')[0]!)
    .filter((n) => n.startsWith(`ptb-${id}-`))
  const etc = ['alice', 'bob'].map((n) => `/etc/netns/ptb-${id}-${n}`).filter((p) => existsSync(p))
  return [...ns, ...etc]
}

function testbedId(stdout: string): string {
  const m = stdout.match(/test bed ([0-9a-f]{6})/)
  assert.ok(m !== null, `the demo did not print its test bed id:\n${stdout}`)
  return m[1]!
}

test('demo: builds two NATed agents, curls bob.pilot from alice, prints peers from both sides, tears down', { skip: skip ?? false, timeout: 150_000 }, async (t) => {
  const r = await runDemo()
  const out = `${r.stdout}\n--- stderr ---\n${r.stderr}`
  assert.equal(r.code, 0, `the demo exited ${r.code ?? r.signal}:\n${out}`)
  t.diagnostic(`demo ran in ${(r.ms / 1000).toFixed(1)} s`)
  assert.match(r.stdout, /alice \(behind a full-cone NAT\) → bob \(behind a port-restricted NAT\)/)
  // The page, fetched by name, and the server saw alice's mapped address.
  assert.match(r.stdout, /alice\$ curl http:\/\/bob\.pilot\/\n\s+Hello from bob, served on \[::\]:80 and reached over Pilot Protocol\.\n\s+You are fd50:494c:4f54::[0-9a-f:]+\n/)
  // Both peers tables: each side lists the other.
  for (const [side, peer] of [['alice', 'bob'], ['bob', 'alice']] as const) {
    const table = new RegExp(`${side}\\$ pilot-tun peers\\n\\s+ADDRESS +HOSTNAME +PATH +ENDPOINT +RTT +KDF +IN +OUT\\n\\s+0:0000\\.[0-9A-F]{4}\\.[0-9A-F]{4} +${peer} +(direct|punched|relay) `)
    assert.match(r.stdout, table, `${side}'s peers table:\n${r.stdout}`)
  }
  assert.match(r.stdout, /teardown: pilot-tun down in alice and bob; .*resolv\.conf removed; test bed [0-9a-f]{6} removed/)
  assert.match(r.stdout, /demo finished/)
  assert.equal(r.stderr, '')
  assert.deepEqual(leftovers(testbedId(r.stdout)), [])
})

test('demo: Ctrl-C while alice curls bob tears everything down (resolv.conf too) and exits 130', { skip: skip ?? false, timeout: 90_000 }, async () => {
  const r = await runDemo({ interruptAt: /resolv\.conf: nameserver/ })
  const out = `${r.stdout}\n--- stderr ---\n${r.stderr}`
  assert.equal(r.code, 130, `exit ${r.code ?? r.signal}:\n${out}`)
  assert.match(r.stdout, /SIGINT: stopping the demo and tearing everything down/)
  assert.match(r.stdout, /teardown: pilot-tun down in alice and bob; \/etc\/netns\/ptb-[0-9a-f]{6}-alice\/resolv\.conf removed; test bed [0-9a-f]{6} removed/)
  assert.doesNotMatch(r.stdout, /demo finished/)
  const id = testbedId(r.stdout)
  // destroy() has finished before the exit; allow the kernel a moment to drop the namespaces' files.
  for (let i = 0; i < 20 && leftovers(id).length > 0; i++) await sleep(100)
  assert.deepEqual(leftovers(id), [])
})
