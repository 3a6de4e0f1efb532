/**
 * The registry under load in `npm run bench:registry` (registry.bench.ts): the
 * real `startRegistry` on a SQLite file, in its own process so the load
 * generator's CPU is not the registry's. Started with `fork()`; argv: the
 * store path. Talks to its parent over the IPC channel only:
 *
 *   child → parent  { kind: 'ready', host, port }   once listening
 *   parent → child  { kind: 'stats' }               → { kind: 'stats', stats, rss }
 *   parent → child  { kind: 'stop' }                → closes, then exits 0
 *
 * The parent going away (IPC channel closed: exit, crash, SIGKILL), SIGINT or
 * SIGTERM close the registry and end the process, so none is left behind.
 * When the parent vanished without a `stop`, the child also removes the temp
 * dir holding the store (only a `pilot-regbench-*` dir), which a SIGKILLed
 * parent could not.
 *
 * One limit differs from the defaults: `registrationsPerMinute` (unknown keys
 * per source IP per minute, 10 by default) is lifted, since every simulated
 * node registers from loopback. Everything else (per-IP connection cap,
 * signature checks, fsync policy) is as deployed.
 */
import { rmSync } from 'node:fs'
import { basename, dirname } from 'node:path'
import { startRegistry, type RunningRegistry } from '../src/registry/start.js'

const storePath = process.argv[2]
let registry: RunningRegistry | null = null
let stopping = false

async function stop(code: number, removeStore = false): Promise<void> {
  if (stopping) return
  stopping = true
  try {
    await registry?.close()
  } finally {
    const dir = storePath === undefined ? '' : dirname(storePath)
    if (removeStore && basename(dir).startsWith('pilot-regbench-')) rmSync(dir, { recursive: true, force: true })
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

if (storePath === undefined || process.send === undefined) {
  console.error('registry-child: run by registry.bench.ts through fork(), with the store path as argument')
  process.exit(2)
}

startRegistry({
  host: '127.0.0.1',
  port: 0,
  storePath,
  limits: { registrationsPerMinute: 1_000_000_000 },
}).then(
  (running) => {
    registry = running
    process.send?.({ kind: 'ready', host: running.address.host, port: running.address.port })
  },
  (err: Error) => {
    console.error(`registry-child: ${err.message}`)
    process.exit(1)
  },
)
