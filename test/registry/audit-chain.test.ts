/** The audit chains (issue 13): what the registry appends, and verifyAuditChain finding the first altered entry. */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { auditEntryHash, verifyAuditChain } from '../../src/registry/audit-chain.js'
import { AUDIT_GENESIS, type AuditEntry } from '../../src/registry/network-types.js'
import { leakedHandles } from './helpers.js'
import { ADMIN_TOKEN, withNetworkBench, type NetworkBench, type TestNode } from './network-helpers.js'

/** A network chain with every network action: create, invite, join (x3), role, policy, remove, leave. */
async function buildChain(b: NetworkBench): Promise<void> {
  const [o, m, x, y] = b.nodes as [TestNode, TestNode, TestNode, TestNode]
  await o.client.createNetwork(o.nodeId, { name: 'lab', joinRule: 'invite', policy: { allowedPorts: [80] } })
  await o.client.createInvite(o.nodeId, 1, m.nodeId, 600)
  await m.client.joinNetwork(m.nodeId, 1)
  await o.client.setMemberRole(o.nodeId, 1, m.nodeId, 'admin')
  await o.client.setNetworkPolicy(o.nodeId, 1, { allowedPorts: [80, 443], maxMembers: 8 })
  await m.client.createInvite(m.nodeId, 1, x.nodeId, 600)
  await x.client.joinNetwork(x.nodeId, 1)
  const inv = await o.client.createInvite(o.nodeId, 1, y.nodeId, 600)
  await y.client.joinNetwork(y.nodeId, 1, { invite: inv })
  await m.client.removeMember(m.nodeId, 1, x.nodeId)
  await y.client.leaveNetwork(y.nodeId, 1)
}

const COLUMNS: Array<[column: string, alter: (v: unknown, other: AuditEntry) => unknown]> = [
  ['time', (v) => (v as number) + 1],
  ['actor', (v) => (v as number) + 1],
  ['actor_key', (_v, other) => other.actorKey === _v ? 'AAAA' + String(_v).slice(4) : other.actorKey],
  ['action', (v) => (v === 'join' ? 'leave' : 'join')],
  ['subject', (v) => (v as number) + 1],
  ['detail', (v) => `${String(v)}x`],
  ['signed', (v) => String(v).replace(/.$/, (c) => (c === '0' ? '1' : '0'))],
  ['signature', (_v, other) => other.signature],
  ['prev', (v) => String(v).replace(/^./, (c) => (c === 'a' ? 'b' : 'a'))],
  ['hash', (v) => String(v).replace(/^./, (c) => (c === 'a' ? 'b' : 'a'))],
]

test('a clean chain verifies; altering any single field of any one stored entry makes verifyAuditChain name that entry', async () => {
  await withNetworkBench(4, async (b) => {
    await buildChain(b)
    const owner = b.nodes[0]!
    const chain = await owner.client.auditLog(owner.nodeId, 1)
    assert.deepEqual(chain.map((e) => e.action), ['create', 'invite', 'join', 'role', 'policy', 'invite', 'join', 'invite', 'join', 'remove', 'leave'])
    assert.equal(chain[0]!.prev, AUDIT_GENESIS)
    assert.deepEqual(verifyAuditChain(chain), { ok: true, entries: 11, head: chain[10]!.hash })

    const db = b.openDb()
    try {
      for (const entry of chain) {
        const other = chain[entry.seq === 1 ? 1 : 0]!
        for (const [column, alter] of COLUMNS) {
          const original = db.prepare(`SELECT ${column} AS v FROM audit_log WHERE network_id = 1 AND seq = ?`).get(entry.seq) as { v: unknown }
          db.prepare(`UPDATE audit_log SET ${column} = ? WHERE network_id = 1 AND seq = ?`).run(alter(original.v, other), entry.seq)
          const result = verifyAuditChain(await owner.client.auditLog(owner.nodeId, 1))
          assert.equal(result.ok, false, `${column} of ${entry.seq}`)
          assert.equal(result.ok === false && result.firstBroken, entry.seq, `${column} of ${entry.seq}: ${JSON.stringify(result)}`)
          db.prepare(`UPDATE audit_log SET ${column} = ? WHERE network_id = 1 AND seq = ?`).run(original.v, entry.seq)
        }
      }
      assert.equal(verifyAuditChain(await owner.client.auditLog(owner.nodeId, 1)).ok, true)
      // A deleted entry: the next one is named (its seq no longer follows).
      db.prepare('DELETE FROM audit_log WHERE network_id = 1 AND seq = 4').run()
      const gap = verifyAuditChain(await owner.client.auditLog(owner.nodeId, 1))
      assert.equal(gap.ok === false && gap.firstBroken, 5)
    } finally {
      db.close()
    }
  })
})

