/**
 * The daemon ↔ driver IPC of the Go reference (docs/wire.md §14), sans-IO:
 * `length u32 ‖ command u8 ‖ payload`, big-endian, at most 1,048,576 bytes
 * after the length. `IpcFrameDecoder` cuts a byte stream into messages
 * (incrementally, holding at most one unfinished message); `decodeIpcMessage`
 * parses one message and `encodeIpcMessage` builds one, length included.
 *
 * Bad input is a `DecodeError`: `too-large` (a length over the limit: framing
 * is lost), `short-buffer` (an empty message or a payload shorter than its
 * command needs: framing is intact), `bad-type` (an unknown command: intact),
 * `bad-value` (a bad handshake sub-command: intact). Nothing else is thrown.
 */
import { DecodeError } from '../errors.js'
import { ADDRESS_SIZE, readAddress, writeAddress, type PilotAddress } from './address.js'

/** Largest `command ‖ payload` the length prefix may announce. */
export const IPC_MAX_MESSAGE = 1_048_576
/** The length prefix. */
export const IPC_LENGTH_SIZE = 4

export enum IpcCommand {
  Bind = 0x01,
  BindOK = 0x02,
  Dial = 0x03,
  DialOK = 0x04,
  Accept = 0x05,
  Send = 0x06,
  Recv = 0x07,
  Close = 0x08,
  CloseOK = 0x09,
  Error = 0x0a,
  SendTo = 0x0b,
  RecvFrom = 0x0c,
  Info = 0x0d,
  InfoOK = 0x0e,
  Handshake = 0x0f,
  HandshakeOK = 0x10,
  ResolveHostname = 0x11,
  ResolveHostnameOK = 0x12,
  SetHostname = 0x13,
  SetHostnameOK = 0x14,
  SetVisibility = 0x15,
  SetVisibilityOK = 0x16,
  Deregister = 0x17,
  DeregisterOK = 0x18,
  SetTags = 0x19,
  SetTagsOK = 0x1a,
  SetWebhook = 0x1b,
  SetWebhookOK = 0x1c,
  SetTaskExec = 0x1d,
  SetTaskExecOK = 0x1e,
}

/** Handshake (0x0F) sub-commands. */
export enum HandshakeSub {
  Send = 0x01,
  Approve = 0x02,
  Reject = 0x03,
  Pending = 0x04,
  Trusted = 0x05,
  Revoke = 0x06,
}

/** Commands whose payload is UTF-8 text (hostnames, URLs, JSON answers). */
export type IpcTextCommand =
  | IpcCommand.InfoOK
  | IpcCommand.HandshakeOK
  | IpcCommand.ResolveHostname
  | IpcCommand.ResolveHostnameOK
  | IpcCommand.SetHostname
  | IpcCommand.SetHostnameOK
  | IpcCommand.SetVisibilityOK
  | IpcCommand.DeregisterOK
  | IpcCommand.SetTags
  | IpcCommand.SetTagsOK
  | IpcCommand.SetWebhook
  | IpcCommand.SetWebhookOK
  | IpcCommand.SetTaskExecOK

const TEXT_COMMANDS: ReadonlySet<number> = new Set<number>([
  IpcCommand.InfoOK,
  IpcCommand.HandshakeOK,
  IpcCommand.ResolveHostname,
  IpcCommand.ResolveHostnameOK,
  IpcCommand.SetHostname,
  IpcCommand.SetHostnameOK,
  IpcCommand.SetVisibilityOK,
  IpcCommand.DeregisterOK,
  IpcCommand.SetTags,
  IpcCommand.SetTagsOK,
  IpcCommand.SetWebhook,
  IpcCommand.SetWebhookOK,
  IpcCommand.SetTaskExecOK,
])

