/**
 * The registry server over an asynchronous store (issue 14): a store that
 * fails (a database down) gets error answers while the server and the
 * connection carry on; a slow store keeps each connection's answers in order
 * without holding up other connections; what several front ends on one
 * database share (token-guess bounds, the reaper's interval) holds across them.
 */
import { after, test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { Identity } from '../../src/crypto/identity.js'
import { encodeRegistryMessage, type JsonObject } from '../../src/protocol/registry-framing.js'
import { RegistryError, RegistryErrorCode } from '../../src/registry/errors.js'
import { RegistryServer } from '../../src/registry/server.js'
import { SqliteRegistryStore } from '../../src/registry/store.js'
import type { RegistryStore } from '../../src/registry/store-api.js'
import type { RegistryLimits } from '../../src/registry/limits.js'
import type { RegistryClient } from '../../src/registry/client.js'
import { FakeClock, RawConnection, leakedHandles, testClient } from './helpers.js'

/** How the wrapped store behaves now: failing like a database that is down, slow, and what it was asked. */
interface StoreControl {
  down: boolean
  delayMs: number
  calls: Map<string, number>
}

/**
 * `inner` behind a switch: every asynchronous call first counts itself, then
 * waits `delayMs`, or rejects as a PostgreSQL store does when its database is
 * down (RegistryError STORE). touchNode stays synchronous, close always works.
 */
function controlledStore(inner: RegistryStore, control: StoreControl): RegistryStore {
  const gate = async (name: string): Promise<void> => {
    control.calls.set(name, (control.calls.get(name) ?? 0) + 1)
    if (control.delayMs > 0) await new Promise((resolve) => setTimeout(resolve, control.delayMs))
    if (control.down) throw new RegistryError(RegistryErrorCode.STORE, 'database unreachable (test)', { hint: 'start it again' })
  }
  const wrap = <T extends object>(target: T, prefix: string): T =>
    new Proxy(target, {
      get(t, prop, receiver) {
        const value = Reflect.get(t, prop, receiver) as unknown
        if (prop === 'networks') return wrap(value as object, 'networks.')
        if (typeof value !== 'function' || prop === 'touchNode' || prop === 'close') {
          return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(t) : value
        }
        const name = prefix + String(prop)
        return async (...args: unknown[]) => {
          await gate(name)
          return (value as (...a: unknown[]) => unknown).apply(t, args)
        }
      },
    })
  return wrap(inner, '')
}

interface FrontEnd {
  server: RegistryServer
  store: SqliteRegistryStore
  control: StoreControl
  port: number
  client(id: Identity): RegistryClient
}

/** `count` registry front ends, each with its own store on one SQLite file (or :memory: for one), one fake clock. */
async function withFrontEnds(
  count: number,
  body: (fronts: FrontEnd[], clock: FakeClock) => Promise<void>,
  limits: Partial<RegistryLimits> = {},
): Promise<void> {
  const dir = mkdtempSync(path.join(tmpdir(), 'pt-async-server-'))
  const file = count === 1 ? ':memory:' : path.join(dir, 'registry.db')
  const clock = new FakeClock()
  const fronts: FrontEnd[] = []
  const clients: RegistryClient[] = []
  try {
    for (let i = 0; i < count; i++) {
      const store = new SqliteRegistryStore({ path: file })
      const control: StoreControl = { down: false, delayMs: 0, calls: new Map() }
      const server = new RegistryServer({ store: controlledStore(store, control), now: clock.now, limits })
      const { port } = await server.listen('127.0.0.1', 0)
      fronts.push({
        server,
        store,
        control,
        port,
        client: (id) => {
          const c = testClient(port, id, { now: clock.now })
          clients.push(c)
          return c
        },
      })
    }
    await body(fronts, clock)
  } finally {
    for (const c of clients) c.close()
    for (const f of fronts) {
      await f.server.close()
      await f.store.close()
    }
    rmSync(dir, { recursive: true, force: true })
  }
}

const UNAVAILABLE = { type: 'error', error: 'registry store unavailable' }

test('a store that fails (database down): every request touching it is answered "registry store unavailable", the connection and the server stay, and serve again once it is back', async () => {
  await withFrontEnds(1, async ([fe]) => {
    const id = Identity.generate()
    const a = fe!.client(id)
    assert.equal((await a.register({ listenAddr: ':4001' })).nodeId, 1)
    const raw = await RawConnection.open(fe!.port)
    const heartbeat = { type: 'heartbeat', node_id: 1, signature: id.signChallenge('heartbeat:1') }
    assert.equal((await raw.ask(heartbeat)).type, 'heartbeat_ok')

    fe!.control.down = true
    assert.deepEqual(await raw.ask(heartbeat), UNAVAILABLE)
    assert.deepEqual(await raw.ask({ type: 'lookup', node_id: 1 }), UNAVAILABLE)
    assert.deepEqual(await raw.ask({ type: 'register', listen_addr: ':4002', public_key: Buffer.from(Identity.generate().publicKey).toString('base64') }), UNAVAILABLE)
    // A bad request needs no store: its own answer, as ever.
    assert.deepEqual(await raw.ask({ type: 'lookup', node_id: 'x' }), { type: 'error', error: 'invalid node_id' })
    // New connections are accepted meanwhile, and the real client sees a typed error.
    const fresh = await RawConnection.open(fe!.port)
    assert.deepEqual(await fresh.ask({ type: 'list_networks' }), UNAVAILABLE)
    await assert.rejects(a.lookup(1), (e: unknown) => e instanceof RegistryError && e.serverError === 'registry store unavailable')
    assert.equal(fe!.server.stats().rejected.internal, 5)

    fe!.control.down = false
    assert.equal((await raw.ask(heartbeat)).type, 'heartbeat_ok', 'the same connection serves again')
    assert.equal((await fresh.ask({ type: 'lookup', node_id: 1 })).type, 'lookup_ok')
    assert.equal((await a.lookup(1)).nodeId, 1)
    assert.equal(fe!.server.stats().connections, 3)
    raw.destroy()
    fresh.destroy()
  })
})

test('a slow store: one connection\'s pipelined requests are answered one at a time, in order; another connection is not held up behind them', async () => {
  await withFrontEnds(1, async ([fe]) => {
    const id = Identity.generate()
    await fe!.client(id).register({ listenAddr: ':4001' })
    fe!.control.delayMs = 15
    const first = await RawConnection.open(fe!.port)
    const second = await RawConnection.open(fe!.port)
    const pipelined: JsonObject[] = [
      { type: 'lookup', node_id: 1 },
      { type: 'lookup', node_id: 999 },
      { type: 'heartbeat', node_id: 1, signature: id.signChallenge('heartbeat:1') },
      { type: 'set_tags', node_id: 1, tags: ['x'], signature: id.signChallenge('set_tags:1') },
      { type: 'lookup', node_id: 1 },
    ]
    // All five in one write: the server reads them together, but answers each only after the one before.
    first.sendRaw(Buffer.concat(pipelined.map((m) => Buffer.from(encodeRegistryMessage(m)))))
    const order: string[] = []
    const answers = (async () => {
      const out: JsonObject[] = []
      for (let i = 0; i < pipelined.length; i++) {
        out.push(await first.next(5_000))
        order.push(`first ${i}`)
      }
      return out
    })()
    await new Promise((resolve) => setTimeout(resolve, 5))
    const other = second.ask({ type: 'lookup', node_id: 1 }, 5_000).then((r) => (order.push('second'), r))
    const [got, otherAnswer] = await Promise.all([answers, other])
    assert.deepEqual(
      got.map((r) => r.type === 'error' ? r.error : r.type),
      ['lookup_ok', 'not found', 'heartbeat_ok', 'set_tags_ok', 'lookup_ok'],
    )
    assert.deepEqual(got[4]!.tags, ['x'], 'the lookup after set_tags saw it')
    assert.equal(otherAnswer.type, 'lookup_ok')
    assert.ok(order.indexOf('second') < order.indexOf('first 4'), `the other connection waited for the pipeline: ${order.join(', ')}`)
    first.destroy()
    second.destroy()
  })
})

test('two front ends on one database: a node\'s token guesses are bounded across both (10 a minute in all, not 10 at each)', async () => {
  await withFrontEnds(2, async ([fe1, fe2], clock) => {
    const owner = Identity.generate()
    const guesser = Identity.generate()
    const o = fe1!.client(owner)
    const g1 = fe1!.client(guesser)
    const g2 = fe2!.client(guesser)
    await o.register({ listenAddr: ':4001' })
    const { nodeId } = await g1.register({ listenAddr: ':4002' })
    assert.equal((await g2.register({ listenAddr: ':4002' })).nodeId, nodeId, 'one node, whichever front end it talks to')
    await o.createNetwork(1, { name: 'vault', joinRule: 'token', token: 'right' })
    const outcomes: string[] = []
    for (let i = 0; i < 12; i++) {
      try {
        await (i % 2 === 0 ? g1 : g2).joinNetwork(nodeId, 1, { token: 'wrong' })
        outcomes.push('joined')
      } catch (err) {
        const e = err as RegistryError
        outcomes.push(e.serverError === 'too many token attempts' ? 'limited' : e.code)
      }
    }
    assert.deepEqual(outcomes, [...Array<string>(10).fill('PT_NETWORK_BAD_TOKEN'), 'limited', 'limited'])
    clock.advance(60_000)
    assert.equal((await g2.joinNetwork(nodeId, 1, { token: 'right' })).networkId, 1, 'the next minute')
  })
})

test('two front ends on one database: their reaper timers tick, but the reaper runs once per interval between them (store.maintain)', async () => {
  await withFrontEnds(
    2,
    async ([fe1, fe2], clock) => {
      const runs = (fe: FrontEnd) => fe.control.calls.get('reapStale') ?? 0
      const maintains = (fe: FrontEnd) => fe.control.calls.get('maintain') ?? 0
      const a = fe1!.client(Identity.generate())
      await a.register({ listenAddr: ':4001' })
      // Ticks every 10 ms; none reaps in its first 40 ms, then each asks maintain() at every tick.
      await new Promise((resolve) => setTimeout(resolve, 150))
      assert.ok(maintains(fe1!) >= 2 && maintains(fe2!) >= 2, `both tick: ${maintains(fe1!)}, ${maintains(fe2!)}`)
      assert.equal(runs(fe1!) + runs(fe2!), 1, 'the first tick of either ran it; the fake clock has not moved since')
      clock.advance(10_000) // node 1 is stale now
      await new Promise((resolve) => setTimeout(resolve, 80))
      assert.equal(runs(fe1!) + runs(fe2!), 2, 'one pass for the one interval the fake clock has moved')
      assert.equal(fe1!.server.stats().nodesReaped + fe2!.server.stats().nodesReaped, 1)
      await assert.rejects(fe2!.client(Identity.generate()).lookup(1), /not found/)
      clock.advance(100) // another interval: one more pass, by either
      await new Promise((resolve) => setTimeout(resolve, 80))
      assert.equal(runs(fe1!) + runs(fe2!), 3)
    },
    { reapIntervalMs: 40, staleAfterMs: 5_000 },
  )
})

test('a front end does not reap in its first interval: after a registry outage, daemons get a heartbeat\'s time before their silence counts', async () => {
  const started = performance.now()
  await withFrontEnds(
    1,
    async ([fe], clock) => {
      const id = Identity.generate()
      await fe!.client(id).register({ listenAddr: ':4001' })
      clock.advance(10_000) // as if the registry had been down: node 1 looks silent
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, 150 - (performance.now() - started))))
      assert.equal(fe!.control.calls.get('maintain'), undefined, 'no reaper pass within the first 300 ms')
      const raw = await RawConnection.open(fe!.port)
      assert.equal((await raw.ask({ type: 'heartbeat', node_id: 1, signature: id.signChallenge('heartbeat:1') })).type, 'heartbeat_ok')
      await new Promise((resolve) => setTimeout(resolve, 400))
      assert.ok((fe!.control.calls.get('reapStale') ?? 0) >= 1, 'the reaper runs after the first interval')
      assert.equal(fe!.server.stats().nodesReaped, 0, 'the node that heartbeat in time stays')
      raw.destroy()
    },
    { reapIntervalMs: 300, staleAfterMs: 5_000 },
  )
})

after(async () => {
  assert.deepEqual(await leakedHandles(), [], 'sockets, servers or timers left open')
})
