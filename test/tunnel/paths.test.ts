// Path decisions (paths.ts): confirm, roam, upgrade, relay fallbacks, probes, punched endpoints
// and resolves, with a fake port and clock; no tunnel, no socket.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { nullLogger } from '../../src/logger.js'
import { PathManager, type PathTiming } from '../../src/tunnel/paths.js'
import { Peer, type PathChangeEvent } from '../../src/tunnel/peer.js'
import { newDropCounters } from '../../src/tunnel/stats.js'
import { MemoryPeerDirectory } from '../../src/tunnel/testing/memory-directory.js'

const TIMING: PathTiming = { relayAfterMs: 300, probeIntervalMs: 100, probeMaxMs: 400, directStaleMs: 2_000, punchMatchMs: 1_000 }
const A = { host: '10.0.0.1', port: 4000 }
const A2 = { host: '10.0.0.1', port: 4001 }

function setup(opts: { hasRelay?: boolean } = {}) {
  const clock = { t: 10_000, now(): number { return this.t } }
  const directory = new MemoryPeerDirectory()
  const events: PathChangeEvent[] = []
  const log: string[] = []
  const current = new Set<Peer>()
  const paths = new PathManager({
    directory,
    hasRelay: opts.hasRelay ?? true,
    timing: TIMING,
    clock,
    logger: nullLogger,
    drops: newDropCounters(),
    port: {
      sendKeyFrame: (peer) => log.push(`key ${peer.nodeId} via ${peer.path}`),
      sendKeyFrameTo: (host, port) => log.push(`key to ${host}:${port}`),
      keySent: (peer) => log.push(`key sent ${peer.nodeId}`),
      isCurrent: (peer) => current.has(peer),
    },
  })
  paths.onChange((e) => events.push(e))
  const peer = (id: number): Peer => {
    const p = new Peer(id)
    current.add(p)
    return p
  }
  return { paths, clock, directory, events, log, current, peer }
}

const settle = (): Promise<void> => new Promise((r) => setImmediate(r))
const summary = (e: PathChangeEvent): string => `${e.from}→${e.to} ${e.reason}${e.endpoint === null ? '' : ` ${e.endpoint.host}:${e.endpoint.port}`}`

test('authenticated PILS: the first confirms a direct path, the same endpoint changes nothing, another one is a roam', () => {
  const { paths, events, peer, clock } = setup()
  const p = peer(2)
  paths.noteDirectPils(p, A.host, A.port, clock.t)
  paths.noteDirectPils(p, A.host, A.port, clock.t + 1)
  paths.noteDirectPils(p, A2.host, A2.port, clock.t + 2)
  assert.deepEqual(events.map(summary), ['none→direct confirmed 10.0.0.1:4000', 'direct→direct roam 10.0.0.1:4001'])
  assert.deepEqual(p.endpoint, { host: A2.host, port: A2.port, fromPunch: false, fromResolve: false })
  assert.equal(p.lastDirectAuthMs, clock.t + 2)
})

test('a replayed PILA from elsewhere does not move a direct path (a candidate only); one with a new key only once a PILS from there authenticates', () => {
  const { paths, events, peer, clock } = setup()
  const p = peer(2)
  paths.noteDirectPils(p, A.host, A.port, clock.t)
  assert.equal(paths.noteDirectPila(p, '6.6.6.6', 1, false, clock.t), false)
  assert.deepEqual(p.endpoint && [p.endpoint.host, p.endpoint.port], [A.host, A.port])
  assert.notEqual(p.findCandidate('6.6.6.6', 1), null)
  assert.equal(p.pendingEndpoint, null)
  // A new key from elsewhere: pending (it gets copies of our frames), the endpoint stays.
  assert.equal(paths.noteDirectPila(p, A2.host, A2.port, true, clock.t), false)
  assert.deepEqual(p.endpoint && [p.endpoint.host, p.endpoint.port], [A.host, A.port])
  const pending = (q: Peer): [string, number] | null => (q.pendingEndpoint === null ? null : [q.pendingEndpoint.host, q.pendingEndpoint.port])
  assert.deepEqual(pending(p), [A2.host, A2.port])
  assert.deepEqual(events.map(summary), ['none→direct confirmed 10.0.0.1:4000'])
  // The first authenticated PILS from there moves it (reported as the key change it was).
  paths.noteDirectPils(p, A2.host, A2.port, clock.t + 1)
  assert.equal(p.pendingEndpoint, null)
  assert.deepEqual(events.map(summary), ['none→direct confirmed 10.0.0.1:4000', 'direct→direct key-change 10.0.0.1:4001'])
})

