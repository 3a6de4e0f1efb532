import { test } from 'node:test'
import assert from 'node:assert/strict'
import { DecodeError } from '../../src/errors.js'
import {
  HandshakeSub,
  IPC_MAX_MESSAGE,
  IpcCommand,
  IpcFrameDecoder,
  decodeIpcMessage,
  encodeIpcMessage,
  type IpcMessage,
} from '../../src/protocol/ipc-frames.js'
import { fuzzDecoder } from '../util/fuzz.js'

const isReason = (reason: string) => (e: unknown) => e instanceof DecodeError && e.reason === reason
const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex')

test('§14 example: Dial to 0:0000.0000.0002 port 7', () => {
  const bytes = encodeIpcMessage({ cmd: IpcCommand.Dial, addr: { network: 0, node: 2 }, port: 7 })
  assert.equal(bytes.toString('hex'), '00000009' + '03' + '0000' + '00000002' + '0007')
  const [msg] = new IpcFrameDecoder().push(bytes)
  assert.deepEqual(decodeIpcMessage(msg!), { cmd: IpcCommand.Dial, addr: { network: 0, node: 2 }, port: 7 })
})

// Payloads seen between the reference's pilotctl/daemon (docs/wire.md §14 layouts).
test('layouts observed from the reference: Accept with local_port, Recv, Error code 1, handshake sub-commands', () => {
  // Accept: local_port 5000, conn 6, remote 0:0000.0000.0002 port 49159.
  assert.deepEqual(decodeIpcMessage(hex('05 1388 00000006 0000 00000002 c007')), {
    cmd: IpcCommand.Accept,
    localPort: 5000,
    connId: 6,
    remote: { network: 0, node: 2 },
    remotePort: 0xc007,
  })
  const recv = decodeIpcMessage(hex('07 00000006 646772616d2d68656c6c6f'))
  assert.equal(recv.cmd, IpcCommand.Recv)
  assert.equal((recv as { connId: number }).connId, 6)
  assert.equal(Buffer.from((recv as { data: Uint8Array }).data).toString(), 'dgram-hello')
  assert.deepEqual(decodeIpcMessage(hex('0a 0001 636f6e6e656374696f6e2072656675736564')), { cmd: IpcCommand.Error, code: 1, message: 'connection refused' })
  assert.equal(encodeIpcMessage({ cmd: IpcCommand.Error, code: 1, message: 'connection refused' }).toString('hex'), '00000015' + '0a0001636f6e6e656374696f6e2072656675736564')
  assert.deepEqual(decodeIpcMessage(hex('0f 01 00000001 68656c6c6f207468657265')), {
    cmd: IpcCommand.Handshake,
    handshake: { sub: HandshakeSub.Send, nodeId: 1, justification: 'hello there' },
  })
  assert.deepEqual(decodeIpcMessage(hex('0f 03 00000001 6e6f7065')), { cmd: IpcCommand.Handshake, handshake: { sub: HandshakeSub.Reject, nodeId: 1, reason: 'nope' } })
  assert.deepEqual(decodeIpcMessage(hex('0f 06 00000001')), { cmd: IpcCommand.Handshake, handshake: { sub: HandshakeSub.Revoke, nodeId: 1 } })
  assert.deepEqual(decodeIpcMessage(hex('0f 04')), { cmd: IpcCommand.Handshake, handshake: { sub: HandshakeSub.Pending } })
  assert.deepEqual(decodeIpcMessage(hex('15 01')), { cmd: IpcCommand.SetVisibility, enabled: true })
  assert.deepEqual(decodeIpcMessage(hex('19 5b2278222c2279225d')), { cmd: IpcCommand.SetTags, text: '["x","y"]' })
  assert.deepEqual(decodeIpcMessage(hex('0d')), { cmd: IpcCommand.Info })
})

test('RecvFrom carries dst_port; every command round-trips', () => {
  const rf = encodeIpcMessage({ cmd: IpcCommand.RecvFrom, src: { network: 0, node: 3 }, srcPort: 49154, dstPort: 5000, data: Buffer.from('hi') })
  assert.equal(rf.toString('hex'), '0000000d' + '0c' + '0000' + '00000003' + 'c002' + '1388' + '6869')
  const all: IpcMessage[] = [
    { cmd: IpcCommand.Bind, port: 80 },
    { cmd: IpcCommand.BindOK, port: 80 },
    { cmd: IpcCommand.DialOK, connId: 0xfffffffe },
    { cmd: IpcCommand.Close, connId: 9 },
    { cmd: IpcCommand.CloseOK, connId: 9 },
    { cmd: IpcCommand.Send, connId: 1, data: Buffer.from('abc') },
    { cmd: IpcCommand.SendTo, addr: { network: 1, node: 0xffffffff }, port: 1, data: Buffer.alloc(0) },
    { cmd: IpcCommand.Deregister },
    { cmd: IpcCommand.SetTaskExec, enabled: false },
    { cmd: IpcCommand.Handshake, handshake: { sub: HandshakeSub.Approve, nodeId: 77 } },
    { cmd: IpcCommand.Handshake, handshake: { sub: HandshakeSub.Trusted } },
    { cmd: IpcCommand.InfoOK, text: '{"node_id":1}' },
    { cmd: IpcCommand.SetWebhook, text: '' },
  ]
  for (const m of all) {
    const [raw] = new IpcFrameDecoder().push(encodeIpcMessage(m))
    const back = decodeIpcMessage(raw!)
    assert.deepEqual(JSON.parse(JSON.stringify(back, bufText)), JSON.parse(JSON.stringify(m, bufText)), IpcCommand[m.cmd])
  }
})

