/**
 * Floods: 10^5 hostile inputs per receive path, from many source addresses,
 * while honest traffic runs beside them. The honest traffic must come through
 * byte for byte, the target must keep answering, its tables must stay within
 * their bounds, and the heap (measured after a full GC) must not grow past a
 * stated bound: a hostile packet may cost CPU, never memory that stays.
 *
 * Paths: the tunnel (a daemon's UDP socket, with a 4 MiB stream between two
 * daemons beside the flood), the beacon (10,000 distinct sources), the
 * control socket (well-framed requests that are all wrong) and the registry
 * (hostile frames over many TCP connections) and the .pilot DNS responder
 * (real UDP on ::1 from 50 source ports). Decoders have their own fuzzers in
 * this folder and beside their tests.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { createConnection, type Socket } from 'node:net'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setFlagsFromString } from 'node:v8'
import { createSocket, type Socket as Socket6 } from 'node:dgram'
import { runInNewContext } from 'node:vm'
import { SeededRandom } from '../../src/random.js'
import { Identity } from '../../src/crypto/identity.js'
import { ControlClient } from '../../src/daemon/control/client.js'
import { ControlServer } from '../../src/daemon/control/server.js'
import { RegistryClient } from '../../src/registry/client.js'
import { startRegistry } from '../../src/registry/start.js'
import type { PilotStream } from '../../src/daemon/pilot-stream.js'
import type { Daemon } from '../../src/daemon/daemon.js'
import { mutate, randomBytes } from '../util/fuzz.js'
import { World } from '../daemon/world.js'
import { pattern, readStream, waitFor, writeAll } from '../daemon/helpers.js'
import { FakeDaemon } from '../daemon/fake-daemon.js'
import { BEACON_HOST, BEACON_PORT, memoryRig } from '../beacon/helpers.js'
import { DnsResponder } from '../../src/tun/bridge-dns.js'
import type { BridgeHost } from '../../src/tun/bridge-host.js'
import { DEFAULT_OVERLAY_PREFIX, mapPilotToIpv6 } from '../../src/protocol/ipv6-mapping.js'
import { MemoryLogger, nullLogger } from '../../src/logger.js'

const FLOOD = 100_000
/** Heap growth allowed after a flood, after a full GC (the bound the suite states). */
const HEAP_BOUND = 32 * 1024 * 1024

setFlagsFromString('--expose-gc')
const gc = runInNewContext('gc') as () => void

function settledHeap(): number {
  gc()
  gc()
  return process.memoryUsage().heapUsed
}

function sha(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex')
}

function hex(n: number): string {
  return n.toString(16).toUpperCase().padStart(4, '0')
}

function yieldToIo(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve))
}

/** Frames a hostile peer would send to a daemon's socket: every kind, mostly malformed, some well-formed but unauthenticated. */
function hostileTunnelFrame(rng: SeededRandom, knownNodes: number[]): Buffer {
  const kind = rng.int(10)
  const node = rng.int(4) === 0 ? knownNodes[rng.int(knownNodes.length)]! : rng.int(0x1_0000_0000)
  switch (kind) {
    case 0:
    case 1: {
      // PILS from a known or random sender, with a random nonce and garbage "ciphertext".
      const f = Buffer.alloc(20 + 16 + rng.int(1400))
      f.write('PILS', 0, 'latin1')
      f.writeUInt32BE(node >>> 0, 4)
      for (let i = 8; i < f.length; i++) f[i] = rng.int(256)
      return f
    }
    case 2: {
      // PILA of the right size with random keys and a bad signature.
      const f = Buffer.alloc(136)
      f.write('PILA', 0, 'latin1')
      f.writeUInt32BE(node >>> 0, 4)
      for (let i = 8; i < f.length; i++) f[i] = rng.int(256)
      return f
    }
    case 3: {
      // PILT and PILK: refused kinds.
      const f = Buffer.alloc(rng.int(2) === 0 ? 40 : 38 + rng.int(100))
      f.write(rng.int(2) === 0 ? 'PILK' : 'PILT', 0, 'latin1')
      f.writeUInt32BE(node >>> 0, 4)
      for (let i = 8; i < f.length; i++) f[i] = rng.int(256)
      return f
    }
    case 4: {
      // Beacon messages a daemon might get: PunchCommand for random targets, RelayDeliver with junk.
      const f = Buffer.alloc(rng.int(2) === 0 ? 12 : 16 + rng.int(200))
      f[0] = rng.int(2) === 0 ? 0x04 : 0x06
      for (let i = 1; i < f.length; i++) f[i] = rng.int(256)
      if (f[0] === 0x04 && f.length >= 8) {
        f[1] = 4
      }
      return f
    }
    case 5:
      return Buffer.from(mutate(rng, Buffer.from('50494c530000000100000000000000000000000100112233445566778899aabbccddeeff', 'hex')))
    default:
      return Buffer.from(randomBytes(rng, rng.int(1500)))
  }
}

