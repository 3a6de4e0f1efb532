// Interop of the driver IPC (docs/wire.md §14, src/ipc/): the Go reference's
// `pilotctl` and example programs run unchanged against a pilot-tun daemon
// (`pilot-tun up --no-tun --ipc-socket PATH`), talking to a reference daemon
// driven by its own pilotctl. All on loopback (helpers/reference-bench.ts);
// skips, saying why, without the reference binaries.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { accessSync, constants, mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { Bench, ReferenceNode, referenceLookup, sleep, waitFor, withBench } from './helpers/reference-bench.js'
import { TestIpcClient } from '../test/ipc/ipc-client.js'
import { IpcCommand } from '../src/protocol/ipc-frames.js'

const skip = referenceLookup.reason ?? false
const EXAMPLES = ['webserver', 'echo', 'dataexchange', 'eventstream'] as const
/** The example programs sit beside the reference's daemon; the second test skips without them. */
const examplesSkip =
  skip ||
  (EXAMPLES.every((e) => referenceLookup.found !== null && isExecutable(join(referenceLookup.found.dir, e))) ? false : 'the reference example programs are absent')

function isExecutable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK)
    return true
  } catch {
    return false
  }
}

function example(bench: Bench, name: (typeof EXAMPLES)[number]): string {
  return join(bench.ref.dir, name)
}

interface Pair {
  /** pilotctl over pilot-tun's IPC socket. */
  pt: ReferenceNode
  ptNode: number
  ipc: string
  /** The reference daemon, pilotctl over its own socket. */
  ref: ReferenceNode
  registry: string
}

/** A pilot-tun rendezvous, a pilot-tun daemon with --ipc-socket (default MSS), a reference daemon. */
async function pair(bench: Bench, ptName: string, refName: string, extraArgs: string[] = []): Promise<Pair> {
  const rv = await bench.pilotTunRendezvous()
  const ipc = join(bench.dir, `${ptName}-ipc.sock`)
  const [p, ref] = await Promise.all([bench.pilotTunUp(ptName, rv, ['--ipc-socket', ipc, ...extraArgs]), bench.referenceDaemon(refName, rv)])
  const home = join(bench.dir, `${ptName}-ctl-home`)
  mkdirSync(home, { mode: 0o700 })
  const pt = new ReferenceNode(bench, home, ipc)
  pt.registry = rv.registry
  pt.nodeId = p.nodeId
  pt.address = p.address
  return { pt, ptNode: p.nodeId, ipc, ref, registry: rv.registry }
}

type Json = Record<string, unknown>

async function ok(node: ReferenceNode, args: string[], timeoutMs?: number): Promise<Json> {
  const r = await node.ctl(args, timeoutMs)
  assert.equal(r.code, 0, `pilotctl ${args.join(' ')}: ${r.stdout}${r.stderr}`)
  return r.json as Json
}

/** pilot-tun (via pilotctl on its IPC) asks, the reference approves; both list each other. */
async function trustBoth(p: Pair): Promise<void> {
  const sent = await ok(p.pt, ['handshake', String(p.ref.nodeId), 'interop over the IPC'])
  assert.equal(sent.status, 'sent')
  assert.equal(sent.node_id, p.ref.nodeId)
  await waitFor('the request at the reference', async () => {
    const pending = (await ok(p.ref, ['pending'])).pending as Json[] | null
    return pending?.some((x) => x.node_id === p.ptNode) === true
  }, 15_000)
  assert.equal((await ok(p.ref, ['approve', String(p.ptNode)])).status, 'approved')
  await waitFor('mutual trust at pilot-tun', async () => {
    const trusted = (await ok(p.pt, ['trust'])).trusted as Json[] | null
    return trusted?.some((x) => x.node_id === p.ref.nodeId && x.mutual === true) === true
  }, 20_000)
}

