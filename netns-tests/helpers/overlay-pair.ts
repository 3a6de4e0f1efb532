/**
 * The set-up of the load and loss tests: two public nodes a and b on the hub,
 * a rendezvous, `pilot-tun up` (TUN, --auto-accept) in both, a trusts b, and
 * b runs the blast/echo servers (blast :7001, echo :7002 on [::]). When the
 * daemons cannot bring the TUN up here, `notReady` says why and the tests
 * skip.
 *
 * `overlayPair()`, called inside a `describe`, registers the suite's
 * `before` (build) and `after` (Overlay close(), Topology destroy()).
 */
import { after, before } from 'node:test'
import { Topology, type TopologySpec } from '../../src/testbed/topology.js'
import { Overlay } from '../../src/testbed/overlay.js'
import { TunNotReady, type DaemonInfo } from '../../src/testbed/pilot-bed.js'

const SPEC: TopologySpec = { nodes: [{ name: 'a', kind: 'public' }, { name: 'b', kind: 'public' }] }

export interface OverlayPair {
  readonly topo: Topology
  readonly ov: Overlay
  /** b's daemon (set up unless notReady). */
  readonly b: DaemonInfo
  /** Why the overlay does not run here (TunNotReady), or null. */
  readonly notReady: string | null
}

export function overlayPair(): OverlayPair {
  let topo: Topology | null = null
  let ov: Overlay | null = null
  let notReady: string | null = null

  before(async () => {
    topo = await Topology.create(SPEC)
    ov = new Overlay(topo)
    await ov.startRendezvous()
    try {
      await Promise.all([ov.up('a'), ov.up('b')])
    } catch (err) {
      if (err instanceof TunNotReady) {
        notReady = err.message
        return
      }
      throw err
    }
    await ov.trust('a', 'b')
    await ov.serveTraffic('b')
  })

  after(async () => {
    await ov?.close()
    await topo?.destroy()
  })

  const ready = <T>(v: T | null | undefined, what: string): T => {
    if (v === null || v === undefined) throw new Error(`overlay pair: ${what} is not set up`)
    return v
  }
  return {
    get topo() {
      return ready(topo, 'the topology')
    },
    get ov() {
      return ready(ov, 'the overlay')
    },
    get b() {
      return ready(ov?.info.get('b'), "b's daemon")
    },
    get notReady() {
      return notReady
    },
  }
}
