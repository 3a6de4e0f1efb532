/** Pure pieces of the networks (issue 13): invite text, policy wire form, challenges, the --admin-token option. */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Identity } from '../../src/crypto/identity.js'
import { adminTokenOption, startRegistry } from '../../src/cli/commands/registry.js'
import { RegistryChallenge } from '../../src/registry/challenges.js'
import { RegistryError } from '../../src/registry/errors.js'
import { decodeInviteText, encodeInviteText, INVITE_TEXT_PREFIX } from '../../src/registry/invite-text.js'
import { canonicalPolicy, createDetail, isNetworkName, policyFromWire } from '../../src/registry/network-wire.js'
import type { SignedInvite } from '../../src/registry/network-types.js'
import { leakedHandles, testClient } from './helpers.js'

const INVITE: SignedInvite = { networkId: 3, inviterId: 7, inviteeId: 9, expires: 1_800_000_000, nonce: '0123456789abcdef0123456789abcdef', signature: 'c2ln' }

test('invite text: pilot-invite1. + base64url JSON round-trips; garbage is PT_NETWORK_INVITE_INVALID', () => {
  const text = encodeInviteText(INVITE)
  assert.ok(text.startsWith(INVITE_TEXT_PREFIX))
  assert.match(text.slice(INVITE_TEXT_PREFIX.length), /^[A-Za-z0-9_-]+$/)
  assert.deepEqual(JSON.parse(Buffer.from(text.slice(INVITE_TEXT_PREFIX.length), 'base64url').toString()), {
    network_id: 3,
    inviter_id: 7,
    invitee_id: 9,
    expires: 1_800_000_000,
    nonce: INVITE.nonce,
    signature: 'c2ln',
  })
  assert.deepEqual(decodeInviteText(`  ${text}\n`), INVITE)
  const enc = (o: unknown): string => INVITE_TEXT_PREFIX + Buffer.from(JSON.stringify(o)).toString('base64url')
  const wire = JSON.parse(Buffer.from(text.slice(INVITE_TEXT_PREFIX.length), 'base64url').toString()) as Record<string, unknown>
  const garbage = [
    '',
    'hello',
    'pilot-invite2.' + text.slice(INVITE_TEXT_PREFIX.length),
    INVITE_TEXT_PREFIX,
    INVITE_TEXT_PREFIX + '!!!',
    INVITE_TEXT_PREFIX + Buffer.from('not json').toString('base64url'),
    enc([1, 2]),
    enc({ ...wire, network_id: 0 }),
    enc({ ...wire, network_id: 65535 }),
    enc({ ...wire, invitee_id: -1 }),
    enc({ ...wire, expires: '1' }),
    enc({ ...wire, nonce: 'ABC' }),
    enc({ ...wire, signature: '' }),
    enc({ ...wire, signature: undefined }),
    INVITE_TEXT_PREFIX + 'A'.repeat(5000),
    7 as unknown as string,
  ]
  for (const g of garbage) {
    assert.throws(() => decodeInviteText(g), (e: unknown) => e instanceof RegistryError && e.code === 'PT_NETWORK_INVITE_INVALID' && e.hint !== undefined, String(g).slice(0, 40))
  }
})

test('policy wire form: canonical JSON sorted and unique; out-of-range and wrong types are refused with a reason', () => {
  assert.equal(canonicalPolicy({ maxMembers: 4, allowedPorts: [443, 80, 443], membersResolve: false }), '{"allowed_ports":[80,443],"max_members":4,"members_resolve":false}')
  assert.deepEqual(policyFromWire({ allowed_ports: [443, 80, 80], max_members: 1 }), { allowedPorts: [80, 443], maxMembers: 1 })
  assert.deepEqual(policyFromWire({}), {})
  for (const bad of [null, [], 'x', { allowed_ports: [0] }, { allowed_ports: [65536] }, { allowed_ports: [NaN] }, { max_members: 1_000_001 }, { members_resolve: 1 }, { x: 1 }]) {
    assert.equal(typeof policyFromWire(bad), 'string', JSON.stringify(bad))
  }
  assert.equal(createDetail('lab', 'open', null), 'name=lab;rule=open')
  assert.equal(createDetail('lab', 'token', { maxMembers: 2, allowedPorts: [], membersResolve: true }), 'name=lab;rule=token;policy={"allowed_ports":[],"max_members":2,"members_resolve":true}')
  for (const name of ['a', 'lab-1', '0x', 'a'.repeat(63)]) assert.ok(isNetworkName(name), name)
  for (const name of ['', 'A', '-a', 'a-', 'a.b', 'a_b', 'a'.repeat(64), 'ü']) assert.ok(!isNetworkName(name), name)
})

test('challenges: the network, invite and read strings of the contract', () => {
  assert.equal(
    RegistryChallenge.network({ action: 'join', nodeId: 5, networkId: 2, subject: 5, detail: 'rule=open', timestamp: 1700000000, nonce: 'ab'.repeat(16) }),
    `pilot-net:v1:join:5:2:5:rule=open:1700000000:${'ab'.repeat(16)}`,
  )
  assert.equal(RegistryChallenge.invite(INVITE), `pilot-invite:v1:3:7:9:1800000000:${INVITE.nonce}`)
  assert.equal(RegistryChallenge.listNodes(4, 2), 'list_nodes:4:2')
  assert.equal(RegistryChallenge.networkInfo(4, 2), 'network_info:4:2')
  assert.equal(RegistryChallenge.auditLog(4, 0), 'audit_log:4:0')
})

test('--admin-token: empty is unset; startRegistry passes it to the server, which then serves the trust chain to its holder only', async () => {
  assert.deepEqual(adminTokenOption(undefined), {})
  assert.deepEqual(adminTokenOption(''), {})
  assert.deepEqual(adminTokenOption('s3cret-token'), { adminToken: 's3cret-token' })
  const registry = await startRegistry({ host: '127.0.0.1', port: 0, storePath: ':memory:', adminToken: 's3cret-token' })
  const client = testClient(registry.address.port, Identity.generate())
  try {
    const { nodeId } = await client.register({ listenAddr: ':1' })
    assert.deepEqual(await client.auditLog(nodeId, 0, { adminToken: 's3cret-token' }), [])
    await assert.rejects(client.auditLog(nodeId, 0, { adminToken: 's3cret-tokeN' }), { code: 'PT_NETWORK_NOT_ADMIN' })
  } finally {
    client.close()
    await registry.close()
  }
  const open = await startRegistry({ host: '127.0.0.1', port: 0, storePath: ':memory:' })
  const c2 = testClient(open.address.port, Identity.generate())
  try {
    const { nodeId } = await c2.register({ listenAddr: ':1' })
    // Without a configured token nobody reads chain 0, not even with an empty one.
    await assert.rejects(c2.auditLog(nodeId, 0, { adminToken: '' }), { code: 'PT_NETWORK_NOT_ADMIN' })
  } finally {
    c2.close()
    await open.close()
  }
})

test('leaves no sockets, servers or timers behind', async () => {
  assert.deepEqual(await leakedHandles(), [], 'sockets, servers or timers left open')
})
