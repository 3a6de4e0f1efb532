/**
 * Bounds the daemon keeps against hostile peers. Each is the default of an
 * option that tests (and the composition root) may override.
 */

// ───────────────────────── port 444 (services.ts) ─────────────────────────

/**
 * Bytes one port-444 stream may deliver before it is reset. A trust message
 * is one JSON object of at most 4096 bytes (`MAX_HANDSHAKE_MESSAGE`); four
 * times that leaves room for whitespace and a second object we ignore.
 */
export const HANDSHAKE_MAX_STREAM_BYTES = 16 * 1024

/** Receive buffer of a port-444 stream: the window we advertise there is 4 slots, not the default 512. */
export const HANDSHAKE_RECEIVE_BUFFER = 16 * 1024

/** Port-444 streams one node may have open at once; its next SYN is refused (RST). */
export const HANDSHAKE_MAX_STREAMS_PER_NODE = 4

/** Port-444 streams open at once from all nodes together. */
export const HANDSHAKE_MAX_STREAMS = 128

/** The port-444 bounds together (`startHandshakeService` takes a partial override). */
export interface HandshakeLimits {
  maxStreamBytes: number
  receiveBufferSize: number
  maxStreamsPerNode: number
  maxStreams: number
}

export const DEFAULT_HANDSHAKE_LIMITS: Readonly<HandshakeLimits> = Object.freeze({
  maxStreamBytes: HANDSHAKE_MAX_STREAM_BYTES,
  receiveBufferSize: HANDSHAKE_RECEIVE_BUFFER,
  maxStreamsPerNode: HANDSHAKE_MAX_STREAMS_PER_NODE,
  maxStreams: HANDSHAKE_MAX_STREAMS,
})

// ───────────────────────── trust.json (trust-store.ts) ─────────────────────────

/**
 * Incoming trust requests waiting for the operator. When the table is full,
 * new requesters are refused (counted); a node that asks again replaces its
 * own entry.
 */
export const MAX_PENDING_TRUST_REQUESTS = 256

/** A failed trust.json write is tried again after this long, doubling up to `TRUST_WRITE_RETRY_MAX_MS`. */
export const TRUST_WRITE_RETRY_MIN_MS = 1_000
export const TRUST_WRITE_RETRY_MAX_MS = 60_000
