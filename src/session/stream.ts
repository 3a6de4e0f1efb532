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
 * The connection is the one place that changes connection state; it is built
 * from pieces that each own their data:
 *   SendBuffer        written bytes and the segment records with their scoreboard
 *   ReceiveAssembler  received bytes in or out of order, SACK ranges, the window
 *   LossDetector      SACK/ACK delivery, RACK and duplicate ACKs (RFC 8985 §6)
 *   Recovery          fast-recovery and RTO episodes, PRR (RFC 6937)
 *   TailLossProbe     what a tail loss probe needs (RFC 8985 §7)
 *   RttEstimator      SRTT, RTO and its backoff (RFC 6298)
 *   TimerTable        every deadline; CongestionController turns losses into a window
 * A silent path is given up after maxTransmissions RTO transmissions and
 * retransmitGiveUp.
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
import { MAX_SACK_BLOCKS, decodeSackInto, sackBlockCount } from '../protocol/sack.js'
import type { CongestionController } from './congestion.js'
import { SessionError, type SessionCloseReason } from './errors.js'
import { EventQueue } from './event-queue.js'
import { LossDetector } from './loss-detector.js'
import { fillHeader } from './packet-fields.js'
import { ReceiveAssembler, Accepted } from './receive-assembler.js'
import { Recovery } from './recovery.js'
import { RttEstimator } from './rtt.js'
import { SendBuffer } from './send-buffer.js'
import { seqDiff } from './seq.js'
import {
  StreamEvent,
  StreamState,
  WINDOW_UNIT,
  newStreamStats,
  resolveStreamConfig,
  type PassiveOpen,
  type StreamConfig,
  type StreamStats,
} from './stream-config.js'
import { TailLossProbe } from './tail-probe.js'
import { TimerTable } from './timers.js'
import type { Millis } from './types.js'
import type { RandomSource } from '../random.js'

export * from './stream-config.js'

const INITIAL_RING = 64 * 1024

const enum Timer {
  Retransmit = 0,
  DelayedAck = 1,
  Nagle = 2,
  Keepalive = 3,
  Idle = 4,
  TimeWait = 5,
  /** RACK reordering window: a candidate segment becomes lost (RFC 8985 §6.2). */
  Reorder = 6,
  /** Tail loss probe (RFC 8985 §7). */
  Probe = 7,
  Count = 8,
}

/** Something that wants to hear when a connection may have packets to send. */
export interface TransmitScheduler {
  wake(conn: StreamConnection): void
}

export class StreamConnection {
  readonly localAddress: PilotAddress
  readonly localPort: number
  readonly remoteAddress: PilotAddress
  readonly remotePort: number
  /** Set by the endpoint; lets the connection re-queue itself for transmission. */
  scheduler: TransmitScheduler | null = null
  /** Scheduler bookkeeping: true while queued. */
  queued = false
  /** Endpoint bookkeeping: the numeric demux key parts. */
  readonly remoteKey: number
  readonly portsKey: number

  private _state: StreamState
  private _error: SessionError | null = null
  private readonly cfg: StreamConfig
  private readonly cc: CongestionController
  private readonly hdr = new PacketHeader()
  private readonly timers = new TimerTable(Timer.Count)
  private readonly events = new EventQueue()
  private readonly st: StreamStats = newStreamStats()

  // --- send side (offsets count data bytes from 0; seq = sndDataIsn + offset) ---
  private readonly iss: number
  private readonly sndDataIsn: number // seq of data offset 0 = iss + 1
  private readonly snd: SendBuffer
  private readonly loss = new LossDetector()
  private readonly recovery = new Recovery()
  private readonly tlp = new TailLossProbe()
  private readonly rtt: RttEstimator
  private writeBlocked = false
  private peerWindow = 0 // bytes; 0 = no limit
  private peerWindowSlots = 0
  private rtoRetransmitNow = false // the receiver's window reopened during a backoff
  private nagleExpired = false
  private lastRecvAfterRetx = true
  private sendSideAbandoned = false
  private readonly sackPairs = new Uint32Array(2 * MAX_SACK_BLOCKS)
  // SYN / SYN|ACK
  private synPending = false
  private synTx = 0
  private synRto: number
  private readonly openedAt: Millis

  // --- receive side ---
  private irs = 0
  private rcvDataIsn = 0
  private readonly rcv: ReceiveAssembler
  private ackNow = false
  private unackedSegments = 0
  private lastAdvertised = 0
  private peerFinOff = -1 // offset of a FIN seen before its data arrived
  private peerFinished = false

