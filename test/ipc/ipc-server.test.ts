// The driver IPC server (src/ipc/) against two in-process daemons: node a
// serves the IPC, node b is driven directly. Streams both ways, datagrams,
// trust and info answers, bad input, back-pressure and disconnect cleanup.
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { Daemon, ReceivedDatagram } from '../../src/daemon/daemon.js'
import type { PilotStream } from '../../src/daemon/pilot-stream.js'
import { daemonIpcHost } from '../../src/daemon/ipc-host.js'
import { IpcServer } from '../../src/ipc/server.js'
import { HandshakeSub, IPC_MAX_MESSAGE, IpcCommand, type IpcMessage } from '../../src/protocol/ipc-frames.js'
import { formatAddress } from '../../src/protocol/address.js'
import { World } from '../daemon/world.js'
import { codeOf, pattern, readStream, waitFor, writeAll } from '../daemon/helpers.js'
import { TestIpcClient } from './ipc-client.js'

let world: World
let a: Daemon
let b: Daemon
let server: IpcServer
let path: string
const clients: TestIpcClient[] = []

const sha = (x: Buffer): string => createHash('sha256').update(x).digest('hex')
const addr = (d: Daemon) => ({ network: 0, node: d.nodeId })

async function client(): Promise<TestIpcClient> {
  const c = await TestIpcClient.connect(path)
  clients.push(c)
  return c
}

before(async () => {
  world = await World.create({ memory: true })
  a = await world.daemon('a', { hostname: 'ipc-a' })
  b = await world.daemon('b', { hostname: 'ipc-b', autoAccept: true })
  await a.trustRequest(formatAddress(addr(b)), 'ipc test')
  await waitFor(() => a.isTrusted(b.nodeId) && b.isTrusted(a.nodeId), 'mutual trust', 10_000)
  path = join(world.dir, 'ipc', 'pilot.sock')
  server = new IpcServer({ path, host: daemonIpcHost(a, 'owner-x'), limits: { writeHighWater: 256 * 1024 } })
  await server.listen()
})

after(async () => {
  for (const c of clients) c.close()
  await server.close()
  await world.close()
})

function hex(n: number): string {
  return n.toString(16).toUpperCase().padStart(4, '0')
}

test('the socket is 0600; a second server on the same path is refused; a non-socket path is refused', async () => {
  assert.equal((await stat(path)).mode & 0o777, 0o600)
  const second = new IpcServer({ path, host: daemonIpcHost(a) })
  assert.equal(await codeOf(second.listen()), 'PT_IPC_IN_USE')
  const file = join(world.dir, 'not-a-socket')
  await writeFile(file, 'x')
  assert.equal(await codeOf(new IpcServer({ path: file, host: daemonIpcHost(a) }).listen()), 'PT_IPC_PATH')
})

test('Info: every key of the reference, with our values', async () => {
  const c = await client()
  c.send({ cmd: IpcCommand.Info })
  const info = await c.json(IpcCommand.InfoOK)
  for (const k of ['node_id', 'address', 'hostname', 'uptime_secs', 'connections', 'ports', 'peers', 'encrypted_peers', 'authenticated_peers', 'encrypt', 'identity', 'public_key', 'owner', 'bytes_sent', 'bytes_recv', 'pkts_sent', 'pkts_recv', 'peer_list', 'conn_list']) {
    assert.ok(k in info, `InfoOK lacks ${k}`)
  }
  assert.equal(info.node_id, a.nodeId)
  assert.equal(info.address, `0:0000.${hex(a.nodeId >>> 16)}.${hex(a.nodeId & 0xffff)}`)
  assert.equal(info.hostname, 'ipc-a')
  assert.equal(info.owner, 'owner-x')
  assert.equal(info.public_key, Buffer.from(a.identity.publicKey).toString('base64'))
  const peers = info.peer_list as Array<{ node_id: number; authenticated: boolean; encrypted: boolean }>
  assert.ok(peers.some((p) => p.node_id === b.nodeId && p.authenticated && p.encrypted))
  assert.ok((info.bytes_sent as number) > 0 && (info.pkts_recv as number) > 0)
})

