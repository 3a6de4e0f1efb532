// Error codes are stable API (--json prints them), so every code the source
// can raise must be explained in the README's table.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync, readdirSync } from 'node:fs'
import { join, resolve, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..')

function sources(dir: string): string[] {
  const out: string[] = []
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name)
    if (e.isDirectory()) out.push(...sources(p))
    else if (e.name.endsWith('.ts')) out.push(p)
  }
  return out
}

test('every PT_* error code in src/ is documented in README.md', () => {
  const readme = readFileSync(join(repoRoot, 'README.md'), 'utf8')
  const codes = new Set<string>()
  for (const file of sources(join(repoRoot, 'src'))) {
    for (const m of readFileSync(file, 'utf8').matchAll(/['"`](PT_[A-Z0-9]+(?:_[A-Z0-9]+)+)['"`]/g)) codes.add(m[1]!)
  }
  assert.ok(codes.size > 30, `found only ${codes.size} codes: the scan is broken`)
  // A family row like `PT_PROTOCOL_*` documents every code with that prefix.
  const families = [...readme.matchAll(/`(PT_[A-Z0-9_]+?)_\*`/g)].map((m) => `${m[1]}_`)
  const missing = [...codes].filter((c) => !readme.includes(`\`${c}\``) && !families.some((f) => c.startsWith(f))).sort()
  assert.deepEqual(missing, [], `document these codes in README.md: ${missing.join(', ')}`)
})
