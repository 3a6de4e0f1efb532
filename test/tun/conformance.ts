// One TunDevice conformance suite (libp2p habit), run against the in-memory
// twin (device.test.ts) and against the real addon inside a network namespace
// (netns-child.ts). The harness plays the kernel's side: an application
// socket on the node's address that sends into the TUN and listens for what
// the daemon writes.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { packetAt, type PacketBatch, type TunDevice, type TunDeviceOptions } from '../../src/tun/device.js'
import { buildUdp6, parseUdp6, writeUdp6, type Udp6 } from './udp6.js'

export interface KernelListener {
  readonly port: number
  next(timeoutMs?: number): Promise<{ payload: Buffer; fromPort: number }>
  close(): Promise<void>
}

export interface TunHarness {
  readonly device: TunDevice
  /** The node's address A, assigned to the TUN. */
  readonly nodeAddress: string
  /** An overlay address routed into the TUN (not assigned). */
  readonly peerAddress: string
  /** An application sends UDP from A to peerAddress:port; resolves with its source port. */
  sendFromKernel(payload: Buffer, dstPort: number): Promise<number>
  /** An application socket bound on A. */
  listen(): Promise<KernelListener>
  close(): Promise<void>
}

export type HarnessMaker = (options: TunDeviceOptions) => Promise<TunHarness>

/** Collects UDP packets to `port` read from the device until `n` arrived. */
export function collectUdp(
  device: TunDevice,
  dstPort: number,
  n: number,
  timeoutMs = 3000,
): Promise<{ packets: Udp6[]; batches: PacketBatch[] }> {
  return new Promise((resolve, reject) => {
    const packets: Udp6[] = []
    const batches: PacketBatch[] = []
    const timer = setTimeout(() => reject(new Error(`only ${packets.length}/${n} packets to port ${dstPort} in ${timeoutMs} ms`)), timeoutMs)
    device.onPackets((batch) => {
      batches.push(batch)
      for (let i = 0; i < batch.count; i++) {
        const u = parseUdp6(packetAt(batch, i))
        if (u !== null && u.dstPort === dstPort) packets.push(u)
      }
      if (packets.length >= n) {
        clearTimeout(timer)
        resolve({ packets, batches })
      }
    })
  })
}

