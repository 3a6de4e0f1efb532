/**
 * Beacon ↔ beacon messages (docs/wire.md §9.7).
 *
 * Sync (0x07) is the reference's: `beacon_id u32 || count u16 || count x node_id u32`,
 * and a Sync replaces everything the receiver learned from the sender before.
 * A pilot-tun beacon with more nodes than fit one datagram splits a round into
 * parts and appends a trailer the reference ignores (its fixed layouts ignore
 * trailing bytes):
 *
 *   'P' 'T' 'S' 'Y' || round u32 || part u16 || parts u16        (12 bytes)
 *
 * A receiver that knows the trailer gathers the parts of one round and replaces
 * the sender's set only when the last part arrives; one without it (the
 * reference) keeps the last datagram's IDs.
 *
 * Cross-beacon hole punching, a pilot-tun extension (unknown to the reference,
 * whose beacon drops both types with a debug log):
 *
 *   0x0B PeerPunch       requester_id u32 || target_id u32 || ip_len u8 (4|16) || ip || port u16
 *                        (the requester's endpoint; beacon A → the beacon B that holds target)
 *   0x0C PeerPunchReply  requester_id u32 || target_id u32 || ip_len u8 (4|16) || ip || port u16
 *                        (the target's endpoint; beacon B → beacon A, which tells the requester)
 */
import { readU32, writeU32 } from '../bytes.js'
import { DecodeError } from '../errors.js'
import { BeaconType, SYNC_MAX_NODES, hostBytes, hostText, type Endpoint } from './beacon-messages.js'

export const ClusterType = {
  PEER_PUNCH: 0x0b,
  PEER_PUNCH_REPLY: 0x0c,
} as const
export type ClusterType = (typeof ClusterType)[keyof typeof ClusterType]

export const SYNC_TRAILER_MAGIC = 0x50545359 // 'PTSY'
export const SYNC_TRAILER_SIZE = 12
const SYNC_HEADER_SIZE = 7

/** Node IDs per Sync datagram by default: 7 + 4 × 343 + 12 = 1391 bytes, under a 1500-byte MTU with IP and UDP headers. */
export const SYNC_IDS_PER_DATAGRAM = 343

export interface SyncPart {
  readonly beaconId: number
  readonly nodeIds: readonly number[]
  /** Present when the pilot-tun trailer is: which part of which round this is. */
  readonly round: { readonly id: number; readonly part: number; readonly parts: number } | null
}

export interface PeerPunchMessage {
  readonly type: ClusterType
  readonly requesterId: number
  readonly targetId: number
  /** PeerPunch: the requester's endpoint; PeerPunchReply: the target's. */
  readonly endpoint: Endpoint
}

/** A Sync datagram with its optional trailer. Throws DecodeError when short or not a Sync. */
export function decodeSyncPart(buf: Uint8Array): SyncPart {
  if (buf.length < SYNC_HEADER_SIZE || buf[0] !== BeaconType.SYNC) throw new DecodeError('short-buffer', 'not a Sync')
  const count = (buf[5]! << 8) | buf[6]!
  const end = SYNC_HEADER_SIZE + 4 * count
  if (buf.length < end) throw new DecodeError('short-buffer', `Sync of ${count} IDs needs ${end} bytes, got ${buf.length}`)
  const nodeIds = new Array<number>(count)
  for (let i = 0; i < count; i++) nodeIds[i] = readU32(buf, SYNC_HEADER_SIZE + 4 * i)
  let round: SyncPart['round'] = null
  if (buf.length >= end + SYNC_TRAILER_SIZE && readU32(buf, end) === SYNC_TRAILER_MAGIC) {
    const part = (buf[end + 8]! << 8) | buf[end + 9]!
    const parts = (buf[end + 10]! << 8) | buf[end + 11]!
    if (parts === 0 || part >= parts) throw new DecodeError('bad-value', `Sync part ${part} of ${parts}`)
    round = { id: readU32(buf, end + 4), part, parts }
  }
  return { beaconId: readU32(buf, 1), nodeIds, round }
}

/**
 * One round of Sync datagrams carrying `nodeIds`, at most `perDatagram` IDs each. A round
 * that fits one datagram has no trailer (byte-identical to the reference's Sync); an empty
 * set is one Sync of count 0. At most 65,535 parts.
 */
