/**
 * Hardening: an unsigned `register` carrying a known public key (anyone can read
 * keys with `lookup`) must not move that node's `real_addr`. The changed address
 * waits on the connection it came in on until the node signs a request there.
 */
import { after, test } from 'node:test'
import assert from 'node:assert/strict'
import { Identity } from '../../src/crypto/identity.js'
import type { RegistryClient } from '../../src/registry/client.js'
import { RawConnection, startTestRegistry, testClient, type TestRegistry, leakedHandles } from './helpers.js'

async function withRegistry(body: (r: TestRegistry, open: (id?: Identity) => RegistryClient, raw: () => Promise<RawConnection>) => Promise<void>): Promise<void> {
  const registry = await startTestRegistry()
  const clients: RegistryClient[] = []
  const raws: RawConnection[] = []
  try {
    await body(
      registry,
      (id = Identity.generate()) => {
        const c = testClient(registry.port, id)
        clients.push(c)
        return c
      },
      async () => {
        const c = await RawConnection.open(registry.port)
        raws.push(c)
        return c
      },
    )
  } finally {
    for (const c of clients) c.close()
    for (const c of raws) c.destroy()
    await registry.close()
  }
}

function keyOf(id: Identity): string {
  return Buffer.from(id.publicKey).toString('base64')
}

test('register with a known key from elsewhere answers the node ID but leaves real_addr alone', async () => {
  await withRegistry(async (registry, open, raw) => {
    const ida = Identity.generate()
    const a = open(ida)
    const observer = open()
    assert.equal((await a.register({ listenAddr: ':4001' })).nodeId, 1)
    await a.setVisibility(1, true)
    assert.equal((await observer.register({ listenAddr: ':4002' })).nodeId, 2)
    assert.equal((await observer.lookup(1)).realAddr, '127.0.0.1:4001')

    // The attacker read A's key from lookup and registers it with its own address.
    const attacker = await raw()
    const answer = await attacker.ask({ type: 'register', listen_addr: ':6666', public_key: keyOf(ida), owner: 'mallory' })
    assert.equal(answer.type, 'register_ok')
    assert.equal(answer.node_id, 1, 'the Go answer is kept: the node ID of the key')
    assert.equal((await observer.lookup(1)).realAddr, '127.0.0.1:4001')
    assert.equal((await registry.store.getNode(1))?.realAddr, '127.0.0.1:4001')
    assert.equal((await registry.store.getNode(1))?.owner, null)

    // A signature that does not verify proves nothing; nor does A's heartbeat on A's own connection.
    const forged = await attacker.ask({ type: 'heartbeat', node_id: 1, signature: Identity.generate().signChallenge('heartbeat:1') })
    assert.equal(forged.error, 'signature invalid')
    await a.heartbeat(1)
    assert.equal((await observer.lookup(1)).realAddr, '127.0.0.1:4001')
    assert.equal((await registry.store.getNode(1))?.realAddr, '127.0.0.1:4001')
  })
})

test('the node itself moves its address: at once on a connection it signed on, else after its next signed request', async () => {
  await withRegistry(async (registry, open) => {
    const ida = Identity.generate()
    const a = open(ida)
    await a.register({ listenAddr: ':4001' })
    await a.setVisibility(1, true) // signed: this connection now speaks for node 1
    await a.register({ listenAddr: ':5002' })
    assert.equal((await registry.store.getNode(1))?.realAddr, '127.0.0.1:5002')

    // A restarted daemon on a new connection: register, then its heartbeat (signed) commits the address.
    const restarted = open(ida)
    assert.equal((await restarted.register({ listenAddr: ':5003' })).nodeId, 1)
    assert.equal((await registry.store.getNode(1))?.realAddr, '127.0.0.1:5002')
    await restarted.heartbeat(1)
    assert.equal((await registry.store.getNode(1))?.realAddr, '127.0.0.1:5003')
    assert.equal((await a.lookup(1)).realAddr, '127.0.0.1:5003')
  })
})

test('a new key is stored with its address at once; a node gone offline comes back at its old address until it signs', async () => {
  await withRegistry(async (registry, open, raw) => {
    const ida = Identity.generate()
    const a = open(ida)
    await a.register({ listenAddr: ':4001' })
    assert.equal((await registry.store.getNode(1))?.realAddr, '127.0.0.1:4001')
    await a.deregister(1)

    const attacker = await raw()
    assert.equal((await attacker.ask({ type: 'register', listen_addr: ':6666', public_key: keyOf(ida) })).node_id, 1)
    assert.equal((await registry.store.getNode(1))?.realAddr, '127.0.0.1:4001')

    const back = open(ida)
    await back.register({ listenAddr: ':4444' })
    await back.pollHandshakes(1)
    assert.equal((await registry.store.getNode(1))?.realAddr, '127.0.0.1:4444')
  })
})

after(async () => {
  assert.deepEqual(await leakedHandles(), [], 'sockets, servers or timers left open')
})
