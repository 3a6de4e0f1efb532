// Registry outages and restarts, and hostile trust-handshake messages on port 444.
import { after, test } from 'node:test'
import assert from 'node:assert/strict'
import { Identity } from '../../src/crypto/identity.js'
import { RegistryClient } from '../../src/registry/client.js'
import { formatAddress } from '../../src/protocol/address.js'
import { encodeHandshakeMessage, handshakeChallenge } from '../../src/daemon/trust-service.js'
import type { Daemon } from '../../src/daemon/daemon.js'
import { World, activeResources } from './world.js'
import { waitFor } from './helpers.js'

async function trustPair(a: Daemon, b: Daemon): Promise<void> {
  await a.trustRequest(formatAddress(b.address), 'test')
  await waitFor(async () => (await a.trustList()).trusted.some((t) => t.node_id === b.nodeId), 'a trusts b', 8_000)
  await waitFor(async () => (await b.trustList()).trusted.some((t) => t.node_id === a.nodeId), 'b trusts a', 8_000)
}

test('registry down: tunnels keep working; registry restarted on the same file keeps nodes and trust pairs, daemons re-register', async () => {
  const w = await World.create()
  try {
    const a = await w.daemon('a', { hostname: 'alpha' })
    const b = await w.daemon('b', { hostname: 'bravo', autoAccept: true })
    await trustPair(a, b)
    await a.ping('bravo', 5_000)
    const regA = a.stats().registry.registrations
    const regB = b.stats().registry.registrations

    await w.restartRegistry(0, async () => {
      await waitFor(() => a.stats().registry.heartbeatsFailed >= 3 && b.stats().registry.heartbeatsFailed >= 3, 'three failed heartbeats', 8_000)
      assert.equal((await a.status()).registry.connected, false)
      // Existing tunnels and sessions do not need the registry.
      const r = await a.ping(formatAddress(b.address), 5_000)
      assert.ok(r.rtt_ms >= 0)
    })
    await waitFor(
      () => a.stats().registry.registrations > regA && b.stats().registry.registrations > regB,
      're-registration after the restart',
      8_000,
    )
    assert.equal((await a.status()).registry.connected, true)
    // Same node IDs, hostnames re-applied, the trust pair still there (resolve is allowed).
    assert.equal((await b.resolve('alpha')).node_id, a.nodeId)
    assert.equal((await a.resolve('bravo')).node_id, b.nodeId)
    const asA = new RegistryClient({ host: '127.0.0.1', port: w.registry.address.port, identity: a.identity })
    try {
      const r = await asA.resolve(a.nodeId, b.nodeId)
      assert.equal(r.nodeId, b.nodeId)
    } finally {
      asA.close()
    }
    await a.ping('bravo', 5_000)
  } finally {
    await w.close()
  }
})

/**
 * c opens a stream to b's port 444 and sends raw bytes, as a hostile peer would.
 * It first waits until b holds no earlier stream of c open: port 444 admits at
 * most 4 open streams per node, and on a loaded machine the previous steps'
 * streams can still be closing when the next step dials.
 */
async function sendRaw(c: Daemon, b: Daemon, bytes: Buffer): Promise<void> {
  await waitFor(() => b.stats().handshake.open === 0, "b's earlier port-444 streams closed")
  const s = await c.openStream(b.nodeId, 444)
  s.on('error', () => {})
  s.resume()
  s.end(bytes)
}

function forged(fields: Record<string, unknown>): Buffer {
  return Buffer.from(JSON.stringify(fields))
}

test('hostile handshakes: unsolicited accept, foreign keys, no signature, impersonation, replay, stale time — none creates trust', async () => {
  const w = await World.create({ timing: { heartbeatMs: 60_000 } })
  try {
    const a = await w.daemon('a')
    const b = await w.daemon('b')
    const c = await w.daemon('c')
    const refused = (reason: string): number => (b.stats().trust.refused as Record<string, number>)[reason] ?? 0
    const now = Math.floor(Date.now() / 1000)
    const other = Identity.generate()

    // 1. A correctly signed but unsolicited accept.
    await sendRaw(c, b, encodeHandshakeMessage(c.identity, c.nodeId, b.nodeId, 'handshake_accept'))
    await waitFor(() => refused('unsolicited-accept') === 1, 'unsolicited accept refused')

    // 2. Signed with a key that is not the registry's, carried in the message (Go would accept this).
    await sendRaw(
      c,
      b,
      forged({
        type: 'handshake_request',
        node_id: c.nodeId,
        public_key: Buffer.from(other.publicKey).toString('base64'),
        justification: 'x',
        signature: other.signChallenge(handshakeChallenge(c.nodeId, b.nodeId)),
        reason: '',
        timestamp: now,
      }),
    )
    await waitFor(() => refused('key-mismatch') === 1, 'foreign key refused')

    // 3. Foreign signature without a public_key (Go would skip verification).
    await sendRaw(
      c,
      b,
      forged({ type: 'handshake_request', node_id: c.nodeId, public_key: '', justification: 'x', signature: other.signChallenge(handshakeChallenge(c.nodeId, b.nodeId)), reason: '', timestamp: now }),
    )
    await waitFor(() => refused('bad-signature') === 1, 'foreign signature refused')

    // 4. No signature at all.
    await sendRaw(c, b, forged({ type: 'handshake_request', node_id: c.nodeId, public_key: '', justification: 'x', signature: '', reason: '', timestamp: now }))
    await waitFor(() => refused('no-signature') === 1, 'unsigned refused')

    // 5. c claims to be a (validly signed by a, but it arrives on c's authenticated stream).
    await sendRaw(c, b, encodeHandshakeMessage(a.identity, a.nodeId, b.nodeId, 'handshake_request'))
    await waitFor(() => refused('sender-mismatch') === 1, 'impersonation refused')

    // 6. Too old.
    await sendRaw(c, b, encodeHandshakeMessage(c.identity, c.nodeId, b.nodeId, 'handshake_request', { timestampS: now - 3600 }))
    await waitFor(() => refused('too-old') === 1, 'stale message refused')

    assert.equal((await b.trustList()).trusted.length, 0)
    assert.equal((await b.trustList()).pending.length, 0)

    // 7. A valid request is accepted once (pending), its replay is refused.
    const valid = encodeHandshakeMessage(c.identity, c.nodeId, b.nodeId, 'handshake_request', { justification: 'hi' })
    await sendRaw(c, b, valid)
    await waitFor(async () => (await b.trustList()).pending.length === 1, 'valid request pending')
    await sendRaw(c, b, valid)
    await waitFor(() => refused('replay') === 1, 'replay refused')
    assert.equal((await b.trustList()).trusted.length, 0)
    assert.equal(b.stats().driver.handlerErrors, 0)
    assert.equal(b.stats().handshake.refusedPerNode, 0)
  } finally {
    await w.close()
  }
})

const baseline = activeResources().length
after(async () => {
  // node --test must exit by itself: every timer, socket and server is gone.
  await waitFor(() => activeResources().length <= baseline, `resources released (${activeResources().join(', ')})`)
})