  // --- close ---
  private finQueued = false
  private finOff = 0
  private finSent = false
  private finAcked = false
  private finPending = false
  private finTx = 0
  private finAckPending = false // reply FIN|ACK to a bare FIN
  private rstPending = false

  private lastRecv: Millis
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
    this.cc = cfg.congestion(cfg.mss)
    this.rtt = new RttEstimator(cfg)
    this.snd = new SendBuffer(cfg.sendBufferSize, INITIAL_RING)
    this.rcv = new ReceiveAssembler(cfg)
    this.synRto = cfg.synInitialRto
    this.openedAt = now
    this.lastRecv = now
    fillHeader(this.hdr, Protocol.STREAM, 0, local, localPort, remote, remotePort, 0, 0, 0)

    this.iss = cfg.isn !== null ? cfg.isn >>> 0 : random.u32() >>> 1
    this.sndDataIsn = (this.iss + 1) >>> 0

    if (passive === null) {
      this._state = StreamState.SynSent
    } else {
      this._state = StreamState.SynReceived
      this.irs = passive.synSeq >>> 0
      this.rcvDataIsn = (this.irs + 1) >>> 0
      this.setPeerWindow(passive.synWindow)
    }
    this.synPending = true
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
    return this.rcv.readable
  }

  /** Bytes written but not yet acknowledged. */
  get writableLength(): number {
    return this.snd.end - this.snd.una
  }

  /** Free space for write(). */
  get writeCapacity(): number {
    return this.canWrite() ? this.snd.capacity : 0
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
    return this.peerFinished && this.rcv.readable === 0
  }

  stats(): StreamStats {
    const st = this.st
    st.lostSegments = this.loss.lostSegments
    st.spuriousRetransmits = this.loss.spuriousRetransmits
    st.srtt = this.rtt.srtt
    st.rto = this.rtt.rto
    st.cwnd = this.cc.cwnd
    return { ...st }
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
      this.finPending = this.isSynchronized()
      this.enterClosed(this.err('idle-timeout', `nothing received for ${this.cfg.idleTimeout} ms`, false))
      this.wake()
      return
    }
    if (t.expire(Timer.Probe, now) && this.snd.count > 0 && !this.tlp.outstanding) {
      // The probe goes first, also when the RTO is due at the same time (RFC 8985 §7.2).
      this.tlp.due = true
      if (t.get(Timer.Retransmit) <= now) t.set(Timer.Retransmit, now + this.rtt.rto)
    }
    if (t.expire(Timer.Retransmit, now)) {
      this.onRetransmitTimer(now)
      if (this.isClosed) return
    }
    if (t.expire(Timer.Reorder, now) && this.snd.count > 0) this.detectLosses(now, 0)
    if (t.expire(Timer.DelayedAck, now)) this.ackNow = true
    if (t.expire(Timer.Nagle, now)) this.nagleExpired = true
    if (t.get(Timer.Keepalive) <= now) {
      t.set(Timer.Keepalive, now + this.cfg.keepalive)
      if (this.isSynchronized()) {
        this.ackNow = true
        this.st.keepalivesSent++
      }
    }
    this.wakeIfNeeded()
  }

  // ───────────────────────── C. app commands ─────────────────────────

  /** Queues bytes to send. Returns how many were taken; 0 = wait for Writable (or closed). */
  write(now: Millis, data: Uint8Array): number {
    if (!this.canWrite()) return 0
    const n = Math.min(this.snd.capacity, data.length)
    if (n < data.length) this.writeBlocked = true
    if (n === 0) return 0
    this.snd.write(data, n)
    if (!this.timers.isSet(Timer.Nagle)) this.nagleExpired = false
    void now
    this.wake()
    return n
  }

  /** Copies received bytes. Returns the count, 0 if none yet, -1 at end of stream. */
  read(into: Uint8Array): number {
    const avail = this.rcv.readable
    if (avail === 0) {
      this.events.readableDrained()
      return this.peerFinished ? -1 : 0
    }
    const n = this.rcv.read(into)
    if (n === avail) this.events.readableDrained()
    // Window update when a nearly closed window reopens (receiver SWS avoidance).
    if (this.isSynchronized() && !this.peerFinished) {
      if (this.lastAdvertised < this.rcv.maxWindow / 2 && this.rcv.window() >= this.lastAdvertised + 2) {
        this.ackNow = true
        this.wake()
      }
    }
    return n
  }

  /** Half-close: a FIN follows once everything written so far is acknowledged. */
  finish(now: Millis): void {
    void now
    if (this.finQueued || this._state === StreamState.Closed || this._state === StreamState.TimeWait) return
    this.finQueued = true
    this.finOff = this.snd.end
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
    this.wake()
  }

  // ───────────────────────── D. outputs ─────────────────────────

  /**
   * Writes at most one complete packet (header + payload + CRC) at
   * `out[offset]` and returns its size; 0 when there is nothing to send now.
   */
  pollTransmit(now: Millis, out: Uint8Array, offset: number): number {
    this.pollNow = now
    const snd = this.snd
    if (this.rstPending) {
      this.rstPending = false
      return this.emit(out, offset, Flag.RST, this.seqOfSnd(snd.nxt), this.rcvAckSeq(), 0, 0)
    }
    const state = this._state
    if (state === StreamState.Closed) {
      if (this.finPending) {
        this.finPending = false // best-effort FIN on idle timeout
        return this.emit(out, offset, Flag.FIN, this.seqOfSnd(snd.nxt), 0, this.rcv.window(), 0)
      }
      return 0
    }
    if (this.synPending) {
      this.synPending = false
      if (state === StreamState.SynSent || state === StreamState.SynReceived) {
        this.synTx++
        this.timers.set(Timer.Retransmit, Math.min(now + this.synRto, this.openedAt + this.cfg.connectTimeout))
      }
      if (state === StreamState.SynSent) {
        return this.emit(out, offset, Flag.SYN, this.iss, 0, this.rcv.window(), 0)
      }
      return this.emit(out, offset, Flag.SYN | Flag.ACK, this.iss, this.rcvDataIsn, this.rcv.window(), 0)
    }
    if (state === StreamState.SynSent || state === StreamState.SynReceived) return 0

    // 1. Retransmissions: the window-reopen probe, then segments deemed lost
    //    (while lost segments wait for the window, new data waits too), then a
    //    tail loss probe.
    if (snd.count > 0) {
      const n = this.sendRetransmission(now, out, offset)
      if (n > 0) return n
    }
    // 2. New data.
    if (snd.unsent > 0 && snd.lostSegments === 0) {
      const n = this.sendNewData(now, out, offset, false)
      if (n > 0) return n
    }
    // 3. FIN once everything is acknowledged; FIN|ACK replies.
    if (this.finAckPending) {
      this.finAckPending = false
      this.ackNow = false
      this.timers.stop(Timer.DelayedAck)
      const seq = this.finSent ? this.seqOfSnd(this.finOff) : this.seqOfSnd(snd.nxt)
      return this.emit(out, offset, Flag.FIN | Flag.ACK, seq, this.rcvAckSeq(), this.rcv.window(), 0)
    }
    if (this.finQueued && !this.finAcked && snd.una === this.finOff && snd.nxt === this.finOff) {
      if (!this.finSent || this.finPending) {
        this.finSent = true
        this.finPending = false
        this.finTx++
        this.timers.setIfUnset(Timer.Retransmit, now + this.rtt.rto)
        return this.emit(out, offset, Flag.FIN, this.seqOfSnd(this.finOff), this.rcvAckSeq(), this.rcv.window(), 0)
      }
    }
    // 4. A pure ACK (immediate, delayed-timer expiry, window update, keepalive).
    if (this.ackNow) {
      this.ackNow = false
      this.unackedSegments = 0
      this.timers.stop(Timer.DelayedAck)
      const len = this.rcv.writeSack(out, offset + HEADER_SIZE, this.rcvDataIsn)
      return this.emit(out, offset, Flag.ACK, this.seqOfSnd(snd.nxt), this.rcvAckSeq(), this.rcv.window(), len)
    }
    return 0
  }

  /** Earliest deadline of any timer, or null. */
  pollTimeout(): Millis | null {
    return this.timers.next()
  }

  /** Next event, StreamEvent.None when drained. */
  pollEvent(): StreamEvent {
    return this.events.pop()
  }

  /** True if pollTransmit may produce something now (used by schedulers). */
  get wantsTransmit(): boolean {
    return (
      this.rstPending ||
      this.synPending ||
      this.ackNow ||
      this.finAckPending ||
      this.finPending ||
      this.rtoRetransmitNow ||
      this.tlp.due ||
      this.tlp.secondDue ||
      this.snd.unsent > 0 ||
      this.snd.lostSegments > 0 ||
      (this.finQueued && !this.finSent)
    )
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
    this.synPending = true
  }

  private onSynAck(now: Millis, h: PacketHeader): void {
    if (this._state !== StreamState.SynSent) {
      // Our ACK of their SYN|ACK was lost: acknowledge again.
      if (h.seq === this.irs) this.ackNow = true
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
    this.rcvDataIsn = (this.irs + 1) >>> 0
    this.setPeerWindow(h.window)
    this.lastRecv = now
    this.becomeEstablished(now)
    this.ackNow = true // third packet of the handshake
  }

  private becomeEstablished(now: Millis): void {
    this._state = this.finQueued ? StreamState.FinWait : StreamState.Established
    this.timers.stop(Timer.Retransmit)
    this.synPending = false
    // An RTT sample from the handshake when the SYN went out once (Karn).
    if (this.synTx === 1) {
      this.rtt.addSample(now - this.openedAt)
      this.loss.observeRtt(now - this.openedAt)
    }
    this.rtt.clearBackoff()
    this.armIdleTimers(now)
    this.events.push(StreamEvent.Connected)
    if (this.snd.unsent > 0 || this.finQueued) this.wake()
  }

  // ───────────────────────── internals: FIN / RST ─────────────────────────

  private onFin(now: Millis, h: PacketHeader): void {
    this.lastRecv = now
    this.armIdleTimers(now)
    const isFinAck = (h.flags & Flag.ACK) !== 0
    if (this._state === StreamState.SynSent) return
    if (this._state === StreamState.SynReceived) {
      if (!isFinAck || !this.finAckAcksOurFin(h.ack)) {
        // A FIN before the handshake completed: treat the SYN as acknowledged.
        this.becomeEstablished(now)
      }
    }
    // Our FIN acknowledged by a FIN|ACK (ack = FIN.seq + 1).
    if (isFinAck && this.finSent && !this.finAcked && this.finAckAcksOurFin(h.ack)) {
      this.processAck(now, this.finOff, false)
      this.finAcked = true
      this.finAckedNow()
    }
    if (!this.peerFinished) {
      // Where does the peer's data end? Go's FIN does not wait for its data to be
      // acknowledged, so a FIN can overtake data: remember it until the gap fills.
      const finOff = this.rcv.offsetOf(h.seq, this.rcvDataIsn)
      if (!isFinAck && this.rcv.canEndAt(finOff)) {
        this.peerFinOff = finOff
        this.ackNow = true
        return
      }
      this.acceptPeerFin(isFinAck, h.window === 0)
    } else if (!isFinAck) {
      // A retransmitted FIN: our answer was lost, answer again.
      this.answerFin(false)
    }
    this.checkBothDone(now, isFinAck)
  }

  private finAckAcksOurFin(ack: number): boolean {
    return this.finSent && ack === this.seqOfSnd(this.finOff + 1)
  }

  private acceptPeerFin(isFinAck: boolean, goStyle: boolean): void {
    this.peerFinished = true
    this.peerFinOff = -1
    this.rcv.clearOutOfOrder()
    this.events.push(StreamEvent.Finished)
    this.events.pushReadable()
    if (this._state === StreamState.Established) this._state = StreamState.CloseWait
    else if (this._state === StreamState.FinWait) this._state = StreamState.Closing
    if (isFinAck) {
      // The reference answers FIN with FIN|ACK and is then gone: it neither
      // sends nor accepts more data. Nothing more to send from us either.
      this.abandonSendSide()
      return
    }
    if (goStyle && !this.finQueued) {
      // Window 0 on a bare FIN is how the reference closes (§6.12): it accepts
      // no more data, so close our side too with a FIN|ACK.
      this.abandonSendSide()
    }
    this.answerFin(goStyle)
  }

  /** Reply to a bare FIN: FIN|ACK when we are done sending, else an ACK (half-close). */
  private answerFin(goStyle: boolean): void {
    if (goStyle || (this.finQueued && this.snd.una === this.finOff) || this.sendSideAbandoned) {
      this.finAckPending = true
      if (!this.finQueued) {
        this.finQueued = true
        this.finOff = this.snd.nxt
      }
    } else {
      this.ackNow = true
    }
  }

  private abandonSendSide(): void {
    this.sendSideAbandoned = true
    // Drop whatever is not acknowledged: the peer will not take it.
    this.snd.abandon()
    this.finQueued = true
    this.finOff = this.snd.end
    this.finAcked = true
    this.stopSending()
    this.timers.stop(Timer.Retransmit)
    this.timers.stop(Timer.Nagle)
    this.timers.stop(Timer.Reorder)
    this.timers.stop(Timer.Probe)
  }

  /** No recovery episode, retransmission or probe is pending any more. */
  private stopSending(): void {
    this.recovery.end()
    this.rtoRetransmitNow = false
    this.tlp.reset()
  }

  private finAckedNow(): void {
    this.timers.stop(Timer.Retransmit)
    this.finPending = false
  }

  /** Both directions finished: TIME_WAIT (or CLOSED at once after receiving FIN|ACK). */
  private checkBothDone(now: Millis, receivedFinAck: boolean): void {
    if (this._state === StreamState.Closed || this._state === StreamState.TimeWait) return
    if (!this.peerFinished) return
    const ourSideDone = this.finAcked || this.finAckPending || (this.finQueued && this.finSent && this.snd.una === this.finOff)
    if (!ourSideDone) return
    if (receivedFinAck && this.finAcked) {
      // The peer answered our FIN with FIN|ACK and keeps TIME_WAIT itself.
      this.enterClosed(null)
      return
    }
    this._state = StreamState.TimeWait
    this.timers.set(Timer.TimeWait, now + this.cfg.timeWait)
    this.timers.stop(Timer.Keepalive)
    this.timers.stop(Timer.Idle)
    this.timers.stop(Timer.DelayedAck)
    this.timers.stop(Timer.Nagle)
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

  // ───────────────────────── internals: ACK and data ─────────────────────────

  private onAckPacket(now: Millis, h: PacketHeader, payload: Uint8Array): void {
    const state = this._state
    if (state === StreamState.SynSent) return
    const snd = this.snd
    const ackOff = snd.una + seqDiff(h.ack, this.seqOfSnd(snd.una))
    const sndMax = this.finSent ? this.finOff + 1 : snd.nxt
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
      this.ackNow = true
      return
    }
    this.lastRecv = now
    this.lastRecvAfterRetx = true
    this.armIdleTimers(now)

    const sackCount = payload.length >= 5 ? sackBlockCount(payload) : 0
    if (ackOff >= snd.una) {
      const prevSlots = this.peerWindowSlots
      this.setPeerWindow(h.window)
      const deliveredBefore = snd.delivered
      if (ackOff > snd.una) {
        this.processAck(now, ackOff, true)
      } else if (payload.length === 0 && snd.count > 0) {
        if (h.window > prevSlots && prevSlots !== 0 && this.rtt.backoff > 0) {
          // The receiver's window reopened while we were backing off a probe:
          // retransmit the head now instead of waiting out the backed-off RTO.
          this.rtoRetransmitNow = true
          this.timers.set(Timer.Retransmit, now + this.rtt.rto)
        } else {
          this.loss.onDuplicateAck()
        }
      }
      if (sackCount > 0 && snd.count > 0) {
        decodeSackInto(payload, this.sackPairs)
        this.loss.onSack(now, snd, this.sackPairs, sackCount, this.seqOfSnd(snd.una))
      }
      if (snd.count > 0) {
        this.loss.applyDuplicateAcks(snd, this.recovery.active)
        const delivered = snd.delivered - deliveredBefore
        this.detectLosses(now, delivered)
        if (delivered > 0) this.armProbe(now)
      } else {
        this.timers.stop(Timer.Probe)
        this.timers.stop(Timer.Reorder)
      }
      if (this.finSent && !this.finAcked && ackOff === this.finOff + 1) {
        this.finAcked = true
        this.finAckedNow()
        this.checkBothDone(now, false)
      }
    }
    if (payload.length > 0 && sackCount === 0) this.onData(now, h.seq, payload)
  }

  /** Cumulative ACK up to `ackOff` (a data offset; finOff + 1 is clipped). */
  private processAck(now: Millis, ackOffIn: number, fromAckPacket: boolean): void {
    const snd = this.snd
    const ackOff = Math.min(ackOffIn, snd.nxt)
    if (ackOff <= snd.una) return
    const acked = ackOff - snd.una
    const rttSample = this.loss.onCumulativeAck(now, snd, ackOff)
    this.rtt.onProgress(rttSample)
    // Slow start / congestion avoidance outside fast recovery; after an RTO the
    // window grows again from the loss window while the holes are refilled.
    if (!this.recovery.isFast && fromAckPacket) this.cc.onAck(now, acked, snd.flight, rttSample)
    if (this.recovery.endsAt(ackOff)) {
      if (this.recovery.isFast) this.cc.onRecoveryEnd(now)
      this.recovery.end()
      this.loss.onRecoveryEnd()
    }
    // A retransmitted probe that repaired a real tail loss costs one response.
    const probeFlight = this.tlp.onAck(now, ackOff, this.recovery.active, this.loss.minRtt)
    if (probeFlight >= 0) {
      this.cc.onCongestionEvent(now, probeFlight)
      this.cc.onRecoveryEnd(now)
    }
    if (snd.count > 0 || (this.finSent && !this.finAcked)) this.timers.set(Timer.Retransmit, now + this.rtt.rto)
    else this.timers.stop(Timer.Retransmit)
    if (this.writeBlocked && this.writeCapacity > 0) {
      this.writeBlocked = false
      this.events.push(StreamEvent.Writable)
    }
  }

  private onData(now: Millis, seq: number, payload: Uint8Array): void {
    const st = this._state
    if (st !== StreamState.Established && st !== StreamState.FinWait) {
      // Data in any other state (after the peer's FIN) is not accepted; say so.
      this.ackNow = true
      return
    }
    this.st.dataSegmentsReceived++
    const result = this.rcv.accept(this.rcv.offsetOf(seq, this.rcvDataIsn), payload, this.peerFinOff)
    if (result >= Accepted.OutOfOrder) {
      if (result === Accepted.OutOfOrder) this.st.outOfOrderSegments++
      else if (result === Accepted.Duplicate) this.st.duplicateSegments++ // our ACK was lost or late
      else if (result === Accepted.NoSpace) this.st.droppedNoSpace++
      this.ackNow = true // out of order: an immediate ACK with SACK
      return
    }
    this.events.pushReadable()
    if (this.peerFinOff >= 0 && this.rcv.nxt >= this.peerFinOff) {
      this.rcv.endAt(this.peerFinOff)
      this.acceptPeerFin(false, false)
      this.checkBothDone(now, false)
      return
    }
    if (result === Accepted.FilledGap || ++this.unackedSegments >= 2) {
      this.ackNow = true
    } else {
      this.timers.setIfUnset(Timer.DelayedAck, now + this.cfg.delayedAck)
    }
  }

  // ───────────────────────── internals: loss recovery ─────────────────────────

  /** After an ACK (or the reordering timer): mark losses, enter or pace recovery. */
  private detectLosses(now: Millis, delivered: number): void {
    const snd = this.snd
    const wait = this.loss.detectLosses(now, snd, this.rtt.srtt, this.recovery.active)
    if (wait > 0) this.timers.set(Timer.Reorder, now + wait)
    else this.timers.stop(Timer.Reorder)
    if (snd.lostSegments > 0 && !this.recovery.active) {
      // One congestion response per episode; it covers a probe's loss too.
      this.cc.onCongestionEvent(now, snd.outstanding)
      this.recovery.enterFast(snd.nxt, snd.outstanding)
      this.st.fastRetransmits++
      this.tlp.cancel()
    }
    if (this.recovery.isFast) this.recovery.onAck(delivered, snd.pipe, this.cc.ssthresh, this.cfg.mss)
  }

  /** Arms the tail loss probe timer, unless a probe is outstanding (never later than the RTO). */
  private armProbe(now: Millis): void {
    const pto = this.tlp.outstanding || this.snd.count === 0 ? -1 : this.tlp.timeout(this.rtt.srtt, this.snd.flight, this.cfg)
    if (pto < 0) this.timers.stop(Timer.Probe)
    else this.timers.set(Timer.Probe, Math.min(now + pto, this.timers.get(Timer.Retransmit)))
  }

  private onRetransmitTimer(now: Millis): void {
    const state = this._state
    if (state === StreamState.SynSent || state === StreamState.SynReceived) {
      if (now - this.openedAt >= this.cfg.connectTimeout) {
        this.enterClosed(this.err('connect-timeout', `no answer to SYN after ${this.synTx} tries`, false))
        return
      }
      this.synRto = Math.min(this.synRto * 2, this.cfg.synMaxRto)
      this.synPending = true
      this.st.synRetransmits++
      if (state === StreamState.SynSent) this.events.push(StreamEvent.SynRetransmitted)
      // Never sleep past the connect deadline.
      this.timers.set(Timer.Retransmit, Math.min(now + this.synRto, this.openedAt + this.cfg.connectTimeout))
      return
    }
    const snd = this.snd
    if (snd.count > 0) {
      // Give up when the maxTransmissions-th transmission times out on a silent
      // path (§6.10). Only RTO retransmissions count: probes and SACK/RACK
      // repairs are extra tries the reference would not have made.
      const silentFor = this.rtt.timeoutSeriesAge(now)
      if (this.rtt.backoff + 1 >= this.cfg.maxTransmissions && !this.lastRecvAfterRetx && silentFor >= this.cfg.retransmitGiveUp) {
        this.rstPending = true
        const tries = snd.transmissions(snd.head)
        this.enterClosed(this.err('retransmit-timeout', `segment sent ${tries} times without an answer`, true))
        return
      }
      this.st.rtoTimeouts++
      this.cc.onRto(now, snd.flight)
      this.rtt.backOff()
      // Everything outstanding and un-SACKed is presumed lost (RFC 6675 §5.1,
      // RFC 8985 §6.3); retransmissions go out in slow start from the loss window.
      this.recovery.enterRto(snd.nxt)
      snd.markAllLost()
      this.loss.onRto()
      this.tlp.reset()
      this.timers.stop(Timer.Probe)
      this.timers.stop(Timer.Reorder)
      this.lastRecvAfterRetx = false
      this.timers.set(Timer.Retransmit, now + this.rtt.rto)
      return
    }
    if (this.finSent && !this.finAcked) {
      if (this.finTx >= this.cfg.maxTransmissions) {
        // All our data was acknowledged before the FIN left. If the peer's FIN is
        // in too, both streams are complete and only the last answer was lost
        // (or the peer's TIME_WAIT ended first, §6.13): an orderly close.
        const complete = this.peerFinished && snd.una === this.finOff
        this.enterClosed(complete ? null : this.err('retransmit-timeout', 'FIN never acknowledged', false))
        return
      }
      this.finPending = true
      this.rtt.backOff()
      this.timers.set(Timer.Retransmit, now + this.rtt.rto)
    }
  }

  private armIdleTimers(now: Millis): void {
    this.timers.set(Timer.Idle, now + this.cfg.idleTimeout)
    // Keepalive counts from our last transmission (see emit), so both sides
    // send one every 30 s on an idle connection and each refreshes the other.
    this.timers.setIfUnset(Timer.Keepalive, now + this.cfg.keepalive)
  }

  // ───────────────────────── internals: sending ─────────────────────────

  /** Step 1 of pollTransmit: the window-reopen retransmission, a lost segment, or a tail loss probe. */
  private sendRetransmission(now: Millis, out: Uint8Array, offset: number): number {
    const snd = this.snd
    if (this.rtoRetransmitNow) {
      this.rtoRetransmitNow = false
      const i = snd.firstUnsacked()
      if (i >= 0) return this.retransmit(now, out, offset, i)
    }
    if (snd.lostSegments > 0) {
      const i = snd.nextLostToSend(this.recovery.window(this.cc.cwnd))
      if (i >= 0) return this.retransmit(now, out, offset, i)
    }
    if (this.tlp.due) {
      this.tlp.due = false
      const n = this.sendProbe(now, out, offset)
      if (n > 0) return n
    }
    if (this.tlp.secondDue) {
      this.tlp.secondDue = false
      const n = this.sendNewData(now, out, offset, true)
      if (n > 0) {
        this.tlp.extendTo(snd.nxt)
        this.timers.stop(Timer.Probe)
        return n
      }
    }
    return 0
  }

  /**
   * The probe: new data if the peer's window allows, else the last segment
   * again. New data goes out as two segments where there are two (RFC 8985 has
   * one): receivers (ours and the reference, §6.6) acknowledge every second
   * segment at once but hold a lone in-order one for their 40 ms delayed ACK,
   * which on a LAN is a hundred round trips.
   */
  private sendProbe(now: Millis, out: Uint8Array, offset: number): number {
    const snd = this.snd
    let n = 0
    let retransmission = false
    if (snd.unsent > 0) {
      n = this.sendNewData(now, out, offset, true)
      if (n > 0) this.tlp.secondDue = true
    }
    if (n === 0) {
      const i = snd.lastUnsacked()
      if (i < 0) return 0
      n = this.retransmit(now, out, offset, i)
      snd.markProbed(i)
      retransmission = true
    }
    this.st.probes++
    this.tlp.onSent(now, snd.nxt, retransmission, snd.outstanding)
    this.timers.stop(Timer.Probe)
    this.timers.set(Timer.Retransmit, now + this.rtt.rto) // RFC 8985 §7.3: the RTO follows a probe
    return n
  }

  /** One new segment if the windows allow; a tail loss probe (`probe`) ignores cwnd and Nagle. */
  private sendNewData(now: Millis, out: Uint8Array, offset: number, probe: boolean): number {
    const snd = this.snd
    const mss = this.cfg.mss
    const unsent = snd.unsent
    let len = Math.min(mss, unsent)
    // The peer's window is counted from its cumulative ACK, SACKed bytes included.
    const peerRoom = this.peerWindow > 0 ? this.peerWindow - snd.outstanding : Number.POSITIVE_INFINITY
    if (probe) {
      if (peerRoom < len) return 0
    } else {
      const flight = snd.pipe
      let wnd = this.recovery.window(this.cc.cwnd)
      if (this.peerWindow > 0 && this.peerWindow < wnd) wnd = this.peerWindow
      const avail = Math.min(wnd - flight, peerRoom)
      if (avail < len) {
        // Window-limited: ACKs (or the RTO probe of a full receiver) reopen it.
        // With nothing in flight, send what fits rather than deadlock.
        if (flight > 0 || avail <= 0) return 0
        len = avail
      }
      // Nagle: hold a small segment while data is unacknowledged (≤ 40 ms).
      if (len < mss && len === unsent && !this.cfg.noDelay && !this.finQueued && snd.outstanding > 0 && !this.nagleExpired) {
        this.timers.setIfUnset(Timer.Nagle, now + this.cfg.nagleDelay)
        return 0
      }
    }
    // Never let a data payload start with the SACK pattern (§17 item 14).
    if (len >= 5 && snd.nextLooksLikeSack(len)) len = 1
    const i = snd.cutSegment(len)
    if (snd.unsent === 0) {
      this.nagleExpired = false
      this.timers.stop(Timer.Nagle)
    }
    return this.sendSegment(now, out, offset, i, false)
  }

  /** Sends record i again with its original boundaries (§20 item 10). */
  private retransmit(now: Millis, out: Uint8Array, offset: number, i: number): number {
    this.snd.prepareRetransmit(i)
    return this.sendSegment(now, out, offset, i, true)
  }

  private sendSegment(now: Millis, out: Uint8Array, offset: number, i: number, retransmission: boolean): number {
    const len = this.snd.transmit(i, now, out, offset + HEADER_SIZE)
    if (retransmission) this.st.retransmits++
    this.recovery.onSent(len)
    this.st.dataSegmentsSent++
    this.timers.setIfUnset(Timer.Retransmit, now + this.rtt.rto)
    if (!retransmission) this.armProbe(now)
    this.ackNow = false
    this.unackedSegments = 0
    this.timers.stop(Timer.DelayedAck)
    const seq = this.seqOfSnd(this.snd.offsetOf(i))
    return this.emit(out, offset, Flag.ACK, seq, this.rcvAckSeq(), this.rcv.window(), len)
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
    if ((flags & Flag.ACK) !== 0) this.lastAdvertised = window
    return n
  }

  // ───────────────────────── internals: misc ─────────────────────────

  private setPeerWindow(slots: number): void {
    this.peerWindowSlots = slots
    this.peerWindow = slots * WINDOW_UNIT
  }

  private seqOfSnd(off: number): number {
    return (this.sndDataIsn + off) >>> 0
  }

  private rcvAckSeq(): number {
    const nxt = this.rcv.nxt
    return (this.rcvDataIsn + (this.peerFinished ? nxt + 1 : nxt)) >>> 0
  }

  private isSynchronized(): boolean {
    const s = this._state
    return s === StreamState.Established || s === StreamState.FinWait || s === StreamState.CloseWait || s === StreamState.Closing
  }

  private canWrite(): boolean {
    const s = this._state
    return (
      !this.finQueued &&
      (s === StreamState.SynSent || s === StreamState.SynReceived || s === StreamState.Established || s === StreamState.CloseWait)
    )
  }

  private enterClosed(error: SessionError | null): void {
    if (this._state === StreamState.Closed) return
    this._state = StreamState.Closed
    this._error = error
    this.timers.stopAll()
    this.stopSending()
    this.ackNow = false
    this.finAckPending = false
    this.synPending = false
    if (!this.peerFinished && error !== null) this.events.pushReadable() // read() now reports the end
    if (error !== null) this.peerFinished = true
    this.events.push(StreamEvent.Closed)
  }

  private err(reason: SessionCloseReason, message: string, sentRst: boolean): SessionError {
    return new SessionError(reason, message, sentRst)
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
