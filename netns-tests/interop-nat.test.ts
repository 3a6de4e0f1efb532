/**
 * Interop with the Go reference across NATs in network namespaces (issue 11):
 *
 *   ptintrv   198.18.0.2  pilot-tun rendezvous (:9000/:9001) and the reference's (:9100/:9101)
 *   ptintpub  public      reference daemon, -public
 *   ptintprc  port-restricted cone NAT: pilot-tun node (pilot-agent.ts)
 *   ptintsa   symmetric NAT: reference daemons (one per rendezvous)
 *   ptintsb   symmetric NAT: pilot-tun nodes (one per rendezvous)
 *
 * 1. Reference (public) ↔ pilot-tun behind the port-restricted NAT, on
 *    pilot-tun's rendezvous: trust over port 444 both ways (pilot-tun asks,
 *    the reference approves; then revoke, a reference request that pilot-tun
 *    rejects, and a pilot-tun request the reference rejects); 50 MB through
 *    the reference's echo with SHA-256 equal both ways, 50 MB on a stream the
 *    reference opens (its `pilotctl gateway`, fed over TCP) into a hashing
 *    sink of ours, and 50 MB the reference sends through our echo
 *    (`pilotctl bench`); `--kdf auto` learns the reference's legacy KDF.
 * 2. Symmetric ↔ symmetric, so only the beacon relay works: one pair on
 *    pilot-tun's rendezvous and beacon, one on the reference's. Trust goes
 *    through the registry relay (neither can resolve the other); pings,
 *    an echo with SHA-256 and `pilotctl bench` both ways over the relay.
 *
 * Namespaces are ptb-<id>-ptint*; everything is removed in `finally`.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Topology, testbedUnavailable, type TopologySpec } from '../src/testbed/topology.js'
import { waitUntil } from '../src/testbed/ns-process.js'
import type { PeerStatus, TrustList } from '../src/daemon/api.js'
import { referenceLookup } from './helpers/reference-bench.js'
import { ReferenceNet, type NsReferenceNode, type PilotAgent } from './helpers/reference-net.js'

const skip = referenceLookup.reason ?? (await testbedUnavailable()) ?? false

const SPEC: TopologySpec = {
  rendezvous: 'ptintrv',
  nodes: [
    { name: 'ptintpub', kind: 'public' },
    { name: 'ptintprc', kind: 'nat', nat: 'port-restricted' },
    { name: 'ptintsa', kind: 'nat', nat: 'symmetric' },
    { name: 'ptintsb', kind: 'nat', nat: 'symmetric' },
  ],
}

const MB50 = 50 * 1024 * 1024

interface RefTrust {
  trusted: { node_id: number }[] | null
}
interface RefPending {
  pending: { node_id: number }[] | null
}

async function refTrusts(ref: NsReferenceNode, node: number): Promise<boolean> {
  return ((await ref.ctl(['trust'])).json as RefTrust | null)?.trusted?.some((x) => x.node_id === node) ?? false
}

async function refHasPending(ref: NsReferenceNode, node: number): Promise<boolean> {
  return ((await ref.ctl(['pending'])).json as RefPending | null)?.pending?.some((x) => x.node_id === node) ?? false
}

/** pilot-tun asks, the reference approves; both end up trusting each other. */
async function ptAsksRefApproves(pt: PilotAgent, ref: NsReferenceNode, timeoutMs = 20_000): Promise<void> {
  await pt.call('trust-request', { target: ref.address, reason: 'interop behind NATs' })
  await waitUntil(`${pt.name}'s request at ${ref.name}`, () => refHasPending(ref, pt.nodeId), Boolean, { timeoutMs, intervalMs: 300 })
  const ok = await ref.ctl(['approve', String(pt.nodeId)])
  assert.equal(ok.code, 0, ok.stdout + ok.stderr)
  await waitUntil(`${pt.name} to trust ${ref.name}`, () => pt.call<TrustList>('trust-list'), (l) => l.trusted.some((x) => x.node_id === ref.nodeId), { timeoutMs, intervalMs: 300 })
}

async function peerOf(pt: PilotAgent, node: number): Promise<PeerStatus | undefined> {
  return (await pt.call<PeerStatus[]>('peers')).find((p) => p.node_id === node)
}

interface EchoResult {
  bytes: number
  ms: number
  sent: string
  back: string
}

interface SinkRecord {
  node: number
  bytes: number
  sha: string
  ms: number
}

interface BenchJson {
  sent_bytes: number
  recv_bytes: number
  total_duration_ms: number
}

