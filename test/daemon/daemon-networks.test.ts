// The daemon's network wiring (issue 13) with a real registry in this process
// and a fake NetworkRegistry: `daemon.networks` is refreshed from lookup(self)
// and network_info, `daemon.networkOps` signs as this node and waits for the
// view, and the trust decisions of a real trust exchange land in both nodes'
// local trust logs, which verify. Nothing is left running after close.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { NetworkRegistry } from '../../src/daemon/network-ops.js'
import type { NetworkInfo } from '../../src/registry/network-types.js'
import { World, activeResources } from './world.js'
import { waitFor } from './helpers.js'

test('daemon.networks and networkOps are wired; trust decisions go to <state dir>/trust-log.jsonl and verify', async () => {
  const before = activeResources()
  const w = await World.create({ timing: { heartbeatMs: 60_000 } })
  try {
    const calls: unknown[][] = []
    const fake = {
      async joinNetwork(nodeId: number, networkId: number) {
        calls.push(['joinNetwork', nodeId, networkId])
        return { networkId, address: `${networkId}:0000.0000.0001` }
      },
      async networkInfo(nodeId: number, networkId: number): Promise<NetworkInfo> {
        calls.push(['networkInfo', nodeId, networkId])
        throw new Error('unused: the registry lists no networks for us yet')
      },
    } as unknown as NetworkRegistry
    const a = await w.daemon('a', { hostname: 'alpha', networkRegistry: fake, networkRefreshMs: 50 })
    const b = await w.daemon('b', { hostname: 'bravo' })
    await waitFor(() => a.networks.stats().refreshes >= 2, 'periodic refreshes (lookup of ourselves)')
    assert.deepEqual(a.networks.joined(), [], 'on the backbone only')
    assert.equal(a.networks.stats().refreshErrors, 0, 'lookup(self) answered')
    const refreshes = a.networks.stats().refreshes
    assert.deepEqual(await a.networkOps.join({ network: '7' }), { network_id: 7, address: '7:0000.0000.0001' })
    assert.deepEqual(calls, [['joinNetwork', a.nodeId, 7]], 'signed as this node')
    assert.ok(a.networks.stats().refreshes > refreshes, 'join returned after a refresh')

    await a.trustRequest('bravo', 'let me in')
    await waitFor(async () => (await b.trustList()).pending.length === 1, 'pending at b')
    await b.trustApprove('alpha')
    await waitFor(async () => (await a.trustList()).trusted.length === 1, 'a trusts b')
    await waitFor(async () => (await a.networkOps.auditList({ local: true })).entries.length >= 2, 'a logged its decisions')
    const la = (await a.networkOps.auditList({ local: true })).entries as Array<{ action: string; peer: number; node: number }>
    assert.deepEqual(la.map((e) => [e.action, e.peer, e.node]), [['request', b.nodeId, a.nodeId], ['mutual', b.nodeId, a.nodeId]])
    const lb = (await b.networkOps.auditList({ local: true })).entries as Array<{ action: string; peer: number }>
    assert.deepEqual(lb.map((e) => [e.action, e.peer]), [['approve', a.nodeId]])
    await b.trustRevoke('alpha')
    assert.equal((await b.networkOps.auditVerify({ local: true })).ok, true)
    const text = await readFile(join(w.dir, 'b', 'trust-log.jsonl'), 'utf8')
    assert.equal(text.trim().split('\n').length, 2, 'approve, revoke')
  } finally {
    await w.close()
  }
  await waitFor(() => activeResources().length <= before.length, 'resources released (no refresh timer left)')
})
