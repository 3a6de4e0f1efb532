/** Networks (issue 13) through the real RegistryServer and RegistryClient over loopback: rules, roles, policies, error codes. */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync, readFileSync } from 'node:fs'
import Database from 'better-sqlite3'
import { formatAddress } from '../../src/protocol/address.js'
import { verifyAuditChain } from '../../src/registry/audit-chain.js'
import { NETWORK_ERROR_HINTS, NetworkErrorCode, RegistryError } from '../../src/registry/errors.js'
import { RegistryChallenge } from '../../src/registry/challenges.js'
import { decodeInviteText, encodeInviteText } from '../../src/registry/invite-text.js'
import { DEFAULT_NETWORK_POLICY } from '../../src/registry/network-types.js'
import { leakedHandles, RawConnection } from './helpers.js'
import { ADMIN_TOKEN, refusedUnchanged, rejectsCode, signedWrite, withNetworkBench } from './network-helpers.js'

const C = NetworkErrorCode

test('end to end: create, list, join, lookup networks, list_nodes, network_info, members resolve, leave, audit chain', async () => {
  await withNetworkBench(3, async (b) => {
    const [a, m, x] = b.nodes as [typeof b.nodes[0], typeof b.nodes[0], typeof b.nodes[0]]
    assert.deepEqual(await a.client.createNetwork(a.nodeId, { name: 'lab', joinRule: 'open' }), { networkId: 1, name: 'lab' })
    assert.deepEqual(await a.client.createNetwork(a.nodeId, { name: 'ops', joinRule: 'open' }), { networkId: 2, name: 'ops' })
    assert.deepEqual(await x.client.listNetworks(), [
      { id: 0, name: 'backbone', members: 3, joinRule: 'open' },
      { id: 1, name: 'lab', members: 1, joinRule: 'open' },
      { id: 2, name: 'ops', members: 1, joinRule: 'open' },
    ])
    // Before m joins, it may not resolve a (no trust, no shared network).
    await assert.rejects(m.client.resolve(m.nodeId, a.nodeId), (e: RegistryError) => e.serverError === 'not authorised')
    assert.deepEqual(await m.client.joinNetwork(m.nodeId, 1), { networkId: 1, address: formatAddress({ network: 1, node: m.nodeId }) })
    await refusedUnchanged(b, () => m.client.joinNetwork(m.nodeId, 1), C.ALREADY_MEMBER)
    assert.deepEqual((await x.client.lookup(m.nodeId)).networks, [0, 1])
    assert.deepEqual((await x.client.lookup(a.nodeId)).networks, [0, 1, 2])
    assert.deepEqual(await m.client.listNodes(m.nodeId, 1), [
      { nodeId: a.nodeId, address: `1:0001.0000.000${a.nodeId}` },
      { nodeId: m.nodeId, address: `1:0001.0000.000${m.nodeId}` },
    ])
    const info = await m.client.networkInfo(m.nodeId, 1)
    assert.equal(info.name, 'lab')
    assert.equal(info.joinRule, 'open')
    assert.equal(info.created, Math.floor(b.clock.ms / 1000))
    assert.deepEqual(info.policy, DEFAULT_NETWORK_POLICY)
    assert.deepEqual(info.members.map((e) => [e.nodeId, e.role]), [[a.nodeId, 'owner'], [m.nodeId, 'member']])

    // members_resolve (default true): members resolve each other without a trust pair; x, not a member, still may not.
    assert.equal((await m.client.resolve(m.nodeId, a.nodeId)).nodeId, a.nodeId)
    await assert.rejects(x.client.resolve(x.nodeId, a.nodeId), (e: RegistryError) => e.serverError === 'not authorised')
    const policy = await a.client.setNetworkPolicy(a.nodeId, 1, { membersResolve: false, allowedPorts: [443, 80, 80] })
    assert.deepEqual(policy, { maxMembers: 1024, allowedPorts: [80, 443], membersResolve: false })
    await assert.rejects(m.client.resolve(m.nodeId, a.nodeId), (e: RegistryError) => e.serverError === 'not authorised')
    // Unspecified fields keep their value.
    assert.deepEqual(await a.client.setNetworkPolicy(a.nodeId, 1, { maxMembers: 5, membersResolve: undefined as never }), { maxMembers: 5, allowedPorts: [80, 443], membersResolve: false })

    assert.deepEqual(await m.client.leaveNetwork(m.nodeId, 1), { networkId: 1 })
    assert.deepEqual((await x.client.lookup(m.nodeId)).networks, [0])
    await rejectsCode(m.client.networkInfo(m.nodeId, 1), C.NOT_MEMBER)

    const chain = await a.client.auditLog(a.nodeId, 1)
    assert.deepEqual(chain.map((e) => [e.seq, e.action, e.actor, e.subject]), [
      [1, 'create', a.nodeId, 0],
      [2, 'join', m.nodeId, m.nodeId],
      [3, 'policy', a.nodeId, 0],
      [4, 'policy', a.nodeId, 0],
      [5, 'leave', m.nodeId, m.nodeId],
    ])
    assert.equal(chain[0]!.detail, 'name=lab;rule=open')
    assert.equal(chain[2]!.detail, '{"allowed_ports":[80,443],"max_members":1024,"members_resolve":false}')
    assert.deepEqual(verifyAuditChain(chain), { ok: true, entries: 5, head: chain[4]!.hash })
  })
})