/** `pilotctl bench <pt> <mb>`: the reference sends `mb` MB through our echo and counts them back. */
async function refBench(ref: NsReferenceNode, pt: PilotAgent, mb: number): Promise<BenchJson> {
  const r = await ref.ctl(['bench', pt.address, String(mb), '--timeout', '90s'], 100_000)
  assert.equal(r.code, 0, r.stdout + r.stderr)
  const b = r.json as BenchJson
  assert.equal(b.sent_bytes, mb * 1024 * 1024)
  assert.equal(b.recv_bytes, b.sent_bytes)
  return b
}

async function withNet(t: { diagnostic(m: string): void }, body: (net: ReferenceNet) => Promise<void>): Promise<void> {
  const topo = await Topology.create(SPEC)
  const net = new ReferenceNet(topo, referenceLookup.found!)
  try {
    await body(net)
  } catch (err) {
    ;(err as Error).message += `\n${net.report()}`
    throw err
  } finally {
    for (const line of net.transcript) t.diagnostic(line)
    await net.close()
    await topo.destroy()
  }
}

test('interop behind NATs: the reference (public) and pilot-tun behind a port-restricted NAT: trust both ways, 50 MB each way, kdf auto', { skip, timeout: 150_000 }, async (t) => {
  await withNet(t, async (net) => {
    const rv = await net.pilotTunRendezvous()
    const [ref, pt] = await Promise.all([net.referenceDaemon('ptintpub', 'refpub', rv, 4000, ['-public']), net.agent('ptintprc', 'ptprc', rv, 4000, ['--kdf', 'auto'])])

    // Port 444, pilot-tun → reference: the reference is public, so the request goes direct.
    await ptAsksRefApproves(pt, ref)
    assert.match(ref.log, /handshake request received/, 'the direct request on port 444')
    assert.ok(await refTrusts(ref, pt.nodeId))

    // 50 MB through the reference's echo: both directions of the stream carry every byte.
    const echo = await pt.call<EchoResult>('echo', { node: ref.nodeId, bytes: MB50, timeoutMs: 90_000 }, 100_000)
    t.diagnostic(`pilot-tun → reference echo → pilot-tun: ${echo.bytes} bytes in ${echo.ms} ms`)
    assert.equal(echo.bytes, MB50)
    assert.equal(echo.back, echo.sent)
    // 50 MB on a stream the reference opens: TCP into its gateway, a Pilot stream to our sink.
    await pt.call('sink', { port: 8080 })
    const gatewayIp = await ref.gateway(8080, pt.address)
    const sent = await ref.tcpSend(gatewayIp, 8080, MB50)
    const sunk = await waitUntil('the 50 MB at the pilot-tun sink', () => pt.call<SinkRecord[]>('sinks'), (l) => l.length > 0, { timeoutMs: 60_000, intervalMs: 300 })
    t.diagnostic(`reference gateway → pilot-tun sink: ${sunk[0]!.bytes} bytes in ${sunk[0]!.ms} ms`)
    assert.deepEqual(sunk.map((x) => [x.node, x.bytes, x.sha]), [[ref.nodeId, MB50, sent.sha]])
    // And 50 MB the reference sends through our echo, counted back by the reference.
    const bench = await refBench(ref, pt, 50)
    t.diagnostic(`reference → pilot-tun echo → reference (pilotctl bench): ${bench.sent_bytes} bytes in ${bench.total_duration_ms} ms`)
    assert.doesNotMatch(ref.log, /max retransmits exceeded/)

    // kdf auto learned the reference's variant: the snapshot's legacy SHA-256 KDF.
    const peer = await peerOf(pt, ref.nodeId)
    assert.equal(peer?.kdf, 'legacy')
    assert.equal(peer?.kdf_confirmed, true)
    assert.ok(peer?.path === 'direct' || peer?.path === 'punched', `path ${peer?.path}`)

    // Revoke: pilot-tun withdraws its trust; the reference hears it on port 444.
    await pt.call('trust-revoke', { target: ref.address })
    await waitUntil('the reference to drop pilot-tun', () => refTrusts(ref, pt.nodeId), (v) => !v, { timeoutMs: 15_000, intervalMs: 300 })
    assert.match(ref.log, /trust revoked by peer/)

    // The reference asks, pilot-tun rejects.
    const hs = await ref.ctl(['handshake', pt.address, 'again please'])
    assert.equal(hs.code, 0, hs.stdout + hs.stderr)
    await waitUntil('the reference request at pilot-tun', () => pt.call<TrustList>('trust-list'), (l) => l.pending.some((p) => p.node_id === ref.nodeId), { timeoutMs: 15_000, intervalMs: 300 })
    await pt.call('trust-reject', { target: ref.address, reason: 'not now' })
    await waitUntil('the reference to log the rejection', async () => ref.log, (log) => /handshake rejected by peer|relayed handshake rejection received/.test(log), { timeoutMs: 15_000, intervalMs: 300 })
    assert.equal(await refTrusts(ref, pt.nodeId), false)

    // pilot-tun asks, the reference rejects: our outgoing request goes.
    await pt.call('trust-request', { target: ref.address, reason: 'once more' })
    await waitUntil(`pilot-tun's request at the reference`, () => refHasPending(ref, pt.nodeId), Boolean, { timeoutMs: 15_000, intervalMs: 300 })
    const no = await ref.ctl(['reject', String(pt.nodeId), 'no'])
    assert.equal(no.code, 0, no.stdout + no.stderr)
    await waitUntil('pilot-tun to drop its outgoing request', () => pt.call<TrustList>('trust-list'), (l) => !l.outgoing.some((o) => o.node_id === ref.nodeId), { timeoutMs: 15_000, intervalMs: 300 })
    assert.equal((await pt.call<TrustList>('trust-list')).trusted.some((x) => x.node_id === ref.nodeId), false)
  })
})

