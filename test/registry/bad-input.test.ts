/** Hostile and broken input: the server answers or closes that one connection, and keeps serving everyone else. */
import { after, test } from 'node:test'
import assert from 'node:assert/strict'
import { connect } from 'node:net'
import { Identity } from '../../src/crypto/identity.js'
import { RegistryChallenge } from '../../src/registry/challenges.js'
import { encodeRegistryMessage, type JsonObject } from '../../src/protocol/registry-framing.js'
import { SeededRandom } from '../../src/random.js'
import { RawConnection, startTestRegistry, type TestRegistry, leakedHandles } from './helpers.js'

async function withRegistry(body: (r: TestRegistry) => Promise<void>): Promise<void> {
  const registry = await startTestRegistry()
  try {
    await body(registry)
  } finally {
    await registry.close()
  }
}

function lengthPrefix(n: number): Buffer {
  const b = Buffer.alloc(4)
  b.writeUInt32BE(n >>> 0)
  return b
}

/** A signed network write from node 1 (`id`), as network-client.ts builds it. */
function networkWrite(id: Identity, type: string, fields: JsonObject, action: string, networkId: number, detail: string, nowMs: number, subject = 0): JsonObject {
  const timestamp = Math.floor(nowMs / 1000)
  const nonce = 'cd'.repeat(16)
  const signature = id.signChallenge(RegistryChallenge.network({ action, nodeId: 1, networkId, subject, detail, timestamp, nonce }))
  return { type, ...fields, node_id: 1, timestamp, nonce, signature }
}

async function registerOne(registry: TestRegistry): Promise<{ raw: RawConnection; id: Identity }> {
  const id = Identity.generate()
  const raw = await RawConnection.open(registry.port)
  const ok = await raw.ask({ type: 'register', listen_addr: ':1', public_key: Buffer.from(id.publicKey).toString('base64') })
  assert.equal(ok.type, 'register_ok')
  return { raw, id }
}

test('an oversized length prefix closes that connection only', async () => {
  await withRegistry(async (registry) => {
    const { raw: good } = await registerOne(registry)
    const bad = await RawConnection.open(registry.port)
    bad.sendRaw(lengthPrefix(1_048_577))
    assert.deepEqual(await bad.next(), { type: 'error', error: 'message too large' })
    await bad.waitClosed()
    const bad2 = await RawConnection.open(registry.port)
    bad2.sendRaw(lengthPrefix(0xffffffff))
    await bad2.waitClosed()
    assert.equal((await good.ask({ type: 'lookup', node_id: 1 })).type, 'lookup_ok')
    assert.equal(registry.server.stats().rejected['too-large'], 2)
    good.destroy()
  })
})

test('invalid JSON and non-object JSON get an error answer, then the connection closes', async () => {
  await withRegistry(async (registry) => {
    for (const body of ['{"type":', '[1,2,3]', '"lookup"', 'null', '\xff\xfe']) {
      const raw = await RawConnection.open(registry.port)
      const bytes = Buffer.from(body, 'latin1')
      raw.sendRaw(Buffer.concat([lengthPrefix(bytes.length), bytes]))
      assert.deepEqual(await raw.next(), { type: 'error', error: 'invalid json' })
      await raw.waitClosed()
    }
    assert.equal(registry.server.stats().rejected['bad-json'], 5)
  })
})

test('requests answered before a bad frame in the same chunk still get their answers, in order', async () => {
  await withRegistry(async (registry) => {
    const raw = await RawConnection.open(registry.port)
    const junk = Buffer.from('nope')
    raw.sendRaw(
      Buffer.concat([
        encodeRegistryMessage({ type: 'list_networks' }),
        encodeRegistryMessage({ type: 'beacon_list' }),
        lengthPrefix(junk.length),
        junk,
      ]),
    )
    assert.equal((await raw.next()).type, 'list_networks_ok')
    assert.equal((await raw.next()).type, 'beacon_list_ok')
    assert.equal((await raw.next()).error, 'invalid json')
    await raw.waitClosed()
  })
})