/** Every datagram b's tunnel took in: delivered packets plus every drop reason. */
function framesSeen(d: Daemon): number {
  const s = d.tunnelEngine.stats()
  return s.packetsIn + s.punchesReceived + s.punchCommands + s.relayDelivers + s.keyFramesAccepted + Object.values(s.drops).reduce((x, y) => x + y, 0)
}

async function trustPair(a: Daemon, b: Daemon): Promise<void> {
  await a.trustRequest(`0:0000.${hex(b.nodeId >>> 16)}.${hex(b.nodeId & 0xffff)}`, 'flood test')
  await waitFor(async () => (await a.trustList()).trusted.some((t) => t.node_id === b.nodeId), 'a trusts b', 8_000)
  await waitFor(async () => (await b.trustList()).trusted.some((t) => t.node_id === a.nodeId), 'b trusts a', 8_000)
}

test(`tunnel: ${FLOOD.toLocaleString('en')} hostile frames from 5,000 sources beside a byte-exact 4 MiB stream`, { timeout: 240_000 }, async () => {
  const w = await World.create({ memory: true })
  try {
    const a = await w.daemon('a')
    const b = await w.daemon('b', { autoAccept: true })
    await trustPair(a, b)
    const net = w.net!
    const target = (b.status && (await b.status()).listen) as string
    const colon = target.lastIndexOf(':')
    const host = target.slice(0, colon)
    const port = Number(target.slice(colon + 1))
    const heapBefore = settledHeap()
    const seenBefore = framesSeen(b)

    const accepted: PilotStream[] = []
    b.listenStreams(6001, (s) => accepted.push(s))
    const client = await a.openStream(b.nodeId, 6001)
    await waitFor(() => accepted.length > 0, 'accepted stream')
    const data = pattern(4 * 1024 * 1024, 11)
    const transfer = Promise.all([readStream(accepted[0]!), writeAll(client, data)])

    const rng = new SeededRandom(0xf100d)
    const known = [a.nodeId, b.nodeId]
    for (let i = 0; i < FLOOD; i++) {
      const from = { host: `198.51.${(i >> 8) % 20}.${i & 0xff}`, port: 1024 + (i % 250) }
      net.deliver(from, host, port, hostileTunnelFrame(rng, known))
      if (i % 500 === 499) await yieldToIo()
    }
    const [received] = await transfer
    assert.equal(received.length, data.length)
    assert.equal(sha(received), sha(data), 'the stream beside the flood is byte-exact')

    // Still serving: a ping round trip and the control API answer.
    const rtt = await a.ping(`0:0000.${hex(b.nodeId >>> 16)}.${hex(b.nodeId & 0xffff)}`, 3_000).catch((err: Error) => err)
    assert.ok(!(rtt instanceof Error), `ping after the flood: ${String(rtt)}`)
    const seen = framesSeen(b) - seenBefore
    assert.ok(seen >= FLOOD, `b's tunnel saw only ${seen} frames: the flood did not reach it`)
    const peers = await b.peers()
    assert.ok(peers.length <= 64, `hostile frames must not fill the peer table (${peers.length} peers)`)
    b.unlistenStreams(6001)
    client.destroy()
    accepted[0]!.destroy()
    const growth = settledHeap() - heapBefore
    console.log(`# tunnel flood: heap growth ${(growth / 1048576).toFixed(1)} MiB, b has ${peers.length} peers`)
    assert.ok(growth < HEAP_BOUND, `heap grew ${(growth / 1048576).toFixed(1)} MiB (bound ${HEAP_BOUND / 1048576} MiB)`)
  } finally {
    await w.close()
  }
})