export type IpcHandshake =
  | { sub: HandshakeSub.Send; nodeId: number; justification: string }
  | { sub: HandshakeSub.Approve; nodeId: number }
  | { sub: HandshakeSub.Reject; nodeId: number; reason: string }
  | { sub: HandshakeSub.Pending }
  | { sub: HandshakeSub.Trusted }
  | { sub: HandshakeSub.Revoke; nodeId: number }

export type IpcMessage =
  | { cmd: IpcCommand.Bind | IpcCommand.BindOK; port: number }
  | { cmd: IpcCommand.Dial; addr: PilotAddress; port: number }
  | { cmd: IpcCommand.DialOK | IpcCommand.Close | IpcCommand.CloseOK; connId: number }
  | { cmd: IpcCommand.Accept; localPort: number; connId: number; remote: PilotAddress; remotePort: number }
  | { cmd: IpcCommand.Send | IpcCommand.Recv; connId: number; data: Uint8Array }
  | { cmd: IpcCommand.Error; code: number; message: string }
  | { cmd: IpcCommand.SendTo; addr: PilotAddress; port: number; data: Uint8Array }
  | { cmd: IpcCommand.RecvFrom; src: PilotAddress; srcPort: number; dstPort: number; data: Uint8Array }
  | { cmd: IpcCommand.Info | IpcCommand.Deregister }
  | { cmd: IpcCommand.SetVisibility | IpcCommand.SetTaskExec; enabled: boolean }
  | { cmd: IpcCommand.Handshake; handshake: IpcHandshake }
  | { cmd: IpcTextCommand; text: string }

/** The name of a command byte, for logs and error texts. */
export function ipcCommandName(cmd: number): string {
  return IpcCommand[cmd] ?? `0x${cmd.toString(16).padStart(2, '0')}`
}

// ───────────────────────── framing ─────────────────────────

/**
 * Cuts a byte stream into messages (`command ‖ payload`, without the length).
 * Holds at most one unfinished message plus the chunk being pushed. After a
 * `too-large` error the stream has no framing left: the caller must close.
 */
export class IpcFrameDecoder {
  private readonly maxMessage: number
  private chunks: Buffer[] = []
  private buffered = 0
  private failed = false

  constructor(maxMessage = IPC_MAX_MESSAGE) {
    this.maxMessage = maxMessage
  }

  /** Bytes held. */
  get bufferedBytes(): number {
    return this.buffered
  }

  /** Adds bytes and returns every complete message; throws `too-large` (then keeps throwing). */
  push(chunk: Uint8Array): Buffer[] {
    if (this.failed) throw new DecodeError('too-large', 'the IPC stream lost its framing')
    if (chunk.length > 0) {
      this.chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length))
      this.buffered += chunk.length
    }
    const out: Buffer[] = []
    while (this.buffered >= IPC_LENGTH_SIZE) {
      const head = this.peekLength()
      if (head > this.maxMessage) {
        this.failed = true
        this.chunks = []
        this.buffered = 0
        throw new DecodeError('too-large', `IPC message of ${head} bytes announced; at most ${this.maxMessage}`)
      }
      if (this.buffered < IPC_LENGTH_SIZE + head) break
      const all = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks, this.buffered)
      out.push(Buffer.from(all.subarray(IPC_LENGTH_SIZE, IPC_LENGTH_SIZE + head)))
      const rest = all.subarray(IPC_LENGTH_SIZE + head)
      this.chunks = rest.length > 0 ? [rest] : []
      this.buffered = rest.length
    }
    return out
  }

  private peekLength(): number {
    const first = this.chunks[0]!
    if (first.length >= IPC_LENGTH_SIZE) return first.readUInt32BE(0)
    const joined = Buffer.concat(this.chunks, this.buffered)
    this.chunks = [joined]
    return joined.readUInt32BE(0)
  }
}

// ───────────────────────── messages ─────────────────────────

