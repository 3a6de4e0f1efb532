// Interop of the data services with the Go reference, both directions, all
// on loopback (netns-tests/helpers/reference-bench.ts): data exchange (port
// 1001: send-message, send-file, inbox, received) and the event stream (port
// 1002: publish, subscribe) between a `pilot-tun up --no-tun` node and a
// reference daemon on a pilot-tun rendezvous. Skips, saying why, without the
// reference binaries (test/util/reference.ts).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { Bench, ReferenceNode, referenceLookup, sleep, waitFor, withBench, sha256, type RunResult } from './helpers/reference-bench.js'

const skip = referenceLookup.reason ?? false

interface PtNode {
  control: string
  nodeId: number
  address: string
}

/** The reference asks for trust, pilot-tun approves; both sides then trust each other. */
async function trustEachOther(bench: Bench, ref: ReferenceNode, pt: PtNode): Promise<void> {
  const hs = await ref.ctl(['handshake', pt.address, 'interop services'])
  assert.equal(hs.code, 0, hs.stdout + hs.stderr)
  await waitFor('the reference request at pilot-tun', async () => {
    const r = await bench.pilotTun(['trust', 'list', '--json', '--control-socket', pt.control])
    return (JSON.parse(r.stdout) as { pending: { node_id: number }[] }).pending.some((p) => p.node_id === ref.nodeId)
  })
  const ok = await bench.pilotTun(['trust', 'approve', ref.address, '--control-socket', pt.control])
  assert.equal(ok.code, 0, ok.stdout + ok.stderr)
  await waitFor('the reference to trust pilot-tun', async () => {
    const r = await ref.ctl(['trust'])
    return ((r.json as { trusted: { node_id: number }[] | null } | null)?.trusted ?? []).some((x) => x.node_id === pt.nodeId)
  })
}

/** Runs `pilot-tun <args> --json --control-socket …` and records it in the transcript. */
async function ptJson(bench: Bench, pt: PtNode, args: string[], timeoutMs?: number): Promise<RunResult & { json: any }> {
  const r = await bench.pilotTun([...args, '--json', '--control-socket', pt.control], timeoutMs)
  bench.transcript.push(`$ pilot-tun ${args.join(' ')} --json  → exit ${r.code}: ${(r.stdout + r.stderr).trim().slice(0, 300)}`)
  let json: unknown = null
  try {
    json = JSON.parse(r.stdout)
  } catch {
    json = null
  }
  return { ...r, json }
}

async function setUp(bench: Bench, ptArgs: string[] = []): Promise<{ ref: ReferenceNode; pt: PtNode }> {
  const rv = await bench.pilotTunRendezvous()
  const [ref, pt] = await Promise.all([bench.referenceDaemon('refnode', rv), bench.pilotTunUp('ptnode', rv, ptArgs)])
  await trustEachOther(bench, ref, pt)
  return { ref, pt }
}

