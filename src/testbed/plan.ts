/**
 * The pure half of the test bed: spec validation, the address plan, and the
 * iproute2 / nftables text that builds it. Nothing here runs a command, so it
 * is tested without root (test/testbed/plan.test.ts).
 *
 * Address plan (documented in scripts/README.md):
 *
 *   "internet"  198.18.0.0/15 (RFC 2544 benchmarking range), one /24 per hub link:
 *               link k = 198.18.k.0/24, hub side 198.18.k.1, node or NAT router 198.18.k.2.
 *               Link 0 is the rendezvous (registry + beacon): 198.18.0.2.
 *   LAN behind NAT k: 10.200.k.0/24, router 10.200.k.1, host 10.200.k.2.
 *
 * Names (id = 6 hex digits per run; veth names stay within 15 characters):
 *   namespaces  ptb-<id>-hub, ptb-<id>-<node>, ptb-<id>-<node>-gw (NAT router)
 *   veths       ptb-<id>-<k>h (hub end) <-> ptb-<id>-<k>u (node or router uplink)
 *               ptb-<id>-<k>l (router LAN end) <-> ptb-<id>-<k>n (host behind NAT)
 */
import { TestbedError, TestbedErrorCode } from './errors.js'

export type NatKind = 'full-cone' | 'port-restricted' | 'symmetric'
export const NAT_KINDS: readonly NatKind[] = ['full-cone', 'port-restricted', 'symmetric']

export interface NodeSpec {
  /** 1-12 characters, [a-z][a-z0-9]*; not "hub". */
  name: string
  kind: 'public' | 'nat'
  /** Required when kind is 'nat'. */
  nat?: NatKind
  /** The UDP port the node's tunnel listens on; full cone maps exactly this port. Default 4000. */
  tunnelPort?: number
}

export interface TopologySpec {
  /** Name of the rendezvous host (registry + beacon) on hub link 0; false for none. Default "rendezvous". */
  rendezvous?: string | false
  nodes: NodeSpec[]
  /** Initial random loss on the hub, percent of forwarded packets. Default 0. */
  loss?: number
  /** Initial duplication on the hub, percent of forwarded packets. Default 0. */
  duplication?: number
}

export const DEFAULT_TUNNEL_PORT = 4000
export const MAX_LINKS = 200

export interface RouterLayout {
  /** `<node>-gw`: the name `exec`/`spawn` accept for the router. */
  name: string
  namespace: string
  wanDevice: string
  /** The node's public address: what the internet sees. */
  wanAddress: string
  lanDevice: string
  lanAddress: string
}

export interface NodeLayout {
  name: string
  kind: 'public' | 'nat'
  nat: NatKind | null
  rendezvous: boolean
  /** Hub link index k. */
  link: number
  namespace: string
  device: string
  /** The node's own interface address (a LAN address behind NAT). */
  address: string
  prefixLength: 24
  gateway: string
  /** Where the internet reaches it: its own address, or its router's WAN address. */
  publicAddress: string
  tunnelPort: number
  router: RouterLayout | null
}

export interface TopologyLayout {
  id: string
  hub: { namespace: string; devices: string[] }
  nodes: NodeLayout[]
  /** Every namespace, hub first. */
  namespaces: string[]
}

const NAME_RE = /^[a-z][a-z0-9]{0,11}$/

function bad(message: string, hint?: string): TestbedError {
  return new TestbedError(TestbedErrorCode.BAD_SPEC, message, hint === undefined ? {} : { hint })
}

/** Checks a percentage for loss/duplication. */
export function checkPercent(what: string, value: number): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || value > 100) {
    throw new TestbedError(TestbedErrorCode.BAD_VALUE, `${what} must be a number from 0 to 100, got ${String(value)}`)
  }
  return value
}

export function checkNatKind(kind: unknown): NatKind {
  if (!NAT_KINDS.includes(kind as NatKind)) {
    throw new TestbedError(TestbedErrorCode.BAD_VALUE, `unknown NAT kind ${JSON.stringify(kind)}`, {
      hint: `one of ${NAT_KINDS.join(', ')}`,
    })
  }
  return kind as NatKind
}

