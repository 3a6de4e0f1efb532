/**
 * The load side of `npm run bench:registry`: a pool of TCP connections to one
 * or more registry front ends, each carrying the signed requests of many
 * simulated nodes, plus latency bookkeeping and the two ways of offering load
 * (paced at a fixed rate, or closed-loop as fast as the registry answers).
 *
 * Why a pool works: the registry authenticates every request by its own
 * signature (request-handler.ts `authenticate`); a connection is not bound to
 * a node. `ConnectionState.provenNode` (address-claims.ts) only records the
 * latest signer, and matters only when a *known* key re-registers from a new
 * address; fresh registrations, heartbeats and resolves from many nodes on one
 * connection are all accepted. The server answers requests of one connection
 * in order, so answers are matched to requests first in, first out; `depth`
 * is how many requests one connection may have outstanding (1 = lock step,
 * what a daemon does; more = pipelining, which the server allows).
 *
 * Connection i binds to source address 127.0.1.<1 + floor(i / 32)>: 32
 * connections per source, so the registry's default cap of 64 connections
 * per source IP stays in force.
 */
import { connect, type Socket } from 'node:net'
import { RegistryFrameDecoder, encodeRegistryMessage, REGISTRY_MAX_MESSAGE, type JsonObject } from '../src/protocol/registry-framing.js'
import { withSortedKeys } from '../src/registry/json-order.js'

export interface RegistryAddress {
  host: string
  port: number
}

/** Called once per request: latency in ms (from the request's scheduled time), the error text or null, the answer. */
export type Done = (ms: number, error: string | null, answer: JsonObject | null) => void

export const CONNECTIONS_PER_SOURCE = 32

/** A request as bytes on the wire, keys sorted as our client sends them. */
export function frameOf(message: JsonObject): Buffer {
  return encodeRegistryMessage(withSortedKeys(message))
}

interface Waiter {
  t0: number
  done: Done
}

class LoadConnection {
  private readonly decoder = new RegistryFrameDecoder(REGISTRY_MAX_MESSAGE)
  private readonly waiting: Waiter[] = []
  private waitingHead = 0
  private readonly backlog: Array<{ frame: Buffer; waiter: Waiter }> = []
  private backlogHead = 0
  private inFlight = 0
  lost: string | null = null

  private constructor(private readonly socket: Socket, private readonly depth: number) {
    socket.setNoDelay(true)
    socket.on('data', (chunk: Buffer) => this.onData(chunk))
    socket.on('error', (err) => this.lose(err.message))
    socket.on('close', () => this.lose('closed by the registry'))
  }

  static open(address: RegistryAddress, localAddress: string, depth: number): Promise<LoadConnection> {
    return new Promise((resolve, reject) => {
      const socket = connect({ host: address.host, port: address.port, localAddress })
      socket.once('connect', () => {
        socket.removeAllListeners('error')
        resolve(new LoadConnection(socket, depth))
      })
      socket.once('error', (err) => reject(new Error(`connect ${address.host}:${address.port} from ${localAddress}: ${err.message}`)))
    })
  }

  /** Requests given to this connection and not answered yet (sent or queued). */
  get outstanding(): number {
    return this.inFlight + this.backlog.length - this.backlogHead
  }

  send(frame: Buffer, t0: number, done: Done): void {
    const waiter = { t0, done }
    if (this.lost !== null) {
      done(performance.now() - t0, `connection lost: ${this.lost}`, null)
      return
    }
    if (this.inFlight < this.depth) this.write(frame, waiter)
    else this.backlog.push({ frame, waiter })
  }

  close(): void {
    this.lose('closed by the bench')
    this.socket.destroy()
  }

  private write(frame: Buffer, waiter: Waiter): void {
    this.inFlight++
    this.waiting.push(waiter)
    this.socket.write(frame)
  }

  private onData(chunk: Buffer): void {
    try {
      this.decoder.push(chunk)
      for (;;) {
        const answer = this.decoder.next()
        if (answer === null) break
        const waiter = this.waiting[this.waitingHead++]
        if (waiter === undefined) throw new Error('answer without a request')
        this.inFlight--
        if (this.waitingHead > 4096) {
          this.waiting.splice(0, this.waitingHead)
          this.waitingHead = 0
        }
        const error = typeof answer.error === 'string' ? answer.error : null
        waiter.done(performance.now() - waiter.t0, error, answer)
        if (this.backlogHead < this.backlog.length && this.inFlight < this.depth) {
          const next = this.backlog[this.backlogHead++]!
          if (this.backlogHead > 4096) {
            this.backlog.splice(0, this.backlogHead)
            this.backlogHead = 0
          }
          this.write(next.frame, next.waiter)
        }
      }
    } catch (err) {
      this.socket.destroy()
      this.lose(`bad answer: ${(err as Error).message}`)
    }
  }

