// Networks end to end in one process (issue 13): a real registry, three
// daemons over loopback UDP, no pairwise trust anywhere. Members reach each
// other on the allowed ports of their network and nowhere else; a non-member
// is refused at once; a policy change reaches a member whose view is stale;
// leaving ends the flows; status shows the network address; the audit chain
// verifies. (netns-tests/networks.test.ts does the same through pilot0 with
// curl, behind NATs.)
import { after, test } from 'node:test'
import assert from 'node:assert/strict'
import type { Daemon } from '../../src/daemon/daemon.js'
import type { PilotStream } from '../../src/daemon/pilot-stream.js'
import { World, activeResources } from './world.js'
import { waitFor } from './helpers.js'

/** Each stream on `port` of `d` answers `name:` + what it read, then ends. */
function serve(d: Daemon, port: number, name: string): void {
  d.listenStreams(port, (s: PilotStream) => {
    const got: Buffer[] = []
    s.on('error', () => {})
    s.on('data', (c: Buffer) => got.push(c))
    s.on('end', () => s.end(`${name}:${Buffer.concat(got).toString()}`))
  })
}

async function ask(from: Daemon, to: Daemon, network: number, port: number, text: string): Promise<string> {
  const s = await from.openStream({ network, node: to.nodeId }, port)
  const got: Buffer[] = []
  s.on('data', (c: Buffer) => got.push(c))
  const done = new Promise<void>((resolve, reject) => {
    s.once('end', () => resolve())
    s.once('error', reject)
  })
  s.end(text)
  await done
  return Buffer.concat(got).toString()
}

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p
    return 'no error'
  } catch (err) {
    return (err as { code?: string }).code ?? String(err)
  }
}

