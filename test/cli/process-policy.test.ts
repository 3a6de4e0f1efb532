// The process policy of `pilot-tun up`: a real `up --no-tun` against an
// in-process registry, with a preloaded fault injector (fault-preload.ts).
// An unhandled rejection is logged with its stack and the daemon keeps
// serving; an uncaught exception is logged, the daemon is torn down, and the
// process exits non-zero so systemd restarts it.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve, dirname } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { EventEmitter } from 'node:events'
import { startRegistry, type RunningRegistry } from '../../src/registry/start.js'
import { FATAL_EXIT_CODE, installProcessPolicy } from '../../src/cli/process-policy.js'
import { MemoryLogger } from '../../src/logger.js'

const here = dirname(fileURLToPath(import.meta.url))
const repoRoot = resolve(here, '..', '..', '..')
const bin = join(repoRoot, 'bin', 'pilot-tun.js')
const preload = pathToFileURL(join(here, 'fault-preload.js')).href

class UpProcess {
  readonly child: ChildProcess
  output = ''
  readonly exited: Promise<number>

  constructor(args: string[], fault: string) {
    this.child = spawn(process.execPath, ['--import', preload, bin, ...args], {
      env: { ...process.env, PILOT_TUN_TEST_FAULT: fault },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    this.child.stdout!.setEncoding('utf8').on('data', (d: string) => (this.output += d))
    this.child.stderr!.setEncoding('utf8').on('data', (d: string) => (this.output += d))
    this.exited = new Promise((r) => this.child.on('exit', (code, signal) => r(code ?? (signal ? 128 : -1))))
  }

  async waitFor(pattern: RegExp, timeoutMs = 15_000): Promise<void> {
    const deadline = Date.now() + timeoutMs
    while (!pattern.test(this.output)) {
      if (this.child.exitCode !== null) throw new Error(`process exited (${this.child.exitCode}) before ${pattern}:\n${this.output}`)
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${pattern}:\n${this.output}`)
      await new Promise((r) => setTimeout(r, 25))
    }
  }

  kill(): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL')
  }
}

async function withUp(fault: string, body: (up: UpProcess, sock: string) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'pilot-policy-'))
  let registry: RunningRegistry | null = null
  let up: UpProcess | null = null
  try {
    registry = await startRegistry({ host: '127.0.0.1', port: 0, storePath: join(dir, 'registry.db') })
    writeFileSync(join(dir, 'none.json'), '{}')
    const sock = join(dir, 'control.sock')
    up = new UpProcess(
      [
        'up', '--no-tun', '--registry', `127.0.0.1:${registry.address.port}`, '--listen', '127.0.0.1:0',
        '--state-dir', join(dir, 'state'), '--control-socket', sock, '--config', join(dir, 'none.json'), '--log-format', 'text',
      ],
      fault,
    )
    await up.waitFor(/pilot-tun up address=/)
    await body(up, sock)
  } finally {
    up?.kill()
    await registry?.close()
    rmSync(dir, { recursive: true, force: true })
  }
}

test('up: an unhandled rejection is logged with its stack and the daemon keeps serving', { timeout: 60_000 }, async () => {
  await withUp('rejection', async (up, sock) => {
    up.child.kill('SIGUSR2')
    await up.waitFor(/unhandled promise rejection.*injected rejection for the test/)
    assert.match(up.output, /at .*fault-preload\.js/, 'the stack is logged')
    await new Promise((r) => setTimeout(r, 200))
    assert.equal(up.child.exitCode, null, `still running:\n${up.output}`)
    const status = spawnSync(process.execPath, [bin, 'status', '--json', '--control-socket', sock], { encoding: 'utf8', timeout: 10_000 })
    assert.equal(status.status, 0, status.stderr)
    assert.match(JSON.parse(status.stdout).address, /^0:0000\./)
    up.child.kill('SIGTERM')
    assert.equal(await up.exited, 0, up.output)
  })
})

test('up: an uncaught exception is logged, the daemon is torn down, and the process exits non-zero', { timeout: 60_000 }, async () => {
  await withUp('exception', async (up, sock) => {
    up.child.kill('SIGUSR2')
    const code = await Promise.race([up.exited, new Promise<number>((r) => setTimeout(() => r(-999), 15_000))])
    assert.notEqual(code, -999, `did not exit:\n${up.output}`)
    assert.equal(code, FATAL_EXIT_CODE, up.output)
    assert.match(up.output, /uncaught exception.*injected exception for the test/)
    assert.match(up.output, /at .*fault-preload\.js/, 'the stack is logged')
    assert.match(up.output, /daemon stopped/, 'the daemon was closed before the exit')
    assert.equal(existsSync(sock), false, 'the control socket is gone')
  })
})

// ───────────────────────── the policy on its own (no process) ─────────────────────────

test('installProcessPolicy: rejections are logged with their stack and counted; uninstall removes both handlers', () => {
  const target = new EventEmitter()
  const logger = new MemoryLogger()
  const exits: number[] = []
  const policy = installProcessPolicy({ logger, teardown: async () => {}, exit: (c) => exits.push(c), target })
  target.emit('unhandledRejection', new Error('late failure'))
  target.emit('unhandledRejection', 'a string reason')
  assert.equal(policy.rejections, 2)
  assert.deepEqual(exits, [])
  assert.match(String(logger.lines[0]!.fields.stack), /late failure\n\s+at /)
  assert.equal(logger.lines[1]!.fields.error, 'a string reason')
  policy.uninstall()
  assert.equal(target.listenerCount('unhandledRejection') + target.listenerCount('uncaughtException'), 0)
})

test('installProcessPolicy: an exception runs the teardown, then exits; a hung teardown is cut off; a second exception exits at once', async () => {
  const target = new EventEmitter()
  const logger = new MemoryLogger()
  const exits: number[] = []
  let tornDown = false
  installProcessPolicy({ logger, teardown: async () => void (tornDown = true), exit: (c) => exits.push(c), target })
  target.emit('uncaughtException', new Error('boom'))
  await new Promise((r) => setImmediate(r))
  assert.equal(tornDown, true)
  assert.deepEqual(exits, [FATAL_EXIT_CODE])

  const hung = new EventEmitter()
  const hungExits: number[] = []
  installProcessPolicy({ logger, teardown: () => new Promise<void>(() => {}), teardownTimeoutMs: 30, exit: (c) => hungExits.push(c), target: hung })
  hung.emit('uncaughtException', new Error('first'))
  hung.emit('uncaughtException', new Error('second, during the teardown'))
  assert.deepEqual(hungExits, [FATAL_EXIT_CODE], 'the second exits at once')
  await new Promise((r) => setTimeout(r, 80))
  assert.deepEqual(hungExits, [FATAL_EXIT_CODE, FATAL_EXIT_CODE], 'the hung teardown is given up after its timeout')
  assert.ok(logger.lines.some((l) => /exiting anyway/.test(l.message)))
})
