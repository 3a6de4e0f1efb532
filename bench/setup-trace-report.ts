/**
 * Merges the traces of bench/setup-trace-hooks.ts (every `setup-trace-<pid>.json` in DIR) into
 * one timeline: `node dist/bench/setup-trace-report.js DIR [FROM_NODE]`. Each daemon is named by
 * its `--hostname`; node IDs in the events are named too. A section starts at each
 * `tcp SYN held` on FROM_NODE (default node-a) and times are ms since then; the last column is
 * the CPU time that daemon used since its previous event (a wall gap without CPU: it waited for
 * a CPU, or for I/O).
 */
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'

interface Trace {
  argv: string[]
  events: [number, string, number?][]
}

function main(dir: string, from: string): void {
  const traces: Array<{ name: string; t: Trace }> = []
  for (const f of readdirSync(dir).filter((x) => /^setup-trace-\d+\.json$/.test(x))) {
    const t = JSON.parse(readFileSync(join(dir, f), 'utf8')) as Trace
    const i = t.argv.indexOf('--hostname')
    traces.push({ name: i >= 0 ? t.argv[i + 1]! : f, t })
  }
  const ids = new Map<string, string>()
  for (const { name, t } of traces) {
    for (const [, e] of t.events) {
      const m = /^tunnel start self (\d+)$/.exec(e)
      if (m !== null) ids.set(m[1]!, name)
    }
  }
  const all: Array<[number, string, string, number]> = []
  for (const { name, t } of traces) {
    let cpu0 = NaN
    for (const [at, e, cpu] of t.events) {
      all.push([at, name, e.replace(/node (\d+)/g, (s, n: string) => `${s}=${ids.get(n) ?? '?'}`), (cpu ?? NaN) - cpu0])
      cpu0 = cpu ?? NaN
    }
  }
  all.sort((a, b) => a[0] - b[0])
  let t0 = -1
  for (const [at, name, e, cpu] of all) {
    if (name === from && e.startsWith('tcp SYN held')) {
      t0 = at
      process.stdout.write(`\n--- ${new Date(at).toISOString()}\n`)
    }
    if (t0 < 0 || at - t0 > 2000) continue
    const c = Number.isFinite(cpu) ? `  [cpu +${cpu.toFixed(2)}]` : ''
    process.stdout.write(`${(at - t0).toFixed(3).padStart(9)}  ${name.padEnd(7)} ${e}${c}\n`)
  }
}

main(process.argv[2] ?? '/tmp', process.argv[3] ?? 'node-a')
