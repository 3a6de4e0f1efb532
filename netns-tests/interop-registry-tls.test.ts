// Registry over pinned TLS against the Go reference (issue 15), on loopback:
// a reference daemon on a pilot-tun TLS-only rendezvous with its
// -registry-fingerprint; a pilot-tun daemon on the reference rendezvous with
// -tls; a wrong pin refused on both sides; plaintext refused by TLS-only
// registries. Skips, saying why, without the reference binaries.
//
// Safety: every reference program gets loopback -registry/-beacon (or -addr)
// of servers this test started, and its own HOME, -socket and -identity.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { connect as tlsConnect } from 'node:tls'
import { connect, createServer, type Socket } from 'node:net'
import { Bench, HOST, freeUdpPort, referenceLookup, waitFor, withBench, sha256 } from './helpers/reference-bench.js'

const skip = referenceLookup.reason ?? false

/** The pin of the certificate a TLS server on `address` presents (what an operator would read with openssl). */
function presentedPin(address: string): Promise<string> {
  const [host, port] = address.split(':') as [string, string]
  return new Promise((resolve, reject) => {
    const s = tlsConnect({ host, port: Number(port), rejectUnauthorized: false }, () => {
      const raw = s.getPeerCertificate(false).raw
      s.destroy()
      resolve(sha256(raw))
    })
    s.once('error', reject)
  })
}

/** Runs a reference daemon to its exit (it exits when it cannot register); returns its output. */
async function referenceDaemonOnce(bench: Bench, name: string, rv: { registry: string; beacon: string }, extraArgs: string[]): Promise<{ code: number | null; out: string }> {
  const home = join(bench.dir, `${name}-home`)
  mkdirSync(home, { mode: 0o700 })
  const args = [
    '-registry', rv.registry, '-beacon', rv.beacon, '-listen', `${HOST}:${await freeUdpPort()}`, '-socket', join(bench.dir, `${name}.sock`),
    '-identity', join(bench.dir, `${name}.identity`), ...extraArgs,
  ]
  const r = await bench.run(bench.ref.bin('daemon'), args, { HOME: home }, 15_000)
  const out = r.stdout + r.stderr
  bench.transcript.push(`$ daemon ${args.join(' ')}  → exit ${r.code}: ${out.trim().split('\n').slice(-2).join(' | ').slice(0, 400)}`)
  return { code: r.code, out }
}

async function ptStatus(bench: Bench, control: string): Promise<{ registry: { tls_pin: string | null; connected: boolean } }> {
  const r = await bench.pilotTun(['status', '--json', '--control-socket', control])
  assert.equal(r.code, 0, r.stderr)
  return JSON.parse(r.stdout) as { registry: { tls_pin: string | null; connected: boolean } }
}

test('interop: a reference daemon joins a pilot-tun --tls-only rendezvous with -registry-tls -registry-fingerprint; a wrong pin and plaintext are refused', { skip, timeout: 60_000 }, async (t) => {
  await withBench(t, async (bench) => {
    const rv = await bench.pilotTunRendezvous(['--tls-only'])
    const pinned = await bench.pilotTun(['registry', 'pin', '--store', join(bench.dir, 'registry.db')])
    const pin = pinned.stdout.trim()
    assert.match(pin, /^[0-9a-f]{64}$/, pinned.stderr)
    assert.equal(await presentedPin(rv.registry), pin, 'the pin printed is the certificate the registry presents')

    const ref = await bench.referenceDaemon('refnode', rv, ['-registry-tls', '-registry-fingerprint', pin])
    const pt = await bench.pilotTunUp('ptnode', rv, ['--registry-tls', '--registry-fingerprint', pin])
    assert.notEqual(ref.nodeId, pt.nodeId)
    assert.equal((await ptStatus(bench, pt.control)).registry.tls_pin, pin)
    // Both use the registry over TLS: the name lookup, the key and endpoint for the handshake, then a ping.
    const req = await bench.pilotTun(['trust', 'request', 'refnode', '--reason', 'interop over registry TLS', '--control-socket', pt.control])
    assert.equal(req.code, 0, req.stdout + req.stderr)
    await ref.approveWhenPending(pt.nodeId)
    await bench.pilotTunTrusts(pt.control, ref.nodeId)
    const ping = await bench.pilotTun(['ping', 'refnode', '-c', '2', '-i', '0.2', '-W', '3', '--json', '--control-socket', pt.control], 20_000)
    assert.equal(ping.code, 0, ping.stdout + ping.stderr)

    const wrongPin = 'f'.repeat(64)
    const wrong = await referenceDaemonOnce(bench, 'refwrong', rv, ['-registry-tls', '-registry-fingerprint', wrongPin])
    assert.notEqual(wrong.code, 0)
    assert.match(wrong.out, new RegExp(`certificate fingerprint mismatch: got ${pin}, want ${wrongPin}`))
    const upper = await referenceDaemonOnce(bench, 'refupper', rv, ['-registry-tls', '-registry-fingerprint', pin.toUpperCase()])
    assert.notEqual(upper.code, 0, 'the reference compares pins exactly (upper case does not match)')
    const plain = await referenceDaemonOnce(bench, 'refplain', rv, [])
    assert.notEqual(plain.code, 0)
    assert.match(plain.out, /register: .*EOF|connection reset/)
  })
})