test('names: DNS labels only, unique, backbone reserved; unknown networks are PT_NETWORK_NOT_FOUND', async () => {
  await withNetworkBench(2, async (b) => {
    const [a, m] = b.nodes as [typeof b.nodes[0], typeof b.nodes[0]]
    for (const name of ['Lab', '-lab', 'lab-', 'la_b', '', 'a'.repeat(64), 'lab.x']) {
      await refusedUnchanged(b, () => a.client.createNetwork(a.nodeId, { name, joinRule: 'open' }), C.BAD_NAME)
    }
    await a.client.createNetwork(a.nodeId, { name: 'lab', joinRule: 'open' })
    await refusedUnchanged(b, () => m.client.createNetwork(m.nodeId, { name: 'lab', joinRule: 'invite' }), C.EXISTS)
    await refusedUnchanged(b, () => m.client.createNetwork(m.nodeId, { name: 'backbone', joinRule: 'open' }), C.EXISTS)
    const err = await refusedUnchanged(b, () => m.client.joinNetwork(m.nodeId, 99), C.NOT_FOUND)
    assert.equal(err.hint, NETWORK_ERROR_HINTS[C.NOT_FOUND])
    assert.equal(err.message, 'no network 99')
    await refusedUnchanged(b, () => m.client.leaveNetwork(m.nodeId, 99), C.NOT_FOUND)
    await refusedUnchanged(b, () => m.client.leaveNetwork(m.nodeId, 1), C.NOT_MEMBER)
    // The wire carries the code next to the error text (Go clients read only `error`).
    const raw = await RawConnection.open(b.port)
    try {
      const answer = await raw.ask(signedWrite(m, 'join_network', { network_id: 7 }, { action: 'join', networkId: 7, subject: m.nodeId, detail: 'rule=open', timestamp: b.clock.ms / 1000 }))
      assert.deepEqual(answer, { type: 'error', error: 'no network 7', code: 'PT_NETWORK_NOT_FOUND' })
    } finally {
      raw.destroy()
    }
  })
})