test(`beacon: ${FLOOD.toLocaleString('en')} hostile datagrams from 10,000 sources; the table stays bounded and a Discover is answered`, { timeout: 120_000 }, async () => {
  const maxNodes = 2_000
  const rig = memoryRig({ maxNodes })
  try {
    const heapBefore = settledHeap()
    const rng = new SeededRandom(0xbeac0f)
    for (let i = 0; i < FLOOD; i++) {
      const from = { host: `203.0.${(i >> 8) % 40}.${i & 0xff}`, port: 4000 + (i % 7) }
      let msg: Uint8Array
      const k = rng.int(4)
      if (k === 0) {
        // Discover for a random node ID.
        const d = Buffer.alloc(5)
        d[0] = 0x01
        d.writeUInt32BE(rng.int(0x1_0000_0000), 1)
        msg = d
      } else if (k === 1) {
        // Relay to a random node with junk.
        const r = Buffer.alloc(9 + rng.int(200))
        r[0] = 0x05
        for (let j = 1; j < r.length; j++) r[j] = rng.int(256)
        msg = r
      } else {
        msg = randomBytes(rng, rng.int(300))
      }
      rig.net.deliver(from, BEACON_HOST, BEACON_PORT, msg)
      if (i % 1000 === 999) await yieldToIo()
    }
    const stats = rig.server.stats()
    assert.ok(stats.datagrams >= FLOOD, `the beacon saw only ${stats.datagrams} datagrams: the flood did not reach it`)
    const honest = rig.client('10.9.9.9', 4000)
    const reply = await honest.discover(77)
    assert.ok(reply !== null, 'the beacon answers an honest Discover after the flood')
    const nodes = rig.server.stats().nodes
    assert.ok(nodes <= maxNodes, `node table ${nodes} > ${maxNodes}`)
    assert.ok(stats.sources <= 100_000, `per-source limiter table ${stats.sources}`)
    const growth = settledHeap() - heapBefore
    console.log(`# beacon flood: heap growth ${(growth / 1048576).toFixed(1)} MiB, ${nodes} nodes`)
    assert.ok(growth < HEAP_BOUND, `heap grew ${(growth / 1048576).toFixed(1)} MiB`)
  } finally {
    await rig.close()
  }
})

function controlFrame(obj: unknown): Buffer {
  const body = Buffer.from(JSON.stringify(obj))
  const f = Buffer.alloc(4 + body.length)
  f.writeUInt32BE(body.length, 0)
  body.copy(f, 4)
  return f
}

/**
 * Sends frames on a socket with at most `window` unanswered (a client that
 * pipelines without limit is cut off by design, and that is not the flood we
 * want), counting the answers. Resolves with the count when every frame is
 * answered or the server closed the connection.
 */
function floodSocket(socket: Socket, frames: Buffer[], window = 16): Promise<number> {
  return new Promise((resolve) => {
    let answers = 0
    let next = 0
    let pending: Buffer = Buffer.alloc(0)
    let finished = false
    const done = (): void => {
      if (finished) return
      finished = true
      socket.destroy()
      resolve(answers)
    }
    const sendUpTo = (limit: number): void => {
      const batch: Buffer[] = []
      while (next < frames.length && next < limit) batch.push(frames[next++]!)
      if (batch.length > 0) socket.write(Buffer.concat(batch))
    }
    socket.on('data', (chunk: Buffer) => {
      pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk])
      while (pending.length >= 4 && pending.length >= 4 + pending.readUInt32BE(0)) {
        pending = pending.subarray(4 + pending.readUInt32BE(0))
        answers++
      }
      if (answers >= frames.length) done()
      else sendUpTo(answers + window)
    })
    socket.on('close', done)
    socket.on('error', () => {})
    socket.on('connect', () => sendUpTo(window))
  })
}

