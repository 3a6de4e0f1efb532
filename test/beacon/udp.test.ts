// The beacon on real UDP sockets (127.0.0.1, ephemeral ports), and the `beacon` command.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { startBeacon, parseListenAddress } from '../../src/cli/commands/beacon.js'
import { UdpBind } from '../../src/tunnel/bind.js'
import { Client, hex } from './helpers.js'

const FRAME = Buffer.from('50494c5300000001a1b2c3d40000000000000001cafe', 'hex')

async function udpClient(beacon: { host: string; port: number }): Promise<Client> {
  return new Client(await UdpBind.open({ host: '127.0.0.1' }), beacon)
}

/** Open UDP sockets; libuv finishes closing a handle a couple of loop turns after dgram's close callback. */
async function openUdpSockets(): Promise<number> {
  for (let i = 0; i < 3; i++) await new Promise((r) => setImmediate(r))
  return process.getActiveResourcesInfo().filter((r) => r === 'UDPWrap').length
}

function portHex(port: number): string {
  return port.toString(16).padStart(4, '0')
}

test('UDP: Discover reply carries the observed loopback endpoint; relay is byte-exact', async () => {
  const before = await openUdpSockets()
  const beacon = await startBeacon({ listen: '127.0.0.1:0' })
  const a = await udpClient(beacon.local)
  const b = await udpClient(beacon.local)
  try {
    a.discover(1)
    b.discover(2)
    await a.waitFor(1)
    await b.waitFor(1)
    assert.deepEqual(a.take(), [hex('02 04 7f000001', portHex(a.port))])
    assert.deepEqual(b.take(), [hex('02 04 7f000001', portHex(b.port))])

    a.punch(1, 2)
    await a.waitFor(1)
    await b.waitFor(1)
    assert.deepEqual(a.take(), [hex('04 04 7f000001', portHex(b.port))])
    assert.deepEqual(b.take(), [hex('04 04 7f000001', portHex(a.port))])

    a.relay(1, 2, FRAME)
    await b.waitFor(1)
    assert.deepEqual(b.take(), [hex('06 00000001', FRAME)])
    assert.equal(beacon.server.stats().relayedPackets, 1)
  } finally {
    await a.bind.close()
    await b.bind.close()
    await beacon.close()
  }
  assert.equal(await openUdpSockets(), before, 'a UDP socket was left open')
})

test('UDP: after a beacon restart on the same port, the next Discover restores relaying', async () => {
  let beacon = await startBeacon({ listen: '127.0.0.1:0' })
  const port = beacon.local.port
  const a = await udpClient(beacon.local)
  const b = await udpClient(beacon.local)
  try {
    a.discover(1)
    b.discover(2)
    await a.waitFor(1)
    await b.waitFor(1)
    a.take()
    b.take()

    await beacon.close()
    beacon = await startBeacon({ listen: { host: '127.0.0.1', port } })
    a.relay(1, 2, FRAME) // the new beacon knows nobody yet
    a.discover(1) // round trip: by the time this is answered, the relay was handled
    await a.waitFor(1)
    a.take()
    assert.deepEqual(b.take(), [])
    assert.equal(beacon.server.stats().dropped['relay-unknown-sender'], 1)

    b.discover(2) // the daemons' periodic refresh
    await b.waitFor(1)
    b.take()
    a.relay(1, 2, FRAME)
    await b.waitFor(1)
    assert.deepEqual(b.take(), [hex('06 00000001', FRAME)])
  } finally {
    await a.bind.close()
    await b.bind.close()
    await beacon.close()
  }
})

test('startBeacon on a taken port fails with PT_BEACON_LISTEN_FAILED', async () => {
  const first = await startBeacon({ listen: '127.0.0.1:0' })
  try {
    await assert.rejects(startBeacon({ listen: first.local }), (err: Error & { code?: string; hint?: string }) => {
      assert.equal(err.code, 'PT_BEACON_LISTEN_FAILED')
      assert.match(err.message, /already in use/)
      assert.ok(err.hint)
      return true
    })
    await assert.rejects(startBeacon({ listen: '127.0.0.1:0', limits: { maxNodes: -1 } }), { code: 'PT_BEACON_INVALID_LIMITS' })
  } finally {
    await first.close()
  }
})

test('--listen parsing', () => {
  assert.deepEqual(parseListenAddress('0.0.0.0:9001'), { host: '0.0.0.0', port: 9001 })
  assert.deepEqual(parseListenAddress('[::]:9001'), { host: '::', port: 9001 })
  assert.deepEqual(parseListenAddress(':9001'), { host: '0.0.0.0', port: 9001 })
  assert.deepEqual(parseListenAddress('9001'), { host: '0.0.0.0', port: 9001 })
  for (const bad of ['localhost:9001', '1.2.3.4', '1.2.3.4:70000', '::1:9001', '1.2.3.4:-1', '']) {
    assert.throws(() => parseListenAddress(bad), { code: 'PT_BEACON_INVALID_LISTEN' }, bad)
  }
})

// The command in a child process: "listening on", answers, SIGTERM → exit 0; taken port → clear error, exit 1.
const HARNESS = `
import yargs from 'yargs'
import { beaconCommand } from ${JSON.stringify(new URL('../../src/cli/commands/beacon.js', import.meta.url).href)}
try {
  await yargs(process.argv.slice(1)).command(beaconCommand).strict().fail((m, e) => { throw e ?? new Error(m) }).parseAsync()
} catch (err) {
  process.stderr.write('pilot-tun: ' + err.message + ' [' + err.code + ']\\n')
  process.exitCode = 1
}
`

function runCommand(args: string[]): { child: ReturnType<typeof spawn>; stderr: () => string; exited: Promise<number | null> } {
  const child = spawn(process.execPath, ['--input-type=module', '-e', HARNESS, '--', ...args], {
    cwd: fileURLToPath(new URL('../../..', import.meta.url)),
    stdio: ['ignore', 'ignore', 'pipe'],
  })
  let err = ''
  child.stderr!.on('data', (d: Buffer) => { err += d.toString() })
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)))
  return { child, stderr: () => err, exited }
}

async function until(cond: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!cond()) {
    if (Date.now() > deadline) throw new Error('timed out')
    await new Promise((r) => setTimeout(r, 20))
  }
}

test('beacon command: logs "listening on", serves, exits 0 on SIGTERM; a taken port exits non-zero', async () => {
  const holder = await UdpBind.open({ host: '127.0.0.1' })
  const taken = runCommand(['beacon', '--listen', `127.0.0.1:${holder.local.port}`])
  const run = runCommand(['beacon', '--listen', '127.0.0.1:0', '--log-level', 'debug'])
  try {
    assert.equal(await taken.exited, 1)
    assert.match(taken.stderr(), /cannot listen on UDP 127\.0\.0\.1:\d+: address already in use \[PT_BEACON_LISTEN_FAILED\]/)

    await until(() => /listening on udp 127\.0\.0\.1:(\d+)/.test(run.stderr()), 5000)
    const port = Number(/listening on udp 127\.0\.0\.1:(\d+)/.exec(run.stderr())![1])
    const c = new Client(holder, { host: '127.0.0.1', port })
    c.discover(7)
    await c.waitFor(1)
    assert.deepEqual(c.take(), [hex('02 04 7f000001', portHex(holder.local.port))])

    run.child.kill('SIGTERM')
    assert.equal(await run.exited, 0)
    assert.match(run.stderr(), /SIGTERM: shutting down/)
  } finally {
    taken.child.kill()
    run.child.kill()
    await holder.close()
  }
})
