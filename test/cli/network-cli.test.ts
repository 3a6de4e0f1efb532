// `pilot-tun network …` and `pilot-tun audit …` (issue 13) through the real
// launcher against a control server in this process: the real NetworkOps
// over a fake NetworkRegistry (the RegistryClient's network methods), a fake
// view, a real local trust log. Arguments are checked before the daemon is
// asked (exit 2, nothing sent); registry refusals keep their code and hint
// (exit 1); --json prints the result object.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ControlServer } from '../../src/daemon/control/server.js'
import { ControlClient } from '../../src/daemon/control/client.js'
import { NetworkOps, type NetworkRegistry } from '../../src/daemon/network-ops.js'
import { decodeInviteText, encodeInviteText } from '../../src/daemon/network-deps.js'
import { TrustLog } from '../../src/daemon/trust-log.js'
import { Identity } from '../../src/crypto/identity.js'
import { PilotError } from '../../src/errors.js'
import { nullLogger } from '../../src/logger.js'
import type { AuditEntry, AuditVerification, JoinRule, NetworkInfo, NetworkPolicy, NetworkRole, SignedInvite } from '../../src/registry/network-types.js'
import { runCli } from './run-cli.js'
import { FakeDaemon } from '../daemon/fake-daemon.js'

const SELF = 5

const run = (args: string[]) => runCli(args)

/** Records calls; one network "lab" (id 3) with a token rule; refusals as the registry would send them. */
class FakeRegistry implements NetworkRegistry {
  calls: unknown[][] = []
  policy: NetworkPolicy = { maxMembers: 10, allowedPorts: [80], membersResolve: true }
  entries: AuditEntry[] = []
  async createNetwork(nodeId: number, o: { name: string; joinRule: JoinRule; token?: string; policy?: Partial<NetworkPolicy> }) {
    this.calls.push(['createNetwork', nodeId, o])
    if (o.name === 'taken') throw new PilotError('PT_NETWORK_EXISTS', 'network "taken" exists', { hint: 'choose another name' })
    return { networkId: 4, name: o.name }
  }
  async joinNetwork(nodeId: number, networkId: number, o?: { token?: string; invite?: SignedInvite }) {
    this.calls.push(['joinNetwork', nodeId, networkId, o])
    if (o?.token !== undefined && o.token !== 'sesame') throw new PilotError('PT_NETWORK_BAD_TOKEN', 'wrong token for network 3', { hint: 'ask an owner for the token' })
    return { networkId, address: `${networkId}:0000.0000.0005` }
  }
  async leaveNetwork(nodeId: number, networkId: number) {
    this.calls.push(['leaveNetwork', nodeId, networkId])
    return { networkId }
  }
  async createInvite(nodeId: number, networkId: number, inviteeId: number, ttlSeconds: number): Promise<SignedInvite> {
    this.calls.push(['createInvite', nodeId, networkId, inviteeId, ttlSeconds])
    return { networkId, inviterId: nodeId, inviteeId, expires: 2_000_000_000, nonce: 'ab'.repeat(16), signature: 'c2ln' }
  }
  async removeMember(nodeId: number, networkId: number, memberId: number) {
    this.calls.push(['removeMember', nodeId, networkId, memberId])
    throw new PilotError('PT_NETWORK_NOT_ADMIN', 'node 5 is a member of network 3, not an owner or admin', { hint: 'only owners/admins can remove members' })
  }
  async setMemberRole(nodeId: number, networkId: number, memberId: number, role: NetworkRole) {
    this.calls.push(['setMemberRole', nodeId, networkId, memberId, role])
  }
  async setNetworkPolicy(nodeId: number, networkId: number, policy: Partial<NetworkPolicy>) {
    this.calls.push(['setNetworkPolicy', nodeId, networkId, policy])
    this.policy = { ...this.policy, ...policy }
    return this.policy
  }
  async networkInfo(nodeId: number, networkId: number): Promise<NetworkInfo> {
    this.calls.push(['networkInfo', nodeId, networkId])
    return {
      id: networkId,
      name: 'lab',
      joinRule: 'token',
      created: 1_765_000_000,
      policy: this.policy,
      members: [
        { nodeId: 5, role: 'owner', address: '3:0000.0000.0005', hostname: 'alice' },
        { nodeId: 7, role: 'member', address: '3:0000.0000.0007' },
      ],
    }
  }
  async listNetworks() {
    return [
      { id: 0, name: 'backbone', members: 12, joinRule: 'open' as const },
      { id: 3, name: 'lab', members: 2, joinRule: 'token' as const },
    ]
  }
  async listNodes() {
    return []
  }
  async auditLog(nodeId: number, networkId: number, o?: { adminToken?: string }) {
    this.calls.push(['auditLog', nodeId, networkId, o])
    if (networkId === 0 && o?.adminToken !== 'root') throw new PilotError('PT_NETWORK_NOT_ADMIN', 'the trust chain needs the registry admin token', { hint: 'pass --admin-token' })
    return this.entries
  }
}

