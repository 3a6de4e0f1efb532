/**
 * The server-level half of the store conformance (issue 14): a registry
 * server on a given store, driven over TCP by the real client, answering
 * register, heartbeat, lookup, resolve, set_hostname, trust, the handshake
 * relay and networks. `start` gives a running server on a fresh store of the
 * backend under test (SQLite: startTestRegistry; PostgreSQL: startRegistry
 * with `store: await PostgresRegistryStore.open(url)` once the server takes an
 * asynchronous store).
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Identity } from '../../src/crypto/identity.js'
import { testClient } from './helpers.js'

export interface RunningServer {
  port: number
  close(): Promise<void>
}

export function registryServerConformance(name: string, start: () => Promise<RunningServer>): void {
  test(`${name}: a registry server on this store answers the node, trust, handshake and network requests`, async () => {
    const server = await start()
    const ids = [Identity.generate(), Identity.generate(), Identity.generate()]
    const [a, b, c] = ids.map((id) => testClient(server.port, id))
    try {
      const ra = await a!.register({ listenAddr: '0.0.0.0:4001', hostname: 'alpha' })
      const rb = await b!.register({ listenAddr: '0.0.0.0:4002' })
      const rc = await c!.register({ listenAddr: '0.0.0.0:4003' })
      assert.equal(new Set([ra.nodeId, rb.nodeId, rc.nodeId]).size, 3)
      assert.equal(ra.hostname, 'alpha')
      // The same key registering again keeps its ID.
      assert.equal((await a!.register({ listenAddr: '0.0.0.0:4001' })).nodeId, ra.nodeId)
      await a!.heartbeat(ra.nodeId)
      await b!.heartbeat(rb.nodeId)

      assert.equal((await b!.resolveHostname('alpha')).nodeId, ra.nodeId)
      assert.deepEqual(await b!.setHostname(rb.nodeId, 'bravo'), { hostname: 'bravo' })
      await assert.rejects(c!.setHostname(rc.nodeId, 'bravo'), 'held by another online node')
      const look = await c!.lookup(rb.nodeId)
      assert.deepEqual([look.nodeId, look.publicKey, look.hostname], [rb.nodeId, rb.publicKey, 'bravo'])

      // Private nodes resolve only once trusted both ways.
      await assert.rejects(a!.resolve(ra.nodeId, rb.nodeId))
      await a!.reportTrust(ra.nodeId, rb.nodeId)
      await b!.reportTrust(rb.nodeId, ra.nodeId)
      assert.equal((await a!.resolve(ra.nodeId, rb.nodeId)).nodeId, rb.nodeId)

      // The handshake relay: c asks a, a polls and accepts, c hears it and may resolve a.
      await c!.requestHandshake(rc.nodeId, ra.nodeId, 'conformance')
      const inbox = await a!.pollHandshakes(ra.nodeId)
      assert.deepEqual(inbox.requests.map((r) => [r.fromNodeId, r.justification]), [[rc.nodeId, 'conformance']])
      assert.deepEqual((await a!.pollHandshakes(ra.nodeId)).requests, [], 'delivered once')
      await a!.respondHandshake(ra.nodeId, rc.nodeId, true)
      const answers = await c!.pollHandshakes(rc.nodeId)
      assert.deepEqual(answers.responses.map((r) => [r.fromNodeId, r.accept]), [[ra.nodeId, true]])
      assert.equal((await c!.resolve(rc.nodeId, ra.nodeId)).nodeId, ra.nodeId)

      // Networks: create, join, list, members.
      const net = await a!.createNetwork(ra.nodeId, { name: 'conformance', joinRule: 'open' })
      await b!.joinNetwork(rb.nodeId, net.networkId)
      const listed = (await c!.listNetworks()).find((n) => n.id === net.networkId)
      assert.deepEqual([listed?.name, listed?.members], ['conformance', 2])
      const info = await b!.networkInfo(rb.nodeId, net.networkId)
      assert.deepEqual(info.members.map((m) => m.nodeId).sort((x, y) => x - y), [ra.nodeId, rb.nodeId].sort((x, y) => x - y))
      const audit = await a!.auditLog(ra.nodeId, net.networkId)
      assert.deepEqual(audit.map((e) => e.action), ['create', 'join'])

      await c!.deregister(rc.nodeId)
      await assert.rejects(a!.resolve(ra.nodeId, rc.nodeId), 'an offline node does not resolve')
    } finally {
      for (const client of [a, b, c]) client!.close()
      await server.close()
    }
  })
}