test('Dial to the peer\'s echo port: DialOK, Send, Recv the same bytes, Close → CloseOK; refused port → Error', async () => {
  const c = await client()
  c.send({ cmd: IpcCommand.Dial, addr: addr(b), port: 7 })
  const ok = await c.cmd<IpcMessage & { connId: number }>(IpcCommand.DialOK)
  assert.equal(ok.cmd, IpcCommand.DialOK)
  const data = pattern(300_000, 3)
  for (let off = 0; off < data.length; off += 4096) c.send({ cmd: IpcCommand.Send, connId: ok.connId, data: data.subarray(off, off + 4096) })
  assert.equal(sha(await c.recvBytes(ok.connId, data.length)), sha(data))
  // InfoOK lists it under its IPC conn id
  c.send({ cmd: IpcCommand.Info })
  const info = await c.json(IpcCommand.InfoOK)
  const conn = (info.conn_list as Array<{ id: number; remote_port: number; state: string }>).find((x) => x.id === ok.connId)
  assert.equal(conn?.remote_port, 7)
  assert.equal(conn?.state, 'ESTABLISHED')
  c.send({ cmd: IpcCommand.Close, connId: ok.connId })
  assert.deepEqual(await c.cmd(IpcCommand.CloseOK), { cmd: IpcCommand.CloseOK, connId: ok.connId })
  c.send({ cmd: IpcCommand.Dial, addr: addr(b), port: 4999 })
  const err = await c.cmd(IpcCommand.DialOK)
  assert.equal(err.cmd, IpcCommand.Error)
  assert.match((err as { message: string }).message, /refused/)
})

test('Bind: Accept (local_port, conn_id, remote) per inbound stream, data both ways, CloseOK on the remote FIN', async () => {
  const c = await client()
  c.send({ cmd: IpcCommand.Bind, port: 5000 })
  assert.deepEqual(await c.cmd(IpcCommand.BindOK), { cmd: IpcCommand.BindOK, port: 5000 })
  const s = await b.openStream(a.nodeId, 5000)
  const acc = await c.cmd<IpcMessage & { localPort: number; connId: number; remote: { node: number }; remotePort: number }>(IpcCommand.Accept)
  assert.equal(acc.localPort, 5000)
  assert.equal(acc.remote.node, b.nodeId)
  assert.equal(acc.remotePort, s.localPort)
  const readAll = readStream(s)
  s.write('from b')
  assert.equal((await c.recvBytes(acc.connId, 6)).toString(), 'from b')
  c.send({ cmd: IpcCommand.Send, connId: acc.connId, data: Buffer.from('from the driver') })
  s.end()
  assert.deepEqual(await c.cmd(IpcCommand.CloseOK), { cmd: IpcCommand.CloseOK, connId: acc.connId }, 'remote FIN reported')
  // Half-close: still allowed to send until Close.
  c.send({ cmd: IpcCommand.Send, connId: acc.connId, data: Buffer.from(' + after FIN') })
  c.send({ cmd: IpcCommand.Close, connId: acc.connId })
  await c.cmd(IpcCommand.CloseOK)
  assert.equal((await readAll).toString(), 'from the driver + after FIN')
})

test('datagrams: RecvFrom (with dst_port) to every client, SendTo reaches the peer', async () => {
  const c1 = await client()
  const c2 = await client()
  c1.send({ cmd: IpcCommand.Info }) // both connected and registered before the datagram
  c2.send({ cmd: IpcCommand.Info })
  await c1.cmd(IpcCommand.InfoOK)
  await c2.cmd(IpcCommand.InfoOK)
  const atHandler: ReceivedDatagram[] = []
  a.onDatagram((d) => atHandler.push(d)) // the TUN's single handler keeps working next to the IPC
  const fromPort = b.sendDatagram(a.nodeId, 6000, Buffer.from('dg-1'))
  for (const c of [c1, c2]) {
    const m = await c.cmd<IpcMessage & { src: { node: number }; srcPort: number; dstPort: number; data: Uint8Array }>(IpcCommand.RecvFrom)
    assert.equal(m.src.node, b.nodeId)
    assert.equal(m.srcPort, fromPort)
    assert.equal(m.dstPort, 6000)
    assert.equal(Buffer.from(m.data).toString(), 'dg-1')
  }
  assert.equal(atHandler.length, 1)
  assert.equal(Buffer.from(atHandler[0]!.data).toString(), 'dg-1')
  a.onDatagram(null)
  const got: ReceivedDatagram[] = []
  b.onDatagram((d) => got.push(d))
  c1.send({ cmd: IpcCommand.SendTo, addr: addr(b), port: 6001, data: Buffer.from('dg-2') })
  await waitFor(() => got.length > 0, 'datagram at b')
  assert.equal(got[0]!.toPort, 6001)
  assert.equal(Buffer.from(got[0]!.data).toString(), 'dg-2')
  b.onDatagram(null)
})

