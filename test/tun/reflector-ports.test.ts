// NatPortPool: the reflector's free and quarantined NAT ports (slots).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { NatPortPool } from '../../src/tun/reflector-ports.js'
import { SeededRandom } from '../../src/random.js'

function takeAll(pool: NatPortPool): number[] {
  const out: number[] = []
  for (let s = pool.take(); s !== -1; s = pool.take()) out.push(s)
  return out
}

test('slots come out ascending, then -1 when none is free', () => {
  const pool = new NatPortPool(5, 1000)
  assert.equal(pool.free, 5)
  assert.deepEqual(takeAll(pool), [0, 1, 2, 3, 4])
  assert.equal(pool.free, 0)
  assert.equal(pool.take(), -1)
})

test('a released slot waits in quarantine until its time, then comes back after the ones free longer (FIFO)', () => {
  const pool = new NatPortPool(4, 100)
  const [a, b, c] = [pool.take(), pool.take(), pool.take()]
  pool.release(b, 10) // until 110
  pool.release(a, 20) // until 120
  assert.equal(pool.quarantined, 2)
  pool.drain(109)
  assert.equal(pool.quarantined, 2, 'nothing due yet')
  assert.equal(pool.take(), 3, 'the never-used slot first')
  assert.equal(pool.take(), -1, 'quarantined slots are not handed out')
  pool.drain(110)
  assert.deepEqual([pool.free, pool.quarantined], [1, 1])
  pool.drain(1000)
  assert.deepEqual(takeAll(pool), [b, a], 'in release order')
  pool.release(c, 0)
  pool.drain(99)
  assert.equal(pool.take(), -1)
  pool.drain(100)
  assert.equal(pool.take(), c)
})

test('quarantineMs 0: a released slot is free at once, behind the others', () => {
  const pool = new NatPortPool(3, 0)
  const first = pool.take()
  pool.release(first, 5)
  assert.equal(pool.quarantined, 0)
  assert.deepEqual(takeAll(pool), [1, 2, first])
})

test('a random source shuffles the order: a permutation, the same for the same seed', () => {
  const a = takeAll(new NatPortPool(200, 0, new SeededRandom(3)))
  const b = takeAll(new NatPortPool(200, 0, new SeededRandom(3)))
  const c = takeAll(new NatPortPool(200, 0, new SeededRandom(4)))
  assert.deepEqual(a, b)
  assert.notDeepEqual(a, c)
  assert.deepEqual([...a].sort((x, y) => x - y), Array.from({ length: 200 }, (_, i) => i))
  assert.notDeepEqual(a, Array.from({ length: 200 }, (_, i) => i), 'not ascending')
})

test('the rings wrap around: many take/release rounds keep every slot exactly once', () => {
  const rng = new SeededRandom(11)
  const pool = new NatPortPool(16, 7)
  const held = new Set<number>()
  let now = 0
  for (let i = 0; i < 5000; i++) {
    now += rng.int(4)
    pool.drain(now)
    if (rng.int(2) === 0) {
      const s = pool.take()
      if (s !== -1) {
        assert.ok(!held.has(s), `slot ${s} handed out twice`)
        held.add(s)
      }
    } else if (held.size > 0) {
      const s = [...held][rng.int(held.size)]!
      held.delete(s)
      pool.release(s, now)
    }
    assert.equal(held.size + pool.free + pool.quarantined, 16)
  }
  const seen = new Uint8Array(16)
  for (const s of held) seen[s] = 1
  pool.markSlots(seen, 2, 3)
  assert.ok(seen.every((m) => m !== 0), 'every slot is held, free or quarantined')
})

test('markSlots reports a slot held twice', () => {
  const pool = new NatPortPool(4, 50)
  pool.release(pool.take(), 0)
  const seen = new Uint8Array(4)
  pool.markSlots(seen, 2, 3)
  assert.deepEqual([...seen], [3, 2, 2, 2])
  const clash = new Uint8Array(4)
  clash[2] = 1 // pretend slot 2 is live too
  assert.throws(() => pool.markSlots(clash, 2, 3), /slot 2 both free and elsewhere/)
  const clash2 = new Uint8Array(4)
  clash2[0] = 1
  assert.throws(() => pool.markSlots(clash2, 2, 3), /slot 0 both quarantined and elsewhere/)
})