/** Validates a spec and lays it out under run id `id`. */
export function planTopology(spec: TopologySpec, id: string): TopologyLayout {
  if (!/^[0-9a-f]{6}$/.test(id)) throw bad(`run id ${JSON.stringify(id)} is not 6 hex digits`)
  if (spec === null || typeof spec !== 'object' || !Array.isArray(spec.nodes)) {
    throw bad('a topology spec is an object with a `nodes` array', 'e.g. {"nodes": [{"name": "a", "kind": "public"}]}')
  }
  const all: Array<NodeSpec & { rendezvous: boolean }> = []
  const rv = spec.rendezvous === undefined ? 'rendezvous' : spec.rendezvous
  if (rv !== false) all.push({ name: rv, kind: 'public', rendezvous: true })
  for (const n of spec.nodes) all.push({ ...n, rendezvous: false })
  if (all.length === 0) throw bad('the topology has no nodes')
  if (all.length > MAX_LINKS) throw bad(`at most ${MAX_LINKS} nodes, got ${all.length}`)
  const seen = new Set<string>()
  const hub = `ptb-${id}-hub`
  const layout: TopologyLayout = { id, hub: { namespace: hub, devices: [] }, nodes: [], namespaces: [hub] }
  // Without a rendezvous the first node still starts at link 1, so 198.18.0.2 always means the rendezvous.
  let k = rv === false ? 1 : 0
  for (const n of all) {
    if (typeof n.name !== 'string' || !NAME_RE.test(n.name) || n.name === 'hub') {
      throw bad(`node name ${JSON.stringify(n.name)} is invalid`, '1-12 characters, a lower-case letter then letters or digits, not "hub"')
    }
    if (seen.has(n.name)) throw bad(`node name ${n.name} is used twice`)
    seen.add(n.name)
    if (n.kind !== 'public' && n.kind !== 'nat') throw bad(`node ${n.name}: kind must be 'public' or 'nat'`)
    if (n.kind === 'nat' && n.nat === undefined) throw bad(`node ${n.name}: a 'nat' node needs \`nat\``, `one of ${NAT_KINDS.join(', ')}`)
    if (n.kind === 'public' && n.nat !== undefined) throw bad(`node ${n.name}: a 'public' node has no \`nat\``)
    if (n.nat !== undefined && !NAT_KINDS.includes(n.nat)) throw bad(`node ${n.name}: unknown NAT kind ${JSON.stringify(n.nat)}`, `one of ${NAT_KINDS.join(', ')}`)
    const port = n.tunnelPort ?? DEFAULT_TUNNEL_PORT
    if (!Number.isInteger(port) || port < 1 || port > 65535) throw bad(`node ${n.name}: tunnelPort ${String(port)} is not a UDP port`)
    const ns = `ptb-${id}-${n.name}`
    const hubDev = `ptb-${id}-${k}h`
    const upDev = `ptb-${id}-${k}u`
    layout.hub.devices.push(hubDev)
    const wan = `198.18.${k}.2`
    if (n.kind === 'public') {
      layout.nodes.push({
        name: n.name,
        kind: 'public',
        nat: null,
        rendezvous: n.rendezvous,
        link: k,
        namespace: ns,
        device: upDev,
        address: wan,
        prefixLength: 24,
        gateway: `198.18.${k}.1`,
        publicAddress: wan,
        tunnelPort: port,
        router: null,
      })
      layout.namespaces.push(ns)
    } else {
      const gwNs = `ptb-${id}-${n.name}-gw`
      layout.nodes.push({
        name: n.name,
        kind: 'nat',
        nat: n.nat!,
        rendezvous: false,
        link: k,
        namespace: ns,
        device: `ptb-${id}-${k}n`,
        address: `10.200.${k}.2`,
        prefixLength: 24,
        gateway: `10.200.${k}.1`,
        publicAddress: wan,
        tunnelPort: port,
        router: {
          name: `${n.name}-gw`,
          namespace: gwNs,
          wanDevice: upDev,
          wanAddress: wan,
          lanDevice: `ptb-${id}-${k}l`,
          lanAddress: `10.200.${k}.1`,
        },
      })
      layout.namespaces.push(gwNs, ns)
    }
    k++
  }
  return layout
}

