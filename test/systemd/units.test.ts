// Checks the systemd units in systemd/: `systemd-analyze verify` accepts each
// one without a warning about it, and the settings the daemon depends on are
// there (CAP_NET_ADMIN and CAP_NET_BIND_SERVICE, the IPv6 sysctls writable,
// the state/runtime/config directories matching the daemon's defaults,
// resource limits, restart on failure, no MemoryDenyWriteExecute).
// netns-tests/systemd-unit.test.ts runs the unit under a real systemd.
//
// verify refuses a unit whose ExecStart binary does not exist, and the
// committed units name /usr/bin/pilot-tun (where `npm install -g` puts it with
// prefix /usr). So each unit is copied to a temp dir with only that path
// rewritten to an executable stub there; everything else is verified as
// committed.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { DEFAULT_CONFIG_PATH, parseConfig } from '../../src/cli/config.js'
import { DEFAULT_STATE_DIR, resolveUpSettings } from '../../src/cli/commands/up.js'
import { DEFAULT_CONTROL_SOCKET } from '../../src/daemon/control/client.js'

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..')
const unitDir = join(repoRoot, 'systemd')
const UNITS = ['pilot-tun.service', 'pilot-registry.service', 'pilot-beacon.service'] as const
const INSTALLED_BIN = '/usr/bin/pilot-tun'

/** One `Key=Value` line; sections keep every assignment in order (keys may repeat). */
type Unit = Map<string, Array<[string, string]>>

function parseUnit(text: string): Unit {
  const unit: Unit = new Map()
  let section: Array<[string, string]> | undefined
  for (const raw of text.split('\n')) {
    const line = raw.trim()
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue
    const header = /^\[(.+)\]$/.exec(line)
    if (header) {
      section = []
      unit.set(header[1]!, section)
      continue
    }
    const eq = line.indexOf('=')
    assert.ok(section !== undefined && eq > 0, `not a unit file line: ${raw}`)
    section.push([line.slice(0, eq).trim(), line.slice(eq + 1).trim()])
  }
  return unit
}

/** Every value assigned to `key` in `section`. */
function values(unit: Unit, section: string, key: string): string[] {
  return (unit.get(section) ?? []).filter(([k]) => k === key).map(([, v]) => v)
}

/** The single value of `key` in `section`; fails when absent or repeated. */
function one(unit: Unit, section: string, key: string): string {
  const v = values(unit, section, key)
  assert.equal(v.length, 1, `[${section}] ${key}= should be set exactly once, found ${JSON.stringify(v)}`)
  return v[0]!
}

function readUnit(name: string): { text: string; unit: Unit } {
  const text = readFileSync(join(unitDir, name), 'utf8')
  return { text, unit: parseUnit(text) }
}

/**
 * Whether verify can run here. A missing systemd-analyze fails the verify
 * tests as root or in CI (.ci/run runs as root and installs systemd) and skips
 * them for a non-root developer, who cannot install it.
 */
function analyzeAvailability(): { skip: string | null; fail: string | null } {
  const r = spawnSync('systemd-analyze', ['--version'], { encoding: 'utf8' })
  if (r.error === undefined && r.status === 0) return { skip: null, fail: null }
  const why = r.error !== undefined ? r.error.message : `systemd-analyze --version exited ${r.status}: ${r.stderr}`
  if (process.getuid?.() === 0 || process.env['CI'] !== undefined) {
    return { skip: null, fail: `systemd-analyze is not available (${why}); install it: apt-get install -y --no-install-recommends systemd (.ci/run does this)` }
  }
  return { skip: `systemd-analyze is not available (${why}) and installing systemd needs root: apt-get install systemd`, fail: null }
}

const availability = analyzeAvailability()
const unavailable = availability.skip ?? availability.fail

/** `--recursive-errors=no` (systemd >= 250): the exit status only counts warnings about the named unit. */
function verifyFlags(): string[] {
  if (unavailable !== null) return []
  const help = spawnSync('systemd-analyze', ['--help'], { encoding: 'utf8' }).stdout ?? ''
  const flags = ['--man=no']
  if (help.includes('--recursive-errors')) flags.push('--recursive-errors=no')
  return flags
}

