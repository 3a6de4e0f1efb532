// Bulk TCP through the overlay under random packet loss on the hub (issue 6):
// 50 MB from b's blast server to a client in a, over the mapped IPv6
// addresses and pilot0, at 1 % and 5 % loss, byte-exact (SHA-256 of the
// seeded stream); the goodput at 1 % is printed. Root only; skips with the
// reason otherwise, and when `pilot-tun up` cannot bring the TUN up yet.
//
//   rendezvous 198.18.0.2   (pilot-tun rendezvous: registry :9000/tcp, beacon :9001/udp)
//        │
//   ┌────┴──────── ptb-<id>-hub "internet" 198.18.0.0/15 ─────────────────────┐
//   │   table ip ptb_impair: drop N % of forwarded packets (each crossing)    │
//   └────┬─────────────────────────────────────────────┬──────────────────────┘
//        │ 198.18.1.2                                  │ 198.18.2.2
//   a  pilot-tun up --auto-accept                 b  pilot-tun up --auto-accept
//      pilot0 fd50:494c:4f54::<a>                    pilot0 fd50:494c:4f54::<b>
//      blast.js client  ── TCP over pilot0 ──▶       blast.js serve [::]:7001
//        (kernel TCP ends at each pilot0; the daemons carry it as a Pilot
//         stream in PILS frames over UDP :4000 through the lossy hub)
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { testbedUnavailable } from '../src/testbed/topology.js'
import { overlayPair } from './helpers/overlay-pair.js'
import type { BlastResult } from '../src/testbed/blast.js'

const BYTES = 50 * 1024 * 1024
const skip = (await testbedUnavailable()) ?? false

describe('overlay TCP under hub loss (50 MB, byte-exact)', { skip, timeout: 240_000 }, () => {
  const pair = overlayPair()

  const blast = async (lossPct: number, seed: number, timeoutMs = 100_000): Promise<BlastResult> => {
    await pair.topo.setLoss(lossPct)
    const r = await pair.ov.traffic<BlastResult>(
      'a',
      ['blast', '--host', pair.b.ipv6, '--port', '7001', '--bytes', String(BYTES), '--seed', String(seed), '--timeout', String(timeoutMs)],
      timeoutMs + 10_000,
    )
    await pair.topo.setLoss(0)
    const line = `${lossPct} % loss: ${(r.bytes / 1048576).toFixed(1)} MiB in ${(r.ms / 1000).toFixed(2)} s = ${r.mb_per_s.toFixed(2)} MB/s, byte-exact: ${r.ok}`
    console.log(`# loss test: ${line}`)
    assert.ok(r.ok, `${line}\n${JSON.stringify(r)}\n${pair.ov.logs()}`)
    assert.equal(r.bytes, BYTES)
    assert.equal(r.sha256, r.expected_sha256)
    return r
  }

  it('0 % (baseline)', async (t) => {
    if (pair.notReady !== null) return t.skip(pair.notReady)
    const r = await blast(0, 10)
    t.diagnostic(`goodput at 0 % loss: ${r.mb_per_s.toFixed(2)} MB/s`)
  })

  it('1 % random loss: byte-exact, goodput reported', async (t) => {
    if (pair.notReady !== null) return t.skip(pair.notReady)
    const r = await blast(1, 11)
    t.diagnostic(`goodput at 1 % loss: ${r.mb_per_s.toFixed(2)} MB/s (${(r.ms / 1000).toFixed(2)} s for 50 MiB)`)
  })

  // 5 % per hub crossing: RACK loss detection, tail loss probes and PRR keep
  // the stream moving (~6.5 MB/s here); before them it crawled at ~0.3 MB/s.
  it('5 % random loss: byte-exact', async (t) => {
    if (pair.notReady !== null) return t.skip(pair.notReady)
    const r = await blast(5, 12)
    t.diagnostic(`goodput at 5 % loss: ${r.mb_per_s.toFixed(2)} MB/s`)
  })

  it('the daemons survived and the tunnel is still up', async (t) => {
    if (pair.notReady !== null) return t.skip(pair.notReady)
    for (const n of ['a', 'b']) assert.ok(pair.ov.daemons.get(n)!.running, `daemon ${n} exited:\n${pair.ov.logs()}`)
    const s = await pair.ov.status('a')
    assert.ok(s.peers >= 1)
  })
})
