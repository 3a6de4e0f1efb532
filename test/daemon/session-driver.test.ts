// SessionDriver + PilotStream over an in-process link (no tunnel): byte-exact
// transfers with back-pressure, admission refusal, reset, datagrams and pings.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import type { StreamConnection } from '../../src/session/index.js'
import type { SessionDriver } from '../../src/daemon/session-driver.js'
import { PilotStream } from '../../src/daemon/pilot-stream.js'
import { readStream, writeAll, pattern, waitFor } from './helpers.js'
import { TrustAdmission } from '../../src/daemon/admission.js'
import { PacketHeader, Protocol, encodePacket } from '../../src/protocol/header.js'
import { driverPair as pair } from './driver-pair.js'

function acceptInto(driver: SessionDriver, port: number, out: PilotStream[]): void {
  driver.listen(port, (conn: StreamConnection) => {
    out.push(new PilotStream(driver, conn))
  })
}

test('4 MB both ways byte-exact through two drivers, then a clean close', async () => {
  const { a, b, close } = pair()
  const accepted: PilotStream[] = []
  acceptInto(b, 80, accepted)
  const client = new PilotStream(a, a.connect({ network: 0, node: 2 }, 80))
  await new Promise<void>((r) => client.once('connect', () => r()))
  while (accepted.length === 0) await new Promise((r) => setImmediate(r))
  const server = accepted[0]!
  const size = 4 * 1024 * 1024
  const ab = pattern(size, 11)
  const ba = pattern(size, 23)
  const [gotB, gotA] = await Promise.all([readStream(server), readStream(client), writeAll(client, ab), writeAll(server, ba)])
  assert.equal(createHash('sha256').update(gotB).digest('hex'), createHash('sha256').update(ab).digest('hex'))
  assert.equal(createHash('sha256').update(gotA).digest('hex'), createHash('sha256').update(ba).digest('hex'))
  // Both sides closed cleanly: the connections go to TIME_WAIT/CLOSED without RST.
  await new Promise((r) => setTimeout(r, 50))
  assert.equal(client.errored, null)
  assert.equal(server.errored, null)
  close()
})

test('a refused SYN (admit says no) fails the dial with PT_SESSION_REFUSED and is counted', async () => {
  const { a, b, close } = pair(() => false)
  b.listen(80, () => assert.fail('must not accept'))
  const client = new PilotStream(a, a.connect({ network: 0, node: 2 }, 80))
  const err = await new Promise<Error>((r) => client.once('error', r))
  assert.equal((err as { code?: string }).code, 'PT_SESSION_REFUSED')
  assert.equal(b.stats().synRefused, 1)
  close()
})

test('destroy() resets the peer (PT_SESSION_RESET), datagrams and pings flow', async () => {
  // Pings ask the policy too (private by default): this one lets them through.
  const { a, b, close } = pair((_node, port, proto) => proto === 'stream' || proto === 'ping' || port === 5)
  const accepted: PilotStream[] = []
  acceptInto(b, 80, accepted)
  const client = new PilotStream(a, a.connect({ network: 0, node: 2 }, 80))
  await new Promise<void>((r) => client.once('connect', () => r()))
  while (accepted.length === 0) await new Promise((r) => setImmediate(r))
  const server = accepted[0]!
  const serverErr = new Promise<Error>((r) => server.once('error', r))
  server.resume()
  client.destroy()
  assert.equal(((await serverErr) as { code?: string }).code, 'PT_SESSION_RESET')

  const got: string[] = []
  b.onDatagram((ev) => got.push(`${ev.localPort}:${Buffer.from(ev.data).toString()}`))
  a.sendDatagram({ network: 0, node: 2 }, 5, Buffer.from('ok'))
  a.sendDatagram({ network: 0, node: 2 }, 6, Buffer.from('refused'))
  const pong = new Promise<number>((r) => a.onPong((ev) => r(ev.rtt)))
  a.sendPing({ network: 0, node: 2 }, Buffer.from('x'))
  assert.ok((await pong) >= 0)
  await new Promise((r) => setTimeout(r, 20))
  assert.deepEqual(got, ['5:ok'])
  assert.equal(b.stats().datagramsRefused, 1)
  close()
})

