// Networks on the data path (issue 13): admission by membership and
// allowed_ports, the one-refresh re-check of a SYN from a node the view does
// not list yet, flows that end when we leave or the rules change, and our
// side of a flow in network N addressed N:node on the wire.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { SessionEndpoint, type StreamConnection } from '../../src/session/index.js'
import { SeededRandom } from '../../src/random.js'
import { SessionDriver } from '../../src/daemon/session-driver.js'
import { TrustAdmission } from '../../src/daemon/admission.js'
import { NetworkPaths, type NetworkViewLike } from '../../src/daemon/network-paths.js'
import { PilotStream } from '../../src/daemon/pilot-stream.js'
import { decodePacket, encodePacket, PacketHeader, Protocol } from '../../src/protocol/header.js'
import { nullLogger } from '../../src/logger.js'
import { Link } from './driver-pair.js'
import { readStream, waitFor } from './helpers.js'

type Change = { joined: number[]; left: number[]; changed: number[] }

/** A network view whose registry is a table the test edits; `refresh` copies it in. */
class FakeView implements NetworkViewLike {
  /** What the registry says: network → members and allowed ports. */
  readonly registry = new Map<number, { members: Set<number>; ports: number[] }>()
  private readonly known = new Map<number, { members: Set<number>; ports: number[] }>()
  private readonly listeners: Array<(c: Change) => void | Promise<void>> = []
  refreshes = 0

  constructor(readonly self: number) {}

  get(n: number): object | undefined {
    return this.known.get(n)
  }
  isMember(n: number, node: number): boolean {
    const k = this.known.get(n)
    return k !== undefined && k.members.has(this.self) && k.members.has(node)
  }
  portAllowed(n: number, port: number): boolean {
    const k = this.known.get(n)
    return k !== undefined && (k.ports.length === 0 || k.ports.includes(port))
  }
  async refresh(): Promise<void> {
    this.refreshes++
    await new Promise((r) => setTimeout(r, 5)) // a registry round trip
    const change: Change = { joined: [], left: [], changed: [] }
    for (const [n, v] of this.registry) {
      const mine = v.members.has(this.self)
      const had = this.known.has(n)
      if (mine && !had) change.joined.push(n)
      else if (!mine && had) change.left.push(n)
      else if (mine) change.changed.push(n)
      if (mine) this.known.set(n, { members: new Set(v.members), ports: [...v.ports] })
      else this.known.delete(n)
    }
    for (const l of this.listeners) await l(change)
  }
  soon = 0
  refreshSoon(): void {
    this.soon++
    void this.refresh()
  }
  onChange(l: (c: Change) => void | Promise<void>): () => void {
    this.listeners.push(l)
    return () => this.listeners.splice(this.listeners.indexOf(l), 1)
  }
}

/** Records what each side sends, then delivers it. */
class TapLink extends Link {
  readonly headers: PacketHeader[] = []
  override send(node: number, packet: Uint8Array): void {
    const h = new PacketHeader()
    decodePacket(packet, 0, h)
    this.headers.push(h)
    super.send(node, packet)
  }
}

const clock = { ms: 0 }

function node(id: number, view: FakeView, sink: Link) {
  const admission = new TrustAdmission({ isTrusted: () => false }, { now: () => clock.ms })
  const driver = new SessionDriver({
    endpoint: new SessionEndpoint({ local: { network: 0, node: id }, random: new SeededRandom(id) }),
    sink,
    admit: admission.admit,
    recheck: admission.recheck,
  })
  const ifaceCalls: string[] = []
  const iface = {
    addNetwork: async (n: number) => void ifaceCalls.push(`add ${n}`),
    removeNetwork: async (n: number) => void ifaceCalls.push(`remove ${n}`),
  }
  const paths = new NetworkPaths(view, driver, admission, iface, nullLogger)
  return { admission, driver, paths, ifaceCalls }
}

