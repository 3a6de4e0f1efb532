/** `pilot-tun registry`: listen-address parsing, startRegistry, and a clean stop on SIGTERM. */
import { after, test } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { ConfigError } from '../../src/errors.js'
import { parseListenAddress, registryCommand, startRegistry } from '../../src/cli/commands/registry.js'
import { testClient, leakedHandles } from './helpers.js'

test('--listen accepts HOST:PORT, [IPv6]:PORT and :PORT; refuses the rest', () => {
  assert.deepEqual(parseListenAddress('0.0.0.0:9000'), { host: '0.0.0.0', port: 9000 })
  assert.deepEqual(parseListenAddress('[::]:9000'), { host: '::', port: 9000 })
  assert.deepEqual(parseListenAddress(':9100'), { host: '0.0.0.0', port: 9100 })
  for (const bad of ['9000', 'host:', '1.2.3.4:70000', 'example.com:9000', '[::1]:x']) {
    assert.throws(() => parseListenAddress(bad), ConfigError, bad)
  }
})

test('startRegistry creates the store directory, serves, and closes server then store', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'pilot-registry-cli-'))
  try {
    const storePath = path.join(dir, 'nested', 'registry.db')
    const registry = await startRegistry({ host: '127.0.0.1', port: 0, storePath })
    const client = testClient(registry.address.port)
    try {
      assert.equal((await client.register({ listenAddr: ':1' })).nodeId, 1)
    } finally {
      client.close()
      await registry.close()
      await registry.close() // idempotent
    }
    assert.ok(existsSync(storePath))
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test('the registry command runs until SIGTERM and then shuts down cleanly', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'pilot-registry-cli-'))
  try {
    const storePath = path.join(dir, 'registry.db')
    const running = registryCommand.handler({
      listen: '127.0.0.1:0',
      store: storePath,
      'log-level': 'error',
      'log-format': 'json',
      _: [],
      $0: 'pilot-tun',
    } as never) as Promise<void>
    for (let i = 0; i < 100 && process.listenerCount('SIGTERM') === 0; i++) await new Promise((r) => setTimeout(r, 10))
    assert.equal(process.listenerCount('SIGTERM'), 1, 'the command waits for a signal')
    process.emit('SIGTERM', 'SIGTERM')
    await running
    assert.equal(process.listenerCount('SIGTERM'), 0)
    assert.ok(existsSync(storePath))
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

after(async () => {
  assert.deepEqual(await leakedHandles(), [], 'sockets, servers or timers left open')
})
