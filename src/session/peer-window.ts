/**
 * The peer's receive window as our sender reads it (docs/wire.md §6.9). The
 * same 16-bit field means two things:
 *
 *   - bytes: free receive space in 4096-byte slots (pilot-tun, [D]);
 *   - segments: free entries of the Go reference's 512-entry delivery queue,
 *     one per segment whatever its size. At our default MSS (1402 bytes),
 *     reading that as slots × 4096 overruns the queue about threefold, and a
 *     Go receiver whose queue is full blocks its whole packet loop — its own
 *     sender then hears no ACKs, its application (the echo service) blocks on
 *     write and never reads again: a deadlock that ends with Go's "max
 *     retransmits exceeded" RST. So towards Go we count segments in flight.
 *
 * Go always opens with ISN 0 and pilot-tun never does (§6.4), so the peer's
 * ISN tells which reading applies.
 *
 * A window of 0 means "no limit" to Go, which sends it on keepalives, FINs and
 * pongs (§6.9), yet a full Go queue also advertises 0. In segment mode a 0 is
 * read as closed — one segment probes it after a persist timeout — whenever
 * the packet says something about our data (it acknowledges new data, carries
 * data or SACK, or data of ours is in flight); a 0 on an idle connection's
 * empty ACK (Go's keepalive) leaves the window as it was. The window can fall
 * from dozens to 0 in one ACK: when a retransmission fills a hole, Go queues
 * the segments it held out of order all at once (verified: 44, then 0 with
 * 43 segments delivered). In byte mode 0 is "no limit", as before: pilot-tun
 * never advertises 0.
 */

export class PeerWindow {
  /** Go's reading: the window counts segments. */
  private segments = false
  /** The last window taken, in slots; 0 = no limit (nothing known). */
  private slots = 0
  /** Segment mode: the queue is full (a 0 after a small window). */
  private _closed = false

  /** Segment mode is on (the peer opened with ISN 0). */
  get countsSegments(): boolean { return this.segments }

  /** Segment mode and the peer's queue is full: only a persist probe may go. */
  get closed(): boolean { return this._closed }

  /** The raw slots last taken (0 = none or "no limit"). */
  get lastSlots(): number { return this.slots }

  /** The peer counts segments (Go). */
  countSegments(): void {
    this.segments = true
  }

  /**
   * A window field the peer advertised. `aboutOurData`: the packet acknowledged
   * new data, carried data or SACK, or data of ours was in flight — a 0 then
   * means a full queue, not a keepalive.
   */
  update(slots: number, aboutOurData: boolean): void {
    if (!this.segments || slots > 0) {
      this.slots = slots
      this._closed = false
      return
    }
    if (aboutOurData) this._closed = true
  }

  /** The window in bytes for a sender of `mss`-byte segments; 0 = no limit. */
  bytes(mss: number): number {
    if (this.slots === 0) return 0
    return this.slots * (this.segments ? mss : 4096)
  }

  /**
   * Room for new data in bytes, given what is outstanding (bytes and segments,
   * counted from the peer's cumulative ACK, SACKed ones included). In segment
   * mode it is a whole number of `mss`-byte segments; Infinity = no limit.
   */
  room(outstandingBytes: number, outstandingSegments: number, mss: number): number {
    if (this._closed) return 0
    if (this.slots === 0) return Number.POSITIVE_INFINITY
    if (!this.segments) return this.slots * 4096 - outstandingBytes
    return Math.max(0, this.slots - outstandingSegments) * mss
  }
}
