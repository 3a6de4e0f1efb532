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
 * Written data lives in one send ring until acknowledged, and segments are
 * records (offset, length) into it, so a retransmission repeats the original
 * boundaries without keeping copies. Received data is written straight into a
 * receive ring at its offset, in or out of order; out-of-order ranges are a
 * short sorted list that also yields the SACK blocks.
 *
 * Loss recovery (sender side; the receiver's SACK is Go's: lowest four blocks):
 *   - Scoreboard: each segment record is in flight, SACKED, or LOST (waiting
 *     for retransmission); pipe = in flight bytes (RFC 6675). Retransmissions
 *     always resend a whole record, so boundaries never change (§20 item 10).
 *   - RACK (RFC 8985 §6): an un-SACKed segment sent before the most recently
 *     sent delivered segment is lost once RACK.rtt + reo_wnd has passed since it
 *     left, so a lost retransmission is found by its own send time. "Sent
 *     before" is a transmission counter, not a timestamp (a burst shares one
 *     `now`). reo_wnd is 0 in recovery or with ≥ 3 SACKed segments until
 *     reordering is seen, then min_RTT/4 (widened when a retransmission turns
 *     out spurious: acknowledged sooner than min_RTT after it left). Only
 *     segments below the highest SACKed byte are judged: above it the lowest-
 *     four-blocks SACK may simply not have mentioned them. Three duplicate pure
 *     ACKs still mark the head lost (peers without SACK).
 *   - Every lost segment is retransmitted as the window allows, before new data.
 *     Fast recovery (one congestion response per episode, until snd.una passes
 *     the snd.nxt of its start) paces sending with PRR (RFC 6937) towards the
 *     controller's ssthresh; after an RTO every un-SACKed segment is lost and the
 *     controller slow-starts from its loss window (NewReno: min(IW, ssthresh)).
 *   - Tail loss probe (RFC 8985 §7): after max(2·SRTT, minPto) (+ delayedAck with
 *     one segment in flight) without progress, send new data — two segments, so
 *     a delayed-ACK receiver answers at once — or the last segment again. Armed
 *     in recovery too: with a few segments in flight a lossy path can lose all
 *     of them or their ACKs, leaving RACK nothing to work with. A retransmitted
 *     probe that repaired a loss costs one congestion response.
 *   - RTO (RFC 6298) = max(SRTT + max(G, 4·RTTVAR), SRTT + delayedAck + G), at
 *     least minRto (50 ms: with RACK and TLP an RTO is the last resort, and 200 ms
 *     is a thousand LAN round trips; the delayedAck term keeps it from firing
 *     before a delayed ACK could be back), doubling per timeout. A silent path is
 *     given up after maxTransmissions RTO transmissions and retransmitGiveUp.
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
import { MAX_SACK_BLOCKS, decodeSackInto, encodeSackInto, sackBlockCount } from '../protocol/sack.js'
import { newReno, type CongestionController, type CongestionControllerFactory } from './congestion.js'
import { SessionError, type SessionCloseReason } from './errors.js'
import { seqDiff } from './seq.js'
import type { Millis } from './types.js'
import type { RandomSource } from '../random.js'

/** Window unit on the wire: one slot = 4096 bytes regardless of our MSS (§6.9). */
export const WINDOW_UNIT = 4096
/** Default MSS: the largest PILS payload that crosses a 1500-byte underlay unfragmented (§5.11). */
export const DEFAULT_MSS = 1402

export const StreamState = {
  SynSent: 0,
  SynReceived: 1,
  Established: 2,
  /** We finished sending (FIN queued, sent or acked); the peer may still send. */
  FinWait: 3,
  /** The peer finished sending; we may still send. */
  CloseWait: 4,
  /** Both finished; our FIN (or FIN|ACK) is out, waiting for its ACK. */
  Closing: 5,
  TimeWait: 6,
  Closed: 7,
} as const
export type StreamState = (typeof StreamState)[keyof typeof StreamState]
const STATE_NAMES = ['SYN_SENT', 'SYN_RECV', 'ESTABLISHED', 'FIN_WAIT', 'CLOSE_WAIT', 'CLOSING', 'TIME_WAIT', 'CLOSED']
export function streamStateName(s: StreamState): string {
  return STATE_NAMES[s]!
}

export const StreamEvent = {
  None: 0,
  /** Handshake complete. */
  Connected: 1,
  /** read() has bytes (or the end of stream) for you. */
  Readable: 2,
  /** write() would take bytes again. */
  Writable: 3,
  /** The peer finished sending; read() returns -1 once drained. */
  Finished: 4,
  /** The connection is over; `error` says why (null = orderly close). */
  Closed: 5,
  /** A SYN was retransmitted (count in stats().synRetransmits): the tunnel may switch paths. */
  SynRetransmitted: 6,
} as const
export type StreamEvent = (typeof StreamEvent)[keyof typeof StreamEvent]

export interface StreamConfig {
  /** Payload bytes per data segment (≤ 65535). */
  mss: number
  /** Disable Nagle: send small segments even while data is unacknowledged. */
  noDelay: boolean
  /** Bytes accepted from write() and kept until acknowledged. */
  sendBufferSize: number
  /** Receive buffer; the advertised window is its free space in 4096-byte slots. */
  receiveBufferSize: number
  /** Distinct out-of-order ranges held by the receiver. */
  maxOutOfOrderRanges: number
  initialRto: Millis
  minRto: Millis
  maxRto: Millis
  /** Clock granularity G in RFC 6298. */
  granularity: Millis
  /** Floor of the tail loss probe timeout (RFC 8985 §7.2: PTO = 2·SRTT, + delayedAck with one segment in flight). */
  minPto: Millis
  /** Transmissions of one segment before giving up (while the peer is silent). */
  maxTransmissions: number
  /**
   * ...and at least this long since the first timeout of the series: a low RTO
   * floor must not shorten how long a silent peer is tolerated (the reference's
   * 8 transmissions from its 200 ms floor span ≈ 30 s).
   */
  retransmitGiveUp: Millis
  delayedAck: Millis
  nagleDelay: Millis
  keepalive: Millis
  idleTimeout: Millis
  timeWait: Millis
  synInitialRto: Millis
  synMaxRto: Millis
  connectTimeout: Millis
  congestion: CongestionControllerFactory
  /** Fixed initial sequence number (tests: wrap). Default: random below 2^31 (§17 item 8). */
  isn: number | null
}

export const DEFAULT_STREAM_CONFIG: Readonly<StreamConfig> = Object.freeze({
  mss: DEFAULT_MSS,
  noDelay: false,
  sendBufferSize: 1024 * 1024,
  receiveBufferSize: 512 * WINDOW_UNIT,
  maxOutOfOrderRanges: 64,
  initialRto: 1000,
  minRto: 50,
  maxRto: 10_000,
  granularity: 10,
  minPto: 2,
  maxTransmissions: 8,
  retransmitGiveUp: 30_000,
  delayedAck: 40,
  nagleDelay: 40,
  keepalive: 30_000,
  idleTimeout: 120_000,
  timeWait: 10_000,
  synInitialRto: 1000,
  synMaxRto: 8000,
  connectTimeout: 30_000,
  congestion: newReno,
  isn: null,
})

export function resolveStreamConfig(partial: Partial<StreamConfig> | undefined): StreamConfig {
  const c: StreamConfig = { ...DEFAULT_STREAM_CONFIG, ...partial }
  if (!Number.isInteger(c.mss) || c.mss < 1 || c.mss > 0xffff) throw new RangeError(`mss ${c.mss} outside 1..65535`)
  if (c.sendBufferSize < c.mss) throw new RangeError('sendBufferSize must hold at least one segment')
  if (c.receiveBufferSize < WINDOW_UNIT) throw new RangeError('receiveBufferSize must be at least 4096')
  return c
}

