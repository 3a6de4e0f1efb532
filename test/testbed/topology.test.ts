/**
 * The namespace test bed, for real (root only; skipped with the reason
 * otherwise). Topology (spec "full"):
 *
 *   rendezvous 198.18.0.2   a 198.18.1.2                      e 198.18.5.2
 *   reflector :3478         reflector :3478, plain :3480      plain :3478 ("third host")
 *        │                       │                                 │
 *   ┌────┴───────────────────────┴──── hub 198.18.k.1 ─────────────┴───┐
 *   │  ptb-<id>-hub: forwards, table ip ptb_impair (loss, duplication)  │
 *   └────┬──────────────────────────┬──────────────────────────┬───────┘
 *   b-gw 198.18.2.2            c-gw 198.18.3.2            d-gw 198.18.4.2
 *   full cone (udp 4000)       port-restricted            symmetric
 *   b 10.200.2.2 :4000         c 10.200.3.2 :4000         d 10.200.4.2 :4000
 *
 * Each NAT is probed like STUN: the host behind it asks two reflectors which
 * source they see, then the third host sends to that mapping unsolicited.
 */
import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { spawn, spawnSync } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { Topology, testbedUnavailable } from '../../src/testbed/topology.js'
import { UdpAgent } from '../../src/testbed/udp-probe.js'
import { SPECS } from '../../src/testbed/specs.js'
import { OWNER_DIR } from '../../src/testbed/owners.js'

const unavailable = await testbedUnavailable()
const skip = unavailable === null ? false : `namespace test bed unavailable: ${unavailable}`
const REFLECT = 3478
const CLI = fileURLToPath(new URL('../../src/testbed/cli.js', import.meta.url))

function sh(argv: string[]): string {
  const r = spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8' })
  assert.equal(r.status, 0, `${argv.join(' ')}: ${r.stderr}`)
  return r.stdout
}
const namespacesOf = (id: string) => sh(['ip', 'netns', 'list']).split('\n').filter((l) => l.startsWith(`ptb-${id}-`))
const rootPrefixedLinks = () => sh(['ip', '-o', 'link', 'show']).split('\n').filter((l) => /^\d+:\s+ptb-/.test(l))
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))