test('a pending endpoint ends with a PILS from the current endpoint, or after directStaleMs', () => {
  const { paths, events, peer, clock } = setup()
  const p = peer(2)
  paths.noteDirectPils(p, A.host, A.port, clock.t)
  paths.noteDirectPila(p, '6.6.6.6', 1, true, clock.t)
  assert.notEqual(p.pendingEndpoint, null)
  paths.noteDirectPils(p, A.host, A.port, clock.t + 1) // the peer's new key speaks from where it was
  assert.equal(p.pendingEndpoint, null)
  paths.noteDirectPila(p, '6.6.6.6', 1, true, clock.t + 2)
  paths.tick(p, clock.t + 2 + TIMING.directStaleMs - 1)
  assert.notEqual(p.pendingEndpoint, null)
  paths.tick(p, clock.t + 2 + TIMING.directStaleMs)
  assert.equal(p.pendingEndpoint, null)
  assert.deepEqual(events.map(summary), ['none→direct confirmed 10.0.0.1:4000'], 'the endpoint never moved')
})

test('a relayed peer moves to direct on an authenticated direct frame (upgrade); the PILA case reports it', () => {
  const { paths, events, peer, clock } = setup()
  const p = peer(2)
  paths.noteRelayed(p, clock.t)
  assert.equal(p.path, 'relay')
  assert.equal(paths.noteDirectPila(p, A.host, A.port, false, clock.t), true)
  assert.equal(p.path, 'direct')
  const q = peer(3)
  paths.noteRelayed(q, clock.t)
  paths.noteDirectPils(q, A2.host, A2.port, clock.t)
  assert.deepEqual(events.map((e) => `${e.nodeId} ${summary(e)}`), [
    '2 none→relay relay-reachable',
    '2 relay→direct upgrade 10.0.0.1:4000',
    '3 none→relay relay-reachable',
    '3 relay→direct upgrade 10.0.0.1:4001',
  ])
})

test('a relayed frame moves a direct peer to the relay only once the direct path has been quiet for relayAfterMs', () => {
  const { paths, peer, clock } = setup()
  const p = peer(2)
  paths.noteDirectPils(p, A.host, A.port, clock.t)
  paths.noteRelayed(p, clock.t + TIMING.relayAfterMs)
  assert.equal(p.path, 'direct')
  paths.noteRelayed(p, clock.t + TIMING.relayAfterMs + 1)
  assert.equal(p.path, 'relay')
})

test('tick: set-up without a direct answer for relayAfterMs → relay and our PILA through it; never without a beacon', () => {
  for (const hasRelay of [true, false]) {
    const { paths, peer, clock, log, events } = setup({ hasRelay })
    const p = peer(2)
    p.setupStartedMs = clock.t
    paths.tick(p, clock.t + TIMING.relayAfterMs - 1)
    assert.equal(p.path, 'none')
    paths.tick(p, clock.t + TIMING.relayAfterMs)
    if (hasRelay) {
      assert.deepEqual(events.map(summary), ['none→relay relay-timeout'])
      assert.ok(log.includes('key 2 via relay'))
      assert.equal(p.resolving, true, 'the endpoint is asked for again')
    } else {
      assert.equal(p.path, 'none')
      assert.deepEqual(events, [])
    }
  }
})

test('tick: relayed peers are probed at every known endpoint on a doubling schedule capped at probeMaxMs', () => {
  const { paths, peer, clock, log } = setup()
  const p = peer(2)
  p.addCandidate(A.host, A.port, false, true)
  p.addCandidate(A2.host, A2.port, true, false)
  paths.noteRelayed(p, clock.t)
  const probes: number[] = []
  for (let t = clock.t; t <= clock.t + 2_000; t += 10) {
    const before = log.length
    paths.tick(p, t)
    if (log.length > before) {
      probes.push(t - clock.t)
      assert.deepEqual(log.slice(before), ['key to 10.0.0.1:4000', 'key to 10.0.0.1:4001'])
    }
  }
  assert.deepEqual(probes, [100, 200, 400, 800, 1200, 1600, 2000]) // gaps 100, 200, 400, then 400 (the cap)
})

test('tick: a direct path whose PILS go unanswered for directStaleMs falls back to the relay', () => {
  const { paths, peer, clock, events } = setup()
  const p = peer(2)
  paths.noteDirectPils(p, A.host, A.port, clock.t)
  p.unansweredSinceMs = clock.t + 10
  paths.tick(p, clock.t + 10 + TIMING.directStaleMs - 1)
  assert.equal(p.path, 'direct')
  paths.tick(p, clock.t + 10 + TIMING.directStaleMs)
  assert.deepEqual(events.map(summary).slice(1), ['direct→relay direct-stale 10.0.0.1:4000'])
  assert.equal(p.unansweredSinceMs, 0)
})

