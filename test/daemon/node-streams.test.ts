// NodeStreams (the TUN bridge's host) and TrustAdmission over two linked
// session drivers: dial errors become the daemon's codes, the trust policy
// decides who gets in, datagrams, pings, the default stream handler, close.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { TrustAdmission } from '../../src/daemon/admission.js'
import { NodeStreams, type ReceivedDatagram } from '../../src/daemon/node-streams.js'
import type { PilotStream } from '../../src/daemon/pilot-stream.js'
import { TRUST_PORT } from '../../src/daemon/trust-service.js'
import { driverPair, type DriverPair } from './driver-pair.js'
import { codeOf, readStream } from './helpers.js'

interface Side {
  streams: NodeStreams
  trusted: Set<number>
  /** What the registry says about each node (default: registered). */
  registered: Map<number, boolean | null>
  authenticated: Set<number>
  registryAsked: number
  /** While set, the registry answers only once it settles. */
  registryGate: Promise<void> | null
}

function side(address: number, driver: DriverPair['a'], admission: TrustAdmission, trusted: Set<number>): Side {
  const s: Side = { streams: null as unknown as NodeStreams, trusted, registered: new Map(), authenticated: new Set(), registryAsked: 0, registryGate: null }
  s.streams = new NodeStreams({
    address: { network: 0, node: address },
    driver,
    admission,
    peers: { peer: (node) => (s.authenticated.has(node) ? { authenticated: true } : null) },
    registry: {
      isRegistered: async (node) => {
        s.registryAsked++
        if (s.registryGate !== null) await s.registryGate
        return s.registered.get(node) ?? true
      },
    },
    names: { resolve: async (target) => ({ address: '', node_id: target === 'b' ? 2 : 1, ipv6: '', hostname: target }) },
  })
  return s
}

/** Node 1 (a) and node 2 (b), each with its own trust set and admission policy. */
function twoNodes() {
  const trustA = new Set<number>()
  const trustB = new Set<number>()
  const admA = new TrustAdmission({ isTrusted: (n) => trustA.has(n) })
  const admB = new TrustAdmission({ isTrusted: (n) => trustB.has(n) })
  const pair = driverPair(admB.admit, admA.admit)
  return { pair, a: side(1, pair.a, admA, trustA), b: side(2, pair.b, admB, trustB) }
}


test('TrustAdmission: streams to 444 and to open ports from anyone, everything else from trusted nodes only', () => {
  const trusted = new Set([5])
  const adm = new TrustAdmission({ isTrusted: (n) => trusted.has(n) })
  assert.equal(adm.admit(9, TRUST_PORT, 'stream', 0), true)
  assert.equal(adm.admit(9, TRUST_PORT, 'datagram', 0), false, 'datagrams to 444 need trust')
  assert.equal(adm.admit(9, 80, 'stream', 0), false)
  assert.equal(adm.admit(5, 80, 'stream', 0), true)
  assert.equal(adm.admit(5, 1000, 'datagram', 0), true)
  adm.openToAll(80)
  assert.equal(adm.admit(9, 80, 'stream', 0), true)
  assert.equal(adm.admit(9, 80, 'datagram', 0), false, 'open ports are for streams')
  adm.closeToAll(80)
  assert.equal(adm.admit(9, 80, 'stream', 0), false)
  assert.equal(adm.isTrusted(5), true)
  assert.equal(adm.isTrusted(9), false)
})

test('dial errors: no trust → PT_TRUST_REQUIRED, trust but no listener → PT_CONNECTION_REFUSED, open port → connected', async () => {
  const { pair, a, b } = twoNodes()
  try {
    const accepted: PilotStream[] = []
    b.streams.listenStreams(80, (s) => accepted.push(s))
    assert.equal(await codeOf(a.streams.openStream(2, 80)), 'PT_TRUST_REQUIRED', 'b refuses a stranger')
    // The trust port is admitted from anyone: a refusal there means nothing listens.
    assert.equal(await codeOf(a.streams.openStream(2, TRUST_PORT)), 'PT_CONNECTION_REFUSED')

    a.trusted.add(2)
    b.trusted.add(1)
    const s = await a.streams.openStream({ network: 0, node: 2 }, 80)
    s.end('hi')
    while (accepted.length === 0) await new Promise((r) => setImmediate(r))
    assert.equal((await readStream(accepted[0]!)).toString(), 'hi')
    assert.equal(await codeOf(a.streams.openStream(2, 81)), 'PT_CONNECTION_REFUSED', 'trusted, nothing on 81')

    a.trusted.clear()
    b.trusted.clear()
    const open: PilotStream[] = []
    b.streams.listenStreams(90, (x) => open.push(x), { allowUntrusted: true })
    const toOpenPort = await a.streams.openStream(2, 90)
    toOpenPort.end()
    while (open.length === 0) await new Promise((r) => setImmediate(r))
    open[0]!.resume()
    open[0]!.end()
    assert.equal((await readStream(toOpenPort)).length, 0)
    b.streams.unlistenStreams(90)
    assert.equal(await codeOf(a.streams.openStream(2, 90)), 'PT_TRUST_REQUIRED', 'closed to strangers again')
    assert.equal(b.streams.isTrusted(1), false)
  } finally {
    pair.close()
  }
})