function world() {
  const la = new TapLink()
  const lb = new TapLink()
  const va = new FakeView(1)
  const vb = new FakeView(2)
  const a = node(1, va, la)
  const b = node(2, vb, lb)
  la.peer = b.driver
  lb.peer = a.driver
  const setNetwork = (n: number, members: number[], ports: number[]) => {
    va.registry.set(n, { members: new Set(members), ports })
    vb.registry.set(n, { members: new Set(members), ports })
  }
  const close = () => {
    a.driver.close()
    b.driver.close()
  }
  return { a, b, va, vb, la, lb, setNetwork, close }
}

function accepted(driver: SessionDriver, port: number): PilotStream[] {
  const out: PilotStream[] = []
  driver.listen(port, (conn: StreamConnection) => {
    const s = new PilotStream(driver, conn)
    s.on('error', () => {})
    out.push(s)
  })
  return out
}

async function dial(driver: SessionDriver, network: number, port: number): Promise<PilotStream | string> {
  const s = new PilotStream(driver, driver.connect({ network, node: 2 }, port))
  return new Promise((resolve) => {
    s.once('connect', () => resolve(s))
    s.once('error', (e) => resolve((e as { code?: string }).code ?? e.message))
  })
}

test('admission in a network: membership and allowed_ports decide, not trust; a reply from an allowed port passes', async () => {
  const view = new FakeView(2)
  view.registry.set(5, { members: new Set([1, 2]), ports: [80] })
  const adm = new TrustAdmission({ isTrusted: () => true })
  adm.useNetworks({
    has: (n) => view.get(n) !== undefined,
    isMember: (n, x) => view.isMember(n, x),
    portAllowed: (n, p) => view.portAllowed(n, p),
    refresh: () => view.refresh(),
    refreshSoon: () => view.refreshSoon(),
  })
  assert.equal(adm.admit(1, 80, 'stream', 5), false, 'not joined yet: refused although trusted')
  await view.refresh()
  assert.equal(adm.admit(1, 80, 'stream', 5), true)
  assert.equal(adm.admit(1, 8080, 'stream', 5), false)
  assert.equal(adm.admit(3, 80, 'stream', 5), false, 'node 3 is no member')
  assert.equal(adm.admit(1, 444, 'stream', 5), false, 'the trust port is a backbone thing')
  assert.equal(adm.admit(1, 0, 'ping', 5), true, 'pings need membership only')
  assert.equal(adm.admit(3, 0, 'ping', 5), false)
  assert.equal(adm.admit(1, 40000, 'datagram', 5, 80), true, 'a reply from port 80')
  assert.equal(adm.admit(1, 40000, 'datagram', 5, 41000), false)
  assert.equal(adm.admit(1, 80, 'stream', 6), false, 'network 6: not joined')
  assert.deepEqual(adm.networkRefusals(), { notJoined: 2, notMember: 2, portNotAllowed: 3 })
  assert.equal(adm.admit(1, 80, 'stream', 0), true, 'the backbone keeps the trust rules')
})

test('a stream in network 5 carries 5:node at both ends on the wire, and bytes flow', async () => {
  const w = world()
  try {
    w.setNetwork(5, [1, 2], [80])
    await Promise.all([w.va.refresh(), w.vb.refresh()])
    const got = accepted(w.b.driver, 80)
    const s = await dial(w.a.driver, 5, 80)
    assert.ok(s instanceof PilotStream, `dial failed: ${String(s)}`)
    await waitFor(() => got.length === 1, 'accepted')
    assert.deepEqual(got[0]!.connection.remoteAddress, { network: 5, node: 1 })
    for (const h of [...w.la.headers, ...w.lb.headers]) {
      assert.equal(h.srcNetwork, 5)
      assert.equal(h.dstNetwork, 5)
    }
    const body = readStream(got[0]!)
    s.end(Buffer.from('hello network 5'))
    assert.equal(Buffer.from(await body).toString(), 'hello network 5')
  } finally {
    w.close()
  }
})

