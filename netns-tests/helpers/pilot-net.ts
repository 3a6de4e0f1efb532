/**
 * Real `pilot-tun` processes inside a test bed (src/testbed/) for the NAT
 * matrix and the faults test: a PilotBed (src/testbed/pilot-bed.ts) whose
 * daemons run `up --no-tun --auto-accept` with hostname node-<name>; with
 * `split`, the registry and the beacon are two processes, so one can stop
 * without the other. The state dir survives a restart (same address, same
 * trust).
 *
 * Cleanup: `close()` SIGKILLs every process this object started, by PID, and
 * removes the temp dir; the Topology's own destroy() kills anything left and
 * deletes the namespaces. Call both in `finally`.
 */
import { PilotBed } from '../../src/testbed/pilot-bed.js'
import type { Topology } from '../../src/testbed/topology.js'

export interface NetOptions {
  /** Registry and beacon as two processes (faults test) instead of one `rendezvous`. */
  split?: boolean
  /** Registry heartbeat of every daemon, seconds (hidden `--heartbeat-interval`). */
  heartbeatS?: number
}

export class PilotNet extends PilotBed {
  constructor(topo: Topology, opts: NetOptions = {}) {
    super(topo, {
      tmpPrefix: 'pilot-netns-',
      split: opts.split === true,
      daemon: { tun: false, autoAccept: true, hostname: (n) => `node-${n}`, heartbeatS: opts.heartbeatS ?? 1 },
    })
  }
}

/** Direct path kinds: a hole-punched path is direct too. */
export function isDirect(path: string | undefined): boolean {
  return path === 'direct' || path === 'punched'
}
