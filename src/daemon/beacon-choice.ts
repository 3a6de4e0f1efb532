/**
 * `--beacon a:port,b:port,…`: a daemon with several beacons uses the one at
 * `list[nodeId % list.length]` (docs/wire.md §9.7), so the nodes of a network
 * spread over the beacons without asking anyone, and every daemon given the
 * same list agrees on where a node lives. Relay and punch go through that
 * beacon only; the beacons forward to each other. A one-entry list behaves
 * as the single `--beacon` always did.
 */
import { ConfigError } from '../errors.js'
import type { UdpEndpoint } from '../tunnel/bind.js'
import { resolveBeaconOption } from './options.js'

/** Beacons in one `--beacon` list at most. */
export const MAX_BEACONS = 64

export interface BeaconCandidate {
  /** As written (status shows it). */
  readonly text: string
  readonly endpoint: UdpEndpoint
}

/** Splits the option on commas, checks and looks up every entry (host names once, IPv4 first). */
export async function resolveBeaconList(text: string): Promise<BeaconCandidate[]> {
  const items = text.split(',').map((s) => s.trim()).filter((s) => s !== '')
  if (items.length === 0) throw new ConfigError('--beacon is empty', 'give HOST:PORT, or several separated by commas')
  if (items.length > MAX_BEACONS) throw new ConfigError(`--beacon lists ${items.length} beacons, at most ${MAX_BEACONS}`, 'list fewer beacons')
  const out: BeaconCandidate[] = []
  for (const item of items) out.push({ text: item, endpoint: await resolveBeaconOption(item) })
  return out
}

/** The beacon node `nodeId` uses: `list[nodeId % list.length]`. */
export function chooseBeacon<T>(list: readonly T[], nodeId: number): { chosen: T; index: number } {
  if (list.length === 0) throw new RangeError('no beacon to choose from')
  const index = nodeId % list.length
  return { chosen: list[index]!, index }
}

/** What the daemon keeps of its `--beacon` option once its node ID is known (no beacon: all empty). */
export function pickBeacon(list: readonly BeaconCandidate[] | null, nodeId: number): { beacon: UdpEndpoint | null; beaconText: string | null; beaconList: string[] } {
  if (list === null || list.length === 0) return { beacon: null, beaconText: null, beaconList: [] }
  const { chosen } = chooseBeacon(list, nodeId)
  return { beacon: chosen.endpoint, beaconText: chosen.text, beaconList: list.map((b) => b.text) }
}
