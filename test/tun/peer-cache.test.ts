// PeerAddressCache: PilotAddress objects for node addresses on the packet path.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { PeerAddressCache } from '../../src/tun/peer-cache.js'
import { mapPilotToIpv6, parseOverlayPrefix } from '../../src/protocol/ipv6-mapping.js'

const PREFIX = parseOverlayPrefix('2001:db8:7::/48')

test('the node at an offset, as one frozen object per address', () => {
  const cache = new PeerAddressCache()
  const packet = new Uint8Array(40)
  mapPilotToIpv6({ network: 9, node: 0xf2910004 }, PREFIX, packet, 24)
  const a = cache.at(packet, 24)
  assert.deepEqual({ ...a }, { network: 9, node: 0xf2910004 })
  assert.ok(Object.isFrozen(a))
  assert.equal(cache.at(packet, 24), a, 'same object the second time')
  const other = mapPilotToIpv6({ network: 10, node: 0xf2910004 }, PREFIX)
  assert.notEqual(cache.at(other, 0), a)
  assert.deepEqual({ ...cache.at(other, 0) }, { network: 10, node: 0xf2910004 })
  assert.equal(cache.size, 2)
})

test('bounded: cleared when full, and still answers right', () => {
  const cache = new PeerAddressCache(3)
  const addr = (node: number) => mapPilotToIpv6({ network: 0, node }, PREFIX)
  const first = cache.at(addr(1), 0)
  cache.at(addr(2), 0)
  cache.at(addr(3), 0)
  assert.equal(cache.size, 3)
  assert.equal(cache.at(addr(4), 0).node, 4)
  assert.equal(cache.size, 1, 'cleared, then the new one')
  const again = cache.at(addr(1), 0)
  assert.notEqual(again, first)
  assert.deepEqual(again, first)
})
