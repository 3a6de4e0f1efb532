/**
 * A Nebula tunnel between two public nodes of the test bed, for the
 * benchmark's side-by-side rows (Debian package `nebula`: `nebula` and
 * `nebula-cert`).
 *
 *   client 198.18.k.2 ── hub ── server 198.18.m.2          (UDP :4242 each)
 *   ptb-<id>-nb0 10.99.13.1/24         ptb-<id>-nb1 10.99.13.2/24   (MTU 1300)
 *
 * At run time, in a temp dir: `nebula-cert ca` makes a CA, `nebula-cert sign`
 * a certificate for each end. The server is the lighthouse; the client lists
 * it as its lighthouse, and both have the other in `static_host_map` (its hub
 * address), so no discovery is involved. The firewall allows everything
 * between the two, both ways. MTU 1300 is Nebula's default (and its example
 * config's); `punchy` is off (no NAT here). The config is written as JSON,
 * which Nebula's YAML loader reads as it is.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { NsProcess } from '../ns-process.js'
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

export interface NebulaOptions {
  /** The /24 of the tunnel addresses, as its first three octets (default "10.99.13"): client .1, server .2. */
  subnet?: string
  /** UDP port of both ends (default 4242, Nebula's). */
  port?: number
  /** TUN MTU (default 1300, Nebula's). */
  mtu?: number
  /** How long the first ping through the tunnel may take (default 10 s). */
  readyTimeoutMs?: number
}

export const NEBULA_BINARIES = { nebula: 'nebula', 'nebula-cert': 'nebula' }

const ACTIVE = /Nebula interface is active/
const NO_TUN = /failed to (?:create|open) tun|\/dev\/net\/tun|operation not permitted/i

/** Nebula's configuration of one end (a plain object; JSON is YAML). */
export function nebulaConfig(o: {
  dir: string
  name: string
  dev: string
  mtu: number
  port: number
  lighthouse: boolean
  peerAddress: string
  peerUnderlay: string
}): Record<string, unknown> {
  const any = [{ port: 'any', proto: 'any', host: 'any' }]
  return {
    pki: { ca: join(o.dir, 'ca.crt'), cert: join(o.dir, `${o.name}.crt`), key: join(o.dir, `${o.name}.key`) },
    static_host_map: { [o.peerAddress]: [`${o.peerUnderlay}:${o.port}`] },
    lighthouse: { am_lighthouse: o.lighthouse, interval: 60, hosts: o.lighthouse ? [] : [o.peerAddress] },
    listen: { host: '0.0.0.0', port: o.port },
    punchy: { punch: false },
    relay: { am_relay: false, use_relays: false },
    tun: { disabled: false, dev: o.dev, mtu: o.mtu },
    logging: { level: 'info', format: 'text' },
    firewall: { outbound: any, inbound: any },
  }
}

/**
 * Starts the tunnel and resolves once the client's ping reaches the server
 * through it. Throws PeerUnavailable when a program is missing or no TUN can
 * be made; anything started is stopped before a failure is thrown.
 */
export async function startNebula(topo: Topology, ends: PeerEnds, opts: NebulaOptions = {}): Promise<PeerTunnel> {
  requireBinaries('nebula', NEBULA_BINARIES)
  const subnet = opts.subnet ?? '10.99.13'
  const port = opts.port ?? 4242
  const mtu = opts.mtu ?? 1300
  const side = tunnelSides(topo, ends, subnet, 'nb')
  const dir = mkdtempSync(join(tmpdir(), 'pilot-bench-nebula-'))
  const procs = new PeerProcesses(topo)
  let closed = false
  const close = async (): Promise<void> => {
    if (closed) return
    closed = true
    await procs.stop()
    for (const s of Object.values(side)) await deleteLink(topo, s.node, s.dev)
    rmSync(dir, { recursive: true, force: true })
  }
  try {
    const version = `nebula ${(await versionLine(['nebula', '-version'])).replace(/^Version:\s*/i, '')}`
    await run(['nebula-cert', 'ca', '-name', `pilot-tun bench ${topo.id}`, '-duration', '24h', '-out-crt', join(dir, 'ca.crt'), '-out-key', join(dir, 'ca.key')])
    for (const k of ['client', 'server'] as const) {
      await run([
        'nebula-cert', 'sign', '-ca-crt', join(dir, 'ca.crt'), '-ca-key', join(dir, 'ca.key'), '-name', k, '-ip', `${side[k].address}/24`,
        '-out-crt', join(dir, `${k}.crt`), '-out-key', join(dir, `${k}.key`),
      ])
      const other = side[k === 'client' ? 'server' : 'client']
      const cfg = nebulaConfig({ dir, name: k, dev: side[k].dev, mtu, port, lighthouse: k === 'server', peerAddress: other.address, peerUnderlay: other.hub })
      writeFileSync(join(dir, `${k}.yml`), JSON.stringify(cfg, null, 2) + '\n', { mode: 0o600 })
    }
    // The lighthouse (server) first, so the client's first handshake finds it listening.
    const started: NsProcess[] = []
    for (const k of ['server', 'client'] as const) {
      const p = procs.spawn(`nebula ${side[k].node}`, side[k].node, ['nebula', '-config', join(dir, `${k}.yml`)])
      started.push(p)
      try {
        await p.waitFor(ACTIVE, 10_000)
      } catch (err) {
        if (NO_TUN.test(p.output)) throw new PeerUnavailable(`nebula could not make its TUN in ${side[k].node}: ${p.tail(3).replace(/\s+/g, ' ')}`)
        throw err
      }
    }
    await waitReachable(topo, side.client.node, side.server.address, opts.readyTimeoutMs ?? 10_000, () => started.every((p) => p.running))
    const [server, client] = started
    return {
      kind: 'nebula',
      version,
      mtu,
      clientAddress: side.client.address,
      serverAddress: side.server.address,
      interfaces: { client: side.client.dev, server: side.server.dev },
      pids: () => ({ client: client!.pid, server: server!.pid }),
      logs: (lines) => procs.logs(lines),
      close,
    }
  } catch (err) {
    const logs = procs.logs(10)
    await close()
    if (err instanceof PeerUnavailable) throw err
    throw new Error(`nebula tunnel set-up failed: ${err instanceof Error ? err.message : String(err)}\n${logs}`)
  }
}
