// TunDevice: the conformance suite against the in-memory twin, plus what the
// twin and the native wrapper do without a kernel (option checks, errno
// mapping). The same suite runs against the addon in tun-netns.test.ts.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { tunConformance } from './conformance.js'
import { memoryHarness, NODE_ADDRESS, PEER_ADDRESS } from './memory-harness.js'
import { MemoryTun } from '../../src/tun/testing/memory-tun.js'
import { NativeTunDevice, packetAt, resolveTunOptions, type PacketBatch } from '../../src/tun/device.js'
import type { TunAddon } from '../../src/tun/native.js'
import { TunError } from '../../src/tun/tun-errors.js'
import { buildUdp6 } from './udp6.js'

tunConformance('memory', memoryHarness)

test('options: defaults are pilot0 and MTU 65520; bad names and MTUs are refused with PT_TUN_INVALID_OPTIONS', () => {
  const o = resolveTunOptions()
  assert.equal(o.name, 'pilot0')
  assert.equal(o.mtu, 65520)
  assert.equal(o.batch, 64)
  for (const bad of [{ name: '' }, { name: 'a'.repeat(16) }, { name: 'a b' }, { name: 'x/y' }, { mtu: 1279 }, { mtu: 70000 }, { batch: 0 }]) {
    assert.throws(() => resolveTunOptions(bad), (e: unknown) => e instanceof TunError && e.code === 'PT_TUN_INVALID_OPTIONS', JSON.stringify(bad))
  }
})

function failingAddon(code: string): TunAddon {
  return {
    open() {
      throw Object.assign(new Error(`fake ${code}`), { code })
    },
    startReader() {},
    writeBatch: () => 0,
    close() {},
  }
}

test('native open: errno codes become typed errors with hints', () => {
  const cases: [string, string, RegExp][] = [
    ['EPERM', 'PT_TUN_PERMISSION', /CAP_NET_ADMIN/],
    ['EBUSY', 'PT_TUN_IN_USE', /pilot-tun down/],
    ['EINVAL', 'PT_TUN_IN_USE', /ip link del pilot0/],
    ['ENOENT', 'PT_TUN_UNAVAILABLE', /modprobe tun/],
  ]
  for (const [errno, code, hint] of cases) {
    assert.throws(
      () => NativeTunDevice.open({}, failingAddon(errno)),
      (e: unknown) => e instanceof TunError && e.code === code && hint.test(e.hint ?? ''),
      errno,
    )
  }
})

test('native wrapper: a reader failure reaches onError as PT_TUN_READER_FAILED; the batch layout is read from the block', () => {
  let cb: ((b: ArrayBuffer | null, n: number, e: number) => void) | null = null
  const addon: TunAddon = {
    open: (name) => ({ handle: {} as never, fd: 99, name }),
    startReader: (_h, callback) => {
      cb = callback
    },
    writeBatch: (_h, _b, _o, _l, count) => count,
    close() {},
  }
  const dev = NativeTunDevice.open({ name: 'fake0', mtu: 1500 }, addon)
  const seen: string[] = []
  const errors: string[] = []
  dev.onPackets((b) => {
    for (let i = 0; i < b.count; i++) seen.push(packetAt(b, i).toString())
  })
  dev.onError((e) => errors.push(e.code))
  // The addon's layout: offsets[2], lengths[2], then data.
  const block = new ArrayBuffer(16 + 8)
  new Uint32Array(block, 0, 4).set([16, 20, 3, 4])
  Buffer.from(block).write('abc\0wxyz', 16)
  cb!(block, 2, 0)
  cb!(null, 0, 77)
  assert.deepEqual(seen, ['abc', 'wxyz'])
  assert.deepEqual(errors, ['PT_TUN_READER_FAILED'])
  assert.equal(dev.stats.bytesRead, 7)
  dev.close()
  cb!(block, 2, 0) // a batch racing close is ignored
  assert.deepEqual(seen, ['abc', 'wxyz'])
})

test('memory tun: packets injected before a reader wait (up to the queue limit), then arrive', async () => {
  const tun = new MemoryTun({ batch: 4 }, 10)
  for (let i = 0; i < 12; i++) tun.inject(buildUdp6(NODE_ADDRESS, PEER_ADDRESS, 1000 + i, 9, Buffer.from([i])))
  assert.equal(tun.injectDrops, 2)
  const batches: PacketBatch[] = []
  await new Promise<void>((resolve) => {
    let n = 0
    tun.onPackets((b) => {
      batches.push(b)
      n += b.count
      if (n === 10) resolve()
    })
  })
  assert.deepEqual(batches.map((b) => b.count), [4, 4, 2])
  tun.close()
  assert.equal(tun.inject(Buffer.from([0x60])), false)
})

test('memory tun: fail() reports a reader failure', () => {
  const tun = new MemoryTun()
  const errors: string[] = []
  tun.onError((e) => errors.push(e.code))
  tun.fail()
  assert.deepEqual(errors, ['PT_TUN_READER_FAILED'])
  tun.close()
})