export function encodeSyncRound(beaconId: number, nodeIds: readonly number[], roundId: number, perDatagram = SYNC_IDS_PER_DATAGRAM): Buffer[] {
  if (!Number.isInteger(perDatagram) || perDatagram < 1 || perDatagram > SYNC_MAX_NODES) {
    throw new DecodeError('bad-value', `IDs per Sync datagram must be 1..${SYNC_MAX_NODES}, got ${perDatagram}`)
  }
  u32(beaconId, 'beacon ID')
  u32(roundId, 'round')
  const parts = Math.max(1, Math.ceil(nodeIds.length / perDatagram))
  if (parts > 0xffff) throw new DecodeError('too-large', `${nodeIds.length} node IDs need more than 65,535 Sync datagrams`)
  const trailer = parts > 1
  const out: Buffer[] = []
  for (let p = 0; p < parts; p++) {
    const ids = nodeIds.slice(p * perDatagram, (p + 1) * perDatagram)
    const size = SYNC_HEADER_SIZE + 4 * ids.length + (trailer ? SYNC_TRAILER_SIZE : 0)
    const buf = Buffer.allocUnsafe(size)
    buf[0] = BeaconType.SYNC
    writeU32(buf, 1, beaconId)
    buf[5] = ids.length >>> 8
    buf[6] = ids.length & 0xff
    for (let i = 0; i < ids.length; i++) writeU32(buf, SYNC_HEADER_SIZE + 4 * i, u32(ids[i]!, 'node ID'))
    if (trailer) {
      const t = SYNC_HEADER_SIZE + 4 * ids.length
      writeU32(buf, t, SYNC_TRAILER_MAGIC)
      writeU32(buf, t + 4, roundId)
      buf[t + 8] = p >>> 8
      buf[t + 9] = p & 0xff
      buf[t + 10] = parts >>> 8
      buf[t + 11] = parts & 0xff
    }
    out.push(buf)
  }
  return out
}

export function decodePeerPunch(buf: Uint8Array): PeerPunchMessage {
  const type = buf[0]
  if (type !== ClusterType.PEER_PUNCH && type !== ClusterType.PEER_PUNCH_REPLY) throw new DecodeError('bad-type', 'not a PeerPunch')
  if (buf.length < 10) throw new DecodeError('short-buffer', `PeerPunch needs at least 10 bytes, got ${buf.length}`)
  const ipLen = buf[9]!
  if (ipLen !== 4 && ipLen !== 16) throw new DecodeError('bad-address', `PeerPunch: ip_len must be 4 or 16, got ${ipLen}`)
  const end = 10 + ipLen + 2
  if (buf.length < end) throw new DecodeError('short-buffer', `PeerPunch needs ${end} bytes, got ${buf.length}`)
  const host = hostText(buf.subarray(10, 10 + ipLen))
  const port = (buf[10 + ipLen]! << 8) | buf[11 + ipLen]!
  return { type, requesterId: readU32(buf, 1), targetId: readU32(buf, 5), endpoint: { host, port } }
}

export function encodePeerPunch(msg: PeerPunchMessage): Buffer {
  if (msg.type !== ClusterType.PEER_PUNCH && msg.type !== ClusterType.PEER_PUNCH_REPLY) throw new DecodeError('bad-type', 'not a PeerPunch type')
  const ip = hostBytes(msg.endpoint.host)
  const port = msg.endpoint.port
  if (!Number.isInteger(port) || port < 0 || port > 0xffff) throw new DecodeError('bad-port', `port ${port} is not a u16`)
  const out = Buffer.allocUnsafe(10 + ip.length + 2)
  out[0] = msg.type
  writeU32(out, 1, u32(msg.requesterId, 'requester ID'))
  writeU32(out, 5, u32(msg.targetId, 'target ID'))
  out[9] = ip.length
  out.set(ip, 10)
  out[10 + ip.length] = port >>> 8
  out[11 + ip.length] = port & 0xff
  return out
}

function u32(v: number, what: string): number {
  if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new DecodeError('bad-value', `${what} ${v} is not a u32`)
  return v
}
