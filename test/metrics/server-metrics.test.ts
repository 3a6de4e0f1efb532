// The rendezvous servers' /metrics: a real registry (TCP, SQLite) and a real beacon (UDP)
// in-process, a request and a Discover each, a scrape over HTTP, and the port closed after.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Identity } from '../../src/crypto/identity.js'
import { RegistryClient } from '../../src/registry/client.js'
import { startRegistry } from '../../src/registry/start.js'
import { BeaconServer, BEACON_DROP_REASONS } from '../../src/beacon/index.js'
import { UdpBind } from '../../src/tunnel/index.js'
import { BeaconType, encodeBeaconMessage } from '../../src/protocol/beacon-messages.js'
import { serveServerMetrics } from '../../src/metrics/server-metrics.js'
import { activeResources } from '../daemon/world.js'
import { waitFor } from '../daemon/helpers.js'
import { portOpen, scrape } from './prom-text.js'

test('registry and beacon metrics in one registry (rendezvous): requests, connections, nodes; discovers, replies, drops', { timeout: 30_000 }, async () => {
  const before = activeResources()
  const dir = await mkdtemp(join(tmpdir(), 'pilot-metrics-'))
  const registry = await startRegistry({ host: '127.0.0.1', port: 0, storePath: join(dir, 'registry.db') })
  const beaconBind = await UdpBind.open({ host: '127.0.0.1', port: 0 })
  const beacon = new BeaconServer({ bind: beaconBind })
  beacon.start()
  const http = await serveServerMetrics({ host: '127.0.0.1', port: 0 }, { registry, beacon })
  const port = http.address.port
  const client = new RegistryClient({ host: '127.0.0.1', port: registry.address.port, identity: Identity.generate() })
  const node = await UdpBind.open({ host: '127.0.0.1', port: 0 })
  try {
    let m = await scrape(http.url)
    assert.equal(m.value('pilot_tun_registry_server_requests_total'), 0)
    assert.equal(m.value('pilot_tun_registry_server_nodes_online'), 0)
    assert.equal(m.value('pilot_tun_beacon_received_total', { type: 'discover' }), 0)
    assert.equal(m.all('pilot_tun_beacon_drops_total').length, BEACON_DROP_REASONS.length)

    await client.register({ listenAddr: '127.0.0.1:4000' })
    let replies = 0
    node.onDatagram(() => replies++)
    node.send(encodeBeaconMessage({ type: BeaconType.DISCOVER, nodeId: 77 }), beaconBind.local.host, beaconBind.local.port)
    node.send(Buffer.from([0x03]), beaconBind.local.host, beaconBind.local.port) // a PunchRequest too short: dropped
    await waitFor(() => replies === 1 && beacon.stats().datagrams === 2, 'beacon answered')

    m = await scrape(http.url)
    assert.equal(m.types.get('pilot_tun_registry_server_requests_total'), 'counter')
    assert.ok(m.value('pilot_tun_registry_server_requests_total') >= 1)
    assert.ok(m.value('pilot_tun_registry_server_connections_accepted_total') >= 1)
    assert.equal(m.value('pilot_tun_registry_server_connections'), 1, 'the client stays connected')
    assert.equal(m.value('pilot_tun_registry_server_nodes_online'), 1)
    assert.equal(m.value('pilot_tun_registry_server_connections_closed_total', { reason: 'idle' }), 0)
    assert.equal(m.value('pilot_tun_beacon_datagrams_total'), 2)
    assert.equal(m.value('pilot_tun_beacon_received_total', { type: 'discover' }), 1)
    assert.equal(m.value('pilot_tun_beacon_received_total', { type: 'punch_request' }), 1)
    assert.equal(m.value('pilot_tun_beacon_sent_total', { type: 'discover_reply' }), 1)
    assert.equal(m.value('pilot_tun_beacon_drops_total', { reason: 'malformed' }), 1)
    assert.equal(m.value('pilot_tun_beacon_nodes'), 1)
    assert.equal(m.value('pilot_tun_beacon_relayed_frames_total'), 0)
    assert.equal(m.types.get('pilot_tun_beacon_nodes'), 'gauge')

    // A refused request is counted by reason.
    await assert.rejects(client.lookup(999_999))
    m = await scrape(http.url)
    assert.ok(m.all('pilot_tun_registry_server_rejected_total').some((s) => s.value >= 1))
  } finally {
    client.close()
    await node.close()
    await http.close()
    await beacon.close()
    await registry.close()
    await rm(dir, { recursive: true, force: true })
  }
  assert.equal(await portOpen(port), false, 'the metrics port is closed')
  await waitFor(() => activeResources().length <= before.length, 'resources released')
})
