// systemd/pilot-tun.service under a real systemd (issue 10). Root only; skips
// with the reason when systemd-nspawn, a bootable systemd or the build is
// missing, or when the container cannot boot here.
//
// The host's own tree boots as a container (`systemd-nspawn -D / --volatile=yes
// -b`: /usr from the host, read-only; / and /etc a fresh tmpfs, so this host's
// configuration stays out) with its own network namespace (--private-network:
// only loopback, so pilot0 and port 53 live in there). Bind-mounted into it:
//
//   /opt/pilot-tun                      this checkout, read-only (built: dist/, the TUN addon)
//   /etc/systemd/system/pilot-*.service the shipped units, read-only, exactly as committed
//   /etc/systemd/system/*.service.d/    drop-ins: ExecStart → /opt/pilot-tun (the unit's header
//                                       says that is how to change the path); the registry and
//                                       beacon also listen on 127.0.0.1 and start first
//   /etc/pilot-tun/config.json          registry and beacon on 127.0.0.1, a hostname
//   /etc/sysctl.d/, /etc/tmpfiles.d/    net.ipv6.conf.default.disable_ipv6=1 (new links without
//                                       IPv6: the case where the daemon must write
//                                       /proc/sys/net/ipv6/conf/pilot0/ under
//                                       ProtectKernelTunables=yes), and /dev/net/tun 0666 (what
//                                       the standard udev rule does on a host; README step 2)
//   /opt/pilot-check/check.sh           netns-tests/systemd/check.sh, run by pilot-check.service
//   /pilot-results                      a host temp dir, read-write: what the check records
//
// multi-user.target wants the registry, the beacon, pilot-tun and the check;
// the check records (systemctl show, /proc/PID/status, status --json through
// /run/pilot-tun/control.sock, ip -6 addr, a DNS query to [pilot0 address]:53),
// restarts pilot-tun without CAP_NET_BIND_SERVICE and records again, and the
// container powers off. This file then asserts on the records, and that the
// container left nothing behind. A hard timeout kills the container.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn, spawnSync } from 'node:child_process'
import { chmodSync, closeSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, readdirSync, realpathSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { randomBytes } from 'node:crypto'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { DaemonStatus } from '../src/daemon/api.js'

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..')
const CONTAINER_TIMEOUT_MS = 90_000
const HOSTNAME = 'nspawn-node'
/** CAP_NET_ADMIN (12) and CAP_NET_BIND_SERVICE (10), as /proc/PID/status prints them. */
const CAP_NET_ADMIN = 1n << 12n
const CAP_NET_BIND_SERVICE = 1n << 10n
/** systemd's range for DynamicUser= uids. */
const DYNAMIC_UIDS = { min: 61184, max: 65519 }

function unavailable(): string | null {
  if (process.platform !== 'linux') return 'needs Linux'
  if (process.getuid?.() !== 0) return 'needs root (systemd-nspawn)'
  if (spawnSync('systemd-nspawn', ['--version'], { stdio: 'ignore' }).error !== undefined) {
    return 'systemd-nspawn is not installed (apt-get install systemd-container)'
  }
  if (!['/usr/lib/systemd/systemd', '/lib/systemd/systemd'].some((p) => existsSync(p))) return 'no systemd in /usr to boot (apt-get install systemd)'
  if (!existsSync('/dev/net/tun')) return '/dev/net/tun is missing'
  if (!existsSync(join(repoRoot, 'build', 'Release', 'pilot_tun_native.node'))) return 'the TUN addon is not built (npm run build:native)'
  if (!existsSync(join(repoRoot, 'dist', 'src', 'cli', 'main.js'))) return 'not built (npm run build)'
  // Only the checkout is bind-mounted: dependencies linked in from elsewhere would be missing in there.
  const modules = join(repoRoot, 'node_modules')
  if (!existsSync(modules)) return 'no node_modules (npm ci)'
  if (!realpathSync(modules).startsWith(`${realpathSync(repoRoot)}/`)) return 'node_modules links out of the checkout, which the container does not see'
  return null
}

/** Processes whose argv holds `token`: the nspawn we started and the container's systemd (its argv is ours). */
function processesWith(token: string): number[] {
  const pids: number[] = []
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue
    try {
      if (readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0').includes(token)) pids.push(Number(entry))
    } catch {
      /* exited meanwhile */
    }
  }
  return pids
}

/**
 * SIGKILL for exactly the processes we started. Killing the container's init
 * ends its PID namespace (every service in it); nspawn then tears down its
 * mount namespace and exits.
 */
function killContainer(token: string): number[] {
  const pids = processesWith(token)
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL')
    } catch {
      /* already gone */
    }
  }
  return pids
}