test('token rule: the token is stored only as a salted hash; missing and wrong tokens are PT_NETWORK_BAD_TOKEN', async () => {
  await withNetworkBench(3, async (b) => {
    const [a, m, x] = b.nodes as [typeof b.nodes[0], typeof b.nodes[0], typeof b.nodes[0]]
    const token = 'correct-horse-battery-staple'
    await refusedUnchanged(b, () => a.client.createNetwork(a.nodeId, { name: 'secret', joinRule: 'token' }), C.BAD_TOKEN)
    await a.client.createNetwork(a.nodeId, { name: 'secret', joinRule: 'token', token })
    await a.client.createNetwork(a.nodeId, { name: 'secret2', joinRule: 'token', token })
    const db = new Database(b.dbPath, { readonly: true })
    try {
      const dump = JSON.stringify(db.prepare('SELECT * FROM networks').all()) + JSON.stringify(db.prepare('SELECT * FROM audit_log').all())
      assert.ok(!dump.includes(token), 'the token text is in the store')
      assert.ok(!dump.includes(Buffer.from(token).toString('hex')) && !dump.includes(Buffer.from(token).toString('base64')))
      const rows = db.prepare('SELECT token_salt, token_hash FROM networks ORDER BY id').all() as Array<{ token_salt: string; token_hash: string }>
      assert.match(rows[0]!.token_hash, /^[0-9a-f]{64}$/)
      // Per-network salt: the same token hashes differently in each network.
      assert.notEqual(rows[0]!.token_salt, rows[1]!.token_salt)
      assert.notEqual(rows[0]!.token_hash, rows[1]!.token_hash)
    } finally {
      db.close()
    }
    // Nor anywhere in the files' bytes (database and write-ahead log).
    for (const file of [b.dbPath, `${b.dbPath}-wal`]) {
      if (existsSync(file)) assert.ok(!readFileSync(file).includes(Buffer.from(token)), `${file} holds the token`)
    }
    const missing = await refusedUnchanged(b, () => m.client.joinNetwork(m.nodeId, 1), C.BAD_TOKEN)
    assert.equal(missing.hint, 'ask an owner for the token')
    await refusedUnchanged(b, () => m.client.joinNetwork(m.nodeId, 1, { token: 'wrong' }), C.BAD_TOKEN, /wrong token/)
    await refusedUnchanged(b, () => m.client.joinNetwork(m.nodeId, 1, { token: token + ' ' }), C.BAD_TOKEN)
    assert.equal((await m.client.joinNetwork(m.nodeId, 1, { token })).networkId, 1)
    // An open network ignores a token; a token network does not admit on another network's token.
    await a.client.createNetwork(a.nodeId, { name: 'other', joinRule: 'token', token: 'other-token' })
    await refusedUnchanged(b, () => x.client.joinNetwork(x.nodeId, 3, { token }), C.BAD_TOKEN)
  })
})

test('invite rule: stored and carried invites; required, expired, used twice, for another node, forged, altered', async () => {
  await withNetworkBench(6, async (b) => {
    const [owner, admin, member, invitee, other, stranger] = b.nodes as Array<typeof b.nodes[0]>
    const o = owner!
    await o.client.createNetwork(o.nodeId, { name: 'club', joinRule: 'invite' })
    const req = await refusedUnchanged(b, () => invitee!.client.joinNetwork(invitee!.nodeId, 1), C.INVITE_REQUIRED)
    assert.match(req.hint ?? '', /network invite/)

    // Owner invites admin and member (stored invites: the invitee joins without carrying it).
    await o.client.createInvite(o.nodeId, 1, admin!.nodeId, 3600)
    await admin!.client.joinNetwork(admin!.nodeId, 1)
    await o.client.setMemberRole(o.nodeId, 1, admin!.nodeId, 'admin')
    const forMember = await o.client.createInvite(o.nodeId, 1, member!.nodeId, 3600)
    assert.deepEqual(decodeInviteText(encodeInviteText(forMember)), forMember)
    await member!.client.joinNetwork(member!.nodeId, 1, { invite: forMember })

    // A member (not owner/admin) cannot store an invite, and one it signs does not admit anyone.
    await refusedUnchanged(b, () => member!.client.createInvite(member!.nodeId, 1, invitee!.nodeId, 3600), C.NOT_ADMIN)
    const byMember = signInvite(member!, { networkId: 1, inviteeId: invitee!.nodeId, expires: nowS(b) + 600 })
    await refusedUnchanged(b, () => invitee!.client.joinNetwork(invitee!.nodeId, 1, { invite: byMember }), C.INVITE_INVALID, /not an owner or admin/)
    // Signed with the wrong key: claims the owner as inviter, signed by the stranger.
    const wrongKey = { ...signInvite(stranger!, { networkId: 1, inviteeId: invitee!.nodeId, expires: nowS(b) + 600 }), inviterId: o.nodeId }
    await refusedUnchanged(b, () => invitee!.client.joinNetwork(invitee!.nodeId, 1, { invite: wrongKey }), C.INVITE_INVALID, /signature/)
    await refusedUnchanged(b, () => invitee!.client.request({ type: 'create_invite', network_id: 1, invite: wire(wrongKey) }), C.INVITE_INVALID)
    // A valid invite with one field altered.
    const good = await admin!.client.createInvite(admin!.nodeId, 1, invitee!.nodeId, 600)
    for (const altered of [{ ...good, expires: good.expires + 1 }, { ...good, nonce: 'f'.repeat(32) }, { ...good, inviterId: o.nodeId }, { ...good, networkId: 2 }]) {
      await refusedUnchanged(b, () => invitee!.client.joinNetwork(invitee!.nodeId, 1, { invite: altered }), C.INVITE_INVALID)
    }
    // For another node.
    await refusedUnchanged(b, () => other!.client.joinNetwork(other!.nodeId, 1, { invite: good }), C.INVITE_INVALID, /another node/)
    // Expired (carried and stored).
    b.clock.advance(601_000)
    await refusedUnchanged(b, () => invitee!.client.joinNetwork(invitee!.nodeId, 1, { invite: good }), C.INVITE_EXPIRED)
    const expired = await refusedUnchanged(b, () => invitee!.client.joinNetwork(invitee!.nodeId, 1), C.INVITE_EXPIRED)
    assert.equal(expired.hint, 'ask for a new invite')
    await refusedUnchanged(b, () => o.client.request({ type: 'create_invite', network_id: 1, invite: wire(signInvite(o, { networkId: 1, inviteeId: invitee!.nodeId, expires: nowS(b) - 1 })) }), C.INVITE_EXPIRED)
    // Used twice: join, leave, join again with the same invite.
    const once = await o.client.createInvite(o.nodeId, 1, invitee!.nodeId, 600)
    await invitee!.client.joinNetwork(invitee!.nodeId, 1, { invite: once })
    await invitee!.client.leaveNetwork(invitee!.nodeId, 1)
    await refusedUnchanged(b, () => invitee!.client.joinNetwork(invitee!.nodeId, 1, { invite: once }), C.INVITE_INVALID, /already used/)
    // The only unused stored invite left for it is the expired one.
    await refusedUnchanged(b, () => invitee!.client.joinNetwork(invitee!.nodeId, 1), C.INVITE_EXPIRED)
    // An invite to a node that is not registered, or already a member.
    await refusedUnchanged(b, () => o.client.createInvite(o.nodeId, 1, 999, 600), C.INVITE_INVALID, /not a registered node/)
    await refusedUnchanged(b, () => o.client.createInvite(o.nodeId, 1, member!.nodeId, 600), C.ALREADY_MEMBER)
    // An invite whose inviter lost the admin role no longer admits.
    const fromAdmin = await admin!.client.createInvite(admin!.nodeId, 1, other!.nodeId, 600)
    await o.client.setMemberRole(o.nodeId, 1, admin!.nodeId, 'member')
    await refusedUnchanged(b, () => other!.client.joinNetwork(other!.nodeId, 1, { invite: fromAdmin }), C.INVITE_INVALID)

    const chain = await o.client.auditLog(o.nodeId, 1)
    assert.deepEqual(chain.filter((e) => e.action === 'invite').map((e) => e.subject), [admin!.nodeId, member!.nodeId, invitee!.nodeId, invitee!.nodeId, other!.nodeId])
    assert.equal(verifyAuditChain(chain).ok, true)
  })
})

