/**
 * Where the tests' own data lives. Tests run compiled from dist/test/, the
 * fixtures stay in test/fixtures/ of the checkout, so both are found from the
 * repository root (the nearest ancestor with our package.json).
 */
import { existsSync, readFileSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

function findRepoRoot(start: string): string {
  let dir = start
  for (;;) {
    const pkg = path.join(dir, 'package.json')
    if (existsSync(pkg) && (JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string }).name === 'pilot-tun') return dir
    const up = path.dirname(dir)
    if (up === dir) throw new Error(`no pilot-tun package.json above ${start}`)
    dir = up
  }
}

export const repoRoot = findRepoRoot(path.dirname(fileURLToPath(import.meta.url)))

/** A file of test/fixtures/captures/: real traffic of the Go reference daemon (see its README). */
export function captureFixture(file: string): string {
  return path.join(repoRoot, 'test', 'fixtures', 'captures', file)
}
