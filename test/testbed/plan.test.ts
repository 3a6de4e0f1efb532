/**
 * The test bed's address plan, names and rulesets, without root.
 *
 *   rendezvous 198.18.0.2    a 198.18.1.2           (public)
 *          └──── hub 198.18.k.1 ────┬───────────┐
 *                     b-gw 198.18.2.2    d-gw 198.18.3.2 ...
 *                     b 10.200.2.2       d 10.200.3.2     (behind NAT)
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { impairRuleset, namespaceBatches, natRuleset, planTopology, rootBatch, sysctlArgs, MAX_LINKS, type TopologySpec } from '../../src/testbed/plan.js'
import { idOfName } from '../../src/testbed/owners.js'
import { SPECS } from '../../src/testbed/specs.js'
import { TestbedError } from '../../src/testbed/errors.js'

describe('test bed plan', () => {
  it('lays out the default spec: rendezvous on link 0, a public host, one node per NAT kind', () => {
    const L = planTopology(SPECS.default!, '0a1b2c')
    assert.deepEqual(
      L.nodes.map((n) => [n.name, n.address, n.publicAddress, n.nat, n.router?.namespace ?? null]),
      [
        ['rendezvous', '198.18.0.2', '198.18.0.2', null, null],
        ['a', '198.18.1.2', '198.18.1.2', null, null],
        ['b', '10.200.2.2', '198.18.2.2', 'full-cone', 'ptb-0a1b2c-b-gw'],
        ['c', '10.200.3.2', '198.18.3.2', 'port-restricted', 'ptb-0a1b2c-c-gw'],
        ['d', '10.200.4.2', '198.18.4.2', 'symmetric', 'ptb-0a1b2c-d-gw'],
      ],
    )
    assert.equal(L.nodes[0]!.rendezvous, true)
    assert.equal(L.nodes[2]!.gateway, '10.200.2.1')
    assert.equal(L.nodes[1]!.gateway, '198.18.1.1')
    assert.equal(L.namespaces[0], 'ptb-0a1b2c-hub')
    for (const ns of L.namespaces) assert.equal(idOfName(ns), '0a1b2c')
  })

  it('keeps every veth name within 15 characters and prefixed, up to the largest topology', () => {
    const spec: TopologySpec = { nodes: Array.from({ length: MAX_LINKS - 1 }, (_, i) => ({ name: `n${i}`, kind: 'nat' as const, nat: 'symmetric' as const })) }
    const L = planTopology(spec, 'ffffff')
    const devs = [...L.hub.devices, ...L.nodes.flatMap((n) => [n.device, ...(n.router === null ? [] : [n.router.wanDevice, n.router.lanDevice])])]
    assert.equal(new Set(devs).size, devs.length)
    for (const d of devs) {
      assert.ok(d.length <= 15, d)
      assert.ok(d.startsWith('ptb-ffffff-'), d)
    }
    assert.throws(() => planTopology({ nodes: [...spec.nodes, { name: 'x', kind: 'public' }] }, 'ffffff'), TestbedError)
  })

  it('refuses bad specs with PT_TESTBED_BAD_SPEC and a hint', () => {
    const cases: unknown[] = [
      { nodes: [{ name: 'hub', kind: 'public' }] },
      { nodes: [{ name: 'A', kind: 'public' }] },
      { nodes: [{ name: 'averyveryverylongname', kind: 'public' }] },
      { nodes: [{ name: 'a', kind: 'public' }, { name: 'a', kind: 'public' }] },
      { nodes: [{ name: 'a', kind: 'nat' }] },
      { nodes: [{ name: 'a', kind: 'nat', nat: 'cone' }] },
      { nodes: [{ name: 'a', kind: 'public', nat: 'symmetric' }] },
      { nodes: [{ name: 'a', kind: 'public', tunnelPort: 70000 }] },
      { rendezvous: false, nodes: [] },
      {},
    ]
    for (const c of cases) {
      assert.throws(
        () => planTopology(c as TopologySpec, '000000'),
        (e: unknown) => e instanceof TestbedError && e.code === 'PT_TESTBED_BAD_SPEC',
        JSON.stringify(c),
      )
    }
  })

  it('creates veths inside namespaces, never in the root namespace', () => {
    const L = planTopology(SPECS.default!, '0a1b2c')
    const { namespaces, links } = rootBatch(L)
    assert.equal(namespaces.trim().split('\n').length, L.namespaces.length)
    for (const line of links.trim().split('\n')) assert.match(line, /^link add ptb-0a1b2c-\S+ netns ptb-0a1b2c-\S+ type veth peer name ptb-0a1b2c-\S+ netns ptb-0a1b2c-\S+$/)
    const batches = namespaceBatches(L)
    assert.match(batches.get('ptb-0a1b2c-b-gw')!, /route add default via 198\.18\.2\.1 dev ptb-0a1b2c-2u/)
    assert.match(batches.get('ptb-0a1b2c-b')!, /route add default via 10\.200\.2\.1/)
    assert.ok(!/route/.test(batches.get('ptb-0a1b2c-hub')!), 'the hub has no route to any LAN')
    const sys = sysctlArgs(L)
    assert.ok(sys.get('ptb-0a1b2c-hub')!.includes('net.ipv4.ip_forward=1'))
    assert.ok(sys.get('ptb-0a1b2c-c-gw')!.includes('net.ipv4.ip_forward=1'))
    assert.ok(!sys.get('ptb-0a1b2c-a')!.includes('net.ipv4.ip_forward=1'))
  })

  it('writes one NAT ruleset per kind', () => {
    const L = planTopology(SPECS.default!, '0a1b2c')
    const b = L.nodes[2]!
    const full = natRuleset(b, 'full-cone')
    assert.match(full, /iifname "ptb-0a1b2c-2u" udp dport 4000 dnat to 10\.200\.2\.2:4000/)
    assert.match(full, /ip saddr 10\.200\.2\.2 udp sport 4000 snat to 198\.18\.2\.2:4000/)
    assert.match(natRuleset(b, 'port-restricted'), /masquerade\n/)
    assert.ok(!/dnat to/.test(natRuleset(b, 'port-restricted')))
    assert.match(natRuleset(b, 'symmetric'), /masquerade fully-random/)
    assert.throws(() => natRuleset(L.nodes[1]!, 'symmetric'), TestbedError)
    assert.throws(() => natRuleset(b, 'cone' as 'symmetric'), TestbedError)
  })

  it('writes loss and duplication in 0.01 % steps and checks the range', () => {
    assert.ok(!/numgen/.test(impairRuleset(0, 0)))
    assert.match(impairRuleset(25, 0), /numgen random mod 10000 < 2500 counter drop/)
    assert.match(impairRuleset(0, 0.5), /numgen random mod 10000 < 50 counter dup to ip daddr device oif/)
    for (const bad of [-1, 101, Number.NaN]) {
      assert.throws(() => impairRuleset(bad, 0), (e: unknown) => e instanceof TestbedError && e.code === 'PT_TESTBED_BAD_VALUE')
    }
  })
})
