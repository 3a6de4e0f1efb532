// The daemon's local trust-decision log (issue 13): appended lines chain and
// verify; an altered, removed or re-signed line is named; the file is
// bounded (rotation keeps the chain verifiable); a restart continues it.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Identity } from '../../src/crypto/identity.js'
import { nullLogger } from '../../src/logger.js'
import { TRUST_LOG_ROTATED, TrustLog, trustLogHash, verifyTrustLog } from '../../src/daemon/trust-log.js'

function withDir(fn: (dir: string) => Promise<void>): () => Promise<void> {
  return async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pt-trustlog-'))
    try {
      await fn(dir)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  }
}

test('append, verify ok, and a restart continues the chain', withDir(async (dir) => {
  const identity = Identity.generate()
  const log = new TrustLog({ stateDir: dir, identity, nodeId: () => 42, logger: nullLogger })
  await log.append('request', 7, 'please')
  await log.append('mutual', 7, 'our request was accepted')
  await log.append('revoke', 7, '')
  const again = new TrustLog({ stateDir: dir, identity, nodeId: () => 42, logger: nullLogger })
  await again.append('approve', 9)
  const entries = await again.entries()
  assert.deepEqual(entries.map((e) => [e.seq, e.action, e.peer]), [[1, 'request', 7], [2, 'mutual', 7], [3, 'revoke', 7], [4, 'approve', 9]])
  assert.equal(entries[3]!.prev, entries[2]!.hash, 'the restarted log links to the last line')
  const v = await again.verify()
  assert.deepEqual(v, { ok: true, entries: 4, head: entries[3]!.hash })
  assert.equal((statSync(log.path).mode & 0o777), 0o600)
}))

test('an altered line is named as the first broken entry; so is a removed one and a foreign signature', withDir(async (dir) => {
  const identity = Identity.generate()
  const log = new TrustLog({ stateDir: dir, identity, nodeId: () => 42, logger: nullLogger })
  for (const peer of [1, 2, 3, 4]) await log.append('approve', peer)
  const original = readFileSync(log.path, 'utf8')
  const lines = original.trimEnd().split('\n')

  writeFileSync(log.path, original.replace('"peer":3', '"peer":33'))
  const altered = await log.verify()
  assert.equal(altered.ok, false)
  assert.equal(!altered.ok && altered.first_broken, 3)
  assert.match(!altered.ok ? altered.reason : '', /altered/)

  writeFileSync(log.path, [lines[0], lines[1], lines[3]].join('\n') + '\n')
  const removed = await log.verify()
  assert.equal(!removed.ok && removed.first_broken, 3, 'entry 4 follows 2: broken at 3')

  // Re-hashed by someone without our key: the hash is right, the signature is not ours.
  const other = Identity.generate()
  const e = JSON.parse(lines[1]!)
  e.detail = 'forged'
  e.key = Buffer.from(other.publicKey).toString('base64')
  const { hash: _h, signature: _s, ...body } = e
  e.hash = trustLogHash(body)
  e.signature = other.signChallenge(e.hash)
  const forged = [lines[0], JSON.stringify(e)]
  assert.equal(verifyTrustLog(forged.map((l) => JSON.parse(l!))).ok, true, 'self-consistent: only the key check catches it')
  const v = verifyTrustLog(forged.map((l) => JSON.parse(l!)), Buffer.from(identity.publicKey).toString('base64'))
  assert.equal(!v.ok && v.first_broken, 2)

  writeFileSync(log.path, `${lines[0]}\nnot json\n`)
  const junk = await log.verify()
  assert.equal(!junk.ok && junk.first_broken, 2)
}))

test('bounded: past maxBytes the file rotates, and the kept lines still verify', withDir(async (dir) => {
  const identity = Identity.generate()
  const log = new TrustLog({ stateDir: dir, identity, nodeId: () => 42, logger: nullLogger, maxBytes: 2_000 })
  for (let i = 1; i <= 40; i++) await log.append('refused', i, 'x'.repeat(100))
  assert.ok(existsSync(join(dir, TRUST_LOG_ROTATED)))
  assert.ok(statSync(log.path).size <= 2_000)
  const entries = await log.entries()
  assert.ok(entries.length < 40, 'old lines are gone')
  assert.equal(entries.at(-1)!.seq, 40)
  const v = await log.verify()
  assert.equal(v.ok, true, JSON.stringify(v))
}))