test('Handshake sub-commands and the registry commands answer like the reference', async () => {
  const c = await client()
  c.send({ cmd: IpcCommand.Handshake, handshake: { sub: HandshakeSub.Trusted } })
  const trusted = (await c.json(IpcCommand.HandshakeOK)).trusted as Array<Record<string, unknown>>
  const tb = trusted.find((t) => t.node_id === b.nodeId)!
  assert.equal(tb.mutual, true)
  assert.equal(typeof tb.approved_at, 'number')
  assert.deepEqual(Object.keys(tb).sort(), ['approved_at', 'mutual', 'network', 'node_id', 'public_key'])
  c.send({ cmd: IpcCommand.Handshake, handshake: { sub: HandshakeSub.Pending } })
  assert.deepEqual(await c.json(IpcCommand.HandshakeOK), { pending: [] })
  c.send({ cmd: IpcCommand.ResolveHostname, text: 'ipc-b' })
  const r = await c.json(IpcCommand.ResolveHostnameOK)
  assert.equal(r.node_id, b.nodeId)
  assert.equal(r.type, 'resolve_hostname_ok')
  c.send({ cmd: IpcCommand.SetHostname, text: 'ipc-a2' })
  assert.deepEqual(await c.json(IpcCommand.SetHostnameOK), { hostname: 'ipc-a2', node_id: a.nodeId, type: 'set_hostname_ok' })
  assert.equal((await a.status()).hostname, 'ipc-a2')
  c.send({ cmd: IpcCommand.SetVisibility, enabled: true })
  assert.equal((await c.json(IpcCommand.SetVisibilityOK)).visibility, 'public')
  c.send({ cmd: IpcCommand.SetTags, text: '["gpu","eu"]' })
  assert.deepEqual((await c.json(IpcCommand.SetTagsOK)).tags, ['gpu', 'eu'])
  c.send({ cmd: IpcCommand.SetTags, text: '["a","b","c","d"]' })
  assert.match(((await c.cmd(IpcCommand.SetTagsOK)) as { message: string }).message, /at most 3/)
  c.send({ cmd: IpcCommand.SetWebhook, text: 'http://x' })
  assert.equal((await c.cmd(IpcCommand.SetWebhookOK)).cmd, IpcCommand.Error)
  c.send({ cmd: IpcCommand.SetWebhook, text: '' })
  assert.deepEqual(await c.json(IpcCommand.SetWebhookOK), { webhook: '' })
})

test('bad input: unknown command and short payloads get Error and the connection goes on; oversize gets Error and a close', async () => {
  const c = await client()
  c.raw(Buffer.from('0000000121', 'hex')) // Health ([D] only)
  assert.deepEqual(await c.cmd(IpcCommand.InfoOK), { cmd: IpcCommand.Error, code: 1, message: 'unknown command' })
  c.raw(Buffer.from('00000003030000', 'hex')) // Dial, 2 of its 8 bytes
  assert.equal((await c.cmd(IpcCommand.InfoOK)).cmd, IpcCommand.Error)
  c.raw(Buffer.from('00000000', 'hex')) // empty message
  assert.equal((await c.cmd(IpcCommand.InfoOK)).cmd, IpcCommand.Error)
  c.send({ cmd: IpcCommand.Send, connId: 424242, data: Buffer.from('x') })
  assert.match(((await c.cmd(IpcCommand.InfoOK)) as { message: string }).message, /not open/)
  c.send({ cmd: IpcCommand.Info })
  assert.equal((await c.cmd(IpcCommand.InfoOK)).cmd, IpcCommand.InfoOK, 'still usable')
  const before = server.stats()
  const big = Buffer.alloc(4)
  big.writeUInt32BE(IPC_MAX_MESSAGE + 1)
  c.raw(big)
  const e = await c.cmd(IpcCommand.InfoOK)
  assert.equal(e.cmd, IpcCommand.Error)
  assert.match((e as { message: string }).message, /at most 1048576/)
  await waitFor(() => c.closed, 'the server closes the connection')
  assert.equal(server.stats().badFrames, before.badFrames + 1)
})

