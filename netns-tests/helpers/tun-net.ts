/**
 * pilot-tun with its TUN front door inside a test bed (src/testbed/) for the
 * TUN test: a PilotBed (src/testbed/pilot-bed.ts) whose daemons run `up`
 * with the TUN (each node namespace gets its own pilot0), hostname = the
 * node's name and no --auto-accept (trust is requested and approved by hand,
 * `establishTrust`); ordinary programs (curl, ping, dig, overlay-apps.js) run
 * next to them.
 *
 * `.pilot` names: `resolvConf(node, nameserver)` writes
 * /etc/netns/<node's namespace>/resolv.conf for that namespace only
 * (src/testbed/resolv-conf.ts); `close()` removes it. The constructor first
 * removes the leftovers of killed runs.
 *
 * Cleanup: `close()` SIGKILLs every process started here by PID, removes the
 * resolv.conf files and the temp dir. The Topology's destroy() then deletes
 * the namespaces.
 */
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { PilotBed, repoRoot } from '../../src/testbed/pilot-bed.js'
import { removeStaleResolvConfs } from '../../src/testbed/resolv-conf.js'
import type { Topology } from '../../src/testbed/topology.js'

export const appsScript = join(repoRoot, 'dist', 'netns-tests', 'helpers', 'overlay-apps.js')
export const NATIVE_ADDON = join(repoRoot, 'build', 'Release', 'pilot_tun_native.node')

export class TunNet extends PilotBed {
  constructor(topo: Topology) {
    super(topo, { tmpPrefix: 'pilot-tun-netns-', daemon: { tun: true, autoAccept: false } })
    removeStaleResolvConfs()
  }
}

/** Why the TUN tests cannot run here, or null. */
export function tunUnavailable(): string | null {
  if (process.platform !== 'linux') return 'the TUN front door needs Linux'
  if (!existsSync('/dev/net/tun')) return '/dev/net/tun is missing'
  if (!existsSync(NATIVE_ADDON)) return 'the TUN addon is not built (npm run build:native)'
  return null
}
