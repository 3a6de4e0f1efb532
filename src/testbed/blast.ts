/**
 * Small TCP traffic tools for the loss/load tests and the netns benchmark.
 * They run as separate processes inside test-bed namespaces (`Topology.spawn`
 * / `exec`), speak plain TCP over any address (the overlay's mapped IPv6 or
 * the direct IPv4 path), and print one JSON line with their result.
 *
 *   node dist/src/testbed/blast.js serve --blast-port 7001 --echo-port 7002
 *       blast server: a client sends a 24-byte request (magic "BLST", flags,
 *       byte count u64, seed u64); the server answers with that many bytes of
 *       the seeded stream and closes. Echo server: echoes everything.
 *       Prints {"ready":true,...} once both listen.
 *   node dist/src/testbed/blast.js blast --host H --port 7001 --bytes N --seed S
 *       receives N bytes, hashes them (SHA-256) while they arrive, then hashes
 *       the expected stream; prints bytes, time, MB/s, both hashes, ok.
 *       `--progress MS` adds a progress line on stderr every MS.
 *   node dist/src/testbed/blast.js parallel --host H --port 7001 --flows 8 --bytes N --seed S
 *       `flows` blast clients at once, each N bytes of its own stream (seed S+i),
 *       all byte-exact; prints the aggregate MB/s (all bytes / first connect()
 *       to last byte), each flow's MB/s and the fairness (slowest / fastest).
 *   node dist/src/testbed/blast.js echo --host H --port 7002 --count 1000 --size 65536
 *       `count` concurrent connections, each sends `size` seeded bytes and reads
 *       them back; prints completed/failed, time, aggregate MB/s, latencies.
 *       `--hold MS` keeps all of them open MS after the last completes;
 *       `--connect-window N` lets at most N connects be in progress at once.
 *   node dist/src/testbed/blast.js first-byte --host H --port 7002 --count K
 *       K sequential connections: connect() -> one byte written -> the first
 *       byte echoed back; prints each time in ms.
 *
 * The stream is AES-128-CTR of zeros keyed by the seed (native, ~1 GB/s here),
 * so the content never repeats and any lost, duplicated or reordered byte
 * changes the hash.
 */
import { createCipheriv, createHash } from 'node:crypto'
import { createServer, connect, type Socket } from 'node:net'
import { performance } from 'node:perf_hooks'
import { pathToFileURL } from 'node:url'

const MAGIC = 0x424c5354 // "BLST"
const REQUEST_BYTES = 24
const CHUNK = 256 * 1024

/** The seeded byte stream: AES-128-CTR keystream, key = seed (u64, little-endian) repeated. */
export class SeededStream {
  private readonly cipher
  private readonly zeros = Buffer.alloc(CHUNK)
  constructor(seed: bigint) {
    const key = Buffer.alloc(16)
    key.writeBigUInt64LE(BigInt.asUintN(64, seed), 0)
    key.writeBigUInt64LE(BigInt.asUintN(64, seed ^ 0x9e3779b97f4a7c15n), 8)
    this.cipher = createCipheriv('aes-128-ctr', key, Buffer.alloc(16))
  }
  /** The next `n` bytes (n <= 256 KiB). */
  next(n: number): Buffer {
    return this.cipher.update(n === CHUNK ? this.zeros : this.zeros.subarray(0, n))
  }
}

/** SHA-256 of the first `bytes` bytes of the stream for `seed`. */
export function expectedDigest(seed: bigint, bytes: number): string {
  const s = new SeededStream(seed)
  const h = createHash('sha256')
  for (let left = bytes; left > 0; ) {
    const n = Math.min(CHUNK, left)
    h.update(s.next(n))
    left -= n
  }
  return h.digest('hex')
}

export function encodeRequest(bytes: number, seed: bigint): Buffer {
  const b = Buffer.alloc(REQUEST_BYTES)
  b.writeUInt32BE(MAGIC, 0)
  b.writeUInt32BE(0, 4)
  b.writeBigUInt64BE(BigInt(bytes), 8)
  b.writeBigUInt64BE(BigInt.asUintN(64, seed), 16)
  return b
}

