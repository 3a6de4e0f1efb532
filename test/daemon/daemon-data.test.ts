// Data path through whole daemons: a 20 MB byte-exact stream both ways, a
// forced relay that upgrades to direct, beacon restart, peer restart.
import { after, test } from 'node:test'
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import type { Daemon } from '../../src/daemon/daemon.js'
import type { PilotStream } from '../../src/daemon/pilot-stream.js'
import type { UdpEndpoint } from '../../src/tunnel/index.js'
import { World, activeResources } from './world.js'
import { pattern, readStream, waitFor, writeAll } from './helpers.js'

function sha(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex')
}

/** a asks, b (auto-accept) approves; waits until both trust each other. */
async function trustPair(a: Daemon, b: Daemon): Promise<void> {
  await a.trustRequest(`0:0000.${hex(b.nodeId >>> 16)}.${hex(b.nodeId & 0xffff)}`, 'test')
  await waitFor(async () => (await a.trustList()).trusted.some((t) => t.node_id === b.nodeId), 'a trusts b', 8_000)
  await waitFor(async () => (await b.trustList()).trusted.some((t) => t.node_id === a.nodeId), 'b trusts a', 8_000)
}

function hex(n: number): string {
  return n.toString(16).toUpperCase().padStart(4, '0')
}

/** Opens a stream a→b:port where b echoes nothing but collects, and b writes its own data back. */
async function transferBothWays(a: Daemon, b: Daemon, port: number, size: number): Promise<void> {
  const accepted: PilotStream[] = []
  b.listenStreams(port, (s) => accepted.push(s))
  const client = await a.openStream(b.nodeId, port)
  await waitFor(() => accepted.length > 0, 'accepted stream')
  const server = accepted[0]!
  const ab = pattern(size, 7)
  const ba = pattern(size, 9)
  const [atB, atA] = await Promise.all([readStream(server), readStream(client), writeAll(client, ab), writeAll(server, ba)])
  assert.equal(atB.length, size)
  assert.equal(sha(atB), sha(ab))
  assert.equal(atA.length, size)
  assert.equal(sha(atA), sha(ba))
  b.unlistenStreams(port)
}

test('20 MB stream byte-exact both ways over loopback UDP (SHA-256)', async () => {
  const w = await World.create()
  try {
    const a = await w.daemon('a')
    const b = await w.daemon('b', { autoAccept: true })
    await trustPair(a, b)
    const t0 = performance.now()
    await transferBothWays(a, b, 5001, 20 * 1024 * 1024)
    const s = (performance.now() - t0) / 1000
    console.log(`# 2 x 20 MB in ${s.toFixed(2)} s (${((40 * 8) / s).toFixed(0)} Mbit/s total)`)
  } finally {
    await w.close()
  }
})

function sameEndpoint(x: UdpEndpoint, y: UdpEndpoint): boolean {
  return x.host === y.host && x.port === y.port
}

test('direct path blocked → relayed through the beacon; unblocked → upgraded to direct; beacon restart recovers relaying', async () => {
  const w = await World.create({ memory: true })
  try {
    const a = await w.daemon('a')
    const b = await w.daemon('b', { autoAccept: true })
    const ea = a.localEndpoint
    const eb = b.localEndpoint
    const net = w.net!
    const blockDirect = (): void =>
      net.setFilter((from, to) => !((sameEndpoint(from, ea) && sameEndpoint(to, eb)) || (sameEndpoint(from, eb) && sameEndpoint(to, ea))))
    blockDirect()
    await trustPair(a, b)
    await transferBothWays(a, b, 6000, 256 * 1024)
    assert.equal(a.tunnelEngine.peer(b.nodeId)?.path, 'relay')
    assert.equal((await a.ping(`0:0000.0000.${hex(b.nodeId)}`, 5_000)).path, 'relay')

    net.setFilter(null)
    const isDirect = (d: Daemon, peer: number): boolean => ['direct', 'punched'].includes(d.tunnelEngine.peer(peer)?.path ?? '')
    await waitFor(() => isDirect(a, b.nodeId) && isDirect(b, a.nodeId), 'upgrade to direct', 8_000)
    await transferBothWays(a, b, 6001, 256 * 1024)

    // Block again: the path falls back to the relay; then restart the beacon under it.
    blockDirect()
    await w.stopBeacon()
    await w.startBeacon()
    // Traffic on the dead direct path goes unanswered: the tunnel falls back to the new beacon's relay.
    await transferBothWays(a, b, 6002, 128 * 1024)
    assert.equal(a.tunnelEngine.peer(b.nodeId)?.path, 'relay')
  } finally {
    await w.close()
  }
})

test('a peer restarted with the same identity keeps its address and trust, and is reachable again', async () => {
  const w = await World.create()
  try {
    const a = await w.daemon('a')
    const b = await w.daemon('b', { autoAccept: true, hostname: 'bravo' })
    await trustPair(a, b)
    await a.ping('bravo', 5_000)
    // A stream open at shutdown ends with a FIN at the peer, not a reset.
    let gotByte = false
    b.listenStreams(80, (s) => s.once('data', () => (gotByte = true)))
    const open = await a.openStream(b.nodeId, 80)
    const ended = readStream(open)
    open.write('x')
    await waitFor(() => gotByte, 'b reads from the stream')
    const id = b.nodeId
    await b.close()
    assert.equal((await ended).length, 0)
    const b2 = await w.daemon('b', { autoAccept: true, hostname: 'bravo' })
    assert.equal(b2.nodeId, id)
    assert.ok((await b2.trustList()).trusted.some((t) => t.node_id === a.nodeId), 'trust.json survived the restart')
    const r = await a.ping('bravo', 8_000)
    assert.equal(r.hostname, 'bravo')
  } finally {
    await w.close()
  }
})

const baseline = activeResources().length
after(async () => {
  // node --test must exit by itself: every timer, socket and server is gone.
  await waitFor(() => activeResources().length <= baseline, `resources released (${activeResources().join(', ')})`)
})
