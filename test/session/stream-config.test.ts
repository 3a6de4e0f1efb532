/** stream-config: defaults and validation; packet-fields: the header the session layer fills. */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { DEFAULT_STREAM_CONFIG, newStreamStats, resolveStreamConfig, streamStateName, StreamState } from '../../src/session/stream-config.js'
import { fillHeader } from '../../src/session/packet-fields.js'
import { Flag, HEADER_SIZE, PROTOCOL_VERSION, Protocol, PacketHeader, decodePacket, encodePacketInPlace } from '../../src/protocol/header.js'

test('resolveStreamConfig fills defaults and refuses impossible sizes', () => {
  const c = resolveStreamConfig({ mss: 4096 })
  assert.equal(c.mss, 4096)
  assert.equal(c.receiveBufferSize, DEFAULT_STREAM_CONFIG.receiveBufferSize)
  assert.throws(() => resolveStreamConfig({ mss: 0 }), RangeError)
  assert.throws(() => resolveStreamConfig({ mss: 70_000 }), RangeError)
  assert.throws(() => resolveStreamConfig({ mss: 2000, sendBufferSize: 1000 }), RangeError)
  assert.throws(() => resolveStreamConfig({ receiveBufferSize: 4095 }), RangeError)
  assert.equal(streamStateName(StreamState.CloseWait), 'CLOSE_WAIT')
  const st = newStreamStats()
  assert.equal(st.srtt, -1)
  assert.equal(st.packetsSent, 0)
})

test('fillHeader sets every field the encoder writes', () => {
  const h = new PacketHeader()
  h.version = 9
  fillHeader(h, Protocol.STREAM, Flag.ACK, { network: 1, node: 2 }, 1000, { network: 3, node: 4 }, 80, 0x1_0000_0005, -1, 7)
  const out = new Uint8Array(HEADER_SIZE)
  encodePacketInPlace(h, out, 0, 0)
  const d = decodePacket(out, 0, new PacketHeader())
  assert.deepEqual(
    [d.version, d.protocol, d.flags, d.srcNetwork, d.srcNode, d.srcPort, d.dstNetwork, d.dstNode, d.dstPort, d.seq, d.ack, d.window],
    [PROTOCOL_VERSION, Protocol.STREAM, Flag.ACK, 1, 2, 1000, 3, 4, 80, 5, 0xffff_ffff, 7],
  )
})
