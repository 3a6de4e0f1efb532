/**
 * Runs the test bed's commands: no shell, a timeout, stdin from a string, and
 * errors that quote the command line and its stderr.
 */
import { spawn } from 'node:child_process'
import { TestbedError, TestbedErrorCode } from './errors.js'

export interface RunOptions {
  /** Written to the command's stdin, which is then closed. */
  input?: string
  /** Kill the command (SIGKILL) after this long. Default 15 s. */
  timeoutMs?: number
  /** Resolve with the result instead of throwing when the exit code is not 0. */
  allowFailure?: boolean
}

export interface RunResult {
  /** Exit code, or null when a signal ended the command. */
  code: number | null
  stdout: string
  stderr: string
}

const INSTALL_HINTS: Record<string, string> = {
  ip: 'install iproute2 (apt-get install iproute2)',
  nft: 'install nftables (apt-get install nftables)',
  conntrack: 'install conntrack (apt-get install conntrack)',
  sysctl: 'install procps (apt-get install procps)',
}

/** Runs argv[0] with argv[1..]; rejects with PT_TESTBED_COMMAND_FAILED (or _TIMEOUT, _TOOL_MISSING). */
export function run(argv: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const [cmd, ...args] = argv
  if (cmd === undefined) return Promise.reject(new TestbedError(TestbedErrorCode.BAD_VALUE, 'run: empty command line'))
  const timeoutMs = opts.timeoutMs ?? 15_000
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] })
    const out: Buffer[] = []
    const err: Buffer[] = []
    let timedOut = false
    const timer = setTimeout(() => {
      timedOut = true
      child.kill('SIGKILL')
    }, timeoutMs)
    child.stdout.on('data', (b: Buffer) => out.push(b))
    child.stderr.on('data', (b: Buffer) => err.push(b))
    child.stdin.on('error', () => {}) // EPIPE when the command exits without reading stdin
    child.on('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(timer)
      if (e.code === 'ENOENT') {
        const tool = cmd.split('/').pop() ?? cmd
        reject(
          new TestbedError(TestbedErrorCode.TOOL_MISSING, `${cmd}: not found`, {
            hint: INSTALL_HINTS[tool] ?? `install ${tool}`,
            cause: e,
          }),
        )
      } else {
        reject(new TestbedError(TestbedErrorCode.COMMAND_FAILED, `\`${argv.join(' ')}\` could not start: ${e.message}`, { cause: e }))
      }
    })
    child.on('close', (code) => {
      clearTimeout(timer)
      const result: RunResult = { code, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') }
      if (timedOut) {
        reject(new TestbedError(TestbedErrorCode.TIMEOUT, `\`${argv.join(' ')}\` did not finish within ${timeoutMs} ms`))
      } else if (code !== 0 && opts.allowFailure !== true) {
        reject(commandFailed(argv, result))
      } else {
        resolve(result)
      }
    })
    child.stdin.end(opts.input ?? '')
  })
}

export function commandFailed(argv: readonly string[], r: RunResult): TestbedError {
  const why = r.stderr.trim() || r.stdout.trim() || `exit code ${r.code}`
  const hint = /Operation not permitted|Permission denied/i.test(r.stderr) ? 'run as root (the test bed needs CAP_NET_ADMIN and CAP_SYS_ADMIN)' : undefined
  return new TestbedError(TestbedErrorCode.COMMAND_FAILED, `\`${argv.join(' ')}\` failed: ${why}`, hint === undefined ? {} : { hint })
}
