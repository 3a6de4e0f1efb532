/**
 * The logging interface every component takes in its constructor. Only cli/
 * and daemon/ build a real one (winston); libraries and tests default to
 * `nullLogger`, so nothing logs unless the composition root asks it to.
 */
export type LogFields = Record<string, unknown>

export interface Logger {
  debug(message: string, fields?: LogFields): void
  info(message: string, fields?: LogFields): void
  warn(message: string, fields?: LogFields): void
  error(message: string, fields?: LogFields): void
  /** A logger that adds `fields` to every line (e.g. `{ component: 'registry' }`). */
  child(fields: LogFields): Logger
  /** True when `debug` lines are written; check it before formatting costly fields. */
  readonly debugEnabled: boolean
}

const noop = (): void => {}

export const nullLogger: Logger = Object.freeze({
  debug: noop,
  info: noop,
  warn: noop,
  error: noop,
  child: () => nullLogger,
  debugEnabled: false,
})

/** Collects lines in memory; tests assert on them. */
export class MemoryLogger implements Logger {
  readonly lines: Array<{ level: string; message: string; fields: LogFields }>
  private readonly base: LogFields
  readonly debugEnabled = true

  constructor(lines: Array<{ level: string; message: string; fields: LogFields }> = [], base: LogFields = {}) {
    this.lines = lines
    this.base = base
  }

  debug(message: string, fields: LogFields = {}): void { this.lines.push({ level: 'debug', message, fields: { ...this.base, ...fields } }) }
  info(message: string, fields: LogFields = {}): void { this.lines.push({ level: 'info', message, fields: { ...this.base, ...fields } }) }
  warn(message: string, fields: LogFields = {}): void { this.lines.push({ level: 'warn', message, fields: { ...this.base, ...fields } }) }
  error(message: string, fields: LogFields = {}): void { this.lines.push({ level: 'error', message, fields: { ...this.base, ...fields } }) }
  child(fields: LogFields): Logger { return new MemoryLogger(this.lines, { ...this.base, ...fields }) }
}