function entry(seq: number, action: AuditEntry['action'], subject: number, detail: string): AuditEntry {
  return { seq, networkId: 3, time: 1_765_000_000_000 + seq * 1000, actor: 5, actorKey: 'k', action, subject, detail, signed: 's', signature: 'sig', prev: 'p', hash: `h${seq}` }
}

async function withServer(fn: (sock: string, reg: FakeRegistry, ctx: { refreshes: number; dir: string; log: TrustLog; verdict: AuditVerification }) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'pt-net-cli-'))
  const sock = join(dir, 'control.sock')
  const reg = new FakeRegistry()
  const log = new TrustLog({ stateDir: dir, identity: Identity.generate(), nodeId: () => SELF, logger: nullLogger })
  const ctx = { refreshes: 0, dir, log, verdict: { ok: true, entries: 0, head: '0'.repeat(64) } as AuditVerification }
  const ops = new NetworkOps({
    registry: reg,
    view: {
      refresh: async () => {
        await new Promise((r) => setTimeout(r, 5))
        ctx.refreshes++
      },
      get: (id: number) => (id === 3 ? { id: 3, name: 'lab', role: 'owner', policy: reg.policy, members: new Set([5, 7]), hostnames: new Map() } : undefined),
    },
    selfId: SELF,
    resolveNode: async (t) => {
      if (t === 'bob' || t === '7') return 7
      throw new PilotError('PT_NAME_NOT_FOUND', `no node "${t}"`)
    },
    verify: (entries) => (ctx.verdict.ok ? { ...ctx.verdict, entries: entries.length } : ctx.verdict),
    inviteText: { encode: encodeInviteText, decode: decodeInviteText },
    trustLog: log,
  })
  const server = new ControlServer({ path: sock, control: new FakeDaemon(), networks: () => ops })
  await server.listen()
  try {
    await fn(sock, reg, ctx)
  } finally {
    await server.close()
    rmSync(dir, { recursive: true, force: true })
  }
}

