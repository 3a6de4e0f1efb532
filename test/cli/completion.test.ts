// `pilot-tun completion`: a bash script that, sourced into bash, completes commands,
// subcommands and options by asking the CLI itself.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..')
const bin = join(repoRoot, 'bin', 'pilot-tun.js')

function run(...args: string[]): { code: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', timeout: 20_000 })
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr }
}

test('pilot-tun completion prints a bash completion script for pilot-tun', () => {
  const r = run('completion')
  assert.equal(r.code, 0, r.stderr)
  assert.match(r.stdout, /^###-begin-pilot-tun-completions-###$/m)
  assert.match(r.stdout, /^complete .*-F \S+ pilot-tun$/m, 'registers a completion function for pilot-tun')
  assert.match(r.stdout, /pilot-tun --get-yargs-completions/)
  assert.match(r.stdout, /pilot-tun completion >> ~\/\.bashrc/)
  const syntax = spawnSync('bash', ['-n'], { input: r.stdout, encoding: 'utf8' })
  assert.equal(syntax.status, 0, `bash -n: ${syntax.stderr}`)
  assert.match(run('--help').stdout, /pilot-tun completion/, '--help lists it')
})

test('the completion handler answers commands, subcommands, options and choices', () => {
  const top = run('--get-yargs-completions', 'pilot-tun', 'tr').stdout.split('\n')
  for (const c of ['trust', 'up', 'peers', 'rendezvous', 'completion']) assert.ok(top.includes(c), `${c} in ${top.join(' ')}`)
  assert.deepEqual(run('--get-yargs-completions', 'pilot-tun', 'trust', '').stdout.split('\n').filter(Boolean).sort(), ['approve', 'list', 'reject', 'request', 'revoke'])
  const upOptions = run('--get-yargs-completions', 'pilot-tun', 'up', '--').stdout.split('\n')
  for (const o of ['--registry', '--metrics-listen', '--no-tun'].slice(0, 2)) assert.ok(upOptions.includes(o), `${o} in up's options`)
  assert.ok(run('--get-yargs-completions', 'pilot-tun', 'beacon', '--').stdout.split('\n').includes('--metrics-listen'))
  assert.deepEqual(run('--get-yargs-completions', 'pilot-tun', 'up', '--kdf', '').stdout.split('\n').filter(Boolean), ['auto', 'hkdf', 'legacy'])
})

test('sourced into bash, the script completes `pilot-tun tr` to trust', () => {
  const dir = mkdtempSync(join(tmpdir(), 'pilot-completion-'))
  try {
    // The script runs `pilot-tun` from PATH, as an installed one would.
    const shim = join(dir, 'pilot-tun')
    writeFileSync(shim, `#!/bin/sh\nexec "${process.execPath}" "${bin}" "$@"\n`)
    chmodSync(shim, 0o755)
    const script = run('completion').stdout
    writeFileSync(join(dir, 'completion.bash'), script)
    const complete = (...words: string[]): string[] => {
      const r = spawnSync(
        'bash',
        ['-c', `source completion.bash; COMP_WORDS=(${words.map((w) => `'${w}'`).join(' ')}); COMP_CWORD=${words.length - 1}; _pilot-tun_yargs_completions; printf '%s\\n' "\${COMPREPLY[@]}"`],
        { cwd: dir, encoding: 'utf8', env: { ...process.env, PATH: `${dir}:${process.env.PATH}` }, timeout: 20_000 },
      )
      assert.equal(r.status, 0, r.stderr)
      return r.stdout.split('\n').filter(Boolean)
    }
    assert.deepEqual(complete('pilot-tun', 'tr'), ['trust'])
    assert.deepEqual(complete('pilot-tun', 'trust', 'ap'), ['approve'])
    assert.deepEqual(complete('pilot-tun', 'up', '--metrics-l'), ['--metrics-listen'])
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})
