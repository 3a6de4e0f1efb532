/**
 * Beacons that share the load (issue 14), with real processes in network
 * namespaces (src/testbed/): two pilot-tun beacons on the rendezvous host,
 * peered with each other, and daemons behind NATs that all get
 * `--beacon RV:9001,RV:9002`, so consecutive node IDs land on different beacons.
 *
 *   rendezvous 198.18.0.2: registry :9000/tcp, beacon 1 :9001/udp, beacon 2 :9002/udp
 *   c, g  port-restricted NAT: a direct path needs a punch coordinated across the two beacons
 *   d, h  symmetric NAT:       no direct path, relay across the two beacons
 *
 * Registration order makes c, g (and d, h) consecutive node IDs, hence one on each beacon.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Topology, testbedUnavailable } from '../src/testbed/topology.js'
import { waitUntil, type NsProcess } from '../src/testbed/ns-process.js'
import { pilotBin } from '../src/testbed/pilot-bed.js'
import { PilotNet, isDirect } from './helpers/pilot-net.js'

const skip = (await testbedUnavailable()) ?? false

class ClusterNet extends PilotNet {
  override get beaconAddr(): string {
    const rv = this.topo.rendezvous!.address
    return `${rv}:9001,${rv}:9002`
  }

  /** The registry, and two beacons peered with each other. */
  async startCluster(): Promise<void> {
    await this.startRegistry()
    const rv = this.topo.rendezvous!
    const beacon = (id: number, port: number, peer: number) =>
      this.spawnNode(`beacon ${id}`, rv.name, [
        pilotBin, 'beacon', '--listen', `0.0.0.0:${port}`, '--beacon-id', String(id), '--peers', `${rv.address}:${peer}`, '--log-level', 'debug',
      ])
    this.beacons = [beacon(1, 9001, 9002), beacon(2, 9002, 9001)]
    await Promise.all(this.beacons.map((b) => b.waitFor(/beacon listening/)))
  }

  beacons: NsProcess[] = []

  /** Both beacons' output. */
  get beaconOutput(): string {
    return this.beacons.map((b) => b.output).join('\n')
  }
}

test('two NATed pairs on two peered beacons: port-restricted pair punched across beacons, symmetric pair relayed across them', { skip, timeout: 180_000 }, async (t) => {
  const topo = await Topology.create({
    nodes: [
      { name: 'c', kind: 'nat', nat: 'port-restricted' },
      { name: 'g', kind: 'nat', nat: 'port-restricted' },
      { name: 'd', kind: 'nat', nat: 'symmetric' },
      { name: 'h', kind: 'nat', nat: 'symmetric' },
    ],
  })
  const net = new ClusterNet(topo, { heartbeatS: 1 })
  try {
    await net.startCluster()
    for (const n of ['c', 'g', 'd', 'h']) await net.up(n) // in order: consecutive node IDs per pair
    const status = Object.fromEntries(await Promise.all(['c', 'g', 'd', 'h'].map(async (n) => [n, await net.status(n)] as const)))
    for (const [x, y] of [['c', 'g'], ['d', 'h']] as const) {
      t.diagnostic(`${x}: node ${status[x]!.node_id} on ${status[x]!.beacon.address}; ${y}: node ${status[y]!.node_id} on ${status[y]!.beacon.address}`)
      assert.notEqual(status[x]!.beacon.address, status[y]!.beacon.address, `${x} and ${y} should use different beacons`)
    }
    // Let each beacon's Sync (every 10 s) name the other's nodes before the first punch.
    await new Promise((r) => setTimeout(r, 11_000))

    const addr = (n: string): string => status[n]!.address
    const paths = async (x: string, y: string): Promise<[string, string]> => {
      const [p, q] = await Promise.all([net.peer(x, addr(y)), net.peer(y, addr(x))])
      return [p?.path ?? 'missing', q?.path ?? 'missing']
    }

    // Port-restricted ↔ port-restricted: only a coordinated punch opens both NATs.
    await net.trust('c', 'g', { from: addr('c'), to: addr('g') })
    const pingCG = await net.ping('c', addr('g'), 3)
    assert.equal(pingCG.received, 3, `${JSON.stringify(pingCG)}\n${net.logs(['c', 'g'])}`)
    const cg = await waitUntil('c↔g direct', () => paths('c', 'g'), ([p, q]) => isDirect(p) && isDirect(q), { timeoutMs: 15_000 }).catch(async () => paths('c', 'g'))
    t.diagnostic(`c↔g paths: ${cg.join(' / ')}`)
    assert.ok(isDirect(cg[0]) && isDirect(cg[1]), `c↔g: ${cg.join(' / ')}\n${net.logs(['c', 'g', 'beacon 1', 'beacon 2'])}`)
    // The punch was coordinated across the beacons: PeerPunch one way, PeerPunchReply back.
    for (const step of [/PeerPunch sent/, /PeerPunchReply sent/, /PeerPunchReply: requester told/]) {
      assert.match(net.beaconOutput, step, net.logs(['beacon 1', 'beacon 2']))
    }

    // Symmetric ↔ symmetric: relay, through both beacons.
    await net.trust('d', 'h', { from: addr('d'), to: addr('h') })
    const pingDH = await net.ping('d', addr('h'), 5)
    assert.equal(pingDH.received, 5, `${JSON.stringify(pingDH)}\n${net.logs(['d', 'h'])}`)
    assert.ok(pingDH.replies.every((r) => r.path === 'relay'), JSON.stringify(pingDH))
    t.diagnostic(`d → h: ${pingDH.received}/5 replies over ${pingDH.replies.map((r) => r.path).join(',')}`)
  } finally {
    await net.close()
    await topo.destroy()
  }
})
