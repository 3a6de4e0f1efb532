// `up --metrics-listen` in-process: two daemons, trust, a ping and an echo transfer, then a
// scrape of /metrics over HTTP; the metrics port is gone after shutdown. And DaemonMetrics
// on a fake node: what each metric reads, and totals that never fall.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { createServer, type AddressInfo } from 'node:net'
import { formatAddress } from '../../src/protocol/address.js'
import { DaemonMetrics, type DaemonMetricsSource } from '../../src/metrics/daemon-metrics.js'
import { DROP_REASONS, type PeerInfo, type TunnelStats } from '../../src/tunnel/index.js'
import { PilotError } from '../../src/errors.js'
import { World, activeResources } from '../daemon/world.js'
import { pattern, readStream, waitFor, writeAll } from '../daemon/helpers.js'
import { parseExposition, portOpen, scrape, type Exposition } from './prom-text.js'

test('a daemon with metricsListen serves its traffic, peers, RTT and registry state; the port closes with it', { timeout: 60_000 }, async () => {
  const before = activeResources()
  const w = await World.create()
  let port = 0
  try {
    const a = await w.daemon('a', { hostname: 'alpha', metricsListen: '127.0.0.1:0' })
    const b = await w.daemon('b', { hostname: 'bravo', autoAccept: true })
    assert.equal(b.metricsAddress, null, 'off unless asked for')
    const at = a.metricsAddress!
    assert.equal(at.host, '127.0.0.1')
    port = at.port
    const url = `http://127.0.0.1:${port}/metrics`

    const idle = await scrape(url)
    assert.equal(idle.value('pilot_tun_bytes_out_total'), 0)
    assert.equal(idle.value('pilot_tun_registry_connected'), 1)
    assert.equal(idle.value('pilot_tun_rtt_seconds_count'), 0)
    assert.equal(idle.all('pilot_tun_drops_total').length, DROP_REASONS.length, 'every drop reason is a label from the start')

    await a.trustRequest('bravo', 'metrics test')
    await waitFor(async () => (await a.trustList()).trusted.some((t) => t.node_id === b.nodeId), 'a trusts b', 10_000)
    await a.ping('bravo', 5_000)
    // An echo transfer on port 7: bytes both ways on one stream.
    const data = pattern(200_000, 7)
    const stream = await a.openStream(b.nodeId, 7)
    const back = readStream(stream)
    await writeAll(stream, data)
    assert.ok((await back).equals(data))

    const m = await scrape(url)
    assert.equal(m.types.get('pilot_tun_bytes_out_total'), 'counter')
    assert.equal(m.types.get('pilot_tun_peers'), 'gauge')
    assert.equal(m.types.get('pilot_tun_rtt_seconds'), 'histogram')
    assert.ok(m.value('pilot_tun_bytes_out_total') > data.length, 'bytes out include the transfer')
    assert.ok(m.value('pilot_tun_bytes_in_total') > data.length, 'bytes in include the echo')
    assert.ok(m.value('pilot_tun_frames_out_total') > 0)
    assert.ok(m.value('pilot_tun_frames_in_total') > 0)
    const peers = await a.peers()
    const path = peers.find((p) => p.node_id === b.nodeId)!.path
    assert.equal(m.value('pilot_tun_peers', { path }), 1, `one peer on path ${path}`)
    assert.equal(m.all('pilot_tun_peers').reduce((n, s) => n + s.value, 0), 1)
    assert.ok(m.value('pilot_tun_rtt_seconds_count') > 0, 'RTT samples observed')
    assert.ok(m.value('pilot_tun_rtt_seconds_sum') >= 0)
    assert.ok(m.value('pilot_tun_rtt_seconds_bucket', { le: '+Inf' }) === m.value('pilot_tun_rtt_seconds_count'))
    assert.ok(m.value('pilot_tun_retransmits_total') >= 0)
    assert.ok(m.value('pilot_tun_streams_open') >= 0)
    assert.ok(m.value('pilot_tun_refused_total', { protocol: 'stream' }) >= 0)
    assert.equal(m.value('pilot_tun_registry_connected'), 1)
    const age = m.value('pilot_tun_registry_heartbeat_age_seconds')
    assert.ok(age >= 0 && age < 10, `heartbeat age ${age}`)
    assert.ok(m.value('pilot_tun_registry_heartbeats_total', { result: 'ok' }) >= 0)
    // A second scrape never shows a counter below the first.
    const again = await scrape(url)
    assert.ok(again.value('pilot_tun_bytes_out_total') >= m.value('pilot_tun_bytes_out_total'))
    assert.equal(formatAddress(a.address), (await a.status()).address)
  } finally {
    await w.close()
  }
  assert.equal(await portOpen(port), false, 'the metrics port is closed after shutdown')
  await waitFor(() => activeResources().length <= before.length, 'resources released')
})

