// Daemons, a registry and a beacon in one process on loopback UDP: register,
// hostnames, resolve, refusal of untrusted nodes, trust on 444 and via the
// registry relay, ping, reject, revoke.
import { DEFAULT_OVERLAY_PREFIX } from '../../src/protocol/ipv6-mapping.js'
import { test } from 'node:test'
import { stat } from 'node:fs/promises'
import { join } from 'node:path'
import assert from 'node:assert/strict'
import { RegistryClient } from '../../src/registry/client.js'
import { formatAddress } from '../../src/protocol/address.js'
import { pilotToIpv6Text } from '../../src/protocol/ipv6-mapping.js'
import type { Daemon } from '../../src/daemon/daemon.js'
import { World, activeResources } from './world.js'
import { codeOf, waitFor } from './helpers.js'


function addr(d: Daemon): string {
  return formatAddress(d.address)
}

test('register, hostname, resolve by name / address / IPv6; registry resolve refused before trust', async () => {
  const before = activeResources()
  const w = await World.create()
  try {
    const a = await w.daemon('a', { hostname: 'alpha' })
    const b = await w.daemon('b')
    assert.ok(a.nodeId > 0 && b.nodeId > 0 && a.nodeId !== b.nodeId)
    const modes = await Promise.all([stat(join(w.dir, 'a')), stat(join(w.dir, 'a', 'identity.json'))])
    assert.equal(modes[0].mode & 0o777, 0o700)
    assert.equal(modes[1].mode & 0o777, 0o600)
    const st = await a.status()
    assert.equal(st.hostname, 'alpha')
    assert.equal(st.address, addr(a))
    assert.equal(st.registry.connected, true)

    const byName = await b.resolve('alpha')
    assert.deepEqual(byName, { address: addr(a), node_id: a.nodeId, ipv6: pilotToIpv6Text(a.address, DEFAULT_OVERLAY_PREFIX), hostname: 'alpha' })
    assert.equal((await b.resolve(addr(a))).hostname, 'alpha')
    assert.equal((await b.resolve(pilotToIpv6Text(a.address, DEFAULT_OVERLAY_PREFIX))).node_id, a.nodeId)
    assert.equal(await codeOf(b.resolve('nobody-here')), 'PT_NAME_NOT_FOUND')
    assert.equal(await codeOf(b.resolve('fd00::1')), 'PT_NAME_NOT_FOUND')

    await b.setHostname('bravo')
    assert.equal((await a.resolve('bravo')).node_id, b.nodeId)

    // The registry hides a private node's endpoint until the pair exists.
    const asB = new RegistryClient({ host: '127.0.0.1', port: w.registry.address.port, identity: b.identity })
    try {
      assert.equal(await codeOf(asB.resolve(b.nodeId, a.nodeId)), 'PT_REGISTRY_ERROR')
    } finally {
      asB.close()
    }
  } finally {
    await w.close()
  }
  await waitFor(() => activeResources().length <= before.length, 'resources released')
})

test('an untrusted node is refused: its SYN gets RST and the dialer a PT_TRUST_REQUIRED', async () => {
  const w = await World.create()
  try {
    const a = await w.daemon('a', { hostname: 'alpha' })
    const b = await w.daemon('b')
    let accepted = 0
    a.listenStreams(80, () => accepted++)
    assert.equal(await codeOf(b.openStream(a.nodeId, 80)), 'PT_TRUST_REQUIRED')
    assert.equal(await codeOf(b.ping('alpha', 5_000)), 'PT_TRUST_REQUIRED')
    assert.equal(accepted, 0)
    assert.ok(a.stats().driver.synRefused >= 2)
    // Datagrams from strangers are dropped too.
    b.sendDatagram(a.nodeId, 5353, Buffer.from('hello'))
    await waitFor(() => a.stats().driver.datagramsRefused >= 1, 'datagram refused')
  } finally {
    await w.close()
  }
})