describe('namespace test bed', { skip }, () => {
  let topo: Topology
  const agents = new Map<string, UdpAgent>()
  let rootForward = ''
  let rootRuleset = ''

  before(async () => {
    rootForward = readFileSync('/proc/sys/net/ipv4/ip_forward', 'utf8')
    rootRuleset = sh(['nft', 'list', 'ruleset'])
    topo = await Topology.create(SPECS.full!)
    const start = async (key: string, node: string, port: number, reflect: boolean, quiet = false) =>
      agents.set(key, await UdpAgent.start(topo, node, { port, reflect, quiet }))
    await Promise.all([
      start('rendezvous', 'rendezvous', REFLECT, true),
      start('a', 'a', REFLECT, true),
      start('a2', 'a', 3480, false),
      start('e', 'e', REFLECT, false, true),
      start('b', 'b', 4000, false),
      start('c', 'c', 4000, false),
      start('d', 'd', 4000, false),
    ])
  })

  after(async () => {
    try {
      await Promise.all([...agents.values()].map((a) => a.close().catch(() => {})))
    } finally {
      await topo?.destroy()
    }
  })

  const agent = (k: string) => agents.get(k)!

  /** Which mappings the two reflectors see for `node`, and whether the third host e gets through to it. */
  async function probe(node: string, tag: string): Promise<{ viaRendezvous: { address: string; port: number }; viaA: { address: string; port: number }; unsolicited: boolean }> {
    const x = agent(node)
    const viaRendezvous = await x.observe(topo.address('rendezvous'), REFLECT)
    const viaA = await x.observe(topo.address('a'), REFLECT)
    const payload = `unsolicited-${tag}`
    await agent('e').send(viaA.address, viaA.port, payload)
    const got = await x.waitFor((d) => d.data === payload, 400)
    return { viaRendezvous, viaA, unsolicited: got !== null }
  }

  it('lives only inside its namespaces: prefixed names, root untouched', () => {
    assert.match(topo.id, /^[0-9a-f]{6}$/)
    const names = namespacesOf(topo.id)
    assert.equal(names.length, topo.layout.namespaces.length)
    assert.deepEqual(rootPrefixedLinks(), [], 'no veth of ours in the root namespace')
    assert.equal(readFileSync('/proc/sys/net/ipv4/ip_forward', 'utf8'), rootForward)
    assert.equal(sh(['nft', 'list', 'ruleset']), rootRuleset)
    assert.ok(existsSync(`${OWNER_DIR}/${topo.id}.json`))
    assert.equal(sh(['ip', 'netns', 'exec', topo.namespace('hub'), 'sysctl', '-n', 'net.ipv4.ip_forward']).trim(), '1')
    assert.equal(topo.address('b'), '10.200.2.2')
    assert.equal(topo.publicAddress('b'), '198.18.2.2')
    assert.equal(topo.rendezvous?.address, '198.18.0.2')
    assert.throws(() => topo.namespace('zz'), { code: 'PT_TESTBED_UNKNOWN_NODE' })
  })

  it('routes public addresses across the hub; NATed hosts reach out; LAN addresses are unreachable from outside', async () => {
    const checks: Array<[string, string, boolean]> = [
      ['a', topo.address('rendezvous'), true],
      ['rendezvous', topo.address('e'), true],
      ['e', topo.address('a'), true],
      ['b', topo.address('a'), true],
      ['c', topo.address('rendezvous'), true],
      ['d', topo.address('e'), true],
      ['a', topo.publicAddress('c'), true], // the router itself answers
      ['a', topo.address('b'), false],
      ['a', topo.address('c'), false],
      ['rendezvous', topo.address('d'), false],
      ['b', topo.address('c'), false], // LAN to another LAN: no route on the hub
    ]
    const results = await Promise.all(checks.map(([from, to]) => topo.reachable(from, to)))
    checks.forEach(([from, to, want], i) => assert.equal(results[i], want, `${from} -> ${to}`))
    await assert.rejects(topo.exec('a', ['ping', '-c', '1', '-W', '1', topo.address('b')]), { code: 'PT_TESTBED_COMMAND_FAILED', message: /ping/ })
  })

  it('full cone: the same mapping (the tunnel port) for every destination, and a third host gets in', async () => {
    const r = await probe('b', 'full-cone')
    assert.deepEqual(r.viaRendezvous, { address: '198.18.2.2', port: 4000 })
    assert.deepEqual(r.viaA, r.viaRendezvous)
    assert.equal(r.unsolicited, true)
  })

  it('port-restricted: the same mapping for every destination; only contacted address+port get in', async () => {
    const r = await probe('c', 'port-restricted')
    assert.equal(r.viaRendezvous.address, '198.18.3.2')
    assert.deepEqual(r.viaA, r.viaRendezvous)
    assert.equal(r.unsolicited, false, 'a third host is filtered')
    // The contacted endpoint a:3478 gets through, the same host from another port does not.
    await agent('a').send(r.viaA.address, r.viaA.port, 'from-contacted')
    await agent('a2').send(r.viaA.address, r.viaA.port, 'from-other-port')
    assert.ok(await agent('c').waitFor((d) => d.data === 'from-contacted', 1000))
    assert.equal(await agent('c').waitFor((d) => d.data === 'from-other-port', 300), null)
  })

  it('symmetric: a new mapping per destination, and a third host is filtered', async () => {
    const r = await probe('d', 'symmetric')
    assert.equal(r.viaRendezvous.address, '198.18.4.2')
    assert.equal(r.viaA.address, '198.18.4.2')
    assert.notEqual(r.viaA.port, r.viaRendezvous.port)
    assert.equal(r.unsolicited, false)
  })

  /** Sends `count` datagrams a -> e (one hub crossing each) and returns what e counted. */
  async function blast(count: number): Promise<{ received: number; distinct: number }> {
    await agent('e').reset()
    await agent('a2').send(topo.address('e'), REFLECT, 'blast', count)
    await sleep(150)
    return agent('e').stats()
  }

  it('loss: the hub drops roughly the configured fraction', async () => {
    // Without impairment nothing is lost (a little slack for a receiver stalled by a loaded machine).
    const clean = await blast(1000)
    assert.ok(clean.received >= 990 && clean.received <= 1000, `received ${clean.received} of 1000 without impairment`)
    await topo.setLoss(25)
    try {
      const { received } = await blast(1000)
      const lost = (1000 - received) / 1000
      assert.ok(lost >= 0.2 && lost <= 0.3, `lost ${lost * 100}% at 25%`)
    } finally {
      await topo.setLoss(0)
    }
    assert.deepEqual(topo.impairments, { loss: 0, duplication: 0 })
  })

  it('duplication: the hub copies roughly the configured fraction (nftables dup)', async () => {
    await topo.setDuplication(20)
    try {
      const { received, distinct } = await blast(1000)
      assert.ok(distinct >= 990 && distinct <= 1000, `${distinct} distinct of 1000`)
      assert.ok(received >= 1150 && received <= 1250, `received ${received} of 1000 at 20% duplication`)
    } finally {
      await topo.setDuplication(0)
    }
    await assert.rejects(topo.setLoss(120), { code: 'PT_TESTBED_BAD_VALUE' })
  })

  it('flushConntrack forgets the NAT mappings', async () => {
    const m = await agent('c').observe(topo.address('a'), REFLECT)
    await agent('a').send(m.address, m.port, 'before-flush')
    assert.ok(await agent('c').waitFor((d) => d.data === 'before-flush', 1000))
    await topo.flushConntrack('c')
    await agent('a').send(m.address, m.port, 'after-flush')
    assert.equal(await agent('c').waitFor((d) => d.data === 'after-flush', 400), null)
    await assert.rejects(topo.flushConntrack('a'), { code: 'PT_TESTBED_UNKNOWN_NODE' })
  })

  it('setNatKind changes a router at run time (symmetric -> full cone -> port-restricted)', async () => {
    await topo.setNatKind('d', 'full-cone')
    assert.equal(topo.natKind('d'), 'full-cone')
    const cone = await probe('d', 'now-cone')
    assert.deepEqual(cone.viaRendezvous, { address: '198.18.4.2', port: 4000 })
    assert.deepEqual(cone.viaA, cone.viaRendezvous)
    assert.equal(cone.unsolicited, true)
    await topo.setNatKind('d', 'port-restricted')
    const restricted = await probe('d', 'now-restricted')
    assert.deepEqual(restricted.viaA, restricted.viaRendezvous)
    assert.equal(restricted.unsolicited, false)
    await assert.rejects(topo.setNatKind('a', 'symmetric'), { code: 'PT_TESTBED_UNKNOWN_NODE' })
  })

  it('destroy() leaves no namespace, veth or owner record behind, and is idempotent', async () => {
    await Promise.all([...agents.values()].map((a) => a.close()))
    agents.clear()
    const hold = topo.spawn('a', ['sleep', '30']) // a process still inside a namespace
    await topo.destroy()
    await topo.destroy()
    assert.deepEqual(namespacesOf(topo.id), [])
    assert.deepEqual(rootPrefixedLinks(), [])
    assert.ok(!existsSync(`${OWNER_DIR}/${topo.id}.json`))
    assert.ok(hold.killed || hold.exitCode !== null || hold.signalCode !== null)
    await assert.rejects(topo.exec('a', ['true']), { code: 'PT_TESTBED_DESTROYED' })
    assert.equal(readFileSync('/proc/sys/net/ipv4/ip_forward', 'utf8'), rootForward)
    assert.equal(sh(['nft', 'list', 'ruleset']), rootRuleset)
  })
})

