/**
 * A pilot-tun node driven over stdin, for interop tests inside a namespace:
 * an in-process Daemon (the same one `pilot-tun up --no-tun` runs) plus the
 * stream work the CLI has no command for — an echo round trip that compares
 * SHA-256 both ways, and a sink port that hashes what arrives.
 *
 *   node pilot-agent.js --registry H:P --beacon H:P --hostname NAME --state-dir DIR
 *                       [--listen 0.0.0.0:4000] [--kdf auto|hkdf|legacy] [--heartbeat-ms 1000]
 *
 * stdin, one JSON command a line, `{"id":N,"op":...}`:
 *   status | peers | trust-list | trust-request {target,reason} | trust-approve {target}
 *   trust-reject {target,reason} | trust-revoke {target} | ping {target}
 *   echo {node,bytes,timeoutMs}   → {bytes,ms,sent,back} (hex SHA-256 of each)
 *   sink {port}                   → listens; `sinks` lists {node,bytes,sha,ms} per ended stream
 *   close
 * stdout, one JSON line per command: `{"id":N,"ok":true,"result":...}` or
 * `{"id":N,"ok":false,"error":"..."}`; first `{"ready":{node_id,address}}`.
 * The agent exits when stdin closes.
 */
import { createHash, randomBytes } from 'node:crypto'
import { createInterface } from 'node:readline'
import { parseArgs } from 'node:util'
import { Daemon } from '../../src/daemon/index.js'
import type { PilotStream } from '../../src/daemon/pilot-stream.js'

const { values } = parseArgs({
  options: {
    registry: { type: 'string' },
    beacon: { type: 'string' },
    hostname: { type: 'string' },
    'state-dir': { type: 'string' },
    listen: { type: 'string', default: '0.0.0.0:4000' },
    kdf: { type: 'string', default: 'auto' },
    'heartbeat-ms': { type: 'string', default: '1000' },
  },
})

const emit = (o: object): void => {
  process.stdout.write(JSON.stringify(o) + '\n')
}

interface SinkRecord {
  port: number
  node: number
  bytes: number
  sha: string
  ms: number
}

const daemon = await Daemon.start({
  stateDir: values['state-dir']!,
  registry: values.registry!,
  beacon: values.beacon!,
  listen: values.listen!,
  hostname: values.hostname ?? null,
  kdf: values.kdf as 'auto' | 'hkdf' | 'legacy',
  timing: { heartbeatMs: Number(values['heartbeat-ms']) },
})
const sinks: SinkRecord[] = []

/** Writes `bytes` random bytes to `node`'s echo port; resolves once they all came back. */
async function echo(node: number, bytes: number, timeoutMs: number): Promise<object> {
  const payload = randomBytes(bytes)
  const t0 = performance.now()
  const stream = await daemon.openStream(node, 7)
  const back = createHash('sha256')
  let got = 0
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`echo: ${got} of ${bytes} bytes back after ${timeoutMs} ms`)), timeoutMs)
      stream.on('data', (d: Buffer) => {
        back.update(d)
        got += d.length
        if (got >= bytes) {
          clearTimeout(timer)
          resolve()
        }
      })
      stream.on('error', (err) => {
        clearTimeout(timer)
        reject(err)
      })
      stream.on('end', () => {
        clearTimeout(timer)
        reject(new Error(`echo ended after ${got} of ${bytes} bytes`))
      })
      stream.write(payload)
    })
  } finally {
    stream.destroy()
  }
  return { bytes: got, ms: Math.round(performance.now() - t0), sent: createHash('sha256').update(payload).digest('hex'), back: back.digest('hex') }
}

function sink(port: number): void {
  daemon.listenStreams(port, (stream: PilotStream) => {
    const h = createHash('sha256')
    const t0 = performance.now()
    let n = 0
    stream.on('data', (d: Buffer) => {
      h.update(d)
      n += d.length
    })
    stream.on('error', () => {})
    stream.on('end', () => {
      sinks.push({ port, node: stream.remoteAddress.node, bytes: n, sha: h.digest('hex'), ms: Math.round(performance.now() - t0) })
      stream.end()
    })
  })
}

type Command = { id: number; op: string } & Record<string, unknown>

async function run(c: Command): Promise<unknown> {
  const s = (k: string): string => String(c[k])
  switch (c.op) {
    case 'status': return daemon.status()
    case 'peers': return daemon.peers()
    case 'trust-list': return daemon.trustList()
    case 'trust-request': return daemon.trustRequest(s('target'), s('reason'))
    case 'trust-approve': return daemon.trustApprove(s('target'))
    case 'trust-reject': return daemon.trustReject(s('target'), s('reason'))
    case 'trust-revoke': return daemon.trustRevoke(s('target'))
    case 'ping': return daemon.ping(s('target'), 5_000)
    case 'echo': return echo(Number(c.node), Number(c.bytes), Number(c.timeoutMs ?? 60_000))
    case 'sink': return sink(Number(c.port))
    case 'sinks': return sinks
    case 'close': {
      await daemon.close()
      return null
    }
    default: throw new Error(`unknown op ${c.op}`)
  }
}

const status = await daemon.status()
emit({ ready: { node_id: status.node_id, address: status.address } })
const rl = createInterface({ input: process.stdin })
rl.on('line', (line) => {
  let c: Command
  try {
    c = JSON.parse(line) as Command
  } catch {
    return
  }
  run(c).then(
    (result) => emit({ id: c.id, ok: true, result: result ?? null }),
    (err: unknown) => emit({ id: c.id, ok: false, error: (err as Error).message }),
  )
})
rl.on('close', () => {
  void daemon.close().finally(() => process.exit(0))
})
