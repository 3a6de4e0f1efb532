// TrustService against a flood of trust requests (relayed by the registry):
// the pending table stays within its cap, refusals are counted, and a node
// that asks again renews its entry.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Identity } from '../../src/crypto/identity.js'
import type { RegistryClient } from '../../src/registry/client.js'
import type { RegistryDirectory } from '../../src/daemon/registry-session.js'
import { TrustService } from '../../src/daemon/trust-service.js'
import { TrustStore } from '../../src/daemon/trust-store.js'
import { MAX_PENDING_TRUST_REQUESTS } from '../../src/daemon/limits.js'

const client = {
  respondHandshake: async () => ({}),
  reportTrust: async () => ({}),
  requestHandshake: async () => ({}),
  revokeTrust: async () => ({}),
} as unknown as RegistryClient
const directory = { lookup: async () => null, lookupKey: async () => null, invalidate: () => {} } as unknown as RegistryDirectory

test('1,000 relayed trust requests from distinct nodes: the cap is kept, the rest refused and counted', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'pilot-trust-svc-'))
  try {
    const store = await TrustStore.open(dir)
    const trust = new TrustService({
      store,
      identity: Identity.generate(),
      client,
      directory,
      selfId: () => 1,
      sendDirect: () => Promise.reject(new Error('unused')),
      onTrustChanged: () => {},
      autoAccept: false,
    })
    const requests = Array.from({ length: 1000 }, (_, i) => ({ fromNodeId: 100 + i, justification: `spam ${i}`, timestamp: 0 }))
    await trust.handleInbox({ requests, responses: [] })
    assert.equal(store.listPending().length, MAX_PENDING_TRUST_REQUESTS)
    assert.equal(trust.stats().pendingRefused, 1000 - MAX_PENDING_TRUST_REQUESTS)
    // A node already waiting may ask again: its entry is renewed, not added.
    await trust.handleInbox({ requests: [{ fromNodeId: 100, justification: 'second try', timestamp: 0 }], responses: [] })
    assert.equal(store.listPending().length, MAX_PENDING_TRUST_REQUESTS)
    assert.equal(store.pendingEntry(100)?.justification, 'second try')
    assert.equal(trust.stats().pendingRefused, 1000 - MAX_PENDING_TRUST_REQUESTS)
    await store.flush()
    const file = JSON.parse(await readFile(join(dir, 'trust.json'), 'utf8'))
    assert.equal(file.pending.length, MAX_PENDING_TRUST_REQUESTS)
    await trust.close(100)
    await store.close()
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
})

test('every trust decision reaches onDecision (the local trust log): auto-accept, approve, reject, revoke, mutual, request, refused', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'pilot-trust-svc-'))
  try {
    const store = await TrustStore.open(dir)
    const decisions: string[] = []
    const make = (autoAccept: boolean): TrustService =>
      new TrustService({
        store,
        identity: Identity.generate(),
        client,
        directory,
        selfId: () => 1,
        sendDirect: () => Promise.resolve(),
        onTrustChanged: () => {},
        autoAccept,
        onDecision: (action, node, detail) => decisions.push(`${action} ${node} ${detail}`),
      })
    const auto = make(true)
    await auto.handleInbox({ requests: [{ fromNodeId: 10, justification: 'hi', timestamp: 0 }], responses: [] })
    assert.deepEqual(decisions, ['auto-accept 10 '])
    const trust = make(false)
    await trust.handleInbox({ requests: [{ fromNodeId: 11, justification: 'a', timestamp: 0 }, { fromNodeId: 12, justification: 'b', timestamp: 0 }], responses: [] })
    assert.equal(decisions.length, 1, 'a request waiting for approval is no decision yet')
    await trust.approve(11)
    await trust.reject(12, 'no thanks')
    await trust.revoke(11, 'done')
    await trust.request(13, 'please')
    await trust.handleInbox({ requests: [{ fromNodeId: 13, justification: 'you too', timestamp: 0 }], responses: [] })
    assert.equal(await trust.handleDirect(14, new Uint8Array([1, 2, 3])) !== null, true)
    assert.deepEqual(decisions.slice(1, 6), ['approve 11 ', 'reject 12 no thanks', 'revoke 11 done', 'request 13 please', 'mutual 13 both sides asked'])
    assert.match(decisions[6] ?? '', /^refused 14 \S+/)
    await auto.close(100)
    await trust.close(100)
    await store.close()
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
})