test('network create/join/leave/list/members/policy/role: parameters reach the registry, join and leave wait for the view', async () => {
  await withServer(async (sock, reg, ctx) => {
    const c = await run(['network', 'create', 'lab2', '--join-rule', 'token', '--token', 'sesame', '--allowed-ports', '443, 80,80', '--no-members-resolve', '--max-members', '50', '--control-socket', sock])
    assert.equal(c.code, 0, c.stderr)
    assert.equal(c.stdout, 'created network lab2 (id 4, join rule token); this node is its owner\n')
    assert.deepEqual(reg.calls.at(-1), ['createNetwork', SELF, { name: 'lab2', joinRule: 'token', token: 'sesame', policy: { maxMembers: 50, allowedPorts: [80, 443], membersResolve: false } }])

    const before = ctx.refreshes
    const j = await run(['network', 'join', 'lab', '--token', 'sesame', '--json', '--control-socket', sock])
    assert.equal(j.code, 0, j.stderr)
    assert.deepEqual(JSON.parse(j.stdout), { network_id: 3, address: '3:0000.0000.0005' })
    assert.equal(ctx.refreshes, before + 1, 'join answered after the view refreshed')
    assert.deepEqual(reg.calls.at(-1), ['joinNetwork', SELF, 3, { token: 'sesame' }], 'the name was resolved through list_networks')

    const l = await run(['network', 'leave', '3', '--control-socket', sock])
    assert.equal(l.stdout, 'left network 3\n')
    assert.equal(ctx.refreshes, before + 2)

    const list = await run(['network', 'list', '--control-socket', sock])
    assert.match(list.stdout, /^ID\s+NAME\s+MEMBERS\s+RULE\s+YOU\n0\s+backbone\s+12\s+open\s+member\n3\s+lab\s+2\s+token\s+owner\n$/)
    const listJson = JSON.parse((await run(['network', 'list', '--json', '--control-socket', sock])).stdout)
    assert.deepEqual(listJson.networks[1], { id: 3, name: 'lab', members: 2, join_rule: 'token', member: true, role: 'owner' })

    const m = await run(['network', 'members', 'lab', '--control-socket', sock])
    assert.match(m.stdout, /network lab \(id 3, join rule token, 2 members\)/)
    assert.match(m.stdout, /5\s+owner\s+3:0000\.0000\.0005\s+alice/)
    assert.match(m.stdout, /allowed ports:\s+80/)
    const mj = JSON.parse((await run(['network', 'members', 'lab', '--json', '--control-socket', sock])).stdout)
    assert.deepEqual(mj.members[1], { node_id: 7, role: 'member', address: '3:0000.0000.0007', hostname: null })
    assert.deepEqual(mj.policy, { max_members: 10, allowed_ports: [80], members_resolve: true })

    const show = JSON.parse((await run(['network', 'policy', 'lab', '--json', '--control-socket', sock])).stdout)
    assert.equal(show.changed, false)
    const set = await run(['network', 'policy', 'lab', '--allowed-ports', '22,8080', '--json', '--control-socket', sock])
    assert.deepEqual(JSON.parse(set.stdout), { network_id: 3, changed: true, policy: { max_members: 10, allowed_ports: [22, 8080], members_resolve: true } })
    assert.deepEqual(reg.calls.at(-1), ['setNetworkPolicy', SELF, 3, { allowedPorts: [22, 8080] }], 'only the given fields change')

    const r = await run(['network', 'role', 'lab', 'bob', 'admin', '--control-socket', sock])
    assert.equal(r.stdout, 'node 7 is now admin of network 3\n')
  })
})

test('network invite prints the invite text; join --invite decodes it and checks it is for this node and network', async () => {
  await withServer(async (sock, reg) => {
    const i = await run(['network', 'invite', 'lab', 'bob', '--ttl', '2h', '--control-socket', sock])
    assert.equal(i.code, 0, i.stderr)
    assert.deepEqual(reg.calls.at(-1), ['createInvite', SELF, 3, 7, 7200])
    const text = /^(pilot-invite1\.\S+)$/m.exec(i.stdout)?.[1]
    assert.ok(text !== undefined, i.stdout)
    assert.match(i.stdout, /the invitee runs: pilot-tun network join 3 --invite pilot-invite1\./)
    const ij = JSON.parse((await run(['network', 'invite', 'lab', 'bob', '--json', '--control-socket', sock])).stdout)
    assert.equal(ij.invitee_id, 7)
    assert.equal(ij.expires, 2_000_000_000)
    assert.equal(reg.calls.at(-1)![4], 86_400, 'default ttl 24 h')
    // The fake's invite is for node 7; this daemon is node 5.
    const wrong = await run(['network', 'join', 'lab', '--invite', text!, '--control-socket', sock])
    assert.equal(wrong.code, 1)
    assert.match(wrong.stderr, /PT_NETWORK_INVITE_INVALID/)
    const mine = encodeInviteText({ networkId: 3, inviterId: 7, inviteeId: SELF, expires: 2_000_000_000, nonce: 'cd'.repeat(16), signature: 'c2ln' })
    const ok = await run(['network', 'join', 'lab', '--invite', mine, '--control-socket', sock])
    assert.equal(ok.code, 0, ok.stderr)
    assert.deepEqual(reg.calls.at(-1), ['joinNetwork', SELF, 3, { invite: { networkId: 3, inviterId: 7, inviteeId: SELF, expires: 2_000_000_000, nonce: 'cd'.repeat(16), signature: 'c2ln' } }])
    const garbage = await run(['network', 'join', 'lab', '--invite', 'hello', '--json', '--control-socket', sock])
    assert.equal(garbage.code, 1)
    assert.equal(JSON.parse(garbage.stdout).error.code, 'PT_NETWORK_INVITE_INVALID')
  })
})