test('metricsListen: bad text is PT_CONFIG_INVALID before anything is written; a taken port fails the start cleanly', async () => {
  const w = await World.create()
  const holder = createServer()
  await new Promise<void>((r) => holder.listen(0, '127.0.0.1', r))
  const taken = (holder.address() as AddressInfo).port
  try {
    await assert.rejects(
      w.daemon('bad', { metricsListen: 'localhost' }),
      (e: unknown) => e instanceof PilotError && e.code === 'PT_CONFIG_INVALID' && e.message.includes('--metrics-listen'),
    )
    assert.equal(existsSync(join(w.dir, 'bad')), false, 'refused before the state dir was made')
    await assert.rejects(
      w.daemon('busy', { metricsListen: `127.0.0.1:${taken}` }),
      (e: unknown) => e instanceof PilotError && e.code === 'PT_METRICS_LISTEN_FAILED' && e.message.includes(`127.0.0.1:${taken}`),
    )
    assert.equal(await w.registry.store.countOnline(), 0, 'nothing was registered')
  } finally {
    await new Promise<void>((r) => holder.close(() => r()))
    await w.close()
  }
})

/** A node made of plain objects, to drive each metric by hand. */
function fakeNode(): {
  source: DaemonMetricsSource
  peers: PeerInfo[]
  streams: { retransmits: number }[]
  stats: TunnelStats
  session: { connected: boolean; ago: number; ok: number; failed: number }
} {
  const peers: PeerInfo[] = []
  const streams: { retransmits: number }[] = []
  const drops = Object.fromEntries(DROP_REASONS.map((r) => [r, 0])) as TunnelStats['drops']
  const stats = { drops, packetsIn: 0, packetsOut: 0 } as TunnelStats
  const session = { connected: true, ago: 1500, ok: 3, failed: 1 }
  const source: DaemonMetricsSource = {
    tunnel: { stats: () => stats, peers: () => peers },
    endpoint: {
      get connectionCount() {
        return streams.length
      },
      connections: () => streams.map((s) => ({ stats: () => s })),
    },
    driver: { stats: () => ({ synRefused: 2, datagramsRefused: 5 }) },
    admission: { networkRefusals: () => ({ notJoined: 1, notMember: 2, portNotAllowed: 3 }) },
    session: {
      get connected() {
        return session.connected
      },
      lastHeartbeatAgoMs: () => session.ago,
      get heartbeatsOk() {
        return session.ok
      },
      get heartbeatsFailed() {
        return session.failed
      },
    },
  }
  return { source, peers, streams, stats, session }
}

function peer(nodeId: number, path: PeerInfo['path'], bytesIn: number, bytesOut: number): PeerInfo {
  return { nodeId, path, endpoint: null, kdf: null, kdfConfirmed: false, authenticated: true, lastReceiveMs: 0, bytesIn, bytesOut, packetsIn: 0, packetsOut: 0, queued: 0, dropped: { replay: 0, authFailed: 0, badPacket: 0, sourceMismatch: 0, queueOverflow: 0 } }
}