export interface StreamStats {
  packetsSent: number
  bytesSent: number
  dataSegmentsSent: number
  /** Data segments sent again, for any reason (loss, RTO, tail probe). */
  retransmits: number
  /** Fast-recovery episodes: entered on SACK/RACK or duplicate-ACK evidence of loss (not RTO). */
  fastRetransmits: number
  /** Segments found lost by SACK/RACK or three duplicate ACKs (RTO marks are not counted). */
  lostSegments: number
  /** Tail loss probes sent (RFC 8985 §7). */
  probes: number
  /** Retransmissions acknowledged sooner than the minimum RTT after they left: the original had arrived. */
  spuriousRetransmits: number
  rtoTimeouts: number
  synRetransmits: number
  packetsReceived: number
  dataSegmentsReceived: number
  duplicateSegments: number
  outOfOrderSegments: number
  droppedNoSpace: number
  droppedInvalid: number
  keepalivesSent: number
  srtt: number
  rto: number
  cwnd: number
}

/** What the endpoint knows about a SYN it is about to accept. */
export interface PassiveOpen {
  readonly synSeq: number
  readonly synWindow: number
}

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

const enum Recovery {
  None = 0,
  /** Entered on SACK/RACK/dup-ACK evidence: PRR paces the repair (RFC 6937). */
  Fast = 1,
  /** After an RTO: every un-SACKed segment is lost; slow start from the loss window. */
  Rto = 2,
}