test('refused at once: a port the policy closes, a network b is not in; a packet mixing networks is dropped', async () => {
  const w = world()
  try {
    w.setNetwork(5, [1, 2], [80])
    w.va.registry.set(7, { members: new Set([1, 2]), ports: [] })
    await Promise.all([w.va.refresh(), w.vb.refresh()])
    accepted(w.b.driver, 8080)
    accepted(w.b.driver, 80)
    const refreshes = w.vb.refreshes
    assert.equal(await dial(w.a.driver, 5, 8080), 'PT_SESSION_REFUSED')
    assert.equal(await dial(w.a.driver, 7, 80), 'PT_SESSION_REFUSED')
    assert.equal(w.vb.refreshes, refreshes, 'no registry round trip for either')
    assert.deepEqual(w.b.admission.networkRefusals(), { notJoined: 1, notMember: 0, portNotAllowed: 1 })
    // Source network 0, destination network 5: no flow lives in two networks.
    const before = w.b.driver.stats().droppedForeignNetwork
    const h = PacketHeader.from({ protocol: Protocol.STREAM, flags: 0x01, srcNetwork: 0, srcNode: 1, dstNetwork: 5, dstNode: 2, srcPort: 40000, dstPort: 80, seq: 1 })
    w.b.driver.receive(encodePacket(h))
    assert.equal(w.b.driver.stats().droppedForeignNetwork, before + 1)
  } finally {
    w.close()
  }
})

test('a SYN from a node b does not know yet waits for one refresh: admitted if it joined, refused if not; at most one refresh a second', async () => {
  const w = world()
  try {
    w.setNetwork(5, [2], [])
    w.va.registry.set(5, { members: new Set([1, 2]), ports: [] }) // a already sees itself in
    await Promise.all([w.va.refresh(), w.vb.refresh()])
    const got = accepted(w.b.driver, 80)
    // The registry now has a in 5; b's view does not yet.
    w.vb.registry.set(5, { members: new Set([1, 2]), ports: [] })
    const s = await dial(w.a.driver, 5, 80)
    assert.ok(s instanceof PilotStream, `dial failed: ${String(s)}`)
    await waitFor(() => got.length === 1, 'accepted after the refresh')
    assert.equal(w.b.driver.stats().synRechecked, 1)
    // A non-member: one refresh, then RST; a second try within the second: RST without another refresh.
    w.vb.registry.set(5, { members: new Set([2]), ports: [] })
    await w.vb.refresh()
    clock.ms += 1_000 // the last re-check is a second old
    const r0 = w.vb.refreshes
    assert.equal(await dial(w.a.driver, 5, 80), 'PT_SESSION_REFUSED')
    assert.equal(w.vb.refreshes, r0 + 1)
    assert.equal(await dial(w.a.driver, 5, 80), 'PT_SESSION_REFUSED')
    assert.equal(w.vb.refreshes, r0 + 1)
  } finally {
    w.close()
  }
})

test('leaving ends the flows in that network only and takes the address away; a policy change ends what it closes', async () => {
  const w = world()
  try {
    w.setNetwork(5, [1, 2], [80, 81])
    await Promise.all([w.va.refresh(), w.vb.refresh()])
    assert.deepEqual(w.a.ifaceCalls, ['add 5'])
    accepted(w.b.driver, 80)
    accepted(w.b.driver, 81)
    const s80 = await dial(w.a.driver, 5, 80)
    const s81 = await dial(w.a.driver, 5, 81)
    assert.ok(s80 instanceof PilotStream && s81 instanceof PilotStream)
    const err81 = new Promise<string>((r) => s81.once('error', (e) => r((e as { code?: string }).code ?? '')))
    // Port 81 leaves the policy: its flow ends, port 80's stays.
    w.setNetwork(5, [1, 2], [80])
    await w.va.refresh()
    assert.equal(await err81, 'PT_SESSION_ABORTED')
    assert.equal(s80.destroyed, false)
    assert.equal(w.a.paths.stats().flowsEnded, 1)
    // a leaves 5: the port-80 flow ends too, and the address goes.
    const err80 = new Promise<string>((r) => s80.once('error', (e) => r((e as { code?: string }).code ?? '')))
    w.va.registry.set(5, { members: new Set([2]), ports: [80] })
    await w.va.refresh()
    assert.equal(await err80, 'PT_SESSION_ABORTED')
    assert.deepEqual(w.a.ifaceCalls, ['add 5', 'remove 5'])
    assert.equal(w.a.paths.stats().flowsEnded, 2)
  } finally {
    w.close()
  }
})
