/**
 * One Pilot stream (protocol 0x01) as a sans-IO state machine (docs/wire.md §6).
 *
 * Four kinds of methods, called in this order after every input:
 *   A. getters      state, error, stats(), readableLength, writableLength, …
 *   B. inputs       handlePacket(now, h, payload), handleTimeout(now)
 *   C. app commands write(now, data) → bytes taken (0 = wait for Writable)
 *                   read(into) → bytes copied (0 = nothing yet, -1 = end of stream)
 *                   finish(now) (half-close: FIN after all queued data is acked)
 *                   reset(now)
 *   D. outputs      pollTransmit(now, out, offset) → bytes of one complete packet
 *                   (0 = nothing), then pollTimeout(), then pollEvent() until None.
 *
 * Inside, byte positions are stream offsets (plain numbers from 0, never
 * wrapping); sequence numbers exist only on the wire: seq = (isn + 1 + offset) mod 2^32.
 * This class is the one place that changes the connection's state (states,
 * close rules, events); its helpers own their data and are told what happened:
 *   Handshake       SYN / SYN|ACK retransmission and the connect timeout (handshake.ts)
 *   StreamSender    our bytes until acknowledged, and our FIN (sender.ts), built from
 *                   SendBuffer (send-buffer.ts), LossDetector (RACK, loss-detector.ts),
 *                   Recovery (PRR, recovery.ts), TailLossProbe (tail-probe.ts),
 *                   RttEstimator (rtt.ts) and the CongestionController (congestion.ts)
 *   StreamReceiver  the peer's bytes, its FIN and when we acknowledge (receiver.ts), built
 *                   from ReceiveAssembler (reassembly and SACK ranges, receive-assembler.ts)
 *   TimerTable      keepalive, idle and TIME_WAIT here; each helper keeps its own deadlines
 *
 * Interop rules honoured (§20 items 10–14): every data segment carries ACK; FIN
 * packets carry no data; window = free 4096-byte slots, ≥ 1 when full; a peer
 * window of 0 means "no limit"; data never starts with the SACK pattern; FIN
 * is sent only after all data is acknowledged; a bare FIN is answered (FIN|ACK
 * when we are done sending too, else a plain ACK so we can half-close), a
 * FIN|ACK never is.
 */
import { Flag, HEADER_SIZE, PROTOCOL_VERSION, Protocol, PacketHeader, encodePacketInPlace } from '../protocol/header.js'
import type { PilotAddress } from '../protocol/address.js'
import { sackBlockCount } from '../protocol/sack.js'
import { SessionError, type SessionCloseReason } from './errors.js'
import { EventQueue } from './event-queue.js'
import { Handshake, HandshakeTimeout } from './handshake.js'
import { fillHeader } from './packet-fields.js'
import { StreamReceiver } from './receiver.js'
import { AckOutcome, StreamSender } from './sender.js'
import {
  StreamEvent,
  StreamState,
  newStreamStats,
  resolveStreamConfig,
  type PassiveOpen,
  type StreamConfig,
  type StreamStats,
} from './stream-config.js'
import { TimerTable } from './timers.js'
import type { Millis } from './types.js'
import type { FlightShare, FlightShareWaiter } from './flight-share.js'
import type { RandomSource } from '../random.js'

export * from './stream-config.js'

/** The connection's timers; the handshake, the sender and the receiver (delayed ACK) keep their own. */
const enum Timer {
  Keepalive = 0,
  Idle = 1,
  TimeWait = 2,
  Count = 3,
}

/** Something that wants to hear when a connection may have packets to send. */
export interface TransmitScheduler {
  wake(conn: StreamConnection): void
}

export class StreamConnection implements FlightShareWaiter {
  readonly localAddress: PilotAddress
  readonly localPort: number
  readonly remoteAddress: PilotAddress
  readonly remotePort: number
  /** Set by the endpoint; lets the connection re-queue itself for transmission. */
  scheduler: TransmitScheduler | null = null
  /** Scheduler bookkeeping: true while queued. */
  queued = false
  /** Flight-share bookkeeping: true while waiting for room (flight-share.ts). */
  shareWaiting = false
  shareHungry = false
  /** Endpoint bookkeeping: the numeric demux key parts. */
  readonly remoteKey: number
  readonly portsKey: number

  private _state: StreamState
  private _error: SessionError | null = null
  private readonly cfg: StreamConfig
  private readonly hdr = new PacketHeader()
  private readonly timers = new TimerTable(Timer.Count)
  private readonly events = new EventQueue()
  private readonly st: StreamStats = newStreamStats()

