// Interop with the running Go reference: its `daemon`, `pilotctl` and
// `rendezvous` against pilot-tun's daemon and rendezvous, all on loopback
// (netns-tests/helpers/reference-bench.ts). Skips, saying why, without the
// reference binaries (test/util/reference.ts).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import { Daemon } from '../src/daemon/index.js'
import { Bench, HOST, ReferenceNode, referenceLookup, waitFor, withBench, sha256 } from './helpers/reference-bench.js'

const skip = referenceLookup.reason ?? false

interface PingJson {
  sent: number
  received: number
}

interface RefPingJson {
  results?: { seq: number; rtt_ms: number; error?: string }[]
  timeout?: boolean
}

/** `pilot-tun ping` gets every reply from `target`. */
async function pilotTunPings(bench: Bench, control: string, target: string): Promise<void> {
  const r = await bench.pilotTun(['ping', target, '-c', '3', '-i', '0.2', '-W', '3', '--json', '--control-socket', control], 20_000)
  assert.equal(r.code, 0, `pilot-tun ping ${target}: ${r.stdout}${r.stderr}`)
  const ping = JSON.parse(r.stdout) as PingJson
  assert.equal(ping.sent, 3)
  assert.equal(ping.received, 3, r.stdout)
}

/** `pilotctl ping` gets every reply from `target`. */
async function referencePings(node: ReferenceNode, target: string): Promise<void> {
  const r = await node.ctl(['ping', target, '--count', '3', '--timeout', '5s'], 30_000)
  assert.equal(r.code, 0, `pilotctl ping ${target}: ${r.stdout}${r.stderr}`)
  const ping = r.json as RefPingJson
  assert.equal(ping.results?.length, 3, r.stdout)
  assert.ok(ping.results.every((x) => x.error === undefined && x.rtt_ms > 0), r.stdout)
  assert.notEqual(ping.timeout, true)
}

/**
 * Sends `size` random bytes to `node`'s echo port over one Pilot stream and
 * asserts they all come back unchanged. Our FIN goes only after the echo is
 * complete: Go closes its receive side on a FIN, dropping what its echo has
 * not read yet (docs/wire.md §6.12).
 */
async function echoedIntact(daemon: Daemon, node: number, size: number, mss: number | undefined, timeoutMs = 15_000): Promise<void> {
  const payload = randomBytes(size)
  const stream = await daemon.openStream(node, 7, mss === undefined ? undefined : { mss })
  const back: Buffer[] = []
  let got = 0
  try {
    const done = new Promise<void>((resolve, reject) => {
      stream.on('data', (d: Buffer) => {
        back.push(d)
        got += d.length
        if (got >= size) resolve()
      })
      stream.on('error', reject)
      stream.on('end', () => reject(new Error(`the echo ended after ${got} of ${size} bytes`)))
    })
    stream.write(payload)
    let timer: NodeJS.Timeout | undefined
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`echo of ${size} bytes (mss ${mss ?? 'default'}): ${got} back after ${timeoutMs} ms`)), timeoutMs)
    })
    try {
      await Promise.race([done, late])
    } finally {
      clearTimeout(timer)
    }
    assert.equal(got, size)
    assert.equal(sha256(Buffer.concat(back)), sha256(payload))
  } finally {
    stream.destroy()
  }
}

/**
 * A reference daemon and an in-process pilot-tun Daemon (for its stream API)
 * on a pilot-tun rendezvous; pilot-tun asks for trust, the reference approves.
 * The caller closes the Daemon.
 */
async function inProcessPair(bench: Bench): Promise<{ ref: ReferenceNode; daemon: Daemon }> {
  const rv = await bench.pilotTunRendezvous()
  const ref = await bench.referenceDaemon('refnode', rv)
  const daemon = await Daemon.start({
    stateDir: join(bench.dir, 'inproc'),
    registry: rv.registry,
    beacon: rv.beacon,
    listen: `${HOST}:0`,
    hostname: 'ptnode',
    timing: { heartbeatMs: 1_000 },
  })
  try {
    const sent = await daemon.trustRequest('refnode', 'interop streams')
    assert.equal(sent.node_id, ref.nodeId)
    await ref.approveWhenPending(daemon.nodeId)
    await waitFor('pilot-tun to trust the reference', async () => daemon.isTrusted(ref.nodeId))
    return { ref, daemon }
  } catch (err) {
    await daemon.close()
    throw err
  }
}

interface TrustJson {
  trusted: { node_id: number }[] | null
}