test('replay: a join replayed with the same nonce, also after a registry restart, and stale or future timestamps are PT_NETWORK_REPLAY', async () => {
  await withNetworkBench(2, async (b) => {
    const [a, m] = b.nodes as [typeof b.nodes[0], typeof b.nodes[0]]
    await a.client.createNetwork(a.nodeId, { name: 'lab', joinRule: 'open' })
    const join = signedWrite(m, 'join_network', { network_id: 1 }, { action: 'join', networkId: 1, subject: m.nodeId, detail: 'rule=open', timestamp: nowS(b) })
    assert.equal((await m.client.request(join)).type, 'join_network_ok')
    await m.client.leaveNetwork(m.nodeId, 1)
    await refusedUnchanged(b, () => m.client.request(join), C.REPLAY, /nonce/)
    await b.restart()
    const raw = await RawConnection.open(b.port)
    try {
      const before = b.snapshot()
      assert.equal((await raw.ask(join)).code, 'PT_NETWORK_REPLAY')
      for (const skew of [-301, 301, -100_000]) {
        const stale = signedWrite(m, 'join_network', { network_id: 1 }, { action: 'join', networkId: 1, subject: m.nodeId, detail: 'rule=open', timestamp: nowS(b) + skew })
        const answer = await raw.ask(stale)
        assert.equal(answer.code, 'PT_NETWORK_REPLAY', JSON.stringify(answer))
        assert.match(String(answer.error), /timestamp/)
      }
      assert.equal(b.snapshot(), before)
      // Within the window is fine.
      const fresh = signedWrite(m, 'join_network', { network_id: 1 }, { action: 'join', networkId: 1, subject: m.nodeId, detail: 'rule=open', timestamp: nowS(b) - 299 })
      assert.equal((await raw.ask(fresh)).type, 'join_network_ok')
      // A signature over other fields than those sent is refused (here: another network).
      const moved = { ...signedWrite(m, 'leave_network', { network_id: 1 }, { action: 'leave', networkId: 2, subject: m.nodeId, detail: '', timestamp: nowS(b) }) }
      assert.deepEqual(await raw.ask(moved), { type: 'error', error: 'signature invalid' })
      assert.equal(b.server.stats().rejected['bad-signature'], 1)
    } finally {
      raw.destroy()
    }
  })
})

