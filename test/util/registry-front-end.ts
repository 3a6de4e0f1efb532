/**
 * One registry front end in its own process, for tests and the load benchmark
 * that need front ends they can kill (issue 14). Started with `fork()`; argv:
 * the store spec (`sqlite:PATH`, a path, or `postgres://…`) and optionally a
 * port (default 0). Talks to its parent over the IPC channel only:
 *
 *   child → parent  { kind: 'ready', host, port, pid }   once listening
 *   parent → child  { kind: 'stats' }                    → { kind: 'stats', stats, rss }
 *   parent → child  { kind: 'stop' }                     → closes, then exits 0
 *
 * The parent going away (IPC channel closed), SIGINT or SIGTERM close the
 * registry and end the process, so none is left behind. When the parent
 * vanished without a `stop` and the store is a SQLite file in a
 * `pilot-regbench-*` temp dir, that dir is removed too.
 *
 * One limit differs from the defaults: `registrationsPerMinute` (unknown keys
 * per source IP per minute, 10 by default) is lifted, since every simulated
 * node registers from loopback. Everything else is as deployed.
 */
import { rmSync } from 'node:fs'
import { basename, dirname } from 'node:path'
import { nullLogger, type Logger } from '../../src/logger.js'
import { openRegistryStore } from '../../src/registry/open-store.js'
import { startRegistry, type RunningRegistry } from '../../src/registry/start.js'

const spec = process.argv[2]
const port = Number(process.argv[3] ?? '0')
let registry: RunningRegistry | null = null
let stopping = false

function sqliteDir(): string | null {
  if (spec === undefined || spec.startsWith('postgres')) return null
  return dirname(spec.startsWith('sqlite:') ? spec.slice('sqlite:'.length) : spec)
}

async function stop(code: number, removeStore = false): Promise<void> {
  if (stopping) return
  stopping = true
  try {
    await registry?.close()
  } finally {
    const dir = sqliteDir()
    if (removeStore && dir !== null && basename(dir).startsWith('pilot-regbench-')) rmSync(dir, { recursive: true, force: true })
    process.exit(code)
  }
}

process.on('disconnect', () => void stop(0, true))
process.on('SIGINT', () => void stop(130))
process.on('SIGTERM', () => void stop(143))

process.on('message', (message: { kind?: string }) => {
  if (message.kind === 'stats' && registry !== null) {
    process.send?.({ kind: 'stats', stats: registry.server.stats(), rss: process.memoryUsage().rss })
  } else if (message.kind === 'stop') {
    void stop(0)
  }
})

if (spec === undefined || process.send === undefined || !Number.isInteger(port)) {
  console.error('registry-front-end: run through fork(), with the store spec (and a port) as arguments')
  process.exit(2)
}

/** With PILOT_FRONT_END_LOG=1, errors and warnings on stderr (a failed request says why there). */
const logger: Logger = process.env.PILOT_FRONT_END_LOG !== '1' ? nullLogger : {
  ...nullLogger,
  warn: (message, fields) => console.error(`registry-front-end ${process.pid} warn: ${message} ${JSON.stringify(fields ?? {})}`),
  error: (message, fields) => console.error(`registry-front-end ${process.pid} error: ${message} ${JSON.stringify(fields ?? {})}`),
  child: () => logger,
}

openRegistryStore(spec, { logger })
  .then((store) =>
    startRegistry({ host: '127.0.0.1', port, store, logger, limits: { registrationsPerMinute: 1_000_000_000 } }).catch(async (err: Error) => {
      await store.close()
      throw err
    }),
  )
  .then(
    (running) => {
      registry = running
      process.send?.({ kind: 'ready', host: running.address.host, port: running.address.port, pid: process.pid })
    },
    (err: Error) => {
      console.error(`registry-front-end: ${err.message}`)
      process.exit(1)
    },
  )
