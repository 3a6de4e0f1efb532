/**
 * `PilotAddress` objects for the node addresses the TUN path sees, so the
 * bridge can hand a datagram's or a SYN's destination to the daemon without
 * building a new object per packet. Keyed by the 48-bit address as a number;
 * bounded, and simply cleared when full (a working set of peers refills it).
 */
import { addressFromKey, type PilotAddress } from '../protocol/address.js'
import { overlayNodeKeyAt } from '../protocol/ipv6-mapping.js'

export class PeerAddressCache {
  private readonly byKey = new Map<number, PilotAddress>()

  constructor(readonly capacity = 4096) {}

  get size(): number {
    return this.byKey.size
  }

  /** The node at `bytes[offset..offset+16)`, which the caller has checked is a node address of the prefix. Frozen. */
  at(bytes: Uint8Array, offset: number): PilotAddress {
    const key = overlayNodeKeyAt(bytes, offset)
    let peer = this.byKey.get(key)
    if (peer === undefined) {
      if (this.byKey.size >= this.capacity) this.byKey.clear()
      peer = Object.freeze(addressFromKey(key))
      this.byKey.set(key, peer)
    }
    return peer
  }
}