async function until(cond: () => boolean, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms
  while (!cond()) {
    if (Date.now() > deadline) return false
    await new Promise((r) => setTimeout(r, 100))
  }
  return true
}

/** `Key=Value` lines of `systemctl show` or a /proc status file (`Key:\tValue`). */
function fields(text: string, sep: '=' | ':'): Map<string, string> {
  const m = new Map<string, string>()
  for (const line of text.split('\n')) {
    const i = line.indexOf(sep)
    if (i > 0) m.set(line.slice(0, i).trim(), line.slice(i + 1).trim())
  }
  return m
}

/** Soft and hard "Max open files" this process may pass on: the container cannot raise the hard limit. */
function ownOpenFilesHardLimit(): number {
  const line = readFileSync('/proc/self/limits', 'utf8').split('\n').find((l) => l.startsWith('Max open files'))
  const hard = line?.trim().split(/\s+/)[4]
  return hard === undefined || hard === 'unlimited' ? Infinity : Number(hard)
}

function hostHasLink(name: string): boolean {
  return spawnSync('ip', ['link', 'show', 'dev', name], { stdio: 'ignore' }).status === 0
}

interface Layout {
  dir: string
  results: string
  args: string[]
}

/** Writes the drop-ins, config and check unit into `dir` and returns nspawn's arguments. */
function layOut(dir: string, machine: string, token: string): Layout {
  const results = join(dir, 'results')
  mkdirSync(results)
  const file = (rel: string, text: string): string => {
    const p = join(dir, rel)
    mkdirSync(dirname(p), { recursive: true })
    writeFileSync(p, text)
    return p
  }
  const bin = '/opt/pilot-tun/bin/pilot-tun.js'
  file('units/pilot-tun.service.d/exec.conf', `[Service]\nExecStart=\nExecStart=${bin} up --config /etc/pilot-tun/config.json\n`)
  file(
    'units/pilot-registry.service.d/exec.conf',
    `[Unit]\nBefore=pilot-tun.service\n[Service]\nExecStart=\nExecStart=${bin} registry --listen 127.0.0.1:9000 --store /var/lib/pilot-registry/registry.db --tls\n`,
  )
  file('units/pilot-beacon.service.d/exec.conf', `[Unit]\nBefore=pilot-tun.service\n[Service]\nExecStart=\nExecStart=${bin} beacon --listen 127.0.0.1:9001\n`)
  file(
    'units/pilot-check.service',
    [
      '[Unit]',
      'Description=pilot-tun systemd test: record the running daemon, then power off',
      'After=pilot-tun.service pilot-registry.service pilot-beacon.service',
      'SuccessAction=poweroff',
      'FailureAction=poweroff',
      '[Service]',
      'Type=oneshot',
      `Environment=PILOT_TEST_HOSTNAME=${HOSTNAME}`,
      'ExecStart=/bin/bash /opt/pilot-check/check.sh',
      'TimeoutStartSec=70',
      '',
    ].join('\n'),
  )
  file('units/multi-user.target.d/pilot-test.conf', '[Unit]\nWants=pilot-registry.service pilot-beacon.service pilot-tun.service pilot-check.service\n')
  file(
    'config.json',
    JSON.stringify({ registry: '127.0.0.1:9000', beacon: '127.0.0.1:9001', listen: '127.0.0.1:4000', hostname: HOSTNAME, 'log-format': 'json' }, null, 2),
  )
  file('ipv6-off.conf', 'net.ipv6.conf.default.disable_ipv6 = 1\n')
  file('tun.conf', 'z /dev/net/tun 0666 - - -\n')
  const check = join(dir, 'check.sh')
  copyFileSync(join(repoRoot, 'netns-tests', 'systemd', 'check.sh'), check)
  chmodSync(check, 0o755)

  const ro = (from: string, to: string) => `--bind-ro=${from}:${to}`
  const etcUnits = '/etc/systemd/system'
  const args = [
    '--quiet',
    '--directory=/',
    '--volatile=yes',
    '--register=no',
    '--keep-unit',
    '--private-network',
    `--machine=${machine}`,
    ro(repoRoot, '/opt/pilot-tun'),
    ...['pilot-tun', 'pilot-registry', 'pilot-beacon'].flatMap((u) => [
      ro(join(repoRoot, 'systemd', `${u}.service`), `${etcUnits}/${u}.service`),
      ro(join(dir, 'units', `${u}.service.d`), `${etcUnits}/${u}.service.d`),
    ]),
    ro(join(dir, 'units', 'pilot-check.service'), `${etcUnits}/pilot-check.service`),
    ro(join(dir, 'units', 'multi-user.target.d'), `${etcUnits}/multi-user.target.d`),
    ro(join(dir, 'config.json'), '/etc/pilot-tun/config.json'),
    ro(join(dir, 'ipv6-off.conf'), '/etc/sysctl.d/90-pilot-test.conf'),
    ro(join(dir, 'tun.conf'), '/etc/tmpfiles.d/90-pilot-test.conf'),
    ro(check, '/opt/pilot-check/check.sh'),
    `--bind=${results}:/pilot-results`,
    '--boot',
    // The rest is the container's kernel command line: no first-boot prompt;
    // no waiting for a network that only has loopback (network-online.target
    // would hold the units for two minutes); the token that names our processes.
    'systemd.firstboot=off',
    'systemd.mask=systemd-networkd-wait-online.service',
    token,
  ]
  return { dir, results, args }
}