test(`control socket: ${FLOOD.toLocaleString('en')} well-framed wrong requests on 20 connections; an honest client is answered`, { timeout: 120_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'pilot-flood-'))
  const path = join(dir, 'control.sock')
  const server = new ControlServer({ path, control: new FakeDaemon(), logger: new MemoryLogger() })
  await server.listen()
  try {
    const heapBefore = settledHeap()
    const rng = new SeededRandom(0xc0de)
    const perConnection = FLOOD / 20
    const floods: Array<Promise<number>> = []
    for (let c = 0; c < 20; c++) {
      const frames: Buffer[] = []
      for (let i = 0; i < perConnection; i++) {
        const k = rng.int(4)
        const id = rng.int(1e9)
        frames.push(
          controlFrame(
            k === 0 ? { id, method: `no-such-method-${rng.int(1e6)}` }
              : k === 1 ? { id, method: 'resolve', params: { target: 'x'.repeat(rng.int(300)) } }
                : k === 2 ? { id, method: 'trust_request', params: { target: 12, reason: [] } }
                  : { id, method: 'status', params: 'not an object' },
          ),
        )
      }
      const socket = createConnection({ path })
      floods.push(floodSocket(socket, frames))
    }
    const client = await ControlClient.connect(path)
    const status = (await client.call('status', {})) as { node_id?: unknown }
    assert.equal(typeof status.node_id, 'number', 'the honest client is answered during the flood')
    client.close()
    const answered = (await Promise.all(floods)).reduce((x, y) => x + y, 0)
    assert.equal(answered, FLOOD, 'every hostile request is answered with an error on a connection that stays usable')
    const growth = settledHeap() - heapBefore
    console.log(`# control flood: ${answered} error answers, heap growth ${(growth / 1048576).toFixed(1)} MiB`)
    assert.ok(growth < HEAP_BOUND, `heap grew ${(growth / 1048576).toFixed(1)} MiB`)
  } finally {
    await server.close()
    rmSync(dir, { recursive: true, force: true })
  }
})

test(`registry: ${FLOOD.toLocaleString('en')} hostile frames over 100 connections; an honest client registers and looks up`, { timeout: 180_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'pilot-flood-reg-'))
  const registry = await startRegistry({ host: '127.0.0.1', port: 0, storePath: join(dir, 'registry.db') })
  try {
    const heapBefore = settledHeap()
    const rng = new SeededRandom(0x5e9)
    const connections = 100
    const perConnection = FLOOD / connections
    const port = registry.address.port
    let sent = 0
    let answered = 0
    for (let wave = 0; wave < connections; wave += 10) {
      const floods: Array<Promise<number>> = []
      for (let c = 0; c < 10; c++) {
        const frames: Buffer[] = []
        for (let i = 0; i < perConnection; i++) {
          const k = rng.int(4)
          const body =
            k === 0 ? { type: `nope-${rng.int(1e6)}` }
              : k === 1 ? { type: 'lookup', node_id: rng.int(1e9) }
                : k === 2 ? { type: 'heartbeat', node_id: rng.int(1e9), signature: 'AAAA' }
                  : { type: 'resolve_hostname', hostname: 'x'.repeat(rng.int(100)) }
          frames.push(controlFrame(body))
        }
        sent += frames.length
        floods.push(floodSocket(createConnection({ host: '127.0.0.1', port }), frames))
      }
      answered += (await Promise.all(floods)).reduce((x, y) => x + y, 0)
    }
    assert.equal(sent, FLOOD)
    assert.ok(answered >= FLOOD * 0.9, `the registry answered only ${answered} of ${FLOOD} hostile requests`)
    const identity = Identity.generate()
    const honest = new RegistryClient({ host: '127.0.0.1', port, identity, timeoutMs: 5_000 })
    try {
      const { nodeId } = await honest.register({ listenAddr: '127.0.0.1:4000' })
      const found = await honest.lookup(nodeId)
      assert.equal(found.nodeId, nodeId, 'the registry still serves an honest client')
    } finally {
      honest.close()
    }
    const growth = settledHeap() - heapBefore
    console.log(`# registry flood: ${answered} answers, heap growth ${(growth / 1048576).toFixed(1)} MiB`)
    assert.ok(growth < HEAP_BOUND, `heap grew ${(growth / 1048576).toFixed(1)} MiB`)
  } finally {
    await registry.close()
    rmSync(dir, { recursive: true, force: true })
  }
})

