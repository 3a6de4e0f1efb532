/**
 * The peer's direction of a stream: its bytes until read(), where its stream
 * ends (its FIN), and when we acknowledge. The bytes live in a
 * ReceiveAssembler; this adds the sequence-number base, the end of the stream
 * and the ACK schedule:
 *   - every second in-order segment is acknowledged at once (the reference
 *     does the same, docs/wire.md §6.6), a lone one after delayedAck;
 *   - a short segment (below the peer's full segment size) at once: it is
 *     what a Nagle sender sends last and then waits on. The Go reference
 *     sends 4096-byte segments and holds each shorter one until everything is
 *     acknowledged (§6.8), so a delayed ACK would cost it 40 ms per segment —
 *     its echo of 1402-byte segments crawled at ≈ 35 KB/s. For other peers the
 *     full size is the largest segment seen so far;
 *   - anything unusual (out of order, duplicate, no room, a gap filled) at
 *     once, with SACK blocks while ranges are held out of order;
 *   - a window update when a nearly closed window reopens (receiver SWS avoidance).
 * A FIN can overtake the data before it (the reference's FIN does not wait for
 * its data to be acknowledged): its offset is kept until the gap fills.
 */
import { Accepted, ReceiveAssembler } from './receive-assembler.js'
import type { StreamConfig, StreamStats } from './stream-config.js'
import type { Millis } from './types.js'

export class StreamReceiver {
  private readonly rcv: ReceiveAssembler
  private readonly delayedAck: Millis
  /** Sequence number of data offset 0 (the peer's ISN + 1). */
  private dataIsn = 0
  /** Offset of a FIN that arrived before its data; −1 = none. */
  private finOff = -1
  private _finished = false
  private _ackNow = false
  private unackedSegments = 0
  private ackDeadline = Number.POSITIVE_INFINITY
  private lastAdvertised = 0
  /** The peer's full segment size: 4096 for Go, else the largest payload seen. */
  private fullSegment = 0
  private goPeer = false

  constructor(cfg: StreamConfig) {
    this.rcv = new ReceiveAssembler(cfg)
    this.delayedAck = cfg.delayedAck
  }

  /** Bytes waiting for read(). */
  get readable(): number { return this.rcv.readable }

  /** Bytes of receive ring buffer held now. */
  get ringCapacity(): number { return this.rcv.ringCapacity }

  /** The peer finished sending (or the connection ended): read() reports the end once drained. */
  get finished(): boolean { return this._finished }

  /** An ACK should go out at the next chance. */
  get ackNow(): boolean { return this._ackNow }

  /** Our acknowledgement number: the next byte expected, + 1 for the peer's FIN. */
  get ackSeq(): number {
    const nxt = this.rcv.nxt
    return (this.dataIsn + (this._finished ? nxt + 1 : nxt)) >>> 0
  }

  /** Deadline of the delayed ACK, or Infinity. */
  get deadline(): Millis { return this.ackDeadline }

  /** The window to advertise, in 4096-byte slots. */
  window(): number {
    return this.rcv.window()
  }

  /** The in-order data reached a FIN that had overtaken it: the peer's stream is complete. */
  get complete(): boolean {
    return this.finOff >= 0 && this.rcv.nxt >= this.finOff
  }

  fillStats(st: StreamStats): void {
    this.rcv.fillStats(st)
  }

  /** The peer's SYN carried `isn`: its data starts at isn + 1. */
  start(isn: number): void {
    this.dataIsn = (isn + 1) >>> 0
  }

  /** The peer is a Go reference node: its full segments are 4096 bytes (§6.8). */
  peerIsGo(): void {
    this.goPeer = true
    this.fullSegment = 4096
  }

  /** Acknowledge at the next chance. */
  requestAck(): void {
    this._ackNow = true
  }

  /**
   * A data segment at sequence number `seq` (the connection accepts data in
   * this state). Returns whether there are new bytes to read; then `complete`
   * says whether they reach the peer's FIN.
   */
  onData(now: Millis, seq: number, payload: Uint8Array): boolean {
    const result = this.rcv.accept(this.rcv.offsetOf(seq, this.dataIsn), payload, this.finOff)
    if (result !== Accepted.InOrder && result !== Accepted.FilledGap) {
      // Nothing new to read: say where we are at once (with SACK when out of order;
      // a duplicate means our ACK was lost or late).
      this._ackNow = true
      return false
    }
    if (this.complete) {
      this.rcv.endAt(this.finOff)
      return true
    }
    const len = payload.length
    if (!this.goPeer && len > this.fullSegment) this.fullSegment = len
    if (result === Accepted.FilledGap || len < this.fullSegment || ++this.unackedSegments >= 2) {
      this._ackNow = true
    } else if (this.ackDeadline === Number.POSITIVE_INFINITY) {
      this.ackDeadline = now + this.delayedAck
    }
    return true
  }

  /**
   * The peer's FIN at sequence number `seq`. A bare FIN beyond data still
   * missing is remembered (returns false: not complete yet, an ACK is due);
   * otherwise returns true and the caller finishes the stream.
   */
  onFin(seq: number, isFinAck: boolean): boolean {
    const off = this.rcv.offsetOf(seq, this.dataIsn)
    if (!isFinAck && this.rcv.canEndAt(off)) {
      this.finOff = off
      this._ackNow = true
      return false
    }
    return true
  }

  /** The peer's stream is complete: nothing more is accepted, held ranges are dropped. */
  finish(): void {
    this._finished = true
    this.finOff = -1
    this.rcv.clearOutOfOrder()
  }

  /** We aborted: nothing will be read, the bytes held are dropped. */
  discard(): void {
    this.rcv.discard()
  }

  /** The connection ended abnormally: read() reports the end of stream. */
  abort(): void {
    this._finished = true
  }

  /** Copies received bytes: the count, 0 if none yet, −1 at the end of the stream. */
  read(into: Uint8Array): number {
    if (this.rcv.readable === 0) return this._finished ? -1 : 0
    return this.rcv.read(into)
  }

  /** After read(): whether the window grew enough since we last advertised it to tell the peer. */
  windowReopened(): boolean {
    return this.lastAdvertised < this.rcv.maxWindow / 2 && this.rcv.window() >= this.lastAdvertised + 2
  }

  /** Runs the delayed ACK timer. */
  handleTimeout(now: Millis): void {
    if (this.ackDeadline > now) return
    this.ackDeadline = Number.POSITIVE_INFINITY
    this._ackNow = true
  }

  /**
   * An acknowledgement is on its way (a data segment, a pure ACK or FIN|ACK):
   * none is due any more. A pure ACK carries the SACK blocks from writeSack().
   */
  ackSent(): void {
    this._ackNow = false
    this.unackedSegments = 0
    this.ackDeadline = Number.POSITIVE_INFINITY
  }

  /** A packet with the ACK flag advertised `window`. */
  advertised(window: number): void {
    this.lastAdvertised = window
  }

  /** The SACK option for a pure ACK at `out[at]`; returns its size (0 = none). */
  writeSack(out: Uint8Array, at: number): number {
    return this.rcv.writeSack(out, at, this.dataIsn)
  }

  /** No ACK is due any more, now or later (TIME_WAIT, or closed when `all`). */
  stop(all: boolean): void {
    this.ackDeadline = Number.POSITIVE_INFINITY
    if (all) this._ackNow = false
  }
}