function bufText(_k: string, v: unknown): unknown {
  if (v instanceof Uint8Array) return Buffer.from(v).toString('hex')
  if (v !== null && typeof v === 'object' && (v as { type?: string }).type === 'Buffer') return Buffer.from((v as { data: number[] }).data).toString('hex')
  return v
}

test('incremental: byte at a time, several messages in one chunk', () => {
  const a = encodeIpcMessage({ cmd: IpcCommand.Bind, port: 1000 })
  const b = encodeIpcMessage({ cmd: IpcCommand.Send, connId: 5, data: Buffer.alloc(3000, 7) })
  const stream = Buffer.concat([a, b, a])
  const d = new IpcFrameDecoder()
  const got: Buffer[] = []
  for (const byte of stream) got.push(...d.push(Buffer.from([byte])))
  assert.equal(got.length, 3)
  assert.equal(d.bufferedBytes, 0)
  assert.deepEqual(new IpcFrameDecoder().push(stream).length, 3)
})

test('typed errors: oversize (framing lost), short, empty, unknown command, bad sub-command', () => {
  const d = new IpcFrameDecoder()
  const big = Buffer.alloc(4)
  big.writeUInt32BE(IPC_MAX_MESSAGE + 1)
  assert.throws(() => d.push(big), isReason('too-large'))
  assert.equal(d.bufferedBytes, 0)
  assert.throws(() => d.push(encodeIpcMessage({ cmd: IpcCommand.Info })), isReason('too-large'), 'stays failed')
  // exactly the limit is fine (announced, not yet complete)
  const atLimit = Buffer.alloc(4)
  atLimit.writeUInt32BE(IPC_MAX_MESSAGE)
  assert.deepEqual(new IpcFrameDecoder().push(atLimit), [])
  assert.throws(() => decodeIpcMessage(Buffer.alloc(0)), isReason('short-buffer'))
  assert.throws(() => decodeIpcMessage(hex('03 0000 0000')), isReason('short-buffer'))
  assert.throws(() => decodeIpcMessage(hex('05 1388 00000006')), isReason('short-buffer'))
  assert.throws(() => decodeIpcMessage(hex('0f')), isReason('short-buffer'))
  assert.throws(() => decodeIpcMessage(hex('0f 02 0000')), isReason('short-buffer'))
  assert.throws(() => decodeIpcMessage(hex('1f 01')), isReason('bad-type'), 'Network ([D] only) is unknown, as in [G]')
  assert.throws(() => decodeIpcMessage(hex('ff')), isReason('bad-type'))
  assert.throws(() => decodeIpcMessage(hex('0f 09')), isReason('bad-value'))
  assert.throws(() => encodeIpcMessage({ cmd: IpcCommand.Recv, connId: 1, data: Buffer.alloc(IPC_MAX_MESSAGE) }), isReason('too-large'))
})

test('fuzz: random and mutated input only ever gives typed errors; the decoder holds at most one message', () => {
  const corpus = [
    encodeIpcMessage({ cmd: IpcCommand.Dial, addr: { network: 0, node: 2 }, port: 7 }),
    encodeIpcMessage({ cmd: IpcCommand.Accept, localPort: 80, connId: 3, remote: { network: 0, node: 9 }, remotePort: 49152 }),
    encodeIpcMessage({ cmd: IpcCommand.Handshake, handshake: { sub: HandshakeSub.Send, nodeId: 1, justification: 'x' } }),
    encodeIpcMessage({ cmd: IpcCommand.RecvFrom, src: { network: 0, node: 1 }, srcPort: 1, dstPort: 2, data: Buffer.from('d') }),
    Buffer.concat([encodeIpcMessage({ cmd: IpcCommand.Info }), encodeIpcMessage({ cmd: IpcCommand.SetTags, text: '[]' })]),
  ]
  const LIMIT = 512
  let maxHeld = 0
  const report = fuzzDecoder({
    iterations: 50_000,
    seed: 14,
    corpus,
    maxRandomLength: 96,
    decode: (b) => {
      const d = new IpcFrameDecoder(LIMIT)
      const out: IpcMessage[] = []
      for (let at = 0; at < b.length; at += 5) {
        for (const raw of d.push(b.subarray(at, at + 5))) {
          try {
            out.push(decodeIpcMessage(raw))
          } catch (err) {
            if (!(err instanceof DecodeError)) throw err
          }
        }
        maxHeld = Math.max(maxHeld, d.bufferedBytes)
      }
      return out
    },
    onDecoded: (messages) => {
      for (const m of messages) assert.equal(typeof IpcCommand[m.cmd], 'string')
    },
  })
  assert.ok(report.accepted > 1000, `accepted ${report.accepted}`)
  assert.ok((report.reasons.get('too-large') ?? 0) > 0)
  assert.ok(maxHeld <= LIMIT + 4 + 5, `held ${maxHeld}`)
})