  // --- opening, and the two directions (data offsets count from 0; seq = ISN + 1 + offset) ---
  private readonly iss: number
  private readonly sndDataIsn: number // iss + 1
  private irs = 0
  private readonly handshake: Handshake
  private readonly sender: StreamSender
  private readonly receiver: StreamReceiver

  // --- close (our FIN is the sender's) ---
  private finAckPending = false // reply FIN|ACK to a bare FIN
  private rstPending = false

  private pollNow: Millis = 0

  /**
   * Active open when `passive` is null (state SYN_SENT, the SYN comes out of
   * pollTransmit); otherwise the answer to an accepted SYN (SYN_RECV, SYN|ACK).
   */
  constructor(
    now: Millis,
    local: PilotAddress,
    localPort: number,
    remote: PilotAddress,
    remotePort: number,
    random: RandomSource,
    config: Partial<StreamConfig> | StreamConfig | undefined,
    passive: PassiveOpen | null,
  ) {
    const cfg = resolveStreamConfig(config)
    this.cfg = cfg
    this.localAddress = local
    this.localPort = localPort
    this.remoteAddress = remote
    this.remotePort = remotePort
    this.remoteKey = remote.network * 0x1_0000_0000 + remote.node
    this.portsKey = localPort * 0x10000 + remotePort
    this.receiver = new StreamReceiver(cfg)
    this.handshake = new Handshake(cfg, now)
    fillHeader(this.hdr, Protocol.STREAM, 0, local, localPort, remote, remotePort, 0, 0, 0)

    // Never 0 at random: an ISN of 0 marks the Go reference (peer-window.ts).
    this.iss = cfg.isn !== null ? cfg.isn >>> 0 : random.u32() >>> 1 || 1
    this.sndDataIsn = (this.iss + 1) >>> 0
    this.sender = new StreamSender(cfg, this.sndDataIsn)

    if (passive === null) {
      this._state = StreamState.SynSent
    } else {
      this._state = StreamState.SynReceived
      this.irs = passive.synSeq >>> 0
      this.startReceiving(passive.synWindow)
    }
  }

  // ───────────────────────── A. getters ─────────────────────────

  get state(): StreamState {
    return this._state
  }

  /** Why the connection closed abnormally; null while open or after an orderly close. */
  get error(): SessionError | null {
    return this._error
  }

  get isClosed(): boolean {
    return this._state === StreamState.Closed
  }

  get initialSequenceNumber(): number {
    return this.iss
  }

  get peerInitialSequenceNumber(): number {
    return this.irs
  }

  /** Bytes waiting for read(). */
  get readableLength(): number {
    return this.receiver.readable
  }

  /** Bytes written but not yet acknowledged. */
  get writableLength(): number {
    return this.sender.unacked
  }

  /** Bytes of send and receive ring buffers held now: 0 while nothing is unacknowledged, unread or out of order. */
  get ringBytes(): number {
    return this.sender.ringCapacity + this.receiver.ringCapacity
  }

  /** Free space for write(). */
  get writeCapacity(): number {
    return this.canWrite() ? this.sender.capacity : 0
  }

  /** Largest packet pollTransmit can produce; size the caller's buffer at least this. */
  get maxPacketSize(): number {
    return HEADER_SIZE + Math.max(this.cfg.mss, 64)
  }

  get mss(): number {
    return this.cfg.mss
  }

  /** True once the peer's FIN has been received and all data before it read. */
  get readEnded(): boolean {
    return this.receiver.finished && this.receiver.readable === 0
  }

  stats(): StreamStats {
    this.sender.fillStats(this.st)
    this.receiver.fillStats(this.st)
    return { ...this.st }
  }

  // ───────────────────────── B. inputs ─────────────────────────

  /**
   * A decoded packet for this connection (the endpoint did the demux). The
   * payload is a view that is only valid during the call; kept bytes are copied.
   */
  handlePacket(now: Millis, h: PacketHeader, payload: Uint8Array): void {
    if (this._state === StreamState.Closed) return
    this.st.packetsReceived++
    const flags = h.flags
    if ((flags & Flag.SYN) !== 0) {
      // Dispatch order of §6.3: SYN, SYN|ACK, FIN, RST, ACK.
      if ((flags & Flag.ACK) === 0) this.onDuplicateSyn(h)
      else this.onSynAck(now, h)
      this.wakeIfNeeded()
      return
    }
    if (h.version !== PROTOCOL_VERSION) {
      this.st.droppedInvalid++ // §15.1: non-SYN with another version is dropped
      return
    }
    if ((flags & Flag.FIN) !== 0) {
      this.onFin(now, h)
    } else if ((flags & Flag.RST) !== 0) {
      this.onRst()
    } else if ((flags & Flag.ACK) !== 0) {
      this.onAckPacket(now, h, payload)
    } else {
      this.st.droppedInvalid++
      return
    }
    this.wakeIfNeeded()
  }

