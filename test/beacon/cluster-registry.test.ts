// Beacons that find each other through the registry (docs/wire.md §9.7,
// §10.5.12): beacon_register + beacon_list every round, then Sync over real
// loopback UDP; and the option checks of a clustered beacon.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startRegistry } from '../../src/registry/start.js'
import { startBeacon } from '../../src/cli/commands/beacon.js'
import { registerAndList } from '../../src/beacon/registry-peers.js'
import { BeaconError } from '../../src/beacon/errors.js'
import { BeaconType, encodeBeaconMessage } from '../../src/protocol/beacon-messages.js'
import { UdpBind } from '../../src/tunnel/bind.js'

async function until(cond: () => boolean, what: string, ms = 5000): Promise<void> {
  const end = Date.now() + ms
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out: ${what}`)
    await new Promise((r) => setTimeout(r, 20))
  }
}

test('two beacons register with the registry, list each other, Sync, and relay across', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'pt-beacons-'))
  const registry = await startRegistry({ host: '127.0.0.1', port: 0, storePath: join(dir, 'r.db') })
  const reg = `127.0.0.1:${registry.address.port}`
  const fast = { syncIntervalMs: 50, registryIntervalMs: 100 }
  const b1 = await startBeacon({ listen: '127.0.0.1:0', cluster: { beaconId: 1, registry: reg, ...fast } })
  const b2 = await startBeacon({ listen: '127.0.0.1:0', cluster: { beaconId: 2, registry: reg, ...fast } })
  const n1 = await UdpBind.open({ host: '127.0.0.1', port: 0 })
  const n2 = await UdpBind.open({ host: '127.0.0.1', port: 0 })
  try {
    await until(() => b1.server.stats().cluster?.peers === 1 && b2.server.stats().cluster?.peers === 1, 'peers from the registry')
    const listed = await registerAndList({ host: '127.0.0.1', port: registry.address.port }, 3, '127.0.0.1:1')
    assert.deepEqual(listed.map((b) => b.id).sort(), [1, 2, 3])
    const got: Buffer[] = []
    n2.onDatagram((d) => got.push(d))
    n1.onDatagram(() => {})
    n1.send(encodeBeaconMessage({ type: BeaconType.DISCOVER, nodeId: 11 }), '127.0.0.1', b1.local.port)
    n2.send(encodeBeaconMessage({ type: BeaconType.DISCOVER, nodeId: 22 }), '127.0.0.1', b2.local.port)
    await until(() => b1.server.stats().cluster?.learnedNodes === 1, 'b1 learned node 22')
    got.length = 0
    n1.send(encodeBeaconMessage({ type: BeaconType.RELAY, senderId: 11, destId: 22, frame: Buffer.from('PILThi') }), '127.0.0.1', b1.local.port)
    await until(() => got.some((d) => d[0] === 0x06), 'relay delivered through b2')
    assert.equal(got.find((d) => d[0] === 0x06)!.toString('hex'), '060000000b' + Buffer.from('PILThi').toString('hex'))
    assert.equal(b1.cluster?.registryFailures, 0)
  } finally {
    await n1.close()
    await n2.close()
    await b1.close()
    await b2.close()
    await registry.close()
    await rm(dir, { recursive: true, force: true })
  }
})

test('a clustered beacon refuses unusable options before binding anything', async () => {
  await assert.rejects(startBeacon({ listen: '127.0.0.1:0', cluster: { beaconId: 0, registry: '127.0.0.1:9000' } }),
    (e: unknown) => e instanceof BeaconError && e.code === 'PT_BEACON_INVALID_CLUSTER' && /beacon-id/.test(e.message))
  await assert.rejects(startBeacon({ listen: '127.0.0.1:0', cluster: { beaconId: 1, peers: ['not a peer'] } }),
    (e: unknown) => e instanceof BeaconError && e.code === 'PT_BEACON_INVALID_CLUSTER')
  await assert.rejects(startBeacon({ listen: '127.0.0.1:0', cluster: { beaconId: -1 } }),
    (e: unknown) => e instanceof BeaconError && e.code === 'PT_BEACON_INVALID_CLUSTER')
})

test('a registry that is down makes the round fail (counted), never the beacon', async () => {
  const b = await startBeacon({ listen: '127.0.0.1:0', cluster: { beaconId: 5, registry: '127.0.0.1:1', registryIntervalMs: 50 } })
  try {
    await until(() => (b.cluster?.registryFailures ?? 0) >= 2, 'failed rounds counted')
    assert.equal(b.server.stats().cluster?.peers, 0)
  } finally {
    await b.close()
  }
})