// --- servers ---

export interface ServeOptions {
  host: string
  blastPort: number
  echoPort: number
  backlog: number
}

/** Starts the blast and echo servers; resolves when both listen. */
export async function serve(o: ServeOptions): Promise<{ blastPort: number; echoPort: number; close(): Promise<void> }> {
  const sockets = new Set<Socket>()
  const track = (s: Socket): void => {
    sockets.add(s)
    s.once('close', () => sockets.delete(s))
    s.on('error', () => s.destroy())
  }
  const blast = createServer((sock) => {
    track(sock)
    sock.setNoDelay(true)
    let head = Buffer.alloc(0)
    const onData = (d: Buffer): void => {
      head = Buffer.concat([head, d])
      if (head.length < REQUEST_BYTES) return
      sock.off('data', onData)
      if (head.readUInt32BE(0) !== MAGIC) {
        sock.destroy()
        return
      }
      const total = Number(head.readBigUInt64BE(8))
      const stream = new SeededStream(head.readBigUInt64BE(16))
      let left = total
      const pump = (): void => {
        while (left > 0) {
          const n = Math.min(CHUNK, left)
          left -= n
          if (!sock.write(stream.next(n))) {
            sock.once('drain', pump)
            return
          }
        }
        sock.end()
      }
      pump()
    }
    sock.on('data', onData)
  })
  const echo = createServer((sock) => {
    track(sock)
    sock.setNoDelay(true)
    sock.pipe(sock)
  })
  const listen = (srv: ReturnType<typeof createServer>, port: number): Promise<void> =>
    new Promise((resolve, reject) => {
      srv.once('error', reject)
      srv.listen({ host: o.host, port, backlog: o.backlog }, () => resolve())
    })
  await Promise.all([listen(blast, o.blastPort), listen(echo, o.echoPort)])
  const portOf = (srv: ReturnType<typeof createServer>): number => (srv.address() as { port: number }).port
  return {
    blastPort: portOf(blast),
    echoPort: portOf(echo),
    close: async () => {
      for (const s of sockets) s.destroy()
      await Promise.all([new Promise((r) => blast.close(r)), new Promise((r) => echo.close(r))])
    },
  }
}

// --- clients ---

export interface BlastResult {
  ok: boolean
  bytes: number
  expected_bytes: number
  /** From connect() to the last byte. */
  ms: number
  /** From connect() to the first byte of the stream. */
  first_byte_ms: number | null
  mb_per_s: number
  sha256: string
  expected_sha256: string
  error?: string
}

/**
 * Receives `bytes` bytes of the stream for `seed` from a blast server.
 * With `progressMs`, a JSON progress line (bytes so far, MB/s of the last interval) goes to stderr every `progressMs`.
 * `expected`: the stream's SHA-256 computed beforehand (parallel flows: no hashing pause while others still run).
 */
export function blastClient(host: string, port: number, bytes: number, seed: bigint, timeoutMs: number, progressMs = 0, expected?: string): Promise<BlastResult> {
  return new Promise((resolve) => {
    const t0 = performance.now()
    let first: number | null = null
    let got = 0
    const h = createHash('sha256')
    const sock = connect({ host, port })
    sock.setNoDelay(true)
    let done = false
    const finish = (error?: string): void => {
      if (done) return
      done = true
      clearTimeout(timer)
      const ms = performance.now() - t0
      sock.destroy()
      const sha256 = h.digest('hex')
      const expected_sha256 = expected ?? expectedDigest(seed, bytes)
      const r: BlastResult = {
        ok: error === undefined && got === bytes && sha256 === expected_sha256,
        bytes: got,
        expected_bytes: bytes,
        ms: round(ms),
        first_byte_ms: first === null ? null : round(first - t0),
        mb_per_s: round(got / 1e6 / (ms / 1000)),
        sha256,
        expected_sha256,
      }
      if (error !== undefined) r.error = error
      resolve(r)
    }
    const timer = setTimeout(() => finish(`timed out after ${timeoutMs} ms with ${got} of ${bytes} bytes`), timeoutMs)
    if (progressMs > 0) {
      let last = 0
      const tick = setInterval(() => {
        if (done) return clearInterval(tick)
        process.stderr.write(JSON.stringify({ progress_s: round((performance.now() - t0) / 1000), bytes: got, mb_per_s_last: round((got - last) / 1e6 / (progressMs / 1000)) }) + '\n')
        last = got
      }, progressMs)
    }
    sock.on('connect', () => sock.write(encodeRequest(bytes, seed)))
    sock.on('data', (d: Buffer) => {
      if (first === null) first = performance.now()
      got += d.length
      h.update(d)
    })
    sock.on('end', () => finish(got === bytes ? undefined : `stream ended after ${got} of ${bytes} bytes`))
    sock.on('error', (e) => finish(`${(e as NodeJS.ErrnoException).code ?? 'error'}: ${e.message} after ${got} bytes`))
  })
}