interface Boot {
  code: number | null
  signal: NodeJS.Signals | null
  timedOut: boolean
  console: string
}

async function boot(layout: Layout, token: string): Promise<Boot> {
  const consolePath = join(layout.dir, 'console.log')
  const fd = openSync(consolePath, 'w')
  const child = spawn('systemd-nspawn', layout.args, { stdio: ['ignore', fd, fd] })
  closeSync(fd)
  let timedOut = false
  const timer = setTimeout(() => {
    timedOut = true
    killContainer(token)
  }, CONTAINER_TIMEOUT_MS)
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) => {
    child.once('error', () => resolve([null, null]))
    child.once('exit', (c, s) => resolve([c, s]))
  })
  clearTimeout(timer)
  return { code, signal, timedOut, console: readFileSync(consolePath, 'utf8') }
}

/**
 * Removes whatever the run left (nothing, after a clean poweroff) and says
 * what that was: processes of ours, nspawn's per-machine directory, mounts.
 */
async function cleanUp(token: string, machine: string, dir: string): Promise<string[]> {
  const found: string[] = []
  const killed = killContainer(token)
  if (killed.length > 0) found.push(`processes ${killed.join(', ')} (killed)`)
  if (!(await until(() => processesWith(token).length === 0, 10_000))) found.push(`processes ${processesWith(token).join(', ')} survive SIGKILL`)
  const propagate = `/run/systemd/nspawn/propagate/${machine}`
  if (existsSync(propagate)) {
    found.push(propagate)
    rmSync(propagate, { recursive: true, force: true })
  }
  const mounts = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => l.includes(dir) || l.includes(machine))
  found.push(...mounts.map((m) => `mount: ${m}`))
  rmSync(dir, { recursive: true, force: true })
  return found
}

