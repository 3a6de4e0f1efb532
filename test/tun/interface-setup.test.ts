// InterfaceSetup without root: a fake `ip` records the command lines and
// answers as iproute2 does, so the commands, the error parsing and the
// idempotent teardown are checked anywhere. The real thing runs in
// tun-netns.test.ts.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import {
  InterfaceSetup,
  assertInterfaceFree,
  classifyIpFailure,
  enableIpv6On,
  execIp,
  hasNetAdmin,
  type IpRunner,
  type SysctlFiles,
} from '../../src/tun/interface-setup.js'
import { TunError } from '../../src/tun/tun-errors.js'

/** A fake `ip`: `fail` maps a command line prefix to the stderr it fails with. */
function fakeIp(link: { kind: string; persist?: boolean } | null, fail: Record<string, string> = {}) {
  const calls: string[] = []
  const run: IpRunner = async (args) => {
    const line = args.join(' ')
    calls.push(line)
    for (const [prefix, stderr] of Object.entries(fail)) {
      if (line.startsWith(prefix)) throw classifyIpFailure(args, stderr, 2)
    }
    if (line.startsWith('-d -j link show')) {
      if (link === null) throw classifyIpFailure(args, `Device "${args[args.length - 1]}" does not exist.\n`, 1)
      return { stdout: JSON.stringify([{ ifname: args[args.length - 1], linkinfo: { info_kind: link.kind, info_data: { persist: link.persist ?? false } } }]), stderr: '' }
    }
    return { stdout: '', stderr: '' }
  }
  return { run, calls }
}

const A = 'fd50:494c:4f54::2a'

test('up runs link mtu/up, the /128 address with nodad, and the prefix route with src, in that order', async () => {
  const ip = fakeIp({ kind: 'tun' })
  const s = new InterfaceSetup({ address: 'FD50:494C:4F54:0:0:0:0:2A', reflector: 'fd50:494c:4f54::1:0:0:1' }, ip.run)
  await s.up()
  assert.deepEqual(ip.calls, [
    'link set dev pilot0 mtu 65520 up',
    `-6 addr add ${A}/128 dev pilot0 nodad`,
    `-6 route add fd50:494c:4f54::/48 dev pilot0 src ${A}`,
  ])
  assert.equal(s.configured, true)
})

test('a reflector outside the prefix gets a /128 route of its own; it is never assigned', () => {
  const s = new InterfaceSetup({ name: 'pt1', mtu: 1500, address: A, reflector: 'fd00::1' }, fakeIp(null).run)
  const cmds = s.upCommands().map((c) => c.join(' '))
  assert.deepEqual(cmds.slice(3), [`-6 route add fd00::1/128 dev pt1 src ${A}`])
  assert.ok(!cmds.some((c) => c.includes('addr add fd00::1')))
})

test('a failing step undoes the others and throws an error quoting the command and stderr', async () => {
  const ip = fakeIp({ kind: 'tun' }, { '-6 route add': 'RTNETLINK answers: File exists\n' })
  const s = new InterfaceSetup({ address: A }, ip.run)
  await assert.rejects(s.up(), (e: unknown) => {
    return e instanceof TunError && e.code === 'PT_TUN_IP_COMMAND_FAILED' &&
      e.message === `\`ip -6 route add fd50:494c:4f54::/48 dev pilot0 src ${A}\` failed: RTNETLINK answers: File exists`
  })
  assert.ok(ip.calls.includes('link del dev pilot0'), 'the half-configured link is removed')
  assert.equal(s.configured, false)
})

test('"Operation not permitted" from ip becomes PT_TUN_PERMISSION with a sudo / CAP_NET_ADMIN hint', async () => {
  const ip = fakeIp({ kind: 'tun' }, { link: 'RTNETLINK answers: Operation not permitted\n' })
  await assert.rejects(new InterfaceSetup({ address: A }, ip.run).up(), (e: unknown) => {
    return e instanceof TunError && e.code === 'PT_TUN_PERMISSION' && /sudo/.test(e.hint ?? '') && /cap_net_admin/.test(e.hint ?? '')
  })
})