test('max_members: a join beyond it is PT_NETWORK_FULL; a policy below the member count is PT_NETWORK_BAD_POLICY', async () => {
  await withNetworkBench(3, async (b) => {
    const [a, m, x] = b.nodes as [typeof b.nodes[0], typeof b.nodes[0], typeof b.nodes[0]]
    // Keys given as undefined (as a CLI passes absent flags) count as not given.
    await a.client.createNetwork(a.nodeId, { name: 'pair', joinRule: 'open', policy: { maxMembers: 2, allowedPorts: undefined as never } })
    assert.equal((await a.client.networkInfo(a.nodeId, 1)).policy.maxMembers, 2)
    await m.client.joinNetwork(m.nodeId, 1)
    const full = await refusedUnchanged(b, () => x.client.joinNetwork(x.nodeId, 1), C.FULL)
    assert.match(full.hint ?? '', /max-members/)
    await refusedUnchanged(b, () => a.client.setNetworkPolicy(a.nodeId, 1, { maxMembers: 1 }), C.BAD_POLICY, /below/)
    await a.client.setNetworkPolicy(a.nodeId, 1, { maxMembers: 3 })
    await x.client.joinNetwork(x.nodeId, 1)
  })
})

test('policy validation: ports 0, 65536, non-integers, wrong types, unknown keys, max_members out of range', async () => {
  await withNetworkBench(1, async (b) => {
    const [a] = b.nodes as [typeof b.nodes[0]]
    await a.client.createNetwork(a.nodeId, { name: 'lab', joinRule: 'open' })
    const bad: unknown[] = [
      { allowed_ports: [0] },
      { allowed_ports: [65536] },
      { allowed_ports: [80.5] },
      { allowed_ports: ['80'] },
      { allowed_ports: 80 },
      { allowed_ports: Array.from({ length: 1025 }, (_, i) => i + 1) },
      { max_members: 0 },
      { max_members: 1_000_001 },
      { max_members: 2.5 },
      { members_resolve: 'yes' },
      { colour: 'blue' },
      [],
      'open',
    ]
    for (const policy of bad) {
      const write = signedWrite(a, 'set_network_policy', { network_id: 1, policy: policy as never }, { action: 'policy', networkId: 1, subject: 0, detail: '', timestamp: nowS(b) })
      await refusedUnchanged(b, () => a.client.request(write), C.BAD_POLICY)
      const create = signedWrite(a, 'create_network', { name: 'x', join_rule: 'open', policy: policy as never }, { action: 'create', networkId: 0, subject: 0, detail: 'name=x;rule=open', timestamp: nowS(b) })
      await refusedUnchanged(b, () => a.client.request(create), C.BAD_POLICY)
    }
    for (const allowedPorts of [[0], [65536], [1.5]]) {
      await refusedUnchanged(b, () => a.client.setNetworkPolicy(a.nodeId, 1, { allowedPorts }), C.BAD_POLICY)
    }
    assert.deepEqual((await a.client.setNetworkPolicy(a.nodeId, 1, { allowedPorts: [1, 65535] })).allowedPorts, [1, 65535])
  })
})

