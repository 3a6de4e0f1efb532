/**
 * Every frame of a real Go capture (encryption off) through our codecs:
 * test/fixtures/captures/lo-session2-plaintext.pcap, with its .decoded.txt and
 * registry-messages-session2.json as independent references.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { PacketHeader, decodePacket, encodePacket, packetPayload, Flag } from '../../src/protocol/header.js'
import { formatSocketAddress } from '../../src/protocol/address.js'
import { classifyDatagram, datagramKindName, DatagramKind, decodePilt, encodePilt, decodePilp, encodePilp } from '../../src/protocol/tunnel-frames.js'
import { BeaconType, decodeBeaconMessage, encodeBeaconMessage, type BeaconMessage } from '../../src/protocol/beacon-messages.js'
import { RegistryFrameDecoder, encodeRegistryMessage, type JsonObject } from '../../src/protocol/registry-framing.js'
import { captureFixture } from '../util/fixtures.js'
import { readPcap, decodeRecord, reassembleTcp, type TcpSegment, type UdpDatagram } from '../util/pcap.js'

const capture = captureFixture

const REGISTRY_PORT = 9100

interface RegistryFrame {
  timeMicros: number
  src: string
  dst: string
  toRegistry: boolean
  lengthPrefix: number
  raw: Uint8Array
  json: JsonObject
}

/** One entry per UDP datagram or registry message, in capture order: what decoded.txt lists. */
type CaptureEvent = { kind: 'udp'; timeMicros: number; d: UdpDatagram } | { kind: 'registry'; timeMicros: number; m: RegistryFrame }

function loadCapture(): { udp: UdpDatagram[]; registry: RegistryFrame[]; events: CaptureEvent[] } {
  const pcap = readPcap(readFileSync(capture('lo-session2-plaintext.pcap')))
  const udp: UdpDatagram[] = []
  const tcp: TcpSegment[] = []
  for (const rec of pcap.records) {
    assert.equal(rec.data.length, rec.originalLength, 'no truncated records')
    const d = decodeRecord(rec, pcap.linkType)
    if (d?.kind === 'udp') udp.push(d)
    else if (d?.kind === 'tcp') tcp.push(d)
  }
  const registry: RegistryFrame[] = []
  for (const stream of reassembleTcp(tcp).values()) {
    // Feed the stream in the segments it arrived in (Go writes prefix and body separately).
    const decoder = new RegistryFrameDecoder()
    let pushed = 0
    let consumed = 0
    for (const seg of stream.segments) {
      decoder.push(stream.bytes.subarray(seg.offset, seg.offset + seg.length))
      pushed += seg.length
      for (let json = decoder.next(); json !== null; json = decoder.next()) {
        const end = pushed - decoder.bufferedBytes
        const raw = stream.bytes.subarray(consumed, end)
        registry.push({
          timeMicros: seg.timeMicros, // the segment that completed the message, as the JSON log records it
          src: stream.src,
          dst: stream.dst,
          toRegistry: stream.dst.endsWith(`:${REGISTRY_PORT}`),
          lengthPrefix: Buffer.from(raw).readUInt32BE(0),
          raw,
          json,
        })
        consumed = end
      }
    }
    assert.equal(decoder.bufferedBytes, 0, `${stream.key} ends on a message boundary`)
  }
  const events: CaptureEvent[] = [
    ...udp.map((d): CaptureEvent => ({ kind: 'udp', timeMicros: d.timeMicros, d })),
    ...registry.map((m): CaptureEvent => ({ kind: 'registry', timeMicros: m.timeMicros, m })),
  ].sort((a, b) => a.timeMicros - b.timeMicros)
  return { udp, registry, events }
}

const { udp, registry, events } = loadCapture()

function utcTime(micros: number): string {
  const d = new Date(Math.floor(micros / 1000))
  return `${d.toISOString().slice(11, 19)}.${String(micros % 1_000_000).padStart(6, '0')}`
}

function flagNames(flags: number): string {
  const names: string[] = []
  if (flags & Flag.SYN) names.push('SYN')
  if (flags & Flag.ACK) names.push('ACK')
  if (flags & Flag.FIN) names.push('FIN')
  if (flags & Flag.RST) names.push('RST')
  return names.join('|')
}