  /** Runs every timer whose deadline is ≤ now. */
  handleTimeout(now: Millis): void {
    const t = this.timers
    if (this._state === StreamState.Closed) return
    if (t.expire(Timer.TimeWait, now)) {
      this.enterClosed(null)
      return
    }
    if (t.expire(Timer.Idle, now)) {
      // Go's reaction is a local close (FIN); the peer is presumably gone, so one
      // best-effort FIN and no retransmission.
      this.sender.setFinPending(this.isSynchronized())
      this.enterClosed(this.err('idle-timeout', `nothing received for ${this.cfg.idleTimeout} ms`, false))
      this.wake()
      return
    }
    const synTimeout = this.handshake.handleTimeout(now)
    if (synTimeout === HandshakeTimeout.Expired) {
      this.enterClosed(this.err('connect-timeout', `no answer to SYN after ${this.handshake.transmissions} tries`, false))
      return
    }
    if (synTimeout === HandshakeTimeout.Retransmit) {
      this.st.synRetransmits++
      if (this._state === StreamState.SynSent) this.events.push(StreamEvent.SynRetransmitted)
    }
    if (this.sender.handleTimeout(now)) {
      this.onSenderGaveUp()
      return
    }
    this.receiver.handleTimeout(now)
    if (t.get(Timer.Keepalive) <= now) {
      t.set(Timer.Keepalive, now + this.cfg.keepalive)
      if (this.isSynchronized()) {
        this.receiver.requestAck()
        this.st.keepalivesSent++
      }
    }
    this.wakeIfNeeded()
  }

  // ───────────────────────── C. app commands ─────────────────────────

  /** Queues bytes to send. Returns how many were taken; 0 = wait for Writable (or closed). */
  write(now: Millis, data: Uint8Array): number {
    void now
    if (!this.canWrite()) return 0
    const n = this.sender.write(data)
    if (n > 0) this.wake()
    return n
  }

  /** Copies received bytes. Returns the count, 0 if none yet, -1 at end of stream. */
  read(into: Uint8Array): number {
    const receiver = this.receiver
    const avail = receiver.readable
    const n = receiver.read(into)
    if (avail === 0 || n === avail) this.events.readableDrained()
    if (avail === 0) return n
    // Window update when a nearly closed window reopens (receiver SWS avoidance).
    if (this.isSynchronized() && !receiver.finished && receiver.windowReopened()) {
      receiver.requestAck()
      this.wake()
    }
    return n
  }

  /** Half-close: a FIN follows once everything written so far is acknowledged. */
  finish(now: Millis): void {
    void now
    if (this.sender.finQueued || this._state === StreamState.Closed || this._state === StreamState.TimeWait) return
    this.sender.queueFin()
    if (this._state === StreamState.CloseWait) this._state = StreamState.Closing
    else if (this._state === StreamState.Established) this._state = StreamState.FinWait
    this.wake()
  }

  /** Abort: an RST comes out of pollTransmit and the connection is closed. */
  reset(now: Millis): void {
    void now
    if (this._state === StreamState.Closed) return
    this.rstPending = true
    this.enterClosed(this.err('aborted', 'the connection was reset locally', true))
    this.receiver.discard()
    this.wake()
  }

  // ───────────────────────── D. outputs ─────────────────────────