test('a chain re-hashed after altering signed, detail or subject still fails: on the signature, or on what the signature covers', async () => {
  await withNetworkBench(4, async (b) => {
    await buildChain(b)
    const owner = b.nodes[0]!
    const chain = await owner.client.auditLog(owner.nodeId, 1)
    const rehash = (entries: AuditEntry[]): AuditEntry[] => {
      let prev = AUDIT_GENESIS
      return entries.map((e) => {
        const { hash: _old, ...rest } = { ...e, prev }
        const hash = auditEntryHash(rest)
        prev = hash
        return { ...rest, hash }
      })
    }
    const alterAt = (seq: number, change: Partial<AuditEntry>): AuditEntry[] => rehash(chain.map((e) => (e.seq === seq ? { ...e, ...change } : e)))
    assert.equal(verifyAuditChain(rehash(chain)).ok, true)

    // The policy entry (seq 5): claim other ports, in both detail and signed, and re-hash the rest.
    const policy = chain[4]!
    const forgedDetail = '{"allowed_ports":[22],"max_members":8,"members_resolve":true}'
    const forged = alterAt(5, { detail: forgedDetail, signed: policy.signed.replace(policy.detail, forgedDetail) })
    const r1 = verifyAuditChain(forged)
    assert.ok(r1.ok === false && r1.firstBroken === 5 && /signature/.test(r1.reason), JSON.stringify(r1))
    // Only the detail: signed no longer matches it.
    const r2 = verifyAuditChain(alterAt(5, { detail: forgedDetail }))
    assert.ok(r2.ok === false && r2.firstBroken === 5 && /signed text/.test(r2.reason), JSON.stringify(r2))
    // The join at seq 7 re-attributed to another subject, or another actor.
    const r3 = verifyAuditChain(alterAt(7, { subject: chain[6]!.subject + 1 }))
    assert.ok(r3.ok === false && r3.firstBroken === 7, JSON.stringify(r3))
    const r4 = verifyAuditChain(alterAt(7, { actor: 1 }))
    assert.ok(r4.ok === false && r4.firstBroken === 7, JSON.stringify(r4))
    // The invite at seq 2 with a longer expiry.
    const r5 = verifyAuditChain(alterAt(2, { detail: 'expires=9999999999' }))
    assert.ok(r5.ok === false && r5.firstBroken === 2, JSON.stringify(r5))
    // Entries of another chain mixed in, and an empty chain.
    const r6 = verifyAuditChain([chain[0]!, { ...chain[1]!, networkId: 2 }])
    assert.ok(r6.ok === false && r6.firstBroken === 2)
    assert.deepEqual(verifyAuditChain([]), { ok: true, entries: 0, head: AUDIT_GENESIS })
  })
})

