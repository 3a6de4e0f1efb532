/** Printing for CLI commands: one JSON document with --json, readable lines otherwise. */

export interface OutputOptions {
  json: boolean
}

/** Prints `value` as JSON, or `human(value)` as text. */
export function printResult<T>(opts: OutputOptions, value: T, human: (v: T) => string): void {
  process.stdout.write(opts.json ? `${JSON.stringify(value, null, 2)}\n` : `${human(value)}\n`)
}

/** Aligned `key: value` lines. */
export function formatFields(fields: Array<[string, string | number | boolean]>): string {
  const width = Math.max(...fields.map(([k]) => k.length))
  return fields.map(([k, v]) => `${`${k}:`.padEnd(width + 2)}${v}`).join('\n')
}

/**
 * Thrown by a command that has printed its own result but must still exit
 * non-zero (e.g. `ping` with no replies). main() exits with `exitCode` and
 * prints nothing more.
 */
export class CliExit extends Error {
  readonly exitCode: number
  constructor(exitCode: number) {
    super(`exit ${exitCode}`)
    this.exitCode = exitCode
  }
}

/** Columns aligned with two spaces between them; the last column is not padded. */
export function formatTable(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)))
  const line = (cells: string[]): string =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd()
  return [line(headers), ...rows.map(line)].join('\n')
}

/** `512 B`, `1.2 KiB`, `3.4 MiB`, `1.0 GiB`. */
export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`
  const units = ['KiB', 'MiB', 'GiB', 'TiB']
  let v = n / 1024
  let i = 0
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024
    i++
  }
  return `${v.toFixed(1)} ${units[i]}`
}

/** Milliseconds with one decimal: `0.4 ms`, `12.0 ms`. */
export function formatMs(ms: number): string {
  return `${ms.toFixed(1)} ms`
}

/** A duration in seconds as `45s`, `3m 12s`, `2h 5m`, `4d 3h`. */
export function formatSeconds(total: number): string {
  const s = Math.max(0, Math.floor(total))
  if (s < 60) return `${s}s`
  if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s`
  if (s < 86400) return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`
  return `${Math.floor(s / 86400)}d ${Math.floor((s % 86400) / 3600)}h`
}
