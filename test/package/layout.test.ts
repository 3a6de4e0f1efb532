/**
 * The source tree stays a set of rooms a newcomer can enter: no file in src/
 * grows past 700 lines, no module imports another that imports it back (the
 * layers' dependencies point down, never in a circle), and nothing in the
 * clone points at documents outside it (a user's clone has only its own
 * docs/). Reads the .ts sources of the checkout, not dist/, so a type-only
 * import counts as an import too.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readdirSync, readFileSync, existsSync } from 'node:fs'
import path from 'node:path'
import { repoRoot } from '../util/fixtures.js'

const MAX_LINES = 700

/** The only files that may look beside the clone: they find the Go reference's binaries, and skip without them. */
const READS_REFERENCE_BINARIES: string[] = ['test/util/reference.ts']

function tsFiles(dir: string): string[] {
  const out: string[] = []
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name)
    if (entry.isDirectory()) out.push(...tsFiles(p))
    else if (entry.name.endsWith('.ts')) out.push(p)
  }
  return out.sort()
}

const srcDir = path.join(repoRoot, 'src')
const sources = tsFiles(srcDir)
const rel = (p: string): string => path.relative(repoRoot, p)

/** Relative imports and re-exports of one file, resolved to .ts paths. */
export function importsOf(file: string, text: string): string[] {
  const specifier = /(?:^|[\s;])(?:import|export)\s[^'";]*?from\s*['"](\.[^'"]+)['"]|import\(\s*['"](\.[^'"]+)['"]\s*\)/gm
  const out = new Set<string>()
  for (const m of text.matchAll(specifier)) {
    const spec = (m[1] ?? m[2])!
    let target = path.normalize(path.join(path.dirname(file), spec)).replace(/\.js$/, '.ts')
    if (!existsSync(target) && existsSync(path.join(target.replace(/\.ts$/, ''), 'index.ts'))) {
      target = path.join(target.replace(/\.ts$/, ''), 'index.ts')
    }
    out.add(target)
  }
  return [...out]
}

/** Strongly connected components of more than one file (Tarjan). */
export function cycles(graph: Map<string, string[]>): string[][] {
  let next = 0
  const index = new Map<string, number>()
  const low = new Map<string, number>()
  const stack: string[] = []
  const onStack = new Set<string>()
  const found: string[][] = []
  const visit = (v: string): void => {
    index.set(v, next)
    low.set(v, next)
    next++
    stack.push(v)
    onStack.add(v)
    for (const w of graph.get(v) ?? []) {
      if (!graph.has(w)) continue
      if (!index.has(w)) {
        visit(w)
        low.set(v, Math.min(low.get(v)!, low.get(w)!))
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v)!, index.get(w)!))
      }
    }
    if (low.get(v) === index.get(v)) {
      const component: string[] = []
      let w: string
      do {
        w = stack.pop()!
        onStack.delete(w)
        component.push(w)
      } while (w !== v)
      if (component.length > 1) found.push(component.sort())
    }
  }
  for (const v of graph.keys()) if (!index.has(v)) visit(v)
  return found
}

test(`layout: no file in src/ is over ${MAX_LINES} lines`, () => {
  assert.ok(sources.length > 50, `expected the sources under ${srcDir}`)
  const long = sources
    .map((f) => ({ file: rel(f), lines: readFileSync(f, 'utf8').split('\n').length - 1 }))
    .filter((f) => f.lines > MAX_LINES)
  assert.deepEqual(long, [])
})

test('layout: no import cycles among the modules of src/', () => {
  const graph = new Map<string, string[]>()
  for (const f of sources) graph.set(f, importsOf(f, readFileSync(f, 'utf8')))
  const found = cycles(graph).map((c) => c.map(rel))
  assert.deepEqual(found, [])
})

test('layout: the cycle finder sees a cycle when there is one', () => {
  const g = new Map<string, string[]>([
    ['a', ['b']],
    ['b', ['c']],
    ['c', ['a']],
    ['d', ['a']],
  ])
  assert.deepEqual(cycles(g), [['a', 'b', 'c']])
  assert.deepEqual(cycles(new Map([['a', ['b']], ['b', []]])), [])
  const file = path.join(srcDir, 'x', 'y.ts')
  const text = "import type { A } from './a.js'\nexport { B } from '../b/b.js'\nconst c = await import('./c.js')\nimport x from 'node:fs'\n"
  assert.deepEqual(importsOf(file, text), [path.join(srcDir, 'x', 'a.ts'), path.join(srcDir, 'b', 'b.ts'), path.join(srcDir, 'x', 'c.ts')])
})

test('layout: sources, tests and README cite the docs in the clone, not a folder beside it', () => {
  // Built from parts so this file does not match its own search.
  const outside = ['..', 'shared', ''].join('/')
  const allowed = new Set(READS_REFERENCE_BINARIES.map((f) => path.join(repoRoot, f)))
  const files = [...sources, ...tsFiles(path.join(repoRoot, 'test')), ...tsFiles(path.join(repoRoot, 'netns-tests')), path.join(repoRoot, 'README.md')]
  const citing = files.filter((f) => !allowed.has(f) && readFileSync(f, 'utf8').includes(outside)).map(rel)
  assert.deepEqual(citing, [])
  for (const doc of ['docs/wire.md', 'docs/design.md']) assert.ok(existsSync(path.join(repoRoot, doc)), `${doc} is missing`)
})