test('DaemonMetrics: zeros before watch(); then each metric reads its part; byte and retransmit totals never fall', async () => {
  const metrics = new DaemonMetrics()
  const render = async (): Promise<Exposition> => parseExposition(await metrics.registry.metrics())
  let m = await render()
  assert.equal(m.value('pilot_tun_bytes_out_total'), 0)
  assert.equal(m.value('pilot_tun_registry_connected'), 0)
  assert.equal(m.value('pilot_tun_peers', { path: 'direct' }), 0)
  assert.equal(metrics.address, null)
  assert.equal(metrics.url, null)

  const node = fakeNode()
  metrics.watch(node.source)
  node.peers.push(peer(1, 'direct', 100, 200), peer(2, 'relay', 10, 20), peer(3, 'direct', 0, 0))
  node.stats.packetsIn = 7
  node.stats.packetsOut = 9
  node.stats.drops.replay = 4
  node.streams.push({ retransmits: 3 }, { retransmits: 0 })
  metrics.observeRtt(12)
  metrics.observeRtt(0.4)
  metrics.observeRtt(-1) // implausible: ignored
  m = await render()
  assert.deepEqual(
    Object.fromEntries(m.all('pilot_tun_peers').map((s) => [s.labels.path, s.value])),
    { direct: 2, punched: 0, relay: 1, none: 0 },
  )
  assert.equal(m.value('pilot_tun_bytes_in_total'), 110)
  assert.equal(m.value('pilot_tun_bytes_out_total'), 220)
  assert.equal(m.value('pilot_tun_frames_in_total'), 7)
  assert.equal(m.value('pilot_tun_frames_out_total'), 9)
  assert.equal(m.value('pilot_tun_drops_total', { reason: 'replay' }), 4)
  assert.equal(m.value('pilot_tun_drops_total', { reason: 'auth-failed' }), 0)
  assert.equal(m.value('pilot_tun_retransmits_total'), 3)
  assert.equal(m.value('pilot_tun_streams_open'), 2)
  assert.equal(m.value('pilot_tun_refused_total', { protocol: 'stream' }), 2)
  assert.equal(m.value('pilot_tun_refused_total', { protocol: 'datagram' }), 5)
  assert.deepEqual(
    Object.fromEntries(m.all('pilot_tun_network_refused_total').map((s) => [s.labels.cause, s.value])),
    { not_joined: 1, not_member: 2, port_not_allowed: 3 },
  )
  assert.equal(m.value('pilot_tun_registry_connected'), 1)
  assert.equal(m.value('pilot_tun_registry_heartbeat_age_seconds'), 1.5)
  assert.equal(m.value('pilot_tun_registry_heartbeats_total', { result: 'ok' }), 3)
  assert.equal(m.value('pilot_tun_registry_heartbeats_total', { result: 'failed' }), 1)
  assert.equal(m.value('pilot_tun_rtt_seconds_count'), 2)
  assert.equal(m.value('pilot_tun_rtt_seconds_bucket', { le: '0.0005' }), 1, '0.4 ms')
  assert.equal(m.value('pilot_tun_rtt_seconds_bucket', { le: '0.01' }), 1)
  assert.equal(m.value('pilot_tun_rtt_seconds_bucket', { le: '0.025' }), 2, '12 ms')
  assert.ok(Math.abs(m.value('pilot_tun_rtt_seconds_sum') - 0.0124) < 1e-9)

  // Peer 1 is forgotten (trust revoked), peer 2 grows, a stream closes and another retransmits:
  // the counters keep what the gone ones had.
  node.peers.splice(0, 1)
  node.peers[0]!.bytesOut = 50
  node.streams.splice(0, 1)
  node.streams[0]!.retransmits = 2
  node.session.connected = false
  m = await render()
  assert.equal(m.value('pilot_tun_bytes_out_total'), 250)
  assert.equal(m.value('pilot_tun_bytes_in_total'), 110)
  assert.equal(m.value('pilot_tun_retransmits_total'), 5)
  assert.equal(m.value('pilot_tun_peers', { path: 'direct' }), 1)
  assert.equal(m.value('pilot_tun_streams_open'), 1)
  assert.equal(m.value('pilot_tun_registry_connected'), 0)
  await metrics.close() // no HTTP server: nothing to do
})

test('DaemonMetrics: two in one process keep separate registries', async () => {
  const one = new DaemonMetrics()
  const two = new DaemonMetrics()
  one.observeRtt(5)
  assert.equal(parseExposition(await one.registry.metrics()).value('pilot_tun_rtt_seconds_count'), 1)
  assert.equal(parseExposition(await two.registry.metrics()).value('pilot_tun_rtt_seconds_count'), 0)
})
