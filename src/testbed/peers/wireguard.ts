/**
 * A wireguard-go tunnel between two public nodes of the test bed, for the
 * benchmark's side-by-side rows (Debian packages `wireguard-go`, the
 * userspace implementation in Go, and `wireguard-tools` for `wg`).
 *
 *   client 198.18.k.2 ── hub ── server 198.18.m.2          (UDP :51820 each)
 *   ptb-<id>-wg0 10.99.12.1/24         ptb-<id>-wg1 10.99.12.2/24   (MTU 1420)
 *
 * Keys come from `wg genkey` / `wg pubkey` at run time (files mode 0600 in a
 * temp dir). Each end runs `wireguard-go -f <dev>` in its namespace (its TUN
 * is created there), then `wg set` gives it its key, port and the other end
 * as its one peer (endpoint = the other's hub address, allowed-ips = the
 * other's tunnel address). wireguard-go's control socket lives in
 * /var/run/wireguard/<dev>.sock, which every namespace shares, so the
 * interface names carry the test bed's id.
 *
 * Kernel WireGuard is not used even where the kernel has it: the comparison
 * is with the userspace program a user would otherwise run next to pilot-tun.
 */
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { sleep, waitUntil } from '../ns-process.js'
import { run } from '../run.js'
import type { Topology } from '../topology.js'
import {
  PeerProcesses,
  PeerUnavailable,
  deleteLink,
  tunnelSides,
  requireBinaries,
  versionLine,
  waitReachable,
  type PeerEnds,
  type PeerTunnel,
} from './common.js'

export interface WireguardOptions {
  /** The /24 of the tunnel addresses, as its first three octets (default "10.99.12"): client .1, server .2. */
  subnet?: string
  /** UDP port of both ends (default 51820). */
  port?: number
  /** TUN MTU (default 1420, wireguard-go's and wg-quick's default for IPv4 underlays). */
  mtu?: number
  /** How long the first ping through the tunnel may take (default 10 s). */
  readyTimeoutMs?: number
}

export const WIREGUARD_BINARIES = { 'wireguard-go': 'wireguard-go', wg: 'wireguard-tools' }
const UAPI_DIR = '/var/run/wireguard'

async function wgKeys(dir: string, name: string): Promise<{ keyFile: string; pub: string }> {
  const key = (await run(['wg', 'genkey'])).stdout.trim()
  const pub = (await run(['wg', 'pubkey'], { input: `${key}\n` })).stdout.trim()
  const keyFile = join(dir, `${name}.key`)
  writeFileSync(keyFile, `${key}\n`, { mode: 0o600 })
  return { keyFile, pub }
}

/**
 * Starts the tunnel and resolves once the client's ping reaches the server
 * through it. Throws PeerUnavailable when a program is missing or no TUN can
 * be made; anything started is stopped before a failure is thrown.
 */
export async function startWireguard(topo: Topology, ends: PeerEnds, opts: WireguardOptions = {}): Promise<PeerTunnel> {
  requireBinaries('wireguard-go', WIREGUARD_BINARIES)
  const subnet = opts.subnet ?? '10.99.12'
  const port = opts.port ?? 51820
  const mtu = opts.mtu ?? 1420
  const side = tunnelSides(topo, ends, subnet, 'wg')
  const dir = mkdtempSync(join(tmpdir(), 'pilot-bench-wg-'))
  const procs = new PeerProcesses(topo)
  let closed = false
  const close = async (): Promise<void> => {
    if (closed) return
    closed = true
    await procs.stop()
    for (const s of Object.values(side)) {
      await deleteLink(topo, s.node, s.dev)
      rmSync(join(UAPI_DIR, `${s.dev}.sock`), { force: true })
    }
    rmSync(dir, { recursive: true, force: true })
  }
  try {
    const version = await versionLine(['wireguard-go', '--version'])
    const keys = { client: await wgKeys(dir, 'client'), server: await wgKeys(dir, 'server') }
    const started = (['client', 'server'] as const).map((k) => {
      const s = side[k]
      rmSync(join(UAPI_DIR, `${s.dev}.sock`), { force: true }) // a stale socket of a killed run
      // -f: stay in the foreground (our child, stopped by PID); the variable also drops its "use the kernel module" banner.
      return procs.spawn(`wireguard-go ${s.node}`, s.node, ['wireguard-go', '-f', s.dev], { WG_PROCESS_FOREGROUND: '1', LOG_LEVEL: 'error' })
    })
    for (const [i, k] of (['client', 'server'] as const).entries()) {
      const s = side[k]
      const p = started[i]!
      // Until the socket is there, or the program has exited (no TUN here: it says why and exits 1).
      await waitUntil(`wireguard-go's control socket for ${s.dev}`, async () => existsSync(join(UAPI_DIR, `${s.dev}.sock`)) || !p.running, (v) => v, { timeoutMs: 10_000, intervalMs: 50 })
      if (!p.running) {
        await sleep(100) // its last words
        throw new PeerUnavailable(`wireguard-go could not start in ${s.node}: ${p.tail(3).replace(/\s+/g, ' ')}`)
      }
    }
    for (const k of ['client', 'server'] as const) {
      const me = side[k]
      const other = side[k === 'client' ? 'server' : 'client']
      const otherKey = keys[k === 'client' ? 'server' : 'client']
      await topo.exec(me.node, [
        'wg', 'set', me.dev, 'private-key', keys[k].keyFile, 'listen-port', String(port),
        'peer', otherKey.pub, 'endpoint', `${other.hub}:${port}`, 'allowed-ips', `${other.address}/32`,
      ])
      await topo.exec(me.node, ['ip', 'address', 'add', `${me.address}/24`, 'dev', me.dev])
      await topo.exec(me.node, ['ip', 'link', 'set', 'dev', me.dev, 'mtu', String(mtu), 'up'])
    }
    await waitReachable(topo, side.client.node, side.server.address, opts.readyTimeoutMs ?? 10_000, () => started.every((p) => p.running))
    return {
      kind: 'wireguard-go',
      version,
      mtu,
      clientAddress: side.client.address,
      serverAddress: side.server.address,
      interfaces: { client: side.client.dev, server: side.server.dev },
      pids: () => ({ client: started[0]!.pid, server: started[1]!.pid }),
      logs: (lines) => procs.logs(lines),
      close,
    }
  } catch (err) {
    const logs = procs.logs(10)
    await close()
    if (err instanceof PeerUnavailable) throw err
    throw new Error(`wireguard-go tunnel set-up failed: ${err instanceof Error ? err.message : String(err)}\n${logs}`)
  }
}
