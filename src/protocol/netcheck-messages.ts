/**
 * The netcheck probe messages, a pilot-tun extension of the beacon protocol
 * (docs/wire.md §9.8). Type bytes 0x08–0x0A sit in the beacon range (< 0x10)
 * and are unknown to the Go reference, whose beacon drops them (it logs
 * "unknown beacon message type" at debug level) and whose daemon drops every
 * beacon type but 0x02, 0x04 and 0x06 (§5.1).
 *
 *   0x08 ProbeRequest  txid u32 || zero padding to PROBE_REQUEST_MIN_SIZE bytes in all
 *   0x09 ProbeInfo     txid u32 || observed endpoint || count u8 (0..2) || count x probe endpoint
 *   0x0A ProbeReply    txid u32 || probe index u8 || observed endpoint
 *
 * An observed endpoint is DiscoverReply's `ip_len u8 (4|16) || ip || port u16`.
 * A probe endpoint has the same layout but ip_len may be 0 (no ip bytes): "the
 * address this ProbeInfo came from". The padding bounds what a forged request
 * can make the beacon send: every answer to one request together is smaller
 * than the request itself.
 */
import { readU32, writeU32 } from '../bytes.js'
import { DecodeError } from '../errors.js'
import { hostBytes, hostText, type Endpoint } from './beacon-messages.js'

export const NetcheckType = {
  PROBE_REQUEST: 0x08,
  PROBE_INFO: 0x09,
  PROBE_REPLY: 0x0a,
} as const

/** A ProbeRequest shorter than this is refused (anti-amplification; see the file comment). */
export const PROBE_REQUEST_MIN_SIZE = 128
/** Probe endpoints one beacon advertises at most: one towards its own address, one towards another. */
export const PROBE_MAX_ENDPOINTS = 2

/** A probe port as advertised: `host` null = the address the ProbeInfo came from. */
export interface ProbeEndpoint {
  readonly host: string | null
  readonly port: number
}

export interface ProbeRequestMessage { readonly type: typeof NetcheckType.PROBE_REQUEST; readonly txid: number }
export interface ProbeInfoMessage {
  readonly type: typeof NetcheckType.PROBE_INFO
  readonly txid: number
  /** The UDP source the beacon saw the request come from. */
  readonly observed: Endpoint
  readonly probes: readonly ProbeEndpoint[]
}
export interface ProbeReplyMessage {
  readonly type: typeof NetcheckType.PROBE_REPLY
  readonly txid: number
  /** Which advertised probe endpoint this reply belongs to. */
  readonly index: number
  /** Where the beacon sent it: the request's source as the beacon saw it. */
  readonly observed: Endpoint
}
export type NetcheckMessage = ProbeRequestMessage | ProbeInfoMessage | ProbeReplyMessage

/** True for the three type bytes of this extension. */
export function isNetcheckType(type: number): boolean {
  return type >= NetcheckType.PROBE_REQUEST && type <= NetcheckType.PROBE_REPLY
}

export function decodeNetcheckMessage(buf: Uint8Array): NetcheckMessage {
  if (buf.length === 0) throw new DecodeError('short-buffer', 'empty netcheck message')
  const type = buf[0]!
  switch (type) {
    case NetcheckType.PROBE_REQUEST:
      need(buf, PROBE_REQUEST_MIN_SIZE, 'ProbeRequest')
      return { type, txid: readU32(buf, 1) }
    case NetcheckType.PROBE_INFO: {
      need(buf, 5, 'ProbeInfo')
      const observed = readEndpoint(buf, 5, false, 'ProbeInfo')
      let p = observed.next
      need(buf, p + 1, 'ProbeInfo')
      const count = buf[p++]!
      if (count > PROBE_MAX_ENDPOINTS) throw new DecodeError('bad-value', `ProbeInfo lists ${count} probe endpoints, at most ${PROBE_MAX_ENDPOINTS}`)
      const probes: ProbeEndpoint[] = []
      for (let i = 0; i < count; i++) {
        const e = readEndpoint(buf, p, true, 'ProbeInfo')
        probes.push({ host: e.host, port: e.port })
        p = e.next
      }
      return { type, txid: readU32(buf, 1), observed: { host: observed.host!, port: observed.port }, probes }
    }
    case NetcheckType.PROBE_REPLY: {
      need(buf, 6, 'ProbeReply')
      const index = buf[5]!
      if (index >= PROBE_MAX_ENDPOINTS) throw new DecodeError('bad-value', `ProbeReply index ${index} is not below ${PROBE_MAX_ENDPOINTS}`)
      const observed = readEndpoint(buf, 6, false, 'ProbeReply')
      return { type, txid: readU32(buf, 1), index, observed: { host: observed.host!, port: observed.port } }
    }
    default:
      throw new DecodeError('bad-type', `0x${type.toString(16).padStart(2, '0')} is not a netcheck message type`)
  }
}

