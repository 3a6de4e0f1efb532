/**
 * Bench-only preload (`node --import ./dist/bench/trace-hooks.js ...`): records
 * wall-clock microsecond stamps of a packet's hops inside a daemon — TUN batch
 * delivered to JS, session-driver flush, UDP send, UDP datagram received, TUN
 * write — and writes them to $PILOT_TRACE_DIR/trace-<pid>.json at exit, so two
 * daemons' timelines can be laid side by side (bench/rtt.bench.ts with
 * PILOT_RTT_TRACE=1). Patches prototypes; never loaded by the daemon itself.
 */
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { NativeTunDevice } from '../src/tun/device.js'
import { TunWriter } from '../src/tun/tun-writer.js'
import { UdpBind } from '../src/tunnel/bind.js'
import { SendBatch } from '../src/tunnel/send-batch.js'
import { SessionDriver } from '../src/daemon/session-driver.js'

const MAX = 200_000
const events: [string, number][] = []
const origin = performance.timeOrigin
function mark(what: string): void {
  if (events.length < MAX) events.push([what, origin + performance.now()])
}

/* eslint-disable @typescript-eslint/no-explicit-any */
function wrap(proto: any, name: string, before: string, after: string | null): void {
  const f = proto[name]
  proto[name] = function (this: unknown, ...args: unknown[]) {
    mark(before)
    const r = f.apply(this, args)
    if (after !== null) mark(after)
    return r
  }
}
wrap(NativeTunDevice.prototype, 'deliver', 'tun-batch', 'tun-batch-done')
wrap(TunWriter.prototype, 'flush', 'tun-write', null)
// A datagram is queued by send() or sealed into reserve()'s room, and leaves with the batch's flush.
wrap(UdpBind.prototype, 'send', 'udp-send', null)
wrap(UdpBind.prototype, 'reserve', 'udp-send', null)
wrap(SendBatch.prototype, 'flush', 'udp-flush', 'udp-sent')
wrap(SessionDriver.prototype, 'flush', 'flush', 'flushed')
const on0 = (UdpBind.prototype as any).onDatagram
;(UdpBind.prototype as any).onDatagram = function (this: unknown, h: (...a: unknown[]) => void) {
  on0.call(this, (...a: unknown[]) => {
    mark('udp-recv')
    h(...a)
  })
}

process.on('exit', () => {
  const dir = process.env.PILOT_TRACE_DIR ?? '/tmp'
  try {
    writeFileSync(join(dir, `trace-${process.pid}.json`), JSON.stringify(events))
  } catch {
    /* best effort */
  }
})
