/**
 * Bench-only preload for the set-up figure (`node --import ./dist/bench/setup-trace-hooks.js`,
 * e.g. PILOT_BENCH_NODE_ARGS="--import $PWD/dist/bench/setup-trace-hooks.js" with
 * PILOT_BENCH_SETUP_ONLY=1): records wall-clock stamps (ms, µs precision) of the steps a
 * connection to a never-contacted peer goes through inside a daemon — TUN SYN held, openStream,
 * registry requests, tunnel set-up, key frames and PILS in and out, the Pilot SYN and its answer,
 * the local TCP connects — and writes them to $PILOT_TRACE_DIR/setup-trace-<pid>.json at exit
 * with the process's argv, so the daemons' timelines can be merged (clocks are one machine's).
 * `node dist/bench/setup-trace-report.js DIR` prints the merged timeline. Patches prototypes;
 * never loaded by the daemon itself.
 */
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { UdpBind } from '../src/tunnel/bind.js'
import { Tunnel } from '../src/tunnel/tunnel.js'
import { PathManager } from '../src/tunnel/paths.js'
import { KeyExchange } from '../src/tunnel/key-exchange.js'
import { RegistryClient } from '../src/registry/client.js'
import { SessionDriver } from '../src/daemon/session-driver.js'
import { NodeStreams } from '../src/daemon/node-streams.js'
import { TcpBridge } from '../src/tun/bridge-tcp.js'
import { NativeTunDevice } from '../src/tun/device.js'
import { TunWriter } from '../src/tun/tun-writer.js'

const MAX = 100_000
/** [wall ms, label, this process's CPU ms (user + system) so far]: a wall gap without CPU is waiting. */
const events: [number, string, number][] = []
const origin = performance.timeOrigin
function mark(what: string): void {
  if (events.length < MAX) {
    const u = process.cpuUsage()
    events.push([origin + performance.now(), what, (u.user + u.system) / 1000])
  }
}

/* eslint-disable @typescript-eslint/no-explicit-any */
type Describe = (self: any, args: any[]) => string | null
function wrap(proto: any, name: string, label: string, describe?: Describe, settle = false): void {
  const f = proto[name]
  if (typeof f !== 'function') throw new Error(`setup-trace-hooks: no method ${name} (${label})`)
  proto[name] = function (this: unknown, ...args: unknown[]) {
    const d = describe === undefined ? '' : describe(this, args)
    if (d === null) return f.apply(this, args)
    mark(`${label}${d === '' ? '' : ' ' + d}`)
    const r = f.apply(this, args)
    if (settle && r instanceof Promise) {
      r.then(
        () => mark(`${label} settled${d === '' ? '' : ' ' + d}`),
        () => mark(`${label} failed${d === '' ? '' : ' ' + d}`),
      )
    }
    return r
  }
}

const MAGIC: Record<number, string> = { 0x50494c41: 'PILA', 0x50494c53: 'PILS', 0x50494c50: 'PILP', 0x50494c4b: 'PILK' }
function kindOf(b: Uint8Array): string {
  if (b.length < 4) return 'short'
  const m = ((b[0]! << 24) | (b[1]! << 16) | (b[2]! << 8) | b[3]!) >>> 0
  return MAGIC[m] ?? `beacon/${b[0]}`
}
function firstPart(parts: Uint8Array | readonly Uint8Array[]): Uint8Array {
  return Array.isArray(parts) ? (parts as Uint8Array[])[0]! : (parts as Uint8Array)
}

// --- UDP in and out, by frame kind (PILS only while a set-up is recent: the data path is noisy) ---
let pilsBudget = 0
wrap(UdpBind.prototype, 'send', 'udp out', (_s, [parts, host, port]) => {
  const k = kindOf(firstPart(parts))
  if (k === 'PILS' && pilsBudget-- <= 0) return null
  return `${k} -> ${host}:${port}`
})
const on0 = (UdpBind.prototype as any).onDatagram
;(UdpBind.prototype as any).onDatagram = function (this: unknown, h: (...a: unknown[]) => void) {
  on0.call(this, (data: Buffer, host: string, port: number) => {
    const k = kindOf(data)
    if (k !== 'PILS' || pilsBudget-- > 0) mark(`udp in ${k} <- ${host}:${port}`)
    h(data, host, port)
  })
}