  /**
   * Writes at most one complete packet (header + payload + CRC) at
   * `out[offset]` and returns its size; 0 when there is nothing to send now.
   */
  pollTransmit(now: Millis, out: Uint8Array, offset: number): number {
    this.pollNow = now
    const sender = this.sender
    if (this.rstPending) {
      this.rstPending = false
      return this.emit(out, offset, Flag.RST, sender.nextSeq, this.receiver.ackSeq, 0, 0)
    }
    const state = this._state
    if (state === StreamState.Closed) {
      if (sender.finPending) {
        sender.setFinPending(false) // best-effort FIN on idle timeout
        return this.emit(out, offset, Flag.FIN, sender.nextSeq, 0, this.receiver.window(), 0)
      }
      return 0
    }
    if (this.handshake.due) {
      this.handshake.sent(now, state === StreamState.SynSent || state === StreamState.SynReceived)
      if (state === StreamState.SynSent) {
        return this.emit(out, offset, Flag.SYN, this.iss, 0, this.receiver.window(), 0)
      }
      return this.emit(out, offset, Flag.SYN | Flag.ACK, this.iss, (this.irs + 1) >>> 0, this.receiver.window(), 0)
    }
    if (state === StreamState.SynSent || state === StreamState.SynReceived) return 0

    // 1. Data: retransmissions, a tail loss probe, new data (the sender's order).
    const len = sender.pollSegment(now, out, offset + HEADER_SIZE)
    if (len >= 0) {
      this.receiver.ackSent() // every data segment carries the ACK
      return this.emit(out, offset, Flag.ACK, sender.segmentSeq, this.receiver.ackSeq, this.receiver.window(), len)
    }
    // 2. FIN once everything is acknowledged; FIN|ACK replies.
    if (this.finAckPending) {
      this.finAckPending = false
      this.receiver.ackSent()
      return this.emit(out, offset, Flag.FIN | Flag.ACK, sender.finSeq, this.receiver.ackSeq, this.receiver.window(), 0)
    }
    if (sender.pollFin(now)) {
      return this.emit(out, offset, Flag.FIN, sender.finSeq, this.receiver.ackSeq, this.receiver.window(), 0)
    }
    // 3. A pure ACK (immediate, delayed-timer expiry, window update, keepalive).
    if (this.receiver.ackNow) {
      this.receiver.ackSent()
      const len = this.receiver.writeSack(out, offset + HEADER_SIZE)
      return this.emit(out, offset, Flag.ACK, sender.nextSeq, this.receiver.ackSeq, this.receiver.window(), len)
    }
    return 0
  }

  /** Earliest deadline of any timer, or null. */
  pollTimeout(): Millis | null {
    const m = Math.min(this.timers.earliest(), this.handshake.nextDeadline, this.sender.nextDeadline(), this.receiver.deadline)
    return m === Number.POSITIVE_INFINITY ? null : m
  }

  /** Next event, StreamEvent.None when drained. */
  pollEvent(): StreamEvent {
    return this.events.pop()
  }

  /** True if pollTransmit may produce something now (used by schedulers). */
  get wantsTransmit(): boolean {
    return this.rstPending || this.handshake.due || this.receiver.ackNow || this.finAckPending || this.sender.wantsTransmit
  }

  // ───────────────────────── internals: handshake ─────────────────────────

  private onDuplicateSyn(h: PacketHeader): void {
    // Retransmitted SYN of the connection we accepted: the same SYN|ACK again.
    if (this._state === StreamState.SynSent) return // simultaneous open is not supported
    if (h.seq !== this.irs || h.version !== PROTOCOL_VERSION) {
      this.st.droppedInvalid++
      return
    }
    // Same SYN|ACK again (also after we consider the connection open, as Go does).
    this.handshake.request()
  }

  private onSynAck(now: Millis, h: PacketHeader): void {
    if (this._state !== StreamState.SynSent) {
      // Our ACK of their SYN|ACK was lost: acknowledge again.
      if (h.seq === this.irs) this.receiver.requestAck()
      return
    }
    if (h.version !== PROTOCOL_VERSION) {
      this.rstPending = true
      this.enterClosed(this.err('refused', `peer answered with protocol version ${h.version}`, true))
      return
    }
    if (h.ack !== this.sndDataIsn) {
      this.st.droppedInvalid++
      return
    }
    this.irs = h.seq >>> 0
    this.startReceiving(h.window)
    this.becomeEstablished(now)
    this.receiver.requestAck() // third packet of the handshake
  }

  /** The peer's ISN is known: its data starts after it, and ISN 0 marks a Go peer (peer-window.ts). */
  private startReceiving(window: number): void {
    this.receiver.start(this.irs)
    if (this.irs === 0) {
      this.sender.countPeerSegments()
      this.receiver.peerIsGo()
    }
    this.sender.setPeerWindow(window)
  }

  private becomeEstablished(now: Millis): void {
    this._state = this.sender.finQueued ? StreamState.FinWait : StreamState.Established
    this.sender.onConnected(this.handshake.complete(now))
    this.armIdleTimers(now)
    this.events.push(StreamEvent.Connected)
    if (this.sender.wantsTransmit) this.wake() // data or a FIN queued while opening
  }

  // ───────────────────────── internals: FIN / RST ─────────────────────────

