// Runs the real `pilot-tun` launcher as a user would, and checks output and exit codes.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync, statSync, chmodSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..')
const bin = join(repoRoot, 'bin', 'pilot-tun.js')

function run(...args: string[]): { code: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', timeout: 20_000 })
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr }
}

test('--help lists the commands', () => {
  const r = run('--help')
  assert.equal(r.code, 0)
  for (const cmd of ['address', 'identity']) assert.match(r.stdout, new RegExp(`pilot-tun ${cmd}`))
})

test('no command and unknown commands are usage errors (exit 2) with a hint', () => {
  const none = run()
  assert.equal(none.code, 2)
  assert.match(none.stderr, /PT_CLI_USAGE/)
  const bogus = run('frobnicate')
  assert.equal(bogus.code, 2)
  assert.match(bogus.stderr, /hint:/)
})

test('address converts both ways and explains what is not a node', () => {
  const a = run('address', '0:0000.0000.002A', '--json')
  assert.equal(a.code, 0)
  assert.deepEqual(JSON.parse(a.stdout), { address: '0:0000.0000.002A', ipv6: 'fd50:494c:4f54::2a', network_id: 0, node_id: 42 })
  const b = run('address', 'fd50:494c:4f54:1::f291:4', '--json')
  assert.equal(JSON.parse(b.stdout).address, '1:0001.F291.0004')
  const custom = run('address', '0:0000.0000.0001', '--prefix', '2001:db8:77::/48', '--json')
  assert.equal(JSON.parse(custom.stdout).ipv6, '2001:db8:77::1')
  const notNode = run('address', 'fd50:494c:4f54::1:0:1', '--json')
  assert.equal(notNode.code, 1)
  assert.equal(JSON.parse(notNode.stdout).error.code, 'PT_ADDRESS_NOT_A_NODE')
  const bad = run('address', '1:0000.0000.0001')
  assert.equal(bad.code, 1)
  assert.match(bad.stderr, /PT_PROTOCOL_BAD_ADDRESS/)
})

test('identity create writes a 0600 file in the reference format, refuses to overwrite, show reads it back', () => {
  const dir = mkdtempSync(join(tmpdir(), 'pilot-cli-'))
  try {
    const path = join(dir, 'state', 'identity.json')
    const created = run('identity', 'create', '--path', path, '--json')
    assert.equal(created.code, 0, created.stderr)
    const info = JSON.parse(created.stdout)
    assert.equal(statSync(path).mode & 0o777, 0o600)
    assert.deepEqual(Object.keys(JSON.parse(readFileSync(path, 'utf8'))), ['private_key', 'public_key'])
    const again = run('identity', 'create', '--path', path)
    assert.equal(again.code, 1)
    assert.match(again.stderr, /PT_IDENTITY_EXISTS/)
    const shown = run('identity', 'show', '--path', path, '--json')
    assert.equal(JSON.parse(shown.stdout).public_key, info.public_key)
    chmodSync(path, 0o644)
    const unsafe = run('identity', 'show', '--path', path, '--json')
    assert.equal(unsafe.code, 1)
    assert.equal(JSON.parse(unsafe.stdout).error.code, 'PT_CRYPTO_KEY_FILE_MODE')
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})
