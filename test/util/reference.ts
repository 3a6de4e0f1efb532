/**
 * Where the Go reference implementation's binaries are, for the interop
 * tests: `$PILOT_REF`, else the goref/bin folder beside the clone (the CI
 * layout). They are AGPL programs: tests run them, nothing copies them. A
 * user's clone has neither, so the finder answers why not and the tests skip.
 *
 * The only file of src/, test/ and netns-tests/ allowed to name that folder
 * (test/package/layout.test.ts: READS_REFERENCE_BINARIES).
 */
import { accessSync, constants } from 'node:fs'
import path from 'node:path'
import { repoRoot } from './fixtures.js'

/** The reference programs the interop tests start. */
export const REFERENCE_PROGRAMS = ['daemon', 'pilotctl', 'rendezvous'] as const
/** The required programs, and the servers some tests start too (`beacon`, `registry`; a test checks those itself). */
export type ReferenceProgram = (typeof REFERENCE_PROGRAMS)[number] | 'beacon' | 'registry'

export interface ReferenceBinaries {
  readonly dir: string
  /** Absolute path of one program. */
  bin(program: ReferenceProgram): string
}

export type ReferenceLookup = { found: ReferenceBinaries; reason: null } | { found: null; reason: string }

/** Where to look: `env.PILOT_REF` when set (even set to something missing: then that is the reason), else beside the clone. */
export function referenceDir(env: NodeJS.ProcessEnv = process.env, root: string = repoRoot): { dir: string; from: string } {
  const given = env.PILOT_REF
  if (given !== undefined && given !== '') return { dir: path.resolve(given), from: '$PILOT_REF' }
  return { dir: path.resolve(root, '../shared/goref/bin'), from: 'beside the clone' }
}

/** The reference binaries, or null with a one-line reason (for `t.skip`). */
export function findReference(env: NodeJS.ProcessEnv = process.env, root: string = repoRoot): ReferenceLookup {
  const { dir, from } = referenceDir(env, root)
  for (const program of REFERENCE_PROGRAMS) {
    const file = path.join(dir, program)
    try {
      accessSync(file, constants.X_OK)
    } catch {
      return { found: null, reason: `the Go reference binaries are absent: no executable ${file} (${from}; set PILOT_REF to their folder)` }
    }
  }
  return { found: { dir, bin: (program) => path.join(dir, program) }, reason: null }
}