export interface ParallelResult {
  ok: boolean
  flows: number
  /** Bytes received by all flows together. */
  bytes: number
  /** From the first connect() to the last flow's last byte. */
  ms: number
  /** bytes / ms. */
  mb_per_s: number
  /** Each flow's own MB/s (its bytes / its connect() to last byte). */
  per_flow_mb_s: number[]
  /** Slowest flow's MB/s / fastest flow's (1 = perfectly fair). */
  min_over_max: number
  /** Jain's fairness index of the per-flow rates (1 = equal, 1/flows = one flow has all). */
  jain: number
  errors: string[]
}

/** `flows` blast clients at once, seeds `seed`, `seed`+1, ...; the expected hashes are computed before the first connect(). */
export async function parallelBlast(host: string, port: number, flows: number, bytes: number, seed: bigint, timeoutMs: number): Promise<ParallelResult> {
  if (!Number.isInteger(flows) || flows < 1) throw new Error(`--flows must be a whole number >= 1, got ${flows}`)
  const seeds = Array.from({ length: flows }, (_, i) => seed + BigInt(i))
  const expected = seeds.map((s) => expectedDigest(s, bytes))
  const t0 = performance.now()
  const results = await Promise.all(seeds.map((s, i) => blastClient(host, port, bytes, s, timeoutMs, 0, expected[i])))
  const ms = performance.now() - t0
  const total = results.reduce((n, r) => n + r.bytes, 0)
  const rates = results.map((r) => r.mb_per_s)
  const sum = rates.reduce((a, b) => a + b, 0)
  const sumSq = rates.reduce((a, b) => a + b * b, 0)
  return {
    ok: results.every((r) => r.ok),
    flows,
    bytes: total,
    ms: round(ms),
    mb_per_s: round(total / 1e6 / (ms / 1000)),
    per_flow_mb_s: rates,
    min_over_max: round(Math.min(...rates) / Math.max(...rates)),
    jain: round(sumSq === 0 ? 0 : (sum * sum) / (flows * sumSq)),
    errors: results.flatMap((r, i) => (r.ok ? [] : [`flow ${i}: ${r.error ?? `sha256 ${r.sha256} != ${r.expected_sha256} (${r.bytes} of ${r.expected_bytes} bytes)`}`])),
  }
}

export interface EchoResult {
  count: number
  completed: number
  failed: number
  /** The first few failures. */
  errors: string[]
  /** Failures counted by kind (error code, "closed after N of M bytes" is "closed after ..."). */
  error_kinds: Record<string, number>
  /** From the first connect() to the last connection's last byte back. */
  ms: number
  /** Bytes echoed back to the clients (count x size when all complete). */
  bytes: number
  /** bytes / ms: the one-way goodput of the echoed payload. */
  mb_per_s: number
  /** Per-connection time from connect() to its last byte back. */
  latency_ms: { p50: number; p99: number; max: number }
  /** When every connection had completed and was still open (the clients then close them together). */
  all_open_ms: number | null
}

/**
 * `count` concurrent connections; each sends `size` bytes of its own seeded
 * stream and reads them back byte-exact. With `holdMs`, every connection is
 * kept open that long after the last one completed (so a daemon's RSS can be
 * read with all flows open) before they all close.
 */