function checkLayout(batch: PacketBatch, headroom: number, tailroom: number): void {
  assert.ok(batch.count >= 1)
  let end = 0
  for (let i = 0; i < batch.count; i++) {
    const o = batch.offsets[i]!
    assert.ok(o - headroom >= end, `packet ${i} has ${headroom} bytes of headroom`)
    end = o + batch.lengths[i]! + tailroom
    assert.ok(end <= batch.buffer.length, `packet ${i} has ${tailroom} bytes of tailroom`)
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

export function tunConformance(kind: string, make: HarnessMaker): void {
  const roomy = { headroom: 48, tailroom: 16 }

  test(`${kind} tun: a datagram an application sends to a peer is read as one IPv6/UDP packet`, async () => {
    const h = await make(roomy)
    try {
      const got = collectUdp(h.device, 4001, 1)
      const srcPort = await h.sendFromKernel(Buffer.from('hello pilot'), 4001)
      const { packets, batches } = await got
      const p = packets[0]!
      assert.equal(p.dst, h.peerAddress)
      assert.equal(p.src, h.nodeAddress)
      assert.equal(p.srcPort, srcPort)
      assert.equal(p.payload.toString(), 'hello pilot')
      assert.ok(p.checksumOk)
      for (const b of batches) checkLayout(b, 48, 16)
      assert.ok(h.device.stats.packetsRead >= 1)
    } finally {
      await h.close()
    }
  })

  test(`${kind} tun: a hand-built IPv6/UDP packet written by the daemon reaches the application`, async () => {
    const h = await make({})
    const l = await h.listen()
    try {
      const pkt = buildUdp6(h.peerAddress, h.nodeAddress, 7000, l.port, Buffer.from('from the overlay'))
      assert.equal(h.device.writePackets([pkt]), 1)
      const got = await l.next()
      assert.equal(got.payload.toString(), 'from the overlay')
      assert.equal(got.fromPort, 7000)
      assert.equal(h.device.stats.packetsWritten, 1)
      assert.equal(h.device.stats.bytesWritten, pkt.length)
    } finally {
      await l.close()
      await h.close()
    }
  })

  test(`${kind} tun: writePackets takes packets from several buffers and views in one call`, async () => {
    const h = await make({})
    const l = await h.listen()
    try {
      const big = Buffer.alloc(4096)
      const n1 = writeUdp6(big, 100, h.peerAddress, h.nodeAddress, 7001, l.port, Buffer.from('one'))
      const n2 = writeUdp6(big, 1000, h.peerAddress, h.nodeAddress, 7002, l.port, Buffer.from('two'))
      const own = new Uint8Array(buildUdp6(h.peerAddress, h.nodeAddress, 7003, l.port, Buffer.from('three')))
      const w = h.device.writePackets([big.subarray(100, 100 + n1), own, big.subarray(1000, 1000 + n2)])
      assert.equal(w, 3)
      const seen = new Set<string>()
      for (let i = 0; i < 3; i++) seen.add((await l.next()).payload.toString())
      assert.deepEqual([...seen].sort(), ['one', 'three', 'two'])
    } finally {
      await l.close()
      await h.close()
    }
  })

  test(`${kind} tun: writeBatch sends packets laid out with headroom in one buffer`, async () => {
    const h = await make({})
    const l = await h.listen()
    try {
      const buf = Buffer.alloc(2048)
      const offsets = new Uint32Array(2)
      const lengths = new Uint32Array(2)
      offsets[0] = 34
      lengths[0] = writeUdp6(buf, 34, h.peerAddress, h.nodeAddress, 7004, l.port, Buffer.from('a'))
      offsets[1] = 600
      lengths[1] = writeUdp6(buf, 600, h.peerAddress, h.nodeAddress, 7005, l.port, Buffer.from('b'))
      assert.equal(h.device.writeBatch(buf, offsets, lengths, 2), 2)
      const got = [(await l.next()).payload.toString(), (await l.next()).payload.toString()].sort()
      assert.deepEqual(got, ['a', 'b'])
      assert.throws(() => h.device.writeBatch(buf, offsets, new Uint32Array([5000, 1]), 1), RangeError)
    } finally {
      await l.close()
      await h.close()
    }
  })

  test(`${kind} tun: a packet the kernel refuses is counted, not thrown, and the rest go through`, async () => {
    const h = await make({})
    const l = await h.listen()
    try {
      const good = buildUdp6(h.peerAddress, h.nodeAddress, 7006, l.port, Buffer.from('ok'))
      const w = h.device.writePackets([Buffer.from([0x00, 1, 2, 3]), good, new Uint8Array(0)])
      assert.equal(w, 1)
      assert.equal(h.device.stats.writeDrops, 2)
      assert.equal((await l.next()).payload.toString(), 'ok')
    } finally {
      await l.close()
      await h.close()
    }
  })

  test(`${kind} tun: many datagrams arrive, in batches no larger than the batch size`, async () => {
    const h = await make({ batch: 8 })
    try {
      const got = collectUdp(h.device, 4002, 200)
      for (let i = 0; i < 200; i++) await h.sendFromKernel(Buffer.from(`m${i}`), 4002)
      const { packets, batches } = await got
      assert.equal(packets.length, 200)
      assert.deepEqual(new Set(packets.map((p) => p.payload.toString())).size, 200)
      for (const b of batches) assert.ok(b.count <= 8, `batch of ${b.count}`)
      assert.equal(h.device.stats.batchesRead, batches.length)
    } finally {
      await h.close()
    }
  })

  test(`${kind} tun: a throwing handler is counted and reported, and reading goes on`, async () => {
    const h = await make({})
    try {
      const errors: string[] = []
      h.device.onError((e) => errors.push(e.code))
      let threw = false
      const after = new Promise<void>((resolve) => {
        h.device.onPackets((batch) => {
          for (let i = 0; i < batch.count; i++) {
            const u = parseUdp6(packetAt(batch, i))
            if (u?.dstPort !== 4003) continue
            if (!threw) {
              threw = true
              throw new Error('handler bug')
            }
            resolve()
          }
        })
      })
      await h.sendFromKernel(Buffer.from('first'), 4003)
      while (!threw) await sleep(5)
      await h.sendFromKernel(Buffer.from('second'), 4003)
      await after
      assert.equal(h.device.stats.handlerErrors, 1)
      assert.deepEqual(errors, ['PT_TUN_HANDLER_FAILED'])
    } finally {
      await h.close()
    }
  })

  test(`${kind} tun: close is idempotent, nothing is read after it, writes after it are dropped`, async () => {
    const h = await make({})
    let after = 0
    h.device.onPackets(() => {
      if (h.device.closed) after++
    })
    const pkt = buildUdp6(h.peerAddress, h.nodeAddress, 7007, 9, Buffer.from('x'))
    h.device.close()
    h.device.close()
    assert.equal(h.device.closed, true)
    assert.equal(h.device.writePackets([pkt]), 0)
    assert.equal(h.device.stats.writeDrops, 1)
    await sleep(20)
    assert.equal(after, 0)
    await h.close()
  })
}