test('interop: a pilot-tun daemon joins the reference rendezvous with -tls using its pin; a wrong pin is PT_REGISTRY_TLS_PIN', { skip, timeout: 60_000 }, async (t) => {
  await withBench(t, async (bench) => {
    const rv = await bench.referenceRendezvous(['-tls'])
    const pin = await presentedPin(rv.registry)
    const ref = await bench.referenceDaemon('refnode', rv, ['-registry-tls', '-registry-fingerprint', pin])
    const pt = await bench.pilotTunUp('ptnode', rv, ['--registry-tls', '--registry-fingerprint', pin])
    const status = await ptStatus(bench, pt.control)
    assert.equal(status.registry.tls_pin, pin)
    assert.equal(status.registry.connected, true)
    const req = await bench.pilotTun(['trust', 'request', 'refnode', '--reason', 'interop on the reference TLS registry', '--control-socket', pt.control])
    assert.equal(req.code, 0, req.stdout + req.stderr)
    await ref.approveWhenPending(pt.nodeId)
    await bench.pilotTunTrusts(pt.control, ref.nodeId)
    const ping = await bench.pilotTun(['ping', 'refnode', '-c', '2', '-i', '0.2', '-W', '3', '--json', '--control-socket', pt.control], 20_000)
    assert.equal(ping.code, 0, ping.stdout + ping.stderr)

    const wrongPin = '0'.repeat(64)
    const common = ['up', '--no-tun', '--registry', rv.registry, '--beacon', rv.beacon, '--listen', `${HOST}:0`, '--log-level', 'error']
    const wrong = await bench.pilotTun([...common, '--registry-tls', '--registry-fingerprint', wrongPin, '--state-dir', join(bench.dir, 'w'), '--control-socket', join(bench.dir, 'w.sock')], 20_000)
    assert.notEqual(wrong.code, 0)
    assert.match(wrong.stderr, /\[PT_REGISTRY_TLS_PIN\]/, wrong.stderr)
    assert.ok(wrong.stderr.includes(`hint: the registry presented pin ${pin}`), wrong.stderr)
    // The reference with -tls speaks TLS only: plaintext pilot-tun cannot register there.
    const plain = await bench.pilotTun([...common, '--state-dir', join(bench.dir, 'p'), '--control-socket', join(bench.dir, 'p.sock')], 40_000)
    assert.notEqual(plain.code, 0)
    assert.match(plain.stderr, /PT_REGISTRY_/, plain.stderr)
  })
})

/** A TCP relay to `target` that records what clients send. */
async function recordingRelay(target: string): Promise<{ address: string; sent: Buffer[]; close(): Promise<void> }> {
  const [host, port] = target.split(':') as [string, string]
  const sent: Buffer[] = []
  const sockets = new Set<Socket>()
  const server = createServer((inbound) => {
    const outbound = connect({ host, port: Number(port) })
    for (const s of [inbound, outbound]) {
      sockets.add(s)
      s.on('error', () => {})
      s.on('close', () => {
        sockets.delete(s)
        inbound.destroy()
        outbound.destroy()
      })
    }
    inbound.on('data', (d: Buffer) => {
      sent.push(Buffer.from(d))
      outbound.write(d)
    })
    outbound.on('data', (d: Buffer) => inbound.write(d))
  })
  await new Promise<void>((r) => server.listen(0, HOST, r))
  return {
    address: `${HOST}:${(server.address() as { port: number }).port}`,
    sent,
    close: async () => {
      for (const s of sockets) s.destroy()
      await new Promise<void>((r) => server.close(() => r()))
    },
  }
}

