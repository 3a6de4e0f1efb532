// NetworkView (issue 13) with a fake NetworkSource and a hand-moved clock:
// joins/leaves/changes reach the listeners (awaited, in order) before refresh
// resolves, an outage keeps the last view, refreshSoon is rate-limited per
// network, membership and port checks, host.netname lookups, no timer left.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { NetworkView, type NetworkChange, type NetworkSource } from '../../src/daemon/network-view.js'
import { nullLogger } from '../../src/logger.js'
import type { NetworkInfo, NetworkMember } from '../../src/registry/network-types.js'

const SELF = 5

function member(nodeId: number, role: NetworkMember['role'] = 'member', hostname?: string): NetworkMember {
  return { nodeId, role, address: `1:0000.0000.${nodeId.toString(16).padStart(4, '0')}`, ...(hostname === undefined ? {} : { hostname }) }
}

function info(id: number, name: string, members: NetworkMember[], allowedPorts: number[] = []): NetworkInfo {
  return { id, name, joinRule: 'open', created: 1, policy: { maxMembers: 10, allowedPorts, membersResolve: true }, members }
}

class FakeSource implements NetworkSource {
  nets = new Map<number, NetworkInfo>()
  down = false
  infoCalls: number[] = []
  listCalls = 0
  gate: Promise<void> | null = null
  async myNetworks(): Promise<number[]> {
    this.listCalls++
    if (this.gate !== null) await this.gate
    if (this.down) throw new Error('registry unreachable')
    return [0, ...[...this.nets.values()].filter((n) => n.members.some((m) => m.nodeId === SELF)).map((n) => n.id)]
  }
  async info(id: number): Promise<NetworkInfo> {
    this.infoCalls.push(id)
    if (this.down) throw new Error('registry unreachable')
    const n = this.nets.get(id)
    if (n === undefined) throw Object.assign(new Error('no such network'), { code: 'PT_NETWORK_NOT_FOUND' })
    if (!n.members.some((m) => m.nodeId === SELF)) throw Object.assign(new Error('not a member'), { code: 'PT_NETWORK_NOT_MEMBER' })
    return structuredClone(n)
  }
}

function view(source: NetworkSource, now = () => 0): NetworkView {
  return new NetworkView({ source, logger: nullLogger, refreshMs: 60_000, now, selfId: SELF })
}

test('refresh: joins, changes and leaves reach the listeners in order, awaited, before refresh resolves', async () => {
  const src = new FakeSource()
  const v = view(src)
  const seen: string[] = []
  v.onChange(async (c) => {
    await new Promise((r) => setTimeout(r, 5))
    seen.push(`a:${JSON.stringify(c)}`)
  })
  v.onChange((c) => {
    seen.push(`b:${JSON.stringify(c)}`)
  })
  await v.refresh()
  assert.equal(seen.length, 0, 'no networks, no change')
  assert.deepEqual(v.joined(), [])

  src.nets.set(1, info(1, 'Lab', [member(SELF, 'owner'), member(7, 'member', 'bob')], [80, 443]))
  src.nets.set(2, info(2, 'ops', [member(9)]))
  await v.refresh()
  const joined: NetworkChange = { joined: [1], left: [], changed: [] }
  assert.deepEqual(seen, [`a:${JSON.stringify(joined)}`, `b:${JSON.stringify(joined)}`], 'both listeners ran, in order, before refresh resolved')
  assert.deepEqual(v.joined().map((s) => s.id), [1], 'network 2 is not ours; network 0 is never listed')
  assert.equal(v.get(1)?.role, 'owner')
  assert.equal(v.byName('LAB')?.id, 1, 'names are case-insensitive')
  assert.equal(v.isMember(1, 7), true)
  assert.equal(v.isMember(1, 9), false)
  assert.equal(v.isMember(2, 9), false, 'not in a network we are not in')
  assert.equal(v.isMember(0, 12345), true, 'network 0: everyone')
  assert.equal(v.portAllowed(1, 80), true)
  assert.equal(v.portAllowed(1, 22), false)
  assert.equal(v.portAllowed(0, 22), true)
  assert.equal(v.portAllowed(2, 22), false, 'unknown network: nothing allowed')

  seen.length = 0
  src.nets.get(1)!.policy.allowedPorts = []
  await v.refresh()
  assert.deepEqual(seen.map((s) => s.slice(2)), [JSON.stringify({ joined: [], left: [], changed: [1] })].flatMap((x) => [x, x]))
  assert.equal(v.portAllowed(1, 22), true, 'empty allowed_ports = every port')

  seen.length = 0
  await v.refresh()
  assert.equal(seen.length, 0, 'nothing changed: no event')

  src.nets.get(1)!.members = src.nets.get(1)!.members.filter((m) => m.nodeId !== SELF)
  await v.refresh()
  assert.deepEqual(seen.map((s) => s.slice(2)), [JSON.stringify({ joined: [], left: [1], changed: [] })].flatMap((x) => [x, x]))
  assert.equal(v.isMember(1, 7), false, 'after leaving, nobody is a member for us')
  assert.equal(v.stats().networks, 0)
})