test('trust directly on port 444: request, approve, ping by hostname and address, revoke; reject', async () => {
  // Long heartbeats: no registry poll happens, so everything here travels on port 444.
  const w = await World.create({ timing: { heartbeatMs: 60_000 } })
  try {
    const a = await w.daemon('a', { hostname: 'alpha' })
    const b = await w.daemon('b', { hostname: 'bravo' })
    const c = await w.daemon('c')
    assert.deepEqual(await a.trustRequest('bravo', 'let me in'), { status: 'sent', node_id: b.nodeId })
    await waitFor(async () => (await b.trustList()).pending.some((p) => p.node_id === a.nodeId), 'pending request at b')
    assert.equal((await b.trustList()).pending[0]!.justification, 'let me in')
    assert.equal((await a.trustList()).outgoing[0]!.node_id, b.nodeId)
    assert.equal(await codeOf(a.ping('bravo', 3_000)), 'PT_TRUST_REQUIRED')

    await b.trustApprove(addr(a))
    await waitFor(async () => (await a.trustList()).trusted.some((t) => t.node_id === b.nodeId), 'a trusts b')
    assert.equal(b.stats().trust.relayedRequests, 0)
    assert.ok(a.stats().trust.directAccepted >= 1)
    const viaName = await a.ping('bravo', 5_000)
    assert.equal(viaName.hostname, 'bravo')
    assert.ok(viaName.rtt_ms >= 0)
    assert.notEqual(viaName.path, 'none')
    const viaAddr = await b.ping(addr(a), 5_000)
    assert.equal(viaAddr.address, addr(a))
    const peersA = await a.peers()
    const pb = peersA.find((p) => p.node_id === b.nodeId)!
    assert.equal(pb.trusted, true)
    assert.equal(pb.authenticated, true)
    assert.ok(pb.bytes_in > 0 && pb.bytes_out > 0)
    assert.ok(pb.rtt_ms !== null && pb.rtt_ms >= 0, 'RTT from the pings and stream handshakes')

    // Reject: c asks b, b says no, c forgets its request.
    await c.trustRequest('bravo', 'me too')
    await waitFor(async () => (await b.trustList()).pending.some((p) => p.node_id === c.nodeId), 'pending request from c')
    await b.trustReject(addr(c), 'no')
    await waitFor(async () => (await c.trustList()).outgoing.length === 0, 'c forgets its request')
    assert.equal((await b.trustList()).pending.length, 0)
    assert.equal(await codeOf(b.trustApprove(addr(c))), 'PT_TRUST_NO_REQUEST')

    // Revoke: a drops b; b hears it on 444; both refuse each other afterwards.
    await a.trustRevoke('bravo')
    await waitFor(async () => (await b.trustList()).trusted.length === 0, 'b forgets a')
    assert.equal(await codeOf(b.ping(addr(a), 3_000)), 'PT_TRUST_REQUIRED')
  } finally {
    await w.close()
  }
})

test('trust through the registry relay when no direct path exists (no beacon, private nodes)', async () => {
  const w = await World.create({ beacon: false })
  try {
    const a = await w.daemon('a')
    const b = await w.daemon('b')
    assert.equal((await a.trustRequest(addr(b), 'relay me')).status, 'sent')
    await waitFor(async () => (await b.trustList()).pending.some((p) => p.node_id === a.nodeId), 'relayed request polled by b')
    assert.ok(b.stats().trust.relayedRequests >= 1)
    assert.equal(b.stats().trust.directReceived, 0)
    await b.trustApprove(addr(a))
    await waitFor(async () => (await a.trustList()).trusted.some((t) => t.node_id === b.nodeId), 'a trusts b')
    // With the pair at the registry both may resolve each other: the ping goes direct.
    const r = await a.ping(addr(b), 5_000)
    assert.equal(r.path, 'direct')
  } finally {
    await w.close()
  }
})