test(`DNS: ${FLOOD.toLocaleString('en')} hostile queries from 50 source ports; an honest AAAA query is answered`, { timeout: 120_000 }, async () => {
  const resolver = {
    resolve(target: string): Promise<{ node_id: number }> {
      if (target === 'bob') return Promise.resolve({ node_id: 42 })
      return Promise.reject(Object.assign(new Error('no such name'), { code: 'PT_NAME_NOT_FOUND' }))
    },
  } as unknown as BridgeHost
  const dns = new DnsResponder({ host: resolver, prefix: DEFAULT_OVERLAY_PREFIX, bindHost: '::1', bindPort: 0, interfaceName: 'none', logger: nullLogger, useResolved: false })
  await dns.start()
  const sockets = await Promise.all(
    Array.from({ length: 50 }, () => new Promise<Socket6>((resolve) => {
      const s = createSocket('udp6')
      s.on('message', () => {})
      s.bind(0, '::1', () => resolve(s))
    })),
  )
  try {
    const heapBefore = settledHeap()
    const rng = new SeededRandom(0xd25)
    const valid = dnsQuery('bob.pilot', 7)
    for (let i = 0; i < FLOOD; i++) {
      const k = rng.int(4)
      const q = k === 0 ? dnsQuery(`n${rng.int(1e6)}.pilot`, rng.int(65536)) : k === 1 ? Buffer.from(mutate(rng, valid)) : Buffer.from(randomBytes(rng, rng.int(600)))
      sockets[i % sockets.length]!.send(q, dns.port, '::1')
      if (i % 32 === 31) await yieldToIo()
    }
    // The honest query: retried a few times, since the flood may still fill the socket's queue.
    let answer: Buffer | null = null
    for (let attempt = 0; attempt < 10 && answer === null; attempt++) answer = await askDns(dns.port, 'bob.pilot', 4242)
    assert.ok(answer !== null, 'the responder answers an honest query after the flood')
    const seen = dns.stats().queries
    assert.ok(seen >= FLOOD / 2, `the responder saw only ${seen} datagrams: the flood did not reach it`)
    assert.equal(dns.stats().handlerErrors, 0)
    assert.equal(answer[3]! & 0x0f, 0, 'NOERROR')
    assert.ok(Buffer.from(answer.subarray(answer.length - 16)).equals(Buffer.from(mapPilotToIpv6({ network: 0, node: 42 }, DEFAULT_OVERLAY_PREFIX))))
    const growth = settledHeap() - heapBefore
    console.log(`# DNS flood: ${dns.stats().queries} queries, ${dns.stats().malformed} malformed, heap growth ${(growth / 1048576).toFixed(1)} MiB`)
    assert.ok(growth < HEAP_BOUND, `heap grew ${(growth / 1048576).toFixed(1)} MiB`)
  } finally {
    for (const s of sockets) s.close()
    await dns.close()
  }
})

function dnsQuery(name: string, id: number): Buffer {
  return Buffer.concat([
    Buffer.from([id >> 8, id & 0xff, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0]),
    ...name.split('.').map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l)])),
    Buffer.from([0, 0, 28, 0, 1]),
  ])
}

function askDns(port: number, name: string, id: number): Promise<Buffer | null> {
  return new Promise((resolve) => {
    const s = createSocket('udp6')
    const t = setTimeout(() => {
      s.close()
      resolve(null)
    }, 1_000)
    s.on('message', (m) => {
      clearTimeout(t)
      s.close()
      resolve(m)
    })
    s.send(dnsQuery(name, id), port, '::1')
  })
}
