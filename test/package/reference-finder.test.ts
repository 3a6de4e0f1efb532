/**
 * The finder of the Go reference binaries (test/util/reference.ts): $PILOT_REF
 * wins, a set-but-missing one is a reason to skip naming it, and without
 * $PILOT_REF it looks beside the clone.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { findReference, referenceDir, REFERENCE_PROGRAMS } from '../util/reference.js'

test('reference finder: a PILOT_REF that does not exist is absent, and the reason names it', () => {
  const r = findReference({ PILOT_REF: '/nonexistent/goref' }, '/somewhere/clone')
  assert.equal(r.found, null)
  assert.match(r.reason!, /\/nonexistent\/goref\/daemon/)
  assert.match(r.reason!, /\$PILOT_REF/)
  assert.ok(!r.reason!.includes('\n'))
})

test('reference finder: without PILOT_REF it looks in goref/bin beside the clone', () => {
  const d = referenceDir({}, '/somewhere/clone')
  assert.equal(d.dir, path.join('/somewhere', 'shared', 'goref', 'bin'))
  const r = findReference({ PILOT_REF: '' }, '/somewhere/clone')
  assert.equal(r.found, null)
  assert.match(r.reason!, /beside the clone/)
})

test('reference finder: a folder with every program executable is found; one missing or not executable is not', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'ref-finder-'))
  try {
    for (const p of REFERENCE_PROGRAMS) writeFileSync(path.join(dir, p), '#!/bin/sh\n', { mode: 0o755 })
    const r = findReference({ PILOT_REF: dir })
    assert.equal(r.reason, null)
    assert.equal(r.found!.bin('pilotctl'), path.join(dir, 'pilotctl'))
    chmodSync(path.join(dir, 'rendezvous'), 0o644)
    const missing = findReference({ PILOT_REF: dir })
    assert.equal(missing.found, null)
    assert.match(missing.reason!, /rendezvous/)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})