function tail(text: string, lines = 40): string {
  // The console has colour codes; keep it readable in a failure message.
  return text.replace(/\x1b\[[0-9;]*m/g, '').split('\n').slice(-lines).join('\n')
}

test('pilot-tun.service under systemd: dynamic user, pilot0 with IPv6, DNS on :53, DNS degrades without CAP_NET_BIND_SERVICE, nothing left behind', { skip: unavailable() ?? false, timeout: CONTAINER_TIMEOUT_MS + 60_000 }, async (t) => {
  const id = `${process.pid.toString(36)}${randomBytes(3).toString('hex')}`
  const machine = `pt-unit-${id}`
  const token = `pilot.test=${id}`
  const dir = mkdtempSync(join(tmpdir(), 'pilot-systemd-'))
  const pilot0Before = hostHasLink('pilot0')
  // If this process ends before the finally below runs (the runner's own
  // timeout, ^C), the container goes with it.
  const onExit = (): void => void killContainer(token)
  const onSignal = (signal: NodeJS.Signals): void => {
    killContainer(token)
    process.exit(signal === 'SIGINT' ? 130 : 143)
  }
  process.once('exit', onExit)
  process.once('SIGINT', onSignal)
  process.once('SIGTERM', onSignal)
  let leftovers: string[] = []
  try {
    const layout = layOut(dir, machine, token)
    const ran = await boot(layout, token)
    const read = (name: string): string => {
      const p = join(layout.results, name)
      return existsSync(p) ? readFileSync(p, 'utf8') : ''
    }
    const journal = read('journal.txt')
    const context = `\n--- journal of the pilot units ---\n${journal}\n--- container console (tail) ---\n${tail(ran.console, 15)}`

    if (!existsSync(join(layout.results, 'started'))) {
      // The check unit never ran. If systemd did not even come up, this host
      // cannot boot a container: an environment limit, not the unit's fault.
      if (!/Welcome to|Reached target/.test(ran.console)) {
        t.skip(`the container did not boot (nspawn exit ${ran.code ?? ran.signal}): ${tail(ran.console, 3).replace(/\n/g, ' | ')}`)
        return
      }
      assert.fail(`the container booted but pilot-check.service never ran${context}`)
    }
    assert.equal(ran.timedOut, false, `the container did not power off within ${CONTAINER_TIMEOUT_MS} ms${context}`)
    assert.equal(ran.code, 0, `systemd-nspawn exited ${ran.code ?? ran.signal} (a clean poweroff is 0)${context}`)
    t.diagnostic(`pilot-tun.service: ${read('show.txt').replace(/\n/g, ' ')} ${read('proc-status.txt').replace(/\s+/g, ' ')}`)

    // ---- phase 1: the shipped unit ----
    const show = fields(read('show.txt'), '=')
    assert.equal(show.get('ActiveState'), 'active', `pilot-tun.service should be active${context}`)
    assert.equal(show.get('SubState'), 'running')
    assert.equal(show.get('DynamicUser'), 'yes')
    assert.equal(show.get('User'), 'pilot-tun', 'the dynamic user is named after the unit')
    assert.ok(Number(show.get('MainPID')) > 0)
    assert.equal(show.get('MemoryMax'), String(1024 ** 3))
    assert.equal(show.get('TasksMax'), '64')
    assert.equal(show.get('LimitNOFILE'), '65536')

    const proc = fields(read('proc-status.txt'), ':')
    const uids = (proc.get('Uid') ?? '').split(/\s+/).map(Number)
    assert.equal(uids.length, 4, `Uid line: ${proc.get('Uid')}`)
    for (const uid of uids) {
      assert.ok(uid >= DYNAMIC_UIDS.min && uid <= DYNAMIC_UIDS.max, `real/effective/saved/fs uid ${uid} should be a dynamic user, not root`)
    }
    const capEff = BigInt(`0x${proc.get('CapEff') ?? '0'}`)
    assert.equal(capEff, CAP_NET_ADMIN | CAP_NET_BIND_SERVICE, `CapEff ${proc.get('CapEff')}: exactly CAP_NET_ADMIN and CAP_NET_BIND_SERVICE`)
    assert.equal(BigInt(`0x${proc.get('CapAmb') ?? '0'}`), capEff, 'the same set is ambient (the `ip` children get it)')
    // systemd cannot raise a hard limit above what the container inherited.
    const nofile = Math.min(65536, ownOpenFilesHardLimit())
    assert.match(read('limits.txt'), new RegExp(`^Max open files\\s+${nofile}\\s+${nofile}\\s`), read('limits.txt'))

    const status = JSON.parse(read('status.json') || 'null') as DaemonStatus | null
    assert.ok(status !== null, `status --json through the control socket failed: ${read('status.err')}${context}`)
    assert.equal(status.hostname, HOSTNAME)
    assert.equal(status.registry.connected, true)
    assert.ok(status.tun !== null, 'status shows the TUN')
    const address = status.tun.address
    assert.equal(status.tun.interface, 'pilot0')
    assert.equal(address, status.ipv6)
    assert.equal(status.tun.dns.startsWith(`dig @${address} `), true, `DNS should be on: ${status.tun.dns}`)

    assert.match(read('ip-addr.txt'), new RegExp(`inet6 ${address.replace(/\./g, '\\.')}/128 scope global`), read('ip-addr.txt'))
    // New links start without IPv6 here, and pilot0 has it: the daemon wrote the sysctl through ReadWritePaths=.
    assert.deepEqual(read('sysctl.txt').trim().split('\n'), ['default 1', 'pilot0 0'])

    // The control socket: 0600 and the daemon's own uid (only it and root may open it), in a 0750 directory.
    assert.deepEqual(read('run-dir.txt').trim().split('\n'), [`750 ${uids[0]} /run/pilot-tun`, `600 ${uids[0]} /run/pilot-tun/control.sock`])

    assert.deepEqual(JSON.parse(read('dns.json') || '{}'), { answers: [address] }, `DNS answer from [${address}]:53${context}`)
    const dig = read('dig.txt')
    if (dig !== '') assert.match(dig, new RegExp(`${HOSTNAME}\\.pilot\\.\\s+\\d+\\s+IN\\s+AAAA\\s+${address}`), dig)

    // The registry made its TLS certificate in its StateDirectory (issue 15): its own dynamic user's, 0600; the pin it
    // presents on port 9000 is the one `registry pin` reads from there.
    const tlsFiles = read('registry-tls.txt').trim().split('\n').map((l) => l.split(' '))
    assert.deepEqual(tlsFiles.map(([mode, , path]) => `${mode} ${path}`), ['600 /var/lib/private/pilot-registry/registry-tls-cert.pem', '600 /var/lib/private/pilot-registry/registry-tls-key.pem'], read('registry-tls.txt') + context)
    for (const [, uid] of tlsFiles) assert.ok(Number(uid) >= DYNAMIC_UIDS.min && Number(uid) <= DYNAMIC_UIDS.max, `owner ${uid}: the registry's dynamic user`)
    const pins = JSON.parse(read('registry-pin.json') || '{}') as { stored?: string; presented?: string }
    assert.match(pins.stored ?? '', /^[0-9a-f]{64}$/, read('registry-pin.json'))
    assert.equal(pins.presented, pins.stored)

    // ---- phase 2: without CAP_NET_BIND_SERVICE, up degrades instead of dying ----
    assert.ok(existsSync(join(layout.results, 'done')), `the check did not finish${context}`)
    const showNoBind = fields(read('show-nobind.txt'), '=')
    assert.equal(showNoBind.get('ActiveState'), 'active', `pilot-tun.service without CAP_NET_BIND_SERVICE should still run${context}`)
    assert.equal(BigInt(`0x${fields(read('proc-status-nobind.txt'), ':').get('CapEff') ?? '0'}`), CAP_NET_ADMIN)
    const noBind = JSON.parse(read('status-nobind.json') || 'null') as DaemonStatus | null
    assert.ok(noBind?.tun, `status after the restart: ${read('status-nobind.err')}${context}`)
    assert.match(noBind.tun.dns, new RegExp(`^failed: cannot bind \\[${address}\\]:53 \\(EACCES\\).*CAP_NET_BIND_SERVICE`), noBind.tun.dns)
    assert.match(journal, /"message":"the \.pilot DNS responder is off: its port could not be bound"/, 'the warning is in the journal')
  } finally {
    process.off('exit', onExit)
    process.off('SIGINT', onSignal)
    process.off('SIGTERM', onSignal)
    leftovers = await cleanUp(token, machine, dir)
    if (leftovers.length > 0) t.diagnostic(`left behind (removed now where possible): ${leftovers.join('; ')}`)
  }
  assert.deepEqual(leftovers, [], 'the container left nothing on the host')
  assert.equal(hostHasLink('pilot0'), pilot0Before, "the container's pilot0 never appears on the host")
})
