// The TUN front door end to end (issue 5): ordinary programs in one network
// namespace reach a pilot-tun node in another through pilot0 and the mapped
// IPv6 addresses. Root only; skips with the reason otherwise.
//
//   rendezvous 198.18.0.2                 (registry :9000/tcp, beacon :9001/udp)
//        │
//   ┌────┴──────────── ptb-<id>-hub  "internet" 198.18.0.0/15 ───────────────┐
//   └────┬──────────────────────────────────────────┬────────────────────────┘
//        │ 198.18.1.2                               │ 198.18.2.2
//   alice  (ptb-<id>-alice)                    bob  (ptb-<id>-bob)
//     pilot-tun up  tunnel :4000/udp             pilot-tun up  tunnel :4000/udp
//     pilot0  fd50:494c:4f54::<alice>/128        pilot0  fd50:494c:4f54::<bob>/128
//     route   fd50:494c:4f54::/48 dev pilot0     route   fd50:494c:4f54::/48 dev pilot0
//     DNS     [alice's address]:53 (.pilot)      DNS     [bob's address]:53 (.pilot)
//     overlay-apps http  [::]:8080               overlay-apps http [::]:8080, udp-echo [::]:7007
//     own state dir + control socket             own state dir + control socket
//
// Neither daemon runs --auto-accept: the first test shows that an untrusted
// connection is refused promptly, then alice requests trust and bob approves
// it; every later test runs over that mutual trust, in file order.
import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { readFileSync, writeFileSync, rmSync, existsSync } from 'node:fs'
import { join } from 'node:path'
import { Topology, testbedUnavailable } from '../src/testbed/topology.js'
import type { DaemonStatus } from '../src/daemon/api.js'
import type { NsProcess } from '../src/testbed/ns-process.js'
import { OVERLAY_PREFIX, type CliResult } from '../src/testbed/pilot-bed.js'
import { TunNet, tunUnavailable, appsScript } from './helpers/tun-net.js'
import { blob, sha256 } from './helpers/overlay-apps.js'

const MB = 1024 * 1024
const BLOB_BYTES = 50 * MB
const HTTP_PORT = 8080
const UDP_PORT = 7007

function missingTool(): string | null {
  for (const [tool, arg] of [['curl', '--version'], ['dig', '-v'], ['ping', '-V']] as const) {
    if (spawnSync(tool, [arg], { stdio: 'ignore' }).error !== undefined) return `\`${tool}\` is not installed`
  }
  return null
}

const skip = (await testbedUnavailable()) ?? tunUnavailable() ?? missingTool()

/** What `curl -w '%{json}'` reports that we look at. */
interface CurlInfo {
  http_code: number
  size_download: number
  size_upload: number
  speed_download: number
  speed_upload: number
  time_total: number
  remote_ip: string
  exitcode: number
  errormsg: string | null
}

