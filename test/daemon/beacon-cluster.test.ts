// Two daemons on two peered beacons (issue 14, docs/wire.md §9.7): each daemon
// picks its beacon from the same `--beacon` list by node ID, so they land on
// different beacons; relay (forced by blocking the direct path) crosses from
// one beacon to the other, and hole punching is coordinated across them.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { BeaconServer } from '../../src/beacon/server.js'
import { ClusterState } from '../../src/beacon/cluster-state.js'
import { BeaconClusterDriver } from '../../src/beacon/cluster.js'
import { ClusterType } from '../../src/protocol/beacon-cluster-messages.js'
import type { Daemon } from '../../src/daemon/daemon.js'
import type { UdpEndpoint } from '../../src/tunnel/index.js'
import type { MemoryNetwork } from '../../src/tunnel/testing/memory-bind.js'
import { World } from './world.js'
import { waitFor } from './helpers.js'

const B1 = { host: '127.0.0.1', port: 9001 }
const B2 = { host: '127.0.0.1', port: 9002 }
const LIST = '127.0.0.1:9001,127.0.0.1:9002'

interface Cluster {
  beacons: BeaconServer[]
  close(): Promise<void>
}

/** Two beacons on the world's MemoryNetwork, peered with each other, Syncing every 100 ms. */
function startCluster(net: MemoryNetwork): Cluster {
  const beacons: BeaconServer[] = []
  const drivers: BeaconClusterDriver[] = []
  for (const [i, self, other] of [[1, B1, B2], [2, B2, B1]] as const) {
    const state = new ClusterState(i)
    state.setPeers([other], 'static')
    const server = new BeaconServer({ bind: net.bind(self.host, self.port), cluster: state })
    server.start()
    const driver = new BeaconClusterDriver(server, state, { registry: null, advertise: `${self.host}:${self.port}`, syncIntervalMs: 100 })
    driver.start()
    beacons.push(server)
    drivers.push(driver)
  }
  return {
    beacons,
    async close() {
      for (const d of drivers) await d.close()
      for (const b of beacons) await b.close()
    },
  }
}

function hex(n: number): string {
  return n.toString(16).toUpperCase().padStart(4, '0')
}

async function trustPair(a: Daemon, b: Daemon): Promise<void> {
  await a.trustRequest(`0:0000.${hex(b.nodeId >>> 16)}.${hex(b.nodeId & 0xffff)}`, 'test')
  await waitFor(async () => (await a.trustList()).trusted.some((t) => t.node_id === b.nodeId), 'a trusts b', 8_000)
  await waitFor(async () => (await b.trustList()).trusted.some((t) => t.node_id === a.nodeId), 'b trusts a', 8_000)
}

/** Both beacons know the other's node (Discover at its own beacon, then a Sync). */
async function clusterKnowsBoth(c: Cluster): Promise<void> {
  await waitFor(() => c.beacons.every((b) => b.stats().nodes === 1 && b.stats().cluster?.learnedNodes === 1), 'beacons synced', 5_000)
}

function same(x: UdpEndpoint, y: UdpEndpoint): boolean {
  return x.host === y.host && x.port === y.port
}