test('a registry outage keeps the last known view; a throwing listener is counted, not fatal', async () => {
  const src = new FakeSource()
  src.nets.set(3, info(3, 'lab', [member(SELF), member(8)]))
  const v = view(src)
  let second = 0
  v.onChange(() => {
    throw new Error('listener bug')
  })
  v.onChange(() => {
    second++
  })
  await v.refresh()
  assert.equal(second, 1, 'the second listener runs although the first threw')
  assert.equal(v.stats().listenerErrors, 1)
  src.down = true
  await v.refresh()
  await v.refresh(3)
  assert.equal(v.stats().refreshErrors, 2)
  assert.equal(v.isMember(3, 8), true, 'still a member while the registry is down')
  src.down = false
  src.nets.delete(3)
  await v.refresh(3)
  assert.equal(v.get(3), undefined, 'a definite "no such network" from the registry drops it')
})

test('refreshSoon: at most once per second per network', async () => {
  const src = new FakeSource()
  src.nets.set(1, info(1, 'a', [member(SELF)]))
  src.nets.set(2, info(2, 'b', [member(SELF)]))
  let now = 10_000
  const v = view(src, () => now)
  await v.refresh()
  src.infoCalls.length = 0
  v.refreshSoon(1)
  v.refreshSoon(1)
  v.refreshSoon(1)
  v.refreshSoon(2)
  await v.refresh() // waits for the rounds in flight (and one more)
  const ones = src.infoCalls.filter((n) => n === 1).length
  src.infoCalls.length = 0
  v.refreshSoon(1)
  now += 500
  v.refreshSoon(1)
  await new Promise((r) => setTimeout(r, 20))
  assert.equal(src.infoCalls.filter((n) => n === 1).length, 0, 'within a second of the last: nothing asked')
  now += 600
  v.refreshSoon(1)
  await new Promise((r) => setTimeout(r, 20))
  assert.equal(src.infoCalls.filter((n) => n === 1).length, 1, 'a second later: asked again')
  assert.ok(ones <= 3, `a burst of misses costs a bounded number of asks (${ones})`)
  v.refreshSoon(0)
  v.close()
})

test('concurrent refresh calls share a round and one follow-up; refresh after close does nothing', async () => {
  const src = new FakeSource()
  src.nets.set(1, info(1, 'a', [member(SELF)]))
  let open!: () => void
  src.gate = new Promise((r) => (open = r))
  const v = view(src)
  const all = [v.refresh(), v.refresh(), v.refresh(), v.refresh()]
  open()
  src.gate = null
  await Promise.all(all)
  assert.equal(src.listCalls, 2, 'one round and one follow-up, not four')
  v.close()
  await v.refresh()
  assert.equal(src.listCalls, 2)
})

test('start refreshes now and periodically; close leaves no timer', async () => {
  const src = new FakeSource()
  src.nets.set(1, info(1, 'a', [member(SELF)]))
  const v = new NetworkView({ source: src, logger: nullLogger, refreshMs: 10, selfId: SELF })
  v.start()
  await new Promise((r) => setTimeout(r, 80))
  v.close()
  const calls = src.listCalls
  assert.ok(calls >= 3, `refreshed periodically (${calls})`)
  await new Promise((r) => setTimeout(r, 50))
  assert.equal(src.listCalls, calls, 'nothing after close')
})

test('resolveInNetwork: host.netname only when we and it are members', async () => {
  const src = new FakeSource()
  src.nets.set(4, info(4, 'lab', [member(SELF), member(7, 'member', 'Bob')]))
  const v = view(src)
  await v.refresh()
  assert.deepEqual(await v.resolveInNetwork('lab', 'bob'), { network: 4, node_id: 7 })
  assert.equal(await v.resolveInNetwork('other', 'bob'), null, 'a network we are not in')
  assert.equal(await v.resolveInNetwork('lab', 'carol'), null, 'no such member')
  assert.equal(await v.resolveInNetwork('lab', 'carol', async () => 99), null, 'resolves, but not a member')
  assert.deepEqual(await v.resolveInNetwork('lab', 'seven', async () => 7), { network: 4, node_id: 7 }, 'a member found by the resolver')
})