test('trust chain 0: report_trust that adds a report or pair and revoke_trust are entries; a repeated report is not', async () => {
  await withNetworkBench(3, async (b) => {
    const [a, p, q] = b.nodes as [TestNode, TestNode, TestNode]
    await a.client.reportTrust(a.nodeId, p.nodeId)
    await a.client.reportTrust(a.nodeId, p.nodeId) // changes nothing
    await p.client.reportTrust(p.nodeId, a.nodeId) // completes the pair
    await q.client.reportTrust(q.nodeId, a.nodeId)
    await a.client.revokeTrust(a.nodeId, p.nodeId)
    await assert.rejects(a.client.revokeTrust(a.nodeId, p.nodeId)) // nothing left to revoke: no entry
    const chain = await a.client.auditLog(a.nodeId, 0, { adminToken: ADMIN_TOKEN })
    assert.deepEqual(chain.map((e) => [e.seq, e.action, e.actor, e.subject, e.detail, e.signed]), [
      [1, 'trust', a.nodeId, p.nodeId, 'report', `report_trust:${a.nodeId}:${p.nodeId}`],
      [2, 'trust', p.nodeId, a.nodeId, 'pair', `report_trust:${p.nodeId}:${a.nodeId}`],
      [3, 'trust', q.nodeId, a.nodeId, 'report', `report_trust:${q.nodeId}:${a.nodeId}`],
      [4, 'revoke', a.nodeId, p.nodeId, '', `revoke_trust:${a.nodeId}:${p.nodeId}`],
    ])
    assert.equal(chain[0]!.actorKey, Buffer.from(a.identity.publicKey).toString('base64'))
    assert.equal(verifyAuditChain(chain).ok, true)
    // Chain 0 stays apart from the network chains.
    await a.client.createNetwork(a.nodeId, { name: 'lab', joinRule: 'open' })
    assert.equal((await a.client.auditLog(a.nodeId, 0, { adminToken: ADMIN_TOKEN })).length, 4)
    assert.equal((await a.client.auditLog(a.nodeId, 1)).length, 1)
  })
})

test('audit_log pages: at most 500 entries an answer, `more` until the end; the client fetches every page', async () => {
  await withNetworkBench(1, async (b) => {
    const a = b.nodes[0]!
    await a.client.createNetwork(a.nodeId, { name: 'lab', joinRule: 'open' })
    const first = (await a.client.auditLog(a.nodeId, 1))[0]!
    await b.store.transaction(async (tx) => {
      for (let i = 0; i < 1100; i++) {
        await tx.networks.appendAudit({ networkId: 1, time: i, actor: a.nodeId, actorKey: first.actorKey, action: 'policy', subject: 0, detail: '', signed: '', signature: '' })
      }
    })
    const all = await a.client.auditLog(a.nodeId, 1)
    assert.equal(all.length, 1101)
    assert.deepEqual(all.map((e) => e.seq), Array.from({ length: 1101 }, (_, i) => i + 1))
    const page = await a.client.request({
      type: 'audit_log',
      network_id: 1,
      node_id: a.nodeId,
      after_seq: 1000,
      limit: 50,
      signature: a.identity.signChallenge(`audit_log:${a.nodeId}:1`),
    })
    assert.equal((page.entries as unknown[]).length, 50)
    assert.equal(page.more, true)

    // Large entries (a policy with 1024 ports is ~13 KB): pages stop short of the frame limit.
    const big = 'x'.repeat(12_000)
    await b.store.transaction(async (tx) => {
      for (let i = 0; i < 200; i++) {
        await tx.networks.appendAudit({ networkId: 1, time: i, actor: a.nodeId, actorKey: first.actorKey, action: 'policy', subject: 0, detail: big, signed: '', signature: '' })
      }
    })
    const bigPage = await a.client.request({ type: 'audit_log', network_id: 1, node_id: a.nodeId, after_seq: 1101, signature: a.identity.signChallenge(`audit_log:${a.nodeId}:1`) })
    const n = (bigPage.entries as unknown[]).length
    assert.ok(n > 10 && n < 200, String(n))
    assert.equal(bigPage.more, true)
    assert.equal((await a.client.auditLog(a.nodeId, 1)).length, 1301)
  })
})

test('leaves no sockets, servers or timers behind', async () => {
  assert.deepEqual(await leakedHandles(), [], 'sockets, servers or timers left open')
})