test('two daemons on different beacons: each picks list[nodeId % 2], and relay crosses the beacons when the direct path is blocked', async () => {
  const w = await World.create({ memory: true, beacon: false })
  const c = startCluster(w.net!)
  try {
    const a = await w.daemon('a', { beacon: LIST })
    const b = await w.daemon('b', { beacon: LIST, autoAccept: true })
    assert.notEqual(a.nodeId % 2, b.nodeId % 2, 'consecutive node IDs')
    const sa = await a.status()
    const sb = await b.status()
    assert.equal(sa.beacon.address, LIST.split(',')[a.nodeId % 2])
    assert.equal(sb.beacon.address, LIST.split(',')[b.nodeId % 2])
    assert.deepEqual(sa.beacon.of, LIST.split(','))
    await clusterKnowsBoth(c)

    const ea = a.localEndpoint
    const eb = b.localEndpoint
    w.net!.setFilter((from, to) => !((same(from, ea) && same(to, eb)) || (same(from, eb) && same(to, ea))))
    await trustPair(a, b)
    const reply = await a.ping(`0:0000.0000.${hex(b.nodeId)}`, 5_000)
    assert.equal(reply.path, 'relay')
    assert.equal(a.tunnelEngine.peer(b.nodeId)?.path, 'relay')
    assert.equal(b.tunnelEngine.peer(a.nodeId)?.path, 'relay')
    // Both beacons forwarded (each one's node sends through it) and both delivered.
    for (const beacon of c.beacons) {
      const s = beacon.stats()
      assert.ok((s.cluster?.forwardedRelays ?? 0) > 0, `beacon forwarded relays: ${JSON.stringify(s.cluster)}`)
      assert.ok(s.sent.relayDeliver > 0)
    }
    // A stream over the cross-beacon relay.
    const got: Buffer[] = []
    b.listenStreams(7000, (s) => s.on('data', (d: Buffer) => got.push(d)).on('error', () => {}))
    const st = await a.openStream(b.nodeId, 7000)
    st.on('error', () => {}) // the close below may cross the peer's reset
    st.write(Buffer.from('across two beacons'))
    await waitFor(() => Buffer.concat(got).toString() === 'across two beacons', 'stream data over the relay', 5_000)
    st.destroy()
  } finally {
    await w.close()
    await c.close()
  }
})

/**
 * Daemons behind "NATs": their sockets are on 10.0.0.x, which the registry cannot
 * see (it registers the TCP source 127.0.0.1 with the port), so a direct path is
 * found only through the endpoint a beacon's PunchCommand names.
 */
async function natPair(w: World, c: Cluster): Promise<{ a: Daemon; b: Daemon }> {
  const a = await w.daemon('a', { beacon: LIST, bind: w.net!.bind('10.0.0.1', 0) })
  const b = await w.daemon('b', { beacon: LIST, bind: w.net!.bind('10.0.0.2', 0), autoAccept: true })
  await clusterKnowsBoth(c)
  return { a, b }
}

test('hole punching is coordinated across beacons: PeerPunch / PeerPunchReply give both nodes the other\'s endpoint and the path goes direct', async () => {
  const w = await World.create({ memory: true, beacon: false })
  const c = startCluster(w.net!)
  try {
    const { a, b } = await natPair(w, c)
    await trustPair(a, b)
    await waitFor(() => ['punched', 'direct'].includes(a.tunnelEngine.peer(b.nodeId)?.path ?? ''), 'a reaches b directly', 8_000)
    await waitFor(() => ['punched', 'direct'].includes(b.tunnelEngine.peer(a.nodeId)?.path ?? ''), 'b reaches a directly', 8_000)
    const reply = await a.ping(`0:0000.0000.${hex(b.nodeId)}`, 5_000)
    assert.notEqual(reply.path, 'relay')
    const sent = c.beacons.map((x) => x.stats().sent.peerPunch)
    assert.ok(sent.every((n) => n > 0), `both beacons sent PeerPunch(Reply): ${sent}`)
  } finally {
    await w.close()
    await c.close()
  }
})

test('control: with PeerPunch lost between the beacons the same pair stays on the relay', async () => {
  const w = await World.create({ memory: true, beacon: false })
  const c = startCluster(w.net!)
  w.net!.setFilter((from, to, data) => !(same(from, B1) || same(from, B2)) || !(same(to, B1) || same(to, B2))
    || (data[0] !== ClusterType.PEER_PUNCH && data[0] !== ClusterType.PEER_PUNCH_REPLY))
  try {
    const { a, b } = await natPair(w, c)
    await trustPair(a, b)
    const reply = await a.ping(`0:0000.0000.${hex(b.nodeId)}`, 5_000)
    assert.equal(reply.path, 'relay')
    await new Promise((r) => setTimeout(r, 1_000))
    assert.equal(a.tunnelEngine.peer(b.nodeId)?.path, 'relay')
    assert.equal(b.tunnelEngine.peer(a.nodeId)?.path, 'relay')
  } finally {
    await w.close()
    await c.close()
  }
})