test('a joined network gets A_N/128 and its /64 route with A_N as source; leaving removes both; teardown removes what is left', async () => {
  const ip = fakeIp({ kind: 'tun' })
  const s = new InterfaceSetup({ address: A }, ip.run)
  await s.up()
  ip.calls.length = 0
  await s.addNetwork(0x1f)
  await s.addNetwork(0x1f) // once
  await s.addNetwork(2)
  assert.deepEqual(ip.calls, [
    '-6 addr add fd50:494c:4f54:1f::2a/128 dev pilot0 nodad',
    '-6 route add fd50:494c:4f54:1f::/64 dev pilot0 src fd50:494c:4f54:1f::2a',
    '-6 addr add fd50:494c:4f54:2::2a/128 dev pilot0 nodad',
    '-6 route add fd50:494c:4f54:2::/64 dev pilot0 src fd50:494c:4f54:2::2a',
  ])
  assert.deepEqual(s.joinedNetworks(), [0x1f, 2])
  ip.calls.length = 0
  await s.removeNetwork(0x1f)
  await s.removeNetwork(0x1f) // nothing left to do
  assert.deepEqual(ip.calls, ['-6 route del fd50:494c:4f54:1f::/64 dev pilot0', '-6 addr del fd50:494c:4f54:1f::2a/128 dev pilot0'])
  ip.calls.length = 0
  await s.teardown()
  assert.ok(ip.calls.includes('-6 addr del fd50:494c:4f54:2::2a/128 dev pilot0'), 'teardown takes the remaining network address too')
  assert.deepEqual(s.joinedNetworks(), [])
  // A failed add leaves nothing half-done behind.
  const bad = fakeIp({ kind: 'tun' }, { '-6 route add fd50:494c:4f54:3::/64': 'RTNETLINK answers: File exists\n' })
  const t = new InterfaceSetup({ address: A }, bad.run)
  await assert.rejects(t.addNetwork(3))
  assert.ok(bad.calls.includes('-6 addr del fd50:494c:4f54:3::2a/128 dev pilot0'))
  assert.deepEqual(t.joinedNetworks(), [])
  assert.throws(() => t.networkCommands(0x10000, 'add'), /16-bit/)
})

test('teardown is idempotent: nothing to do when the link is gone, "already gone" answers are success', async () => {
  const gone = fakeIp(null)
  const s = new InterfaceSetup({ address: A }, gone.run)
  await s.teardown()
  await s.teardown()
  assert.deepEqual(gone.calls, ['-d -j link show dev pilot0', '-d -j link show dev pilot0'])

  const half = fakeIp({ kind: 'tun' }, {
    '-6 route del': 'RTNETLINK answers: No such process\n',
    '-6 addr del': 'Error: ipv6: address not found.\n',
  })
  await new InterfaceSetup({ address: A }, half.run).teardown()
  assert.deepEqual(half.calls.slice(1), [
    '-6 route del fd50:494c:4f54::/48 dev pilot0',
    `-6 addr del ${A}/128 dev pilot0`,
    'link del dev pilot0',
  ])
})

test('teardown tries every step, then reports the first real failure; it never deletes a non-TUN link', async () => {
  const ip = fakeIp({ kind: 'dummy' }, { '-6 route del': 'RTNETLINK answers: Device or resource busy\n' })
  await assert.rejects(new InterfaceSetup({ address: A }, ip.run).teardown(), /Device or resource busy/)
  assert.ok(ip.calls.some((c) => c.startsWith('-6 addr del')))
  assert.ok(!ip.calls.includes('link del dev pilot0'))
})

test('assertInterfaceFree: absent is fine, any existing link is PT_TUN_IN_USE with a hint', async () => {
  await assertInterfaceFree('pilot0', fakeIp(null).run)
  await assert.rejects(assertInterfaceFree('pilot0', fakeIp({ kind: 'tun' }).run), (e: unknown) => {
    return e instanceof TunError && e.code === 'PT_TUN_IN_USE' && /already exists/.test(e.message) && /ip link del pilot0/.test(e.hint ?? '')
  })
  await assert.rejects(assertInterfaceFree('pilot0', fakeIp({ kind: 'veth' }).run), /veth interface pilot0 already exists/)
})

test('bad options are refused before any command runs', () => {
  const run = fakeIp(null).run
  const bad = (o: ConstructorParameters<typeof InterfaceSetup>[0]) =>
    assert.throws(() => new InterfaceSetup(o, run), (e: unknown) => e instanceof TunError && e.code === 'PT_TUN_INVALID_OPTIONS', JSON.stringify(o))
  bad({ address: 'fd51::2a' })
  bad({ address: '10.0.0.1' })
  bad({ address: `${A}/128` })
  bad({ address: A, prefix: 'fd50:494c:4f54::/64' })
  bad({ address: A, reflector: 'nope' })
  bad({ address: A, mtu: 100 })
})

test('execIp: a missing ip binary says to install iproute2', async () => {
  await assert.rejects(execIp('/nonexistent/ip')(['link']), (e: unknown) => e instanceof TunError && /iproute2/.test(e.hint ?? ''))
})