  private lose(reason: string): void {
    if (this.lost !== null) return
    this.lost = reason
    const now = performance.now()
    const pending = [...this.waiting.slice(this.waitingHead), ...this.backlog.slice(this.backlogHead).map((b) => b.waiter)]
    this.waiting.length = 0
    this.backlog.length = 0
    this.waitingHead = this.backlogHead = this.inFlight = 0
    for (const w of pending) w.done(now - w.t0, `connection lost: ${reason}`, null)
  }
}

/**
 * `count` connections spread round-robin over `addresses` (one address today:
 * the SQLite registry; several front ends later), each allowing `depth`
 * outstanding requests.
 */
export class LoadPool {
  private next = 0

  private constructor(private readonly connections: LoadConnection[]) {}

  static async open(addresses: RegistryAddress[], count: number, depth: number): Promise<LoadPool> {
    const connections: LoadConnection[] = []
    try {
      for (let i = 0; i < count; i++) {
        const source = `127.0.1.${1 + Math.floor(i / CONNECTIONS_PER_SOURCE)}`
        connections.push(await LoadConnection.open(addresses[i % addresses.length]!, source, depth))
      }
    } catch (err) {
      for (const c of connections) c.close()
      throw err
    }
    return new LoadPool(connections)
  }

  get size(): number {
    return this.connections.length
  }

  get outstanding(): number {
    let n = 0
    for (const c of this.connections) n += c.outstanding
    return n
  }

  /** Sends on connection `on`, or on the next one round-robin. */
  send(frame: Buffer, t0: number, done: Done, on?: number): void {
    const index = on ?? this.next++ % this.connections.length
    this.connections[index % this.connections.length]!.send(frame, t0, done)
  }

  /** Resolves when nothing is outstanding, or after `timeoutMs`; returns what is still outstanding. */
  async drain(timeoutMs: number): Promise<number> {
    const end = performance.now() + timeoutMs
    while (this.outstanding > 0 && performance.now() < end) await sleep(20)
    return this.outstanding
  }

  close(): void {
    for (const c of this.connections) c.close()
  }
}

/** Latencies of one phase, and its errors by text. */
export class PhaseRecord {
  private samples = new Float64Array(1 << 16)
  count = 0
  readonly errors = new Map<string, number>()
  /** Completions per second of the phase, by second since `start`. */
  readonly perSecond: number[] = []
  /** p99 per time slice is computed from these: [second, ms] kept as parallel arrays. */
  private readonly at: number[] = []
  constructor(readonly start: number) {}

  readonly done: Done = (ms, error) => {
    if (error !== null) {
      this.errors.set(error, (this.errors.get(error) ?? 0) + 1)
    }
    if (this.count === this.samples.length) {
      const bigger = new Float64Array(this.samples.length * 2)
      bigger.set(this.samples)
      this.samples = bigger
    }
    this.samples[this.count++] = ms
    const second = Math.floor((performance.now() - this.start) / 1000)
    this.perSecond[second] = (this.perSecond[second] ?? 0) + 1
    this.at.push(second)
  }

  get errorCount(): number {
    let n = 0
    for (const v of this.errors.values()) n += v
    return n
  }

  summary(): { count: number; p50: number; p99: number; max: number } {
    return summarize(this.samples.subarray(0, this.count))
  }

  /** Latency summary per slice of `sliceS` seconds (by completion time). */
  slices(sliceS: number): Array<{ from: number; count: number; p50: number; p99: number; max: number }> {
    const groups = new Map<number, number[]>()
    for (let i = 0; i < this.count; i++) {
      const slice = Math.floor(this.at[i]! / sliceS)
      let g = groups.get(slice)
      if (g === undefined) groups.set(slice, (g = []))
      g.push(this.samples[i]!)
    }
    return [...groups.entries()].sort((a, b) => a[0] - b[0]).map(([slice, values]) => ({ from: slice * sliceS, ...summarize(Float64Array.from(values)) }))
  }
}

