/**
 * Several registry front ends on one PostgreSQL (issue 14), with real faults:
 * a front end killed (SIGKILL) in the middle of registrations, and PostgreSQL
 * restarted under load. Each front end is its own process (test/util/front-ends.ts),
 * PostgreSQL a throwaway server of the test's own (test/util/postgres.ts); both
 * are skipped, with the reason, when PostgreSQL is not installed.
 */
import { after, before, test } from 'node:test'
// Each test has a timeout: a hung step fails it instead of holding the whole run.
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Identity } from '../../src/crypto/identity.js'
import { Daemon } from '../../src/daemon/daemon.js'
import { RegistryClient } from '../../src/registry/client.js'
import { RegistryError } from '../../src/registry/errors.js'
import { startFrontEnd, type FrontEnd } from '../util/front-ends.js'
import { startTestPostgres, type TestPostgres } from '../util/postgres.js'
import { FAST_TIMING } from '../daemon/world.js'

let pg: TestPostgres | null = null
let skip: string | false = false

before(async () => {
  const started = await startTestPostgres()
  if ('skip' in started) skip = started.skip
  else pg = started
})

after(async () => {
  await pg?.stop()
})

/** A client of `fronts`, starting with fronts[first] and then the others in order. */
function clientOn(fronts: FrontEnd[], first: number, identity = Identity.generate()): RegistryClient {
  const order = fronts.map((_, k) => fronts[(first + k) % fronts.length]!)
  return new RegistryClient({
    host: order[0]!.host,
    port: order[0]!.port,
    fallbacks: order.slice(1).map((f) => ({ host: f.host, port: f.port })),
    identity,
    timeoutMs: 10_000,
    reconnect: { maxAttempts: 3, initialDelayMs: 50, maxDelayMs: 200, dialTimeoutMs: 1_000 },
  })
}

async function waitFor(what: string, cond: () => Promise<boolean> | boolean, timeoutMs = 20_000): Promise<void> {
  const end = Date.now() + timeoutMs
  while (Date.now() < end) {
    if (await cond()) return
    await new Promise((r) => setTimeout(r, 100))
  }
  assert.fail(`timed out waiting for ${what}`)
}

test('three front ends: one killed during registrations; clients carry on through the others and no node ID is handed out twice', { timeout: 120_000 }, async (t) => {
  if (skip !== false) return t.skip(skip)
  const url = await pg!.createDatabase('killfe')
  const fronts = await Promise.all([0, 1, 2].map(() => startFrontEnd(url)))
  const N = 90
  const identities = Array.from({ length: N }, () => Identity.generate())
  const clients = identities.map((identity, i) => clientOn(fronts, i % 3, identity))
  const keys = identities.map((identity) => Buffer.from(identity.publicKey).toString('base64'))
  try {
    const ids: number[] = new Array(N).fill(0)
    const waves = 9
    for (let w = 0; w < waves; w++) {
      const wave = Array.from({ length: N / waves }, (_, k) => w * (N / waves) + k)
      const registering = wave.map(async (i) => {
        ids[i] = (await clients[i]!.register({ listenAddr: `127.0.0.1:${20_000 + i}` })).nodeId
      })
      // Front end 0 dies with this wave's requests on the wire.
      if (w === 3) await fronts[0]!.kill()
      await Promise.all(registering)
    }
    assert.equal(new Set(ids).size, N, 'every key got its own node ID')
    assert.ok(ids.every((id) => id > 0))
    // Each ID belongs to the key that got it, whichever front end is asked.
    const reader = clientOn(fronts.slice(1), 0)
    try {
      for (let i = 0; i < N; i++) assert.equal((await reader.lookup(ids[i]!)).publicKey, keys[i])
    } finally {
      reader.close()
    }
    // The clients of the dead front end moved; every node heartbeats, and registering again keeps the ID.
    for (let i = 0; i < N; i++) {
      await clients[i]!.heartbeat(ids[i]!)
      assert.notEqual(clients[i]!.address, `${fronts[0]!.host}:${fronts[0]!.port}`)
    }
    for (let i = 0; i < N; i += 7) assert.equal((await clients[i]!.register({ listenAddr: `127.0.0.1:${20_000 + i}` })).nodeId, ids[i])
  } finally {
    for (const c of clients) c.close()
    await Promise.all(fronts.map((f) => f.stop()))
  }
})

