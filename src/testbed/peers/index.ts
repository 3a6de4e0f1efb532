/**
 * The other overlays the benchmark measures next to pilot-tun (issue 12):
 * which ones a run wants (the PILOT_BENCH_PEERS knob) and starting one by
 * name. A peer that cannot run here is skipped with its reason, never a
 * failure of the run.
 */
import type { Topology } from '../topology.js'
import { PEER_KINDS, PeerUnavailable, type PeerEnds, type PeerKind, type PeerTunnel } from './common.js'
import { startNebula } from './nebula.js'
import { startWireguard } from './wireguard.js'

export { PEER_KINDS, PeerUnavailable, findBinary, type PeerEnds, type PeerKind, type PeerTunnel } from './common.js'

/**
 * The peers a run measures: unset, "1" or "all" = every one; "0", "none" or
 * "" = none; otherwise a comma-separated list of "wireguard-go" (or "wg",
 * "wireguard") and "nebula". Throws on an unknown name.
 */
export function parsePeersKnob(value: string | undefined): PeerKind[] {
  const v = (value ?? 'all').trim().toLowerCase()
  if (v === '1' || v === 'all' || v === 'yes') return [...PEER_KINDS]
  if (v === '0' || v === 'none' || v === 'no' || v === '') return []
  const out: PeerKind[] = []
  for (const raw of v.split(',').map((s) => s.trim()).filter((s) => s !== '')) {
    const k: PeerKind | null = raw === 'nebula' ? 'nebula' : raw === 'wireguard-go' || raw === 'wireguard' || raw === 'wg' ? 'wireguard-go' : null
    if (k === null) throw new Error(`PILOT_BENCH_PEERS: unknown peer ${JSON.stringify(raw)} (one of ${PEER_KINDS.join(', ')}, or 0 / all)`)
    if (!out.includes(k)) out.push(k)
  }
  return out
}

export type PeerStart = { ok: true; tunnel: PeerTunnel } | { ok: false; kind: PeerKind; reason: string }

/** Starts `kind` between `ends`; a peer that cannot run here (or whose set-up fails) comes back as `ok: false` with the reason. */
export async function startPeer(kind: PeerKind, topo: Topology, ends: PeerEnds): Promise<PeerStart> {
  try {
    const tunnel = kind === 'wireguard-go' ? await startWireguard(topo, ends) : await startNebula(topo, ends)
    return { ok: true, tunnel }
  } catch (err) {
    const reason = err instanceof PeerUnavailable ? err.message : `${kind}: set-up failed: ${err instanceof Error ? err.message : String(err)}`
    return { ok: false, kind, reason }
  }
}
