/**
 * The published package holds what a user runs and nothing else: the CLI,
 * the compiled sources, the addon's sources and the systemd units; no test
 * equipment (src/testbed, the in-memory twins under src/<layer>/testing),
 * no source maps pointing at .ts files that are not shipped. Every import of
 * a shipped module resolves inside the package or to a declared dependency.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { builtinModules } from 'node:module'
import path from 'node:path'
import { repoRoot } from '../util/fixtures.js'

interface PackFile {
  path: string
}

function packedFiles(): string[] {
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm'
  const r = spawnSync(npm, ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: repoRoot, encoding: 'utf8', timeout: 60_000 })
  assert.equal(r.status, 0, r.stderr)
  const out = JSON.parse(r.stdout) as Array<{ files: PackFile[] }>
  return out[0]!.files.map((f) => f.path).sort()
}

const files = packedFiles()
const shipped = new Set(files)

test('npm pack: only the CLI, compiled sources, addon sources, units and docs', () => {
  const allowed = [/^README\.md$/, /^package\.json$/, /^LICENSE$/, /^binding\.gyp$/, /^bin\/pilot-tun\.js$/, /^native\/[^/]+\.[ch]$/, /^systemd\/[^/]+$/, /^dist\/src\/.+\.js$/]
  for (const f of files) assert.ok(allowed.some((re) => re.test(f)), `unexpected file in the package: ${f}`)
  for (const f of ['bin/pilot-tun.js', 'dist/src/cli/main.js', 'binding.gyp', 'native/tun.c', 'native/datapath.c', 'native/napi-util.h', 'systemd/pilot-tun.service']) {
    assert.ok(shipped.has(f), `${f} is missing from the package`)
  }
})

test('npm pack: no test equipment (testbed, in-memory twins, source maps)', () => {
  const leaked = files.filter((f) => f.startsWith('dist/src/testbed/') || /^dist\/src\/[^/]+\/testing\//.test(f) || f.endsWith('.map'))
  assert.deepEqual(leaked, [])
})

test('npm pack: every import of a shipped module resolves inside the package or to a dependency', () => {
  const pkg = JSON.parse(readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as { dependencies: Record<string, string> }
  const deps = new Set(Object.keys(pkg.dependencies))
  const builtins = new Set(builtinModules)
  const specifier = /(?:^|[\s;])(?:import|export)\s[^'"]*?from\s*['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)|^import\s+['"]([^'"]+)['"]/gm
  let checked = 0
  for (const f of files) {
    if (!f.endsWith('.js')) continue
    const text = readFileSync(path.join(repoRoot, f), 'utf8')
    for (const m of text.matchAll(specifier)) {
      const spec = (m[1] ?? m[2] ?? m[3])!
      checked++
      if (spec.startsWith('.')) {
        const target = path.posix.normalize(path.posix.join(path.posix.dirname(f), spec))
        assert.ok(shipped.has(target), `${f} imports ${spec}, which is not in the package`)
      } else if (spec.startsWith('node:') || builtins.has(spec)) {
        continue
      } else {
        const name = spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]!
        assert.ok(deps.has(name), `${f} imports ${spec}, which is not a dependency in package.json`)
      }
    }
  }
  assert.ok(checked > 100, `only ${checked} imports found: the pattern no longer matches the compiled output`)
})
