/**
 * What the long-running `pilot-tun up` process does with errors nobody caught.
 *
 *  - An unhandled promise rejection is a bug in one background task (a
 *    forgotten `.catch`): it is logged with its stack and counted, and the
 *    daemon keeps serving. (Node's default would end the process.)
 *  - An uncaught exception leaves the process in an unknown state: it is
 *    logged with its stack, the daemon is torn down best-effort (pilot0 and
 *    its routes removed, the control socket closed) within
 *    `FATAL_TEARDOWN_MS`, and the process exits with `FATAL_EXIT_CODE`, so
 *    systemd's `Restart=on-failure` starts it again. A second exception
 *    during the teardown exits at once.
 */
import type { Logger } from '../logger.js'

/** EX_SOFTWARE (sysexits.h): an internal error. Any non-zero status makes systemd restart the unit. */
export const FATAL_EXIT_CODE = 70
/** The teardown after an uncaught exception may take this long before the process exits anyway. */
export const FATAL_TEARDOWN_MS = 5_000

export interface ProcessPolicyOptions {
  logger: Logger
  /** Best-effort clean teardown before the exit (close the daemon, then the control socket). */
  teardown: () => Promise<void>
  teardownTimeoutMs?: number
  /** Default `process.exit`. */
  exit?: (code: number) => void
  /** The emitter of 'unhandledRejection' / 'uncaughtException'; default `process` (tests pass their own). */
  target?: NodeJS.EventEmitter
}

export interface ProcessPolicy {
  /** Unhandled rejections logged so far. */
  readonly rejections: number
  /** Removes the handlers (after a clean shutdown). */
  uninstall(): void
}

export function installProcessPolicy(options: ProcessPolicyOptions): ProcessPolicy {
  const { logger, teardown } = options
  const target = options.target ?? process
  const exit = options.exit ?? ((code: number) => process.exit(code))
  const timeoutMs = options.teardownTimeoutMs ?? FATAL_TEARDOWN_MS
  let rejections = 0
  let fatal = false

  const onRejection = (reason: unknown): void => {
    rejections++
    logger.error('unhandled promise rejection; still serving', { ...describe(reason), rejections })
  }

  const onException = (err: unknown): void => {
    if (fatal) {
      logger.error('uncaught exception during the teardown; exiting now', describe(err))
      exit(FATAL_EXIT_CODE)
      return
    }
    fatal = true
    logger.error('uncaught exception; tearing down and exiting', describe(err))
    let timer: NodeJS.Timeout | null = null
    const deadline = new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        logger.warn(`teardown still running after ${timeoutMs} ms; exiting anyway`)
        resolve()
      }, timeoutMs)
    })
    const done = teardown().catch((e: unknown) => logger.error('teardown after the uncaught exception failed', describe(e)))
    void Promise.race([done, deadline]).then(() => {
      if (timer !== null) clearTimeout(timer)
      exit(FATAL_EXIT_CODE)
    })
  }

  target.on('unhandledRejection', onRejection)
  target.on('uncaughtException', onException)
  return {
    get rejections() {
      return rejections
    },
    uninstall: () => {
      target.off('unhandledRejection', onRejection)
      target.off('uncaughtException', onException)
    },
  }
}

function describe(err: unknown): { error: string; stack?: string } {
  const stack = err instanceof Error ? err.stack : undefined
  return stack === undefined ? { error: String(err) } : { error: String(err), stack }
}
