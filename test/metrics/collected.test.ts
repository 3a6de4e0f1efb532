// The scrape-time pieces: a total over things that come and go, a value computed
// once per scrape, and metrics filled from `read()` into their own registry.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Registry, register as globalRegistry } from 'prom-client'
import { MonotonicTotal } from '../../src/metrics/monotonic.js'
import { PerScrape, registerCollected } from '../../src/metrics/collected.js'
import { parseExposition } from './prom-text.js'

interface Item {
  id: string
  n: number
}
const fold = (t: MonotonicTotal<string>, items: Item[]): number => t.fold(items, (i) => i.id, (i) => i.n)

test('MonotonicTotal: adds what live items gained, keeps what gone items had, never falls', () => {
  const t = new MonotonicTotal<string>()
  assert.equal(fold(t, []), 0)
  assert.equal(fold(t, [{ id: 'a', n: 10 }]), 10, 'a new item counts whole')
  assert.equal(fold(t, [{ id: 'a', n: 15 }, { id: 'b', n: 3 }]), 18, 'a gained 5, b is new')
  assert.equal(fold(t, [{ id: 'a', n: 15 }, { id: 'b', n: 3 }]), 18, 'folding the same values again adds nothing')
  assert.equal(fold(t, [{ id: 'b', n: 4 }]), 19, 'a went away: what it had stays in the total')
  assert.equal(fold(t, [{ id: 'a', n: 2 }, { id: 'b', n: 4 }]), 21, 'a came back from 0: its 2 count')
  assert.equal(fold(t, [{ id: 'b', n: 1 }]), 22, 'b was replaced (value fell): counted from 0 again')
  assert.equal(t.value, 22)
})

test('PerScrape: computed once in a synchronous pass, again after it', async () => {
  let calls = 0
  const v = new PerScrape(() => ++calls)
  assert.equal(v.get(), 1)
  assert.equal(v.get(), 1)
  assert.equal(calls, 1)
  await Promise.resolve()
  assert.equal(v.get(), 2, 'the next scrape computes it again')
})

test('registerCollected: counters and gauges read at scrape time, labelled or not, in their own registry', async () => {
  const before = globalRegistry.getMetricsAsArray().length
  const registry = new Registry()
  let frames = 5
  let drops: Record<string, number> = { short: 1, replay: 0 }
  let peers: Record<string, number> = { direct: 2, relay: 1 }
  registerCollected(registry, [
    { name: 't_frames_total', help: 'frames', type: 'counter', read: () => frames },
    { name: 't_drops_total', help: 'drops', type: 'counter', label: 'reason', read: () => drops },
    { name: 't_peers', help: 'peers', type: 'gauge', label: 'path', read: () => peers },
  ])
  let m = parseExposition(await registry.metrics())
  assert.equal(m.types.get('t_frames_total'), 'counter')
  assert.equal(m.types.get('t_peers'), 'gauge')
  assert.equal(m.value('t_frames_total'), 5)
  assert.equal(m.value('t_drops_total', { reason: 'short' }), 1)
  assert.equal(m.value('t_drops_total', { reason: 'replay' }), 0)
  assert.equal(m.value('t_peers', { path: 'direct' }), 2)

  // The next scrape shows the new figures, not old plus new.
  frames = 9
  drops = { short: 4, replay: 2 }
  peers = { direct: 1 }
  m = parseExposition(await registry.metrics())
  assert.equal(m.value('t_frames_total'), 9)
  assert.equal(m.value('t_drops_total', { reason: 'short' }), 4)
  assert.equal(m.value('t_peers', { path: 'direct' }), 1)
  assert.deepEqual(m.all('t_peers').map((s) => s.labels.path), ['direct'], 'a label value gone from the reading is gone from the scrape')
  assert.equal(globalRegistry.getMetricsAsArray().length, before, "prom-client's global registry is untouched")

  // Two registries with the same names do not collide (two daemons in one process).
  const other = new Registry()
  registerCollected(other, [{ name: 't_frames_total', help: 'frames', type: 'counter', read: () => 1 }])
  assert.equal(parseExposition(await other.metrics()).value('t_frames_total'), 1)
})

test('registerCollected: a labelled reading without a label name fails the scrape', async () => {
  const registry = new Registry()
  registerCollected(registry, [{ name: 't_bad_total', help: 'bad', type: 'counter', read: () => ({ a: 1 }) }])
  await assert.rejects(registry.metrics(), /needs a label name/)
})