test('members reach each other on allowed ports without trust; non-members and closed ports are refused at once; leave ends flows', async () => {
  const w = await World.create({ timing: { heartbeatMs: 60_000 } })
  try {
    // A long refresh interval: b's and c's views change only when they ask.
    const opts = { networkRefreshMs: 600_000 }
    const a = await w.daemon('a', { hostname: 'alpha', ...opts })
    const b = await w.daemon('b', { hostname: 'bravo', ...opts })
    const c = await w.daemon('c', { hostname: 'charlie', ...opts })
    for (const [d, n] of [[a, 'a'], [b, 'b'], [c, 'c']] as const) {
      serve(d, 80, n)
      serve(d, 8080, n)
    }
    const lab = await a.networkOps.create({ name: 'lab', join_rule: 'token', token: 'open sesame', allowed_ports: [80] })
    const id = lab.network_id
    assert.equal(await codeOf(b.networkOps.join({ network: 'lab', token: 'wrong' })), 'PT_NETWORK_BAD_TOKEN')
    assert.deepEqual(await b.networkOps.join({ network: 'lab', token: 'open sesame' }), { network_id: id, address: `${id}:${id.toString(16).toUpperCase().padStart(4, '0')}.0000.${b.nodeId.toString(16).toUpperCase().padStart(4, '0')}` })
    await a.networks.refresh(id)

    // Members, no trust: port 80 in the network works both ways.
    assert.equal(await ask(b, a, id, 80, 'hi'), 'a:hi')
    assert.equal(await ask(a, b, id, 80, 'yo'), 'b:yo')
    assert.equal((await a.trustList()).trusted.length, 0, 'no pairwise trust was made')
    // The backbone is untouched: without trust, port 80 on network 0 is refused.
    assert.equal(await codeOf(ask(b, a, 0, 80, 'x')), 'PT_TRUST_REQUIRED')
    // A port the policy closes: refused by our own view, before anything is sent.
    let t0 = performance.now()
    assert.equal(await codeOf(ask(b, a, id, 8080, 'x')), 'PT_NETWORK_REFUSED')
    assert.ok(performance.now() - t0 < 2_000, 'at once')
    // c is no member: its own daemon refuses; a refuses c's SYN if it came anyway.
    t0 = performance.now()
    assert.equal(await codeOf(ask(c, a, id, 80, 'x')), 'PT_NETWORK_REFUSED')
    assert.ok(performance.now() - t0 < 2_000, 'at once')

    // a opens 8080; b's view is stale (no refresh for 10 minutes) but its first dial refreshes.
    await a.networkOps.policy({ network: 'lab', allowed_ports: [80, 8080] })
    // (Re-asks are at most one a second per network, and b's refusal above made one.)
    await new Promise((r) => setTimeout(r, 1_100))
    assert.equal(await ask(b, a, id, 8080, 'late'), 'a:late')

    // Datagrams follow the same rules: to an allowed port, and a reply from it; a closed port never arrives.
    const got: string[] = []
    a.onDatagram((d) => got.push(`${d.from.network}:${d.toPort}:${Buffer.from(d.data).toString()}`))
    b.sendDatagram({ network: id, node: a.nodeId }, 80, Buffer.from('to 80'))
    assert.throws(() => b.sendDatagram({ network: id, node: a.nodeId }, 53, Buffer.from('to 53')), { code: 'PT_NETWORK_REFUSED' })
    await waitFor(() => got.length === 1, 'the datagram to port 80')
    assert.deepEqual(got, [`${id}:80:to 80`])

    // status shows where b is in the network.
    const st = await b.status()
    assert.deepEqual(st.networks, [{ id, name: 'lab', role: 'member', address: `${id}:${id.toString(16).toUpperCase().padStart(4, '0')}.0000.${b.nodeId.toString(16).toUpperCase().padStart(4, '0')}`, ipv6: `fd50:494c:4f54:${id.toString(16)}::${b.nodeId.toString(16)}`, allowed_ports: [80, 8080], members: 2 }])

    // An open flow, then b leaves: the flow ends, and b can no longer reach a in the network.
    const s = await b.openStream({ network: id, node: a.nodeId }, 80)
    const ended = new Promise<string>((resolve) => {
      s.once('error', (e) => resolve((e as { code?: string }).code ?? 'error'))
      s.once('close', () => resolve('closed'))
    })
    await b.networkOps.leave({ network: 'lab' })
    assert.match(await ended, /PT_SESSION_ABORTED|closed/)
    assert.ok(b.stats().networks.paths.flowsEnded >= 1)
    assert.deepEqual((await b.status()).networks, [])
    assert.equal(await codeOf(ask(b, a, id, 80, 'x')), 'PT_NETWORK_REFUSED')
    // a still lists b until it refreshes; b's daemon refuses a's SYN at once (RST), and a's view catches up.
    t0 = performance.now()
    assert.equal(await codeOf(ask(a, b, id, 80, 'x')), 'PT_NETWORK_REFUSED')
    assert.ok(performance.now() - t0 < 2_000, 'at once')
    assert.ok(b.stats().networks.refused.notJoined >= 1)
    assert.equal((await b.status()).network_refusals!.not_joined, b.stats().networks.refused.notJoined, 'status --json shows the counters')

    // The audit chain of lab: every step, signed, intact.
    const entries = (await a.networkOps.auditList({ network: 'lab' })).entries as Array<{ action: string; actor: number; subject: number }>
    assert.deepEqual(
      entries.map((e) => [e.action, e.actor, e.subject]),
      [
        ['create', a.nodeId, 0],
        ['join', b.nodeId, b.nodeId],
        ['policy', a.nodeId, 0],
        ['leave', b.nodeId, b.nodeId],
      ],
    )
    assert.equal((await a.networkOps.auditVerify({ network: 'lab' })).ok, true)
  } finally {
    await w.close()
  }
})

const baseline = activeResources().length
after(async () => {
  await waitFor(() => activeResources().length <= baseline, `resources released (${activeResources().join(', ')})`)
})