export async function echoClients(
  host: string,
  port: number,
  count: number,
  size: number,
  timeoutMs: number,
  holdMs = 0,
  connectWindow = 0,
): Promise<EchoResult> {
  const t0 = performance.now()
  const latencies: number[] = []
  const errors: string[] = []
  const kinds: Record<string, number> = {}
  const open: Socket[] = []
  let bytes = 0
  let allDone: () => void = () => {}
  let remaining = count
  const allSettled = new Promise<void>((r) => (allDone = r))
  const settle = (): void => {
    if (--remaining === 0) allDone()
  }
  // connectWindow > 0: at most that many connects in progress at once (the
  // rest wait their turn); every connection still stays open until the end.
  let connecting = 0
  let next = 0
  const launch = (): void => {
    while (next < count && (connectWindow <= 0 || connecting < connectWindow)) start(next++)
  }
  const start = (i: number): void => {
    connecting++
    let connectDone = false
    const connected = (): void => {
      if (connectDone) return
      connectDone = true
      connecting--
      launch()
    }
    const payload = new SeededStream(BigInt(i + 1)).next(Math.min(size, CHUNK))
    const data = size <= CHUNK ? payload : Buffer.concat(Array.from({ length: Math.ceil(size / CHUNK) }, () => payload)).subarray(0, size)
    const began = performance.now()
    const sock = connect({ host, port })
    open.push(sock)
    let got = 0
    let settled = false
    const back = Buffer.alloc(size)
    const fail = (why: string): void => {
      if (settled) return
      settled = true
      if (errors.length < 10) errors.push(`#${i}: ${why}`)
      const kind = why.split(':')[0]!.replace(/\d+/g, 'N')
      kinds[kind] = (kinds[kind] ?? 0) + 1
      sock.destroy()
      settle()
    }
    sock.on('connect', () => {
      connected()
      sock.write(data)
    })
    sock.once('close', connected)
    sock.on('data', (d: Buffer) => {
      if (settled) return
      if (got + d.length > size) return fail(`more than ${size} bytes back`)
      d.copy(back, got)
      got += d.length
      bytes += d.length
      if (got === size) {
        settled = true
        if (!back.equals(data)) {
          if (errors.length < 10) errors.push(`#${i}: echoed bytes differ`)
          sock.destroy()
        } else latencies.push(performance.now() - began)
        settle()
      }
    })
    sock.on('error', (e) => fail(`${(e as NodeJS.ErrnoException).code ?? 'error'}: ${e.message} after ${got} bytes`))
    sock.on('close', () => fail(`closed after ${got} of ${size} bytes`))
  }
  launch()
  let timedOut = false
  const timer = setTimeout(() => {
    timedOut = true
    allDone()
  }, timeoutMs)
  await allSettled
  clearTimeout(timer)
  const ms = performance.now() - t0
  let allOpen: number | null = null
  if (!timedOut && latencies.length === count && holdMs > 0) {
    allOpen = performance.now() - t0
    process.stdout.write(JSON.stringify({ all_open: true, ms: round(allOpen) }) + '\n')
    await new Promise((r) => setTimeout(r, holdMs))
  }
  for (const s of open) s.destroy()
  const sorted = latencies.slice().sort((a, b) => a - b)
  if (timedOut && errors.length < 10) errors.push(`timed out after ${timeoutMs} ms: ${count - latencies.length} connections incomplete`)
  return {
    count,
    completed: latencies.length,
    failed: count - latencies.length,
    errors,
    error_kinds: kinds,
    ms: round(ms),
    bytes,
    mb_per_s: round(bytes / 1e6 / (ms / 1000)),
    latency_ms: { p50: round(percentile(sorted, 0.5)), p99: round(percentile(sorted, 0.99)), max: round(sorted[sorted.length - 1] ?? NaN) },
    all_open_ms: allOpen === null ? null : round(allOpen),
  }
}

