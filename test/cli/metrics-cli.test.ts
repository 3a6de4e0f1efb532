// `--metrics-listen` on the real `pilot-tun` launcher: registry, beacon and rendezvous serve
// /metrics until SIGTERM and leave the port closed; a bad address or a taken port is a clear
// error and exit 1. `up`'s flag and config key go through resolveUpSettings.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn, spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createServer, type AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join, resolve, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { resolveUpSettings } from '../../src/cli/commands/up.js'
import { PilotError } from '../../src/errors.js'
import { parseExposition, portOpen } from '../metrics/prom-text.js'

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..')
const bin = join(repoRoot, 'bin', 'pilot-tun.js')

function run(...args: string[]): { code: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', timeout: 20_000 })
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr }
}

/** Starts a server command, waits for its `metrics at URL` log line, scrapes, stops it with SIGTERM. */
async function scrapeCommand(args: string[]): Promise<{ text: string; port: number; code: number | null }> {
  const child = spawn(process.execPath, [bin, ...args, '--metrics-listen', '127.0.0.1:0'], { stdio: ['ignore', 'ignore', 'pipe'] })
  let stderr = ''
  const exited = new Promise<number | null>((done) => child.once('exit', (code) => done(code)))
  try {
    const url = await new Promise<string>((done, fail) => {
      const timer = setTimeout(() => fail(new Error(`no metrics URL logged: ${stderr}`)), 15_000)
      child.stderr.setEncoding('utf8')
      child.stderr.on('data', (chunk: string) => {
        stderr += chunk
        const m = /http:\/\/127\.0\.0\.1:\d+\/metrics/.exec(stderr)
        if (m !== null) {
          clearTimeout(timer)
          done(m[0])
        }
      })
      void exited.then((code) => fail(new Error(`exited ${code} before serving metrics: ${stderr}`)))
    })
    const r = await fetch(url, { headers: { connection: 'close' } })
    assert.equal(r.status, 200)
    const text = await r.text()
    child.kill('SIGTERM')
    const code = await exited
    return { text, port: Number(new URL(url).port), code }
  } finally {
    child.kill('SIGKILL')
  }
}

test('registry --metrics-listen serves the server counters until SIGTERM, then nothing listens', { timeout: 30_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'pilot-metrics-cli-'))
  try {
    const r = await scrapeCommand(['registry', '--listen', '127.0.0.1:0', '--store', join(dir, 'r.db')])
    const m = parseExposition(r.text)
    assert.equal(m.value('pilot_tun_registry_server_requests_total'), 0)
    assert.equal(m.value('pilot_tun_registry_server_nodes_online'), 0)
    assert.equal(m.all('pilot_tun_beacon_datagrams_total').length, 0, 'no beacon in a registry')
    assert.equal(r.code, 0)
    assert.equal(await portOpen(r.port), false)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test('beacon and rendezvous --metrics-listen serve theirs', { timeout: 40_000 }, async () => {
  const b = await scrapeCommand(['beacon', '--listen', '127.0.0.1:0'])
  assert.equal(parseExposition(b.text).value('pilot_tun_beacon_received_total', { type: 'discover' }), 0)
  assert.equal(b.code, 0)
  assert.equal(await portOpen(b.port), false)
  const dir = mkdtempSync(join(tmpdir(), 'pilot-metrics-cli-'))
  try {
    const r = await scrapeCommand(['rendezvous', '--registry-listen', '127.0.0.1:0', '--beacon-listen', '127.0.0.1:0', '--store', join(dir, 'r.db')])
    const m = parseExposition(r.text)
    assert.equal(m.value('pilot_tun_beacon_nodes'), 0)
    assert.equal(m.value('pilot_tun_registry_server_connections'), 0)
    assert.equal(r.code, 0)
    assert.equal(await portOpen(r.port), false)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test('a bad --metrics-listen is PT_CONFIG_INVALID naming the flag; a taken port is PT_METRICS_LISTEN_FAILED, exit 1', async () => {
  const bad = run('beacon', '--listen', '127.0.0.1:0', '--metrics-listen', 'nonsense')
  assert.equal(bad.code, 1)
  assert.match(bad.stderr, /--metrics-listen.*\[PT_CONFIG_INVALID\]/)
  // up refuses it before it takes the control socket or starts anything.
  const badUp = run('up', '--registry', '127.0.0.1:9000', '--control-socket', '/nonexistent-dir/control.sock', '--metrics-listen', '1.2.3.4')
  assert.equal(badUp.code, 1)
  assert.match(badUp.stderr, /--metrics-listen "1\.2\.3\.4": no port.*\[PT_CONFIG_INVALID\]/)

  const holder = createServer()
  await new Promise<void>((done) => holder.listen(0, '127.0.0.1', done))
  const port = (holder.address() as AddressInfo).port
  const dir = mkdtempSync(join(tmpdir(), 'pilot-metrics-cli-'))
  try {
    // spawnSync would block this process, and with it the holder's port: run it asynchronously.
    const child = spawn(process.execPath, [bin, 'registry', '--listen', '127.0.0.1:0', '--store', join(dir, 'r.db'), '--metrics-listen', `127.0.0.1:${port}`, '--log-level', 'error'], {
      stdio: ['ignore', 'ignore', 'pipe'],
    })
    let stderr = ''
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c))
    const code = await new Promise<number | null>((done) => child.once('exit', done))
    assert.equal(code, 1, stderr)
    assert.match(stderr, /PT_METRICS_LISTEN_FAILED/)
    assert.match(stderr, new RegExp(`127\\.0\\.0\\.1:${port}: address already in use`))
    assert.match(stderr, /hint: another process holds this port/)
  } finally {
    await new Promise<void>((done) => holder.close(() => done()))
    rmSync(dir, { recursive: true, force: true })
  }
})

test('up: --metrics-listen and the config key metrics-listen (off by default; the flag wins; bad text refused)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'pilot-metrics-up-'))
  try {
    const none = join(dir, 'none.json')
    writeFileSync(none, JSON.stringify({ registry: '127.0.0.1:9000' }))
    const config = join(dir, 'config.json')
    writeFileSync(config, JSON.stringify({ registry: '127.0.0.1:9000', 'metrics-listen': '127.0.0.1:9101' }))
    assert.equal((await resolveUpSettings({ config: none })).metricsListen, null)
    assert.equal((await resolveUpSettings({ config })).metricsListen, '127.0.0.1:9101')
    assert.equal((await resolveUpSettings({ config, 'metrics-listen': '[::1]:9102' })).metricsListen, '[::1]:9102')
    await assert.rejects(
      resolveUpSettings({ config: none, 'metrics-listen': '9101' }),
      (e: unknown) => e instanceof PilotError && e.code === 'PT_CONFIG_INVALID' && e.message.includes('--metrics-listen'),
    )
    writeFileSync(config, JSON.stringify({ registry: '127.0.0.1:9000', 'metrics-listen': 9101 }))
    await assert.rejects(resolveUpSettings({ config }), (e: unknown) => e instanceof PilotError && e.code === 'PT_CONFIG_INVALID' && e.message.includes('"metrics-listen"'))
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})