  private onFin(now: Millis, h: PacketHeader): void {
    this.armIdleTimers(now)
    const sender = this.sender
    const isFinAck = (h.flags & Flag.ACK) !== 0
    if (this._state === StreamState.SynSent) return
    if (this._state === StreamState.SynReceived) {
      if (!isFinAck || !sender.acksFin(h.ack)) {
        // A FIN before the handshake completed: treat the SYN as acknowledged.
        this.becomeEstablished(now)
      }
    }
    // Our FIN acknowledged by a FIN|ACK (ack = FIN.seq + 1).
    if (isFinAck && !sender.finAcked && sender.acksFin(h.ack)) sender.onFinAcked(now)
    if (!this.receiver.finished) {
      // A FIN that overtook data waits for the gap to fill.
      if (!this.receiver.onFin(h.seq, isFinAck)) return
      this.acceptPeerFin(isFinAck, h.window === 0)
    } else if (!isFinAck) {
      // A retransmitted FIN: our answer was lost, answer again.
      this.answerFin(false)
    }
    this.checkBothDone(now, isFinAck)
  }

  private acceptPeerFin(isFinAck: boolean, goStyle: boolean): void {
    this.receiver.finish()
    this.events.push(StreamEvent.Finished)
    this.events.pushReadable()
    if (this._state === StreamState.Established) this._state = StreamState.CloseWait
    else if (this._state === StreamState.FinWait) this._state = StreamState.Closing
    if (isFinAck) {
      // The reference answers FIN with FIN|ACK and is then gone: it neither
      // sends nor accepts more data. Nothing more to send from us either.
      this.sender.abandon()
      return
    }
    if (goStyle && !this.sender.finQueued) {
      // Window 0 on a bare FIN is how the reference closes (§6.12): it accepts
      // no more data, so close our side too with a FIN|ACK.
      this.sender.abandon()
    }
    this.answerFin(goStyle)
  }

  /** Reply to a bare FIN: FIN|ACK when we are done sending, else an ACK (half-close). */
  private answerFin(goStyle: boolean): void {
    const sender = this.sender
    if (goStyle || sender.allDataAcked || sender.abandoned) {
      this.finAckPending = true
      if (!sender.finQueued) sender.queueFin()
    } else {
      this.receiver.requestAck()
    }
  }

  /** Both directions finished: TIME_WAIT (or CLOSED at once after receiving FIN|ACK). */
  private checkBothDone(now: Millis, receivedFinAck: boolean): void {
    if (this._state === StreamState.Closed || this._state === StreamState.TimeWait) return
    if (!this.receiver.finished) return
    const sender = this.sender
    const ourSideDone = sender.finAcked || this.finAckPending || (sender.finSent && sender.allDataAcked)
    if (!ourSideDone) return
    if (receivedFinAck && sender.finAcked) {
      // The peer answered our FIN with FIN|ACK and keeps TIME_WAIT itself.
      this.enterClosed(null)
      return
    }
    this._state = StreamState.TimeWait
    this.timers.set(Timer.TimeWait, now + this.cfg.timeWait)
    this.timers.stop(Timer.Keepalive)
    this.timers.stop(Timer.Idle)
    this.receiver.stop(false)
    this.sender.stopNagle()
  }

  private onRst(): void {
    if (this._state === StreamState.SynSent) {
      this.enterClosed(this.err('refused', 'the peer refused the connection (RST)', false))
    } else if (this._state === StreamState.TimeWait) {
      this.enterClosed(null)
    } else {
      this.enterClosed(this.err('reset', 'the peer reset the connection (RST)', false))
    }
  }

  /** The sender's retransmission timer gave up: on data (reset), or on our FIN. */
  private onSenderGaveUp(): void {
    const sender = this.sender
    if (!sender.allDataAcked) {
      this.rstPending = true
      const tries = sender.headTransmissions
      this.enterClosed(this.err('retransmit-timeout', `segment sent ${tries} times without an answer`, true))
      return
    }
    // All our data was acknowledged before the FIN left. If the peer's FIN is
    // in too, both streams are complete and only the last answer was lost
    // (or the peer's TIME_WAIT ended first, §6.13): an orderly close.
    const complete = this.receiver.finished
    this.enterClosed(complete ? null : this.err('retransmit-timeout', 'FIN never acknowledged', false))
  }

  // ───────────────────────── internals: ACK and data ─────────────────────────