/** Sysctls per namespace: no IPv6 (no DAD or router solicitations), forwarding in the hub and routers. */
export function sysctlArgs(layout: TopologyLayout): Map<string, string[]> {
  const base = ['net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1']
  const m = new Map<string, string[]>()
  m.set(layout.hub.namespace, [...base, 'net.ipv4.ip_forward=1'])
  for (const n of layout.nodes) {
    m.set(n.namespace, base)
    if (n.router !== null) m.set(n.router.namespace, [...base, 'net.ipv4.ip_forward=1'])
  }
  return m
}

/** `ip -batch` lines run in the root namespace: namespaces, then veths created directly inside them. */
export function rootBatch(layout: TopologyLayout): { namespaces: string; links: string } {
  const ns = layout.namespaces.map((n) => `netns add ${n}`)
  const links: string[] = []
  for (const n of layout.nodes) {
    const hubDev = layout.hub.devices[layout.nodes.indexOf(n)]!
    if (n.router === null) {
      links.push(`link add ${hubDev} netns ${layout.hub.namespace} type veth peer name ${n.device} netns ${n.namespace}`)
    } else {
      links.push(`link add ${hubDev} netns ${layout.hub.namespace} type veth peer name ${n.router.wanDevice} netns ${n.router.namespace}`)
      links.push(`link add ${n.router.lanDevice} netns ${n.router.namespace} type veth peer name ${n.device} netns ${n.namespace}`)
    }
  }
  return { namespaces: ns.join('\n') + '\n', links: links.join('\n') + '\n' }
}

/** `ip -n NS -batch` lines per namespace: loopback, addresses, links up, default routes. */
export function namespaceBatches(layout: TopologyLayout): Map<string, string> {
  const m = new Map<string, string[]>()
  const add = (ns: string, line: string) => {
    const l = m.get(ns) ?? ['link set lo up']
    l.push(line)
    m.set(ns, l)
  }
  layout.nodes.forEach((n, i) => {
    const hubDev = layout.hub.devices[i]!
    add(layout.hub.namespace, `addr add 198.18.${n.link}.1/24 dev ${hubDev}`)
    add(layout.hub.namespace, `link set ${hubDev} up`)
    if (n.router !== null) {
      const r = n.router
      add(r.namespace, `addr add ${r.wanAddress}/24 dev ${r.wanDevice}`)
      add(r.namespace, `addr add ${r.lanAddress}/24 dev ${r.lanDevice}`)
      add(r.namespace, `link set ${r.wanDevice} up`)
      add(r.namespace, `link set ${r.lanDevice} up`)
      add(r.namespace, `route add default via 198.18.${n.link}.1 dev ${r.wanDevice}`)
    }
    add(n.namespace, `addr add ${n.address}/24 dev ${n.device}`)
    add(n.namespace, `link set ${n.device} up`)
    add(n.namespace, `route add default via ${n.gateway} dev ${n.device}`)
  })
  const out = new Map<string, string>()
  for (const [ns, lines] of m) out.set(ns, lines.join('\n') + '\n')
  return out
}

export const IMPAIR_TABLE = 'ptb_impair'
export const NAT_TABLE = 'ptb_nat'

/** Percent -> threshold of `numgen random mod 10000` (0.01 % steps). */
function threshold(percent: number): number {
  return Math.round(percent * 100)
}

/**
 * The hub's impairment table, replacing any previous one in one transaction.
 * Loss drops forwarded packets at random; duplication sends a copy of a
 * forwarded packet (after the loss rule) straight to its next hop, which on
 * the hub is always its destination on a connected /24 (nf_dup_ipv4; the copy
 * is not duplicated again).
 */