test('a PunchCommand endpoint is offered to peers with a recent PunchRequest only; a path through it is "punched"', () => {
  const { paths, peer, clock, events } = setup()
  const fresh = peer(2)
  fresh.punchRequestedMs = clock.t - TIMING.punchMatchMs
  const stale = peer(3)
  stale.punchRequestedMs = clock.t - TIMING.punchMatchMs - 1
  const direct = peer(4)
  direct.punchRequestedMs = clock.t
  paths.noteDirectPils(direct, A2.host, A2.port, clock.t)
  paths.notePunchCommand(A.host, A.port, clock.t, [fresh, stale, direct])
  assert.equal(fresh.endpoint, fresh.findCandidate(A.host, A.port))
  assert.equal(fresh.findCandidate(A.host, A.port)!.fromPunch, true)
  assert.equal(stale.endpoint, null)
  assert.equal(direct.findCandidate(A.host, A.port), null)
  paths.noteDirectPils(fresh, A.host, A.port, clock.t)
  // A peer that never saw the command, confirmed through a remembered punched endpoint, is punched too.
  const other = peer(5)
  paths.noteDirectPils(other, A.host, A.port, clock.t)
  assert.deepEqual(events.slice(1).map((e) => `${e.nodeId} ${summary(e)}`), [
    '2 none→punched confirmed 10.0.0.1:4000',
    '5 none→punched confirmed 10.0.0.1:4000',
  ])
})

test('resolve during set-up: the endpoint becomes the one we try, our PILA goes there and counts as sent', async () => {
  const { paths, peer, directory, log } = setup()
  directory.setEndpoint(2, { host: '::ffff:10.0.0.1', port: 4000 })
  const p = peer(2)
  paths.startResolve(p)
  assert.equal(p.resolving, true)
  await settle()
  assert.equal(p.resolving, false)
  assert.equal(p.endpoint, p.findCandidate(A.host, A.port), 'the host is normalised (::ffff: dropped)')
  assert.equal(p.findCandidate(A.host, A.port)!.fromResolve, true)
  assert.deepEqual(log, ['key to 10.0.0.1:4000', 'key sent 2'])
})

test('resolve naming the endpoint we punched to relabels the path direct; no endpoint, or a forgotten peer, changes nothing', async () => {
  const { paths, peer, directory, events, current, log, clock } = setup()
  const p = peer(2)
  paths.notePunchCommand(A.host, A.port, clock.t, [])
  paths.noteDirectPils(p, A.host, A.port, clock.t)
  assert.equal(p.path, 'punched')
  directory.setEndpoint(2, A)
  paths.startResolve(p)
  await settle()
  assert.deepEqual(events.map(summary), ['none→punched confirmed 10.0.0.1:4000', 'punched→direct upgrade 10.0.0.1:4000'])
  const q = peer(3)
  paths.startResolve(q)
  await settle()
  assert.equal(q.resolveStarted, false, 'nothing known: a later retry resolves again')
  directory.setEndpoint(4, A2)
  const gone = peer(4)
  current.delete(gone)
  paths.startResolve(gone)
  await settle()
  assert.equal(gone.endpoint, null)
  assert.deepEqual(log, [])
})

test('refresh: a relayed peer is probed at once with the probe interval reset; a resolve in flight is repeated', async () => {
  const { paths, peer, directory, log, clock } = setup()
  const p = peer(2)
  p.addCandidate(A.host, A.port, false, true)
  paths.noteRelayed(p, clock.t) // starts a resolve
  p.probeIntervalMs = TIMING.probeMaxMs
  directory.resolves = 0
  paths.refresh(p, clock.t)
  assert.deepEqual(log, ['key to 10.0.0.1:4000'])
  assert.equal(p.nextProbeMs, clock.t + TIMING.probeIntervalMs)
  assert.equal(p.resolveAgain, true)
  await settle()
  await settle()
  assert.equal(directory.resolves, 1, 'the resolve in flight is followed by one more')
})

test('a throwing path-change handler does not stop the path from changing', () => {
  const { paths, peer, clock } = setup()
  paths.onChange(() => {
    throw new Error('boom')
  })
  const p = peer(2)
  paths.noteDirectPils(p, A.host, A.port, clock.t)
  assert.equal(p.path, 'direct')
})