test('interop IPC: the reference pilotctl drives a pilot-tun daemon (info, trust, find, ping, connect, send/recv, listen, bench, registry commands)', { skip, timeout: 180_000 }, async (t) => {
  await withBench(t, async (bench) => {
    const p = await pair(bench, 'ptipc', 'refipc')
    const { pt, ref } = p

    const info = await ok(pt, ['info'])
    assert.equal(info.node_id, p.ptNode)
    assert.equal(info.address, pt.address)
    assert.equal(info.hostname, 'ptipc')
    assert.equal(info.encrypt, true)
    assert.equal(typeof info.public_key, 'string')

    await trustBoth(p)
    const peers = await ok(pt, ['peers'])
    assert.ok((peers.peers as Json[]).some((x) => x.node_id === ref.nodeId && x.authenticated === true), JSON.stringify(peers))

    const found = await ok(pt, ['find', 'refipc'])
    assert.equal(found.node_id, ref.nodeId)
    assert.equal(found.address, ref.address)

    const ping = await ok(pt, ['ping', 'refipc', '--count', '2', '--timeout', '5s'], 30_000)
    assert.equal((ping.results as Json[]).length, 2, JSON.stringify(ping))
    const refPing = await ok(ref, ['ping', 'ptipc', '--count', '2', '--timeout', '5s'], 30_000)
    assert.equal((refPing.results as Json[]).length, 2, JSON.stringify(refPing))

    const echo = await ok(pt, ['connect', 'refipc', '7', '--message', 'hello over the IPC', '--timeout', '5s'])
    assert.equal(echo.response, 'hello over the IPC')

    // pilot-tun sends a stream message to the reference's `recv` (Bind on its side).
    const refRecv = ref.ctl(['recv', '5000', '--count', '1', '--timeout', '15s'], 20_000)
    await sleep(800)
    const sent = await ok(pt, ['send', 'refipc', '5000', '--data', 'pt-to-ref', '--timeout', '5s'])
    assert.equal(sent.sent, 'pt-to-ref')
    const got = (await refRecv).json as Json
    assert.equal((got.messages as Json[])[0]!.data, 'pt-to-ref')

    // and the other way: `recv` over our IPC (Bind + Accept + Recv), the reference sends.
    const ptRecv = pt.ctl(['recv', '5001', '--count', '1', '--timeout', '15s'], 20_000)
    await sleep(800)
    await ok(ref, ['send', 'ptipc', '5001', '--data', 'ref-to-pt', '--timeout', '5s'])
    const got2 = (await ptRecv).json as Json
    assert.equal((got2.messages as Json[])[0]!.data, 'ref-to-pt', JSON.stringify(got2))

    // datagrams: `listen` on our IPC gets a RecvFrom for a datagram a raw driver sends through the reference daemon
    const ptListen = pt.ctl(['listen', '6000', '--count', '1', '--timeout', '10s'], 15_000)
    await sleep(800)
    const raw = await TestIpcClient.connect(ref.socket)
    raw.send({ cmd: IpcCommand.SendTo, addr: { network: 0, node: p.ptNode }, port: 6000, data: Buffer.from('datagram-ref-to-pt') })
    const heard = (await ptListen).json as Json
    bench.transcript.push(`(raw IPC SendTo 0:…${p.ptNode}:6000 "datagram-ref-to-pt" through the reference daemon) → pilotctl listen over our IPC: ${JSON.stringify(heard)}`)
    assert.equal((heard.messages as Json[] | null)?.[0]?.data, 'datagram-ref-to-pt', JSON.stringify(heard))
    raw.close()
    // and a datagram from our IPC (SendTo) reaches the reference's `listen`
    const refListen = ref.ctl(['listen', '6001', '--count', '1', '--timeout', '10s'], 15_000)
    await sleep(800)
    const raw2 = await TestIpcClient.connect(p.ipc)
    raw2.send({ cmd: IpcCommand.SendTo, addr: { network: 0, node: ref.nodeId }, port: 6001, data: Buffer.from('datagram-pt-to-ref') })
    const heard2 = (await refListen).json as Json
    bench.transcript.push(`(raw IPC SendTo through pilot-tun) → reference pilotctl listen 6001: ${JSON.stringify(heard2)}`)
    assert.equal((heard2.messages as Json[] | null)?.[0]?.data, 'datagram-pt-to-ref', JSON.stringify(heard2))
    raw2.close()

    const b = await ok(pt, ['bench', 'refipc', '1', '--timeout', '30s'], 60_000)
    assert.equal(b.sent_bytes, 1_048_576)
    assert.equal(b.recv_bytes, 1_048_576)
    const rb = await ok(ref, ['bench', 'ptipc', '1', '--timeout', '30s'], 60_000)
    assert.equal(rb.recv_bytes, 1_048_576)

    // The reference's own services (1001 data exchange, 1002 event stream, 1003 tasks) reached over our IPC.
    const msg = await ok(pt, ['send-message', 'refipc', '--data', 'message over the IPC'], 20_000)
    bench.transcript.push(`send-message answer: ${JSON.stringify(msg)}`)
    const file = join(bench.dir, 'payload.txt')
    writeFileSync(file, 'file over the IPC\n')
    await pt.ctl(['send-file', 'refipc', file], 20_000)
    const inbox = await ref.ctl(['inbox'])
    assert.match(inbox.stdout, /message over the IPC/, 'the reference received the message')
    await ref.ctl(['received'])
    const sub = pt.ctl(['subscribe', 'refipc', 'weather', '--count', '1', '--timeout', '10s'], 15_000)
    await sleep(1000)
    await ok(ref, ['publish', 'refipc', 'weather', '--data', 'rain over the IPC'], 15_000)
    const subbed = await sub
    assert.match(subbed.stdout, /rain over the IPC/, subbed.stdout + subbed.stderr)
    await pt.ctl(['task', 'submit', 'refipc', '--task', 'say hello'], 20_000)
    await pt.ctl(['traceroute', ref.address, '--timeout', '5s'], 15_000)

    const conns = await ok(pt, ['connections'])
    assert.ok(Array.isArray(conns.connections), JSON.stringify(conns))
    // `disconnect <unknown id>` gets its CloseOK and then hangs, with the reference daemon too (recorded, not asserted).
    await pt.ctl(['disconnect', '99'], 3_000)

    assert.deepEqual(await ok(pt, ['set-hostname', 'ptipc2']), { hostname: 'ptipc2', node_id: p.ptNode })
    assert.equal((await ok(ref, ['find', 'ptipc2'])).node_id, p.ptNode)
    assert.equal((await ok(pt, ['set-public'])).visibility, 'public')
    assert.equal((await ok(pt, ['set-private'])).visibility, 'private')
    assert.deepEqual((await ok(pt, ['set-tags', 'gpu', 'eu'])).tags, ['gpu', 'eu'])
    await pt.ctl(['clear-tags'])
    await pt.ctl(['enable-tasks'])
    await pt.ctl(['disable-tasks'])
    await pt.ctl(['clear-hostname'])

    // untrust, then a new request from the reference that pilot-tun rejects
    assert.equal((await ok(pt, ['untrust', String(ref.nodeId)])).node_id, ref.nodeId)
    const after = (await ok(pt, ['trust'])).trusted as Json[] | null
    assert.ok(!(after ?? []).some((x) => x.node_id === ref.nodeId))
    await ok(ref, ['handshake', String(p.ptNode), 'again please'])
    await waitFor('the reference request at pilot-tun', async () => {
      const pending = (await ok(pt, ['pending'])).pending as Json[] | null
      return pending?.some((x) => x.node_id === ref.nodeId && x.justification === 'again please') === true
    }, 20_000)
    assert.equal((await ok(pt, ['reject', String(ref.nodeId), 'not now'])).status, 'rejected')
    assert.deepEqual((await ok(pt, ['pending'])).pending ?? [], [])

    assert.equal((await ok(pt, ['deregister'])).type, 'deregister_ok')
  })
})