function summarize(values: Float64Array): { count: number; p50: number; p99: number; max: number } {
  if (values.length === 0) return { count: 0, p50: NaN, p99: NaN, max: NaN }
  const sorted = Float64Array.from(values).sort()
  const pick = (q: number): number => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!
  return { count: sorted.length, p50: pick(0.5), p99: pick(0.99), max: sorted[sorted.length - 1]! }
}

/**
 * Offers `rate` requests per second for `windowS` seconds: request k is due at
 * start + k / rate and its latency counts from then (so a registry that falls
 * behind shows it in latency, not by slowing the offer). `request(k)` gives
 * its frame and the record it counts in. If more than `maxBacklogS` seconds'
 * worth of requests are outstanding, the registry has fallen behind for good:
 * the offer stops there (`stoppedAtS`), so a run does not spend minutes
 * draining. Then waits up to `drainS` for the answers still outstanding.
 */
export async function runPaced(
  pool: LoadPool,
  o: { start: number; rate: number; windowS: number; drainS: number; maxBacklogS: number; request: (k: number) => { frame: Buffer; record: PhaseRecord } },
): Promise<{ offered: number; answeredInWindow: number; answered: number; leftOver: number; wallS: number; stoppedAtS: number | null }> {
  const start = o.start
  let total = Math.floor(o.rate * o.windowS)
  let answered = 0
  let k = 0
  let stoppedAtS: number | null = null
  await new Promise<void>((resolve) => {
    const tick = (): void => {
      const elapsed = performance.now() - start
      if (pool.outstanding > o.rate * o.maxBacklogS) {
        stoppedAtS = elapsed / 1000
        total = k
        resolve()
        return
      }
      const due = Math.min(total, Math.floor((elapsed / 1000) * o.rate) + 1)
      for (; k < due; k++) {
        const { frame, record } = o.request(k)
        pool.send(frame, start + (k * 1000) / o.rate, (ms, error, answer) => {
          answered++
          record.done(ms, error, answer)
        })
      }
      if (k >= total) resolve()
      else setTimeout(tick, 2)
    }
    tick()
  })
  const windowEnd = start + o.windowS * 1000
  while (stoppedAtS === null && performance.now() < windowEnd) await sleep(Math.max(1, Math.min(50, windowEnd - performance.now())))
  const answeredInWindow = answered
  const leftOver = await pool.drain(o.drainS * 1000)
  return { offered: total, answeredInWindow, answered, leftOver, wallS: (performance.now() - start) / 1000, stoppedAtS }
}

/** Keeps every connection's `depth` slots busy for `durationS` seconds. */
export async function runClosedLoop(
  pool: LoadPool,
  o: { depth: number; durationS: number; frame: (k: number) => Buffer; record: PhaseRecord },
): Promise<{ wallS: number }> {
  const end = o.record.start + o.durationS * 1000
  let k = 0
  const slot = (connection: number): Promise<void> =>
    new Promise((resolve) => {
      const fire = (): void => {
        if (performance.now() >= end) {
          resolve()
          return
        }
        pool.send(o.frame(k++), performance.now(), (ms, error, answer) => {
          o.record.done(ms, error, answer)
          if (error !== null && error.startsWith('connection lost')) resolve()
          else fire()
        }, connection)
      }
      fire()
    })
  const slots: Promise<void>[] = []
  for (let c = 0; c < pool.size; c++) for (let d = 0; d < o.depth; d++) slots.push(slot(c))
  await Promise.all(slots)
  return { wallS: (performance.now() - o.record.start) / 1000 }
}

/** Runs `total` requests with at most `concurrency` outstanding; latency counts from each send. */
export async function runBatch(pool: LoadPool, o: { total: number; concurrency: number; frame: (k: number) => Buffer; record: PhaseRecord; onAnswer?: (k: number, answer: JsonObject | null, error: string | null) => void }): Promise<void> {
  let k = 0
  await new Promise<void>((resolve) => {
    let active = 0
    const pump = (): void => {
      while (active < o.concurrency && k < o.total) {
        const index = k++
        active++
        pool.send(o.frame(index), performance.now(), (ms, error, answer) => {
          active--
          o.record.done(ms, error, answer)
          o.onAnswer?.(index, answer, error)
          if (k >= o.total && active === 0) resolve()
          else pump()
        })
      }
      if (o.total === 0) resolve()
    }
    pump()
  })
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}