  private onAckPacket(now: Millis, h: PacketHeader, payload: Uint8Array): void {
    const state = this._state
    if (state === StreamState.SynSent) return
    const sender = this.sender
    const ackOff = sender.offsetOfAck(h.ack)
    const sndMax = sender.maxAckable
    if (state === StreamState.SynReceived) {
      // The third packet of the handshake (or data carrying the ACK).
      if (h.ack !== this.sndDataIsn && !(ackOff > 0 && ackOff <= sndMax)) {
        this.st.droppedInvalid++
        return
      }
      this.becomeEstablished(now)
    }
    if (ackOff > sndMax) {
      // Acknowledges bytes we never sent: drop, and tell the peer where we are.
      this.st.droppedInvalid++
      this.receiver.requestAck()
      return
    }
    this.armIdleTimers(now)
    const sackCount = payload.length >= 5 ? sackBlockCount(payload) : 0
    const outcome = sender.onAck(now, ackOff, h.window, payload, sackCount)
    if ((outcome & AckOutcome.Writable) !== 0) this.events.push(StreamEvent.Writable)
    if ((outcome & AckOutcome.FinAcked) !== 0) this.checkBothDone(now, false)
    if (payload.length > 0 && sackCount === 0) this.onData(now, h.seq, payload)
  }

  private onData(now: Millis, seq: number, payload: Uint8Array): void {
    const st = this._state
    if (st !== StreamState.Established && st !== StreamState.FinWait) {
      // Data in any other state (after the peer's FIN) is not accepted; say so.
      this.receiver.requestAck()
      return
    }
    if (!this.receiver.onData(now, seq, payload)) return
    this.events.pushReadable()
    if (this.receiver.complete) {
      this.acceptPeerFin(false, false)
      this.checkBothDone(now, false)
    }
  }

  // ───────────────────────── internals: misc ─────────────────────────

  private armIdleTimers(now: Millis): void {
    this.timers.set(Timer.Idle, now + this.cfg.idleTimeout)
    // Keepalive counts from our last transmission (see emit), so both sides
    // send one every 30 s on an idle connection and each refreshes the other.
    this.timers.setIfUnset(Timer.Keepalive, now + this.cfg.keepalive)
  }

  private emit(out: Uint8Array, offset: number, flags: number, seq: number, ack: number, window: number, len: number): number {
    const h = this.hdr
    h.flags = flags
    h.seq = seq >>> 0
    h.ack = ack >>> 0
    h.window = window
    const n = encodePacketInPlace(h, out, offset, len)
    if (this.timers.isSet(Timer.Keepalive)) this.timers.set(Timer.Keepalive, this.pollNow + this.cfg.keepalive)
    this.st.packetsSent++
    this.st.bytesSent += n
    if ((flags & Flag.ACK) !== 0) this.receiver.advertised(window)
    return n
  }

  private isSynchronized(): boolean {
    const s = this._state
    return s === StreamState.Established || s === StreamState.FinWait || s === StreamState.CloseWait || s === StreamState.Closing
  }

  private canWrite(): boolean {
    const s = this._state
    return (
      !this.sender.finQueued &&
      (s === StreamState.SynSent || s === StreamState.SynReceived || s === StreamState.Established || s === StreamState.CloseWait)
    )
  }

  private enterClosed(error: SessionError | null): void {
    if (this._state === StreamState.Closed) return
    this._state = StreamState.Closed
    this._error = error
    this.timers.stopAll()
    this.sender.stop()
    this.sender.leaveShare()
    this.sender.dropBytes()
    this.receiver.stop(true)
    this.finAckPending = false
    this.handshake.stop()
    if (error !== null) {
      if (!this.receiver.finished) this.events.pushReadable() // read() now reports the end
      this.receiver.abort()
    }
    this.events.push(StreamEvent.Closed)
  }

  private err(reason: SessionCloseReason, message: string, sentRst: boolean): SessionError {
    return new SessionError(reason, message, sentRst)
  }

  /** New data also waits for `share`, the flight of every stream to this peer (set by the endpoint). */
  joinShare(share: FlightShare): void {
    if (this._state !== StreamState.Closed) this.sender.joinShare(share, this)
  }

  /** The share has room again: new data may go. */
  onShareRoom(): void {
    this.wakeIfNeeded()
  }

  private wake(): void {
    if (!this.queued && this.scheduler !== null) this.scheduler.wake(this)
  }

  private wakeIfNeeded(): void {
    if (!this.queued && this.scheduler !== null && (this.wantsTransmit || this._state === StreamState.Closed)) {
      this.scheduler.wake(this)
    }
  }
}