const BEACON_NAMES: Record<number, string> = {
  [BeaconType.DISCOVER]: 'DISCOVER',
  [BeaconType.DISCOVER_REPLY]: 'DISCOVER_REPLY',
  [BeaconType.PUNCH_REQUEST]: 'PUNCH_REQUEST',
  [BeaconType.PUNCH_COMMAND]: 'PUNCH_COMMAND',
  [BeaconType.RELAY]: 'RELAY',
  [BeaconType.RELAY_DELIVER]: 'RELAY_DELIVER',
  [BeaconType.SYNC]: 'SYNC',
}

/** The label decoded.txt uses for an event: `PILT`, `PILP`, `BEACON DISCOVER`, `REGISTRY`. */
function labelOf(e: CaptureEvent): string {
  if (e.kind === 'registry') return 'REGISTRY'
  const kind = classifyDatagram(e.d.payload)
  return kind === DatagramKind.BEACON ? `BEACON ${BEACON_NAMES[e.d.payload[0]!]}` : datagramKindName(kind)
}

test('every UDP datagram classifies, and only as PILT, PILP or beacon', () => {
  const counts = new Map<string, number>()
  for (const d of udp) {
    const name = datagramKindName(classifyDatagram(d.payload))
    counts.set(name, (counts.get(name) ?? 0) + 1)
  }
  assert.deepEqual(Object.fromEntries(counts), { beacon: 15, PILT: 5265, PILP: 6 })
})

test('every PILT packet has a valid CRC and re-encodes byte for byte', () => {
  const h = new PacketHeader()
  let count = 0
  for (const d of udp) {
    if (classifyDatagram(d.payload) !== DatagramKind.PILT) continue
    const off = decodePilt(d.payload)
    decodePacket(d.payload, off, h) // throws on a bad CRC
    assert.equal(d.payload.length, off + 34 + h.payloadLength, 'no trailing bytes')
    const again = encodePilt(encodePacket(h, packetPayload(d.payload, off, h)))
    assert.ok(Buffer.from(d.payload).equals(again), `PILT #${count} re-encodes identically`)
    count++
  }
  // decoded.txt: 7 PILT lines + "5258 more frames" of the FIN|ACK bounce.
  assert.equal(count, 5265)
})

test('every PILP decodes as the 4-byte form and re-encodes', () => {
  let count = 0
  for (const d of udp) {
    if (classifyDatagram(d.payload) !== DatagramKind.PILP) continue
    const p = decodePilp(d.payload)
    assert.equal(p.senderId, null, 'Go sends PILP without a sender ID')
    assert.ok(encodePilp(p.senderId).equals(d.payload))
    count++
  }
  assert.equal(count, 6) // 3 per side after the two PunchCommands
})

test('every beacon message decodes and re-encodes byte for byte', () => {
  const byType = new Map<number, BeaconMessage[]>()
  for (const d of udp) {
    if (classifyDatagram(d.payload) !== DatagramKind.BEACON) continue
    const m = decodeBeaconMessage(d.payload)
    assert.ok(encodeBeaconMessage(m).equals(d.payload), `${BEACON_NAMES[m.type]} re-encodes identically`)
    const list = byType.get(m.type) ?? []
    list.push(m)
    byType.set(m.type, list)
    // The beacon replies with what it saw: the daemon's own UDP endpoint.
    if (m.type === BeaconType.DISCOVER_REPLY) assert.equal(`${m.endpoint.host}:${m.endpoint.port}`, `${d.dst}:${d.dstPort}`)
  }
  assert.deepEqual([...byType.keys()].sort(), [1, 2, 3, 4])
  assert.deepEqual(byType.get(BeaconType.DISCOVER)!.map((m) => (m as { nodeId: number }).nodeId), [0, 0, 1, 2, 1, 2])
  assert.equal(byType.get(BeaconType.DISCOVER_REPLY)!.length, 6)
  assert.deepEqual(byType.get(BeaconType.PUNCH_REQUEST), [{ type: BeaconType.PUNCH_REQUEST, requesterId: 2, targetId: 1 }])
  assert.deepEqual(
    byType.get(BeaconType.PUNCH_COMMAND)!.map((m) => (m as { endpoint: unknown }).endpoint),
    [{ host: '127.0.0.1', port: 4102 }, { host: '127.0.0.1', port: 4101 }],
  )
})

