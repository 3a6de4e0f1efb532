/**
 * Top functions by self time in a V8 .cpuprofile (what `node --cpu-prof` writes).
 *
 *   node dist/bench/cpuprofile-top.js bench/profiles/daemon-a.cpuprofile [count]
 *
 * Self time of a profile node = the sum of the sample intervals (timeDeltas)
 * whose sample landed on it; nodes are grouped by function name + script +
 * line, so one function reached from several call paths counts once.
 */
import { readFileSync } from 'node:fs'
import { basename } from 'node:path'
import { fileURLToPath } from 'node:url'

interface CpuProfileNode {
  id: number
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number }
  hitCount?: number
  children?: number[]
}

interface CpuProfile {
  nodes: CpuProfileNode[]
  startTime: number
  endTime: number
  samples?: number[]
  timeDeltas?: number[]
}

export interface SelfTimeRow {
  function: string
  where: string
  self_ms: number
  percent: number
}

export function topSelfTime(profile: CpuProfile, count = 20): { total_ms: number; busy_ms: number; rows: SelfTimeRow[] } {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]))
  const selfUs = new Map<number, number>()
  const samples = profile.samples ?? []
  const deltas = profile.timeDeltas ?? []
  for (let i = 0; i < samples.length; i++) {
    // timeDeltas[i] is the time before sample i; the time *of* sample i is the next delta.
    const dt = deltas[i + 1] ?? 0
    selfUs.set(samples[i]!, (selfUs.get(samples[i]!) ?? 0) + Math.max(0, dt))
  }
  const groups = new Map<string, { fn: string; where: string; us: number }>()
  let total = 0
  let idle = 0
  for (const [id, us] of selfUs) {
    const n = byId.get(id)
    if (n === undefined) continue
    total += us
    const cf = n.callFrame
    if (cf.functionName === '(idle)') idle += us
    const fn = cf.functionName === '' ? '(anonymous)' : cf.functionName
    const where = cf.url === '' ? '' : `${shortUrl(cf.url)}:${cf.lineNumber + 1}`
    const key = `${fn}@${where}`
    const g = groups.get(key) ?? { fn, where, us: 0 }
    g.us += us
    groups.set(key, g)
  }
  const rows = [...groups.values()]
    .sort((a, b) => b.us - a.us)
    .slice(0, count)
    .map((g) => ({ function: g.fn, where: g.where, self_ms: Math.round(g.us / 100) / 10, percent: Math.round((g.us / total) * 1000) / 10 }))
  return { total_ms: Math.round(total / 1000), busy_ms: Math.round((total - idle) / 1000), rows }
}

function shortUrl(url: string): string {
  const u = url.replace(/^file:\/\//, '')
  const i = u.indexOf('/dist/')
  if (i >= 0) return u.slice(i + 1)
  if (u.startsWith('node:')) return u
  return basename(u)
}

export function formatTop(name: string, top: { total_ms: number; busy_ms: number; rows: SelfTimeRow[] }): string {
  const lines = [`${name}: ${top.total_ms} ms sampled, ${top.busy_ms} ms not idle (% of all samples)`, '  self ms |      % | function (script:line)']
  for (const r of top.rows) lines.push(`${r.self_ms.toFixed(1).padStart(9)} | ${r.percent.toFixed(1).padStart(5)}% | ${r.function}${r.where === '' ? '' : ` (${r.where})`}`)
  return lines.join('\n')
}

if (import.meta.url === `file://${process.argv[1]}` || fileURLToPath(import.meta.url) === process.argv[1]) {
  const [file, n] = process.argv.slice(2)
  if (file === undefined) {
    process.stderr.write('usage: node dist/bench/cpuprofile-top.js FILE.cpuprofile [count]\n')
    process.exit(2)
  }
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile
  process.stdout.write(formatTop(basename(file), topSelfTime(profile, Number(n ?? 20))) + '\n')
}
