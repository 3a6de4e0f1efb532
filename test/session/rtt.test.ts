/** RttEstimator: RFC 6298 smoothing, the RTO floor that follows the path, backoff. */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { RttEstimator } from '../../src/session/rtt.js'

const cfg = { initialRto: 1000, minRto: 50, maxRto: 10_000, granularity: 10, delayedAck: 40 }

test('before any sample: SRTT −1 and the initial RTO', () => {
  const r = new RttEstimator(cfg)
  assert.equal(r.srtt, -1)
  assert.equal(r.rto, 1000)
  r.addSample(-1)
  assert.equal(r.srtt, -1, 'negative samples are ignored')
})

test('first sample: SRTT = R, RTTVAR = R/2; RTO = max(SRTT + 4·RTTVAR, SRTT + delayedAck + G)', () => {
  const r = new RttEstimator(cfg)
  r.addSample(100)
  assert.equal(r.srtt, 100)
  assert.equal(r.rto, 300) // 100 + 4·50 beats 100 + 40 + 10
  const lan = new RttEstimator(cfg)
  lan.addSample(4)
  assert.equal(lan.rto, 54, 'on a LAN the delayed-ACK term sets the floor: 4 + 40 + 10')
  const tiny = new RttEstimator({ ...cfg, delayedAck: 0 })
  tiny.addSample(1)
  assert.equal(tiny.rto, 50, 'never below minRto')
})

test('later samples: SRTT ← 7/8 SRTT + 1/8 R, RTTVAR ← 3/4 RTTVAR + 1/4 |SRTT − R|', () => {
  const r = new RttEstimator(cfg)
  r.addSample(100) // rttvar 50
  r.addSample(200) // rttvar 0.75·50 + 0.25·100 = 62.5, srtt 112.5
  assert.equal(r.srtt, 112.5)
  assert.equal(r.rto, 112.5 + 4 * 62.5)
  const slow = new RttEstimator(cfg)
  slow.addSample(9000)
  assert.equal(slow.rto, 10_000, 'capped at maxRto')
})

test('backOff doubles the RTO up to maxRto; progress ends the backoff and recomputes it', () => {
  const r = new RttEstimator(cfg)
  r.addSample(100)
  r.backOff()
  r.backOff()
  assert.deepEqual([r.backoff, r.rto], [2, 1200])
  for (let i = 0; i < 10; i++) r.backOff()
  assert.equal(r.rto, 10_000)
  r.onProgress(-1)
  assert.deepEqual([r.backoff, r.rto], [0, 300], 'no sample: the RTO from the current estimate')
  r.backOff()
  r.onProgress(100)
  assert.equal(r.backoff, 0)
  assert.equal(r.srtt, 100)
})

test('a timeout series is measured from its first timeout', () => {
  const r = new RttEstimator(cfg)
  assert.equal(r.timeoutSeriesAge(5000), 0)
  r.backOff()
  assert.equal(r.timeoutSeriesAge(7000), 2000)
  r.backOff()
  assert.equal(r.timeoutSeriesAge(9000), 4000)
  r.onProgress(-1)
  assert.equal(r.timeoutSeriesAge(20_000), 0, 'progress starts a new series')
  r.clearBackoff()
  assert.equal(r.backoff, 0)
})