test('reads are for members: network_info, list_nodes, audit_log; the trust chain 0 only with the admin token', async () => {
  await withNetworkBench(2, async (b) => {
    const [a, x] = b.nodes as [typeof b.nodes[0], typeof b.nodes[0]]
    await a.client.createNetwork(a.nodeId, { name: 'lab', joinRule: 'open' })
    await refusedUnchanged(b, () => x.client.networkInfo(x.nodeId, 1), C.NOT_MEMBER)
    await refusedUnchanged(b, () => x.client.listNodes(x.nodeId, 1), C.NOT_MEMBER)
    await refusedUnchanged(b, () => x.client.auditLog(x.nodeId, 1), C.NOT_MEMBER)
    await rejectsCode(x.client.networkInfo(x.nodeId, 9), C.NOT_FOUND)
    // Another node's signature does not make x a member.
    await assert.rejects(x.client.request({ type: 'network_info', network_id: 1, node_id: a.nodeId, signature: x.identity.signChallenge(RegistryChallenge.networkInfo(a.nodeId, 1)) }), (e: RegistryError) => e.serverError === 'signature invalid')
    await assert.rejects(x.client.listNodes(x.nodeId, 0), (e: RegistryError) => e.serverError === 'listing network 0 is not allowed')
    const noToken = await rejectsCode(a.client.auditLog(a.nodeId, 0), C.NOT_ADMIN)
    assert.match(noToken.message, /admin token/)
    assert.match(noToken.hint ?? '', /--admin-token/)
    await rejectsCode(a.client.auditLog(a.nodeId, 0, { adminToken: 'nope' }), C.NOT_ADMIN)
    await rejectsCode(a.client.auditLog(a.nodeId, 0, { adminToken: ADMIN_TOKEN + 'x' }), C.NOT_ADMIN)
    assert.deepEqual(await a.client.auditLog(a.nodeId, 0, { adminToken: ADMIN_TOKEN }), [])
  })
})

test('roles: owners/admins remove members, an admin cannot remove an owner or admin, only owners change roles, the last owner hands over', async () => {
  await withNetworkBench(5, async (b) => {
    const [o, ad, ad2, m, m2] = b.nodes as Array<typeof b.nodes[0]>
    const owner = o!
    await owner.client.createNetwork(owner.nodeId, { name: 'team', joinRule: 'open' })
    for (const n of [ad!, ad2!, m!, m2!]) await n.client.joinNetwork(n.nodeId, 1)
    await owner.client.setMemberRole(owner.nodeId, 1, ad!.nodeId, 'admin')
    await owner.client.setMemberRole(owner.nodeId, 1, ad2!.nodeId, 'admin')

    await refusedUnchanged(b, () => ad!.client.removeMember(ad!.nodeId, 1, owner.nodeId), C.NOT_ADMIN)
    await refusedUnchanged(b, () => ad!.client.removeMember(ad!.nodeId, 1, ad2!.nodeId), C.NOT_ADMIN)
    await refusedUnchanged(b, () => m!.client.removeMember(m!.nodeId, 1, m2!.nodeId), C.NOT_ADMIN)
    await refusedUnchanged(b, () => ad!.client.setMemberRole(ad!.nodeId, 1, m!.nodeId, 'admin'), C.NOT_ADMIN, /only owners/)
    await refusedUnchanged(b, () => m!.client.setNetworkPolicy(m!.nodeId, 1, { maxMembers: 10 }), C.NOT_ADMIN)
    await refusedUnchanged(b, () => ad!.client.removeMember(ad!.nodeId, 1, 999), C.NOT_MEMBER)
    await ad!.client.removeMember(ad!.nodeId, 1, m2!.nodeId)
    await ad!.client.setNetworkPolicy(ad!.nodeId, 1, { allowedPorts: [22] })
    await refusedUnchanged(b, () => m2!.client.removeMember(m2!.nodeId, 1, m!.nodeId), C.NOT_MEMBER)
    await refusedUnchanged(b, () => owner.client.setMemberRole(owner.nodeId, 1, m2!.nodeId, 'admin'), C.NOT_MEMBER)
    await assert.rejects(owner.client.setMemberRole(owner.nodeId, 1, m!.nodeId, 'king' as never), (e: RegistryError) => e.serverError === 'invalid role')

    // The last owner may neither leave nor demote itself while others remain.
    const last = await refusedUnchanged(b, () => owner.client.leaveNetwork(owner.nodeId, 1), C.LAST_OWNER)
    assert.match(last.hint ?? '', /network role/)
    await refusedUnchanged(b, () => owner.client.setMemberRole(owner.nodeId, 1, owner.nodeId, 'admin'), C.LAST_OWNER)
    await refusedUnchanged(b, () => owner.client.removeMember(owner.nodeId, 1, owner.nodeId), C.LAST_OWNER)
    // Hand over, then leave; the new owner may demote the old one no more (it left) but manages the rest.
    await owner.client.setMemberRole(owner.nodeId, 1, m!.nodeId, 'owner')
    await owner.client.leaveNetwork(owner.nodeId, 1)
    const newOwner = m!
    await newOwner.client.removeMember(newOwner.nodeId, 1, ad!.nodeId)
    await newOwner.client.removeMember(newOwner.nodeId, 1, ad2!.nodeId)
    // Alone, the last owner may leave: the network stays, empty, with its chain.
    await newOwner.client.leaveNetwork(newOwner.nodeId, 1)
    assert.deepEqual((await newOwner.client.listNetworks())[1], { id: 1, name: 'team', members: 0, joinRule: 'open' })
    const db = new Database(b.dbPath, { readonly: true })
    try {
      assert.equal((db.prepare('SELECT count(*) AS n FROM audit_log WHERE network_id = 1').get() as { n: number }).n, 14)
    } finally {
      db.close()
    }
  })
})

