// A daemon on a registry over pinned TLS (issue 15): it registers and shows
// the pin in status; without a pin, with a wrong one, or in plaintext on a
// TLS-only registry it does not start, each with its own error.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { certificatePin, createSelfSignedCertificate } from '../../src/crypto/x509.js'
import { startRegistry } from '../../src/registry/start.js'
import { World } from './world.js'

async function tlsWorld(): Promise<{ w: World; pin: string }> {
  const w = await World.create({ beacon: false })
  const port = w.registry.address.port
  await w.registry.close()
  const made = createSelfSignedCertificate()
  w.registry = await startRegistry({ host: '127.0.0.1', port, storePath: join(w.dir, 'registry.db'), tls: { certPem: made.certPem, keyPem: made.keyPem, only: true } })
  return { w, pin: certificatePin(made.der) }
}

test('a daemon with --registry-tls and the right pin registers over TLS; status shows the pin', async () => {
  const { w, pin } = await tlsWorld()
  try {
    const a = await w.daemon('a', { registryTls: true, registryFingerprint: pin })
    const b = await w.daemon('b', { registryTls: true, registryFingerprint: pin })
    const s = await a.status()
    assert.equal(s.registry.tls_pin, pin)
    assert.equal(s.registry.connected, true)
    assert.notEqual(s.node_id, (await b.status()).node_id)
    assert.equal(w.registry.server.tlsStats()!.tlsConnections >= 2, true)
    assert.equal(w.registry.server.tlsStats()!.plaintextRefused, 0)
  } finally {
    await w.close()
  }
})

test('no pin, a wrong pin, or plaintext on a TLS-only registry: the daemon does not start, and says why', async () => {
  const { w, pin } = await tlsWorld()
  try {
    await assert.rejects(w.daemon('nopin', { registryTls: true }), (e: Error & { code?: string }) => e.code === 'PT_CONFIG_INVALID' && /--registry-fingerprint/.test(e.message))
    const wrong = '0'.repeat(64)
    await assert.rejects(
      w.daemon('wrong', { registryTls: true, registryFingerprint: wrong }),
      (e: Error & { code?: string; hint?: string }) => e.code === 'PT_REGISTRY_TLS_PIN' && (e.hint ?? '').includes(pin),
    )
    await assert.rejects(w.daemon('plain'), (e: Error & { code?: string }) => e.code === 'PT_REGISTRY_UNREACHABLE')
    assert.equal(w.registry.server.stats().requests, 0, 'none of them got a request in')
  } finally {
    await w.close()
  }
})

test('a plaintext daemon shows tls_pin null', async () => {
  const w = await World.create({ beacon: false })
  try {
    const d = await w.daemon('p')
    assert.equal((await d.status()).registry.tls_pin, null)
  } finally {
    await w.close()
  }
})
