/**
 * A Pilot overlay on the namespace test bed for the loss/load tests and the
 * netns benchmark: a PilotBed (pilot-bed.ts) whose daemons run with the TUN
 * front door unless `tun: false`, --auto-accept, hostname node-<name>, and a
 * fresh state dir unless `keepState`. Also runs the traffic tools of blast.ts
 * inside namespaces.
 *
 * Cleanup: `close()` SIGTERMs the daemons (so a --cpu-prof profile is
 * written), SIGKILLs whatever is left by PID and removes the temp dir; the
 * Topology's destroy() then deletes the namespaces. Call both in `finally`.
 */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import type { NsProcess } from './ns-process.js'
import { PilotBed, repoRoot } from './pilot-bed.js'
import type { Topology } from './topology.js'

export const blastScript = join(repoRoot, 'dist', 'src', 'testbed', 'blast.js')

/** Resident set size of a process in bytes (VmRSS of /proc/<pid>/status), or null when it is gone. */
export function rssBytes(pid: number): number | null {
  try {
    const m = readFileSync(`/proc/${pid}/status`, 'utf8').match(/^VmRSS:\s+(\d+)\s+kB/m)
    return m === null ? null : Number(m[1]) * 1024
  } catch {
    return null
  }
}

/** Samples a process's RSS every `intervalMs` until stopped; `stop()` returns the peak. */
export function sampleRss(pid: number, intervalMs = 50): { stop(): number } {
  let peak = rssBytes(pid) ?? 0
  const t = setInterval(() => {
    peak = Math.max(peak, rssBytes(pid) ?? 0)
  }, intervalMs)
  return {
    stop: () => {
      clearInterval(t)
      return Math.max(peak, rssBytes(pid) ?? 0)
    },
  }
}

export interface OverlayOptions {
  /** Start daemons with the TUN front door (default true); false passes --no-tun. */
  tun?: boolean
  heartbeatS?: number
}

export class Overlay extends PilotBed {
  constructor(topo: Topology, opts: OverlayOptions = {}) {
    super(topo, {
      tmpPrefix: 'pilot-overlay-',
      stopDaemonsFirst: true,
      daemon: { tun: opts.tun !== false, heartbeatS: opts.heartbeatS ?? 1, autoAccept: true, hostname: (n) => `node-${n}`, keepState: false },
    })
  }

  /** Starts the blast/echo servers in `name`'s namespace; resolves when they listen. */
  async serveTraffic(name: string, blastPort = 7001, echoPort = 7002): Promise<NsProcess> {
    const p = this.spawnNode(`traffic server ${name}`, name, [blastScript, 'serve', '--host', '::', '--blast-port', String(blastPort), '--echo-port', String(echoPort)])
    await p.waitFor(/"ready":true/, 10_000)
    return p
  }

  /** Runs a blast.js client in `name`'s namespace and parses its JSON line. `onLine` sees every earlier line. */
  async traffic<T>(name: string, args: string[], timeoutMs: number, onLine?: (line: unknown) => void): Promise<T> {
    const p = this.spawnNode(`traffic client ${name}`, name, [blastScript, ...args])
    let seen = 0
    const lines = (): string[] => p.output.split('\n').filter((l) => l.startsWith('{'))
    const poll = setInterval(() => {
      const ls = lines()
      for (; seen < ls.length; seen++) onLine?.(JSON.parse(ls[seen]!))
    }, 20)
    const timer = setTimeout(() => p.kill(), timeoutMs)
    const code = await p.exited
    clearTimeout(timer)
    clearInterval(poll)
    const ls = lines()
    for (; seen < ls.length - 1; seen++) onLine?.(JSON.parse(ls[seen]!))
    const last = ls[ls.length - 1]
    if (code !== 0 || last === undefined) throw new Error(`blast.js ${args.join(' ')} in ${name} failed (exit ${code}):\n${p.tail()}`)
    return JSON.parse(last) as T
  }

  /** Failure messages show the daemons and the rendezvous. */
  protected override logNames(): string[] {
    return ['rendezvous', ...this.daemons.keys()]
  }
}
