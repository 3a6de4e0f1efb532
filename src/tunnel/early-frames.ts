/**
 * PILS that arrive from a node whose PILA is parked (key-exchange.ts: its sender's registry
 * key is being fetched). The sender derived its session from our PILA and sends at once — a
 * new connection's first SYN follows its PILA by a fraction of a millisecond — while we still
 * wait for the registry to vouch for its key. Dropped, such a frame costs the layer above a
 * retransmit timeout (a Pilot SYN: 1 s); held here, it is opened right after the PILA is
 * accepted. Wire-neutral: only the moment a received frame is opened changes.
 *
 * Held only while the node's PILA is parked, so strangers can make us hold frames only for
 * lookups they are allowed to cause (limited per source and in number, key-exchange.ts);
 * bounded per node in frames and bytes (the oldest goes), copied (the bind may reuse its
 * buffers), and given back or dropped when the PILA settles.
 */

/** Frames held per node while its PILA is parked. */
export const MAX_EARLY_FRAMES = 16
/** Bytes held per node while its PILA is parked. */
export const MAX_EARLY_BYTES = 64 * 1024

export interface EarlyFrame {
  frame: Buffer
  host: string
  port: number
  relayed: boolean
}

interface Held {
  frames: EarlyFrame[]
  bytes: number
}

export class EarlyFrames {
  private readonly held = new Map<number, Held>()

  /**
   * Holds a copy of a PILS from `sender`. Returns the number of frames dropped to make room
   * (the oldest ones), or -1 when the frame alone is over the byte bound (not held).
   */
  hold(sender: number, frame: Uint8Array, host: string, port: number, relayed: boolean): number {
    if (frame.length > MAX_EARLY_BYTES) return -1
    let h = this.held.get(sender)
    if (h === undefined) {
      h = { frames: [], bytes: 0 }
      this.held.set(sender, h)
    }
    let dropped = 0
    while (h.frames.length >= MAX_EARLY_FRAMES || h.bytes + frame.length > MAX_EARLY_BYTES) {
      h.bytes -= h.frames.shift()!.frame.length
      dropped++
    }
    h.frames.push({ frame: Buffer.from(frame), host, port, relayed })
    h.bytes += frame.length
    return dropped
  }

  /** Removes and returns the node's frames, oldest first (empty when none). */
  take(sender: number): EarlyFrame[] {
    const h = this.held.get(sender)
    if (h === undefined) return []
    this.held.delete(sender)
    return h.frames
  }

  /** Frames held for `sender`. */
  count(sender: number): number {
    return this.held.get(sender)?.frames.length ?? 0
  }

  /** Nodes with frames held. */
  get nodes(): number {
    return this.held.size
  }

  clear(): void {
    this.held.clear()
  }
}
