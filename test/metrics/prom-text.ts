/** A small reader of Prometheus text exposition (format 0.0.4) for the metrics tests, a scrape and a port probe. */
import { connect } from 'node:net'

export interface Sample {
  readonly name: string
  readonly labels: Readonly<Record<string, string>>
  readonly value: number
}

export interface Exposition {
  readonly samples: readonly Sample[]
  /** `# TYPE` of each metric family. */
  readonly types: ReadonlyMap<string, string>
  /** The one sample named `name` whose labels include `labels`; throws when there is none or more than one. */
  value(name: string, labels?: Record<string, string>): number
  /** Every sample named `name`. */
  all(name: string): Sample[]
}

const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\d+)?$/
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g

export function parseExposition(text: string): Exposition {
  const samples: Sample[] = []
  const types = new Map<string, string>()
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue
    if (line.startsWith('# TYPE ')) {
      const [name, type] = line.slice('# TYPE '.length).split(' ')
      types.set(name!, type!)
      continue
    }
    if (line.startsWith('#')) continue
    const m = SAMPLE.exec(line)
    if (m === null) throw new Error(`not a sample line: ${line}`)
    const labels: Record<string, string> = {}
    for (const l of (m[2] ?? '').matchAll(LABEL)) labels[l[1]!] = l[2]!.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c))
    const value = m[3] === '+Inf' ? Infinity : m[3] === '-Inf' ? -Infinity : Number(m[3])
    if (Number.isNaN(value) && m[3] !== 'NaN') throw new Error(`bad value in: ${line}`)
    samples.push({ name: m[1]!, labels, value })
  }
  const all = (name: string): Sample[] => samples.filter((s) => s.name === name)
  return {
    samples,
    types,
    all,
    value(name, labels = {}) {
      const found = all(name).filter((s) => Object.entries(labels).every(([k, v]) => s.labels[k] === v))
      if (found.length !== 1) throw new Error(`${found.length} samples of ${name}${JSON.stringify(labels)}`)
      return found[0]!.value
    },
  }
}

/** GETs `url`, expects 200, and parses the body. */
export async function scrape(url: string): Promise<Exposition> {
  const r = await fetch(url)
  if (r.status !== 200) throw new Error(`GET ${url}: HTTP ${r.status}`)
  return parseExposition(await r.text())
}

/** Resolves true when a TCP connect to 127.0.0.1:`port` succeeds, false when it is refused. */
export function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1')
    s.once('connect', () => {
      s.destroy()
      resolve(true)
    })
    s.once('error', () => resolve(false))
  })
}
