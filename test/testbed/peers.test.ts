/**
 * The benchmark's side-by-side pieces that need no root: choosing the peers
 * (PILOT_BENCH_PEERS), finding their programs, Nebula's generated config, the
 * parallel-flows tool on loopback, and the ratios and issue-12 verdicts of
 * bench/peer-compare.ts.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parsePeersKnob, findBinary } from '../../src/testbed/peers/index.js'
import { PeerUnavailable, requireBinaries } from '../../src/testbed/peers/common.js'
import { nebulaConfig } from '../../src/testbed/peers/nebula.js'
import { parallelBlast, serve, type ParallelResult } from '../../src/testbed/blast.js'
import { betterPeers, issue12Verdicts, ratiosVsBetterPeer, sideBySideRows, type PathFigures } from '../../bench/peer-compare.js'

describe('PILOT_BENCH_PEERS', () => {
  it('defaults to every peer; 0 / none turn them off; a list picks them', () => {
    assert.deepEqual(parsePeersKnob(undefined), ['wireguard-go', 'nebula'])
    assert.deepEqual(parsePeersKnob('all'), ['wireguard-go', 'nebula'])
    assert.deepEqual(parsePeersKnob('0'), [])
    assert.deepEqual(parsePeersKnob('none'), [])
    assert.deepEqual(parsePeersKnob('nebula'), ['nebula'])
    assert.deepEqual(parsePeersKnob(' wg , nebula,wireguard-go'), ['wireguard-go', 'nebula'])
  })
  it('rejects an unknown name with the ones it knows', () => {
    assert.throws(() => parsePeersKnob('tailscale'), /unknown peer "tailscale".*wireguard-go, nebula/)
  })
})

describe('finding the peer programs', () => {
  it('finds an executable on PATH and not a plain file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'peers-test-'))
    try {
      writeFileSync(join(dir, 'tool-x'), '#!/bin/sh\n')
      chmodSync(join(dir, 'tool-x'), 0o755)
      writeFileSync(join(dir, 'tool-y'), 'not executable')
      chmodSync(join(dir, 'tool-y'), 0o644)
      assert.equal(findBinary('tool-x', `/nonexistent:${dir}`), join(dir, 'tool-x'))
      if (process.getuid?.() !== 0) assert.equal(findBinary('tool-y', dir), null) // root may execute anything with access()
      assert.equal(findBinary('tool-z', dir), null)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
  it('names the missing program and its Debian package', () => {
    assert.throws(
      () => requireBinaries('nebula', { 'no-such-program-b12': 'nebula' }),
      (err: unknown) => err instanceof PeerUnavailable && /`no-such-program-b12` not installed \(apt-get install nebula\)/.test(err.message),
    )
    assert.doesNotThrow(() => requireBinaries('nebula', { sh: 'dash' }))
  })
})

describe('nebula config', () => {
  it('lighthouse and static host map point at the other end; firewall open both ways', () => {
    const c = nebulaConfig({ dir: '/t', name: 'client', dev: 'ptb-abc123-nb0', mtu: 1300, port: 4242, lighthouse: false, peerAddress: '10.99.13.2', peerUnderlay: '198.18.2.2' })
    assert.deepEqual(c.static_host_map, { '10.99.13.2': ['198.18.2.2:4242'] })
    assert.deepEqual(c.lighthouse, { am_lighthouse: false, interval: 60, hosts: ['10.99.13.2'] })
    assert.deepEqual(c.tun, { disabled: false, dev: 'ptb-abc123-nb0', mtu: 1300 })
    assert.deepEqual(c.pki, { ca: '/t/ca.crt', cert: '/t/client.crt', key: '/t/client.key' })
    const fw = c.firewall as { inbound: unknown[]; outbound: unknown[] }
    assert.deepEqual(fw.inbound, [{ port: 'any', proto: 'any', host: 'any' }])
    assert.deepEqual(fw.outbound, fw.inbound)
    const lh = nebulaConfig({ dir: '/t', name: 'server', dev: 'x', mtu: 1300, port: 4242, lighthouse: true, peerAddress: '10.99.13.1', peerUnderlay: '198.18.1.2' })
    assert.deepEqual(lh.lighthouse, { am_lighthouse: true, interval: 60, hosts: [] })
  })
})

describe('parallel blast', () => {
  it('runs the flows at once, byte-exact, and reports aggregate and fairness', async () => {
    const srv = await serve({ host: '127.0.0.1', blastPort: 0, echoPort: 0, backlog: 64 })
    try {
      const r = await parallelBlast('127.0.0.1', srv.blastPort, 4, 512 * 1024, 7n, 20_000)
      assert.equal(r.ok, true, r.errors.join('; '))
      assert.equal(r.flows, 4)
      assert.equal(r.bytes, 4 * 512 * 1024)
      assert.equal(r.per_flow_mb_s.length, 4)
      assert.ok(r.min_over_max > 0 && r.min_over_max <= 1)
      assert.ok(r.jain > 0.25 && r.jain <= 1)
      assert.ok(r.mb_per_s > 0)
      await assert.rejects(parallelBlast('127.0.0.1', srv.blastPort, 0, 1024, 1n, 1_000), /--flows must be/)
    } finally {
      await srv.close()
    }
  })
})

function par(mb: number, minOverMax: number, ok = true): ParallelResult {
  return { ok, flows: 8, bytes: 1, ms: 1, mb_per_s: mb, per_flow_mb_s: [], min_over_max: minOverMax, jain: 1, errors: [] }
}

function fig(goodput: number, rtt: number, extra: Partial<PathFigures> = {}): PathFigures {
  return {
    what: 'x',
    goodput_mb_s: goodput,
    goodput_runs_mb_s: [goodput],
    reassembled: 0,
    parallel: par(goodput, 0.9),
    rtt: { sent: 200, received: 200, median_ms: rtt, p99_ms: rtt * 2, min_ms: rtt / 2 },
    tcp_echo_ms: rtt * 3,
    flows_mb_s: 10,
    flows_completed: 1000,
    rss_idle: null,
    ...extra,
  }
}

describe('side by side: ratios against the better peer', () => {
  const paths = { direct: fig(500, 0.05), 'wireguard-go': fig(60, 0.5), nebula: fig(70, 0.4, { parallel: par(50, 0.9) }), 'pilot-tun': fig(35, 1.4) }
  it('picks the better peer per figure (highest goodput, lowest RTT)', () => {
    assert.deepEqual(betterPeers(paths), { goodput: 'nebula', parallel: 'wireguard-go', rtt: 'nebula' })
    assert.deepEqual(betterPeers({ direct: fig(1, 1) }), { goodput: null, parallel: null, rtt: null })
  })
  it('divides every row by the better peer', () => {
    const r = ratiosVsBetterPeer(paths)
    assert.equal(r['pilot-tun']!.goodput, 0.5)
    assert.equal(r['pilot-tun']!.rtt_median, 3.5)
    assert.equal(r.nebula!.goodput, 1)
    assert.equal(r['pilot-tun']!.parallel, round(35 / 60))
    const rows = sideBySideRows(paths, 256, 2, 8, 1000)
    assert.deepEqual(rows.map((x) => x[0]), ['path', 'direct', 'wireguard-go', 'nebula', 'pilot-tun'])
    assert.equal(rows[4]![2], 'x0.50')
  })
  it('judges issue 12: goodput >= 1.5x the better peer without fragments, RTT below both', () => {
    const base = { setup_new_median_ms: 41, rss_per_flow_bytes: { a: 150 * 1024, b: 140 * 1024 }, rss_idle: { a: 100, b: 100 }, rss_after: { a: 250, b: 110 } }
    const today = issue12Verdicts({ ...base, paths })
    assert.equal(today.goodput!.met, false)
    assert.equal(today.rtt!.met, false)
    assert.equal(today.setup_new!.met, false)
    assert.equal(today.rss_per_flow!.met, false)
    assert.equal(today.rss_after!.met, false)
    assert.equal(today.loss_1pct!.met, null)
    const fast = { ...paths, 'pilot-tun': fig(110, 0.3, { parallel: par(120, 0.85) }) }
    const v = issue12Verdicts({ ...base, paths: fast, setup_new_median_ms: 9, rss_per_flow_bytes: { a: 30_000, b: 40_000 }, rss_after: { a: 119, b: 100 } })
    assert.equal(v.goodput!.met, true)
    assert.equal(v.rtt!.met, true)
    assert.equal(v.parallel!.met, true)
    assert.equal(v.setup_new!.met, true)
    assert.equal(v.rss_per_flow!.met, true)
    assert.equal(v.rss_after!.met, true)
    // Fragments on the wire, an unfair split or a collapse under 8 flows miss.
    assert.equal(issue12Verdicts({ ...base, paths: { ...fast, 'pilot-tun': fig(110, 0.3, { reassembled: 12 }) } }).goodput!.met, false)
    assert.equal(issue12Verdicts({ ...base, paths: { ...fast, 'pilot-tun': fig(110, 0.3, { parallel: par(120, 0.5) }) } }).parallel!.met, false)
    assert.equal(issue12Verdicts({ ...base, paths: { ...fast, 'pilot-tun': fig(110, 0.3, { parallel: par(90, 0.9) }) } }).parallel!.met, false)
    // 1 % loss: met at >= 40 % of the lossless single flow, missed below.
    assert.equal(issue12Verdicts({ ...base, paths: { ...fast, 'pilot-tun': fig(110, 0.3, { loss_1pct_mb_s: 44 }) } }).loss_1pct!.met, true)
    assert.equal(issue12Verdicts({ ...base, paths: { ...fast, 'pilot-tun': fig(110, 0.3, { loss_1pct_mb_s: 43 }) } }).loss_1pct!.met, false)
    // Without the peers there is nothing to compare with.
    const alone = issue12Verdicts({ ...base, paths: { direct: paths.direct, 'pilot-tun': paths['pilot-tun'] } })
    assert.equal(alone.goodput!.met, null)
    assert.equal(alone.rtt!.met, null)
  })
})

function round(x: number): number {
  return Math.round(x * 1000) / 1000
}