/** `count` sequential connections: connect() -> write one byte -> first byte back, in ms. */
export async function firstByte(host: string, port: number, count: number, timeoutMs: number): Promise<{ samples_ms: number[]; errors: string[] }> {
  const samples: number[] = []
  const errors: string[] = []
  for (let i = 0; i < count; i++) {
    const r = await new Promise<number | string>((resolve) => {
      const t0 = performance.now()
      const sock = connect({ host, port })
      sock.setNoDelay(true)
      const timer = setTimeout(() => {
        sock.destroy()
        resolve(`timed out after ${timeoutMs} ms`)
      }, timeoutMs)
      // Written before the connection completes: net buffers it and sends it right after the handshake.
      sock.write(Buffer.from([0x2a]))
      sock.once('data', () => {
        clearTimeout(timer)
        const ms = performance.now() - t0
        sock.destroy()
        resolve(ms)
      })
      sock.on('error', (e) => {
        clearTimeout(timer)
        resolve(`${(e as NodeJS.ErrnoException).code ?? 'error'}: ${e.message}`)
      })
    })
    if (typeof r === 'number') samples.push(round(r))
    else errors.push(r)
  }
  return { samples_ms: samples, errors }
}

export function percentile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return NaN
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))
  return sorted[i]!
}

function round(x: number): number {
  return Math.round(x * 1000) / 1000
}

// --- command line ---

function flags(argv: readonly string[]): Map<string, string> {
  const m = new Map<string, string>()
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!
    if (!a.startsWith('--')) throw new Error(`unexpected argument ${a}`)
    const v = argv[i + 1]
    if (v === undefined || v.startsWith('--')) throw new Error(`${a} needs a value`)
    m.set(a.slice(2), v)
    i++
  }
  return m
}

function num(f: Map<string, string>, name: string, dflt?: number): number {
  const v = f.get(name)
  if (v === undefined) {
    if (dflt === undefined) throw new Error(`--${name} is required`)
    return dflt
  }
  const n = Number(v)
  if (!Number.isFinite(n) || n < 0) throw new Error(`--${name} ${v} is not a number`)
  return n
}

function str(f: Map<string, string>, name: string, dflt?: string): string {
  const v = f.get(name) ?? dflt
  if (v === undefined) throw new Error(`--${name} is required`)
  return v
}

async function main(argv: readonly string[]): Promise<void> {
  const [mode, ...rest] = argv
  const f = flags(rest)
  const out = (o: unknown): void => {
    process.stdout.write(JSON.stringify(o) + '\n')
  }
  switch (mode) {
    case 'serve': {
      const o: ServeOptions = {
        host: str(f, 'host', '::'),
        blastPort: num(f, 'blast-port', 7001),
        echoPort: num(f, 'echo-port', 7002),
        backlog: num(f, 'backlog', 4096),
      }
      const srv = await serve(o)
      out({ ready: true, pid: process.pid, ...o })
      const stop = (): void => void srv.close().then(() => process.exit(0))
      process.on('SIGTERM', stop)
      process.on('SIGINT', stop)
      return
    }
    case 'blast':
      out(await blastClient(str(f, 'host'), num(f, 'port', 7001), num(f, 'bytes'), BigInt(str(f, 'seed', '1')), num(f, 'timeout', 120_000), num(f, 'progress', 0)))
      return
    case 'parallel':
      out(await parallelBlast(str(f, 'host'), num(f, 'port', 7001), num(f, 'flows', 8), num(f, 'bytes'), BigInt(str(f, 'seed', '1')), num(f, 'timeout', 120_000)))
      return
    case 'echo':
      out(await echoClients(str(f, 'host'), num(f, 'port', 7002), num(f, 'count'), num(f, 'size', 65536), num(f, 'timeout', 60_000), num(f, 'hold', 0), num(f, 'connect-window', 0)))
      return
    case 'first-byte':
      out(await firstByte(str(f, 'host'), num(f, 'port', 7002), num(f, 'count', 1), num(f, 'timeout', 10_000)))
      return
    default:
      throw new Error(`usage: blast.js serve|blast|parallel|echo|first-byte [--flags]; got ${String(mode)}`)
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  main(process.argv.slice(2)).catch((err: unknown) => {
    process.stderr.write(`blast: ${err instanceof Error ? err.message : String(err)}\n`)
    process.exit(2)
  })
}
