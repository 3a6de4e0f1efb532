/**
 * Connection exhaustion and slowloris (hardening): a per-source connection cap, a
 * deadline per frame, and a budget for partly received frames across all connections.
 */
import { after, test } from 'node:test'
import assert from 'node:assert/strict'
import { encodeRegistryMessage } from '../../src/protocol/registry-framing.js'
import type { RegistryLimits } from '../../src/registry/limits.js'
import { RawConnection, startTestRegistry, type TestRegistry, leakedHandles } from './helpers.js'

/** Runs `body` with a fresh registry and `open()` for raw connections to it; closes everything afterwards. */
async function withRegistry(
  limits: Partial<RegistryLimits>,
  body: (r: TestRegistry, open: () => Promise<RawConnection>) => Promise<void>,
): Promise<void> {
  const registry = await startTestRegistry({ limits })
  const opened: RawConnection[] = []
  const open = async (): Promise<RawConnection> => {
    const c = await RawConnection.open(registry.port)
    opened.push(c)
    return c
  }
  try {
    await body(registry, open)
  } finally {
    for (const c of opened) c.destroy()
    await registry.close()
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

/** Polls `condition` every 10 ms; false if it never held within `timeoutMs`. */
async function eventually(condition: () => boolean, timeoutMs = 2_000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs
  while (!condition()) {
    if (Date.now() > deadline) return false
    await sleep(10)
  }
  return true
}

function lengthPrefix(n: number): Buffer {
  const b = Buffer.alloc(4)
  b.writeUInt32BE(n)
  return b
}

const LIST_NETWORKS = encodeRegistryMessage({ type: 'list_networks' })

test('per-source cap: connections beyond maxConnectionsPerIp are closed at once, the others are still served', async () => {
  await withRegistry({ maxConnectionsPerIp: 4 }, async (registry, open) => {
    const inside: RawConnection[] = []
    for (let i = 0; i < 4; i++) {
      const c = await open()
      assert.equal((await c.ask({ type: 'list_networks' })).type, 'list_networks_ok')
      inside.push(c)
    }
    for (let i = 0; i < 3; i++) {
      const extra = await open()
      extra.send({ type: 'list_networks' })
      await extra.waitClosed(1_000)
    }
    let stats = registry.server.stats()
    assert.equal(stats.connectionsRefusedPerIp, 3)
    assert.equal(stats.connections, 4)
    for (const c of inside) assert.equal((await c.ask({ type: 'list_networks' })).type, 'list_networks_ok')

    // A closed connection frees its slot.
    inside[0]!.destroy()
    assert.ok(await eventually(() => registry.server.stats().connections === 3))
    const again = await open()
    assert.equal((await again.ask({ type: 'list_networks' })).type, 'list_networks_ok')
    stats = registry.server.stats()
    assert.equal(stats.connectionsRefusedPerIp, 3)
    assert.equal(stats.connections, 4)
  })
})

test('slowloris: a frame trickled one byte per 100 ms is cut off at the frame deadline (the idle limit alone never fires)', async () => {
  await withRegistry({ frameDeadlineMs: 400 }, async (registry, open) => {
    const slow = await open()
    let sent = 0
    const started = Date.now()
    const trickle = setInterval(() => {
      if (slow.closed || sent >= LIST_NETWORKS.length) return
      slow.sendRaw(LIST_NETWORKS.subarray(sent, sent + 1))
      sent++
    }, 100)
    try {
      await slow.waitClosed(2_000)
    } finally {
      clearInterval(trickle)
    }
    const elapsed = Date.now() - started
    assert.ok(sent < LIST_NETWORKS.length, `the whole ${LIST_NETWORKS.length}-byte frame went through`)
    assert.ok(elapsed >= 400, `closed after ${elapsed} ms, before the deadline`)
    assert.equal(registry.server.stats().connectionsClosedSlowFrame, 1)

    // A frame split in two writes (as Go clients send prefix and body) inside the deadline is answered,
    // and a connection with no partial frame is not subject to the deadline.
    const split = await open()
    split.sendRaw(LIST_NETWORKS.subarray(0, 4))
    await sleep(150)
    split.sendRaw(LIST_NETWORKS.subarray(4))
    assert.equal((await split.next()).type, 'list_networks_ok')
    await sleep(600)
    assert.equal((await split.ask({ type: 'list_networks' })).type, 'list_networks_ok')
    assert.equal(registry.server.stats().connectionsClosedSlowFrame, 1)
  })
})

test('buffer budget: connections holding large partial frames are closed past maxBufferedFrameBytes; a normal client is answered', async () => {
  const budget = 256 * 1024
  await withRegistry({ maxBufferedFrameBytes: budget }, async (registry, open) => {
    // A Go-style request whose prefix arrives before the flood and its body after it.
    const normal = await open()
    normal.sendRaw(LIST_NETWORKS.subarray(0, 4))

    const partial = Buffer.concat([lengthPrefix(200_000), Buffer.alloc(60_000, 0x20)])
    const hogs: RawConnection[] = []
    for (let i = 0; i < 10; i++) {
      const hog = await open()
      hog.sendRaw(partial)
      hogs.push(hog)
    }
    // 4 hogs fit in 256 KiB (4 × 60,004 bytes), a fifth does not: six are closed.
    const settled = await eventually(() => hogs.filter((h) => h.closed).length === 6 && registry.server.stats().bufferedFrameBytes === 4 * 60_004 + 4)
    const stats = registry.server.stats()
    assert.ok(settled, `hogs closed: ${hogs.filter((h) => h.closed).length}, stats ${JSON.stringify(stats)}`)
    assert.ok(stats.bufferedFrameBytes <= budget)
    assert.equal(stats.connectionsClosedForBudget, 6)

    normal.sendRaw(LIST_NETWORKS.subarray(4))
    assert.equal((await normal.next()).type, 'list_networks_ok')
    const fresh = await open()
    assert.equal((await fresh.ask({ type: 'list_networks' })).type, 'list_networks_ok')
    assert.equal(registry.server.stats().bufferedFrameBytes, 4 * 60_004)

    // Closing the hogs gives their bytes back.
    for (const h of hogs) h.destroy()
    assert.ok(await eventually(() => registry.server.stats().bufferedFrameBytes === 0))
  })
})

after(async () => {
  assert.deepEqual(await leakedHandles(), [], 'sockets, servers or timers left open')
})