test('disconnect: the client\'s streams end and its ports are unbound', async () => {
  const c = await client()
  c.send({ cmd: IpcCommand.Bind, port: 5100 })
  await c.cmd(IpcCommand.BindOK)
  const accepted: PilotStream[] = []
  b.listenStreams(5101, (s) => accepted.push(s))
  c.send({ cmd: IpcCommand.Dial, addr: addr(b), port: 5101 })
  const ok = await c.cmd<IpcMessage & { connId: number }>(IpcCommand.DialOK)
  assert.equal(ok.cmd, IpcCommand.DialOK)
  await waitFor(() => accepted.length === 1, 'b accepted')
  const inbound = await b.openStream(a.nodeId, 5100)
  await c.cmd(IpcCommand.Accept)
  const ends = [readStream(accepted[0]!), readStream(inbound)]
  assert.ok(server.stats().connections >= 2)
  c.close()
  await Promise.all(ends) // both streams get a FIN
  await waitFor(() => server.stats().connections === 0, 'no IPC conns left')
  assert.equal(await codeOf(b.openStream(a.nodeId, 5100)), 'PT_CONNECTION_REFUSED')
  // and another client may bind the port now
  const c2 = await client()
  c2.send({ cmd: IpcCommand.Bind, port: 5100 })
  assert.deepEqual(await c2.cmd(IpcCommand.BindOK), { cmd: IpcCommand.BindOK, port: 5100 })
  c2.close()
  b.unlistenStreams(5101)
})

test('back-pressure: a driver that stops reading holds the sender back; nothing piles up; all bytes arrive', async () => {
  const c = await client()
  c.send({ cmd: IpcCommand.Bind, port: 5200 })
  await c.cmd(IpcCommand.BindOK)
  const s = await b.openStream(a.nodeId, 5200)
  const acc = await c.cmd<IpcMessage & { connId: number }>(IpcCommand.Accept)
  c.socket.pause()
  const data = pattern(24 * 1024 * 1024, 11)
  let done = false
  const writing = writeAll(s, data).then(() => (done = true))
  await new Promise((r) => setTimeout(r, 1500))
  assert.equal(done, false, 'the peer could not push 24 MB into a driver that reads nothing')
  const queued = server.clientSummaries().map((x) => x.queuedBytes)
  assert.ok(Math.max(...queued) < 2 * 1024 * 1024, `socket queue bounded: ${queued.join(',')}`)
  c.socket.resume()
  const got = await c.recvBytes(acc.connId, data.length, 60_000)
  await writing
  assert.equal(sha(got), sha(data))
})

test('garbage from many clients (random bytes, random valid-length frames) never takes the server down', async () => {
  let seed = 7
  const rnd = (n: number): number => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0
    return seed % n
  }
  const victims: TestIpcClient[] = []
  for (let i = 0; i < 8; i++) {
    const c = await client()
    victims.push(c)
    for (let j = 0; j < 40; j++) {
      if (rnd(2) === 0) {
        c.raw(Buffer.from(Array.from({ length: 1 + rnd(40) }, () => rnd(256))))
      } else {
        // a well-framed message with a random command and payload (not the ones that change the node's registration or trust)
        let cmd = 1 + rnd(0x24)
        if ([IpcCommand.Deregister, IpcCommand.SetHostname, IpcCommand.Handshake, IpcCommand.SetVisibility].includes(cmd)) cmd = IpcCommand.Info
        const body = Buffer.from([cmd, ...Array.from({ length: rnd(24) }, () => rnd(256))])
        const head = Buffer.alloc(4)
        head.writeUInt32BE(body.length)
        c.raw(Buffer.concat([head, body]))
      }
    }
  }
  await new Promise((r) => setTimeout(r, 500))
  for (const c of victims) c.close()
  await waitFor(() => server.stats().clients === 0 || server.stats().clients <= clients.filter((c) => !c.closed).length, 'victims gone')
  const c = await client()
  c.send({ cmd: IpcCommand.Info })
  assert.equal((await c.json(IpcCommand.InfoOK)).node_id, a.nodeId)
})

test('Deregister: deregister_ok; the daemon registers again after its heartbeats fail (runs last)', async () => {
  const c = await client()
  const before = a.stats().registry.registrations
  c.send({ cmd: IpcCommand.Deregister })
  assert.deepEqual(await c.json(IpcCommand.DeregisterOK), { type: 'deregister_ok' })
  await waitFor(() => a.stats().registry.registrations > before, 're-registration', 10_000)
  c.send({ cmd: IpcCommand.ResolveHostname, text: 'ipc-a2' })
  assert.equal((await c.json(IpcCommand.ResolveHostnameOK)).node_id, a.nodeId)
})
