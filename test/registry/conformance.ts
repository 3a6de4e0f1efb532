/**
 * One suite for every RegistryStore backend (issue 14): SQLite
 * (conformance-sqlite.test.ts) and PostgreSQL (conformance-postgres.test.ts)
 * must answer every call the same way, so neither can drift. The semantics
 * are the SQLite store's as it was before the interface (store.ts,
 * network-store.ts): keys never pruned, node rows never deleted, hostnames
 * unique among online nodes, heartbeats gathered, transactions all or nothing.
 *
 * `openShared` (backends several front ends can share) adds the races: IDs
 * from several stores at once, maintenance once per interval, shared rate
 * windows, audit chains appended from two front ends, hostname races.
 */
import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { Identity } from '../../src/crypto/identity.js'
import { verifyAuditChain } from '../../src/registry/audit-chain.js'
import { RegistryError, RegistryErrorCode } from '../../src/registry/errors.js'
import type { AuditEntry } from '../../src/registry/network-types.js'
import type { NetworkRecord, NewAuditEntry, RegistryStore } from '../../src/registry/store-api.js'

export interface ConformanceOptions {
  /** `n` stores on one fresh database, as n front ends would open it. */
  openShared?: (n: number) => Promise<RegistryStore[]>
  /** Why there is no openShared (printed as the skip reason). */
  sharedSkip?: string
}

const T0 = 1_795_776_000_000

function key(i: number): string {
  return Buffer.alloc(32, i).toString('base64')
}

async function newNode(s: RegistryStore, i: number, now = T0) {
  return s.createNode({ publicKey: key(i), owner: null, realAddr: `10.0.0.${i}:9000`, now })
}

const NET: Omit<NetworkRecord, 'id'> = {
  name: 'alpha',
  joinRule: 'open',
  tokenSalt: null,
  tokenHash: null,
  policy: { maxMembers: 10, allowedPorts: [80, 443], membersResolve: true },
  created: 1_795_776_000,
}

/** A trust entry that verifyAuditChain accepts: `report_trust:<actor>:<subject>` signed by the actor. */
export function trustEntry(id: Identity, actor: number, subject: number, time = T0): NewAuditEntry {
  const signed = `report_trust:${actor}:${subject}`
  return {
    networkId: 0,
    time,
    actor,
    actorKey: Buffer.from(id.publicKey).toString('base64'),
    action: 'trust',
    subject,
    detail: '',
    signed,
    signature: id.signChallenge(signed),
  }
}

async function allAudit(s: RegistryStore, networkId: number): Promise<AuditEntry[]> {
  return s.networks.listAudit(networkId, 0, 100_000)
}