// Segment flags.
const SACKED = 1
/** Deemed lost and waiting for retransmission (not counted in the pipe). */
const LOST = 2
/** Last sent as a tail loss probe. */
const PROBED = 4
const MAX_U8 = 255
const INITIAL_RING = 64 * 1024

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
  private readonly timers = new Float64Array(Timer.Count).fill(Number.POSITIVE_INFINITY)

  // --- send side (offsets count data bytes from 0; seq = dataIsn + offset) ---
  private readonly iss: number
  private readonly sndDataIsn: number // seq of data offset 0 = iss + 1
  private sndRing: Buffer
  private sndUna = 0 // oldest unacknowledged offset
  private sndNxt = 0 // next new offset to send
  private writeEnd = 0 // end of written data
  private writeBlocked = false
  private peerWindow = 0 // bytes; 0 = no limit
  private peerWindowSlots = 0
  // Segment records in a ring (struct of arrays).
  private segOff: Float64Array
  private segLen: Int32Array
  private segSentAt: Float64Array
  private segXmit: Float64Array // transmission order: counts every data segment sent
  private segTx: Uint8Array
  private segFlags: Uint8Array
  private segHead = 0
  private segCount = 0
  private sackedBytes = 0
  private sackedSegs = 0
  private lostBytes = 0
  private lostSegs = 0
  private lostScan = 0 // index (from head) below which no segment is marked lost
  private fack = 0 // end of the highest delivered (acked or SACKed) range
  private dupAcks = 0
  private recovery: Recovery = Recovery.None
  private recoveryPoint = 0
  // PRR (RFC 6937) during fast recovery
  private prrDelivered = 0
  private prrOut = 0
  private recoverFs = 0
  private recoveryCwnd = 0
  // RACK (RFC 8985 §6): the most recently sent segment known delivered
  private xmitCount = 0
  private rackXmit = -1 // transmission number of the RACK segment: "sent after" without timestamp ties
  private rackRtt = 0
  private minRtt = Number.POSITIVE_INFINITY
  private reorderingSeen = false
  private reoWndMult = 1
  private reoWndPersist = 0
  private reoWndRound = -1
  // TLP (RFC 8985 §7)
  private probePending = false
  private probeSecond = false // a new-data probe is two segments
  private tlpEnd = -1 // sndNxt after the outstanding probe; -1 = none
  private tlpRetrans = false
  private tlpSentAt = 0
  private tlpFlight = 0
  private rtoRetransmitNow = false
  private nagleExpired = false
  // RTT (RFC 6298)
  private srtt = -1
  private rttvar = 0
  private rto: number
  private backoff = 0
  private rtoSeriesStart = 0 // time of the first timeout since the last new ACK
  private lastRecvAfterRetx = true
  // SYN / SYN|ACK
  private synPending = false
  private synTx = 0
  private synRto: number
  private readonly openedAt: Millis

  // --- receive side ---
  private irs = 0
  private rcvDataIsn = 0
  private rcvRing: Buffer
  private readonly rcvHardLimit: number // ring may grow to this
  private readOff = 0
  private rcvNxt = 0
  private oooStart: number[] = []
  private oooEnd: number[] = []
  private ackNow = false
  private unackedSegments = 0
  private lastAdvertised = 0
  private readableSignalled = false
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
  private readonly sackPairs = new Uint32Array(2 * MAX_SACK_BLOCKS)
  private readonly sackOut = new Uint32Array(2 * MAX_SACK_BLOCKS)

  // events: a small ring of codes; Readable/Writable are not queued twice
  private readonly events = new Uint8Array(64)
  private evHead = 0
  private evCount = 0

  private readonly st: StreamStats = {
    packetsSent: 0,
    bytesSent: 0,
    dataSegmentsSent: 0,
    retransmits: 0,
    fastRetransmits: 0,
    lostSegments: 0,
    probes: 0,
    spuriousRetransmits: 0,
    rtoTimeouts: 0,
    synRetransmits: 0,
    packetsReceived: 0,
    dataSegmentsReceived: 0,
    duplicateSegments: 0,
    outOfOrderSegments: 0,
    droppedNoSpace: 0,
    droppedInvalid: 0,
    keepalivesSent: 0,
    srtt: -1,
    rto: 0,
    cwnd: 0,
  }

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
    this.cfg = resolveStreamConfig(config)
    this.localAddress = local
    this.localPort = localPort
    this.remoteAddress = remote
    this.remotePort = remotePort
    this.remoteKey = remote.network * 0x1_0000_0000 + remote.node
    this.portsKey = localPort * 0x10000 + remotePort
    this.cc = this.cfg.congestion(this.cfg.mss)
    this.rto = this.cfg.initialRto
    this.synRto = this.cfg.synInitialRto
    this.openedAt = now
    this.lastRecv = now

    const h = this.hdr
    h.version = PROTOCOL_VERSION
    h.protocol = Protocol.STREAM
    h.srcNetwork = local.network
    h.srcNode = local.node
    h.dstNetwork = remote.network
    h.dstNode = remote.node
    h.srcPort = localPort
    h.dstPort = remotePort

    this.iss = this.cfg.isn !== null ? this.cfg.isn >>> 0 : random.u32() >>> 1
    this.sndDataIsn = (this.iss + 1) >>> 0

    const sndInitial = Math.min(INITIAL_RING, this.cfg.sendBufferSize)
    this.sndRing = Buffer.allocUnsafe(sndInitial)
    // The receiver may accept up to one window unit (plus a segment) beyond its
    // buffer, because a full buffer still advertises 1 slot (§17 item 15).
    this.rcvHardLimit = this.cfg.receiveBufferSize + WINDOW_UNIT + this.cfg.mss
    this.rcvRing = Buffer.allocUnsafe(Math.min(INITIAL_RING, this.rcvHardLimit))
    const segCap = 64
    this.segOff = new Float64Array(segCap)
    this.segLen = new Int32Array(segCap)
    this.segSentAt = new Float64Array(segCap)
    this.segXmit = new Float64Array(segCap)
    this.segTx = new Uint8Array(segCap)
    this.segFlags = new Uint8Array(segCap)

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
    return this.rcvNxt - this.readOff
  }

  /** Bytes written but not yet acknowledged. */
  get writableLength(): number {
    return this.writeEnd - this.sndUna
  }

  /** Free space for write(). */
  get writeCapacity(): number {
    if (!this.canWrite()) return 0
    return this.cfg.sendBufferSize - (this.writeEnd - this.sndUna)
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
    return this.peerFinished && this.rcvNxt === this.readOff
  }

  stats(): StreamStats {
    this.st.srtt = this.srtt
    this.st.rto = this.rto
    this.st.cwnd = this.cc.cwnd
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
    if (t[Timer.TimeWait]! <= now) {
      t[Timer.TimeWait] = Number.POSITIVE_INFINITY
      this.enterClosed(null)
      return
    }
    if (t[Timer.Idle]! <= now) {
      t[Timer.Idle] = Number.POSITIVE_INFINITY
      // Go's reaction is a local close (FIN); the peer is presumably gone, so one
      // best-effort FIN and no retransmission.
      this.finPending = this.finSentOrQueuedAllowed()
      this.enterClosed(this.err('idle-timeout', `nothing received for ${this.cfg.idleTimeout} ms`, false))
      this.wake()
      return
    }
    if (t[Timer.Probe]! <= now) {
      t[Timer.Probe] = Number.POSITIVE_INFINITY
      if (this.segCount > 0 && this.tlpEnd < 0) {
        // The probe goes first, also when the RTO is due at the same time (RFC 8985 §7.2).
        this.probePending = true
        if (t[Timer.Retransmit]! <= now) t[Timer.Retransmit] = now + this.currentRto()
      }
    }
    if (t[Timer.Retransmit]! <= now) {
      t[Timer.Retransmit] = Number.POSITIVE_INFINITY
      this.onRetransmitTimer(now)
      if (this.isClosed) return
    }
    if (t[Timer.Reorder]! <= now) {
      t[Timer.Reorder] = Number.POSITIVE_INFINITY
      if (this.segCount > 0) this.detectLosses(now, 0)
    }
    if (t[Timer.DelayedAck]! <= now) {
      t[Timer.DelayedAck] = Number.POSITIVE_INFINITY
      this.ackNow = true
    }
    if (t[Timer.Nagle]! <= now) {
      t[Timer.Nagle] = Number.POSITIVE_INFINITY
      this.nagleExpired = true
    }
    if (t[Timer.Keepalive]! <= now) {
      t[Timer.Keepalive] = now + this.cfg.keepalive
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
    const space = this.cfg.sendBufferSize - (this.writeEnd - this.sndUna)
    const n = Math.min(space, data.length)
    if (n < data.length) this.writeBlocked = true
    if (n === 0) return 0
    this.ensureSendRing(this.writeEnd + n - this.sndUna)
    ringWrite(this.sndRing, this.writeEnd, data, n)
    this.writeEnd += n
    if (this.timers[Timer.Nagle] === Number.POSITIVE_INFINITY) this.nagleExpired = false
    void now
    this.wake()
    return n
  }

  /** Copies received bytes. Returns the count, 0 if none yet, -1 at end of stream. */
  read(into: Uint8Array): number {
    const avail = this.rcvNxt - this.readOff
    if (avail === 0) {
      this.readableSignalled = false
      return this.peerFinished ? -1 : 0
    }
    const n = Math.min(avail, into.length)
    ringRead(this.rcvRing, this.readOff, into, 0, n)
    this.readOff += n
    if (n === avail) this.readableSignalled = false
    // Window update when a nearly closed window reopens (receiver SWS avoidance).
    if (this.isSynchronized() && !this.peerFinished) {
      const w = this.advertisedWindow()
      const maxSlots = Math.floor(this.cfg.receiveBufferSize / WINDOW_UNIT)
      if (this.lastAdvertised < maxSlots / 2 && w >= this.lastAdvertised + 2) {
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
    this.finOff = this.writeEnd
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
    if (this.rstPending) {
      this.rstPending = false
      return this.emit(out, offset, Flag.RST, this.seqOfSnd(this.sndNxt), this.rcvAckSeq(), 0, 0)
    }
    const state = this._state
    if (state === StreamState.Closed) {
      if (this.finPending) {
        this.finPending = false // best-effort FIN on idle timeout
        return this.emit(out, offset, Flag.FIN, this.seqOfSnd(this.sndNxt), 0, this.advertisedWindow(), 0)
      }
      return 0
    }
    if (this.synPending) {
      this.synPending = false
      if (state === StreamState.SynSent || state === StreamState.SynReceived) {
        this.synTx++
        this.timers[Timer.Retransmit] = Math.min(now + this.synRto, this.openedAt + this.cfg.connectTimeout)
      }
      if (state === StreamState.SynSent) {
        return this.emit(out, offset, Flag.SYN, this.iss, 0, this.advertisedWindow(), 0)
      }
      return this.emit(out, offset, Flag.SYN | Flag.ACK, this.iss, this.rcvDataIsn, this.advertisedWindow(), 0)
    }
    if (state === StreamState.SynSent || state === StreamState.SynReceived) return 0

    // 1. Retransmissions: the window-reopen probe, then segments deemed lost
    //    (while lost segments wait for the window, new data waits too), then a
    //    tail loss probe.
    if (this.segCount > 0) {
      if (this.rtoRetransmitNow) {
        this.rtoRetransmitNow = false
        const idx = this.firstUnsackedIndex()
        if (idx >= 0) return this.retransmit(now, out, offset, idx)
      }
      if (this.lostSegs > 0) {
        const n = this.retransmitLost(now, out, offset)
        if (n > 0) return n
      }
      if (this.probePending) {
        this.probePending = false
        const n = this.sendProbe(now, out, offset)
        if (n > 0) return n
      }
      if (this.probeSecond) {
        this.probeSecond = false
        const n = this.sendNewData(now, out, offset, true)
        if (n > 0) {
          this.tlpEnd = this.sndNxt
          this.timers[Timer.Probe] = Number.POSITIVE_INFINITY
          return n
        }
      }
    }
    // 2. New data.
    if (this.sndNxt < this.writeEnd && this.lostSegs === 0) {
      const n = this.sendNewData(now, out, offset, false)
      if (n > 0) return n
    }
    // 3. FIN once everything is acknowledged; FIN|ACK replies.
    if (this.finAckPending) {
      this.finAckPending = false
      this.ackNow = false
      this.cancelDelayedAck()
      const seq = this.finSent ? this.seqOfSnd(this.finOff) : this.seqOfSnd(this.sndNxt)
      return this.emit(out, offset, Flag.FIN | Flag.ACK, seq, this.rcvAckSeq(), this.advertisedWindow(), 0)
    }
    if (this.finQueued && !this.finAcked && this.sndUna === this.finOff && this.sndNxt === this.finOff) {
      if (!this.finSent || this.finPending) {
        this.finSent = true
        this.finPending = false
        this.finTx++
        if (this.timers[Timer.Retransmit] === Number.POSITIVE_INFINITY) this.timers[Timer.Retransmit] = now + this.currentRto()
        return this.emit(out, offset, Flag.FIN, this.seqOfSnd(this.finOff), this.rcvAckSeq(), this.advertisedWindow(), 0)
      }
    }
    // 4. A pure ACK (immediate, delayed-timer expiry, window update, keepalive).
    if (this.ackNow) {
      this.ackNow = false
      this.unackedSegments = 0
      this.cancelDelayedAck()
      let len = 0
      if (this.oooStart.length > 0) len = this.writeSack(out, offset + HEADER_SIZE)
      return this.emit(out, offset, Flag.ACK, this.seqOfSnd(this.sndNxt), this.rcvAckSeq(), this.advertisedWindow(), len)
    }
    return 0
  }

  /** Earliest deadline of any timer, or null. */
  pollTimeout(): Millis | null {
    const t = this.timers
    let m = t[0]!
    for (let i = 1; i < Timer.Count; i++) if (t[i]! < m) m = t[i]!
    return m === Number.POSITIVE_INFINITY ? null : m
  }

  /** Next event, StreamEvent.None when drained. */
  pollEvent(): StreamEvent {
    if (this.evCount === 0) return StreamEvent.None
    const e = this.events[this.evHead]! as StreamEvent
    this.evHead = (this.evHead + 1) & 63
    this.evCount--
    return e
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
      this.probePending ||
      this.probeSecond ||
      this.sndNxt < this.writeEnd ||
      this.lostSegs > 0 ||
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
    this.timers[Timer.Retransmit] = Number.POSITIVE_INFINITY
    this.synPending = false
    // An RTT sample from the handshake when the SYN went out once (Karn).
    if (this.synTx === 1) {
      this.updateRtt(now - this.openedAt)
      this.minRtt = now - this.openedAt
    }
    this.backoff = 0
    this.armIdleTimers(now)
    this.pushEvent(StreamEvent.Connected)
    if (this.writeEnd > this.sndNxt || this.finQueued) this.wake()
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
      const finOff = this.rcvNxt + seqDiff(h.seq, this.seqOfRcv(this.rcvNxt))
      if (!isFinAck && finOff > this.rcvNxt && finOff <= this.readOff + this.rcvHardLimit) {
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
    this.oooStart.length = 0
    this.oooEnd.length = 0
    this.pushEvent(StreamEvent.Finished)
    this.pushReadable()
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
    if (goStyle || (this.finQueued && this.sndUna === this.finOff) || this.sendSideAbandoned) {
      this.finAckPending = true
      if (!this.finQueued) {
        this.finQueued = true
        this.finOff = this.sndNxt
      }
    } else {
      this.ackNow = true
    }
  }

  private sendSideAbandoned = false

  private abandonSendSide(): void {
    this.sendSideAbandoned = true
    // Drop whatever is not acknowledged: the peer will not take it.
    this.clearSegments()
    this.sndUna = this.sndNxt = this.writeEnd
    this.finQueued = true
    this.finOff = this.writeEnd
    this.finAcked = true
    this.recovery = Recovery.None
    this.rtoRetransmitNow = false
    this.probePending = false
    this.probeSecond = false
    this.tlpEnd = -1
    this.timers[Timer.Retransmit] = Number.POSITIVE_INFINITY
    this.timers[Timer.Nagle] = Number.POSITIVE_INFINITY
    this.timers[Timer.Reorder] = Number.POSITIVE_INFINITY
    this.timers[Timer.Probe] = Number.POSITIVE_INFINITY
  }

  private finAckedNow(): void {
    this.timers[Timer.Retransmit] = Number.POSITIVE_INFINITY
    this.finPending = false
  }

  /** Both directions finished: TIME_WAIT (or CLOSED at once after receiving FIN|ACK). */
  private checkBothDone(now: Millis, receivedFinAck: boolean): void {
    if (this._state === StreamState.Closed || this._state === StreamState.TimeWait) return
    if (!this.peerFinished) return
    const ourSideDone = this.finAcked || this.finAckPending || (this.finQueued && this.finSent && this.sndUna === this.finOff)
    if (!ourSideDone) return
    if (receivedFinAck && this.finAcked) {
      // The peer answered our FIN with FIN|ACK and keeps TIME_WAIT itself.
      this.enterClosed(null)
      return
    }
    this._state = StreamState.TimeWait
    this.timers[Timer.TimeWait] = now + this.cfg.timeWait
    this.timers[Timer.Keepalive] = Number.POSITIVE_INFINITY
    this.timers[Timer.Idle] = Number.POSITIVE_INFINITY
    this.timers[Timer.DelayedAck] = Number.POSITIVE_INFINITY
    this.timers[Timer.Nagle] = Number.POSITIVE_INFINITY
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
    const ackOff = this.sndUna + seqDiff(h.ack, this.seqOfSnd(this.sndUna))
    const sndMax = this.finSent ? this.finOff + 1 : this.sndNxt
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
    const isData = payload.length > 0 && sackCount === 0
    const isNewAck = ackOff > this.sndUna
    if (ackOff >= this.sndUna) {
      const prevSlots = this.peerWindowSlots
      this.setPeerWindow(h.window)
      const deliveredBefore = this.sndUna + this.sackedBytes
      if (isNewAck) {
        this.processAck(now, ackOff, true)
      } else if (payload.length === 0 && this.segCount > 0) {
        if (h.window > prevSlots && prevSlots !== 0 && this.backoff > 0) {
          // The receiver's window reopened while we were backing off a probe:
          // retransmit the head now instead of waiting out the backed-off RTO.
          this.rtoRetransmitNow = true
          this.timers[Timer.Retransmit] = now + this.currentRto()
        } else {
          this.dupAcks++
        }
      }
      if (sackCount > 0 && this.segCount > 0) {
        decodeSackInto(payload, this.sackPairs)
        this.processSack(now, sackCount)
      }
      if (this.segCount > 0) {
        // Classic fast retransmit for a peer that does not SACK (RFC 5681 §3.2).
        if (this.dupAcks >= 3 && this.recovery === Recovery.None) {
          const head = this.segHead
          if ((this.segFlags[head]! & (SACKED | LOST)) === 0) this.markLost(0, head)
        }
        const delivered = this.sndUna + this.sackedBytes - deliveredBefore
        this.detectLosses(now, delivered)
        if (delivered > 0) this.armProbe(now)
      } else {
        this.timers[Timer.Probe] = Number.POSITIVE_INFINITY
        this.timers[Timer.Reorder] = Number.POSITIVE_INFINITY
      }
      if (this.finSent && !this.finAcked && ackOff === this.finOff + 1) {
        this.finAcked = true
        this.finAckedNow()
        this.checkBothDone(now, false)
      }
    }
    if (isData) this.onData(now, h.seq, payload)
  }

  /** Cumulative ACK up to `ackOff` (a data offset; finOff + 1 is clipped). */
  private processAck(now: Millis, ackOffIn: number, fromAckPacket: boolean): void {
    const ackOff = Math.min(ackOffIn, this.sndNxt)
    if (ackOff <= this.sndUna) return
    const acked = ackOff - this.sndUna
    let rttSample = -1
    let popped = 0
    while (this.segCount > 0) {
      const i = this.segHead
      const len = this.segLen[i]!
      const end = this.segOff[i]! + len
      if (end <= ackOff) {
        const f = this.segFlags[i]!
        if ((f & SACKED) !== 0) {
          this.sackedBytes -= len
          this.sackedSegs--
        } else {
          if ((f & LOST) !== 0) {
            this.lostBytes -= len
            this.lostSegs--
          }
          if (this.segTx[i] === 1) rttSample = now - this.segSentAt[i]!
          this.rackOnDelivered(now, i)
        }
        this.segHead = (i + 1) & (this.segOff.length - 1)
        this.segCount--
        popped++
      } else {
        if (this.segOff[i]! < ackOff) {
          // A partial ACK inside a segment (never from a well-behaved peer): trim it.
          const cut = ackOff - this.segOff[i]!
          if ((this.segFlags[i]! & SACKED) !== 0) this.sackedBytes -= cut
          if ((this.segFlags[i]! & LOST) !== 0) this.lostBytes -= cut
          this.segOff[i] = ackOff
          this.segLen[i] = len - cut
        }
        break
      }
    }
    this.lostScan = Math.max(0, this.lostScan - popped)
    this.sndUna = ackOff
    if (this.fack < ackOff) this.fack = ackOff
    this.dupAcks = 0
    this.backoff = 0
    if (rttSample >= 0) this.updateRtt(rttSample)
    else this.rto = this.computeRto()
    // Slow start / congestion avoidance outside fast recovery; after an RTO the
    // window grows again from the loss window while the holes are refilled.
    if (this.recovery !== Recovery.Fast && fromAckPacket) {
      this.cc.onAck(now, acked, this.sndNxt - this.sndUna - this.sackedBytes, rttSample)
    }
    if (this.recovery !== Recovery.None && ackOff >= this.recoveryPoint) this.exitRecovery(now)
    if (this.tlpEnd >= 0 && ackOff >= this.tlpEnd) {
      // The probe's episode is over. A retransmitted probe acknowledged later than
      // any round trip after it left repaired a real tail loss: respond once
      // (RFC 8985 §7.4.2; without DSACK this is the best evidence we have).
      if (this.tlpRetrans && this.recovery === Recovery.None && now - this.tlpSentAt >= this.minRtt) {
        this.cc.onCongestionEvent(now, this.tlpFlight)
        this.cc.onRecoveryEnd(now)
      }
      this.tlpEnd = -1
    }
    this.timers[Timer.Retransmit] =
      this.segCount > 0 || (this.finSent && !this.finAcked) ? now + this.currentRto() : Number.POSITIVE_INFINITY
    if (this.writeBlocked && this.writeCapacity > 0) {
      this.writeBlocked = false
      this.pushEvent(StreamEvent.Writable)
    }
  }

  private processSack(now: Millis, count: number): void {
    const base = this.seqOfSnd(this.sndUna)
    const mask = this.segOff.length - 1
    for (let b = 0; b < count; b++) {
      const l = this.sndUna + seqDiff(this.sackPairs[2 * b]!, base)
      const r = this.sndUna + seqDiff(this.sackPairs[2 * b + 1]!, base)
      if (r <= l || l < this.sndUna || r > this.sndNxt) continue
      // Segments are sorted by offset; skip to the first one at or after l.
      let k = this.lowerBoundSeg(l)
      for (; k < this.segCount; k++) {
        const i = (this.segHead + k) & mask
        const off = this.segOff[i]!
        const end = off + this.segLen[i]!
        if (end > r) break
        const f = this.segFlags[i]!
        if ((f & SACKED) === 0) {
          if ((f & LOST) !== 0) this.unmarkLost(i)
          this.segFlags[i] = this.segFlags[i]! | SACKED
          this.sackedBytes += this.segLen[i]!
          this.sackedSegs++
          this.rackOnDelivered(now, i)
        }
      }
    }
  }

  /** Index (from head) of the first segment whose offset is ≥ off. */
  private lowerBoundSeg(off: number): number {
    let lo = 0
    let hi = this.segCount
    const mask = this.segOff.length - 1
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      if (this.segOff[(this.segHead + mid) & mask]! < off) lo = mid + 1
      else hi = mid
    }
    return lo
  }

  // ───────────────────────── internals: loss recovery ─────────────────────────

  /** Bytes in flight (RFC 6675 "pipe"): sent, not acknowledged, not SACKed, not deemed lost. */
  private pipe(): number {
    return this.sndNxt - this.sndUna - this.sackedBytes - this.lostBytes
  }

  private congestionWindow(): number {
    return this.recovery === Recovery.Fast ? this.recoveryCwnd : this.cc.cwnd
  }

  /**
   * Segment i (acknowledged or SACKed just now, not before) was delivered:
   * RACK state, minimum RTT and reordering detection (RFC 8985 §6.2 steps 1–3).
   */
  private rackOnDelivered(now: Millis, i: number): void {
    const sent = this.segSentAt[i]!
    const end = this.segOff[i]! + this.segLen[i]!
    const rtt = now - sent
    if (this.segTx[i] === 1) {
      if (rtt < this.minRtt) this.minRtt = rtt
      // Delivered after a segment sent later than it: the path reorders.
      if (end < this.fack) this.reorderingSeen = true
    } else if (rtt < this.minRtt) {
      // Acknowledged sooner than any round trip after the retransmission left: the
      // original arrived after all. No RACK sample from it (step 2); a loss mark
      // that was wrong widens the reordering window (RFC 8985 uses DSACK for this).
      this.st.spuriousRetransmits++
      if ((this.segFlags[i]! & PROBED) === 0) {
        this.reorderingSeen = true
        if (this.reoWndRound < 0 || this.sndUna >= this.reoWndRound) {
          this.reoWndRound = this.sndNxt
          if (this.reoWndMult < 64) this.reoWndMult++
        }
        this.reoWndPersist = 16
      }
      return
    }
    if (this.segXmit[i]! > this.rackXmit) {
      this.rackXmit = this.segXmit[i]!
      this.rackRtt = rtt
    }
    if (end > this.fack) this.fack = end
  }

  /** RACK reordering window (RFC 8985 §6.2 step 4). */
  private reoWnd(): number {
    if (!this.reorderingSeen && (this.recovery !== Recovery.None || this.sackedSegs >= 3)) return 0
    const base = this.minRtt !== Number.POSITIVE_INFINITY ? this.minRtt : Math.max(0, this.srtt)
    const w = (base / 4) * this.reoWndMult
    return this.srtt >= 0 && this.srtt < w ? this.srtt : w
  }

  /**
   * RACK loss detection (RFC 8985 §6.2 step 5): an un-SACKed segment sent before
   * the most recently sent delivered one is lost once RACK.rtt + reo_wnd has
   * passed since it left. A lost retransmission is found the same way, by its
   * own send time. Returns how long until the next candidate expires (0 = none).
   */
  private rackDetectLoss(now: Millis): number {
    if (this.rackXmit < 0) return 0
    const reo = this.reoWnd()
    const mask = this.segOff.length - 1
    let wait = 0
    for (let k = 0; k < this.segCount; k++) {
      const i = (this.segHead + k) & mask
      if ((this.segFlags[i]! & (SACKED | LOST)) !== 0) continue
      // Above the highest SACKed byte we know nothing: SACK carries only the
      // lowest four blocks (§6.7), so segments there may have arrived unreported.
      if (this.segOff[i]! + this.segLen[i]! > this.fack) break
      if (this.segXmit[i]! > this.rackXmit) {
        // Sent after the RACK segment. First transmissions leave in offset order,
        // and a retransmission leaves after its original: everything further on
        // was sent later still.
        if (this.segTx[i] === 1) break
        continue
      }
      const remaining = this.segSentAt[i]! + this.rackRtt + reo - now
      if (remaining <= 0) {
        this.markLost(k, i)
        this.st.lostSegments++
      } else if (remaining > wait) {
        wait = remaining
      }
    }
    return wait
  }

  /** After an ACK (or the reordering timer): mark losses, enter or pace recovery. */
  private detectLosses(now: Millis, delivered: number): void {
    const wait = this.rackDetectLoss(now)
    this.timers[Timer.Reorder] = wait > 0 ? now + wait : Number.POSITIVE_INFINITY
    if (this.lostSegs > 0 && this.recovery === Recovery.None) this.enterFastRecovery(now)
    if (this.recovery === Recovery.Fast) this.prrUpdate(delivered)
  }

  private markLost(k: number, i: number): void {
    this.segFlags[i] = this.segFlags[i]! | LOST
    this.lostBytes += this.segLen[i]!
    this.lostSegs++
    if (k < this.lostScan) this.lostScan = k
  }

  private unmarkLost(i: number): void {
    this.segFlags[i] = this.segFlags[i]! & ~LOST
    this.lostBytes -= this.segLen[i]!
    this.lostSegs--
  }

  /** One congestion response per episode; the episode ends when snd.una passes sndNxt of now. */
  private enterFastRecovery(now: Millis): void {
    this.cc.onCongestionEvent(now, this.sndNxt - this.sndUna)
    this.recovery = Recovery.Fast
    this.recoveryPoint = this.sndNxt
    this.prrDelivered = 0
    this.prrOut = 0
    this.recoverFs = Math.max(1, this.sndNxt - this.sndUna)
    this.st.fastRetransmits++
    this.tlpEnd = -1 // this episode's response covers a probe's loss too
  }

  /**
   * Proportional Rate Reduction (RFC 6937, PRR-SSRB): how much may be sent
   * during fast recovery, as a window over the current pipe.
   */
  private prrUpdate(delivered: number): void {
    this.prrDelivered += delivered
    const pipe = this.pipe()
    const ssthresh = this.cc.ssthresh
    const mss = this.cfg.mss
    let sndcnt: number
    if (pipe > ssthresh) {
      sndcnt = Math.ceil((this.prrDelivered * ssthresh) / this.recoverFs) - this.prrOut
    } else {
      sndcnt = Math.min(ssthresh - pipe, Math.max(this.prrDelivered - this.prrOut, delivered) + mss)
    }
    // The first retransmission of an episode goes out at once.
    if (this.prrOut === 0 && sndcnt < mss) sndcnt = mss
    this.recoveryCwnd = pipe + Math.max(0, sndcnt)
  }

  private exitRecovery(now: Millis): void {
    if (this.recovery === Recovery.Fast) this.cc.onRecoveryEnd(now)
    this.recovery = Recovery.None
    if (this.reoWndPersist > 0 && --this.reoWndPersist === 0) this.reoWndMult = 1
  }

  /**
   * Tail loss probe timer (RFC 8985 §7.2), with no probe outstanding. Unlike
   * RFC 8985 it is armed during recovery too: with the few segments a lossy
   * path allows in flight, losing them (or their ACKs) leaves RACK nothing to
   * go on, and the RTO floor is a thousand LAN round trips.
   */
  private armProbe(now: Millis): void {
    if (this.tlpEnd >= 0 || this.srtt < 0 || this.segCount === 0) {
      this.timers[Timer.Probe] = Number.POSITIVE_INFINITY
      return
    }
    let pto = 2 * this.srtt
    // One segment in flight may be waiting for the peer's delayed ACK.
    if (this.sndNxt - this.sndUna - this.sackedBytes <= this.cfg.mss) pto += this.cfg.delayedAck
    if (pto < this.cfg.minPto) pto = this.cfg.minPto
    // Never later than the RTO: the probe takes its place (RFC 8985 §7.2).
    this.timers[Timer.Probe] = Math.min(now + pto, this.timers[Timer.Retransmit]!)
  }

  /**
   * The probe: new data if the peer's window allows, else the last segment
   * again. New data goes out as two segments where there are two (RFC 8985 has
   * one): receivers (ours and the reference, §6.6) acknowledge every second
   * segment at once but hold a lone in-order one for their 40 ms delayed ACK,
   * which on a LAN is a hundred round trips.
   */
  private sendProbe(now: Millis, out: Uint8Array, offset: number): number {
    let n = 0
    let retrans = false
    if (this.sndNxt < this.writeEnd) {
      n = this.sendNewData(now, out, offset, true)
      if (n > 0) this.probeSecond = true
    }
    if (n === 0) {
      const mask = this.segOff.length - 1
      let i = -1
      for (let k = this.segCount - 1; k >= 0; k--) {
        const j = (this.segHead + k) & mask
        if ((this.segFlags[j]! & SACKED) === 0) {
          i = j
          break
        }
      }
      if (i < 0) return 0
      n = this.retransmit(now, out, offset, i)
      this.segFlags[i] = this.segFlags[i]! | PROBED
      retrans = true
    }
    this.st.probes++
    this.tlpEnd = this.sndNxt
    this.tlpRetrans = retrans
    this.tlpSentAt = now
    this.tlpFlight = this.sndNxt - this.sndUna
    this.timers[Timer.Probe] = Number.POSITIVE_INFINITY
    this.timers[Timer.Retransmit] = now + this.currentRto() // RFC 8985 §7.3: the RTO follows a probe
    return n
  }

  private onData(now: Millis, seq: number, payload: Uint8Array): void {
    const st = this._state
    if (st !== StreamState.Established && st !== StreamState.FinWait) {
      // Data in any other state (after the peer's FIN) is not accepted; say so.
      this.ackNow = true
      return
    }
    this.st.dataSegmentsReceived++
    let off = this.rcvNxt + seqDiff(seq, this.seqOfRcv(this.rcvNxt))
    let start = 0
    let len = payload.length
    if (off < this.rcvNxt) {
      if (off + len <= this.rcvNxt) {
        this.st.duplicateSegments++
        this.ackNow = true // a duplicate means our ACK was lost or late
        return
      }
      start = this.rcvNxt - off // trim the already-received head
      len -= start
      off = this.rcvNxt
    }
    if (this.peerFinOff >= 0 && off + len > this.peerFinOff) {
      len = this.peerFinOff - off
      if (len <= 0) {
        this.ackNow = true
        return
      }
    }
    const end = off + len
    if (end - this.readOff > this.rcvHardLimit) {
      this.st.droppedNoSpace++
      this.ackNow = true
      return
    }
    if (off > this.rcvNxt && !this.insertOutOfOrder(off, end)) {
      this.st.droppedNoSpace++
      this.ackNow = true
      return
    }
    this.ensureRecvRing(end - this.readOff)
    ringWriteFrom(this.rcvRing, off, payload, start, len)
    if (off > this.rcvNxt) {
      this.st.outOfOrderSegments++
      this.ackNow = true // immediate ACK with SACK
      return
    }
    this.rcvNxt = end
    const hadOoo = this.oooStart.length > 0
    if (hadOoo) this.mergeInOrder()
    this.pushReadable()
    if (this.peerFinOff >= 0 && this.rcvNxt >= this.peerFinOff) {
      this.rcvNxt = this.peerFinOff
      this.acceptPeerFin(false, false)
      this.checkBothDone(now, false)
      return
    }
    if (hadOoo || this.oooStart.length > 0) {
      this.ackNow = true
    } else if (++this.unackedSegments >= 2) {
      this.ackNow = true
    } else if (this.timers[Timer.DelayedAck] === Number.POSITIVE_INFINITY) {
      this.timers[Timer.DelayedAck] = now + this.cfg.delayedAck
    }
  }

  /** Adds [s, e) to the sorted out-of-order ranges, merging overlaps. False if full. */
  private insertOutOfOrder(s: number, e: number): boolean {
    const S = this.oooStart
    const E = this.oooEnd
    let i = 0
    while (i < S.length && E[i]! < s) i++
    if (i < S.length && S[i]! <= e) {
      // Overlaps or touches range i (and maybe following ones).
      if (s < S[i]!) S[i] = s
      if (e > E[i]!) E[i] = e
      while (i + 1 < S.length && S[i + 1]! <= E[i]!) {
        if (E[i + 1]! > E[i]!) E[i] = E[i + 1]!
        S.splice(i + 1, 1)
        E.splice(i + 1, 1)
      }
      return true
    }
    if (S.length >= this.cfg.maxOutOfOrderRanges) return false
    S.splice(i, 0, s)
    E.splice(i, 0, e)
    return true
  }

  private mergeInOrder(): void {
    const S = this.oooStart
    const E = this.oooEnd
    let k = 0
    while (k < S.length && S[k]! <= this.rcvNxt) {
      if (E[k]! > this.rcvNxt) this.rcvNxt = E[k]!
      k++
    }
    if (k > 0) {
      S.splice(0, k)
      E.splice(0, k)
    }
  }

  private writeSack(out: Uint8Array, at: number): number {
    const n = Math.min(MAX_SACK_BLOCKS, this.oooStart.length)
    for (let i = 0; i < n; i++) {
      this.sackOut[2 * i] = this.seqOfRcv(this.oooStart[i]!)
      this.sackOut[2 * i + 1] = this.seqOfRcv(this.oooEnd[i]!)
    }
    return encodeSackInto(this.sackOut, n, out, at)
  }

  // ───────────────────────── internals: timers ─────────────────────────

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
      if (state === StreamState.SynSent) this.pushEvent(StreamEvent.SynRetransmitted)
      // Never sleep past the connect deadline.
      this.timers[Timer.Retransmit] = Math.min(now + this.synRto, this.openedAt + this.cfg.connectTimeout)
      return
    }
    if (this.segCount > 0) {
      const head = this.segHead
      // Give up when the maxTransmissions-th transmission times out on a silent
      // path (§6.10). Only RTO retransmissions count: probes and SACK/RACK
      // repairs are extra tries the reference would not have made.
      if (this.backoff === 0) this.rtoSeriesStart = now
      if (
        this.backoff + 1 >= this.cfg.maxTransmissions &&
        !this.lastRecvAfterRetx &&
        now - this.rtoSeriesStart >= this.cfg.retransmitGiveUp
      ) {
        this.rstPending = true
        this.enterClosed(this.err('retransmit-timeout', `segment sent ${this.segTx[head]} times without an answer`, true))
        return
      }
      this.st.rtoTimeouts++
      this.cc.onRto(now, this.sndNxt - this.sndUna - this.sackedBytes)
      this.backoff++
      this.rto = Math.min(this.rto * 2, this.cfg.maxRto)
      // Everything outstanding and un-SACKed is presumed lost (RFC 6675 §5.1,
      // RFC 8985 §6.3); retransmissions go out in slow start from the loss window.
      this.recovery = Recovery.Rto
      this.recoveryPoint = this.sndNxt
      const mask = this.segOff.length - 1
      for (let k = 0; k < this.segCount; k++) {
        const i = (this.segHead + k) & mask
        if ((this.segFlags[i]! & (SACKED | LOST)) === 0) this.markLost(k, i)
      }
      this.dupAcks = 0
      this.tlpEnd = -1
      this.probePending = false
      this.probeSecond = false
      this.timers[Timer.Probe] = Number.POSITIVE_INFINITY
      this.timers[Timer.Reorder] = Number.POSITIVE_INFINITY
      this.lastRecvAfterRetx = false
      this.timers[Timer.Retransmit] = now + this.rto
      return
    }
    if (this.finSent && !this.finAcked) {
      if (this.finTx >= this.cfg.maxTransmissions) {
        // All our data was acknowledged before the FIN left. If the peer's FIN is
        // in too, both streams are complete and only the last answer was lost
        // (or the peer's TIME_WAIT ended first, §6.13): an orderly close.
        const complete = this.peerFinished && this.sndUna === this.finOff
        this.enterClosed(complete ? null : this.err('retransmit-timeout', 'FIN never acknowledged', false))
        return
      }
      this.finPending = true
      this.backoff++
      this.rto = Math.min(this.rto * 2, this.cfg.maxRto)
      this.timers[Timer.Retransmit] = now + this.rto
    }
  }

  private armIdleTimers(now: Millis): void {
    this.timers[Timer.Idle] = now + this.cfg.idleTimeout
    // Keepalive counts from our last transmission (see emit), so both sides
    // send one every 30 s on an idle connection and each refreshes the other.
    if (this.timers[Timer.Keepalive] === Number.POSITIVE_INFINITY) this.timers[Timer.Keepalive] = now + this.cfg.keepalive
  }

  private cancelDelayedAck(): void {
    this.timers[Timer.DelayedAck] = Number.POSITIVE_INFINITY
  }

  private updateRtt(r: number): void {
    if (r < 0) return
    if (this.srtt < 0) {
      this.srtt = r
      this.rttvar = r / 2
    } else {
      this.rttvar = 0.75 * this.rttvar + 0.25 * Math.abs(this.srtt - r)
      this.srtt = 0.875 * this.srtt + 0.125 * r
    }
    this.rto = this.computeRto()
  }

  /**
   * RFC 6298 §2, with a floor that follows the path: never before a delayed ACK
   * could be back (SRTT + delayedAck + G; the reference also delays ACKs by
   * 40 ms), and never below minRto.
   */
  private computeRto(): number {
    if (this.srtt < 0) return this.cfg.initialRto
    const g = this.cfg.granularity
    const rto = Math.max(this.srtt + Math.max(g, 4 * this.rttvar), this.srtt + this.cfg.delayedAck + g)
    return Math.min(this.cfg.maxRto, Math.max(this.cfg.minRto, rto))
  }

  private currentRto(): number {
    return this.rto
  }

  // ───────────────────────── internals: sending ─────────────────────────

  /** One new segment if the windows allow; a tail loss probe (`probe`) ignores cwnd and Nagle. */
  private sendNewData(now: Millis, out: Uint8Array, offset: number, probe: boolean): number {
    const mss = this.cfg.mss
    const unsent = this.writeEnd - this.sndNxt
    const limitByFin = this.finQueued
    let len = Math.min(mss, unsent)
    // The peer's window is counted from its cumulative ACK, SACKed bytes included.
    const peerRoom = this.peerWindow > 0 ? this.peerWindow - (this.sndNxt - this.sndUna) : Number.POSITIVE_INFINITY
    if (probe) {
      if (peerRoom < len) return 0
    } else {
      const flight = this.pipe()
      let wnd = this.congestionWindow()
      if (this.peerWindow > 0 && this.peerWindow < wnd) wnd = this.peerWindow
      const avail = Math.min(wnd - flight, peerRoom)
      if (avail < len) {
        // Window-limited: ACKs (or the RTO probe of a full receiver) reopen it.
        // With nothing in flight, send what fits rather than deadlock.
        if (flight > 0 || avail <= 0) return 0
        len = avail
      }
      // Nagle: hold a small segment while data is unacknowledged (≤ 40 ms).
      if (len < mss && len === unsent && !this.cfg.noDelay && !limitByFin && this.sndNxt > this.sndUna && !this.nagleExpired) {
        if (this.timers[Timer.Nagle] === Number.POSITIVE_INFINITY) this.timers[Timer.Nagle] = now + this.cfg.nagleDelay
        return 0
      }
    }
    // Never let a data payload start with the SACK pattern (§17 item 14).
    if (len >= 5 && this.startsWithSackPattern(this.sndNxt, len)) len = 1
    const idx = this.pushSegment(this.sndNxt, len)
    this.sndNxt += len
    if (this.sndNxt === this.writeEnd) {
      this.nagleExpired = false
      this.timers[Timer.Nagle] = Number.POSITIVE_INFINITY
    }
    return this.sendSegment(now, out, offset, idx, false)
  }

  private sendSegment(now: Millis, out: Uint8Array, offset: number, idx: number, retransmission: boolean): number {
    const off = this.segOff[idx]!
    const len = this.segLen[idx]!
    ringRead(this.sndRing, off, out, offset + HEADER_SIZE, len)
    this.segSentAt[idx] = now
    this.segXmit[idx] = ++this.xmitCount
    if (this.segTx[idx]! < MAX_U8) this.segTx[idx] = this.segTx[idx]! + 1
    if (retransmission) this.st.retransmits++
    if (this.recovery === Recovery.Fast) this.prrOut += len
    this.st.dataSegmentsSent++
    if (this.timers[Timer.Retransmit] === Number.POSITIVE_INFINITY) this.timers[Timer.Retransmit] = now + this.currentRto()
    if (!retransmission) this.armProbe(now)
    this.ackNow = false
    this.unackedSegments = 0
    this.cancelDelayedAck()
    return this.emit(out, offset, Flag.ACK, this.seqOfSnd(off), this.rcvAckSeq(), this.advertisedWindow(), len)
  }

  /** The lowest segment deemed lost, if the congestion window allows (RFC 6675 NextSeg rule 1). */
  private retransmitLost(now: Millis, out: Uint8Array, offset: number): number {
    const mask = this.segOff.length - 1
    for (let k = this.lostScan; k < this.segCount; k++) {
      const i = (this.segHead + k) & mask
      if ((this.segFlags[i]! & LOST) === 0) continue
      const pipe = this.pipe()
      if (pipe > 0 && pipe + this.segLen[i]! > this.congestionWindow()) {
        this.lostScan = k
        return 0
      }
      this.lostScan = k + 1
      return this.retransmit(now, out, offset, i)
    }
    this.lostScan = this.segCount
    return 0
  }

  /** Sends segment i again with its original boundaries (§20 item 10). */
  private retransmit(now: Millis, out: Uint8Array, offset: number, i: number): number {
    if ((this.segFlags[i]! & LOST) !== 0) this.unmarkLost(i)
    this.segFlags[i] = this.segFlags[i]! & ~PROBED
    return this.sendSegment(now, out, offset, i, true)
  }

  private firstUnsackedIndex(): number {
    const mask = this.segOff.length - 1
    for (let k = 0; k < this.segCount; k++) {
      const i = (this.segHead + k) & mask
      if ((this.segFlags[i]! & SACKED) === 0) return i
    }
    return -1
  }

  private pushSegment(off: number, len: number): number {
    if (this.segCount === this.segOff.length) this.growSegments()
    const i = (this.segHead + this.segCount) & (this.segOff.length - 1)
    this.segOff[i] = off
    this.segLen[i] = len
    this.segTx[i] = 0
    this.segFlags[i] = 0
    this.segCount++
    return i
  }

  private growSegments(): void {
    const cap = this.segOff.length
    const n = cap * 2
    const off = new Float64Array(n)
    const len = new Int32Array(n)
    const at = new Float64Array(n)
    const xm = new Float64Array(n)
    const tx = new Uint8Array(n)
    const fl = new Uint8Array(n)
    for (let k = 0; k < this.segCount; k++) {
      const i = (this.segHead + k) & (cap - 1)
      off[k] = this.segOff[i]!
      len[k] = this.segLen[i]!
      at[k] = this.segSentAt[i]!
      xm[k] = this.segXmit[i]!
      tx[k] = this.segTx[i]!
      fl[k] = this.segFlags[i]!
    }
    this.segOff = off
    this.segLen = len
    this.segSentAt = at
    this.segXmit = xm
    this.segTx = tx
    this.segFlags = fl
    this.segHead = 0
  }

  private clearSegments(): void {
    this.segCount = 0
    this.segHead = 0
    this.sackedBytes = 0
    this.sackedSegs = 0
    this.lostBytes = 0
    this.lostSegs = 0
    this.lostScan = 0
  }

  private startsWithSackPattern(off: number, len: number): boolean {
    const r = this.sndRing
    const cap = r.length
    if (r[off % cap] !== 0x53 || r[(off + 1) % cap] !== 0x41 || r[(off + 2) % cap] !== 0x43 || r[(off + 3) % cap] !== 0x4b) {
      return false
    }
    const count = r[(off + 4) % cap]!
    return count >= 1 && count <= MAX_SACK_BLOCKS && len >= 5 + 8 * count
  }

  private emit(out: Uint8Array, offset: number, flags: number, seq: number, ack: number, window: number, len: number): number {
    const h = this.hdr
    h.flags = flags
    h.seq = seq >>> 0
    h.ack = ack >>> 0
    h.window = window
    const n = encodePacketInPlace(h, out, offset, len)
    if (this.timers[Timer.Keepalive] !== Number.POSITIVE_INFINITY) this.timers[Timer.Keepalive] = this.pollNow + this.cfg.keepalive
    this.st.packetsSent++
    this.st.bytesSent += n
    if ((flags & Flag.ACK) !== 0) this.lastAdvertised = window
    return n
  }

  // ───────────────────────── internals: misc ─────────────────────────

  private advertisedWindow(): number {
    const free = this.cfg.receiveBufferSize - (this.rcvNxt - this.readOff)
    const slots = Math.floor(free / WINDOW_UNIT)
    // Never 0: the reference reads 0 as "no limit" (§20 item 11).
    return slots < 1 ? 1 : slots > 0xffff ? 0xffff : slots
  }

  private setPeerWindow(slots: number): void {
    this.peerWindowSlots = slots
    this.peerWindow = slots * WINDOW_UNIT
  }

  private seqOfSnd(off: number): number {
    return (this.sndDataIsn + off) >>> 0
  }

  private seqOfRcv(off: number): number {
    return (this.rcvDataIsn + off) >>> 0
  }

  private rcvAckSeq(): number {
    return this.seqOfRcv(this.peerFinished ? this.rcvNxt + 1 : this.rcvNxt)
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

  private finSentOrQueuedAllowed(): boolean {
    return this.isSynchronized()
  }

  private ensureSendRing(needed: number): void {
    if (needed <= this.sndRing.length) return
    let n = this.sndRing.length
    while (n < needed) n *= 2
    n = Math.min(n, this.cfg.sendBufferSize)
    this.sndRing = growRing(this.sndRing, n, this.sndUna, this.writeEnd)
  }

  private ensureRecvRing(needed: number): void {
    if (needed <= this.rcvRing.length) return
    let n = this.rcvRing.length
    while (n < needed) n *= 2
    n = Math.min(n, this.rcvHardLimit)
    let liveEnd = this.rcvNxt
    if (this.oooEnd.length > 0) liveEnd = Math.max(liveEnd, this.oooEnd[this.oooEnd.length - 1]!)
    this.rcvRing = growRing(this.rcvRing, n, this.readOff, liveEnd)
  }

  private pushReadable(): void {
    if (this.readableSignalled) return
    this.readableSignalled = true
    this.pushEvent(StreamEvent.Readable)
  }

  private pushEvent(e: StreamEvent): void {
    if (this.evCount === 64) return // an unread backlog; the app polls state anyway
    this.events[(this.evHead + this.evCount) & 63] = e
    this.evCount++
  }

  private enterClosed(error: SessionError | null): void {
    if (this._state === StreamState.Closed) return
    this._state = StreamState.Closed
    this._error = error
    this.timers.fill(Number.POSITIVE_INFINITY)
    this.recovery = Recovery.None
    this.rtoRetransmitNow = false
    this.probePending = false
    this.probeSecond = false
    this.ackNow = false
    this.finAckPending = false
    this.synPending = false
    if (!this.peerFinished && error !== null) this.pushReadable() // read() now reports the end
    if (error !== null) this.peerFinished = true
    this.pushEvent(StreamEvent.Closed)
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

// ───────────────────────── ring helpers ─────────────────────────

/** Copies data[0..n) into the ring at stream offset `off`. */
function ringWrite(ring: Buffer, off: number, data: Uint8Array, n: number): void {
  ringWriteFrom(ring, off, data, 0, n)
}

function ringWriteFrom(ring: Buffer, off: number, data: Uint8Array, start: number, n: number): void {
  const cap = ring.length
  const p = off % cap
  const first = Math.min(n, cap - p)
  if (start === 0 && first === data.length) ring.set(data, p)
  else ring.set(data.subarray(start, start + first), p)
  if (first < n) ring.set(data.subarray(start + first, start + n), 0)
}

/** Copies n bytes at stream offset `off` out of the ring into `out[at..]`. */
function ringRead(ring: Buffer, off: number, out: Uint8Array, at: number, n: number): void {
  const cap = ring.length
  const p = off % cap
  const first = Math.min(n, cap - p)
  ring.copy(out, at, p, p + first)
  if (first < n) ring.copy(out, at + first, 0, n - first)
}

/** A larger ring holding the same live range [from, to) at its new positions. */
function growRing(old: Buffer, size: number, from: number, to: number): Buffer {
  const next = Buffer.allocUnsafe(size)
  let o = from
  while (o < to) {
    const po = o % old.length
    const pn = o % size
    const n = Math.min(to - o, old.length - po, size - pn)
    old.copy(next, pn, po, po + n)
    o += n
  }
  return next
}