test('interop: data exchange both ways: reference send-message/send-file → pilot-tun inbox/received, pilot-tun → reference inbox/received', { skip, timeout: 60_000 }, async (t) => {
  await withBench(t, async (bench) => {
    const { ref, pt } = await setUp(bench)

    // Reference → pilot-tun: the ACK text is ours, exactly as the reference writes it.
    const text = `hello from the reference ${randomBytes(4).toString('hex')}`
    const m1 = await ref.ctl(['send-message', pt.address, '--data', text], 20_000)
    assert.equal(m1.code, 0, m1.stdout + m1.stderr)
    assert.equal((m1.json as { ack: string }).ack, `ACK TEXT ${Buffer.byteLength(text)} bytes`)
    const m2 = await ref.ctl(['send-message', 'ptnode', '--data', '{"n":1}', '--type', 'json'], 20_000)
    assert.equal(m2.code, 0, m2.stdout + m2.stderr)
    assert.equal((m2.json as { ack: string }).ack, 'ACK JSON 7 bytes')
    const file = randomBytes(300_000)
    const filePath = join(bench.dir, 'from-ref.bin')
    writeFileSync(filePath, file)
    const f1 = await ref.ctl(['send-file', pt.address, filePath], 30_000)
    assert.equal(f1.code, 0, f1.stdout + f1.stderr)
    assert.equal((f1.json as { ack: string }).ack, `ACK FILE ${file.length} bytes`)

    const inbox = await ptJson(bench, pt, ['inbox'])
    assert.equal(inbox.code, 0, inbox.stdout + inbox.stderr)
    assert.equal(inbox.json.total, 2)
    const byType = new Map((inbox.json.messages as { type: string; data: string; from: string; bytes: number }[]).map((m) => [m.type, m]))
    assert.equal(byType.get('TEXT')?.data, text)
    assert.equal(byType.get('TEXT')?.from, ref.address)
    assert.equal(byType.get('JSON')?.data, '{"n":1}')
    const received = await ptJson(bench, pt, ['received'])
    assert.equal(received.code, 0, received.stdout + received.stderr)
    assert.equal(received.json.total, 1)
    const got = received.json.files[0] as { name: string; bytes: number; path: string }
    assert.match(got.name, /^from-ref-\d{8}-\d{6}\.\d{3}\.bin$/)
    assert.equal(got.bytes, file.length)
    assert.equal(sha256(readFileSync(got.path)), sha256(file))

    // pilot-tun → reference, checked with pilotctl inbox/received.
    const ours = `hello from pilot-tun ${randomBytes(4).toString('hex')}`
    const s1 = await ptJson(bench, pt, ['send-message', ref.address, '--data', ours], 30_000)
    assert.equal(s1.code, 0, s1.stdout + s1.stderr)
    assert.equal(s1.json.ack, `ACK TEXT ${Buffer.byteLength(ours)} bytes`)
    const s2 = await ptJson(bench, pt, ['send-message', 'refnode', '--data', 'raw bytes', '--type', 'binary'], 30_000)
    assert.equal(s2.json.ack, 'ACK BINARY 9 bytes', s2.stdout + s2.stderr)
    const ourFile = randomBytes(200_000)
    const ourPath = join(bench.dir, 'from-pt.dat')
    writeFileSync(ourPath, ourFile)
    const s3 = await ptJson(bench, pt, ['send-file', ref.address, ourPath], 30_000)
    assert.equal(s3.code, 0, s3.stdout + s3.stderr)
    assert.equal(s3.json.ack, `ACK FILE ${ourFile.length} bytes`)
    assert.equal(s3.json.filename, 'from-pt.dat')

    const refInbox = await ref.ctl(['inbox'])
    const msgs = (refInbox.json as { messages: { type: string; data: string; from: string }[] | null }).messages ?? []
    assert.ok(msgs.some((m) => m.type === 'TEXT' && m.data === ours && m.from === pt.address), refInbox.stdout)
    assert.ok(msgs.some((m) => m.type === 'BINARY' && m.data === 'raw bytes'), refInbox.stdout)
    const refReceived = await ref.ctl(['received'])
    const files = (refReceived.json as { files: { name: string; bytes: number; path: string }[] | null }).files ?? []
    assert.equal(files.length, 1, refReceived.stdout)
    assert.equal(files[0]!.bytes, ourFile.length)
    assert.equal(sha256(readFileSync(files[0]!.path)), sha256(ourFile))

    // The reference's pilotctl reads our inbox and received files from disk as its own
    // (it reads ~/.pilot/inbox and ~/.pilot/received; our state dir has the same layout).
    const view = join(bench.dir, 'pilotctl-view')
    mkdirSync(view)
    symlinkSync(join(bench.dir, 'ptnode'), join(view, '.pilot'))
    const viaRef = await bench.run(bench.ref.bin('pilotctl'), ['--json', 'inbox'], { HOME: view, PILOT_SOCKET: join(view, 'none.sock') })
    bench.transcript.push(`$ HOME=<view of our state dir> pilotctl --json inbox → exit ${viaRef.code}: ${viaRef.stdout.trim().slice(0, 400)}`)
    const refView = (JSON.parse(viaRef.stdout) as { data: { messages: { type: string; data: string; from: string }[]; total: number } }).data
    assert.equal(refView.total, 2)
    assert.ok(refView.messages.some((m) => m.type === 'TEXT' && m.data === text && m.from === ref.address))
    const filesViaRef = await bench.run(bench.ref.bin('pilotctl'), ['--json', 'received'], { HOME: view, PILOT_SOCKET: join(view, 'none.sock') })
    bench.transcript.push(`$ HOME=<view of our state dir> pilotctl --json received → exit ${filesViaRef.code}: ${filesViaRef.stdout.trim().slice(0, 400)}`)
    assert.equal((JSON.parse(filesViaRef.stdout) as { data: { files: { name: string; bytes: number }[] } }).data.files[0]?.bytes, file.length)

    // Clearing ours.
    const cleared = await ptJson(bench, pt, ['inbox', '--clear'])
    assert.equal(cleared.json.cleared, 2)
    assert.equal((await ptJson(bench, pt, ['inbox'])).json.total, 0)
  })
})

