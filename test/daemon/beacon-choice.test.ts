// `--beacon a,b,…`: parsing and the choice by node ID (src/daemon/beacon-choice.ts).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { chooseBeacon, resolveBeaconList, MAX_BEACONS } from '../../src/daemon/beacon-choice.js'
import { PilotError } from '../../src/errors.js'

test('a list is split on commas and every entry checked; the node uses list[nodeId % length]', async () => {
  const list = await resolveBeaconList(' 127.0.0.1:9001, 127.0.0.2:9001 ,127.0.0.3:9001')
  assert.deepEqual(list.map((b) => b.text), ['127.0.0.1:9001', '127.0.0.2:9001', '127.0.0.3:9001'])
  assert.deepEqual(list[1]!.endpoint, { host: '127.0.0.2', port: 9001 })
  assert.deepEqual([3, 4, 5, 6].map((id) => chooseBeacon(list, id).index), [0, 1, 2, 0])
  // One entry: the single-beacon behaviour of old.
  const one = await resolveBeaconList('127.0.0.1:9001')
  assert.equal(chooseBeacon(one, 12345).chosen.text, '127.0.0.1:9001')
})

test('bad lists are configuration errors naming --beacon', async () => {
  for (const bad of ['', ' , ', '127.0.0.1:9001,nope', '127.0.0.1:9001,127.0.0.1:0', Array.from({ length: MAX_BEACONS + 1 }, () => '127.0.0.1:9001').join(',')]) {
    await assert.rejects(resolveBeaconList(bad), (err: unknown) => err instanceof PilotError && err.code === 'PT_CONFIG_INVALID', bad)
  }
})
