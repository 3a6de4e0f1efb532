/**
 * UDP sends in sendmmsg batches (src/tunnel/send-batch.ts) through a real
 * UdpBind on loopback, and the batch's fallback path with a scripted addon.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { UdpBind } from '../../src/tunnel/bind.js'
import { SendBatch } from '../../src/tunnel/send-batch.js'
import { loadDatapathAddon, type DatapathAddon } from '../../src/native-datapath.js'
import { SeededRandom } from '../../src/random.js'

const linux = process.platform === 'linux'

function collect(b: UdpBind, n: number): Promise<Buffer[]> {
  const got: Buffer[] = []
  return new Promise((resolve) =>
    b.onDatagram((d) => {
      got.push(d)
      if (got.length === n) resolve(got)
    }),
  )
}

test('a turn of sends leaves in a few sendmmsg batches, every datagram intact and in order', { skip: !linux }, async () => {
  const a = await UdpBind.open({ host: '127.0.0.1' })
  const b = await UdpBind.open({ host: '127.0.0.1' })
  try {
    assert.notEqual(a.batch, null, 'the addon and the socket fd are there on Linux')
    const random = new SeededRandom(7)
    const sent: Buffer[] = []
    const n = 600
    const arrived = collect(b, n)
    for (let i = 0; i < n; i++) {
      const d = Buffer.alloc(1 + random.int(1400))
      random.fill(d)
      sent.push(d)
      // Half of them as gather sends of two parts.
      if (i % 2 === 0) a.send(d, '127.0.0.1', b.local.port)
      else a.send([d.subarray(0, d.length >> 1), d.subarray(d.length >> 1)], '127.0.0.1', b.local.port)
    }
    assert.equal(a.batch!.pending, n % 256, 'held until the end of the turn (a full table of 256 flushes at once)')
    const got = await arrived
    assert.deepEqual(
      got.map((d) => createHash('sha256').update(d).digest('hex')),
      sent.map((d) => createHash('sha256').update(d).digest('hex')),
    )
    assert.equal(a.batch!.stats.batched, n)
    assert.ok(a.batch!.stats.flushes <= 4, `${a.batch!.stats.flushes} flushes for ${n} datagrams`)
    assert.equal(a.stats.datagramsSent, n)
  } finally {
    await a.close()
    await b.close()
  }
})

test('runs of equal-sized datagrams (UDP GSO) arrive as the same separate datagrams, interleaved with other peers', { skip: !linux }, async () => {
  const a = await UdpBind.open({ host: '127.0.0.1' })
  const b = await UdpBind.open({ host: '127.0.0.1' })
  const c = await UdpBind.open({ host: '127.0.0.1' })
  try {
    const random = new SeededRandom(11)
    const toB: Buffer[] = []
    const toC: Buffer[] = []
    const atB = collect(b, 150)
    const atC = collect(c, 2) // i = 30 and 90
    for (let i = 0; i < 150; i++) {
      // 1448-byte runs, a shorter one closing some runs, and now and then a datagram to c.
      const d = Buffer.alloc(i % 50 === 49 ? 300 : 1448)
      random.fill(d)
      toB.push(d)
      a.send(d, '127.0.0.1', b.local.port)
      if (i % 60 === 30) {
        const e = Buffer.from(`to c ${i}`)
        toC.push(e)
        a.send(e, '127.0.0.1', c.local.port)
      }
    }
    const gotB = await atB
    assert.equal(gotB.length, 150)
    gotB.forEach((d, i) => assert.ok(d.equals(toB[i]!), `datagram ${i} to b differs (length ${d.length}, sent ${toB[i]!.length})`))
    assert.deepEqual((await atC).map(String), toC.map(String))
    assert.equal(a.batch!.stats.gso, true, 'loopback takes GSO')
    assert.equal(b.receivePath, 'recvmmsg+gro')
    assert.ok(b.receiveCalls < 20, `${b.receiveCalls} JS calls for 150 datagrams: GRO and recvmmsg batch them`)
    assert.equal(a.batch!.stats.batched, 152)
    assert.equal(a.stats.sendErrors, 0)
  } finally {
    await a.close()
    await b.close()
    await c.close()
  }
})

test('a datagram to a host name (not an IP literal) still goes out, the old way', { skip: !linux }, async () => {
  const a = await UdpBind.open({ host: '127.0.0.1' })
  const b = await UdpBind.open({ host: '127.0.0.1' })
  try {
    const arrived = collect(b, 1)
    a.send(Buffer.from('by name'), 'localhost', b.local.port)
    assert.equal(a.batch!.pending, 0)
    assert.equal((await arrived)[0]!.toString(), 'by name')
  } finally {
    await a.close()
    await b.close()
  }
})

test('the kernel refusing one datagram (IPv6 on an IPv4 socket) is counted, the others go', { skip: !linux }, async () => {
  const a = await UdpBind.open({ host: '127.0.0.1' })
  const b = await UdpBind.open({ host: '127.0.0.1' })
  try {
    const arrived = collect(b, 2)
    a.send(Buffer.from('one'), '127.0.0.1', b.local.port)
    a.send(Buffer.from('bad'), '::1', b.local.port)
    a.send(Buffer.from('two'), '127.0.0.1', b.local.port)
    assert.deepEqual((await arrived).map(String), ['one', 'two'])
    assert.equal(a.stats.sendErrors, 1)
  } finally {
    await a.close()
    await b.close()
  }
})

test('EAGAIN: what sendmmsg did not take goes to the fallback, copied, in order', () => {
  const real = loadDatapathAddon()
  let calls = 0
  // Takes 3 datagrams, then reports a full queue.
  const addon = {
    sockaddr: (host: string, port: number) => (real === null ? Buffer.alloc(16) : real.sockaddr(host, port)),
    sendBatch: (_fd: number, _arena: Uint8Array, _o: Uint32Array, _l: Uint32Array, _a: Uint8Array, _ao: Uint32Array, count: number, result?: Uint32Array) => {
      calls++
      if (result) result.fill(0)
      return calls === 1 ? Math.min(3, count) : -11
    },
  } as unknown as DatapathAddon
  const fallen: string[] = []
  let scheduled = 0
  const batch = new SendBatch({
    addon,
    fd: 99,
    fallback: (frame, host, port) => fallen.push(`${Buffer.from(frame).toString()}@${host}:${port}`),
    onRefused: () => assert.fail('nothing refused'),
    schedule: () => scheduled++,
  })
  for (let i = 0; i < 5; i++) assert.ok(batch.add(Buffer.from(`d${i}`), 2, '10.0.0.1', 4000))
  assert.equal(scheduled, 1, 'one flush scheduled per turn')
  batch.flush()
  assert.deepEqual(fallen, ['d3@10.0.0.1:4000', 'd4@10.0.0.1:4000'])
  assert.deepEqual(batch.stats, { flushes: 1, batched: 3, fallback: 2, gso: true })
  // The arena is reused: the fallback's copies do not change with it.
  batch.add(Buffer.from('zz'), 2, '10.0.0.1', 4000)
  assert.equal(fallen[0], 'd3@10.0.0.1:4000')
})

test('a full table or arena flushes before taking more', () => {
  const real = loadDatapathAddon()
  const sizes: number[] = []
  const addon = {
    sockaddr: (host: string, port: number) => (real === null ? Buffer.alloc(16) : real.sockaddr(host, port)),
    sendBatch: (_fd: number, _arena: Uint8Array, _o: Uint32Array, _l: Uint32Array, _a: Uint8Array, _ao: Uint32Array, count: number) => {
      sizes.push(count)
      return count
    },
  } as unknown as DatapathAddon
  const batch = new SendBatch({ addon, fd: 1, arenaBytes: 100, maxDatagrams: 4, fallback: () => assert.fail(), onRefused: () => {}, schedule: () => {} })
  for (let i = 0; i < 9; i++) batch.add(new Uint8Array(10), 10, '10.0.0.1', 1)
  assert.deepEqual(sizes, [4, 4])
  batch.add(new Uint8Array(60), 60, '10.0.0.1', 1) // 10 + 60 fits in 100
  batch.add(new Uint8Array(60), 60, '10.0.0.1', 1) // would pass 100: flush first
  assert.deepEqual(sizes, [4, 4, 2])
  assert.equal(batch.add(new Uint8Array(101), 101, '10.0.0.1', 1), false, 'larger than the arena: not taken')
})

test('native receive: the bind reads through the addon, and after close() the port is free at once', { skip: !linux }, async () => {
  const a = await UdpBind.open({ host: '127.0.0.1' })
  const b = await UdpBind.open({ host: '127.0.0.1' })
  assert.equal(b.receivePath, 'recvmmsg+gro')
  const port = b.local.port
  const got = collect(b, 3)
  for (const w of ['x', 'yy', 'zzz']) a.send(Buffer.from(w), '127.0.0.1', port)
  const seen = await got
  assert.deepEqual(seen.map(String), ['x', 'yy', 'zzz'])
  seen[0]!.fill(0x41) // each datagram is the handler's to change
  assert.equal(seen[1]!.toString(), 'yy')
  await b.close()
  const again = await UdpBind.open({ host: '127.0.0.1', port })
  assert.equal(again.local.port, port)
  const one = collect(again, 1)
  a.send(Buffer.from('after'), '127.0.0.1', port)
  assert.equal((await one)[0]!.toString(), 'after')
  await again.close()
  await a.close()
})

test('batchReceives: false keeps node dgram reading', { skip: !linux }, async () => {
  const b = await UdpBind.open({ host: '127.0.0.1', batchReceives: false })
  assert.equal(b.receivePath, 'dgram')
  await b.close()
})

test('native receive: datagrams of 0 to 65,507 bytes from several senders arrive whole, each with its sender', { skip: !linux }, async () => {
  const b = await UdpBind.open({ host: '127.0.0.1' })
  const senders = await Promise.all([0, 1, 2].map(() => UdpBind.open({ host: '127.0.0.1', batchSends: false })))
  try {
    const random = new SeededRandom(99)
    const sizes = [0, 1, 65507, 1400, 9000, 0, 65000, 3]
    for (let i = 0; i < 40; i++) sizes.push(random.int(66000) % 65508)
    const expected = new Map<string, string[]>()
    sizes.forEach((n, i) => {
      const s = senders[i % senders.length]!
      const d = Buffer.alloc(n)
      random.fill(d)
      const key = `127.0.0.1:${s.local.port}`
      expected.set(key, [...(expected.get(key) ?? []), createHash('sha256').update(d).digest('hex')])
      s.send(d, '127.0.0.1', b.local.port)
    })
    const got = new Map<string, string[]>()
    await new Promise<void>((resolve) => {
      // (set before any datagram can be read: the sends above only queue until this turn ends)
      let n = 0
      b.onDatagram((d, host, port) => {
        const key = `${host}:${port}`
        got.set(key, [...(got.get(key) ?? []), createHash('sha256').update(d).digest('hex')])
        if (++n === sizes.length) resolve()
      })
    })
    assert.deepEqual(got, expected)
  } finally {
    await b.close()
    for (const s of senders) await s.close()
  }
})