/** Parses one message (`command ‖ payload`). */
export function decodeIpcMessage(msg: Uint8Array): IpcMessage {
  if (msg.length === 0) throw new DecodeError('short-buffer', 'empty IPC message (no command byte)')
  const b = Buffer.from(msg.buffer, msg.byteOffset, msg.length)
  const cmd = b[0]!
  const p = b.subarray(1)
  const need = (n: number): void => {
    if (p.length < n) throw new DecodeError('short-buffer', `IPC ${ipcCommandName(cmd)} needs ${n} payload bytes, got ${p.length}`)
  }
  switch (cmd) {
    case IpcCommand.Bind:
    case IpcCommand.BindOK:
      need(2)
      return { cmd, port: p.readUInt16BE(0) }
    case IpcCommand.Dial:
      need(ADDRESS_SIZE + 2)
      return { cmd, addr: readAddress(p, 0), port: p.readUInt16BE(ADDRESS_SIZE) }
    case IpcCommand.DialOK:
    case IpcCommand.Close:
    case IpcCommand.CloseOK:
      need(4)
      return { cmd, connId: p.readUInt32BE(0) }
    case IpcCommand.Accept:
      need(2 + 4 + ADDRESS_SIZE + 2)
      return { cmd, localPort: p.readUInt16BE(0), connId: p.readUInt32BE(2), remote: readAddress(p, 6), remotePort: p.readUInt16BE(6 + ADDRESS_SIZE) }
    case IpcCommand.Send:
    case IpcCommand.Recv:
      need(4)
      return { cmd, connId: p.readUInt32BE(0), data: p.subarray(4) }
    case IpcCommand.Error:
      need(2)
      return { cmd, code: p.readUInt16BE(0), message: p.subarray(2).toString('utf8') }
    case IpcCommand.SendTo:
      need(ADDRESS_SIZE + 2)
      return { cmd, addr: readAddress(p, 0), port: p.readUInt16BE(ADDRESS_SIZE), data: p.subarray(ADDRESS_SIZE + 2) }
    case IpcCommand.RecvFrom:
      need(ADDRESS_SIZE + 4)
      return { cmd, src: readAddress(p, 0), srcPort: p.readUInt16BE(ADDRESS_SIZE), dstPort: p.readUInt16BE(ADDRESS_SIZE + 2), data: p.subarray(ADDRESS_SIZE + 4) }
    case IpcCommand.Info:
    case IpcCommand.Deregister:
      return { cmd }
    case IpcCommand.SetVisibility:
    case IpcCommand.SetTaskExec:
      need(1)
      return { cmd, enabled: p[0] === 1 }
    case IpcCommand.Handshake:
      return { cmd, handshake: decodeHandshake(p) }
    default:
      if (TEXT_COMMANDS.has(cmd)) return { cmd: cmd as IpcTextCommand, text: p.toString('utf8') }
      throw new DecodeError('bad-type', `unknown IPC command ${ipcCommandName(cmd)}`)
  }
}

function decodeHandshake(p: Buffer): IpcHandshake {
  if (p.length < 1) throw new DecodeError('short-buffer', 'IPC Handshake needs a sub-command byte')
  const sub = p[0]!
  const withNode = (): number => {
    if (p.length < 5) throw new DecodeError('short-buffer', `IPC Handshake sub-command ${sub} needs a node ID`)
    return p.readUInt32BE(1)
  }
  switch (sub) {
    case HandshakeSub.Send:
      return { sub, nodeId: withNode(), justification: p.subarray(5).toString('utf8') }
    case HandshakeSub.Approve:
      return { sub, nodeId: withNode() }
    case HandshakeSub.Reject:
      return { sub, nodeId: withNode(), reason: p.subarray(5).toString('utf8') }
    case HandshakeSub.Pending:
    case HandshakeSub.Trusted:
      return { sub }
    case HandshakeSub.Revoke:
      return { sub, nodeId: withNode() }
    default:
      throw new DecodeError('bad-value', `unknown handshake sub-command 0x${sub.toString(16).padStart(2, '0')}`)
  }
}