test('registry messages match registry-messages-session2.json in order and content', () => {
  const expected = JSON.parse(readFileSync(capture('registry-messages-session2.json'), 'utf8')) as Array<{
    time: string
    dir: string
    src: string
    dst: string
    len_prefix: number
    json: JsonObject
  }>
  const got = [...registry].sort((a, b) => a.timeMicros - b.timeMicros)
  assert.equal(got.length, expected.length)
  assert.equal(got.length, 34)
  for (let i = 0; i < got.length; i++) {
    const g = got[i]!
    const e = expected[i]!
    const where = `message ${i} (${e.time})`
    assert.equal(utcTime(g.timeMicros), e.time, where)
    assert.equal(g.toRegistry ? 'client->registry' : 'registry->client', e.dir, where)
    assert.equal(g.src, e.src, where)
    assert.equal(g.dst, e.dst, where)
    assert.equal(g.lengthPrefix, e.len_prefix, where)
    assert.deepEqual(g.json, e.json, where)
    assert.equal(JSON.stringify(g.json), JSON.stringify(e.json), `${where}: same key order`)
    // Go's map encoding sorts keys and escapes nothing here, so our encoder reproduces the bytes.
    assert.ok(encodeRegistryMessage(g.json).equals(g.raw), `${where} re-encodes identically`)
  }
})

test('decoded.txt lists the same frames, in the same order, with the same kinds', () => {
  const lines = readFileSync(capture('lo-session2-plaintext.decoded.txt'), 'utf8').split('\n').filter((l) => l.trim() !== '')
  const perKind = new Map<string, number>()
  let i = 0 // index into events
  let lastLabel = ''
  let checkedPilt = 0
  const h = new PacketHeader()
  for (const line of lines) {
    const more = /^\s+\.\.\. \((\d+) more frames repeating/.exec(line)
    if (more !== null) {
      // The repeated frames have the kind of the line just before.
      const n = Number(more[1])
      for (let k = 0; k < n; k++) assert.equal(labelOf(events[i + k]!), lastLabel, `repeated frame ${i + k}`)
      perKind.set(lastLabel, perKind.get(lastLabel)! + n)
      i += n
      continue
    }
    const m = /^(\S+) (UDP|TCP) (\S+) -> (\S+)  (BEACON \w+|PILT|PILP|REGISTRY)\b(.*)$/.exec(line)
    assert.ok(m !== null, `unexpected line: ${line}`)
    const [, time, proto, src, dst, label, rest] = m
    const e = events[i]!
    assert.equal(utcTime(e.timeMicros), time, `line time at event ${i}`)
    assert.equal(labelOf(e), label, `line kind at ${time}`)
    assert.equal(proto, e.kind === 'udp' ? 'UDP' : 'TCP')
    const [s, d] = e.kind === 'udp' ? [`${e.d.src}:${e.d.srcPort}`, `${e.d.dst}:${e.d.dstPort}`] : [e.m.src, e.m.dst]
    assert.deepEqual([s, d], [src, dst], `endpoints at ${time}`)
    if (label === 'PILT' && e.kind === 'udp') {
      // e.g. "[38B] v1 SYN STREAM 0:0000.0000.0002:49152->0:0000.0000.0001:7 seq=0 ack=0 win=512 len=0"
      decodePacket(e.d.payload, decodePilt(e.d.payload), h)
      const summary =
        `[${e.d.payload.length}B] v${h.version} ${flagNames(h.flags)} STREAM ` +
        `${formatSocketAddress({ address: h.src, port: h.srcPort })}->${formatSocketAddress({ address: h.dst, port: h.dstPort })} ` +
        `seq=${h.seq} ack=${h.ack} win=${h.window} len=${h.payloadLength}`
      assert.ok(rest!.includes(summary), `PILT at ${time}: expected "${summary}" in "${rest}"`)
      checkedPilt++
    }
    if (label === 'REGISTRY' && e.kind === 'registry') assert.ok(rest!.includes(`[len=${e.m.lengthPrefix}]`))
    perKind.set(label!, (perKind.get(label!) ?? 0) + 1)
    lastLabel = label!
    i++
  }
  assert.equal(i, events.length, 'decoded.txt accounts for every frame')
  assert.equal(checkedPilt, 7)
  assert.deepEqual(Object.fromEntries(perKind), {
    'BEACON DISCOVER': 6,
    'BEACON DISCOVER_REPLY': 6,
    REGISTRY: 34,
    'BEACON PUNCH_REQUEST': 1,
    PILT: 5265,
    'BEACON PUNCH_COMMAND': 2,
    PILP: 6,
  })
})