test('a node the registry says is unknown fails at once, without a SYN; an unknown answer or a live session still dials', async () => {
  const { pair, a } = twoNodes()
  try {
    a.registered.set(2, false)
    assert.equal(await codeOf(a.streams.openStream(2, 80)), 'PT_PEER_UNREACHABLE')
    assert.equal(pair.la.sent, 0, 'nothing was sent')
    a.authenticated.add(2)
    const asked = a.registryAsked
    assert.equal(await codeOf(a.streams.openStream(2, 80)), 'PT_TRUST_REQUIRED', 'dialled: the tunnel knows the peer')
    assert.equal(a.registryAsked, asked, 'the registry was not asked')
    a.authenticated.clear()
    a.registered.set(2, null)
    assert.equal(await codeOf(a.streams.openStream(2, 80)), 'PT_TRUST_REQUIRED', 'dialled: the registry could not be asked')
  } finally {
    pair.close()
  }
})

test('a first dial does not wait for the registry: the SYN goes out while it is asked, and connects', async () => {
  const { pair, a, b } = twoNodes()
  try {
    a.trusted.add(2)
    b.trusted.add(1)
    b.streams.listenStreams(80, (s) => s.end())
    let answer: () => void = () => {}
    a.registryGate = new Promise<void>((r) => (answer = r))
    const s = await a.streams.openStream(2, 80)
    assert.equal(a.registryAsked, 1, 'the registry was asked')
    assert.ok(pair.la.sent > 0, 'the SYN left, and the stream connected, before the registry answered')
    s.destroy()
    answer()
  } finally {
    pair.close()
  }
})

test('a dial nobody answers is PT_PEER_UNREACHABLE', async () => {
  const { pair, a } = twoNodes()
  try {
    pair.la.drop = true
    const started = performance.now()
    assert.equal(await codeOf(a.streams.openStream(2, 80, { connectTimeout: 300 })), 'PT_PEER_UNREACHABLE')
    assert.ok(performance.now() - started < 5_000)
  } finally {
    pair.close()
  }
})

test('datagrams and pings between trusted nodes; the default stream handler accepts or refuses later', async () => {
  const { pair, a, b } = twoNodes()
  try {
    a.trusted.add(2)
    b.trusted.add(1)
    const got: ReceivedDatagram[] = []
    b.streams.onDatagram((d) => got.push(d))
    const sourcePort = a.streams.sendDatagram(2, 5000, Buffer.from('one'), 6000)
    assert.equal(sourcePort, 6000)
    await new Promise((r) => setTimeout(r, 20))
    assert.equal(got.length, 1)
    assert.deepEqual({ from: got[0]!.from, fromPort: got[0]!.fromPort, toPort: got[0]!.toPort, data: Buffer.from(got[0]!.data).toString() }, {
      from: { network: 0, node: 1 },
      fromPort: 6000,
      toPort: 5000,
      data: 'one',
    })
    b.streams.onDatagram(null)
    a.streams.sendDatagram(2, 5000, Buffer.from('two'))
    await new Promise((r) => setTimeout(r, 20))
    assert.equal(got.length, 1, 'no handler: dropped')

    const pong = new Promise<{ remote: { node: number }; id: number }>((r) => a.streams.onPong(r))
    const id = a.streams.sendPing(2)
    const p = await pong
    assert.equal(p.id, id)
    assert.equal(p.remote.node, 2)

    // The handler answers later, as the bridge does once its own connect finished.
    const offered: Array<(accept: boolean) => void> = []
    b.streams.setDefaultStreamHandler((inc) => {
      assert.equal(inc.localPort, 8080)
      assert.equal(inc.remote.node, 1)
      offered.push((accept) => {
        if (!accept) return inc.refuse()
        const s = inc.accept()
        s.end('from b')
      })
    })
    const accepted = a.streams.openStream(2, 8080)
    while (offered.length === 0) await new Promise((r) => setImmediate(r))
    offered[0]!(true)
    const st = await accepted
    st.end()
    assert.equal((await readStream(st)).toString(), 'from b')
    const refused = codeOf(a.streams.openStream(2, 8080))
    while (offered.length === 1) await new Promise((r) => setImmediate(r))
    offered[1]!(false)
    assert.equal(await refused, 'PT_CONNECTION_REFUSED')
    b.streams.setDefaultStreamHandler(null)
    assert.equal(await codeOf(a.streams.openStream(2, 8080)), 'PT_CONNECTION_REFUSED', 'RST at once again')
    assert.deepEqual(await b.streams.resolve('b'), { address: '', node_id: 2, ipv6: '', hostname: 'b' })
  } finally {
    pair.close()
  }
})

test('after beginClose new streams, datagrams and pings are PT_DAEMON_CLOSED', async () => {
  const { pair, a } = twoNodes()
  try {
    a.streams.checkOpen()
    a.streams.beginClose()
    assert.equal(await codeOf(a.streams.openStream(2, 80)), 'PT_DAEMON_CLOSED')
    assert.throws(() => a.streams.sendDatagram(2, 1, Buffer.from('x')), { code: 'PT_DAEMON_CLOSED' })
    assert.throws(() => a.streams.sendPing(2), { code: 'PT_DAEMON_CLOSED' })
    assert.throws(() => a.streams.checkOpen(), { code: 'PT_DAEMON_CLOSED' })
    assert.equal(pair.la.sent, 0)
  } finally {
    pair.close()
  }
})