test('control pings: an untrusted node gets no pong, a trusted one does (private by default)', async () => {
  const trusted = new Set<number>()
  const admission = new TrustAdmission({ isTrusted: (node) => trusted.has(node) })
  const { a, b, close } = pair(admission.admit)
  let pongs = 0
  a.onPong(() => pongs++)
  a.sendPing({ network: 0, node: 2 }, Buffer.from('who'))
  await new Promise((r) => setTimeout(r, 100))
  assert.equal(pongs, 0, 'node 1 is not trusted by node 2: no answer')
  assert.equal(b.stats().pingsRefused, 1)
  trusted.add(1)
  a.sendPing({ network: 0, node: 2 }, Buffer.from('friend'))
  await waitFor(() => pongs === 1, 'the trusted ping answered')
  close()
})

test('control pings with answerPings (`up --answer-pings`): every node gets its pong', async () => {
  const admission = new TrustAdmission({ isTrusted: () => false }, { answerPings: true })
  const { a, b, close } = pair(admission.admit)
  const pong = new Promise<number>((r) => a.onPong((ev) => r(ev.id)))
  const id = a.sendPing({ network: 0, node: 2 }, Buffer.from('stranger'))
  assert.equal(await pong, id)
  assert.equal(b.stats().pingsRefused, 0)
  // Only pings: the stranger's datagrams and streams are still refused.
  assert.equal(admission.admit(1, 5, 'datagram', 0), false)
  assert.equal(admission.admit(1, 80, 'stream', 0), false)
  close()
})

test('a packet whose source and destination networks differ is dropped before the session layer', async () => {
  const { b, close } = pair()
  const got: number[] = []
  b.onDatagram((ev) => got.push(ev.remote.network))
  const h = PacketHeader.from({ protocol: Protocol.DATAGRAM, srcNetwork: 5, srcNode: 1, dstNetwork: 0, dstNode: 2, srcPort: 1000, dstPort: 53 })
  b.receive(encodePacket(h, Buffer.from('spoofed network')))
  h.srcNetwork = 0
  b.receive(encodePacket(h, Buffer.from('fine')))
  await new Promise((r) => setTimeout(r, 20))
  assert.deepEqual(got, [0])
  assert.equal(b.stats().droppedForeignNetwork, 1)
  close()
})

test('a lone packet leaves at the end of its callback: sendPing, the pong and the pong event need no event-loop turn; one such flush per turn', async () => {
  const { SessionEndpoint } = await import('../../src/session/index.js')
  const { SeededRandom } = await import('../../src/random.js')
  const { SessionDriver } = await import('../../src/daemon/session-driver.js')
  // Synchronous sinks: a packet reaches the other driver in the same callback it was sent in.
  const out: { from: number; packet: Buffer }[] = []
  const mk = (node: number) =>
    new SessionDriver({
      endpoint: new SessionEndpoint({ local: { network: 0, node }, random: new SeededRandom(node) }),
      sink: { send: (_to, packet) => out.push({ from: node, packet: Buffer.from(packet) }) },
      admit: () => true,
    })
  const a = mk(1)
  const b = mk(2)
  try {
    const pongs: number[] = []
    a.onPong((ev) => pongs.push(ev.id))
    const id = a.sendPing({ network: 0, node: 2 }, Buffer.from('x'))
    assert.equal(out.length, 0, 'not inside the call')
    await Promise.resolve()
    assert.equal(out.length, 1, 'the ping left at the end of the callback, before any immediate')
    const nextTurn = () => new Promise((r) => setImmediate(r))
    await nextTurn()
    b.receive(out[0]!.packet)
    await Promise.resolve()
    assert.equal(out.length, 2, 'the pong too')
    assert.equal(out[1]!.from, 2)
    await nextTurn()
    a.receive(out[1]!.packet)
    await Promise.resolve()
    assert.deepEqual(pongs, [id], 'and its event reached the handler')
    // A second lone packet in the same turn joins the immediate flush instead.
    a.sendPing({ network: 0, node: 2 })
    await Promise.resolve()
    assert.equal(out.length, 2, 'waits for the immediate')
    await new Promise((r) => setImmediate(r))
    assert.equal(out.length, 3)
    // A datagram command is a lone packet too (in a new turn).
    await nextTurn()
    a.sendDatagram({ network: 0, node: 2 }, 9, Buffer.from('d'))
    await Promise.resolve()
    assert.equal(out.length, 4, 'the datagram left at the end of its callback')
  } finally {
    a.close()
    b.close()
  }
})
