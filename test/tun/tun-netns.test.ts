// Runs the TUN tests that need a kernel (netns-child.ts) inside a network
// namespace created here and always deleted, so the host's interfaces and
// routes are never touched. Skips, saying why, without root or /dev/net/tun.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync } from 'node:fs'
import { spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { fileURLToPath } from 'node:url'

function skipReason(): string | null {
  if (process.platform !== 'linux') return 'TUN tests need Linux'
  if (process.getuid?.() !== 0) return 'TUN tests need root (they create a network namespace)'
  if (!existsSync('/dev/net/tun')) return '/dev/net/tun is missing'
  if (spawnSync('ip', ['-V'], { stdio: 'ignore' }).status !== 0) return 'iproute2 (`ip`) is not installed'
  if (!existsSync(fileURLToPath(new URL('../../../build/Release/pilot_tun_native.node', import.meta.url)))) {
    return 'the addon is not built (npm run build:native)'
  }
  return null
}

const reason = skipReason()

// Both reader modes run the same suite: the reader thread, and the event loop polling the fd.
for (const mode of ['thread', 'loop'] as const)
test(`native TUN inside a throwaway network namespace (conformance suite and set-up), ${mode} reader`, { skip: reason ?? false, timeout: 25_000 }, () => {
  const ns = `pilot-test-${randomBytes(4).toString('hex')}`
  const add = spawnSync('ip', ['netns', 'add', ns], { encoding: 'utf8' })
  if (add.status !== 0) {
    assert.fail(`ip netns add ${ns} failed: ${add.stderr}`)
  }
  try {
    const lo = spawnSync('ip', ['netns', 'exec', ns, 'ip', 'link', 'set', 'lo', 'up'], { encoding: 'utf8' })
    assert.equal(lo.status, 0, lo.stderr)
    // Like many containers: new links come up without IPv6. Set-up must enable it on its own interface.
    const v6 = spawnSync('ip', ['netns', 'exec', ns, 'sysctl', '-qw', 'net.ipv6.conf.default.disable_ipv6=1'], { encoding: 'utf8' })
    assert.equal(v6.status, 0, v6.stderr)
    const child = fileURLToPath(new URL('./netns-child.js', import.meta.url))
    // The child runs its own test runner; it must not think it reports to ours.
    const env: NodeJS.ProcessEnv = { ...process.env, PILOT_TUN_NETNS_CHILD: ns, PILOT_TUN_READER: mode }
    delete env['NODE_TEST_CONTEXT']
    const r = spawnSync('ip', ['netns', 'exec', ns, process.execPath, '--test-reporter=spec', child], {
      encoding: 'utf8',
      env,
      timeout: 20_000,
    })
    const out = `${r.stdout}\n${r.stderr}`
    assert.equal(r.status, 0, `child failed (status ${r.status}, signal ${r.signal}):\n${out}`)
    assert.match(out, /native tun: a hand-built IPv6\/UDP packet/, `the child ran no native test:\n${out}`)
    assert.match(out, /fail 0/, out)
  } finally {
    spawnSync('ip', ['netns', 'del', ns])
  }
})