test('interop behind NATs: symmetric ↔ symmetric relayed through pilot-tun\'s beacon and through the reference\'s, trust requested over port 444 and the registry relay at once, data both ways', { skip, timeout: 150_000 }, async (t) => {
  await withNet(t, async (net) => {
    const [ours, theirs] = await Promise.all([net.pilotTunRendezvous(), net.referenceRendezvous()])
    const pairs: Array<{ label: string; ref: NsReferenceNode; pt: PilotAgent }> = []
    for (const [label, rv, port] of [['pilot-tun beacon', ours, 4000], ['reference beacon', theirs, 4001]] as const) {
      const [ref, pt] = await Promise.all([
        net.referenceDaemon('ptintsa', `refsym${port}`, rv, port),
        // Default 30 s heartbeat: the reference's approval comes back through the registry, which
        // our daemon polls every 2 s while the request is outstanding.
        net.agent('ptintsb', `ptsym${port}`, rv, port, ['--heartbeat-ms', '30000']),
      ])
      pairs.push({ label, ref, pt })
    }
    await Promise.all(
      pairs.map(async ({ label, ref, pt }) => {
        const started = Date.now()
        await ptAsksRefApproves(pt, ref, 25_000)
        t.diagnostic(`${label}: trust took ${Date.now() - started} ms`)
        // We send the request both ways at once (port 444 through the relayed tunnel, and the
        // registry's request_handshake); whichever the reference sees first creates the pending
        // entry, so either log line proves it arrived.
        assert.match(ref.log, /(relayed )?handshake request received/, `${label}: the request reached the reference`)
        // The registry carried it too (the reference rendezvous logs each relayed request).
        if (label === 'reference beacon') await net.refRendezvous!.waitFor(/handshake request relayed/, 5_000)
      }),
    )
    for (const { label, ref, pt } of pairs) {
      const ping = await pt.call<{ path: string; rtt_ms: number }>('ping', { target: ref.address })
      assert.equal(ping.path, 'relay', `${label}: pilot-tun → reference goes through the beacon`)
      const echo = await pt.call<EchoResult>('echo', { node: ref.nodeId, bytes: 1 << 20, timeoutMs: 30_000 }, 40_000)
      assert.equal(echo.back, echo.sent, `${label}: 1 MiB through the reference's echo`)
      t.diagnostic(`${label}: 1 MiB echo in ${echo.ms} ms, ping ${ping.rtt_ms} ms`)
      const r = await ref.ctl(['ping', pt.address, '--count', '2', '--timeout', '20s'], 40_000)
      assert.equal(r.code, 0, r.stdout + r.stderr)
      const results = (r.json as { results?: { rtt_ms: number; error?: string }[] } | null)?.results ?? []
      assert.ok(results.length === 2 && results.every((x) => x.error === undefined), `${label}: reference → pilot-tun ping: ${r.stdout}`)
      await refBench(ref, pt, 1)
      assert.equal((await peerOf(pt, ref.nodeId))?.path, 'relay')
      // The reference's side of the tunnel is relayed too (its endpoint field names the
      // beacon or the peer's registered endpoint, depending on what Go saw first).
      assert.match(ref.log, new RegExp(`encrypted tunnel established.*peer_node_id=${pt.nodeId} endpoint=\\S+ relay=true`))
    }
  })
})
