/**
 * TUN read throughput: packets per second that reach JavaScript through the
 * addon's batched reader. Needs root; everything happens in a throwaway
 * network namespace that this script creates and always deletes:
 *
 *   [ namespace pilot-bench-XXXX ]
 *     sender processes (UDP to [fd50:494c:4f54::99]:9, from the node address)
 *       -> kernel routes fd50:494c:4f54::/48 into pilot0
 *       -> reader thread (poll + up to 64 reads per wake-up)
 *       -> one JS call per batch: this process counts packets
 *
 * "read/s" is packets handed to JS per second (first to last batch), "kernel
 * drops" is pilot0's TX dropped counter (packets the reader did not take in
 * time), "sent/s" what the senders managed. "drain" rows measure the reader
 * alone on a pre-filled queue; "flood" rows measure it while the senders
 * compete for the same (two, here) cores, so there the senders often bound
 * the figure.
 *
 *   npm run bench:tun      (or: npx tsc -p . && sudo node dist/bench/tun.bench.js [seconds] [senders])
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { fileURLToPath } from 'node:url'
import { performance } from 'node:perf_hooks'
import { openTunInterface } from '../src/tun/interface-setup.js'

const NODE = 'fd50:494c:4f54::2a'
const PEER = 'fd50:494c:4f54::99'
const seconds = Number(process.argv[2] ?? 3)
const senders = Number(process.argv[3] ?? 1)

// A small Node sender: bursts of sends without callbacks, yielding between
// bursts; stops after `count` datagrams or `ms` milliseconds.
const SENDER = `
const s = require('node:dgram').createSocket('udp6')
const [size, count, ms] = process.argv.slice(1).map(Number)
s.bind(0, '${NODE}', () => {
  const buf = Buffer.alloc(size, 0x61)
  const end = Date.now() + ms
  let sent = 0
  const burst = () => {
    for (let i = 0; i < 512 && sent < count; i++, sent++) s.send(buf, 9, '${PEER}')
    if (sent < count && Date.now() < end) setImmediate(burst)
    else setImmediate(() => { console.log(sent); s.close() })
  }
  burst()
})`

function txDropped(): number {
  const link = JSON.parse(execFileSync('ip', ['-j', '-s', 'link', 'show', 'dev', 'pilot0'], { encoding: 'utf8' }))[0]
  return Number(link.stats64?.tx?.dropped ?? 0)
}

function runSenders(n: number, size: number, count: number, ms: number): Promise<number> {
  const procs = Array.from({ length: n }, () =>
    spawn(process.execPath, ['-e', SENDER, String(size), String(count), String(ms)], { stdio: ['ignore', 'pipe', 'inherit'] }),
  )
  return Promise.all(
    procs.map(
      (p) =>
        new Promise<number>((resolve) => {
          let out = ''
          p.stdout.on('data', (d) => (out += d))
          p.on('exit', () => resolve(Number(out.trim()) || 0))
        }),
    ),
  ).then((sent) => sent.reduce((a, b) => a + b, 0))
}

interface Row {
  mode: string
  size: number
  read: number
  secs: number
  sent: number
  sentSecs: number
  drops: number
  batches: number
}

function format(r: Row): string {
  const rate = (n: number, s: number) => Math.round(n / s).toLocaleString('en-US').padStart(9)
  return (
    `${r.mode.padEnd(5)} | ${String(r.size + 48).padStart(5)} B | ${rate(r.read, r.secs)} | ${rate(r.sent, r.sentSecs)} | ` +
    `${String(r.drops).padStart(12)} | ${(r.read / Math.max(1, r.batches)).toFixed(1).padStart(10)} | ${r.read.toLocaleString('en-US')} in ${r.secs.toFixed(2)} s`
  )
}

/**
 * drain: the senders fill pilot0's queue (txqueuelen raised to hold them all)
 * before reading starts, then the reader empties it alone: what the reader
 * and JS can take when they have the CPU. flood: senders and reader run at
 * once for `seconds`, sharing the machine's cores.
 */
async function runOne(mode: 'drain' | 'flood', size: number): Promise<Row> {
  const t = await openTunInterface({ name: 'pilot0', address: NODE })
  let read = 0
  let batches = 0
  let first = 0
  let last = 0
  const onPackets = (b: { count: number }) => {
    const now = performance.now()
    if (read === 0) first = now
    last = now
    read += b.count
    batches++
  }
  try {
    const dropsBefore = txDropped()
    let sent: number
    let sentSecs: number
    if (mode === 'drain') {
      const count = 200_000
      execFileSync('ip', ['link', 'set', 'dev', 'pilot0', 'txqueuelen', String(count + 1000)])
      const s0 = performance.now()
      sent = await runSenders(senders, size, Math.ceil(count / senders), 60_000)
      sentSecs = (performance.now() - s0) / 1000
      t.device.onPackets(onPackets)
      const queued = sent - (txDropped() - dropsBefore)
      const deadline = performance.now() + 30_000
      while (read < queued && performance.now() < deadline) await new Promise((r) => setTimeout(r, 20))
    } else {
      t.device.onPackets(onPackets)
      const s0 = performance.now()
      sent = await runSenders(senders, size, Number.MAX_SAFE_INTEGER, seconds * 1000)
      sentSecs = (performance.now() - s0) / 1000
      await new Promise((r) => setTimeout(r, 200)) // let the reader finish the queue
    }
    const drops = txDropped() - dropsBefore
    return { mode, size, read, secs: (last - first) / 1000, sent, sentSecs, drops, batches }
  } finally {
    await t.close()
  }
}

async function child(): Promise<void> {
  console.log(`TUN read into JS: batch 64, MTU 65520, ${senders} sender process(es); flood rows run ${seconds} s`)
  console.log('mode  |  packet |    read/s |    sent/s | kernel drops | pkts/batch | total read')
  for (const mode of ['drain', 'flood'] as const) {
    for (const size of [16, 1232]) console.log(format(await runOne(mode, size)))
  }
}

function parent(): void {
  if (process.getuid?.() !== 0) {
    console.error('bench:tun needs root: it creates a network namespace and a TUN inside it')
    process.exit(1)
  }
  const ns = `pilot-bench-${randomBytes(4).toString('hex')}`
  execFileSync('ip', ['netns', 'add', ns])
  try {
    execFileSync('ip', ['netns', 'exec', ns, 'ip', 'link', 'set', 'lo', 'up'])
    const self = fileURLToPath(import.meta.url)
    const r = spawnSync('ip', ['netns', 'exec', ns, process.execPath, self, String(seconds), String(senders)], {
      stdio: 'inherit',
      env: { ...process.env, PILOT_TUN_BENCH_CHILD: ns },
    })
    process.exitCode = r.status ?? 1
  } finally {
    spawnSync('ip', ['netns', 'del', ns])
  }
}

const childOf = process.env['PILOT_TUN_BENCH_CHILD']
if (childOf !== undefined) {
  // Only inside the namespace the parent made: never create pilot0 on the host.
  const here = spawnSync('ip', ['netns', 'identify', String(process.pid)], { encoding: 'utf8' }).stdout.trim()
  if (here !== childOf) throw new Error(`bench:tun child outside its namespace (${here || 'host'})`)
  await child()
}
else parent()
