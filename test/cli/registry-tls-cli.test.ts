// The TLS flags as users type them (issue 15): `registry --tls-only --json`
// prints the pin, `registry pin` prints the same one, `up` takes
// --registry-tls/--registry-fingerprint (or the config keys) and says clearly
// when a pin is missing or wrong.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { resolveUpSettings } from '../../src/cli/commands/up.js'
import { formatStatus } from '../../src/cli/commands/status.js'
import type { DaemonStatus } from '../../src/daemon/api.js'
import { PilotError } from '../../src/errors.js'
import { CLI_BIN, runCli } from './run-cli.js'

test('up: --registry-tls and --registry-fingerprint, from flags or the config file; TLS without a pin is PT_CONFIG_INVALID', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'pt-regtls-cli-'))
  try {
    const pin = 'c0'.repeat(32)
    const config = join(dir, 'config.json')
    await writeFile(config, JSON.stringify({ registry: '127.0.0.1:9000', 'registry-tls': true, 'registry-fingerprint': pin }))
    assert.deepEqual((await resolveUpSettings({ config })).registryTls, { pin })
    const empty = join(dir, 'empty.json')
    await writeFile(empty, '{}')
    assert.equal((await resolveUpSettings({ config: empty, registry: '127.0.0.1:9000' })).registryTls, null)
    await assert.rejects(
      resolveUpSettings({ config: empty, registry: '127.0.0.1:9000', 'registry-tls': true }),
      (e: unknown) => e instanceof PilotError && e.code === 'PT_CONFIG_INVALID' && /prints it at start/.test(e.hint ?? ''),
    )
    const r = await runCli(['up', '--no-tun', '--registry', '127.0.0.1:9', '--registry-tls', '--state-dir', join(dir, 's'), '--control-socket', join(dir, 'c.sock')])
    assert.notEqual(r.code, 0)
    assert.match(r.stderr, /--registry-tls needs --registry-fingerprint.*\[PT_CONFIG_INVALID\]/, r.stderr)
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
})

test('registry --tls-only --json prints its pin; `registry pin` agrees; up with a wrong pin fails with PT_REGISTRY_TLS_PIN naming it', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'pt-regtls-cli-'))
  const store = join(dir, 'reg', 'registry.db')
  const child = spawn(process.execPath, [CLI_BIN, 'registry', '--listen', '127.0.0.1:0', '--store', store, '--tls-only', '--json', '--log-level', 'error'], { stdio: ['ignore', 'pipe', 'pipe'] })
  try {
    const line = await new Promise<string>((resolve, reject) => {
      let out = ''
      child.stdout.setEncoding('utf8').on('data', (d: string) => {
        out += d
        if (out.includes('\n')) resolve(out.split('\n')[0]!)
      })
      child.once('exit', (code) => reject(new Error(`registry exited ${code}`)))
    })
    const started = JSON.parse(line) as { registry: string; tls: { pin: string; only: boolean; certificate: string; source: string } }
    assert.match(started.tls.pin, /^[0-9a-f]{64}$/)
    assert.equal(started.tls.only, true)
    assert.equal(started.tls.source, 'created')
    assert.equal(started.tls.certificate, join(dir, 'reg', 'registry-tls-cert.pem'))
    const pinned = await runCli(['registry', 'pin', '--store', store])
    assert.equal(pinned.stdout.trim(), started.tls.pin, pinned.stderr)

    const wrong = 'ab'.repeat(32)
    const up = await runCli(['up', '--no-tun', '--registry', started.registry, '--registry-tls', '--registry-fingerprint', wrong, '--listen', '127.0.0.1:0',
      '--state-dir', join(dir, 's'), '--control-socket', join(dir, 'c.sock'), '--log-level', 'error'])
    assert.notEqual(up.code, 0)
    assert.match(up.stderr, /\[PT_REGISTRY_TLS_PIN\]/, up.stderr)
    assert.match(up.stderr, new RegExp(`hint: the registry presented pin ${started.tls.pin}`), up.stderr)
  } finally {
    child.kill('SIGTERM')
    await new Promise((r) => (child.exitCode !== null ? r(null) : child.once('exit', r)))
    await rm(dir, { recursive: true, force: true })
  }
})

test('status shows the pinned registry certificate, and nothing about TLS for a plaintext registry', () => {
  const pin = '5e'.repeat(32)
  const base: DaemonStatus = {
    version: 't', node_id: 1, address: '0:0000.0000.0001', ipv6: 'fd50:494c:4f54::1', hostname: null, public: false, uptime_s: 1,
    listen: '127.0.0.1:4000', public_endpoint: null, registry: { address: '127.0.0.1:9000', front_end: '127.0.0.1:9000', connected: true, last_heartbeat_s_ago: 1, tls_pin: pin },
    beacon: { address: null }, kdf: 'auto', auto_accept: false, peers: 0, connections: 0, trust_unsaved: null, tun: null,
  }
  assert.match(formatStatus(base), new RegExp(`registry tls:?\\s+pinned ${pin}`))
  assert.doesNotMatch(formatStatus({ ...base, registry: { ...base.registry, tls_pin: null } }), /registry tls/)
})
