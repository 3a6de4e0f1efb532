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
