// `up` settings of the data services: --no-dataexchange, --no-eventstream, the inbox quota;
// flags over the config file over defaults, with typed errors.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import yargs from 'yargs'
import { resolveUpSettings, upCommand } from '../../src/cli/commands/up.js'
import { PilotError } from '../../src/errors.js'

const invalid = (e: unknown): boolean => e instanceof PilotError && e.code === 'PT_CONFIG_INVALID'

test('data services: on by default; off by flag or config key; the flag wins; a non-boolean is refused', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'pilot-up-svc-'))
  try {
    const none = join(dir, 'none.json')
    writeFileSync(none, JSON.stringify({ registry: '127.0.0.1:9000' }))
    const d = await resolveUpSettings({ config: none })
    assert.deepEqual([d.dataExchange, d.eventStream, d.inboxMaxBytes, d.inboxMaxFiles], [true, true, 256 * 1024 * 1024, 10_000])
    const off = await resolveUpSettings({ config: none, dataexchange: false, eventstream: false })
    assert.deepEqual([off.dataExchange, off.eventStream], [false, false])
    const config = join(dir, 'config.json')
    writeFileSync(config, JSON.stringify({ registry: '127.0.0.1:9000', dataexchange: false, eventstream: false, 'inbox-max-mb': 16, 'inbox-max-files': 50 }))
    const file = await resolveUpSettings({ config })
    assert.deepEqual([file.dataExchange, file.eventStream, file.inboxMaxBytes, file.inboxMaxFiles], [false, false, 16 * 1024 * 1024, 50])
    assert.equal((await resolveUpSettings({ config, eventstream: true })).eventStream, true, 'the flag wins')
    await assert.rejects(resolveUpSettings({ config: none, 'inbox-max-files': 0 }), invalid)
    await assert.rejects(resolveUpSettings({ config: none, 'inbox-max-mb': -1 }), invalid)
    writeFileSync(config, JSON.stringify({ registry: '127.0.0.1:9000', dataexchange: 'no' }))
    await assert.rejects(resolveUpSettings({ config }), invalid)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test('--no-dataexchange and --no-eventstream parse as the two switches set to false', async () => {
  const builder = upCommand.builder as (y: ReturnType<typeof yargs>) => ReturnType<typeof yargs>
  const args = await builder(yargs(['--no-dataexchange', '--no-eventstream', '--inbox-max-mb', '64'])).parseAsync()
  assert.equal(args.dataexchange, false)
  assert.equal(args.eventstream, false)
  assert.equal(args['inbox-max-mb'], 64)
})