export function registryStoreConformance(name: string, open: () => Promise<RegistryStore>, options: ConformanceOptions = {}): void {
  const withStore = (title: string, fn: (s: RegistryStore, t: TestContext) => Promise<void>): void => {
    test(`${name}: ${title}`, async (t) => {
      const s = await open()
      try {
        await fn(s, t)
      } finally {
        await s.close()
      }
    })
  }

  withStore('schema version and kind', async (s) => {
    assert.equal(await s.schemaVersion(), 3)
    assert.ok(s.kind === 'sqlite' || s.kind === 'postgres')
    assert.equal(typeof s.location, 'string')
  })

  withStore('createNode hands out 1, 2, 3 and indexes the key', async (s) => {
    const a = await newNode(s, 1)
    const b = await newNode(s, 2)
    const c = await newNode(s, 3)
    assert.deepEqual([a.id, b.id, c.id], [1, 2, 3])
    assert.deepEqual(a, {
      id: 1,
      publicKey: key(1),
      owner: null,
      realAddr: '10.0.0.1:9000',
      isPublic: false,
      hostname: null,
      tags: [],
      poloScore: 0,
      taskExec: false,
      lastSeen: T0,
      online: true,
    })
    assert.deepEqual(await s.findKey(key(2)), { nodeId: 2, retired: false })
    assert.equal(await s.findKey(key(9)), null)
    assert.equal(await s.getNode(9), null)
    assert.equal(await s.countOnline(), 3)
    assert.deepEqual((await s.listNodes()).map((n) => n.id), [1, 2, 3])
  })

  withStore('node settings, offline and revive', async (s) => {
    const a = await newNode(s, 1)
    await s.setVisibility(a.id, true)
    await s.setTags(a.id, ['gpu', 'eu'])
    await s.setTaskExec(a.id, true)
    await s.setPoloScore(a.id, 42)
    await s.setEndpoint(a.id, '192.0.2.1:4000', 'alice@example.com')
    assert.equal(await s.setHostname(a.id, 'alpha'), true)
    let n = (await s.getNode(a.id))!
    assert.deepEqual(
      [n.isPublic, n.tags, n.taskExec, n.poloScore, n.realAddr, n.owner, n.hostname],
      [true, ['gpu', 'eu'], true, 42, '192.0.2.1:4000', 'alice@example.com', 'alpha'],
    )
    assert.equal((await s.findOnlineByHostname('alpha'))?.id, a.id)
    // Online revive keeps the settings, refreshes endpoint and last_seen, keeps the owner when none is given.
    n = await s.reviveNode(a.id, { owner: null, realAddr: '192.0.2.2:4000', now: T0 + 5 })
    assert.deepEqual([n.isPublic, n.hostname, n.owner, n.realAddr, n.lastSeen], [true, 'alpha', 'alice@example.com', '192.0.2.2:4000', T0 + 5])
    await s.markOffline(a.id)
    n = (await s.getNode(a.id))!
    assert.deepEqual([n.online, n.hostname, n.poloScore, n.publicKey], [false, null, 42, key(1)])
    assert.equal(await s.findOnlineByHostname('alpha'), null)
    assert.equal(await s.countOnline(), 0)
    // Offline revive comes back with a fresh registration's defaults; score and key stay.
    n = await s.reviveNode(a.id, { owner: 'bob', realAddr: '192.0.2.3:4000', now: T0 + 9 })
    assert.deepEqual(
      [n.online, n.isPublic, n.hostname, n.tags, n.taskExec, n.poloScore, n.owner],
      [true, false, null, [], false, 42, 'bob'],
    )
    await assert.rejects(s.reviveNode(99, { owner: null, realAddr: '1.1.1.1:1', now: T0 }))
  })

  withStore('hostnames are unique among online nodes', async (s) => {
    const a = await newNode(s, 1)
    const b = await newNode(s, 2)
    assert.equal(await s.setHostname(a.id, 'web'), true)
    assert.equal(await s.setHostname(b.id, 'web'), false)
    assert.equal(await s.setHostname(a.id, 'web'), true, 'the holder may set it again')
    assert.equal((await s.getNode(b.id))!.hostname, null)
    await s.markOffline(a.id)
    assert.equal(await s.setHostname(b.id, 'web'), true, 'an offline node holds no name')
    assert.equal(await s.setHostname(b.id, null), true)
    assert.equal(await s.findOnlineByHostname('web'), null)
  })

  withStore('rotateKey retires the old key and keeps it indexed', async (s) => {
    const a = await newNode(s, 1)
    await s.rotateKey(a.id, key(7), T0 + 1)
    assert.equal((await s.getNode(a.id))!.publicKey, key(7))
    assert.deepEqual(await s.findKey(key(1)), { nodeId: a.id, retired: true })
    assert.deepEqual(await s.findKey(key(7)), { nodeId: a.id, retired: false })
    await assert.rejects(s.rotateKey(99, key(8), T0))
    assert.equal(await s.findKey(key(8)), null, 'a failed rotate changes nothing')
  })

  withStore('heartbeats are gathered, visible at once, written by flushTouches, and spare a node from the reaper', async (s) => {
    const a = await newNode(s, 1)
    const b = await newNode(s, 2)
    const c = await newNode(s, 3)
    s.touchNode(a.id, T0 + 50_000)
    s.touchNode(a.id, T0 + 60_000)
    assert.equal((await s.getNode(a.id))!.lastSeen, T0 + 60_000)
    await s.flushTouches()
    await s.flushTouches() // nothing gathered: a no-op
    assert.equal((await s.getNode(a.id))!.lastSeen, T0 + 60_000)
    s.touchNode(c.id, T0 + 70_000) // gathered, not flushed: the reaper flushes first
    await s.setHostname(b.id, 'bee')
    assert.deepEqual(await s.reapStale(T0 + 30_000), [b.id])
    const reaped = (await s.getNode(b.id))!
    assert.deepEqual([reaped.online, reaped.hostname], [false, null])
    assert.equal(await s.countOnline(), 2)
    assert.deepEqual(await s.reapStale(T0 + 30_000), [])
  })

  withStore('trust pairs and reports', async (s) => {
    for (let i = 1; i <= 3; i++) await newNode(s, i)
    await s.addTrustPair(3, 1, 'handshake', T0)
    await s.addTrustPair(1, 3, 'mutual-report', T0) // already there: ignored
    assert.equal(await s.hasTrustPair(1, 3), true)
    assert.equal(await s.hasTrustPair(3, 1), true)
    assert.equal(await s.hasTrustPair(1, 2), false)
    assert.deepEqual(await s.listTrustPairs(), [{ nodeA: 1, nodeB: 3, origin: 'handshake', created: T0 }])
    assert.equal(await s.addTrustReport(1, 2, T0), true)
    assert.equal(await s.addTrustReport(1, 2, T0), false)
    assert.equal(await s.hasTrustReport(1, 2), true)
    assert.equal(await s.hasTrustReport(2, 1), false)
    await s.putHandshakeRequest(2, 1, 'hi', 1, T0)
    assert.equal(await s.removeTrust(2, 1), true)
    assert.equal(await s.hasTrustReport(1, 2), false)
    assert.equal(await s.hasHandshakeRequest(2, 1), false, 'removeTrust drops requests between them')
    assert.equal(await s.removeTrust(1, 2), false)
    assert.equal(await s.removeTrust(3, 1), true)
    assert.deepEqual(await s.listTrustPairs(), [])
  })

  withStore('handshake inboxes', async (s) => {
    for (let i = 1; i <= 4; i++) await newNode(s, i)
    await s.putHandshakeRequest(2, 1, 'from two', 100, T0 + 2)
    await s.putHandshakeRequest(3, 1, 'from three', 101, T0 + 1)
    assert.equal(await s.hasHandshakeRequest(2, 1), true)
    assert.equal(await s.countUnpolledRequests(1, 3), 1)
    assert.equal(await s.countUnpolledRequests(1, 4), 2)
    assert.deepEqual(await s.takeHandshakeRequests(1), [
      { fromNodeId: 3, justification: 'from three', timestamp: 101 },
      { fromNodeId: 2, justification: 'from two', timestamp: 100 },
    ])
    assert.deepEqual(await s.takeHandshakeRequests(1), [], 'polled requests are delivered once')
    assert.equal(await s.hasHandshakeRequest(2, 1), true, 'a polled request stays until answered')
    assert.equal(await s.countUnpolledRequests(1, 4), 0)
    await s.putHandshakeRequest(2, 1, 'again', 102, T0 + 3) // a refresh is delivered again
    assert.deepEqual(await s.takeHandshakeRequests(1), [{ fromNodeId: 2, justification: 'again', timestamp: 102 }])
    assert.equal(await s.pruneAnsweredlessRequests(T0 + 3), 1, 'only polled requests received before the cutoff')
    assert.equal(await s.hasHandshakeRequest(3, 1), false)
    assert.equal(await s.deleteHandshakeRequest(2, 1), true)
    assert.equal(await s.deleteHandshakeRequest(2, 1), false)
    await s.putHandshakeResponse(4, 1, true, 200)
    await s.putHandshakeResponse(2, 1, false, 201)
    await s.putHandshakeResponse(4, 1, false, 202) // the newest answer wins, in its first place
    assert.deepEqual(await s.takeHandshakeResponses(1), [
      { fromNodeId: 4, accept: false, timestamp: 202 },
      { fromNodeId: 2, accept: false, timestamp: 201 },
    ])
    assert.deepEqual(await s.takeHandshakeResponses(1), [])
  })

  withStore('beacons', async (s) => {
    await s.putBeacon(2, '192.0.2.2:9001', T0)
    await s.putBeacon(1, '192.0.2.1:9001', T0 + 10)
    await s.putBeacon(2, '192.0.2.22:9001', T0 + 20)
    assert.deepEqual(await s.listBeacons(T0 + 10), [
      { id: 1, addr: '192.0.2.1:9001', lastSeen: T0 + 10 },
      { id: 2, addr: '192.0.2.22:9001', lastSeen: T0 + 20 },
    ])
    assert.equal(await s.pruneBeacons(T0 + 15), 1)
    assert.deepEqual((await s.listBeacons(0)).map((b) => b.id), [2])
  })

  withStore('takeRateToken counts fixed windows per key', async (s) => {
    const results: boolean[] = []
    for (let i = 0; i < 4; i++) results.push(await s.takeRateToken('token:7', 3, 60_000, T0 + i))
    assert.deepEqual(results, [true, true, true, false])
    assert.equal(await s.takeRateToken('token:8', 3, 60_000, T0), true, 'keys are independent')
    assert.equal(await s.takeRateToken('token:7', 3, 60_000, T0 + 60_000), true, 'a new window starts over')
    assert.equal(await s.takeRateToken('token:7', 0, 60_000, T0 + 60_000), false)
  })

  withStore('maintain runs once per interval', async (s) => {
    let runs = 0
    const job = async (): Promise<string> => {
      runs++
      return 'done'
    }
    assert.equal(await s.maintain('reap', 60_000, T0, job), 'done')
    assert.equal(await s.maintain('reap', 60_000, T0 + 59_999, job), null)
    assert.equal(await s.maintain('prune', 60_000, T0 + 1, job), 'done', 'names are independent')
    assert.equal(await s.maintain('reap', 60_000, T0 + 60_000, job), 'done')
    assert.equal(runs, 3)
  })

  withStore('a transaction is all or nothing, and multi-row calls join it', async (s) => {
    const a = await newNode(s, 1)
    await assert.rejects(
      s.transaction(async (tx) => {
        const b = await tx.createNode({ publicKey: key(2), owner: null, realAddr: '1.1.1.1:1', now: T0 })
        assert.ok((await tx.getNode(b.id)) !== null, 'a transaction reads its own writes')
        await tx.setTags(a.id, ['changed'])
        assert.equal(await tx.setHostname(a.id, 'inside'), true)
        await tx.addTrustPair(a.id, b.id, 'handshake', T0)
        await tx.networks.createNetwork(NET)
        await tx.networks.appendAudit(trustEntry(Identity.generate(), a.id, b.id))
        throw new Error('boom')
      }),
      /boom/,
    )
    assert.equal(await s.findKey(key(2)), null)
    assert.deepEqual((await s.getNode(a.id))!.tags, [])
    assert.equal((await s.getNode(a.id))!.hostname, null)
    assert.deepEqual(await s.listTrustPairs(), [])
    assert.equal(await s.networks.findNetworkByName('alpha'), null)
    assert.deepEqual(await allAudit(s, 0), [])
    const id = await s.transaction(async (tx) => {
      const b = await tx.createNode({ publicKey: key(2), owner: null, realAddr: '1.1.1.1:1', now: T0 })
      await tx.addTrustPair(a.id, b.id, 'handshake', T0)
      return b.id
    })
    assert.equal((await s.findKey(key(2)))?.nodeId, id)
    assert.equal(await s.hasTrustPair(a.id, id), true)
  })

  withStore('networks, members and policy', async (s) => {
    for (let i = 1; i <= 4; i++) await newNode(s, i)
    const id = (await s.networks.createNetwork(NET))!
    assert.equal(id, 1)
    assert.equal(await s.networks.createNetwork(NET), null, 'the name is taken')
    const beta = (await s.networks.createNetwork({ ...NET, name: 'beta', joinRule: 'token', tokenSalt: 'aa', tokenHash: 'bb', policy: { ...NET.policy, membersResolve: false } }))!
    assert.equal(beta, 2)
    assert.deepEqual(await s.networks.getNetwork(id), { ...NET, id })
    assert.equal((await s.networks.findNetworkByName('beta'))?.tokenHash, 'bb')
    assert.equal(await s.networks.getNetwork(99), null)
    await s.networks.addMember(id, 1, 'owner', T0)
    await s.networks.addMember(id, 3, 'member', T0)
    await s.networks.addMember(id, 2, 'admin', T0)
    await s.networks.addMember(beta, 1, 'owner', T0)
    await s.networks.addMember(beta, 4, 'member', T0)
    await s.setHostname(2, 'two')
    await s.setHostname(3, 'three')
    await s.markOffline(3)
    assert.deepEqual(await s.networks.listMembers(id), [
      { nodeId: 1, role: 'owner', hostname: null },
      { nodeId: 2, role: 'admin', hostname: 'two' },
      { nodeId: 3, role: 'member', hostname: null },
    ])
    assert.deepEqual((await s.networks.listMembers(id, 1, 1)).map((m) => m.nodeId), [2])
    assert.equal(await s.networks.countMembers(id), 3)
    assert.equal(await s.networks.countOwners(id), 1)
    assert.equal(await s.networks.roleOf(id, 2), 'admin')
    assert.equal(await s.networks.roleOf(id, 4), null)
    await s.networks.setRole(id, 2, 'owner')
    assert.equal(await s.networks.countOwners(id), 2)
    assert.deepEqual(await s.networks.networksOf(1), [id, beta])
    assert.equal(await s.networks.shareResolvableNetwork(1, 3), true)
    assert.equal(await s.networks.shareResolvableNetwork(1, 4), false, 'beta does not let members resolve')
    assert.deepEqual(
      (await s.networks.listNetworks()).map((n) => [n.id, n.name, n.members]),
      [
        [id, 'alpha', 3],
        [beta, 'beta', 2],
      ],
    )
    assert.equal(await s.networks.removeMember(id, 3), true)
    assert.equal(await s.networks.removeMember(id, 3), false)
    const policy = { maxMembers: 5, allowedPorts: [22], membersResolve: false }
    await s.networks.setPolicy(id, policy)
    assert.deepEqual((await s.networks.getNetwork(id))!.policy, policy)
    await assert.rejects(s.networks.addMember(id, 1, 'member', T0), 'a member twice is refused')
  })

  withStore('invites and nonces', async (s) => {
    for (let i = 1; i <= 2; i++) await newNode(s, i)
    const id = (await s.networks.createNetwork(NET))!
    const invite = (nonce: string, expires: number) => ({ networkId: id, nonce, inviterId: 1, inviteeId: 2, expires, signature: `sig-${nonce}` })
    await s.networks.putInvite(invite('aa', 1000), false, T0)
    await s.networks.putInvite(invite('bb', 2000), false, T0)
    await s.networks.putInvite(invite('cc', 2000), false, T0)
    await s.networks.putInvite(invite('dd', 3000), true, T0)
    assert.deepEqual(await s.networks.getInvite(id, 'dd'), { ...invite('dd', 3000), used: true })
    assert.equal(await s.networks.getInvite(id, 'zz'), null)
    assert.deepEqual(
      (await s.networks.unusedInvitesFor(id, 2)).map((i) => i.nonce),
      ['cc', 'bb', 'aa'],
      'newest expiry first, then the later stored',
    )
    await s.networks.markInviteUsed(id, 'cc')
    assert.equal((await s.networks.getInvite(id, 'cc'))!.used, true)
    assert.equal(await s.networks.pruneExpiredInvites(1500), 1)
    assert.deepEqual((await s.networks.unusedInvitesFor(id, 2)).map((i) => i.nonce), ['bb'])
    assert.equal(await s.networks.useNonce(1, 'n1', T0), true)
    assert.equal(await s.networks.useNonce(1, 'n1', T0 + 1), false, 'a replay')
    assert.equal(await s.networks.useNonce(2, 'n1', T0), true, 'nonces are per node')
    assert.equal(await s.networks.pruneNonces(T0 + 1), 2)
    assert.equal(await s.networks.useNonce(1, 'n1', T0 + 2), true)
  })

  withStore('audit chains: seq, prev and hash computed at append, one chain per network', async (s) => {
    const alice = Identity.generate()
    const e1 = await s.networks.appendAudit(trustEntry(alice, 1, 2, T0))
    const e2 = await s.networks.appendAudit(trustEntry(alice, 1, 3, T0 + 1))
    assert.deepEqual([e1.seq, e2.seq, e2.prev], [1, 2, e1.hash])
    const chain = await allAudit(s, 0)
    assert.deepEqual(chain, [e1, e2])
    assert.deepEqual(verifyAuditChain(chain), { ok: true, entries: 2, head: e2.hash })
    assert.deepEqual(await s.networks.listAudit(0, 1, 10), [e2])
    assert.deepEqual(await s.networks.listAudit(0, 0, 1), [e1])
    assert.deepEqual(await allAudit(s, 5), [])
  })

  // --- several front ends on one database ---------------------------------------

  const shared = (title: string, n: number, fn: (stores: RegistryStore[]) => Promise<void>): void => {
    test(`${name}: ${title}`, async (t) => {
      if (options.openShared === undefined) {
        t.skip(options.sharedSkip ?? 'this backend is not shared by several front ends')
        return
      }
      const stores = await options.openShared(n)
      try {
        await fn(stores)
      } finally {
        await Promise.all(stores.map((s) => s.close()))
      }
    })
  }

  shared('createNode from 3 stores at once never hands out an ID twice', 3, async (stores) => {
    const perStore = 60
    // Half on their own, half the way a registration does it: look the key up, then create, in one transaction.
    const register = (s: RegistryStore, tag: string) =>
      s.transaction(async (tx) => {
        const known = await tx.findKey(tagKey(tag))
        assert.equal(known, null)
        return tx.createNode({ publicKey: tagKey(tag), owner: null, realAddr: '10.1.1.1:1', now: T0 })
      })
    const made = await Promise.all(
      stores.map((s, k) =>
        Promise.all(Array.from({ length: perStore }, (_, i) => (i % 2 === 0 ? newNodeKey(s, `${k}-${i}`) : register(s, `${k}-${i}`)))),
      ),
    )
    const ids = made.flat().map((n) => n.id)
    assert.equal(new Set(ids).size, ids.length, 'every ID once')
    assert.equal(ids.length, stores.length * perStore)
    const all = await stores[0]!.listNodes()
    assert.equal(all.length, ids.length)
    for (const n of all) assert.equal((await stores[1]!.findKey(n.publicKey))?.nodeId, n.id)
  })

  shared('maintain runs once per interval across stores', 2, async ([a, b]) => {
    let runs = 0
    const job = async (): Promise<number> => ++runs
    for (let round = 0; round < 5; round++) {
      const now = T0 + round * 60_000
      const results = await Promise.all([a!.maintain('reap', 60_000, now, job), b!.maintain('reap', 60_000, now + 1, job)])
      assert.equal(results.filter((r) => r !== null).length, 1, `round ${round}: exactly one front end ran it`)
    }
    assert.equal(runs, 5)
  })

  shared('takeRateToken is one window across stores', 2, async ([a, b]) => {
    const tries = await Promise.all(Array.from({ length: 30 }, (_, i) => (i % 2 === 0 ? a! : b!).takeRateToken('token:*', 12, 60_000, T0 + i)))
    assert.equal(tries.filter((x) => x).length, 12)
  })

  shared('audit appended from two stores at once stays one valid chain', 2, async ([a, b]) => {
    const alice = Identity.generate()
    await Promise.all(
      Array.from({ length: 30 }, (_, i) => (i % 2 === 0 ? a! : b!).networks.appendAudit(trustEntry(alice, 1, i + 2, T0 + i))),
    )
    const chain = await allAudit(a!, 0)
    assert.equal(chain.length, 30)
    assert.deepEqual(verifyAuditChain(chain), { ok: true, entries: 30, head: chain[29]!.hash })
  })

  shared('a hostname race between two stores has one winner', 2, async ([a, b]) => {
    for (let i = 1; i <= 20; i++) await newNode(a!, i)
    for (let round = 0; round < 10; round++) {
      const x = 2 * round + 1
      const y = 2 * round + 2
      const won = await Promise.all([a!.setHostname(x, `name-${round}`), b!.setHostname(y, `name-${round}`)])
      assert.equal(won.filter((w) => w).length, 1, `round ${round}`)
      const holder = await b!.findOnlineByHostname(`name-${round}`)
      assert.equal(holder?.id, won[0] ? x : y)
    }
  })

  shared('one store flushes heartbeats, the other reads them', 2, async ([a, b]) => {
    const n = await newNode(a!, 1)
    a!.touchNode(n.id, T0 + 5_000)
    assert.equal((await b!.getNode(n.id))!.lastSeen, T0, 'gathered: not yet written')
    await a!.flushTouches()
    assert.equal((await b!.getNode(n.id))!.lastSeen, T0 + 5_000)
    b!.touchNode(n.id, T0 + 4_000) // older than what a wrote
    await b!.flushTouches()
    assert.equal((await a!.getNode(n.id))!.lastSeen, T0 + 5_000, 'a flush never moves last_seen back')
  })
}

function tagKey(tag: string): string {
  return Buffer.from(`key-${tag}`.padEnd(32, '.')).toString('base64')
}

function newNodeKey(s: RegistryStore, tag: string) {
  return s.createNode({ publicKey: tagKey(tag), owner: null, realAddr: '10.1.1.1:1', now: T0 })
}

/** True when `err` is the store-unavailable error every backend throws. */
export function isStoreError(err: unknown): boolean {
  return err instanceof RegistryError && err.code === RegistryErrorCode.STORE
}