test('registry refusals keep their code and hint, exit 1; unknown names are PT_NETWORK_NOT_FOUND', async () => {
  await withServer(async (sock) => {
    const bad = await run(['network', 'join', 'lab', '--token', 'wrong', '--control-socket', sock])
    assert.equal(bad.code, 1)
    assert.equal(bad.stderr, 'pilot-tun: wrong token for network 3 [PT_NETWORK_BAD_TOKEN]\nhint: ask an owner for the token\n')
    const rm = await run(['network', 'remove', 'lab', 'bob', '--json', '--control-socket', sock])
    assert.equal(rm.code, 1)
    assert.deepEqual(JSON.parse(rm.stdout).error, { code: 'PT_NETWORK_NOT_ADMIN', message: 'node 5 is a member of network 3, not an owner or admin', hint: 'only owners/admins can remove members' })
    const nf = await run(['network', 'members', 'nosuch', '--control-socket', sock])
    assert.equal(nf.code, 1)
    assert.match(nf.stderr, /no network "nosuch" \[PT_NETWORK_NOT_FOUND\]\nhint: see `pilot-tun network list`/)
    const zero = await run(['network', 'leave', '0', '--control-socket', sock])
    assert.match(zero.stderr, /PT_NETWORK_NOT_FOUND/, 'the backbone is not a network one leaves')
    const taken = await run(['network', 'create', 'taken', '--control-socket', sock])
    assert.match(taken.stderr, /PT_NETWORK_EXISTS/)
  })
})

