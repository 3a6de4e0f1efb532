// One conformance suite for both PacketBind implementations (libp2p habit):
// the UDP bind on loopback and the in-memory twin must behave alike.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { UdpBind, type PacketBind } from '../../src/tunnel/bind.js'
import { MemoryNetwork } from '../../src/tunnel/testing/memory-bind.js'

interface Pair { a: PacketBind; b: PacketBind; close(): Promise<void> }

const makers: Record<string, () => Promise<Pair>> = {
  udp: async () => {
    const a = await UdpBind.open({ host: '127.0.0.1' })
    const b = await UdpBind.open({ host: '127.0.0.1' })
    return { a, b, close: async () => { await a.close(); await b.close() } }
  },
  memory: async () => {
    const net = new MemoryNetwork()
    const a = net.bind('10.0.0.1')
    const b = net.bind('10.0.0.2', 4000)
    return { a, b, close: async () => { await a.close(); await b.close() } }
  },
}

function nextDatagram(b: PacketBind): Promise<{ data: Buffer; host: string; port: number }> {
  return new Promise((resolve) => b.onDatagram((data, host, port) => resolve({ data, host, port })))
}

for (const [kind, make] of Object.entries(makers)) {
  test(`${kind} bind: gather send arrives as one datagram with the sender's endpoint`, async () => {
    const { a, b, close } = await make()
    try {
      const got = nextDatagram(b)
      a.send([Buffer.from('PILS'), Buffer.from([1, 2, 3])], b.local.host, b.local.port)
      const d = await got
      assert.deepEqual([...d.data], [0x50, 0x49, 0x4c, 0x53, 1, 2, 3])
      assert.equal(d.host, a.local.host)
      assert.equal(d.port, a.local.port)
      assert.equal(a.stats.datagramsSent, 1)
      assert.equal(b.stats.bytesReceived, 7)
    } finally {
      await close()
    }
  })

  test(`${kind} bind: each received datagram is a buffer of its own`, async () => {
    const { a, b, close } = await make()
    try {
      const seen: Buffer[] = []
      const two = new Promise<void>((resolve) => b.onDatagram((d) => { seen.push(d); if (seen.length === 2) resolve() }))
      a.send(Buffer.from('abcd'), b.local.host, b.local.port)
      a.send(Buffer.from('wxyz'), b.local.host, b.local.port)
      await two
      seen[0]!.fill(0)
      assert.equal(seen[1]!.toString(), 'wxyz')
    } finally {
      await close()
    }
  })

  test(`${kind} bind: send after close is ignored, close is idempotent`, async () => {
    const { a, b, close } = await make()
    await close()
    a.send(Buffer.from('x'), b.local.host, b.local.port)
    await a.close()
    assert.equal(a.stats.datagramsSent, 0)
  })
}

test('memory network filter drops chosen traffic and counts it', async () => {
  const net = new MemoryNetwork()
  const a = net.bind('10.0.0.1')
  const b = net.bind('10.0.0.2')
  net.setFilter((from) => from.host !== '10.0.0.1')
  a.send(Buffer.from('x'), b.local.host, b.local.port)
  await new Promise((r) => setImmediate(r))
  assert.equal(net.dropped, 1)
  assert.equal(b.stats.datagramsReceived, 0)
  await a.close()
  await b.close()
})

test('udp bind asks for large socket buffers', async () => {
  const a = await UdpBind.open({ host: '127.0.0.1' })
  try {
    const { receive } = a.bufferSizes()
    assert.ok(receive >= 208 * 1024, `receive buffer ${receive}`)
  } finally {
    await a.close()
  }
})