test('the reaper forgets nonces after 15 min and unused invites a day after they expired; used invites stay', async () => {
  await withNetworkBench(3, async (b) => {
    const [a, m, x] = b.nodes as [typeof b.nodes[0], typeof b.nodes[0], typeof b.nodes[0]]
    await a.client.createNetwork(a.nodeId, { name: 'club', joinRule: 'invite' })
    const used = await a.client.createInvite(a.nodeId, 1, m.nodeId, 60)
    await m.client.joinNetwork(m.nodeId, 1)
    await a.client.createInvite(a.nodeId, 1, x.nodeId, 60)
    const count = (table: string): number => {
      const db = new Database(b.dbPath, { readonly: true })
      try {
        return (db.prepare(`SELECT count(*) AS n FROM ${table}`).get() as { n: number }).n
      } finally {
        db.close()
      }
    }
    assert.equal(count('network_invites'), 2)
    assert.equal(count('used_nonces'), 2)
    b.clock.advance(10 * 60_000)
    await b.server.reapNow()
    assert.equal(count('used_nonces'), 2)
    b.clock.advance(24 * 3600_000)
    await b.server.reapNow()
    assert.equal(count('used_nonces'), 0)
    assert.equal(count('network_invites'), 1)
    // The used one is still there to refuse a second use.
    await m.client.register({ listenAddr: '127.0.0.1:4001' }) // reaped meanwhile: back online, still a member
    assert.deepEqual((await m.client.lookup(m.nodeId)).networks, [0, 1])
    await m.client.leaveNetwork(m.nodeId, 1)
    await rejectsCode(m.client.joinNetwork(m.nodeId, 1, { invite: used }), C.INVITE_INVALID, /already used/)
  })
})

test('membership survives the node going offline (reaper), unlike the reference', async () => {
  await withNetworkBench(2, async (b) => {
    const [a, m] = b.nodes as [typeof b.nodes[0], typeof b.nodes[0]]
    await a.client.createNetwork(a.nodeId, { name: 'lab', joinRule: 'open' })
    await m.client.joinNetwork(m.nodeId, 1)
    b.clock.advance(4 * 60_000)
    await a.client.heartbeat(a.nodeId)
    await b.server.reapNow()
    assert.deepEqual((await a.client.networkInfo(a.nodeId, 1)).members.map((e) => e.nodeId), [a.nodeId, m.nodeId])
  })
})

function nowS(b: { clock: { ms: number } }): number {
  return Math.floor(b.clock.ms / 1000)
}

function signInvite(
  signer: { nodeId: number; identity: { signChallenge(c: string): string } },
  i: { networkId: number; inviteeId: number; expires: number },
): { networkId: number; inviterId: number; inviteeId: number; expires: number; nonce: string; signature: string } {
  const unsigned = { ...i, inviterId: signer.nodeId, nonce: Math.random().toString(16).slice(2).padEnd(32, '0').slice(0, 32) }
  return { ...unsigned, signature: signer.identity.signChallenge(RegistryChallenge.invite(unsigned)) }
}

function wire(i: { networkId: number; inviterId: number; inviteeId: number; expires: number; nonce: string; signature: string }) {
  return { network_id: i.networkId, inviter_id: i.inviterId, invitee_id: i.inviteeId, expires: i.expires, nonce: i.nonce, signature: i.signature }
}

test('leaves no sockets, servers or timers behind', async () => {
  assert.deepEqual(await leakedHandles(), [], 'sockets, servers or timers left open')
})