test('bad arguments: a clear message, exit 2, nothing sent to the daemon', async () => {
  await withServer(async (sock, reg) => {
    const cases: Array<[string[], RegExp]> = [
      [['network', 'create', 'x', '--allowed-ports', '80,0'], /--allowed-ports: "0" is not a port/],
      [['network', 'create', 'x', '--allowed-ports', '80,http'], /"http" is not a port/],
      [['network', 'policy', 'lab', '--allowed-ports', '70000'], /"70000" is not a port/],
      [['network', 'policy', 'lab', '--max-members', '0'], /--max-members 0 is out of range/],
      [['network', 'create', 'x', '--join-rule', 'token'], /--join-rule token needs --token/],
      [['network', 'create', 'x', '--token', 't'], /--token only goes with --join-rule token/],
      [['network', 'create', 'x', '--join-rule', 'secret'], /Invalid values:[\s\S]*join-rule/],
      [['network', 'role', 'lab', 'bob', 'boss'], /Invalid values:[\s\S]*role/],
      [['network', 'role', 'lab', 'bob'], /Not enough non-option arguments/],
      [['network', 'invite', 'lab'], /Not enough non-option arguments/],
      [['network', 'invite', 'lab', 'bob', '--ttl', 'forever'], /--ttl "forever" is not a duration/],
      [['network', 'invite', 'lab', 'bob', '--ttl', '90d'], /--ttl 90d is out of range/],
      [['network'], /Not enough non-option arguments/],
      [['audit', '--local', '--network', '3'], /mutually exclusive/],
    ]
    for (const [args, message] of cases) {
      const r = await run([...args, '--control-socket', sock])
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`)
      assert.match(r.stderr, message, args.join(' '))
      assert.match(r.stderr, /PT_CLI_USAGE/)
    }
    assert.deepEqual(reg.calls, [], 'the daemon was never asked')
  })
})

test('the control methods check their parameters themselves (other clients than the CLI)', async () => {
  await withServer(async (sock, reg) => {
    const c = await ControlClient.connect(sock)
    try {
      const refusals: Array<[string, object, RegExp]> = [
        ['network.create', { name: 'x', join_rule: 'open', allowed_ports: [0] }, /allowed port 0 is out of range/],
        ['network.create', { name: 'x', join_rule: 'open', allowed_ports: '80' }, /must be a list of ports/],
        ['network.create', { name: 'x', join_rule: 'token' }, /needs a token/],
        ['network.policy', { network: 'lab', max_members: 2_000_000 }, /1\.\.1000000/],
        ['network.role', { network: 'lab', node: 'bob', role: 'king' }, /owner, admin, member/],
        ['network.join', { network: 'lab', sneaky: 1 }, /unknown parameter "sneaky"/],
        ['network.leave', {}, /missing parameter "network"/],
        ['audit.list', { local: 'yes' }, /true or false/],
      ]
      for (const [method, params, message] of refusals) {
        await assert.rejects(c.call(method, params as never), (err: PilotError) => {
          assert.equal(err.code, 'PT_CONTROL_BAD_REQUEST', method)
          assert.match(err.message, message)
          return true
        })
      }
      assert.deepEqual(reg.calls, [])
    } finally {
      c.close()
    }
  })
})

test('audit lists a chain; audit verify exits 1 naming the first broken entry; --local checks the trust log', async () => {
  await withServer(async (sock, reg, ctx) => {
    reg.entries = [entry(1, 'create', 0, 'name=lab;rule=token'), entry(2, 'join', 7, 'rule=token'), entry(3, 'policy', 0, '{"allowed_ports":[80],"max_members":10,"members_resolve":true}')]
    const a = await run(['audit', '--network', 'lab', '--control-socket', sock])
    assert.equal(a.code, 0, a.stderr)
    assert.match(a.stdout, /^the audit chain of network 3:\nSEQ\s+TIME\s+ACTOR\s+ACTION\s+SUBJECT\s+DETAIL\n1\s+\S+\s+5\s+create\s+-\s+name=lab;rule=token\n2\s+\S+\s+5\s+join\s+7\s+rule=token\n/)
    const aj = JSON.parse((await run(['audit', '--network', '3', '--json', '--control-socket', sock])).stdout)
    assert.equal(aj.entries.length, 3)
    assert.deepEqual(Object.keys(aj.entries[0]), ['seq', 'network_id', 'time', 'actor', 'actor_key', 'action', 'subject', 'detail', 'signed', 'signature', 'prev', 'hash'])

    const trust = await run(['audit', '--control-socket', sock])
    assert.equal(trust.code, 1, 'chain 0 without the admin token is refused by the registry')
    assert.match(trust.stderr, /PT_NETWORK_NOT_ADMIN/)
    assert.equal((await run(['audit', '--admin-token', 'root', '--control-socket', sock])).code, 0)
    assert.deepEqual(reg.calls.at(-1), ['auditLog', SELF, 0, { adminToken: 'root' }])

    const ok = await run(['audit', 'verify', '--network', 'lab', '--control-socket', sock])
    assert.equal(ok.code, 0, ok.stderr)
    assert.match(ok.stdout, /the audit chain of network 3: 3 entries, intact/)
    ctx.verdict = { ok: false, entries: 3, firstBroken: 2, reason: 'entry 2: hash mismatch' }
    const broken = await run(['audit', 'verify', '--network', 'lab', '--control-socket', sock])
    assert.equal(broken.code, 1)
    assert.equal(broken.stdout, 'the audit chain of network 3 is BROKEN at entry 2: entry 2: hash mismatch\n')
    const bj = await run(['audit', 'verify', '--network', 'lab', '--json', '--control-socket', sock])
    assert.equal(bj.code, 1)
    assert.deepEqual(JSON.parse(bj.stdout), { ok: false, network_id: 3, local: false, entries: 3, first_broken: 2, reason: 'entry 2: hash mismatch' })

    await ctx.log.append('approve', 7)
    await ctx.log.append('revoke', 7, 'done')
    const local = await run(['audit', '--local', '--control-socket', sock])
    assert.match(local.stdout, /^the local trust log:\nSEQ\s+TIME\s+ACTION\s+PEER\s+DETAIL\n1\s+\S+\s+approve\s+7\s+-\n2\s+\S+\s+revoke\s+7\s+done\n$/)
    assert.equal((await run(['audit', 'verify', '--local', '--control-socket', sock])).code, 0)
    const file = join(ctx.dir, 'trust-log.jsonl')
    writeFileSync(file, readFileSync(file, 'utf8').replace('"action":"approve"', '"action":"reject"'))
    const altered = await run(['audit', 'verify', '--local', '--control-socket', sock])
    assert.equal(altered.code, 1)
    assert.match(altered.stdout, /the local trust log is BROKEN at entry 1: entry 1 was altered/)
  })
})
