import { test } from 'node:test'
import assert from 'node:assert/strict'
import { SeededRandom } from '../../src/random.js'
import { ReplayWindow, ReplayWindows, REPLAY_WINDOW_SIZE } from '../../src/crypto/replay-window.js'

/** check, then (for an authenticated frame) commit: how the tunnel uses it. */
function receive(w: ReplayWindow, counter: number, authenticated = true): boolean {
  if (!w.check(counter)) return false
  if (!authenticated) return false
  return w.commit(counter)
}

test('in order: every counter once', () => {
  const w = new ReplayWindow()
  for (let c = 1; c <= 2000; c++) assert.equal(receive(w, c), true, `counter ${c}`)
  assert.equal(w.highest, 2000)
})

test('reordered within the window, then exact replays refused', () => {
  const w = new ReplayWindow()
  const random = new SeededRandom(3)
  const order = Array.from({ length: 200 }, (_, i) => i + 1)
  for (let i = order.length - 1; i > 0; i--) {
    const j = random.int(i + 1)
    ;[order[i], order[j]] = [order[j]!, order[i]!]
  }
  for (const c of order) assert.equal(receive(w, c), true, `first ${c}`)
  for (const c of order) assert.equal(receive(w, c), false, `replay ${c}`)
})

test('too old: 255 behind is accepted, 256 behind is not', () => {
  const w = new ReplayWindow()
  assert.equal(receive(w, 1000), true)
  assert.equal(w.check(1000 - 256), false)
  assert.equal(w.check(1000 - 300), false)
  assert.equal(receive(w, 1000 - 255), true)
  assert.equal(receive(w, 1000 - 255), false)
})

test('bitmap wrap: counters crossing multiples of 256 many times, with stragglers', () => {
  const w = new ReplayWindow()
  for (let c = 1; c <= 256 * 40; c += 2) assert.equal(receive(w, c), true)
  // The even counters arrive late; those within 255 of the max are still fresh, once.
  const max = w.highest
  for (let c = max - 255 + ((max - 255) % 2 === 0 ? 0 : 1); c < max; c += 2) {
    assert.equal(receive(w, c), true, `late ${c}`)
    assert.equal(receive(w, c), false, `late replay ${c}`)
  }
  for (let c = max - 1; c > max - 256; c--) assert.equal(w.check(c), false, `now all seen: ${c}`)
  assert.equal(w.check(max - 256), false)
})

test('a jump of more than 256 forgets the old bits; a jump within the window keeps the recent ones', () => {
  const w = new ReplayWindow()
  for (let c = 1; c <= 100; c++) receive(w, c)
  assert.equal(receive(w, 100 + 300), true)
  // 100 + 300 - 255 = 145 is the oldest fresh counter; all older ones are too old.
  assert.equal(w.check(144), false)
  for (let c = 145; c < 400; c++) assert.equal(w.check(c), true, `cleared ${c}`)

  const v = new ReplayWindow()
  for (let c = 1; c <= 100; c++) receive(v, c)
  assert.equal(receive(v, 300), true) // jump of 200: 45..100 still in the window and seen
  for (let c = 45; c <= 100; c++) assert.equal(v.check(c), false, `kept ${c}`)
  for (let c = 101; c < 300; c++) assert.equal(v.check(c), true, `cleared ${c}`)
  assert.equal(v.check(300 - 256), false, '44: too old')
})

test('a forged frame with a huge counter (fails AEAD, never committed) does not poison the window', () => {
  const w = new ReplayWindow()
  for (let c = 1; c <= 10; c++) receive(w, c)
  assert.equal(receive(w, 2 ** 50, false), false, 'forged: passes check, fails auth')
  assert.equal(w.highest, 10)
  for (let c = 11; c <= 20; c++) assert.equal(receive(w, c), true, `real traffic ${c} still flows`)
})

test('Go observations (docs/wire.md §22 "Replay"): 0 twice, 5, then 0 refused; 400, 100 refused, 200 accepted', () => {
  const w = new ReplayWindow()
  assert.deepEqual([0, 0, 5, 0].map((c) => receive(w, c)), [true, true, true, false])
  const v = new ReplayWindow()
  assert.deepEqual([400, 100, 200].map((c) => receive(v, c)), [true, false, true])
  const u = new ReplayWindow()
  assert.deepEqual([7, 7].map((c) => receive(u, c)), [true, false], 'exact replay (counter=7 max=7)')
})

test('a 0 seen before a jump leaves no stale bit (Go would wrongly drop 256 here)', () => {
  const w = new ReplayWindow()
  receive(w, 0)
  receive(w, 300)
  assert.equal(receive(w, 256), true)
})

