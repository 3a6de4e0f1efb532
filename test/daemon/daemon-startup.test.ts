// Daemon.start: option text refused before anything is bound or registered,
// and relayed trust requests that reach the registry while a node is still
// starting are handled, not dropped.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { Identity } from '../../src/crypto/identity.js'
import { saveIdentityFile } from '../../src/daemon/identity-file.js'
import type { DaemonOptions } from '../../src/daemon/options.js'
import { formatAddress } from '../../src/protocol/address.js'
import { RegistryClient } from '../../src/registry/client.js'
import { World, activeResources } from './world.js'
import { waitFor } from './helpers.js'

test('bad --registry, --beacon and --listen text is PT_CONFIG_INVALID naming the option; nothing is left open', async () => {
  const w = await World.create({ beacon: false })
  const before = activeResources().length
  try {
    const cases: Array<[Partial<DaemonOptions>, RegExp]> = [
      [{ registry: '127.0.0.1' }, /^--registry "127\.0\.0\.1": no port/],
      [{ registry: '::1:9000' }, /^--registry "::1:9000": write an IPv6 address in brackets: \[::1\]:9000/],
      [{ registry: '127.0.0.1:0' }, /^--registry .*1\.\.65535/],
      [{ beacon: 'beacon host:9001' }, /^--beacon "beacon host:9001": .*not a host name/],
      [{ listen: '4000' }, /^--listen "4000": no port/],
      [{ listen: 'localhost:4000' }, /^--listen "localhost:4000": .*not an IP address/],
    ]
    for (const [opts, message] of cases) {
      await assert.rejects(
        w.daemon('bad', opts),
        (err: Error & { code?: string; hint?: string }) => err.code === 'PT_CONFIG_INVALID' && message.test(err.message) && /for example/.test(err.hint ?? ''),
        JSON.stringify(opts),
      )
    }
    assert.ok(activeResources().length <= before, 'no socket or timer was opened')
  } finally {
    await w.close()
  }
})

test('a bad or conflicting --prefix is PT_CONFIG_INVALID before the state directory is even created', async () => {
  const w = await World.create({ beacon: false })
  try {
    const cases: Array<[Partial<DaemonOptions>, RegExp]> = [
      [{ prefix: 'fd12::/64' }, /^--prefix/],
      [{ prefix: 'fd12:3456:789a::/48', tun: { prefix: 'fd50:494c:4f54::/48' } }, /differs/],
    ]
    for (const [opts, message] of cases) {
      await assert.rejects(
        w.daemon('bad-prefix', opts),
        (err: Error & { code?: string }) => err.code === 'PT_CONFIG_INVALID' && message.test(err.message),
        JSON.stringify(opts),
      )
      assert.equal(existsSync(join(w.dir, 'bad-prefix')), false, 'nothing written for a refused option')
    }
  } finally {
    await w.close()
  }
})

test('a trust request relayed before the node came up is handled at its first poll (nothing dropped during start-up)', async () => {
  const w = await World.create({ beacon: false })
  try {
    // Node A's key is registered (a previous run that did not deregister), but no daemon runs yet.
    const identity = Identity.generate()
    await saveIdentityFile(join(w.dir, 'a', 'identity.json'), identity)
    const raw = new RegistryClient({ host: '127.0.0.1', port: w.registry.address.port, identity, timeoutMs: 2_000 })
    const { nodeId: aId } = await raw.register({ listenAddr: '127.0.0.1:9' })
    raw.close()

    const b = await w.daemon('b')
    assert.equal((await b.trustRequest(formatAddress({ network: 0, node: aId }), 'while you were away')).status, 'sent')

    // A starts with the same key (same node ID); its very first poll carries B's request.
    const a = await w.daemon('a', { autoAccept: true })
    assert.equal(a.nodeId, aId)
    await waitFor(() => a.stats().trust.relayedRequests === 1, 'a handled the relayed request', 5_000)
    await waitFor(async () => (await a.trustList()).trusted.some((t) => t.node_id === b.nodeId), 'a trusts b (auto-accept)')
    await waitFor(async () => (await b.trustList()).trusted.some((t) => t.node_id === aId), 'b learns of the accept', 8_000)
  } finally {
    await w.close()
  }
})
