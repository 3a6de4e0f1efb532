// Smoke test on real UDP sockets (127.0.0.1): two tunnels and a real beacon.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Identity } from '../../src/crypto/index.js'
import { BeaconServer } from '../../src/beacon/server.js'
import { UdpBind } from '../../src/tunnel/bind.js'
import { MemoryPeerDirectory } from '../../src/tunnel/testing/memory-directory.js'
import { Tunnel } from '../../src/tunnel/tunnel.js'
import { FAST, leakedHandles, packet, waitFor } from './helpers.js'

test('UdpBind on 127.0.0.1: key exchange and packets both ways through real sockets', async () => {
  const beacon = new BeaconServer({ bind: await UdpBind.open({ host: '127.0.0.1' }) })
  beacon.start()
  const dir = new MemoryPeerDirectory()
  const mk = async (id: number) => {
    const identity = Identity.generate()
    const bind = await UdpBind.open({ host: '127.0.0.1' })
    dir.setKey(id, identity.publicKey).setEndpoint(id, bind.local)
    const t = new Tunnel({ bind, identity, nodeId: id, directory: dir, beacon: beacon.local, timing: FAST })
    const got: string[] = []
    t.onPacket((p) => got.push(p.subarray(34).toString()))
    t.start()
    return { t, got }
  }
  const a = await mk(11)
  const b = await mk(12)
  try {
    a.t.send(12, packet(11, 12, 'over udp'))
    await waitFor(() => b.got.includes('over udp'), 'a→b')
    b.t.send(11, packet(12, 11, 'and back'))
    await waitFor(() => a.got.includes('and back'), 'b→a')
    assert.equal(a.t.peer(12)!.path, 'direct')
    assert.deepEqual(a.t.publicEndpoint, a.t.local)
    assert.equal(a.t.stats().drops['internal-error'], 0)
  } finally {
    await a.t.close()
    await b.t.close()
    await beacon.close()
  }
  assert.deepEqual(await leakedHandles(), [])
})