test('large networks page: network_info and list_nodes answer at most 2,000 members with `more`; the client reads every page', async () => {
  await withNetworkBench(3, async (b) => {
    const [a, m, x] = b.nodes as [typeof b.nodes[0], typeof b.nodes[0], typeof b.nodes[0]]
    await a.client.createNetwork(a.nodeId, { name: 'big', joinRule: 'open', policy: { maxMembers: 100_000 } })
    await m.client.joinNetwork(m.nodeId, 1)
    await x.client.joinNetwork(x.nodeId, 1)
    // Pages by hand: limit 2 after node 0, then after the last one seen.
    const ask = (type: 'network_info' | 'list_nodes', after: number) =>
      a.client.request({
        type,
        network_id: 1,
        ...(type === 'network_info' ? { node_id: a.nodeId } : { requester_id: a.nodeId }),
        after_node: after,
        limit: 2,
        signature: a.identity.signChallenge(type === 'network_info' ? RegistryChallenge.networkInfo(a.nodeId, 1) : RegistryChallenge.listNodes(a.nodeId, 1)),
      })
    const p1 = await ask('network_info', 0)
    assert.deepEqual([(p1.members as Array<{ node_id: number }>).map((e) => e.node_id), p1.more], [[a.nodeId, m.nodeId], true])
    const p2 = await ask('network_info', m.nodeId)
    assert.deepEqual([(p2.members as Array<{ node_id: number }>).map((e) => e.node_id), p2.more], [[x.nodeId], false])
    const l1 = await ask('list_nodes', a.nodeId)
    assert.deepEqual([(l1.nodes as Array<{ node_id: number }>).map((e) => e.node_id), l1.more], [[m.nodeId, x.nodeId], false])
    // 4,500 more members, written straight into the store: three pages for the client.
    const db = b.openDb()
    try {
      const now = Date.now()
      const addNode = db.prepare('INSERT INTO nodes (id, public_key, last_seen, created) VALUES (?, ?, ?, ?)')
      const addMember = db.prepare("INSERT INTO network_members (network_id, node_id, role, joined) VALUES (1, ?, 'member', ?)")
      db.transaction(() => {
        for (let id = 1000; id < 5500; id++) {
          addNode.run(id, `key-${id}`, now, now)
          addMember.run(id, now)
        }
      })()
    } finally {
      db.close()
    }
    const info = await m.client.networkInfo(m.nodeId, 1)
    assert.equal(info.members.length, 4503)
    assert.equal(new Set(info.members.map((e) => e.nodeId)).size, 4503, 'no member twice')
    assert.equal((await m.client.listNodes(m.nodeId, 1)).length, 4503)
  })
})

test('token guesses are bounded: 10 a minute per node, 120 a minute across all nodes (each is a scrypt on the registry thread)', async () => {
  await withNetworkBench(7, async (b) => {
    // Registrations are rate limited per source address too: the other seven a minute later.
    b.clock.advance(61_000)
    for (let i = 0; i < 7; i++) await b.addNode()
    const [owner, ...guessers] = b.nodes as [typeof b.nodes[0], ...Array<typeof b.nodes[0]>]
    await owner.client.createNetwork(owner.nodeId, { name: 'vault', joinRule: 'token', token: 'the right one' })
    const tally = { bad: 0, perNode: 0, all: 0 }
    const guess = async (n: (typeof b.nodes)[0], times: number) => {
      for (let i = 0; i < times; i++) {
        try {
          await n.client.joinNetwork(n.nodeId, 1, { token: 'a guess' })
          assert.fail('a wrong token joined')
        } catch (err) {
          const e = err as RegistryError
          if (e.code === NetworkErrorCode.BAD_TOKEN) tally.bad++
          else if (e.serverError === 'too many token attempts') tally.perNode++
          else if (/at this registry/.test(e.serverError ?? '')) tally.all++
          else throw err
        }
      }
    }
    await guess(guessers[0]!, 11) // 10 checked, the 11th refused by the node's own limit
    for (const n of guessers.slice(1)) await guess(n, 10) // 120 more: 110 checked, then the registry-wide limit
    assert.deepEqual(tally, { bad: 120, perNode: 1, all: 10 })
    // A minute later the right token gets in.
    b.clock.advance(61_000)
    assert.equal((await guessers[12]!.client.joinNetwork(guessers[12]!.nodeId, 1, { token: 'the right one' })).networkId, 1)
  })
})