test('interop IPC: the reference example programs run on a pilot-tun daemon (webserver, echo, dataexchange, eventstream)', { skip: examplesSkip, timeout: 180_000 }, async (t) => {
  await withBench(t, async (bench) => {
    // The example servers bind 1001 and 1002 themselves, so pilot-tun's own services are off
    // (as the reference runs them: `daemon -no-dataexchange -no-eventstream`).
    const p = await pair(bench, 'ptex', 'refex', ['--no-dataexchange', '--no-eventstream'])
    const { ref } = p
    await trustBoth(p)
    const env = { HOME: p.pt.home }
    const started = (name: string, needle: string) => waitFor(`${name} to start`, async () => bench.logs().includes(needle), 10_000)

    // webserver on pilot-tun, fetched from the reference side
    bench.start('webserver (on pilot-tun)', example(bench, 'webserver'), ['-socket', p.ipc, '-port', '80'], env)
    await started('webserver', 'webserver listening')
    const page = await ok(ref, ['connect', 'ptex', '80', '--message', 'GET / HTTP/1.0\r\nHost: ptex\r\n\r\n', '--timeout', '10s'], 20_000)
    assert.match(String(page.response), /^HTTP\/1\.[01] 200/, JSON.stringify(page))

    // echo on pilot-tun, port 9
    bench.start('echo (on pilot-tun)', example(bench, 'echo'), ['-socket', p.ipc, '-port', '9'], env)
    await started('echo', 'echo server listening')
    const e = await ok(ref, ['connect', 'ptex', '9', '--message', 'echo through pilot-tun', '--timeout', '10s'], 20_000)
    assert.equal(e.response, 'echo through pilot-tun')

    // dataexchange: the client over our IPC to the reference's built-in service on 1001
    const dx = await bench.run(example(bench, 'dataexchange'), ['-socket', p.ipc, '-mode', 'client', '-target', ref.address, '-msg', 'dx from pilot-tun'], env, 20_000)
    bench.transcript.push(`$ dataexchange -socket <pilot-tun ipc> -mode client -target ${ref.address} -msg "dx from pilot-tun" → exit ${dx.code}: ${(dx.stdout + dx.stderr).trim().slice(0, 400)}`)
    assert.equal(dx.code, 0, dx.stdout + dx.stderr)
    assert.match(dx.stdout + dx.stderr, /response: ACK TEXT 17 bytes/)

    // eventstream: a subscriber over our IPC on the reference's broker (1002), a publisher on the reference side
    bench.start('eventstream sub (on pilot-tun)', example(bench, 'eventstream'), ['-socket', p.ipc, '-mode', 'sub', '-target', ref.address, '-topic', 'news'], env)
    await sleep(1500)
    const pub = await bench.run(example(bench, 'eventstream'), ['-socket', ref.socket, '-mode', 'pub', '-target', ref.address, '-topic', 'news', '-msg', 'event-for-pilot-tun'], { HOME: ref.home }, 20_000)
    bench.transcript.push(`$ eventstream -socket <reference> -mode pub -target ${ref.address} -topic news -msg event-for-pilot-tun → exit ${pub.code}: ${(pub.stdout + pub.stderr).trim().slice(0, 400)}`)
    await waitFor('the event at the pilot-tun subscriber', async () => bench.logs().includes('[news] event-for-pilot-tun'), 10_000)

    // eventstream broker over our IPC (port 1002): a reference subscriber and publisher use it
    bench.start('eventstream server (on pilot-tun)', example(bench, 'eventstream'), ['-socket', p.ipc], env)
    await sleep(1000)
    bench.start('eventstream sub (reference, on the pilot-tun broker)', example(bench, 'eventstream'), ['-socket', ref.socket, '-mode', 'sub', '-target', p.pt.address, '-topic', 'alerts'], { HOME: ref.home })
    await sleep(1500)
    const pub2 = await bench.run(example(bench, 'eventstream'), ['-socket', ref.socket, '-mode', 'pub', '-target', p.pt.address, '-topic', 'alerts', '-msg', 'via-the-pilot-tun-broker'], { HOME: ref.home }, 20_000)
    bench.transcript.push(`$ eventstream -socket <reference> -mode pub -target ${p.pt.address} -topic alerts -msg via-the-pilot-tun-broker → exit ${pub2.code}: ${(pub2.stdout + pub2.stderr).trim().slice(0, 400)}`)
    await waitFor('the event at the reference subscriber through the pilot-tun broker', async () => bench.logs().includes('[alerts] via-the-pilot-tun-broker'), 10_000)

    // dataexchange server over our IPC, the reference's client sends to it
    bench.start('dataexchange server (on pilot-tun)', example(bench, 'dataexchange'), ['-socket', p.ipc], env)
    await sleep(1000)
    const dx2 = await bench.run(example(bench, 'dataexchange'), ['-socket', ref.socket, '-mode', 'client', '-target', p.pt.address, '-msg', 'dx to pilot-tun'], { HOME: ref.home }, 20_000)
    bench.transcript.push(`$ dataexchange -socket <reference> -mode client -target ${p.pt.address} -msg "dx to pilot-tun" → exit ${dx2.code}: ${(dx2.stdout + dx2.stderr).trim().slice(0, 400)}`)
    assert.match(dx2.stdout + dx2.stderr, /response: ack: received TEXT \(15 bytes\)/)
    await waitFor('the message at the pilot-tun dataexchange server', async () => bench.logs().includes('text: dx to pilot-tun'), 10_000)
    for (const line of bench.logs().split('\n')) if (/^---|^\d{4}\/\d\d\/\d\d |^\[/.test(line)) bench.transcript.push(`  | ${line}`)
  })
})
