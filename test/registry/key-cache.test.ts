// PublicKeyCache: one import per key text, bounded, junk is null.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Identity, verifyChallenge } from '../../src/crypto/identity.js'
import { PublicKeyCache } from '../../src/registry/key-cache.js'

test('PublicKeyCache: the same key object for the same text, oldest out past the bound, junk and wrong sizes are null', () => {
  const cache = new PublicKeyCache(2)
  const ids = [Identity.generate(), Identity.generate(), Identity.generate()]
  const text = ids.map((i) => Buffer.from(i.publicKey).toString('base64'))
  const k0 = cache.get(text[0]!)
  assert.ok(k0 !== null)
  assert.equal(cache.get(text[0]!), k0, 'imported once')
  assert.equal(verifyChallenge(k0!, 'heartbeat:1', ids[0]!.signChallenge('heartbeat:1')), true)
  assert.equal(verifyChallenge(k0!, 'heartbeat:1', ids[1]!.signChallenge('heartbeat:1')), false)
  cache.get(text[1]!)
  cache.get(text[2]!)
  assert.equal(cache.size, 2)
  assert.notEqual(cache.get(text[0]!), k0, 'the oldest went out and is imported again')
  assert.equal(cache.get('not base64!'), null)
  assert.equal(cache.get(Buffer.alloc(31).toString('base64')), null)
  assert.equal(cache.get(''), null)
})
