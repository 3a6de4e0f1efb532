/**
 * The vocabulary of a Pilot stream (docs/wire.md §6): states, events, the
 * configuration with its defaults, and the statistics a connection reports.
 */
import { newReno, type CongestionControllerFactory } from './congestion.js'
import type { BufferPool } from './buffer-pool.js'
import type { Millis } from './types.js'

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
  /**
   * Where the send and receive rings take their buffers while they hold bytes
   * (the endpoint's pool, shared by its streams); null: allocated per ring.
   */
  buffers: BufferPool | null
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
  buffers: null,
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

/** A zeroed StreamStats (srtt -1: no sample yet). */
export function newStreamStats(): StreamStats {
  return {
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
}

/** What the endpoint knows about a SYN it is about to accept. */
export interface PassiveOpen {
  readonly synSeq: number
  readonly synWindow: number
}
