/** The CLI run as a user runs it, for the CLI tests. */
import { spawn } from 'node:child_process'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..')
export const CLI_BIN = join(repoRoot, 'bin', 'pilot-tun.js')

export interface RunResult {
  code: number
  stdout: string
  stderr: string
}

/**
 * Runs `pilot-tun ARGS` without blocking this process's event loop (a fake
 * daemon may be serving here). Killed after `timeoutMs` (default 20 s); a
 * killed run reports code 128.
 */
export function runCli(args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<RunResult> {
  return new Promise((done) => {
    const child = spawn(process.execPath, [CLI_BIN, ...args], {
      env: { ...process.env, ...opts.env },
      stdio: ['ignore', 'pipe', 'pipe'],
      ...(opts.cwd === undefined ? {} : { cwd: opts.cwd }),
    })
    let stdout = ''
    let stderr = ''
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d))
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d))
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 20_000)
    child.on('close', (code, signal) => {
      clearTimeout(timer)
      done({ code: code ?? (signal ? 128 : -1), stdout, stderr })
    })
  })
}