test('missing and wrongly typed fields: error answers, the connection stays usable', async () => {
  await withRegistry(async (registry) => {
    const { raw, id } = await registerOne(registry)
    const cases: Array<[JsonObject, string]> = [
      [{}, 'invalid type'],
      [{ type: 42 }, 'invalid type'],
      [{ type: 'no_such_thing' }, 'unknown request type'],
      [{ type: 'lookup' }, 'invalid node_id'],
      [{ type: 'lookup', node_id: '1' }, 'invalid node_id'],
      [{ type: 'lookup', node_id: -1 }, 'invalid node_id'],
      [{ type: 'lookup', node_id: 0 }, 'invalid node_id'],
      [{ type: 'lookup', node_id: 1.5 }, 'invalid node_id'],
      [{ type: 'lookup', node_id: 2 ** 40 }, 'invalid node_id'],
      [{ type: 'lookup', node_id: 1e308 }, 'invalid node_id'],
      [{ type: 'lookup', node_id: 77 }, 'not found'],
      [{ type: 'register', listen_addr: ':1' }, 'invalid public_key'],
      [{ type: 'register', public_key: 'AAAA', listen_addr: ':1' }, 'invalid public_key'],
      [{ type: 'register', public_key: 12, listen_addr: ':1' }, 'invalid public_key'],
      [{ type: 'register', public_key: Buffer.alloc(32, 1).toString('base64'), listen_addr: 5 }, 'invalid listen_addr'],
      [{ type: 'set_visibility', node_id: 1, public: 'yes', signature: id.signChallenge('set_visibility:1') }, 'invalid public'],
      [{ type: 'set_tags', node_id: 1, tags: 'gpu', signature: id.signChallenge('set_tags:1') }, 'invalid tags'],
      [{ type: 'set_tags', node_id: 1, tags: [1], signature: id.signChallenge('set_tags:1') }, 'invalid tags'],
      [{ type: 'set_tags', node_id: 1, tags: Array(11).fill('a'), signature: id.signChallenge('set_tags:1') }, 'invalid tags'],
      [{ type: 'heartbeat', node_id: 1, signature: 7 }, 'signature missing'],
      [{ type: 'heartbeat', node_id: 1, signature: 'x'.repeat(5000) }, 'signature missing'],
      [{ type: 'heartbeat', node_id: 1, signature: id.signChallenge('heartbeat:2') }, 'signature invalid'],
      [{ type: 'heartbeat', node_id: 1, signature: id.signChallenge('heartbeat:1').replace(/^./, (c) => (c === 'A' ? 'B' : 'A')) }, 'signature invalid'],
      [{ type: 'heartbeat', node_id: 1, signature: '!!notbase64!!' }, 'signature invalid'],
      [{ type: 'resolve', node_id: 1, requester_id: 1, signature: id.signChallenge('resolve:1:2') }, 'signature invalid'],
      [{ type: 'report_trust', node_id: 1, peer_id: 1, signature: id.signChallenge('report_trust:1:1') }, 'invalid peer_id'],
      [{ type: 'request_handshake', from_node_id: 1, to_node_id: 1, signature: id.signChallenge('handshake:1:1') }, 'invalid to_node_id'],
      [{ type: 'update_polo_score', node_id: 1, delta: '5' }, 'invalid delta'],
      [{ type: 'beacon_register', beacon_id: 1, addr: 'not an address' }, 'invalid addr'],
      [{ type: 'list_nodes', network_id: -3 }, 'invalid network_id'],
    ]
    for (const [request, error] of cases) {
      assert.deepEqual(await raw.ask(request), { type: 'error', error }, JSON.stringify(request).slice(0, 120))
    }
    assert.equal((await raw.ask({ type: 'heartbeat', node_id: 1, signature: id.signChallenge('heartbeat:1') })).type, 'heartbeat_ok')
    const rejected = registry.server.stats().rejected
    assert.equal(rejected['bad-signature'], 6)
    assert.equal(rejected['unknown-type'], 1)
    assert.equal(rejected['not-found'], 1)
    raw.destroy()
  })
})