test('check is pure; commit re-checks; bad counters are never fresh', () => {
  const w = new ReplayWindow()
  receive(w, 5)
  for (let i = 0; i < 3; i++) assert.equal(w.check(6), true)
  assert.equal(w.highest, 5)
  assert.equal(w.commit(6), true)
  assert.equal(w.commit(6), false, 'a second commit of the same counter is refused')
  for (const bad of [-1, 1.5, NaN, Infinity, 2 ** 53]) {
    assert.equal(w.check(bad), false, String(bad))
    assert.equal(w.commit(bad), false, String(bad))
  }
  w.reset()
  assert.equal(w.highest, 0)
  assert.equal(w.check(5), true)
})

/** The obvious model: a set of everything committed and the max. */
class NaiveWindow {
  private readonly seen = new Set<number>()
  private max = 0
  check(c: number): boolean {
    if (this.max === 0 || c > this.max) return true
    return this.max - c < REPLAY_WINDOW_SIZE && !this.seen.has(c)
  }
  commit(c: number): void {
    this.seen.add(c)
    if (c > this.max) this.max = c
  }
}

test('brute force against a naive Set + max oracle over random sequences', () => {
  const random = new SeededRandom(0x5e7)
  for (let run = 0; run < 40; run++) {
    const fast = new ReplayWindow()
    const naive = new NaiveWindow()
    let next = run % 4 === 0 ? 0 : 1
    const base = run % 5 === 0 ? 2 ** 45 + random.int(1000) : 0 // exercise counters far above 2^32
    for (let step = 0; step < 3000; step++) {
      const roll = random.int(100)
      let c: number
      if (roll < 50) c = next++
      else if (roll < 75) c = Math.max(0, next - 1 - random.int(300)) // late or replayed
      else if (roll < 85) c = next + random.int(300) // ahead, sometimes past the window
      else if (roll < 90) c = Math.max(0, next - 256 + random.int(3) - 1) // the edge
      else if (roll < 93) c = next += 256 + random.int(1000) // a big jump
      else c = next + random.int(2 ** 20) // a forged huge counter (usually unauthenticated)
      const counter = base + c
      const authenticated = roll >= 93 ? random.int(4) === 0 : random.int(20) !== 0
      const expected = naive.check(counter)
      assert.equal(fast.check(counter), expected, `run ${run} step ${step}: check(${counter})`)
      if (expected && authenticated) {
        naive.commit(counter)
        assert.equal(fast.commit(counter), true, `run ${run} step ${step}: commit(${counter})`)
      }
    }
  }
})

test('ReplayWindows: a new prefix gets a fresh window only once a frame authenticates', () => {
  const windows = new ReplayWindows(2, 8)
  assert.equal(windows.check(0xaaaa, 1), true)
  assert.equal(windows.activeCount, 0, 'check alone creates nothing')
  assert.equal(windows.commit(0xaaaa, 1), true)
  assert.equal(windows.commit(0xaaaa, 2), true)
  assert.equal(windows.check(0xaaaa, 1), false)
  // Go re-derived: counter restarts at 1 under a new prefix. Old frames stay refused.
  assert.equal(windows.commit(0xbbbb, 1), true)
  assert.equal(windows.check(0xaaaa, 2), false)
  assert.equal(windows.check(0xbbbb, 1), false)
  assert.equal(windows.check(0xaaaa, 3), true, 'late in-flight frames of the old prefix still land')
})

test('ReplayWindows: oldest prefix retired beyond the bound, and its frames refused afterwards', () => {
  const windows = new ReplayWindows(2, 8)
  windows.commit(1, 1)
  windows.commit(2, 1)
  windows.commit(3, 1) // retires prefix 1
  assert.equal(windows.activeCount, 2)
  assert.equal(windows.check(1, 1), false, 'replay under a retired prefix')
  assert.equal(windows.check(1, 500), false, 'anything under a retired prefix')
  assert.equal(windows.commit(1, 500), false)
  assert.equal(windows.check(2, 2), true)
  // Retired memory is bounded too: after 8 more retirements prefix 1 is forgotten.
  for (let p = 4; p < 4 + 8; p++) windows.commit(p, 1)
  assert.equal(windows.check(1, 1), true)
})

test('ReplayWindows: forged frames under new prefixes never create windows or retire real ones', () => {
  const windows = new ReplayWindows(2, 8)
  windows.commit(0x1111, 1)
  for (let p = 0; p < 100; p++) assert.equal(windows.check(0x9000 + p, 2 ** 40), true) // fails AEAD: no commit
  assert.equal(windows.activeCount, 1)
  assert.equal(windows.commit(0x1111, 2), true)
})