test('interop: event stream both ways: reference subscribers on the pilot-tun broker, pilot-tun subscriber and publisher on the reference broker', { skip, timeout: 60_000 }, async (t) => {
  await withBench(t, async (bench) => {
    const { ref, pt } = await setUp(bench)

    // A reference subscriber on our broker gets our local publication and the reference's own.
    const refSub = ref.ctl(['subscribe', pt.address, 'news', '--count', '2', '--timeout', '20s'], 30_000)
    // A pilot-tun subscriber on its own broker (local) gets the reference's publication.
    const ptLocal = ptJson(bench, pt, ['subscribe', pt.address, '*', '--count', '2', '--timeout', '20s'], 30_000)
    await sleep(2_000) // both subscriptions in place (nothing acknowledges a subscription)
    const p1 = await ptJson(bench, pt, ['publish', pt.address, 'news', '--data', 'from pilot-tun'])
    assert.equal(p1.code, 0, p1.stdout + p1.stderr)
    assert.equal(p1.json.delivered, 2) // the reference's subscription and our own `*`
    const p2 = await ref.ctl(['publish', pt.address, 'news', '--data', 'from the reference'], 20_000)
    assert.equal(p2.code, 0, p2.stdout + p2.stderr)

    const refGot = await refSub
    assert.equal(refGot.code, 0, refGot.stdout + refGot.stderr)
    const refEvents = (refGot.json as { events: { topic: string; data: string }[] }).events
    assert.deepEqual(refEvents.map((e) => e.data).sort(), ['from pilot-tun', 'from the reference'])
    const local = await ptLocal
    assert.equal(local.code, 0, local.stdout + local.stderr)
    const localEvents = local.stdout.trim().split('\n').map((l) => JSON.parse(l) as { topic: string; data: string; bytes: number })
    assert.deepEqual(localEvents.map((e) => e.data).sort(), ['from pilot-tun', 'from the reference'])
    assert.ok(localEvents.every((e) => e.topic === 'news'))

    // pilot-tun subscribes at the reference's broker; pilot-tun publishes there.
    const ptRemote = ptJson(bench, pt, ['subscribe', ref.address, 'alerts', '--count', '1', '--timeout', '20s'], 30_000)
    await sleep(2_000)
    const p3 = await ptJson(bench, pt, ['publish', 'refnode', 'alerts', '--data', 'via the reference broker'])
    assert.equal(p3.code, 0, p3.stdout + p3.stderr)
    const remote = await ptRemote
    assert.equal(remote.code, 0, remote.stdout + remote.stderr)
    assert.deepEqual(JSON.parse(remote.stdout.trim()), { topic: 'alerts', data: 'via the reference broker', bytes: 24 })
  })
})

test('interop: with --no-dataexchange and --no-eventstream the reference cannot reach ports 1001/1002', { skip, timeout: 60_000 }, async (t) => {
  await withBench(t, async (bench) => {
    const { ref, pt } = await setUp(bench, ['--no-dataexchange', '--no-eventstream'])
    const m = await ref.ctl(['send-message', pt.address, '--data', 'x'], 40_000)
    assert.notEqual(m.code, 0, m.stdout)
    const p = await ref.ctl(['publish', pt.address, 'news', '--data', 'x'], 40_000)
    assert.notEqual(p.code, 0, p.stdout)
    // Our own CLI says the service is off, with its code.
    const local = await ptJson(bench, pt, ['publish', pt.address, 'news', '--data', 'x'])
    assert.equal(local.code, 1)
    assert.equal(local.json.error.code, 'PT_SERVICE_DISABLED')
  })
})

test('interop: a reference node pilot-tun does not trust is refused on ports 1001 and 1002 (private by default)', { skip, timeout: 60_000 }, async (t) => {
  await withBench(t, async (bench) => {
    const rv = await bench.pilotTunRendezvous()
    const [ref, pt] = await Promise.all([bench.referenceDaemon('refnode', rv), bench.pilotTunUp('ptnode', rv)])
    const m = await ref.ctl(['send-message', pt.address, '--data', 'let me in'], 40_000)
    assert.notEqual(m.code, 0, m.stdout)
    const p = await ref.ctl(['publish', pt.address, 'news', '--data', 'x'], 40_000)
    assert.notEqual(p.code, 0, p.stdout)
    const inbox = await ptJson(bench, pt, ['inbox'])
    assert.equal(inbox.json.total, 0)
    // The other way the reference (upstream 4c54cc0) accepts a message from a node it does not
    // trust (observed: `ACK TEXT 1 bytes`, the message in its inbox). Recorded, not asserted.
    const s = await ptJson(bench, pt, ['send-message', ref.address, '--data', 'x'], 60_000)
    t.diagnostic(`pilot-tun → untrusted reference send-message: exit ${s.code} ${s.stdout.trim().replace(/\s+/g, ' ')}`)
    if (s.code !== 0) assert.equal(s.json.error.code, 'PT_TRUST_REQUIRED', s.stdout)
  })
})