/** The frames of a recorded byte stream (Go writes prefix and body separately: join first). */
function framesOf(stream: Buffer): Array<{ raw: Buffer; json: Record<string, unknown> }> {
  const out: Array<{ raw: Buffer; json: Record<string, unknown> }> = []
  for (let at = 0; at + 4 <= stream.length; ) {
    const len = stream.readUInt32BE(at)
    if (at + 4 + len > stream.length) break
    const raw = stream.subarray(at, at + 4 + len)
    out.push({ raw, json: JSON.parse(raw.subarray(4).toString('utf8')) as Record<string, unknown> })
    at += 4 + len
  }
  return out
}

/** Sends `frames` on one connection (plaintext, or TLS when `tls`); resolves with the answers' JSON, or 'closed' when the server hung up without one. */
function exchange(address: string, frames: Buffer[], tls = false): Promise<Array<Record<string, unknown>> | 'closed'> {
  const [host, port] = address.split(':') as [string, string]
  return new Promise((resolve) => {
    const chunks: Buffer[] = []
    const onOpen = (): void => {
      s.write(Buffer.concat(frames))
    }
    const s: Socket = tls ? tlsConnect({ host, port: Number(port), rejectUnauthorized: false }, onOpen) : connect({ host, port: Number(port) }, onOpen)
    const finish = (): void => {
      clearTimeout(timer)
      const got = framesOf(Buffer.concat(chunks)).map((f) => f.json)
      s.destroy()
      resolve(got.length === 0 ? 'closed' : got)
    }
    s.on('data', (d: Buffer) => {
      chunks.push(d)
      if (framesOf(Buffer.concat(chunks)).length === frames.length) finish()
    })
    s.on('error', () => {})
    s.on('close', finish)
    const timer = setTimeout(finish, 3_000)
  })
}

const lookupFrame = (nodeId: number): Buffer => {
  const body = Buffer.from(JSON.stringify({ type: 'lookup', node_id: nodeId }))
  const prefix = Buffer.alloc(4)
  prefix.writeUInt32BE(body.length)
  return Buffer.concat([prefix, body])
}

test('interop: a signed set_hostname captured from a reference daemon\'s plaintext session replays on a --tls registry\'s plaintext side, never on a --tls-only one', { skip, timeout: 60_000 }, async (t) => {
  await withBench(t, async (bench) => {
    const rv = await bench.pilotTunRendezvous(['--tls'])
    const relay = await recordingRelay(rv.registry)
    let nodeId = 0
    try {
      // The reference talks plaintext through the recorder: register, then two hostname changes.
      const ref = await bench.referenceDaemon('refnode', { registry: relay.address, beacon: rv.beacon })
      nodeId = ref.nodeId
      for (const name of ['replayed-name', 'final-name']) {
        const r = await ref.ctl(['set-hostname', name])
        assert.equal(r.code, 0, r.stdout + r.stderr)
      }
      const captured = framesOf(Buffer.concat(relay.sent)).find((f) => f.json.type === 'set_hostname' && f.json.hostname === 'replayed-name')
      assert.ok(captured !== undefined, 'the set_hostname was captured')
      assert.equal(typeof captured.json.signature, 'string', 'and it is signed')
      bench.transcript.push(`captured from the reference: ${captured.raw.subarray(4).toString('utf8').slice(0, 200)}`)

      // On the plaintext side of a --tls registry the replay works: the name goes back (the weakness).
      const replayed = await exchange(rv.registry, [captured.raw, lookupFrame(ref.nodeId)])
      assert.notEqual(replayed, 'closed')
      assert.equal((replayed as Array<Record<string, unknown>>)[0]!.type, 'set_hostname_ok')
      assert.equal((replayed as Array<Record<string, unknown>>)[1]!.hostname, 'replayed-name')
      const back = await ref.ctl(['set-hostname', 'final-name-2'])
      assert.equal(back.code, 0, back.stdout + back.stderr)
      const now = await exchange(rv.registry, [lookupFrame(nodeId)])
      assert.equal((now as Array<Record<string, unknown>>)[0]!.hostname, 'final-name-2')
    } finally {
      await relay.close()
    }
    await bench.stop('pilot-tun rendezvous')

    // The same store behind --tls-only: the replay is closed unread; over TLS the name is still final-name.
    const tlsOnly = await bench.pilotTunRendezvous(['--tls-only'])
    const captured = framesOf(Buffer.concat(relay.sent)).find((f) => f.json.type === 'set_hostname' && f.json.hostname === 'replayed-name')!
    assert.equal(await exchange(tlsOnly.registry, [captured.raw]), 'closed')
    const seen = await waitFor('a TLS lookup', async () => {
      const r = await exchange(tlsOnly.registry, [lookupFrame(nodeId)], true)
      return r === 'closed' ? null : r
    })
    assert.equal(seen[0]!.hostname, 'final-name-2', 'the replay changed nothing')
  })
})