test('hasNetAdmin reads bit 12 of CapEff', () => {
  const dir = mkdtempSync(join(tmpdir(), 'pt-caps-'))
  try {
    const f = join(dir, 'status')
    writeFileSync(f, 'Name:\tnode\nCapEff:\t0000000000001000\n')
    assert.equal(hasNetAdmin(f), true)
    writeFileSync(f, 'Name:\tnode\nCapEff:\t0000000000000000\n')
    assert.equal(hasNetAdmin(f), false)
    writeFileSync(f, 'CapEff:\t000001ffffffffff\n')
    assert.equal(hasNetAdmin(f), true)
  } finally {
    rmSync(dir, { recursive: true })
  }
})

/** Sysctl files in memory; `writeError` makes every write fail with that errno. */
function fakeSysctl(values: Record<string, string>, writeError?: string) {
  const writes: Array<[string, string]> = []
  const files: SysctlFiles = {
    async read(path) {
      const v = values[path]
      if (v === undefined) throw Object.assign(new Error(`ENOENT: ${path}`), { code: 'ENOENT' })
      return v
    },
    async write(path, text) {
      if (writeError !== undefined) throw Object.assign(new Error(`${writeError}: ${path}`), { code: writeError })
      writes.push([path, text])
      values[path] = text
    },
  }
  return { files, writes }
}

const PILOT0_DISABLE = '/proc/sys/net/ipv6/conf/pilot0/disable_ipv6'

test('enableIpv6On writes 0 to our interface\'s disable_ipv6 only when it is 1, and nothing when the file is absent', async () => {
  const off = fakeSysctl({ [PILOT0_DISABLE]: '1\n', '/proc/sys/net/ipv6/conf/default/disable_ipv6': '1\n' })
  await enableIpv6On('pilot0', off.files)
  assert.deepEqual(off.writes, [[PILOT0_DISABLE, '0']], 'only pilot0, never default or all')
  const on = fakeSysctl({ [PILOT0_DISABLE]: '0\n' })
  await enableIpv6On('pilot0', on.files)
  assert.deepEqual(on.writes, [])
  const absent = fakeSysctl({})
  await enableIpv6On('pilot0', absent.files)
  assert.deepEqual(absent.writes, [])
})

test('enableIpv6On on a read-only /proc/sys (ProtectKernelTunables=yes) fails with PT_TUN_PERMISSION naming the sysctl and the way out', async () => {
  const ro = fakeSysctl({ [PILOT0_DISABLE]: '1\n' }, 'EROFS')
  await assert.rejects(enableIpv6On('pilot0', ro.files), (e: unknown) => {
    assert.ok(e instanceof TunError)
    assert.equal(e.code, 'PT_TUN_PERMISSION')
    assert.match(e.message, /IPv6 is disabled on pilot0/)
    assert.ok(e.message.includes(PILOT0_DISABLE), e.message)
    assert.match(e.message, /\(EROFS\)/)
    assert.match(e.hint ?? '', /net\.ipv6\.conf\.default\.disable_ipv6=0/)
    assert.match(e.hint ?? '', /ReadWritePaths=\/proc\/sys\/net\/ipv6\/conf\//)
    return true
  })
})

test('up stops before `ip -6 addr add` when IPv6 cannot be turned on, and removes the link', async () => {
  const ip = fakeIp({ kind: 'tun' })
  const sysctl = fakeSysctl({ [PILOT0_DISABLE]: '1' }, 'EACCES')
  const s = new InterfaceSetup({ address: A }, ip.run, sysctl.files)
  await assert.rejects(s.up(), (e: unknown) => e instanceof TunError && e.code === 'PT_TUN_PERMISSION' && /\(EACCES\)/.test(e.message))
  assert.equal(ip.calls[0], 'link set dev pilot0 mtu 65520 up')
  assert.ok(!ip.calls.some((c) => c.startsWith('-6 addr add')), `no address attempted: ${ip.calls.join('; ')}`)
  assert.ok(ip.calls.includes('link del dev pilot0'), 'the link is removed')
  assert.equal(s.configured, false)
})

test('up turns IPv6 on between the link and the address when new links start without it', async () => {
  const ip = fakeIp({ kind: 'tun' })
  const sysctl = fakeSysctl({ [PILOT0_DISABLE]: '1' })
  let linkUpBeforeWrite = false
  const files: SysctlFiles = {
    read: sysctl.files.read,
    async write(path, text) {
      linkUpBeforeWrite = ip.calls.length === 1 && ip.calls[0]!.startsWith('link set')
      await sysctl.files.write(path, text)
    },
  }
  await new InterfaceSetup({ address: A }, ip.run, files).up()
  assert.deepEqual(sysctl.writes, [[PILOT0_DISABLE, '0']])
  assert.ok(linkUpBeforeWrite, 'written after the link is up and before the address')
  assert.equal(ip.calls[1], `-6 addr add ${A}/128 dev pilot0 nodad`)
})