/** Allocates the message's bytes (a ProbeRequest comes out padded to PROBE_REQUEST_MIN_SIZE). */
export function encodeNetcheckMessage(msg: NetcheckMessage): Buffer {
  switch (msg.type) {
    case NetcheckType.PROBE_REQUEST: {
      const out = Buffer.alloc(PROBE_REQUEST_MIN_SIZE)
      out[0] = msg.type
      writeU32(out, 1, u32(msg.txid))
      return out
    }
    case NetcheckType.PROBE_INFO: {
      if (msg.probes.length > PROBE_MAX_ENDPOINTS) throw new DecodeError('too-large', `at most ${PROBE_MAX_ENDPOINTS} probe endpoints, got ${msg.probes.length}`)
      const parts = [endpointBytes(msg.observed.host, msg.observed.port), Uint8Array.of(msg.probes.length)]
      for (const p of msg.probes) parts.push(endpointBytes(p.host, p.port))
      return withHeader(msg.type, msg.txid, parts)
    }
    case NetcheckType.PROBE_REPLY: {
      if (!Number.isInteger(msg.index) || msg.index < 0 || msg.index >= PROBE_MAX_ENDPOINTS) {
        throw new DecodeError('bad-value', `probe index ${msg.index} is not below ${PROBE_MAX_ENDPOINTS}`)
      }
      return withHeader(msg.type, msg.txid, [Uint8Array.of(msg.index), endpointBytes(msg.observed.host, msg.observed.port)])
    }
    default:
      throw new DecodeError('bad-type', `unknown netcheck message type ${(msg as { type: unknown }).type}`)
  }
}

function withHeader(type: number, txid: number, parts: Uint8Array[]): Buffer {
  const out = Buffer.allocUnsafe(5 + parts.reduce((n, p) => n + p.length, 0))
  out[0] = type
  writeU32(out, 1, u32(txid))
  let p = 5
  for (const part of parts) {
    out.set(part, p)
    p += part.length
  }
  return out
}

/** `ip_len || ip || port`; a null host is ip_len 0. */
function endpointBytes(host: string | null, port: number): Uint8Array {
  if (!Number.isInteger(port) || port < 0 || port > 0xffff) throw new DecodeError('bad-port', `port ${port} is not a u16`)
  const ip = host === null ? new Uint8Array(0) : hostBytes(host)
  const out = new Uint8Array(1 + ip.length + 2)
  out[0] = ip.length
  out.set(ip, 1)
  out[1 + ip.length] = port >>> 8
  out[2 + ip.length] = port & 0xff
  return out
}

/** The endpoint at `offset` and the offset after it; a null host only where `allowEmpty` (ip_len 0). */
function readEndpoint(buf: Uint8Array, offset: number, allowEmpty: boolean, name: string): ProbeEndpoint & { next: number } {
  need(buf, offset + 1, name)
  const ipLen = buf[offset]!
  if (ipLen !== 4 && ipLen !== 16 && !(allowEmpty && ipLen === 0)) {
    throw new DecodeError('bad-address', `${name}: ip_len must be ${allowEmpty ? '0, ' : ''}4 or 16, got ${ipLen}`)
  }
  need(buf, offset + 1 + ipLen + 2, name)
  const p = offset + 1 + ipLen
  const host = ipLen === 0 ? null : hostText(buf.subarray(offset + 1, p))
  return { host, port: (buf[p]! << 8) | buf[p + 1]!, next: p + 2 }
}

function need(buf: Uint8Array, size: number, name: string): void {
  if (buf.length < size) throw new DecodeError('short-buffer', `${name} needs ${size} bytes, got ${buf.length}`)
}

function u32(v: number): number {
  if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new DecodeError('bad-value', `txid ${v} is not a u32`)
  return v
}