test('daemons on a list of front ends keep their registration when theirs is killed', { timeout: 120_000 }, async (t) => {
  if (skip !== false) return t.skip(skip)
  const url = await pg!.createDatabase('daemons')
  const fronts = await Promise.all([0, 1, 2].map(() => startFrontEnd(url)))
  const dir = await mkdtemp(join(tmpdir(), 'pilot-fe-'))
  const registry = fronts.map((f) => `${f.host}:${f.port}`).join(',')
  const daemons: Daemon[] = []
  try {
    for (const name of ['a', 'b']) {
      daemons.push(
        await Daemon.start({
          stateDir: join(dir, name),
          registry,
          beacon: null,
          listen: '127.0.0.1:0',
          hostname: `fe-${name}`,
          version: 'test',
          timing: FAST_TIMING,
        }),
      )
    }
    const [a, b] = daemons as [Daemon, Daemon]
    assert.equal((await a.status()).registry.front_end, registry.split(',')[0])
    const okBefore = a.stats().registry.heartbeatsOk
    await fronts[0]!.kill()
    // Heartbeats go on through another front end, well within the reaper's limit.
    await waitFor('a heartbeat through another front end', () => a.stats().registry.heartbeatsOk >= okBefore + 3)
    const status = await a.status()
    assert.notEqual(status.registry.front_end, registry.split(',')[0])
    assert.equal(status.registry.connected, true)
    // The directory still answers: a resolves b by name through the surviving front ends.
    const resolved = await a.resolve('fe-b')
    assert.equal(resolved.node_id, b.nodeId)
  } finally {
    await Promise.all(daemons.map((d) => d.close()))
    await Promise.all(fronts.map((f) => f.stop()))
    await rm(dir, { recursive: true, force: true })
  }
})

test('PostgreSQL restarted under load: front ends stay up and reconnect, and no acknowledged write is lost', { timeout: 120_000 }, async (t) => {
  if (skip !== false) return t.skip(skip)
  const url = await pg!.createDatabase('restart')
  const fronts = await Promise.all([0, 1].map(() => startFrontEnd(url)))
  const N = 24
  const clients = Array.from({ length: N }, (_, i) => clientOn(fronts, i % 2))
  try {
    const ids = await Promise.all(clients.map(async (c, i) => (await c.register({ listenAddr: `127.0.0.1:${21_000 + i}` })).nodeId))
    // Each node keeps renaming itself; `acked[i]` is the last version the registry confirmed.
    const acked: number[] = new Array(N).fill(-1)
    let failures = 0
    let running = true
    const writers = clients.map(async (c, i) => {
      for (let v = 0; running; v++) {
        try {
          await c.setHostname(ids[i]!, `rs-${i}-v${v}`)
          acked[i] = v
        } catch (err) {
          assert.ok(err instanceof RegistryError, `a typed error, not ${String(err)}`)
          failures++
          await new Promise((r) => setTimeout(r, 50))
        }
      }
    })
    await new Promise((r) => setTimeout(r, 500))
    const ackedBefore = [...acked]
    await pg!.halt()
    await new Promise((r) => setTimeout(r, 1_500))
    await pg!.start()
    // The front ends never exited, and writes go through again without restarting them.
    for (const f of fronts) assert.equal(f.child.exitCode, null)
    await waitFor('writes acknowledged after the restart', () => acked.every((v, i) => v > ackedBefore[i]! + 2))
    running = false
    await Promise.all(writers)
    assert.ok(failures > 0, 'some writes failed while PostgreSQL was down')
    // Every acknowledged write is there: each name is the last acknowledged version or a later one.
    for (let i = 0; i < N; i++) {
      const hostname = (await clients[(i + 1) % N]!.lookup(ids[i]!)).hostname ?? ''
      const m = /^rs-(\d+)-v(\d+)$/.exec(hostname)
      assert.ok(m !== null && Number(m[1]) === i, `node ${ids[i]} has hostname ${hostname}`)
      assert.ok(Number(m[2]) >= acked[i]!, `node ${ids[i]}: v${m[2]} is older than the acknowledged v${acked[i]}`)
    }
    // And a new node registers.
    const late = clientOn(fronts, 1)
    try {
      const id = (await late.register({ listenAddr: '127.0.0.1:21999' })).nodeId
      assert.ok(!ids.includes(id))
    } finally {
      late.close()
    }
  } finally {
    for (const c of clients) c.close()
    await Promise.all(fronts.map((f) => f.stop()))
  }
})
