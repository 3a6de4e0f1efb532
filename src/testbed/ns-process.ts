/**
 * Waiting, and long-running programs inside a test bed namespace: the pieces
 * every harness on the test bed (netns-tests/helpers, overlay.ts, demo.ts,
 * the netns benchmark) shares.
 *
 * `NsProcess` wraps a child started with `Topology.spawn` (`ip netns exec`
 * execs, so the child's PID is the program itself): its output is kept (the
 * last 200-400 kB) for `waitFor` and failure messages, and it stops by PID
 * with a signal and a deadline.
 */
import type { ChildProcess } from 'node:child_process'

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms))
}

export interface WaitOptions {
  /** Give up after this long (default 15 s). */
  timeoutMs?: number
  /** Pause between calls (default 250 ms). */
  intervalMs?: number
}

/**
 * Calls `fn` until `ok(value)` holds or the deadline passes; returns the value,
 * or throws naming `what` and the last value (or error) when time runs out.
 * An error from `fn` counts as "not yet".
 */
export async function waitUntil<T>(what: string, fn: () => Promise<T>, ok: (v: T) => boolean, opts: WaitOptions = {}): Promise<T> {
  const timeoutMs = opts.timeoutMs ?? 15_000
  const deadline = Date.now() + timeoutMs
  let last: unknown
  for (;;) {
    try {
      const v = await fn()
      last = v
      if (ok(v)) return v
    } catch (err) {
      last = err
    }
    if (Date.now() > deadline) {
      const shown = last instanceof Error ? last.message : JSON.stringify(last)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; last: ${shown}`)
    }
    await sleep(opts.intervalMs ?? 250)
  }
}

/** A long-running program in a namespace; its output is kept for `waitFor` and failure messages. */
export class NsProcess {
  output = ''
  readonly exited: Promise<number>

  constructor(
    readonly name: string,
    readonly child: ChildProcess,
  ) {
    child.stdout?.setEncoding('utf8').on('data', (d: string) => this.append(d))
    child.stderr?.setEncoding('utf8').on('data', (d: string) => this.append(d))
    this.exited = new Promise((r) => child.once('exit', (code, signal) => r(code ?? (signal !== null ? 128 : -1))))
  }

  private append(d: string): void {
    this.output += d
    if (this.output.length > 400_000) this.output = this.output.slice(-200_000)
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null
  }

  /** `ip netns exec` execs the command, so this is the program itself. */
  get pid(): number {
    return this.child.pid!
  }

  /** Resolves with the first match of `pattern` in the output; throws when the program exits first or time runs out. */
  async waitFor(pattern: RegExp, timeoutMs = 20_000): Promise<RegExpMatchArray> {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      const m = this.output.match(pattern)
      if (m !== null) return m
      if (!this.running) throw new Error(`${this.name} exited (${this.child.exitCode ?? this.child.signalCode}) before ${pattern}:\n${this.tail()}`)
      if (Date.now() > deadline) throw new Error(`${this.name}: timed out waiting for ${pattern}:\n${this.tail()}`)
      await sleep(25)
    }
  }

  /** `signal` by PID, then the exit code (SIGKILL after `graceMs`). */
  async stop(signal: NodeJS.Signals = 'SIGTERM', graceMs = 8_000): Promise<number> {
    if (this.running) {
      this.signal(signal)
      const t = setTimeout(() => this.kill(), graceMs)
      const code = await this.exited
      clearTimeout(t)
      return code
    }
    return this.exited
  }

  signal(signal: NodeJS.Signals): void {
    if (!this.running || this.child.pid === undefined) return
    try {
      process.kill(this.child.pid, signal)
    } catch {
      // already gone
    }
  }

  kill(): void {
    this.signal('SIGKILL')
  }

  tail(lines = 40): string {
    return this.output.trimEnd().split('\n').slice(-lines).join('\n')
  }
}
