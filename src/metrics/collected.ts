/**
 * Metrics read at scrape time. Each metric here is a name, a help line and a
 * `read()` that returns the figure the server already keeps (a stats() field,
 * a table size); prom-client calls it from the metric's `collect()` while it
 * renders `/metrics`. Nothing is counted twice and nothing runs on the packet
 * path: the servers keep their own counters, the scrape only copies them.
 *
 * Every metric goes into the `Registry` it is given: prom-client's global
 * default registry is never touched (two daemons in one process, as the tests
 * run them, keep their figures apart).
 */
import { Counter, Gauge, type Registry } from 'prom-client'

/** One unlabelled value, or one value per label value. */
export type Reading = number | Readonly<Record<string, number>>

export interface CollectedMetric {
  readonly name: string
  readonly help: string
  /** A counter only ever grows (the reading must too); a gauge goes up and down. */
  readonly type: 'counter' | 'gauge'
  /** The label a `Record` reading is keyed by (absent: the reading is a number). */
  readonly label?: string
  readonly read: () => Reading
}

/** Registers every metric of `metrics` in `registry`, each filled from its `read()` on every scrape. */
export function registerCollected(registry: Registry, metrics: readonly CollectedMetric[]): void {
  for (const m of metrics) registerOne(registry, m)
}

function registerOne(registry: Registry, m: CollectedMetric): void {
  const config = { name: m.name, help: m.help, labelNames: m.label === undefined ? [] : [m.label], registers: [registry] }
  if (m.type === 'counter') {
    new Counter({
      ...config,
      collect() {
        refill(this, m, (labels, value) => this.inc(labels, value))
      },
    })
  } else {
    new Gauge({
      ...config,
      collect() {
        refill(this, m, (labels, value) => this.set(labels, value))
      },
    })
  }
}

/** A counter read as one number. */
export function counter(name: string, help: string, read: () => number): CollectedMetric {
  return { name, help, type: 'counter', read }
}

/** A counter read as one number per value of `label`. */
export function counterBy(name: string, help: string, label: string, read: () => Readonly<Record<string, number>>): CollectedMetric {
  return { name, help, type: 'counter', label, read }
}

/** A gauge read as one number. */
export function gauge(name: string, help: string, read: () => number): CollectedMetric {
  return { name, help, type: 'gauge', read }
}

/** A gauge read as one number per value of `label`. */
export function gaugeBy(name: string, help: string, label: string, read: () => Readonly<Record<string, number>>): CollectedMetric {
  return { name, help, type: 'gauge', label, read }
}

/**
 * Empties `metric` and puts `m`'s reading into it. Each scrape starts from nothing: prom-client
 * counters only add, so a counter gets the server's own total added once.
 */
function refill(metric: { reset(): void }, m: CollectedMetric, put: (labels: Record<string, string>, value: number) => void): void {
  const reading = m.read()
  metric.reset()
  if (typeof reading === 'number') {
    put({}, reading)
    return
  }
  const label = m.label
  if (label === undefined) throw new Error(`metric ${m.name}: a labelled reading needs a label name`)
  for (const [key, value] of Object.entries(reading)) put({ [label]: key }, value)
}

/**
 * A value computed at most once per scrape, however many metrics read it
 * (`Tunnel.peers()` feeds three). prom-client starts every metric's
 * `collect()` in one synchronous pass, so the value is dropped on the next
 * microtask; if a later prom-client awaited between metrics, the value would
 * merely be computed again, never be stale.
 */
export class PerScrape<T> {
  private value: T | undefined = undefined
  private held = false
  private readonly compute: () => T
  private readonly dropBound = (): void => {
    this.held = false
    this.value = undefined
  }

  constructor(compute: () => T) {
    this.compute = compute
  }

  get(): T {
    if (!this.held) {
      this.value = this.compute()
      this.held = true
      queueMicrotask(this.dropBound)
    }
    return this.value as T
  }
}