test('fuzz: thousands of random and mutated streams split at random points; the server keeps serving', async () => {
  await withRegistry(async (registry) => {
    const { raw: witness, id } = await registerOne(registry)
    const rng = new SeededRandom(0x5eed)
    const valid: JsonObject[] = [
      { type: 'lookup', node_id: 1 },
      { type: 'heartbeat', node_id: 1, signature: id.signChallenge('heartbeat:1') },
      { type: 'resolve_hostname', hostname: 'x' },
      { type: 'register', listen_addr: ':1', public_key: Buffer.from(id.publicKey).toString('base64') },
      { type: 'poll_handshakes', node_id: 1, signature: id.signChallenge('poll_handshakes:1') },
      { type: 'set_tags', node_id: 1, tags: ['a', 'b'], signature: id.signChallenge('set_tags:1') },
      { type: 'list_networks' },
      // Networks (issue 13): a signed write, a read and an invite, for the mutator to chew on.
      networkWrite(id, 'create_network', { name: 'fuzz', join_rule: 'token', token: 't', policy: { max_members: 3, allowed_ports: [80], members_resolve: true } }, 'create', 0, 'name=fuzz;rule=token;policy={"allowed_ports":[80],"max_members":3,"members_resolve":true}', registry.clock.ms),
      networkWrite(id, 'join_network', { network_id: 1, token: 't' }, 'join', 1, 'rule=token', registry.clock.ms, 1),
      { type: 'audit_log', network_id: 1, node_id: 1, after_seq: 0, limit: 3, signature: id.signChallenge('audit_log:1:1') },
      { type: 'create_invite', network_id: 1, invite: { network_id: 1, inviter_id: 1, invitee_id: 1, expires: 2e9, nonce: 'ab'.repeat(16), signature: 'AAAA' } },
    ]
    const randomBytes = (n: number): Buffer => {
      const b = Buffer.alloc(n)
      rng.fill(b)
      return b
    }
    /** One connection's worth of bytes: valid frames, mutated frames, junk, truncated tails. */
    const stream = (): Buffer => {
      const parts: Buffer[] = []
      const count = 1 + rng.int(4)
      for (let i = 0; i < count; i++) {
        const frame = Buffer.from(encodeRegistryMessage(valid[rng.int(valid.length)]!))
        switch (rng.int(6)) {
          case 0:
            parts.push(frame)
            break
          case 1: // flip bytes in the body (JSON breaks or fields change type)
            for (let k = 0; k < 1 + rng.int(4); k++) frame[4 + rng.int(frame.length - 4)] = rng.int(256)
            parts.push(frame)
            break
          case 2: // flip bytes anywhere, prefix included
            for (let k = 0; k < 1 + rng.int(3); k++) frame[rng.int(frame.length)] = rng.int(256)
            parts.push(frame)
            break
          case 3: // cut short: the peer vanishes mid-frame
            parts.push(frame.subarray(0, rng.int(frame.length)))
            break
          case 4:
            parts.push(randomBytes(rng.int(64)))
            break
          default: // plausible prefix, random body
            parts.push(lengthPrefix(rng.int(200)), randomBytes(rng.int(200)))
        }
      }
      return Buffer.concat(parts)
    }
    const sendOne = (bytes: Buffer): Promise<void> =>
      new Promise((resolve) => {
        const socket = connect({ host: '127.0.0.1', port: registry.port })
        socket.on('error', () => {})
        socket.on('data', () => {})
        socket.on('close', () => resolve())
        socket.on('connect', () => {
          let offset = 0
          const writeSome = (): void => {
            if (offset >= bytes.length || socket.destroyed) {
              // Half of them hang up at once, the rest linger for answers first.
              if (rng.int(2) === 0) socket.destroy()
              else setTimeout(() => socket.destroy(), 5)
              return
            }
            const n = 1 + rng.int(bytes.length - offset)
            socket.write(bytes.subarray(offset, offset + n))
            offset += n
            setImmediate(writeSome)
          }
          writeSome()
        })
      })

    const started = Date.now()
    let connections = 0
    const budgetMs = 6_000
    while (connections < 3_000 && Date.now() - started < budgetMs) {
      const batch: Promise<void>[] = []
      for (let i = 0; i < 50; i++) batch.push(sendOne(stream()))
      await Promise.all(batch)
      connections += batch.length
    }
    assert.ok(connections >= 500, `only ${connections} fuzz connections in ${budgetMs} ms`)

    // The witness connection and fresh ones are served; nothing of the fuzz connections is left.
    assert.equal((await witness.ask({ type: 'heartbeat', node_id: 1, signature: id.signChallenge('heartbeat:1') })).type, 'heartbeat_ok')
    const fresh = await RawConnection.open(registry.port)
    assert.equal((await fresh.ask({ type: 'lookup', node_id: 1 })).type, 'lookup_ok')
    for (let i = 0; i < 100 && registry.server.stats().connections > 2; i++) await new Promise((r) => setTimeout(r, 10))
    const stats = registry.server.stats()
    assert.equal(stats.connections, 2)
    assert.ok(stats.connectionsAccepted >= connections)
    assert.ok((stats.rejected['bad-json'] ?? 0) > 0, JSON.stringify(stats))
    assert.ok((stats.rejected['too-large'] ?? 0) > 0, JSON.stringify(stats))
    assert.equal(stats.rejected.internal, undefined, 'no request ends in an internal error')
    witness.destroy()
    fresh.destroy()
  })
})

after(async () => {
  assert.deepEqual(await leakedHandles(), [], 'sockets, servers or timers left open')
})
