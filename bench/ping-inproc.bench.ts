/**
 * In-process ping latency: two daemons on loopback UDP in one process.
 * (1) An ICMPv6 echo request injected into a's MemoryTun until a's bridge
 * writes the echo reply (bridge → control ping → tunnel → b → pong → back);
 * (2) b's control ping to a and its pong (daemon path only). Timed with
 * performance.now; both daemons share one event loop, so this shows the
 * JavaScript and scheduling cost of a lone packet, not the kernel's or a
 * second process's wake-up. Prints figures; never a test. No root needed.
 *
 *   node dist/bench/ping-inproc.bench.js      (PINGS=500, GAP_MS=5 between pings)
 *   TRACE=1 node dist/bench/ping-inproc.bench.js   (also a few hop-by-hop timelines)
 */
import { World } from '../test/daemon/world.js'
import { waitFor } from '../test/daemon/helpers.js'
import type { Daemon } from '../src/daemon/daemon.js'
import { UdpBind } from '../src/tunnel/bind.js'
import { SessionDriver } from '../src/daemon/session-driver.js'
import { MemoryTun } from '../src/tun/testing/memory-tun.js'
import { DEFAULT_OVERLAY_PREFIX, mapPilotToIpv6 } from '../src/protocol/ipv6-mapping.js'
import { ICMPV6_ECHO_REQUEST, ICMPV6_HEADROOM, buildIcmpv6Echo } from '../src/tun/packets/icmpv6.js'

// TRACE=1: a timeline of one ping's hops (monkey-patched prototypes, bench only).
const TRACE = process.env.TRACE === '1'
let trace: [string, number][] | null = null
function mark(what: string): void {
  if (trace !== null) trace.push([what, performance.now()])
}
if (TRACE) {
  const P = UdpBind.prototype as any
  const send0 = P.send
  P.send = function (this: any, parts: any, host: string, port: number) {
    mark(`send ${this.local.port}`)
    send0.call(this, parts, host, port)
    mark(`sent ${this.local.port}`)
  }
  const on0 = P.onDatagram
  P.onDatagram = function (this: any, h: any) {
    const self = this
    on0.call(this, (d: any, host: string, port: number) => {
      mark(`recv ${self.local.port}`)
      h(d, host, port)
    })
  }
  const D = SessionDriver.prototype as any
  const fl0 = D.flush
  D.flush = function (this: any) {
    mark(`flush ${this.localNode}`)
    fl0.call(this)
    mark(`flushed ${this.localNode}`)
  }
  const rc0 = D.receive
  D.receive = function (this: any, p: any, h: any) {
    mark(`receive ${this.localNode}`)
    rc0.call(this, p, h)
  }
}

const PINGS = Number(process.env.PINGS ?? 500)
const GAP_MS = Number(process.env.GAP_MS ?? 5)

function hex(n: number): string {
  return n.toString(16).toUpperCase().padStart(4, '0')
}

async function trustPair(a: Daemon, b: Daemon): Promise<void> {
  await a.trustRequest(`0:0000.${hex(b.nodeId >>> 16)}.${hex(b.nodeId & 0xffff)}`, 'bench')
  await waitFor(async () => (await a.trustList()).trusted.some((t) => t.node_id === b.nodeId), 'a trusts b', 8_000)
  await waitFor(async () => (await b.trustList()).trusted.some((t) => t.node_id === a.nodeId), 'b trusts a', 8_000)
}

function pct(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!
}

async function main(): Promise<void> {
  const w = await World.create({ beacon: true })
  try {
    const tun = new MemoryTun({ name: 'pt-lat0' })
    const a = await w.daemon('a', { tun: { device: tun, listenHost: '::1', dns: false } })
    const b = await w.daemon('b', { autoAccept: true })
    await trustPair(a, b)
    let resolve: (() => void) | null = null
    // b pings a (a's pongs belong to its TUN bridge: one pong handler per daemon).
    b.onPong(() => resolve?.())
    const once = (): Promise<number> =>
      new Promise<number>((r) => {
        const t0 = performance.now()
        resolve = () => r(performance.now() - t0)
        b.sendPing(a.nodeId)
      })
    for (let i = 0; i < 200; i++) await once() // warm-up (JIT, path)
    const times: number[] = []
    for (let i = 0; i < PINGS; i++) {
      await new Promise((r) => setTimeout(r, GAP_MS))
      times.push(await once())
    }
    if (TRACE) {
      for (let k = 0; k < 3; k++) {
        await new Promise((r) => setTimeout(r, GAP_MS))
        trace = []
        mark('sendPing')
        await once()
        mark('pong')
        const t0 = trace[0]![1]
        console.log(trace.map(([w, t]) => `${(t - t0).toFixed(3).padStart(7)} ${w}`).join('\n') + '\n')
        trace = null
      }
    }
    const ms = (x: number): string => x.toFixed(3)
    const report = (what: string, t: number[]): void => {
      t.sort((x, y) => x - y)
      console.log(`${what}, ${t.length} pings ${GAP_MS} ms apart: min ${ms(t[0]!)} median ${ms(pct(t, 0.5))} p90 ${ms(pct(t, 0.9))} p99 ${ms(pct(t, 0.99))} ms`)
    }
    // The TUN leg: an ICMPv6 echo request injected into a's MemoryTun, until the reply is written.
    const A = mapPilotToIpv6(a.address, DEFAULT_OVERLAY_PREFIX)
    const B = mapPilotToIpv6(b.address, DEFAULT_OVERLAY_PREFIX)
    let seq = 0
    let onReply: (() => void) | null = null
    tun.onWrite((p) => {
      if (p[40] === 129) onReply?.()
    })
    const echo = (): Promise<number> =>
      new Promise<number>((r) => {
        const pkt = Buffer.alloc(ICMPV6_HEADROOM + 56)
        const n = buildIcmpv6Echo(pkt, 0, ICMPV6_ECHO_REQUEST, A, 0, B, 0, 0x4242, seq++ & 0xffff, 56)
        const t0 = performance.now()
        onReply = () => r(performance.now() - t0)
        tun.inject(pkt.subarray(0, n))
      })
    {
      // The first echo also opens the path; say why when it never comes back.
      const first = echo()
      const timeout = setTimeout(() => {
        console.log('no echo reply in 2 s; bridge stats:', JSON.stringify(a.tun!.stats().bridge))
        process.exit(1)
      }, 2000)
      await first
      clearTimeout(timeout)
    }
    for (let i = 0; i < 200; i++) await echo()
    const tunTimes: number[] = []
    for (let i = 0; i < PINGS; i++) {
      await new Promise((r) => setTimeout(r, GAP_MS))
      tunTimes.push(await echo())
    }
    if (TRACE) {
      for (let k = 0; k < 2; k++) {
        await new Promise((r) => setTimeout(r, GAP_MS))
        trace = []
        mark('inject')
        await echo()
        mark('reply written')
        const t0 = trace[0]![1]
        console.log(trace.map(([w, t]) => `${(t - t0).toFixed(3).padStart(7)} ${w}`).join('\n') + '\n')
        trace = null
      }
    }
    report('in-process MemoryTun echo → reply', tunTimes)
    times.sort((x, y) => x - y)
    console.log(`in-process daemon ping, ${PINGS} pings ${GAP_MS} ms apart: min ${ms(times[0]!)} median ${ms(pct(times, 0.5))} p90 ${ms(pct(times, 0.9))} p99 ${ms(pct(times, 0.99))} ms`)
  } finally {
    await w.close()
  }
}

await main()
