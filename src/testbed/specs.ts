/** Named topology specs for the CLI (`up --spec NAME`) and tests. */
import type { TopologySpec } from './plan.js'

export const SPECS: Record<string, TopologySpec> = {
  /** rendezvous + public a + one node behind each NAT kind. */
  default: {
    nodes: [
      { name: 'a', kind: 'public' },
      { name: 'b', kind: 'nat', nat: 'full-cone' },
      { name: 'c', kind: 'nat', nat: 'port-restricted' },
      { name: 'd', kind: 'nat', nat: 'symmetric' },
    ],
  },
  /** rendezvous + two public hosts + one node behind each NAT kind (the topology test: e is the "third host"). */
  full: {
    nodes: [
      { name: 'a', kind: 'public' },
      { name: 'b', kind: 'nat', nat: 'full-cone' },
      { name: 'c', kind: 'nat', nat: 'port-restricted' },
      { name: 'd', kind: 'nat', nat: 'symmetric' },
      { name: 'e', kind: 'public' },
    ],
  },
  /**
   * rendezvous + two nodes of each kind (the NAT matrix: every pair of kinds, including a kind with
   * itself): a, e public; b, f full cone; c, g port-restricted; d, h symmetric. a–e are `full`'s.
   */
  matrix: {
    nodes: [
      { name: 'a', kind: 'public' },
      { name: 'b', kind: 'nat', nat: 'full-cone' },
      { name: 'c', kind: 'nat', nat: 'port-restricted' },
      { name: 'd', kind: 'nat', nat: 'symmetric' },
      { name: 'e', kind: 'public' },
      { name: 'f', kind: 'nat', nat: 'full-cone' },
      { name: 'g', kind: 'nat', nat: 'port-restricted' },
      { name: 'h', kind: 'nat', nat: 'symmetric' },
    ],
  },
  /**
   * The networks test (issue 13): rendezvous + one node behind each NAT kind, like `default`,
   * named for their roles there: a (public) owns "lab", b (full cone) joins it with the token,
   * c (port-restricted) is invited to "lab" and owns "ops", d (symmetric) is invited to "ops".
   */
  networks: {
    nodes: [
      { name: 'a', kind: 'public' },
      { name: 'b', kind: 'nat', nat: 'full-cone' },
      { name: 'c', kind: 'nat', nat: 'port-restricted' },
      { name: 'd', kind: 'nat', nat: 'symmetric' },
    ],
  },
  /** rendezvous + one public host: the smallest useful internet. */
  minimal: { nodes: [{ name: 'a', kind: 'public' }] },
}