for (const name of UNITS) {
  test(`systemd-analyze verify accepts ${name} with no warnings about it`, { skip: availability.skip ?? false }, (t) => {
    if (availability.fail !== null) assert.fail(availability.fail)
    const dir = mkdtempSync(join(tmpdir(), 'pilot-units-'))
    try {
      const stub = join(dir, 'pilot-tun')
      writeFileSync(stub, '#!/bin/sh\nexit 0\n')
      chmodSync(stub, 0o755)
      const { text } = readUnit(name)
      let rewrites = 0
      const copy = text.replace(/^ExecStart=\/usr\/bin\/pilot-tun /gm, () => {
        rewrites++
        return `ExecStart=${stub} `
      })
      assert.equal(rewrites, 1, `${name} should have exactly one ExecStart=${INSTALLED_BIN} ... line`)
      const unitPath = join(dir, name)
      writeFileSync(unitPath, copy)

      const r = spawnSync('systemd-analyze', ['verify', ...verifyFlags(), unitPath], {
        encoding: 'utf8',
        timeout: 60_000,
        env: { ...process.env, SYSTEMD_LOG_COLOR: '0', SYSTEMD_PAGER: 'cat', SYSTEMD_LOG_LEVEL: 'notice' },
      })
      assert.equal(r.error, undefined, `systemd-analyze did not run: ${r.error?.message}`)
      const lines = r.stderr.split('\n').filter((l) => l.trim() !== '')
      // verify also loads what our units pull in (multi-user.target,
      // network-online.target and, through them, the host's own units) and
      // prints whatever it finds wrong with those: e.g. a distro unit with a
      // key this systemd does not know, or container noise such as "Failed to
      // connect to bus". Such lines name neither our unit nor our temp dir and
      // are reported, not asserted. Any line naming our unit or its path
      // (verify prefixes its findings with one or the other) fails the test,
      // and so does a non-zero exit (which --recursive-errors=no limits to
      // problems in our unit).
      const ours = lines.filter((l) => l.includes(name) || l.includes(dir))
      const unrelated = lines.filter((l) => !ours.includes(l))
      if (unrelated.length > 0) t.diagnostic(`ignored, not about ${name}:\n${unrelated.join('\n')}`)
      assert.deepEqual(ours, [], `systemd-analyze verify has warnings about ${name}:\n${r.stderr}`)
      assert.equal(r.status, 0, `systemd-analyze verify ${name} exited ${r.status}:\n${r.stderr}`)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
}

test('every unit: realistic ExecStart, restart on failure, dynamic user, hardened, no MemoryDenyWriteExecute', () => {
  for (const name of UNITS) {
    const { unit } = readUnit(name)
    const exec = one(unit, 'Service', 'ExecStart')
    assert.ok(exec.startsWith(`${INSTALLED_BIN} `), `${name}: ExecStart should run ${INSTALLED_BIN}, is ${exec}`)
    assert.equal(one(unit, 'Service', 'Type'), 'simple', name)
    assert.equal(one(unit, 'Service', 'Restart'), 'on-failure', name)
    assert.match(one(unit, 'Service', 'RestartSec'), /^\d+$/, name)
    assert.equal(one(unit, 'Service', 'KillSignal'), 'SIGTERM', name)
    assert.match(one(unit, 'Service', 'TimeoutStopSec'), /^\d+$/, name)
    assert.equal(one(unit, 'Service', 'DynamicUser'), 'yes', name)
    assert.equal(one(unit, 'Service', 'NoNewPrivileges'), 'yes', name)
    assert.equal(one(unit, 'Service', 'ProtectSystem'), 'strict', name)
    assert.equal(one(unit, 'Service', 'ProtectHome'), 'yes', name)
    assert.equal(one(unit, 'Service', 'PrivateTmp'), 'yes', name)
    assert.equal(one(unit, 'Service', 'UMask'), '0077', name)
    assert.equal(one(unit, 'Service', 'SystemCallArchitectures'), 'native', name)
    assert.equal(one(unit, 'Service', 'RestrictNamespaces'), 'yes', name)
    assert.equal(one(unit, 'Service', 'LockPersonality'), 'yes', name)
    assert.equal(one(unit, 'Service', 'ProtectKernelTunables'), 'yes', name)
    assert.equal(one(unit, 'Service', 'ProtectControlGroups'), 'yes', name)
    // V8's JIT writes and then executes code pages: with this set, node dies at startup.
    assert.deepEqual(values(unit, 'Service', 'MemoryDenyWriteExecute'), [], `${name} must not set MemoryDenyWriteExecute`)
    assert.ok(values(unit, 'Unit', 'After').join(' ').split(/\s+/).includes('network-online.target'), `${name}: After=network-online.target`)
    assert.ok(values(unit, 'Unit', 'Wants').join(' ').split(/\s+/).includes('network-online.target'), `${name}: Wants=network-online.target`)
    assert.equal(one(unit, 'Install', 'WantedBy'), 'multi-user.target', name)
  }
})

test('pilot-tun.service: CAP_NET_ADMIN and CAP_NET_BIND_SERVICE only, /dev/net/tun, directories that match the daemon defaults', () => {
  const { unit } = readUnit('pilot-tun.service')
  assert.equal(one(unit, 'Service', 'ExecStart'), `${INSTALLED_BIN} up --config ${DEFAULT_CONFIG_PATH}`)
  // NET_ADMIN: the TUN, its link, address and route. NET_BIND_SERVICE: DNS on [A]:53.
  const caps = ['CAP_NET_ADMIN', 'CAP_NET_BIND_SERVICE']
  assert.deepEqual(one(unit, 'Service', 'AmbientCapabilities').split(/\s+/).sort(), caps)
  assert.deepEqual(one(unit, 'Service', 'CapabilityBoundingSet').split(/\s+/).sort(), caps)
  assert.equal(one(unit, 'Service', 'DevicePolicy'), 'closed')
  assert.deepEqual(values(unit, 'Service', 'DeviceAllow'), ['/dev/net/tun rw'])
  // The daemon's defaults are where systemd makes the service's writable directories.
  assert.equal(`/var/lib/${one(unit, 'Service', 'StateDirectory')}`, DEFAULT_STATE_DIR)
  assert.equal(one(unit, 'Service', 'StateDirectoryMode'), '0700')
  assert.equal(`/run/${one(unit, 'Service', 'RuntimeDirectory')}/control.sock`, DEFAULT_CONTROL_SOCKET)
  assert.equal(`/etc/${one(unit, 'Service', 'ConfigurationDirectory')}/config.json`, DEFAULT_CONFIG_PATH)
  // ip(8) talks netlink; the tunnel UDP, the registry TCP, the control socket AF_UNIX.
  assert.deepEqual(one(unit, 'Service', 'RestrictAddressFamilies').split(/\s+/).sort(), ['AF_INET', 'AF_INET6', 'AF_NETLINK', 'AF_UNIX'])
  // /proc/sys stays read-only except IPv6's per-interface settings, where the
  // daemon turns IPv6 on for pilot0 when new links start without it.
  assert.deepEqual(values(unit, 'Service', 'ReadWritePaths'), ['-/proc/sys/net/ipv6/conf/'])
  // Resource limits: set, and numbers (README.md says why these).
  assert.equal(one(unit, 'Service', 'MemoryMax'), '1G')
  assert.equal(one(unit, 'Service', 'TasksMax'), '64')
  assert.equal(one(unit, 'Service', 'LimitNOFILE'), '65536')
  // Each of these would break the TUN: a private /dev has no /dev/net/tun, a
  // user namespace makes CAP_NET_ADMIN useless in the host's network
  // namespace, a private network hides pilot0 from everyone else.
  for (const key of ['PrivateDevices', 'PrivateUsers', 'PrivateNetwork', 'MemoryDenyWriteExecute']) {
    assert.deepEqual(values(unit, 'Service', key), [], `pilot-tun.service must not set ${key}`)
  }
})

test('pilot-registry.service and pilot-beacon.service: no capabilities; the registry keeps its store in its StateDirectory', () => {
  for (const name of ['pilot-registry.service', 'pilot-beacon.service']) {
    const { unit } = readUnit(name)
    assert.equal(one(unit, 'Service', 'CapabilityBoundingSet'), '', `${name}: empty bounding set`)
    assert.ok(values(unit, 'Service', 'AmbientCapabilities').every((v) => v === ''), `${name}: no ambient capabilities`)
    assert.deepEqual(values(unit, 'Service', 'DeviceAllow'), [], name)
    assert.ok(!one(unit, 'Service', 'RestrictAddressFamilies').includes('AF_NETLINK'), `${name}: no netlink`)
  }
  const registry = readUnit('pilot-registry.service').unit
  // TLS (issue 15): the certificate is made beside the store, so it lives in the StateDirectory too.
  assert.equal(one(registry, 'Service', 'ExecStart'), `${INSTALLED_BIN} registry --listen 0.0.0.0:9000 --store /var/lib/pilot-registry/registry.db --tls`)
  assert.equal(one(registry, 'Service', 'StateDirectory'), 'pilot-registry')
  const beacon = readUnit('pilot-beacon.service').unit
  assert.equal(one(beacon, 'Service', 'ExecStart'), `${INSTALLED_BIN} beacon --listen 0.0.0.0:9001`)
  assert.deepEqual(values(beacon, 'Service', 'StateDirectory'), [], 'the beacon keeps no state')
})

test('systemd/config.example.json passes the config loader and resolves to the sandbox directories', async () => {
  const path = join(unitDir, 'config.example.json')
  const parsed = parseConfig(readFileSync(path, 'utf8'), path)
  assert.equal(parsed.registry, 'registry.example.net:9000')
  const settings = await resolveUpSettings({ config: path })
  assert.equal(settings.stateDir, DEFAULT_STATE_DIR)
  assert.equal(settings.controlSocket, DEFAULT_CONTROL_SOCKET)
  assert.deepEqual(settings.tun, { interface: 'pilot0', prefix: 'fd50:494c:4f54::/48', mtu: 65520, dns: true }, 'the service runs with the TUN (defaults)')
  assert.equal(settings.logFormat, 'json')
})
