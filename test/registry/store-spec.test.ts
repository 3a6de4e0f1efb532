/** `--store` specs (issue 14): which backend, typed errors for the rest, passwords never printed. */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { openRegistryStore } from '../../src/registry/open-store.js'
import { redactPgUrl } from '../../src/registry/pg-query.js'
import { describeStoreSpec, parseStoreSpec } from '../../src/registry/store-spec.js'
import { runCli } from '../cli/run-cli.js'

test('parseStoreSpec: sqlite:PATH, bare paths and :memory: are SQLite; postgres(ql):// is PostgreSQL', () => {
  assert.deepEqual(parseStoreSpec('sqlite:/var/lib/r.db'), { kind: 'sqlite', path: '/var/lib/r.db' })
  assert.deepEqual(parseStoreSpec('/var/lib/r.db'), { kind: 'sqlite', path: '/var/lib/r.db' })
  assert.deepEqual(parseStoreSpec('rel/r.db'), { kind: 'sqlite', path: 'rel/r.db' })
  assert.deepEqual(parseStoreSpec(':memory:'), { kind: 'sqlite', path: ':memory:' })
  assert.deepEqual(parseStoreSpec('postgres://u@db/reg'), { kind: 'postgres', url: 'postgres://u@db/reg' })
  assert.deepEqual(parseStoreSpec('postgresql://u@db/reg'), { kind: 'postgres', url: 'postgresql://u@db/reg' })
})

test('parseStoreSpec: unknown schemes and empty specs are PT_CONFIG_INVALID with a hint', () => {
  for (const bad of ['mysql://u@db/x', 'sqlite:', '', '   ']) {
    assert.throws(() => parseStoreSpec(bad), (err: Error & { code?: string; hint?: string }) => {
      assert.equal(err.code, 'PT_CONFIG_INVALID')
      assert.match(err.hint ?? '', /sqlite:PATH/)
      return true
    })
  }
})

test('a PostgreSQL URL is shown without its password', () => {
  assert.equal(redactPgUrl('postgres://reg:s3cret@db.example:5432/reg'), 'postgres://reg:***@db.example:5432/reg')
  assert.equal(redactPgUrl('postgresql://reg@db/reg?password=s3cret&sslmode=require'), 'postgresql://reg@db/reg?password=***&sslmode=require')
  assert.equal(redactPgUrl('postgres://reg@db/reg'), 'postgres://reg@db/reg')
  assert.equal(describeStoreSpec(parseStoreSpec('postgres://a:b@h/d')), 'postgres://a:***@h/d')
})

test('openRegistryStore: an unreachable PostgreSQL is PT_REGISTRY_STORE with a hint, and the password stays out of it', async () => {
  const url = 'postgresql://pt:topsecret@localhost/none?host=/nonexistent-pilot-socket-dir'
  await assert.rejects(openRegistryStore(url), (err: Error & { code?: string; hint?: string }) => {
    assert.equal(err.code, 'PT_REGISTRY_STORE')
    assert.match(err.hint ?? '', /PostgreSQL running/)
    assert.doesNotMatch(`${err.message} ${err.hint}`, /topsecret/)
    return true
  })
  await assert.rejects(openRegistryStore('mysql://x/y'), { code: 'PT_CONFIG_INVALID' })
})

test('pilot-tun registry --store refuses an unknown store before listening, and never prints a password', async () => {
  const bad = await runCli(['registry', '--listen', '127.0.0.1:0', '--store', 'mysql://u:pw@h/x'])
  assert.equal(bad.code, 1)
  assert.match(bad.stderr, /unknown store mysql:\/\/.*PT_CONFIG_INVALID/)
  const pg = await runCli(['rendezvous', '--registry-listen', '127.0.0.1:0', '--beacon-listen', '127.0.0.1:0', '--store', 'postgres://u:hunter2@h/x'])
  assert.equal(pg.code, 1)
  assert.doesNotMatch(pg.stderr, /hunter2/)
  assert.match(pg.stderr, /postgres:\/\/u:\*\*\*@h\/x/)
})