test('interop: a reference daemon and a pilot-tun daemon on the pilot-tun rendezvous trust each other and ping both ways', { skip, timeout: 40_000 }, async (t) => {
  await withBench(t, async (bench) => {
    const rv = await bench.pilotTunRendezvous()
    const [ref, pt] = await Promise.all([bench.referenceDaemon('refnode', rv), bench.pilotTunUp('ptnode', rv)])
    assert.notEqual(ref.nodeId, pt.nodeId)

    // The reference asks (its handshake goes through the registry relay), pilot-tun approves.
    const hs = await ref.ctl(['handshake', pt.address, 'interop test'])
    assert.equal(hs.code, 0, hs.stdout + hs.stderr)
    await waitFor('the reference request at pilot-tun', async () => {
      const r = await bench.pilotTun(['trust', 'list', '--json', '--control-socket', pt.control])
      const list = JSON.parse(r.stdout) as { pending: { node_id: number; justification?: string }[] }
      return list.pending.some((p) => p.node_id === ref.nodeId)
    })
    const ok = await bench.pilotTun(['trust', 'approve', ref.address, '--control-socket', pt.control])
    assert.equal(ok.code, 0, ok.stdout + ok.stderr)
    await waitFor('the reference to trust pilot-tun', async () => {
      const r = await ref.ctl(['trust'])
      return ((r.json as TrustJson | null)?.trusted ?? []).some((x) => x.node_id === pt.nodeId)
    })

    await pilotTunPings(bench, pt.control, ref.address)
    await pilotTunPings(bench, pt.control, 'refnode')
    await referencePings(ref, pt.address)
    await referencePings(ref, 'ptnode')
  })
})

test('interop: streams both ways between a reference daemon and a pilot-tun daemon (echo, 1 MiB SHA-256)', { skip, timeout: 40_000 }, async (t) => {
  await withBench(t, async (bench) => {
    const { ref, daemon } = await inProcessPair(bench)
    try {
      // Reference → pilot-tun: our echo service on port 7.
      const ptAddress = (await daemon.status()).address
      const message = `hello from the reference ${randomBytes(8).toString('hex')}`
      const echo = await ref.ctl(['connect', ptAddress, '7', '--message', message, '--timeout', '10s'], 20_000)
      assert.equal(echo.code, 0, echo.stdout + echo.stderr)
      assert.equal((echo.json as { response: string }).response, message)

      // Reference → pilot-tun, 1 MB through our echo (the reference counts the bytes back).
      const benchRun = await ref.ctl(['bench', ptAddress, '1', '--timeout', '20s'], 25_000)
      assert.equal(benchRun.code, 0, benchRun.stdout + benchRun.stderr)
      const counts = benchRun.json as { sent_bytes: number; recv_bytes: number }
      assert.equal(counts.recv_bytes, counts.sent_bytes)
      assert.ok(counts.sent_bytes >= 1_000_000)

      // pilot-tun → reference: its echo port returns every byte in order, at Go's own
      // segment size (4096; our default size is the last test of this file).
      await echoedIntact(daemon, ref.nodeId, 64 * 1024, undefined)
      await echoedIntact(daemon, ref.nodeId, 1 << 20, 4096)
    } finally {
      await daemon.close()
    }
  })
})

test('interop: a pilot-tun daemon on the reference rendezvous registers, resolves the reference node by name, trusts and pings it', { skip, timeout: 40_000 }, async (t) => {
  await withBench(t, async (bench) => {
    const rv = await bench.referenceRendezvous()
    const ref = await bench.referenceDaemon('refnode', rv)
    const pt = await bench.pilotTunUp('ptnode', rv)
    assert.notEqual(ref.nodeId, pt.nodeId)

    const resolved = await bench.pilotTun(['resolve', 'refnode', '--json', '--control-socket', pt.control])
    assert.equal(resolved.code, 0, resolved.stdout + resolved.stderr)
    assert.equal((JSON.parse(resolved.stdout) as { address: string }).address, ref.address)

    // pilot-tun asks by name, the reference approves.
    const req = await bench.pilotTun(['trust', 'request', 'refnode', '--reason', 'interop on the reference rendezvous', '--control-socket', pt.control])
    assert.equal(req.code, 0, req.stdout + req.stderr)
    await ref.approveWhenPending(pt.nodeId)
    await bench.pilotTunTrusts(pt.control, ref.nodeId)

    await pilotTunPings(bench, pt.control, 'refnode')
    await referencePings(ref, 'ptnode')

    // Streams the reference opens to pilot-tun's echo: a message, then 1 MB counted back.
    const message = `over the reference rendezvous ${randomBytes(6).toString('hex')}`
    const echo = await ref.ctl(['connect', 'ptnode', '7', '--message', message, '--timeout', '10s'], 20_000)
    assert.equal(echo.code, 0, echo.stdout + echo.stderr)
    assert.equal((echo.json as { response: string }).response, message)
    const run = await ref.ctl(['bench', pt.address, '1', '--timeout', '20s'], 25_000)
    assert.equal(run.code, 0, run.stdout + run.stderr)
    const counts = run.json as { sent_bytes: number; recv_bytes: number }
    assert.equal(counts.recv_bytes, counts.sent_bytes)
  })
})

// Go's window counts queue entries, not 4096-byte slots, and its Nagle waits for
// each short segment's ACK (docs/wire.md §6.8, §6.9; src/session/peer-window.ts).
// Before both were handled this stalled: ~35 KB/s, then Go's "max retransmits
// exceeded, sending RST" with its queue overrun.
test('interop: pilot-tun streams 1 MiB to the reference echo at its default segment size (1402 bytes)', { skip, timeout: 60_000 }, async (t) => {
  await withBench(t, async (bench) => {
    const { ref, daemon } = await inProcessPair(bench)
    try {
      await echoedIntact(daemon, ref.nodeId, 1 << 20, undefined, 20_000)
      // A second stream on the same tunnel, after the first one's queue was full.
      await echoedIntact(daemon, ref.nodeId, 1 << 20, undefined, 20_000)
    } finally {
      await daemon.close()
    }
  })
})
