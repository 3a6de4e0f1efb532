// `up` settings: flags over the config file over defaults, with typed errors.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { resolveUpSettings } from '../../src/cli/commands/up.js'
import { PilotError } from '../../src/errors.js'

test('--mss: default null (session default), flag and config key accepted, out-of-range refused', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'pilot-up-'))
  try {
    const config = join(dir, 'config.json')
    writeFileSync(config, JSON.stringify({ registry: '127.0.0.1:9000', mss: 4096 }))
    const none = join(dir, 'none.json')
    writeFileSync(none, JSON.stringify({ registry: '127.0.0.1:9000' }))
    assert.equal((await resolveUpSettings({ config: none })).mss, null)
    assert.equal((await resolveUpSettings({ config })).mss, 4096)
    assert.equal((await resolveUpSettings({ config, mss: 8192 })).mss, 8192, 'the flag wins')
    await assert.rejects(resolveUpSettings({ config: none, mss: 100 }), (e: unknown) => e instanceof PilotError && e.code === 'PT_CONFIG_INVALID')
    writeFileSync(config, JSON.stringify({ registry: '127.0.0.1:9000', mss: 70000 }))
    await assert.rejects(resolveUpSettings({ config }), (e: unknown) => e instanceof PilotError && e.code === 'PT_CONFIG_INVALID')
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test('--answer-pings: default false (private by default), flag and config key accepted, a non-boolean refused', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'pilot-up-'))
  try {
    const none = join(dir, 'none.json')
    writeFileSync(none, JSON.stringify({ registry: '127.0.0.1:9000' }))
    const config = join(dir, 'config.json')
    writeFileSync(config, JSON.stringify({ registry: '127.0.0.1:9000', 'answer-pings': true }))
    assert.equal((await resolveUpSettings({ config: none })).answerPings, false)
    assert.equal((await resolveUpSettings({ config: none, 'answer-pings': true })).answerPings, true)
    assert.equal((await resolveUpSettings({ config })).answerPings, true)
    assert.equal((await resolveUpSettings({ config, 'answer-pings': false })).answerPings, false, 'the flag wins')
    writeFileSync(config, JSON.stringify({ registry: '127.0.0.1:9000', 'answer-pings': 'yes' }))
    await assert.rejects(resolveUpSettings({ config }), (e: unknown) => e instanceof PilotError && e.code === 'PT_CONFIG_INVALID')
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test('--network-refresh: default 10 s, flag and config key accepted (seconds), out of 1..3600 refused', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'pilot-up-'))
  try {
    const config = join(dir, 'config.json')
    writeFileSync(config, JSON.stringify({ registry: '127.0.0.1:9000', 'network-refresh': 30 }))
    const none = join(dir, 'none.json')
    writeFileSync(none, JSON.stringify({ registry: '127.0.0.1:9000' }))
    assert.equal((await resolveUpSettings({ config: none })).networkRefreshMs, 10_000)
    assert.equal((await resolveUpSettings({ config })).networkRefreshMs, 30_000)
    assert.equal((await resolveUpSettings({ config, 'network-refresh': 2.5 })).networkRefreshMs, 2_500, 'the flag wins')
    const invalid = (e: unknown): boolean => e instanceof PilotError && e.code === 'PT_CONFIG_INVALID'
    await assert.rejects(resolveUpSettings({ config: none, 'network-refresh': 0 }), invalid)
    await assert.rejects(resolveUpSettings({ config: none, 'network-refresh': 7200 }), invalid)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})