describe('stale test beds', { skip }, () => {
  it('cleanupStale() removes a test bed whose owner was killed, and nothing else', async () => {
    const child = spawn(process.execPath, [CLI, 'up', '--spec', 'minimal', '--json'], { stdio: ['ignore', 'pipe', 'pipe'] })
    let id = ''
    try {
      const line = await new Promise<string>((resolve, reject) => {
        let stderr = ''
        child.stderr!.on('data', (b: Buffer) => (stderr += b.toString()))
        child.once('exit', (code) => reject(new Error(`cli up exited ${code}: ${stderr}`)))
        createInterface({ input: child.stdout! }).once('line', resolve)
      })
      id = (JSON.parse(line) as { id: string }).id
      assert.equal(namespacesOf(id).length, 3) // hub, rendezvous, a
      // A live owner's test bed survives a cleanup run by someone else.
      const first = await Topology.cleanupStale()
      assert.ok(!first.namespaces.some((n) => n.startsWith(`ptb-${id}-`)))
      assert.equal(namespacesOf(id).length, 3)
      // A process inside it, so cleanup must kill it before the namespace can go.
      const inside = spawn('ip', ['netns', 'exec', `ptb-${id}-a`, 'sleep', '30'], { stdio: 'ignore' })
      const insideExited = new Promise((r) => inside.once('exit', r))
      await sleep(100)
      const exited = new Promise((r) => child.once('exit', r))
      child.kill('SIGKILL') // a crash: no exit hook, no destroy()
      await exited
      assert.equal(namespacesOf(id).length, 3, 'still there after the crash')
      const report = await Topology.cleanupStale()
      assert.deepEqual(report.namespaces.filter((n) => n.startsWith(`ptb-${id}-`)).sort(), [`ptb-${id}-a`, `ptb-${id}-hub`, `ptb-${id}-rendezvous`])
      assert.ok(report.owners.includes(id))
      assert.deepEqual(namespacesOf(id), [])
      assert.ok(!existsSync(`${OWNER_DIR}/${id}.json`))
      await insideExited
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
      if (id !== '') spawnSync(process.execPath, [CLI, 'down', '--id', id], { stdio: 'ignore' })
    }
  })
})