export function impairRuleset(lossPercent: number, dupPercent: number): string {
  const rules: string[] = []
  const loss = threshold(checkPercent('loss', lossPercent))
  const dup = threshold(checkPercent('duplication', dupPercent))
  if (loss > 0) rules.push(`    numgen random mod 10000 < ${loss} counter drop comment "loss ${lossPercent}%"`)
  if (dup > 0) rules.push(`    numgen random mod 10000 < ${dup} counter dup to ip daddr device oif comment "duplication ${dupPercent}%"`)
  return [
    `table ip ${IMPAIR_TABLE}`,
    `delete table ip ${IMPAIR_TABLE}`,
    `table ip ${IMPAIR_TABLE} {`,
    '  chain forward {',
    '    type filter hook forward priority filter; policy accept;',
    ...rules,
    '  }',
    '}',
    '',
  ].join('\n')
}

/**
 * A NAT router's table, replacing any previous one in one transaction.
 *
 * - full-cone: static 1:1 SNAT of host:tunnelPort to wan:tunnelPort and a DNAT
 *   of wan:tunnelPort back (endpoint-independent mapping and filtering for the
 *   tunnel port; other traffic is masqueraded like port-restricted).
 * - port-restricted: `masquerade` (conntrack: endpoint-independent mapping
 *   while the port is free, address-and-port-dependent filtering).
 * - symmetric: `masquerade fully-random` (a random source port per new flow,
 *   so a new mapping per destination).
 *
 * The forward chain is the router's firewall: LAN to WAN is open, WAN to LAN
 * only for established flows and DNATed (full-cone) packets.
 */
export function natRuleset(n: NodeLayout, kind: NatKind): string {
  const r = n.router
  if (r === null) throw new TestbedError(TestbedErrorCode.BAD_VALUE, `node ${n.name} is public: it has no NAT router`)
  checkNatKind(kind)
  const pre: string[] = []
  const post: string[] = []
  if (kind === 'full-cone') {
    pre.push(`    iifname "${r.wanDevice}" udp dport ${n.tunnelPort} dnat to ${n.address}:${n.tunnelPort}`)
    post.push(`    oifname "${r.wanDevice}" ip saddr ${n.address} udp sport ${n.tunnelPort} snat to ${r.wanAddress}:${n.tunnelPort}`)
  }
  post.push(`    oifname "${r.wanDevice}" masquerade${kind === 'symmetric' ? ' fully-random' : ''}`)
  return [
    `table ip ${NAT_TABLE}`,
    `delete table ip ${NAT_TABLE}`,
    `table ip ${NAT_TABLE} {`,
    `  comment "${kind}"`,
    '  chain prerouting {',
    '    type nat hook prerouting priority dstnat; policy accept;',
    ...pre,
    '  }',
    '  chain postrouting {',
    '    type nat hook postrouting priority srcnat; policy accept;',
    ...post,
    '  }',
      // Like a home router: nothing new comes in on the WAN side to the router
    // itself. Without this, a peer's early punch packet to router:port leaves a
    // conntrack entry that steals the port the inner host's mapping wants, and
    // two port-restricted NATs can never punch through (ICMP stays answered).
    '  chain input {',
    '    type filter hook input priority filter; policy accept;',
    `    iifname "${r.wanDevice}" meta l4proto { tcp, udp } ct state new drop`,
    '  }',
    '  chain forward {',
    '    type filter hook forward priority filter; policy drop;',
    `    iifname "${r.lanDevice}" oifname "${r.wanDevice}" accept`,
    `    iifname "${r.wanDevice}" oifname "${r.lanDevice}" ct state established,related accept`,
    `    iifname "${r.wanDevice}" oifname "${r.lanDevice}" ct status dnat accept`,
    '  }',
    '}',
    '',
  ].join('\n')
}
