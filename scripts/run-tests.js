#!/usr/bin/env node
// Runs every compiled *.test.js under dist/test (and dist/netns-tests when it
// exists) with node's test runner. Helper modules next to the tests are not
// loaded as test files. Extra arguments are passed to `node --test`.
import { readdirSync, existsSync } from 'node:fs'
import { join, resolve, dirname } from 'node:path'
import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..')

function findTests(dir) {
  if (!existsSync(dir)) return []
  const out = []
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name)
    if (entry.isDirectory()) out.push(...findTests(p))
    else if (entry.name.endsWith('.test.js')) out.push(p)
  }
  return out.sort()
}

const files = [...findTests(join(root, 'dist', 'test')), ...findTests(join(root, 'dist', 'netns-tests'))]
if (files.length === 0) {
  console.error('run-tests: no compiled tests found under dist/; run `npm run build` first')
  process.exit(1)
}
const r = spawnSync(process.execPath, ['--test', ...process.argv.slice(2), ...files], { stdio: 'inherit', cwd: root })
process.exit(r.status ?? 1)