describe('TUN front door in network namespaces', { skip: skip ?? false, timeout: 240_000 }, () => {
  let topo: Topology
  let net: TunNet
  const st: Record<'alice' | 'bob', DaemonStatus> = {} as Record<'alice' | 'bob', DaemonStatus>
  const servers: NsProcess[] = []
  let serverSha = ''

  const other = (n: 'alice' | 'bob'): 'alice' | 'bob' => (n === 'alice' ? 'bob' : 'alice')
  const url = (n: 'alice' | 'bob', path: string): string => `http://[${st[n].ipv6}]:${HTTP_PORT}${path}`

  /** curl in `from`'s namespace; stdout is curl's `-w '%{json}'` line. */
  async function curl(from: 'alice' | 'bob', args: string[], maxTimeS: number): Promise<{ r: CliResult; info: CurlInfo | null; ms: number }> {
    const t0 = performance.now()
    const r = await topo.exec(from, ['curl', '-g', '-sS', '--max-time', String(maxTimeS), '-w', '%{json}', ...args], {
      allowFailure: true,
      timeoutMs: (maxTimeS + 10) * 1000,
    })
    const ms = performance.now() - t0
    const line = r.stdout.trim().split('\n').pop() ?? ''
    let info: CurlInfo | null = null
    try {
      info = JSON.parse(line) as CurlInfo
    } catch {
      info = null
    }
    return { r, info, ms }
  }

  before(async () => {
    topo = await Topology.create({ nodes: [{ name: 'alice', kind: 'public' }, { name: 'bob', kind: 'public' }] })
    net = new TunNet(topo)
    try {
      await net.startRendezvous()
      await Promise.all([net.up('alice'), net.up('bob')])
      ;[st.alice, st.bob] = await Promise.all([net.status('alice'), net.status('bob')])
      for (const n of ['alice', 'bob'] as const) {
        const http = net.spawn(`http ${n}`, n, [process.execPath, appsScript, 'http', String(HTTP_PORT), String(BLOB_BYTES)])
        servers.push(http)
        const m = await http.waitFor(/^ready (.+)$/m)
        serverSha = (JSON.parse(m[1]!) as { sha256: string }).sha256
      }
      const echo = net.spawn('udp-echo bob', 'bob', [process.execPath, appsScript, 'udp-echo', String(UDP_PORT)])
      servers.push(echo)
      await echo.waitFor(/^ready /m)
    } catch (err) {
      throw new Error(`setting up the namespaces failed: ${(err as Error).message}\n${net.logs()}`)
    }
  })

  after(async () => {
    await net?.close()
    await topo?.destroy()
    // Nothing of ours is left: namespaces, resolv.conf directories.
    if (topo !== undefined) {
      const left = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout.split('\n').filter((l) => l.includes(`ptb-${topo.id}-`))
      assert.deepEqual(left, [], 'namespaces left behind')
      for (const n of ['alice', 'bob']) assert.equal(existsSync(`/etc/netns/ptb-${topo.id}-${n}`), false)
    }
  })

  it('each namespace has its own pilot0 with the node address and the prefix route', async () => {
    for (const n of ['alice', 'bob'] as const) {
      const s = st[n]
      assert.match(s.ipv6, /^fd50:494c:4f54::/)
      assert.ok(s.tun !== null, `${n}: status has no tun block`)
      assert.equal(s.tun.interface, 'pilot0')
      assert.equal(s.tun.address, s.ipv6)
      assert.equal(s.tun.prefix, OVERLAY_PREFIX)
      assert.equal(s.tun.mtu, 65520)
      const addr = await topo.exec(n, ['ip', '-6', '-o', 'addr', 'show', 'dev', 'pilot0'])
      assert.match(addr.stdout, new RegExp(`inet6 ${s.ipv6}/128 `), addr.stdout)
      const link = await topo.exec(n, ['ip', '-o', 'link', 'show', 'dev', 'pilot0'])
      assert.match(link.stdout, /mtu 65520/)
      assert.match(link.stdout, /[<,]UP[,>]/)
      const route = await topo.exec(n, ['ip', '-6', 'route', 'show', OVERLAY_PREFIX])
      assert.match(route.stdout, new RegExp(`^fd50:494c:4f54::/48 dev pilot0 .*src ${s.ipv6}`, 'm'), route.stdout)
    }
    assert.notEqual(st.alice.ipv6, st.bob.ipv6)
  })

  it('an untrusted connection is refused promptly; after trust request/approve it works', { timeout: 60_000 }, async (t) => {
    const refused = async (from: 'alice' | 'bob', when: string): Promise<void> => {
      const { r, info, ms } = await curl(from, ['-o', '/dev/null', url(other(from), '/whoami')], 5)
      t.diagnostic(`${when}: ${from} -> ${other(from)}: curl exit ${r.code} in ${ms.toFixed(0)} ms: ${r.stderr.trim()}`)
      assert.notEqual(r.code, 0, `${when}: ${from} reached ${other(from)} without trust: ${r.stdout}`)
      assert.notEqual(r.code, 28, `${when}: ${from} -> ${other(from)} timed out instead of being refused: ${r.stderr}`)
      assert.ok(ms < 3000, `${when}: refusal took ${ms.toFixed(0)} ms (curl: ${r.stderr.trim()})`)
      assert.ok(info === null || info.http_code === 0, `${when}: got an HTTP answer: ${JSON.stringify(info)}`)
    }
    await refused('alice', 'no trust')
    await refused('bob', 'no trust')
    // What the program's connect() sees: ICMPv6 administratively prohibited, i.e. EACCES, at once.
    const probe = await topo.exec('alice', [process.execPath, appsScript, 'connect', st.bob.ipv6, String(HTTP_PORT), '5000'])
    const c = JSON.parse(probe.stdout) as { ok: boolean; code: string; ms: number }
    t.diagnostic(`no trust: connect() from alice to bob: ${c.code} after ${c.ms} ms`)
    assert.equal(c.ok, false)
    assert.equal(c.code, 'EACCES')
    assert.ok(c.ms < 3000, `connect() failed after ${c.ms} ms`)

    // A request alone is not trust.
    const req = await net.cli('alice', ['trust', 'request', st.bob.address, '--reason', 'tun netns test'])
    assert.equal(req.code, 0, req.stderr)
    await refused('alice', 'request pending')

    await net.establishTrust('alice', 'bob', { from: st.alice.address, to: st.bob.address })
    for (const from of ['alice', 'bob'] as const) {
      const { r, ms } = await curl(from, ['-o', '-', url(other(from), '/whoami')], 10)
      assert.equal(r.code, 0, `${from} -> ${other(from)} after trust: ${r.stderr}\n${net.logs()}`)
      const who = JSON.parse(r.stdout.split('\n')[0]!) as { remote: string; local: string }
      // The server in the other namespace sees this node's mapped address as its peer.
      assert.equal(who.remote, st[from].ipv6)
      assert.equal(who.local, st[other(from)].ipv6)
      t.diagnostic(`after trust: ${from} -> ${other(from)} in ${ms.toFixed(0)} ms, server saw ${who.remote}`)
    }
  })

  it('curl moves 50 MB down and 50 MB up through the mapped addresses, both ways, hashes equal', { timeout: 150_000 }, async (t) => {
    const before = await net.peers('alice')
    const bytes0 = before.find((p) => p.address === st.bob.address) ?? { bytes_in: 0, bytes_out: 0 }
    const upload = blob(BLOB_BYTES, 7)
    const uploadSha = sha256(upload)
    const upFile = join(net.dir, 'upload.bin')
    writeFileSync(upFile, upload)
    assert.equal(serverSha, sha256(blob(BLOB_BYTES)))
    for (const from of ['alice', 'bob'] as const) {
      const to = other(from)
      const out = join(net.dir, `download-${from}.bin`)
      const down = await curl(from, ['--fail', '-o', out, url(to, '/blob')], 60)
      assert.equal(down.r.code, 0, `${from} GET ${url(to, '/blob')}: ${down.r.stderr}\n${net.logs()}`)
      assert.ok(down.info !== null)
      assert.equal(down.info.size_download, BLOB_BYTES)
      assert.equal(sha256(readFileSync(out)), serverSha, `${from}: downloaded blob hash`)
      rmSync(out)
      t.diagnostic(
        `${from} <- ${to}: 50 MiB GET in ${down.info.time_total.toFixed(2)} s, ${(down.info.speed_download / MB).toFixed(1)} MiB/s (remote ${down.info.remote_ip})`,
      )

      const resp = join(net.dir, `upload-${from}.json`)
      const up = await curl(from, ['--fail', '-T', upFile, '-o', resp, url(to, '/upload')], 60)
      assert.equal(up.r.code, 0, `${from} PUT ${url(to, '/upload')}: ${up.r.stderr}\n${net.logs()}`)
      const body = JSON.parse(readFileSync(resp, 'utf8')) as { sha256: string; bytes: number; remote: string }
      assert.equal(body.bytes, BLOB_BYTES)
      assert.equal(body.sha256, uploadSha, `${to} received a different body from ${from}`)
      assert.equal(body.remote, st[from].ipv6)
      assert.ok(up.info !== null)
      t.diagnostic(`${from} -> ${to}: 50 MiB PUT in ${up.info.time_total.toFixed(2)} s, ${(up.info.speed_upload / MB).toFixed(1)} MiB/s`)
    }
    // The bytes went through the Pilot tunnel: 100 MiB each way between alice and bob.
    const peer = (await net.peers('alice')).find((p) => p.address === st.bob.address)
    assert.ok(peer !== undefined, 'alice does not list bob as a peer')
    t.diagnostic(`alice's peer bob: path ${peer.path}, in +${peer.bytes_in - bytes0.bytes_in} B, out +${peer.bytes_out - bytes0.bytes_out} B`)
    assert.ok(peer.bytes_in - bytes0.bytes_in >= 2 * BLOB_BYTES, `alice's bytes_in from bob grew by ${peer.bytes_in - bytes0.bytes_in}`)
    assert.ok(peer.bytes_out - bytes0.bytes_out >= 2 * BLOB_BYTES, `alice's bytes_out to bob grew by ${peer.bytes_out - bytes0.bytes_out}`)
  })

  it('ping6 over the overlay', { timeout: 30_000 }, async (t) => {
    for (const from of ['alice', 'bob'] as const) {
      const to = other(from)
      const r = await topo.exec(from, ['ping', '-6', '-n', '-c', '5', '-i', '0.2', '-W', '2', st[to].ipv6], { allowFailure: true, timeoutMs: 20_000 })
      assert.equal(r.code, 0, `${from}: ping6 ${st[to].ipv6}: ${r.stdout}${r.stderr}\n${net.logs()}`)
      assert.match(r.stdout, /5 packets transmitted, 5 received, 0% packet loss/)
      assert.match(r.stdout, new RegExp(`bytes from ${st[to].ipv6}: icmp_seq=1 `))
      t.diagnostic(`${from} -> ${to}: ${r.stdout.trim().split('\n').pop()}`)
    }
  })

  it('UDP echo round trip through the overlay', { timeout: 30_000 }, async (t) => {
    const r = await topo.exec('alice', [process.execPath, appsScript, 'udp-ping', st.bob.ipv6, String(UDP_PORT), '5', '2000'], {
      allowFailure: true,
      timeoutMs: 20_000,
    })
    assert.equal(r.code, 0, `udp-ping: ${r.stdout}${r.stderr}\n${net.logs()}`)
    const res = JSON.parse(r.stdout) as { sent: number; received: number; from: string; rtt_ms: number[] }
    assert.equal(res.received, 5)
    assert.equal(res.from, `[${st.bob.ipv6}]:${UDP_PORT}`)
    t.diagnostic(`alice -> bob udp/${UDP_PORT}: 5/5 echoed, rtt ms ${res.rtt_ms.join(' ')}`)
  })

  it('<hostname>.pilot resolves through the daemon DNS responder', { timeout: 30_000 }, async () => {
    const dig = (args: string[]): Promise<CliResult> =>
      topo.exec('alice', ['dig', `@${st.alice.ipv6}`, '+time=2', '+tries=1', ...args], { allowFailure: true, timeoutMs: 10_000 })
    const aaaa = await dig(['bob.pilot', 'AAAA', '+short'])
    assert.equal(aaaa.code, 0, aaaa.stdout + aaaa.stderr)
    assert.equal(aaaa.stdout.trim(), st.bob.ipv6)
    const self = await dig(['alice.pilot', 'AAAA', '+short'])
    assert.equal(self.stdout.trim(), st.alice.ipv6)
    const missing = await dig(['no-such-node.pilot', 'AAAA'])
    assert.match(missing.stdout, /status: NXDOMAIN/, missing.stdout)

    // Ordinary name resolution: resolv.conf for alice's namespace only, then curl by name.
    net.resolvConf('alice', st.alice.ipv6)
    try {
      const r = await topo.exec('alice', ['curl', '-sS', '--max-time', '10', `http://bob.pilot:${HTTP_PORT}/whoami`], { allowFailure: true, timeoutMs: 20_000 })
      assert.equal(r.code, 0, `curl http://bob.pilot:${HTTP_PORT}/whoami: ${r.stderr}\n${net.logs()}`)
      assert.equal((JSON.parse(r.stdout) as { remote: string }).remote, st.alice.ipv6)
    } finally {
      net.removeResolvConfs()
    }
  })

  // docs/design.md and bridge-tcp.ts: "unreachable or unknown node → code 3 (EHOSTUNREACH). The program's connect()
  // fails at once instead of hanging." The daemon asks the registry once; "not registered" ends the dial.
  it('connect() to the mapped address of an unregistered node fails promptly', { timeout: 20_000 }, async (t) => {
    const missing = 'fd50:494c:4f54::7777'
    const probe = await topo.exec('alice', [process.execPath, appsScript, 'connect', missing, String(HTTP_PORT), '5000'], { timeoutMs: 15_000 })
    const c = JSON.parse(probe.stdout) as { ok: boolean; code: string; ms: number }
    t.diagnostic(`connect() from alice to unregistered ${missing}: ${c.code} after ${c.ms} ms`)
    assert.equal(c.ok, false)
    assert.equal(c.code, 'EHOSTUNREACH')
    assert.ok(c.ms < 3000, `connect() failed after ${c.ms} ms`)
  })

  it('stopping `up` removes the interface and the routes', { timeout: 30_000 }, async () => {
    const gone = async (n: 'alice' | 'bob'): Promise<void> => {
      const link = await topo.exec(n, ['ip', 'link', 'show', 'dev', 'pilot0'], { allowFailure: true })
      assert.notEqual(link.code, 0, `${n}: pilot0 still exists: ${link.stdout}`)
      const routes = await topo.exec(n, ['ip', '-6', 'route', 'show'])
      assert.doesNotMatch(routes.stdout, /fd50:494c:4f54:/, `${n}: overlay routes left: ${routes.stdout}`)
      const addrs = await topo.exec(n, ['ip', '-6', 'addr', 'show'])
      assert.doesNotMatch(addrs.stdout, /fd50:494c:4f54:/, `${n}: overlay address left: ${addrs.stdout}`)
    }
    // `pilot-tun down` on bob.
    const down = await net.cli('bob', ['down'])
    assert.equal(down.code, 0, down.stderr)
    assert.equal(await net.daemons.get('bob')!.exited, 0, net.daemons.get('bob')!.tail())
    await gone('bob')
    // SIGTERM on alice.
    assert.equal(await net.daemons.get('alice')!.stop('SIGTERM'), 0, net.daemons.get('alice')!.tail())
    await gone('alice')
  })
})
