/** Filling a reused PacketHeader for the packets session/ sends. */
import { PROTOCOL_VERSION, type PacketHeader } from '../protocol/header.js'
import type { PilotAddress } from '../protocol/address.js'

/** Sets every field of `h` that encodePacketInPlace writes, except the payload length. */
export function fillHeader(
  h: PacketHeader,
  protocol: number,
  flags: number,
  src: PilotAddress,
  srcPort: number,
  dst: PilotAddress,
  dstPort: number,
  seq: number,
  ack: number,
  window: number,
): void {
  h.version = PROTOCOL_VERSION
  h.protocol = protocol
  h.flags = flags
  h.srcNetwork = src.network
  h.srcNode = src.node
  h.dstNetwork = dst.network
  h.dstNode = dst.node
  h.srcPort = srcPort
  h.dstPort = dstPort
  h.seq = seq >>> 0
  h.ack = ack >>> 0
  h.window = window
}
