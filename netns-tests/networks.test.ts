// Networks end to end (issue 13, "Done when"): four TUN daemons, one behind each NAT kind, no
// pairwise trust anywhere; network membership alone lets members reach each other through their
// network's /64 on the ports its policy allows. Root only; skips with the reason otherwise.
//
//   rendezvous 198.18.0.2 (registry :9000/tcp with its SQLite store in the bed's temp dir, beacon :9001/udp)
//        │
//   ┌────┴──────────── ptb-<id>-hub  "internet" 198.18.0.0/15 ──────────────────────┐
//   └────┬───────────────────┬────────────────────┬────────────────────┬───────────┘
//        │                 b-gw full cone       c-gw port-restricted  d-gw symmetric
//   a (public)             b 10.200.2.2         c 10.200.3.2          d 10.200.4.2
//   every node: pilot-tun up with the TUN (pilot0), no --auto-accept, and two HTTP servers on
//   [::]:80 and [::]:8080 answering the node's name (overlay-apps.js `name`).
//
//   lab (id L, join rule token, allowed ports 80):  a owner, b (token; leaves later), c (invited by a)
//   ops (id O, join rule invite, allowed ports 8080, later 80,8080): c owner, d (invited by c)
//
// A member of network N has prefix:N::node on pilot0 (fd50:494c:4f54:N::<node>) and a route to
// prefix:N::/64. The steps run in file order, each building on the one before: create and join
// (with the refusals that change nothing), addresses and routes, curl over the /64s (allowed
// ports answer, other ports, non-members and no-longer-members fail at once with curl exit 7),
// `host.netname.pilot` names, a policy change in ops, leave, and the audit trail (listed, verified, then one stored
// entry altered in the registry's SQLite store and verification names it).
//
// PT_NETWORKS_TRANSCRIPT=<file>: the human-readable commands and their output are written there
// (the README's worked example comes from it).
import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { existsSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { Topology, testbedUnavailable } from '../src/testbed/topology.js'
import { SPECS } from '../src/testbed/specs.js'
import type { DaemonStatus } from '../src/daemon/api.js'
import { sleep, waitUntil } from '../src/testbed/ns-process.js'
import type { CliResult } from '../src/testbed/pilot-bed.js'
import { TunNet, tunUnavailable, appsScript } from './helpers/tun-net.js'

type Node = 'a' | 'b' | 'c' | 'd'
const NODES: readonly Node[] = ['a', 'b', 'c', 'd']
const PREFIX = 'fd50:494c:4f54:'
const LAB_TOKEN = 'lab-token-7f3a'
/** Well under a timeout: a refusal is ICMPv6 administratively prohibited or a reset, at once. */
const REFUSED_WITHIN_MS = 3_000

function missingTool(): string | null {
  for (const [tool, arg] of [['curl', '--version'], ['dig', '-v']] as const) {
    if (spawnSync(tool, [arg], { stdio: 'ignore' }).error !== undefined) return `\`${tool}\` is not installed`
  }
  return null
}

const skip = (await testbedUnavailable()) ?? tunUnavailable() ?? missingTool()

/** `{"error":{code,message,hint}}`, what `--json` prints on failure (src/cli/main.ts). */
interface JsonError {
  error?: { code: string; message: string; hint?: string }
}

/** A field by its snake_case or camelCase name (the CLI prints the control API's JSON). */
function field<T>(o: unknown, snake: string): T | undefined {
  if (o === null || typeof o !== 'object') return undefined
  const rec = o as Record<string, unknown>
  const camel = snake.replace(/_([a-z])/g, (_, ch: string) => ch.toUpperCase())
  return (rec[snake] ?? rec[camel]) as T | undefined
}

/** A list printed as an array or as `{key: [...]}`. */
function list<T>(o: unknown, key: string): T[] {
  if (Array.isArray(o)) return o as T[]
  const v = field<T[]>(o, key)
  if (!Array.isArray(v)) throw new Error(`no ${key} list in ${JSON.stringify(o)}`)
  return v
}

/** The base64url JSON inside an invite's text form `pilot-invite1.<base64url>`, with one field changed. */
function alterInvite(text: string, change: (inv: Record<string, unknown>) => void): string {
  const m = /^(pilot-invite1\.)([A-Za-z0-9_-]+)$/.exec(text.trim())
  assert.ok(m !== null, `not an invite text: ${text}`)
  const inv = JSON.parse(Buffer.from(m[2]!, 'base64url').toString('utf8')) as Record<string, unknown>
  change(inv)
  return m[1]! + Buffer.from(JSON.stringify(inv)).toString('base64url')
}

describe('networks: membership and port policy on the data path, names, leave, audit trail', { skip: skip ?? false, timeout: 300_000 }, () => {
  let topo: Topology
  let net: TunNet
  const st = {} as Record<Node, DaemonStatus>
  const transcript: string[] = []
  let lab = 0
  let ops = 0

  /** The node's address on network `n`: the backbone IPv6 with the network ID in the fourth group. */
  const addrOn = (node: Node, n: number): string => {
    const v6 = st[node].ipv6
    assert.ok(v6.startsWith(`${PREFIX}:`), `${node}: backbone address ${v6} is not in ${PREFIX}:/48`)
    return `${PREFIX}${n.toString(16)}::${v6.slice(PREFIX.length + 1)}`
  }
  const url = (node: Node, n: number, port: number, path = '/'): string => `http://[${addrOn(node, n)}]:${port}${path}`

  /** `pilot-tun ARGS` (human output) on `node`, kept for the transcript. */
  async function human(node: Node, args: string[]): Promise<CliResult> {
    const r = await net.cli(node, args)
    transcript.push(`[${node}]$ pilot-tun ${args.join(' ')}\n${r.stdout}${r.stderr}${r.code === 0 ? '' : `(exit ${r.code})\n`}`)
    return r
  }

  /** `pilot-tun ARGS --json` on `node` that must succeed. */
  async function ok<T = unknown>(node: Node, args: string[]): Promise<T> {
    const r = await net.json<T & JsonError>(node, args)
    assert.equal(r.code, 0, `${node}: pilot-tun ${args.join(' ')} --json: exit ${r.code}: ${JSON.stringify(r.body)}\n${net.logs([node], 15)}`)
    assert.equal(r.body.error, undefined)
    return r.body
  }

  /** `pilot-tun ARGS --json` on `node` that must fail with `code`; returns the error. */
  async function refused(node: Node, args: string[], code: string): Promise<{ code: string; message: string; hint?: string }> {
    const r = await net.json<JsonError>(node, args)
    assert.notEqual(r.code, 0, `${node}: pilot-tun ${args.join(' ')} succeeded, expected ${code}: ${JSON.stringify(r.body)}`)
    assert.ok(r.body.error !== undefined, `${node}: pilot-tun ${args.join(' ')}: no error object: ${JSON.stringify(r.body)}`)
    assert.equal(r.body.error.code, code, `${node}: pilot-tun ${args.join(' ')}: ${JSON.stringify(r.body.error)}`)
    return r.body.error
  }

  /** curl in `from`'s namespace; the body, curl's exit code and how long it took. */
  async function curl(from: Node, target: string, maxTimeS = 8): Promise<{ code: number | null; body: string; err: string; ms: number }> {
    const t0 = performance.now()
    const r = await topo.exec(from, ['curl', '-g', '-sS', '--max-time', String(maxTimeS), target], { allowFailure: true, timeoutMs: (maxTimeS + 10) * 1000 })
    return { code: r.code, body: r.stdout.trim(), err: r.stderr.trim(), ms: performance.now() - t0 }
  }

  /**
   * `from` reaches `target` and the server answers `name`. Retried for a few seconds: the far
   * daemon learns a new member from the registry (a refresh on the refused first attempt, or the
   * periodic one), and a path behind NAT may still be punching or falling back to the relay.
   */
  async function reaches(t: { diagnostic: (s: string) => void }, from: Node, target: string, name: Node): Promise<void> {
    const t0 = Date.now()
    let tries = 0
    const r = await waitUntil(`${from}: curl ${target} answers ${name}`, async () => {
      tries++
      return curl(from, target, 5)
    }, (x) => x.code === 0 && x.body === name, { timeoutMs: 20_000, intervalMs: 500 }).catch((err: Error) => {
      throw new Error(`${err.message}\n${net.logs()}`)
    })
    transcript.push(`[${from}]$ curl ${target.includes('[') ? '-g ' : ''}${target}\n${r.body}\n`)
    t.diagnostic(`${from} -> ${target}: "${r.body}" (${tries} tr${tries === 1 ? 'y' : 'ies'}, ${Date.now() - t0} ms in all, last ${r.ms.toFixed(0)} ms)`)
  }

  /** `from` cannot reach `target`: curl exits 7 (connection refused / prohibited) at once, no answer, no timeout. */
  async function blocked(t: { diagnostic: (s: string) => void }, from: Node, target: string, why: string): Promise<void> {
    const r = await curl(from, target, 8)
    t.diagnostic(`${why}: ${from} -> ${target}: curl exit ${r.code} in ${r.ms.toFixed(0)} ms: ${r.err}`)
    transcript.push(`[${from}]$ curl ${target.includes('[') ? '-g ' : ''}${target}      # ${why}\n${r.err}\n(exit ${r.code}, ${r.ms.toFixed(0)} ms)\n`)
    assert.notEqual(r.code, 0, `${why}: ${from} reached ${target}: ${r.body}`)
    assert.notEqual(r.code, 28, `${why}: ${from} -> ${target} timed out instead of being refused: ${r.err}`)
    assert.equal(r.code, 7, `${why}: ${from} -> ${target}: curl exit ${r.code}, expected 7 (refused at once): ${r.err}`)
    assert.ok(r.ms < REFUSED_WITHIN_MS, `${why}: the refusal took ${r.ms.toFixed(0)} ms (${r.err})`)
    assert.equal(r.body, '', `${why}: got an answer: ${r.body}`)
  }

  async function pilot0(node: Node): Promise<{ addrs: string; routes: string }> {
    const [a, r] = await Promise.all([
      topo.exec(node, ['ip', '-6', '-o', 'addr', 'show', 'dev', 'pilot0']),
      topo.exec(node, ['ip', '-6', 'route', 'show', 'dev', 'pilot0']),
    ])
    return { addrs: a.stdout, routes: r.stdout }
  }
  const hasAddr = (p: { addrs: string }, addr: string): boolean => new RegExp(`inet6 ${addr}/128 `).test(p.addrs)
  const hasRoute = (p: { routes: string }, n: number): boolean => new RegExp(`^${PREFIX}${n.toString(16)}::/64 `, 'm').test(p.routes)

  /** pilot0 at one moment of the story, asserted in the pilot0 step (so a data-path failure does not hide the CLI's). */
  const snapshots: Record<string, { has: boolean; addrs: string }> = {}
  async function snapshot(node: Node, n: number, when: string): Promise<void> {
    const p = await pilot0(node)
    snapshots[`${node} ${n === lab ? 'lab' : 'ops'} ${when}`] = { has: hasAddr(p, addrOn(node, n)) && hasRoute(p, n), addrs: p.addrs + p.routes }
  }

  /** Until `node`'s pilot0 has (or no longer has) its address and route on network `n`. */
  async function waitPilot0(node: Node, n: number, present: boolean, timeoutMs: number): Promise<number> {
    const t0 = Date.now()
    await waitUntil(`${node}: pilot0 ${present ? 'has' : 'lost'} ${addrOn(node, n)} and its /64 route`, () => pilot0(node), (p) => {
      return hasAddr(p, addrOn(node, n)) === present && hasRoute(p, n) === present
    }, { timeoutMs, intervalMs: 100 })
    return Date.now() - t0
  }

  before(async () => {
    topo = await Topology.create(SPECS.networks!)
    net = new TunNet(topo)
    try {
      await net.startRendezvous()
      await Promise.all(NODES.map((n) => net.up(n)))
      const all = await Promise.all(NODES.map((n) => net.status(n)))
      NODES.forEach((n, i) => (st[n] = all[i]!))
      const servers = NODES.flatMap((n) => [80, 8080].map((port) => net.spawn(`http ${n}:${port}`, n, [process.execPath, appsScript, 'name', String(port), n])))
      await Promise.all(servers.map((s) => s.waitFor(/^ready /m)))
    } catch (err) {
      throw new Error(`setting up the namespaces failed: ${(err as Error).message}\n${net.logs()}`)
    }
  })

  after(async () => {
    const file = process.env.PT_NETWORKS_TRANSCRIPT
    if (file !== undefined && file !== '') writeFileSync(file, transcript.join('\n'))
    const removed = (await net?.close()) ?? []
    await topo?.destroy()
    if (topo !== undefined) {
      const left = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout.split('\n').filter((l) => l.includes(`ptb-${topo.id}-`))
      assert.deepEqual(left, [], 'namespaces left behind')
      for (const n of NODES) assert.equal(existsSync(`/etc/netns/ptb-${topo.id}-${n}`), false, `resolv.conf of ${n} left behind (removed: ${removed.join(', ')})`)
    }
  })

  it('without networks or trust, nodes do not reach each other', async (t) => {
    for (const n of NODES) {
      const p = await pilot0(n)
      assert.ok(hasAddr(p, st[n].ipv6), `${n}: ${p.addrs}`)
      assert.doesNotMatch(p.addrs, new RegExp(`${PREFIX}[0-9a-f]+::`), `${n}: a network address before any network: ${p.addrs}`)
    }
    await blocked(t, 'b', `http://[${st.a.ipv6}]:80/`, 'no trust, no network')
  })

  it('lab (token rule, port 80): a creates it, b joins with the token after a wrong one, a invites c', { timeout: 90_000 }, async (t) => {
    const created = await human('a', ['network', 'create', 'lab', '--join-rule', 'token', '--token', LAB_TOKEN, '--allowed-ports', '80'])
    assert.equal(created.code, 0, `a: network create lab: ${created.stdout}${created.stderr}`)
    const info = await ok('a', ['network', 'members', 'lab'])
    lab = Number(field(info, 'network_id'))
    assert.ok(Number.isInteger(lab) && lab >= 1, `network members lab: no network ID: ${JSON.stringify(info)}`)
    assert.equal(field(info, 'join_rule'), 'token')
    assert.deepEqual(field<Record<string, unknown>>(info, 'policy')?.allowed_ports, [80], JSON.stringify(info))
    t.diagnostic(`lab is network ${lab}`)
    await snapshot('a', lab, 'right after create')
    await human('a', ['network', 'policy', 'lab'])

    // A wrong token: a typed error with a hint, and nothing changes.
    const bad = await refused('b', ['network', 'join', 'lab', '--token', 'not-the-token'], 'PT_NETWORK_BAD_TOKEN')
    t.diagnostic(`wrong token: ${JSON.stringify(bad)}`)
    assert.ok((bad.hint ?? '') !== '', `PT_NETWORK_BAD_TOKEN without a hint: ${JSON.stringify(bad)}`)
    await human('b', ['network', 'join', 'lab', '--token', 'not-the-token'])
    await snapshot('b', lab, 'after the refused join')
    const members0 = list<unknown>(await ok('a', ['network', 'members', 'lab']), 'members')
    assert.deepEqual(members0.map((m) => Number(field(m, 'node_id'))), [nodeId('a')], JSON.stringify(members0))

    const joined = await human('b', ['network', 'join', 'lab', '--token', LAB_TOKEN])
    assert.equal(joined.code, 0, `b: network join lab: ${joined.stdout}${joined.stderr}`)
    // join returns after the daemon's view refreshed: the address is there now.
    await snapshot('b', lab, 'right after join')

    const inv = await human('a', ['network', 'invite', 'lab', 'c'])
    assert.equal(inv.code, 0, `a: network invite lab c: ${inv.stdout}${inv.stderr}`)
    const invite = /pilot-invite1\.[A-Za-z0-9_-]+/.exec(inv.stdout)?.[0] ?? ''
    assert.notEqual(invite, '', `no invite text in: ${inv.stdout}`)
    const cj = await human('c', ['network', 'join', 'lab', '--invite', invite])
    assert.equal(cj.code, 0, `c: network join lab --invite: ${cj.stdout}${cj.stderr}`)
    await snapshot('c', lab, 'right after join')

    await refused('a', ['network', 'join', 'lab', '--token', LAB_TOKEN], 'PT_NETWORK_ALREADY_MEMBER')
    const members = list<unknown>(await ok('a', ['network', 'members', 'lab']), 'members')
    assert.deepEqual(members.map((m) => Number(field(m, 'node_id'))).sort((x, y) => x - y), [nodeId('a'), nodeId('b'), nodeId('c')].sort((x, y) => x - y))
    assert.equal(field(members.find((m) => Number(field(m, 'node_id')) === nodeId('a')), 'role'), 'owner')
    await human('a', ['network', 'members', 'lab'])
  })

  it('ops (invite rule, port 8080): c creates it; an expired and an altered invite are refused; d joins with its invite', { timeout: 60_000 }, async (t) => {
    const created = await ok('c', ['network', 'create', 'ops', '--join-rule', 'invite', '--allowed-ports', '8080'])
    ops = Number(field(created, 'network_id'))
    assert.equal(field(created, 'name'), 'ops')
    assert.ok(Number.isInteger(ops) && ops >= 1 && ops !== lab, JSON.stringify(created))
    await snapshot('c', ops, 'right after create')
    await refused('d', ['network', 'join', 'ops'], 'PT_NETWORK_INVITE_REQUIRED')

    const short = await ok<Record<string, unknown>>('c', ['network', 'invite', 'ops', 'd', '--ttl', '1s'])
    await sleep(2_500)
    const expired = await refused('d', ['network', 'join', 'ops', '--invite', String(field(short, 'invite'))], 'PT_NETWORK_INVITE_EXPIRED')
    t.diagnostic(`expired invite: ${JSON.stringify(expired)}`)
    assert.ok((expired.hint ?? '') !== '', `PT_NETWORK_INVITE_EXPIRED without a hint: ${JSON.stringify(expired)}`)
    await human('d', ['network', 'join', 'ops', '--invite', String(field(short, 'invite'))])

    const inv = await ok<Record<string, unknown>>('c', ['network', 'invite', 'ops', 'd', '--ttl', '1h'])
    const invite = String(field(inv, 'invite'))
    assert.match(invite, /^pilot-invite1\.[A-Za-z0-9_-]+$/, JSON.stringify(inv))
    assert.equal(Number(field(inv, 'invitee_id')), nodeId('d'))
    const expires = Number(field(inv, 'expires'))
    assert.ok(Math.abs(expires - (Date.now() / 1000 + 3600)) < 120, `an invite with --ttl 1h expires at ${expires}`)
    // The same invite with a later expiry: the inviter's signature no longer matches.
    const forged = alterInvite(invite, (o) => {
      o.expires = Number(o.expires) + 86_400
    })
    const bad = await refused('d', ['network', 'join', 'ops', '--invite', forged], 'PT_NETWORK_INVITE_INVALID')
    t.diagnostic(`altered invite: ${JSON.stringify(bad)}`)
    await refused('d', ['network', 'join', 'ops', '--invite', 'pilot-invite1.bm90IGFuIGludml0ZQ'], 'PT_NETWORK_INVITE_INVALID')
    await snapshot('d', ops, 'after the refused joins')

    await ok('d', ['network', 'join', 'ops', '--invite', invite])
    await snapshot('d', ops, 'right after join')
    await human('c', ['network', 'list'])
  })

  it('each member has prefix:N::node on pilot0 and a route to prefix:N::/64 as soon as create/join return; non-members have neither', async (t) => {
    // create and join return after the daemon's view refreshed (the contract), so the address was there at once; a refused join adds nothing.
    const expected: Record<string, boolean> = {
      'a lab right after create': true,
      'b lab after the refused join': false,
      'b lab right after join': true,
      'c lab right after join': true,
      'c ops right after create': true,
      'd ops after the refused joins': false,
      'd ops right after join': true,
    }
    for (const [k, want] of Object.entries(expected)) {
      assert.ok(k in snapshots, `no snapshot "${k}" (an earlier step failed)`)
      assert.equal(snapshots[k]!.has, want, `${k}: pilot0 ${want ? 'lacks' : 'has'} the address: ${snapshots[k]!.addrs}`)
    }
    const member: Record<Node, number[]> = { a: [lab], b: [lab], c: [lab, ops], d: [ops] }
    for (const n of NODES) {
      await waitPilot0(n, lab, member[n].includes(lab), 15_000)
      await waitPilot0(n, ops, member[n].includes(ops), 15_000)
      const p = await pilot0(n)
      assert.ok(hasAddr(p, st[n].ipv6), `${n} lost its backbone address: ${p.addrs}`)
      t.diagnostic(`${n}: ${p.addrs.split('\n').filter((l) => l.includes('inet6 fd50')).map((l) => /inet6 (\S+)/.exec(l)![1]).join(', ')}`)
    }
    // status lists the networks as the daemon's view sees them: address, IPv6, role, open ports.
    const want: Record<Node, Array<{ id: number; role: string; ports: number[] }>> = {
      a: [{ id: lab, role: 'owner', ports: [80] }],
      b: [{ id: lab, role: 'member', ports: [80] }],
      c: [{ id: lab, role: 'member', ports: [80] }, { id: ops, role: 'owner', ports: [8080] }],
      d: [{ id: ops, role: 'member', ports: [8080] }],
    }
    for (const n of NODES) {
      const s = await net.status(n)
      const got = (s.networks ?? []).map((x) => ({ id: x.id, role: x.role, ports: x.allowed_ports, ipv6: x.ipv6, address: x.address })).sort((x, y) => x.id - y.id)
      assert.deepEqual(
        got,
        want[n].map((w) => ({ ...w, ipv6: addrOn(n, w.id), address: `${w.id}:${w.id.toString(16).toUpperCase().padStart(4, '0')}${st[n].address.slice(6)}` })),
        `${n}: status networks ${JSON.stringify(s.networks)}`,
      )
    }
    await human('c', ['status'])
    const c = await pilot0('c')
    transcript.push(`[c]$ ip -6 addr show dev pilot0\n${(await topo.exec('c', ['ip', '-6', 'addr', 'show', 'dev', 'pilot0'])).stdout}`)
    transcript.push(`[c]$ ip -6 route show dev pilot0\n${c.routes}`)
  })

  it('members reach each other on allowed ports through the network /64; other ports and non-members are refused at once', { timeout: 120_000 }, async (t) => {
    await reaches(t, 'b', url('a', lab, 80), 'a')
    await blocked(t, 'b', url('a', lab, 8080), 'lab allows only port 80')
    await reaches(t, 'a', url('c', lab, 80), 'c')
    await reaches(t, 'c', url('b', lab, 80), 'b')
    await blocked(t, 'd', url('a', lab, 80), 'd is not in lab')
    await blocked(t, 'd', url('b', lab, 80), 'd is not in lab')
    await reaches(t, 'c', url('d', ops, 8080), 'd')
    await reaches(t, 'd', url('c', ops, 8080), 'c')
    await blocked(t, 'c', url('d', ops, 80), 'ops allows only port 8080')
    await blocked(t, 'a', url('c', ops, 8080), 'a is not in ops')
    // Membership admits on the network's addresses only: the backbone address still needs trust.
    await blocked(t, 'b', `http://[${st.a.ipv6}]:80/`, 'no pairwise trust on the backbone')
    // The refusal counters, where status shows them (diagnostic only: their names may move).
    const s = JSON.stringify(await net.status('a'))
    const counters = s.match(/"(?:network_?[Rr]efused|notJoined|not_joined|notMember|not_member|portNotAllowed|port_not_allowed)":[^,}]*/g)
    t.diagnostic(`a's network refusal counters in status: ${counters === null ? 'none shown' : counters.join(', ')}`)
  })

  it('host.netname.pilot names resolve to the network address for members only; curl by name works', { timeout: 60_000 }, async (t) => {
    const dig = async (node: Node, name: string): Promise<CliResult> =>
      topo.exec(node, ['dig', `@${st[node].ipv6}`, '+time=2', '+tries=1', name, 'AAAA'], { allowFailure: true, timeoutMs: 10_000 })
    const aaaa = await dig('b', 'a.lab.pilot')
    assert.match(aaaa.stdout, /status: NOERROR/, aaaa.stdout)
    assert.match(aaaa.stdout, new RegExp(`a\\.lab\\.pilot\\.\\s+\\d+\\s+IN\\s+AAAA\\s+${addrOn('a', lab)}\\b`), aaaa.stdout)
    assert.match((await dig('b', 'd.lab.pilot')).stdout, /status: NXDOMAIN/, 'd is not a member of lab')
    assert.match((await dig('b', 'a.ops.pilot')).stdout, /status: NXDOMAIN/, 'b is not a member of ops')
    assert.match((await dig('b', 'a.pilot')).stdout, new RegExp(`AAAA\\s+${st.a.ipv6}\\b`), 'host.pilot is unchanged')

    net.resolvConf('b', st.b.ipv6)
    net.resolvConf('c', st.c.ipv6)
    try {
      const r = await curl('b', 'http://a.lab.pilot/', 10)
      assert.equal(r.code, 0, `b: curl http://a.lab.pilot/: ${r.err}\n${net.logs(['a', 'b'])}`)
      assert.equal(r.body, 'a')
      transcript.push(`[b]$ curl http://a.lab.pilot/\n${r.body}\n`)
      const r2 = await curl('c', 'http://d.ops.pilot:8080/', 10)
      assert.equal(r2.code, 0, `c: curl http://d.ops.pilot:8080/: ${r2.err}`)
      assert.equal(r2.body, 'd')
      transcript.push(`[c]$ curl http://d.ops.pilot:8080/\n${r2.body}\n`)
      await blocked(t, 'b', 'http://a.lab.pilot:8080/', 'by name, a port lab does not allow')
    } finally {
      net.removeResolvConfs()
    }
  })

  it('a policy change in ops takes effect on the data path; only owners/admins change it, and not below the member count', { timeout: 60_000 }, async (t) => {
    await refused('d', ['network', 'policy', 'ops', '--allowed-ports', '80,8080'], 'PT_NETWORK_NOT_ADMIN')
    await refused('c', ['network', 'policy', 'ops', '--max-members', '1'], 'PT_NETWORK_BAD_POLICY')
    await blocked(t, 'c', url('d', ops, 80), 'ops allows only port 8080 (before the change)')
    const r = await human('c', ['network', 'policy', 'ops', '--allowed-ports', '80,8080'])
    assert.equal(r.code, 0, `c: network policy ops: ${r.stdout}${r.stderr}`)
    const info = await ok('d', ['network', 'members', 'ops'])
    assert.deepEqual(field<Record<string, unknown>>(info, 'policy')?.allowed_ports, [80, 8080], JSON.stringify(info))
    // d's daemon learns the new policy from the registry (c's refusal or d's periodic refresh): retried.
    await reaches(t, 'c', url('d', ops, 80), 'd')
    await reaches(t, 'd', url('c', ops, 80), 'c')
    await blocked(t, 'b', url('a', lab, 8080), 'lab is unchanged')
  })

  it('b leaves lab: its address and route go, and nobody reaches it there any more', { timeout: 60_000 }, async (t) => {
    const r = await human('b', ['network', 'leave', 'lab'])
    assert.equal(r.code, 0, `b: network leave lab: ${r.stdout}${r.stderr}`)
    const p = await pilot0('b')
    assert.equal(hasAddr(p, addrOn('b', lab)), false, `b still has its lab address right after leave: ${p.addrs}`)
    assert.equal(hasRoute(p, lab), false, `b still has the lab route right after leave: ${p.routes}`)
    assert.ok(hasAddr(p, st.b.ipv6), 'b lost its backbone address')
    await blocked(t, 'a', url('b', lab, 80), 'b left lab')
    await blocked(t, 'b', url('a', lab, 80), 'b left lab')
    const members = list<unknown>(await ok('a', ['network', 'members', 'lab']), 'members')
    assert.equal(members.some((m) => Number(field(m, 'node_id')) === nodeId('b')), false, JSON.stringify(members))
    await reaches(t, 'a', url('c', lab, 80), 'c') // the others are unaffected
  })

  it('the audit trail lists every step of lab, verifies, and names the entry altered in the store', { timeout: 60_000 }, async (t) => {
    const body = await ok('a', ['audit', '--network', String(lab)])
    const entries = list<Record<string, unknown>>(body, 'entries')
    const steps = entries.map((e) => ({ seq: Number(e.seq), action: e.action, actor: Number(e.actor), subject: Number(e.subject) }))
    t.diagnostic(`lab's chain: ${JSON.stringify(steps)}`)
    assert.deepEqual(steps, [
      { seq: 1, action: 'create', actor: nodeId('a'), subject: 0 },
      { seq: 2, action: 'join', actor: nodeId('b'), subject: nodeId('b') },
      { seq: 3, action: 'invite', actor: nodeId('a'), subject: nodeId('c') },
      { seq: 4, action: 'join', actor: nodeId('c'), subject: nodeId('c') },
      { seq: 5, action: 'leave', actor: nodeId('b'), subject: nodeId('b') },
    ])
    for (const e of entries) assert.match(String(field(e, 'hash')), /^[0-9a-f]{64}$/)
    await human('a', ['audit', '--network', String(lab)])
    // Only current members read a network's chain.
    await refused('b', ['audit', '--network', String(lab)], 'PT_NETWORK_NOT_MEMBER')
    await refused('d', ['audit', '--network', String(lab)], 'PT_NETWORK_NOT_MEMBER')

    const good = await ok('c', ['audit', 'verify', '--network', String(lab)])
    assert.equal(field(good, 'ok'), true, JSON.stringify(good))
    assert.equal(Number(field(good, 'entries')), 5)
    const goodHuman = await human('a', ['audit', 'verify', '--network', String(lab)])
    assert.equal(goodHuman.code, 0, goodHuman.stdout + goodHuman.stderr)
    const opsList = list<Record<string, unknown>>(await ok('d', ['audit', '--network', String(ops)]), 'entries')
    assert.deepEqual(opsList.map((e) => `${String(e.action)} ${Number(e.actor)}->${Number(e.subject)}`), [
      `create ${nodeId('c')}->0`,
      `invite ${nodeId('c')}->${nodeId('d')}`, // the one that expired
      `invite ${nodeId('c')}->${nodeId('d')}`,
      `join ${nodeId('d')}->${nodeId('d')}`,
      `policy ${nodeId('c')}->0`,
    ])
    assert.equal(opsList[4]!.detail, '{"allowed_ports":[80,8080],"max_members":1024,"members_resolve":true}')
    const opsChain = await net.json('c', ['audit', 'verify', '--network', String(ops)])
    assert.equal(opsChain.code, 0, `ops chain: ${JSON.stringify(opsChain.body)}`)
    t.diagnostic(`ops chain: ${JSON.stringify(opsChain.body)}`)
    await human('c', ['audit', '--network', String(ops)])

    // Someone with write access to the registry's store rewrites b's join (seq 2).
    const db = new Database(join(net.dir, 'registry.db'))
    try {
      const row = db.prepare('SELECT detail FROM audit_log WHERE network_id = ? AND seq = 2').get(lab) as { detail: string } | undefined
      assert.ok(row !== undefined, 'no seq 2 of lab in audit_log')
      const changed = db.prepare('UPDATE audit_log SET detail = ? WHERE network_id = ? AND seq = 2').run(`${row.detail};by=someone-else`, lab)
      assert.equal(changed.changes, 1)
    } finally {
      db.close()
    }
    const broken = await net.json<Record<string, unknown>>('a', ['audit', 'verify', '--network', String(lab)])
    t.diagnostic(`after altering seq 2: exit ${broken.code}: ${JSON.stringify(broken.body)}`)
    assert.notEqual(broken.code, 0, `audit verify passed on an altered chain: ${JSON.stringify(broken.body)}`)
    assert.equal(field(broken.body, 'ok'), false)
    assert.equal(Number(field(broken.body, 'first_broken')), 2, JSON.stringify(broken.body))
    const brokenHuman = await human('a', ['audit', 'verify', '--network', String(lab)])
    assert.notEqual(brokenHuman.code, 0)
    assert.match(brokenHuman.stdout + brokenHuman.stderr, /\b2\b/, 'the human output names entry 2')
  })

  /** A node's 32-bit ID from its backbone address `0:0000.HHHH.LLLL`. */
  function nodeId(n: Node): number {
    const m = /^0:0000\.([0-9A-Fa-f]{4})\.([0-9A-Fa-f]{4})$/.exec(st[n].address)
    assert.ok(m !== null, `${n}: address ${st[n].address}`)
    return parseInt(m[1]! + m[2]!, 16)
  }
})
