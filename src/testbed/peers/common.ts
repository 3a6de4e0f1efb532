/**
 * What the other overlays' set-ups on the test bed share (wireguard.ts,
 * nebula.ts): finding their programs, their processes inside the namespaces,
 * and tearing them down. The benchmark compares pilot-tun with them on the
 * same two namespaces in the same run (issue 12).
 *
 * A peer tunnel joins two public nodes of a Topology, the `client` (where the
 * traffic tools connect from) and the `server` (where they listen), each end
 * with an IPv4 address of its own /24 on a TUN interface run by the peer's
 * userspace program. Keys and certificates are made at run time in a temp dir
 * that `close()` removes with the processes and interfaces.
 */
import { accessSync, constants as fsConstants } from 'node:fs'
import { delimiter, join } from 'node:path'
import { NsProcess, sleep } from '../ns-process.js'
import { run } from '../run.js'
import type { Topology } from '../topology.js'

export type PeerKind = 'wireguard-go' | 'nebula'
export const PEER_KINDS: readonly PeerKind[] = ['wireguard-go', 'nebula']

/** The two nodes a peer tunnel joins (both public nodes of the topology). */
export interface PeerEnds {
  client: string
  server: string
}

export interface PeerTunnel {
  readonly kind: PeerKind
  /** The program's own version line, e.g. "wireguard-go v0.0.20220316". */
  readonly version: string
  /** The TUN interfaces' MTU. */
  readonly mtu: number
  /** Tunnel address of each end (IPv4, no prefix). */
  readonly clientAddress: string
  readonly serverAddress: string
  /** The interface name in each namespace. */
  readonly interfaces: { client: string; server: string }
  /** The userspace program's PID in each namespace (for RSS). */
  pids(): { client: number; server: number }
  /** The last lines of both programs' output, for failure messages. */
  logs(lines?: number): string
  /** Stops both programs (SIGTERM, then SIGKILL), deletes any interface left, removes the temp dir. Idempotent. */
  close(): Promise<void>
}

/** The peer cannot run here (a program is missing, no TUN): the benchmark skips its row and prints `reason`. */
export class PeerUnavailable extends Error {}

/** The absolute path of `name` on PATH (an executable file), or null. */
export function findBinary(name: string, path = process.env.PATH ?? ''): string | null {
  for (const dir of path.split(delimiter)) {
    if (dir === '') continue
    const p = join(dir, name)
    try {
      accessSync(p, fsConstants.X_OK)
      return p
    } catch {
      // not here
    }
  }
  return null
}

/** Throws PeerUnavailable naming the missing programs and the Debian package that has them. */
export function requireBinaries(kind: PeerKind, needs: Record<string, string>): void {
  const missing = Object.entries(needs).filter(([bin]) => findBinary(bin) === null)
  if (missing.length === 0) return
  const pkgs = [...new Set(missing.map(([, pkg]) => pkg))]
  throw new PeerUnavailable(`${kind}: ${missing.map(([b]) => `\`${b}\``).join(', ')} not installed (apt-get install ${pkgs.join(' ')})`)
}

/** The first non-empty line a version command prints (stdout or stderr), or "unknown". */
export async function versionLine(argv: readonly string[]): Promise<string> {
  const r = await run(argv, { allowFailure: true, timeoutMs: 5_000 }).catch(() => null)
  if (r === null) return 'unknown'
  return `${r.stdout}\n${r.stderr}`.split('\n').map((l) => l.trim()).find((l) => l !== '') ?? 'unknown'
}

/** Checks a node name and returns its hub-facing address (peers only join public nodes: no NAT in between). */
export function publicNode(topo: Topology, name: string): string {
  const n = topo.node(name)
  if (n.kind !== 'public') throw new Error(`peer tunnels join public nodes; ${name} is behind NAT`)
  return n.address
}

/** One end of a peer tunnel: its namespace, hub address, tunnel address and TUN name. */
export interface TunnelSide {
  node: string
  hub: string
  address: string
  dev: string
}

/** The two ends: client `<subnet>.1` on `ptb-<id>-<tag>0`, server `<subnet>.2` on `ptb-<id>-<tag>1`. */
export function tunnelSides(topo: Topology, ends: PeerEnds, subnet: string, tag: string): { client: TunnelSide; server: TunnelSide } {
  return {
    client: { node: ends.client, hub: publicNode(topo, ends.client), address: `${subnet}.1`, dev: `ptb-${topo.id}-${tag}0` },
    server: { node: ends.server, hub: publicNode(topo, ends.server), address: `${subnet}.2`, dev: `ptb-${topo.id}-${tag}1` },
  }
}

/** Long-running programs of one peer tunnel, stopped together. */
export class PeerProcesses {
  readonly list: NsProcess[] = []

  constructor(private readonly topo: Topology) {}

  spawn(label: string, node: string, argv: string[], env?: NodeJS.ProcessEnv): NsProcess {
    const p = new NsProcess(label, this.topo.spawn(node, argv, env === undefined ? {} : { env: { ...process.env, ...env } }))
    this.list.push(p)
    return p
  }

  logs(lines = 20): string {
    return this.list.map((p) => `----- ${p.name} (pid ${p.pid}${p.running ? '' : ', exited'}) -----\n${p.tail(lines)}`).join('\n')
  }

  /** SIGTERM, SIGKILL after `graceMs`. */
  async stop(graceMs = 3_000): Promise<void> {
    await Promise.all(this.list.map((p) => p.stop('SIGTERM', graceMs)))
  }
}

/** Deletes `dev` in `node`'s namespace if it is still there (the program normally removes its TUN when it exits). */
export async function deleteLink(topo: Topology, node: string, dev: string): Promise<void> {
  await topo.exec(node, ['ip', 'link', 'del', 'dev', dev], { allowFailure: true }).catch(() => {})
}

/** Pings `address` from `node` every 100 ms until one is answered or `timeoutMs` passes (the first packets start the handshake). */
export async function waitReachable(topo: Topology, node: string, address: string, timeoutMs: number, alive: () => boolean): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    if (await topo.reachable(node, address, 1)) return
    if (!alive()) throw new Error(`the tunnel program exited before ${address} answered from ${node}`)
    if (Date.now() > deadline) throw new Error(`${address} did not answer pings from ${node} within ${timeoutMs} ms`)
    await sleep(100)
  }
}