// --- TUN bridge (TCP) ---
wrap(TcpBridge.prototype, 'startDial', 'tcp SYN held, dial', (_s, [peer, port]) => {
  pilsBudget = 40
  return `node ${peer.node} port ${port}`
})
wrap(TcpBridge.prototype, 'onDialConnected', 'tcp dial connected: SYN reflected')
wrap(TcpBridge.prototype, 'onDialFailed', 'tcp dial failed')
wrap(TcpBridge.prototype, 'onAccept', 'tcp listener accept (kernel handshake done)')
wrap(TcpBridge.prototype, 'onIncoming', 'tcp inbound Pilot SYN -> local connect', () => {
  pilsBudget = 40
  return ''
})
wrap(TcpBridge.prototype, 'splice', 'tcp splice')

// --- daemon ---
wrap(NodeStreams.prototype, 'openStream', 'openStream', (_s, [node, port]) => `node ${typeof node === 'number' ? node : node.node} port ${port}`, true)
wrap(SessionDriver.prototype, 'connect', 'session connect (SYN queued)')
wrap(SessionDriver.prototype, 'onIncoming', 'session incoming SYN')
wrap(RegistryClient.prototype, 'lookup', 'registry lookup', (_s, [n]) => `node ${n}`, true)
wrap(RegistryClient.prototype, 'resolve', 'registry resolve', (_s, [, n]) => `node ${n}`, true)

// --- tunnel ---
wrap(Tunnel.prototype, 'start', 'tunnel start', (s) => `self ${s.nodeId}`)
wrap(Tunnel.prototype, 'startSetup', 'tunnel startSetup', (_s, [peer]) => `node ${peer.nodeId}`)
wrap(Tunnel.prototype, 'acceptPila', 'tunnel acceptPila', (_s, [sender]) => `node ${sender}`)
wrap(Tunnel.prototype, 'flush', 'tunnel flush queue', (s, [peer]) => (s.queue.has(peer.nodeId) ? `node ${peer.nodeId} (${s.queue.size(peer.nodeId)})` : null))
wrap(Tunnel.prototype, 'send', 'tunnel send (queued: no keys)', (s, [node]) => {
  const p = s.peerTable.get(node)
  return p === undefined || !p.ready ? `node ${node}` : null
})
wrap(PathManager.prototype, 'onResolved', 'paths resolved', (_s, [peer, ep]) => `node ${peer.nodeId} ${ep === null ? 'null' : `${ep.host}:${ep.port}`}`)
wrap(KeyExchange.prototype, 'adoptPeerKey', 'keys adoptPeerKey', (_s, [peer]) => `node ${peer.nodeId}`)
wrap(PathManager.prototype, 'noteDirectPila', 'paths noteDirectPila', (_s, [peer]) => `node ${peer.nodeId}`)
wrap(Tunnel.prototype, 'sendKeyFrame', 'tunnel sendKeyFrame', (_s, [peer]) => `node ${peer.nodeId}`)
// TUN and the session driver only while a set-up is recent (pilsBudget > 0)
wrap(NativeTunDevice.prototype, 'deliver', 'tun read batch', (_s, [, count]) => (pilsBudget > 0 ? `(${count})` : null))
wrap(TunWriter.prototype, 'flush', 'tun write', () => (pilsBudget > 0 ? '' : null))
wrap(SessionDriver.prototype, 'flush', 'session flush', () => (pilsBudget > 0 ? '' : null))
wrap(KeyExchange.prototype, 'receivePila', 'keys receivePila', (_s, [frame]) => `from ${frame.readUInt32BE(4)}`)
wrap(KeyExchange.prototype, 'onKeyFetched', 'keys registry key fetched', (_s, [n]) => `node ${n}`)

process.on('exit', () => {
  const dir = process.env.PILOT_TRACE_DIR ?? '/tmp'
  try {
    writeFileSync(join(dir, `setup-trace-${process.pid}.json`), JSON.stringify({ argv: process.argv, events }))
  } catch {
    /* best effort */
  }
})