/** Builds `length ‖ command ‖ payload`; throws `too-large` past the limit (a Recv must be split before). */
export function encodeIpcMessage(m: IpcMessage): Buffer {
  const payload = encodePayload(m)
  const length = 1 + payload.length
  if (length > IPC_MAX_MESSAGE) throw new DecodeError('too-large', `IPC ${ipcCommandName(m.cmd)} of ${length} bytes; at most ${IPC_MAX_MESSAGE}`)
  const out = Buffer.allocUnsafe(IPC_LENGTH_SIZE + length)
  out.writeUInt32BE(length, 0)
  out[4] = m.cmd
  payload.copy(out, 5)
  return out
}

/** The largest data a Send/Recv may carry in one message. */
export const IPC_MAX_STREAM_DATA = IPC_MAX_MESSAGE - 1 - 4

function encodePayload(m: IpcMessage): Buffer {
  switch (m.cmd) {
    case IpcCommand.Bind:
    case IpcCommand.BindOK:
      return u16(m.port)
    case IpcCommand.Dial: {
      const b = Buffer.alloc(ADDRESS_SIZE + 2)
      writeAddress(m.addr, b, 0)
      b.writeUInt16BE(m.port, ADDRESS_SIZE)
      return b
    }
    case IpcCommand.DialOK:
    case IpcCommand.Close:
    case IpcCommand.CloseOK:
      return u32(m.connId)
    case IpcCommand.Accept: {
      const b = Buffer.alloc(2 + 4 + ADDRESS_SIZE + 2)
      b.writeUInt16BE(m.localPort, 0)
      b.writeUInt32BE(m.connId, 2)
      writeAddress(m.remote, b, 6)
      b.writeUInt16BE(m.remotePort, 6 + ADDRESS_SIZE)
      return b
    }
    case IpcCommand.Send:
    case IpcCommand.Recv:
      return Buffer.concat([u32(m.connId), m.data])
    case IpcCommand.Error:
      return Buffer.concat([u16(m.code), Buffer.from(m.message, 'utf8')])
    case IpcCommand.SendTo: {
      const b = Buffer.alloc(ADDRESS_SIZE + 2)
      writeAddress(m.addr, b, 0)
      b.writeUInt16BE(m.port, ADDRESS_SIZE)
      return Buffer.concat([b, m.data])
    }
    case IpcCommand.RecvFrom: {
      const b = Buffer.alloc(ADDRESS_SIZE + 4)
      writeAddress(m.src, b, 0)
      b.writeUInt16BE(m.srcPort, ADDRESS_SIZE)
      b.writeUInt16BE(m.dstPort, ADDRESS_SIZE + 2)
      return Buffer.concat([b, m.data])
    }
    case IpcCommand.Info:
    case IpcCommand.Deregister:
      return Buffer.alloc(0)
    case IpcCommand.SetVisibility:
    case IpcCommand.SetTaskExec:
      return Buffer.from([m.enabled ? 1 : 0])
    case IpcCommand.Handshake:
      return encodeHandshake(m.handshake)
    default:
      return Buffer.from(m.text, 'utf8')
  }
}

function encodeHandshake(h: IpcHandshake): Buffer {
  switch (h.sub) {
    case HandshakeSub.Pending:
    case HandshakeSub.Trusted:
      return Buffer.from([h.sub])
    case HandshakeSub.Send:
      return Buffer.concat([Buffer.from([h.sub]), u32(h.nodeId), Buffer.from(h.justification, 'utf8')])
    case HandshakeSub.Reject:
      return Buffer.concat([Buffer.from([h.sub]), u32(h.nodeId), Buffer.from(h.reason, 'utf8')])
    default:
      return Buffer.concat([Buffer.from([h.sub]), u32(h.nodeId)])
  }
}

function u16(v: number): Buffer {
  const b = Buffer.alloc(2)
  b.writeUInt16BE(v, 0)
  return b
}

function u32(v: number): Buffer {
  const b = Buffer.alloc(4)
  b.writeUInt32BE(v >>> 0, 0)
  return b
}
