/**
 * `.pilot` names for ordinary programs in a test bed namespace:
 * /etc/netns/<namespace>/resolv.conf, which `ip netns exec` mounts over
 * /etc/resolv.conf for programs in that namespace only. Only test bed
 * namespaces (prefix ptb-) get one; `removeAll()` removes what was written
 * (and /etc/netns when it was created here and is empty again), and
 * `removeStaleResolvConfs()` removes the leftovers of killed runs.
 */
import { existsSync, mkdirSync, readdirSync, rmSync, rmdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { Topology } from './topology.js'

export const ETC_NETNS = '/etc/netns'

/** Removes /etc/netns/ptb-* directories whose namespace is gone (left by a killed run). */
export function removeStaleResolvConfs(): string[] {
  if (!existsSync(ETC_NETNS)) return []
  const removed: string[] = []
  for (const name of readdirSync(ETC_NETNS)) {
    if (!name.startsWith('ptb-') || existsSync(join('/run/netns', name))) continue
    rmSync(join(ETC_NETNS, name), { recursive: true, force: true })
    removed.push(name)
  }
  return removed
}

export interface ResolvConfOptions {
  /** The first line, after `# ` (default: `written by pilot-tun netns tests for <namespace>`). */
  comment?: string
  /** `options attempts:N` (default 1). */
  attempts?: number
}

/** The resolv.conf files one harness wrote. */
export class ResolvConfs {
  private readonly dirs = new Set<string>()
  private createdEtcNetns = false

  /** Writes /etc/netns/<node's namespace>/resolv.conf naming `nameserver`; returns the file's path. */
  write(topo: Topology, node: string, nameserver: string, opts: ResolvConfOptions = {}): string {
    const ns = topo.namespace(node)
    if (!ns.startsWith('ptb-')) throw new Error(`refusing to write resolv.conf for ${ns}: not a test bed namespace`)
    if (!existsSync(ETC_NETNS)) {
      mkdirSync(ETC_NETNS, { recursive: true })
      this.createdEtcNetns = true
    }
    const dir = join(ETC_NETNS, ns)
    mkdirSync(dir, { recursive: true })
    this.dirs.add(dir)
    const file = join(dir, 'resolv.conf')
    const comment = opts.comment ?? `written by pilot-tun netns tests for ${ns}`
    writeFileSync(file, `# ${comment}\nnameserver ${nameserver}\noptions timeout:2 attempts:${opts.attempts ?? 1}\n`)
    return file
  }

  /** Removes the files written here (and /etc/netns when this created it and it is empty); returns the removed files. Idempotent. */
  removeAll(): string[] {
    const removed = [...this.dirs].map((dir) => {
      rmSync(dir, { recursive: true, force: true })
      return join(dir, 'resolv.conf')
    })
    this.dirs.clear()
    if (this.createdEtcNetns) {
      try {
        rmdirSync(ETC_NETNS)
      } catch {
        // not empty: someone else uses it now
      }
      this.createdEtcNetns = false
    }
    return removed
  }
}
